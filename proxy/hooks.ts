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
  /**
   * Whether this hook inspects the response of `ex`, and what to do when it is too large to buffer
   * (over MAX_RESPONSE_SIZE); undefined when it does not look at responses. Asked before the body is read.
   */
  responseInspection?(ex: Exchange): ResponseInspection | undefined;
  /** The exchange is over (ex.outcome says how). Must not throw and must not block. */
  onComplete?(ex: Exchange): void;
}

/**
 * A response over MAX_RESPONSE_SIZE: `scan` streams it through the channel filters in bounded memory, `block`
 * refuses it (502, not retried), `allow` passes it unchecked (recorded in the trace).
 */
export type OversizeAction = 'scan' | 'block' | 'allow';

export interface ResponseInspection {
  onOversize: OversizeAction;
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

/**
 * What a stream channel carries: generated text, tool-call arguments or names, reasoning, a refusal, an audio
 * transcript, an in-stream error message, or the tokens of a logprobs/top-tokens list (one channel per rank),
 * which the client reads as text too.
 */
export type ChannelKind = 'content' | 'tool_arguments' | 'tool_name' | 'reasoning' | 'refusal' | 'transcript' | 'error' | 'token_list';

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
