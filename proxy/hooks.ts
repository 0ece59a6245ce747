import type { OversizeAction } from './policy/types';
import type { BlockVerdict, Exchange } from './protocols/exchange';
import type { StreamInspector } from './protocols/stream-filter';

/**
 * The seam between the data plane and the features built on it. The server runs hooks in
 * registration order: guardrails, then limits; traces and telemetry read the exchange at the end.
 * A hook that throws is logged and counted; it never crashes the proxy.
 */
export interface ExchangeHooks {
  readonly name: string;
  /** Before the upstream is called. May edit input segments (editSegment) or block. */
  onRequest?(ex: Exchange): BlockVerdict | void | Promise<BlockVerdict | void>;
  /** A complete, inspected, non-streamed response. May edit output segments or block. */
  onResponse?(ex: Exchange): BlockVerdict | void | Promise<BlockVerdict | void>;
  /** A streamed response starts. Returns how to filter its text, or nothing to let it flow. */
  openStream?(ex: Exchange): StreamInspector | undefined;
  /**
   * Whether this hook inspects the response of `ex`, and what to do when it is too large to buffer
   * (over MAX_RESPONSE_SIZE); undefined when it does not look at responses. Asked before the body is read.
   */
  responseInspection?(ex: Exchange): ResponseInspection | undefined;
  /** The exchange is over (ex.outcome says how). Must not throw and must not block. */
  onComplete?(ex: Exchange): void;
}

export interface ResponseInspection {
  onOversize: OversizeAction;
}
