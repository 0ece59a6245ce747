import type { BlockVerdict, Exchange } from './protocols/exchange';

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
  /** The exchange is over (ex.outcome says how). Must not throw and must not block. */
  onComplete?(ex: Exchange): void;
}

/** What a channel filter lets through now. `block` ends the stream in the client's dialect. */
export interface StreamRelease {
  text: string;
  block?: BlockVerdict;
}

/**
 * Filters the text of one stream channel: a choice's content, or one (choice, tool call) pair's
 * argument fragments. push() returns what can no longer become part of a match; end() the rest.
 */
export interface ChannelFilter {
  push(delta: string): StreamRelease;
  end(): StreamRelease;
}

export type ChannelKind = 'content' | 'tool_arguments';

export interface StreamInspector {
  /** Called once per channel, the first time it carries text. */
  channel(key: string, kind: ChannelKind): ChannelFilter;
  /**
   * For checks that need the whole answer (a remote verdict): asked once the upstream's stream has ended
   * and ex.output holds the text released. While it runs the stream's terminal events (finish chunks,
   * usage, `[DONE]`, TGI's last event) are held back; a verdict ends the stream in the client's dialect
   * instead (finish_reason "content_filter" / an error event). Text already sent stays sent.
   */
  finalCheck?(): Promise<BlockVerdict | undefined>;
}
