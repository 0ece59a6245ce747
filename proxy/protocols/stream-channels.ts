import type { ChannelFilter, ChannelKind, StreamInspector } from './stream-filter';
import type { BlockVerdict, Exchange, JsonPath, Segment, SegmentKind } from './exchange';
import { KeptText, OutputBudget } from './kept-text';
import { sseEventText, type SseEvent } from './sse';

export type Obj = Record<string, unknown>;

/** What one stream may hold in memory, whatever the upstream sends. */
export interface StreamBounds {
  /** Largest single line or event, in bytes (MAX_RESPONSE_SIZE). */
  maxEventBytes: number;
  /** Characters of released text kept for ex.output, over all channels. */
  maxKeptChars: number;
}

export const UNBOUNDED: StreamBounds = { maxEventBytes: Infinity, maxKeptChars: Infinity };

/** Channels (choices × texts × tool calls × token-list ranks) one stream may open: each holds a filter. */
export const MAX_CHANNELS = 4096;

/** Channel keys handed to StreamInspector.channel: `content:<choice>` and `tool:<choice>:<tool call index>`, among others. */
export function channelKey(choice: number, toolIndex?: number): string {
  return toolIndex === undefined ? `content:${choice}` : `tool:${choice}:${toolIndex}`;
}

/**
 * Where a channel's released text goes in an OpenAI choice: a delta field (content, reasoning_content,
 * reasoning, refusal), the audio transcript, a tool call's arguments or name, the legacy function call, or a
 * completions choice's text. Token lists (logprobs) are never re-emitted: their channels only gate them.
 */
export type Place =
  | { at: 'delta'; field: string }
  | { at: 'audio' }
  | { at: 'tool'; index: number; field: 'arguments' | 'name' }
  | { at: 'function_call'; field: 'arguments' | 'name' }
  | { at: 'text' }
  | { at: 'none' };

export interface Channel {
  key: string;
  kind: ChannelKind;
  choice: number;
  place: Place;
  /** JSON location recorded for the output segment (and, for the Responses API, the item it belongs to). */
  path: JsonPath;
  filter?: ChannelFilter;
  /** Text the client got on this channel (everything, when nothing inspects the stream), within the stream's budget. */
  released: KeptText;
  /** Received text not yet matched by released text while the two agree (bounded by what the filter holds). */
  pending: string;
  /** Released text differs from received text: a filter redacted or dropped some. */
  altered: boolean;
  ended: boolean;
  /** Responses API: the last delta event of this channel, the template for one we have to add. */
  lastDelta?: { ev: SseEvent; obj: Obj };
}

/** Text released during the event being handled, to put in a closing chunk if the stream is blocked mid-event. */
export interface Release {
  ch: Channel;
  text: string;
}

const SEGMENT_KIND: Record<ChannelKind, SegmentKind> = {
  content: 'completion',
  tool_arguments: 'tool_arguments',
  tool_name: 'tool_name',
  reasoning: 'reasoning',
  refusal: 'refusal',
  transcript: 'transcript',
  error: 'error',
  token_list: 'token_list',
};

export function index(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isInteger(v) ? v : fallback;
}

/**
 * The filtering half of a stream rewrite, apart from any wire format: the channels of one stream and their
 * filters, the text each released, the events to send (held back for an inspector's finalCheck), and the
 * exchange's output at the end. The dialects (stream-openai.ts, stream-tgi.ts, stream-responses.ts) read the
 * upstream's events and write the client's through it; stream.ts picks the dialect per event.
 */
export abstract class StreamChannels {
  readonly channels = new Map<string, Channel>();
  /** (choice, tool call) pairs seen: the exchange's tool-call count. */
  readonly toolKeys = new Set<string>();
  emitted: string[] = [];
  /** Index in `emitted` from which the terminal events are held for the inspector's finalCheck. */
  private heldFrom?: number;
  private readonly holdEnd: boolean;
  verdict?: BlockVerdict;
  /** Set when the upstream's stream broke a bound: the stream ends with an error event. */
  failure?: BlockVerdict;
  private readonly budget: OutputBudget;
  done = false;
  /** The upstream's `data:` dialect (with or without a space), kept for events we add. */
  space = true;
  /** Which dialects this stream has spoken: they decide how held text is flushed and how a block ends it. */
  tgiNative = false;
  responsesApi = false;
  private oneShots = 0;

  constructor(
    readonly ex: Exchange,
    readonly inspector: StreamInspector | undefined,
    bounds: StreamBounds,
  ) {
    this.holdEnd = inspector?.finalCheck !== undefined;
    this.budget = new OutputBudget(bounds.maxKeptChars);
  }

  /** Ends every open channel and emits what they still held, in the stream's dialect. */
  abstract flushAll(): void;
  /** Ends the stream with the verdict in its dialect, after the text released in this event. */
  abstract block(got: Release[]): void;

  /** Stops holding back: the terminal events held for the finalCheck go out with the next take(). */
  releaseHeld(): void {
    this.heldFrom = undefined;
  }

  /** Drops the terminal events held for the finalCheck (none follows when the stream is aborted). */
  dropHeld(): void {
    if (this.heldFrom !== undefined) this.emitted = this.emitted.slice(0, this.heldFrom);
    this.heldFrom = undefined;
  }

  fail(code: string, message: string): void {
    this.failure ??= { status: 502, type: 'upstream_error', code, message };
  }

  /** A JSON event of our own, in the upstream's `data:` dialect. */
  emitData(obj: Obj): void {
    this.emitted.push(`${this.prefix()}${JSON.stringify(obj)}\n\n`);
  }

  channel(key: string, kind: ChannelKind, choice: number, place: Place, path: JsonPath): Channel {
    let ch = this.channels.get(key);
    if (!ch) {
      ch = { key, kind, choice, place, path, released: new KeptText(this.budget), pending: '', altered: false, ended: false };
      this.channels.set(key, ch);
      if (this.channels.size > MAX_CHANNELS) this.fail('stream_too_many_channels', `the upstream's stream opened more than ${MAX_CHANNELS} text channels`);
    }
    return ch;
  }

  /** Feeds text to a channel; returns what the client gets now. Sets the verdict when the filter blocks. */
  feed(ch: Channel, text: string, got: Release[]): string {
    if (!this.inspector) {
      ch.released.add(text);
      return text;
    }
    if (ch.ended) {
      // More text after the channel ended (an upstream that reopens a part): scanned on a fresh filter, never dropped.
      ch.ended = false;
      ch.filter = undefined;
    }
    ch.filter ??= this.inspector.channel(ch.key, ch.kind);
    if (!ch.altered) ch.pending += text;
    const r = ch.filter.push(text);
    this.keep(ch, r.text, got);
    if (r.block) this.verdict = r.block;
    return r.text;
  }

  /** Ends a channel's filter; returns the held text it releases. */
  close(ch: Channel, got: Release[]): string {
    if (ch.ended) return '';
    ch.ended = true;
    if (!this.inspector || !ch.filter) return '';
    const r = ch.filter.end();
    this.keep(ch, r.text, got);
    if (r.block) this.verdict = r.block;
    if (ch.pending !== '') this.alter(ch);
    return r.text;
  }

  /** A value that arrives whole (a tool name, an error message): scanned and decided at once. */
  whole(key: string, kind: ChannelKind, choice: number, place: Place, path: JsonPath, text: string, got: Release[]): string {
    const ch = this.channel(`${key}#${this.oneShots++}`, kind, choice, place, path);
    const head = this.feed(ch, text, got);
    return this.verdict ? head : head + this.close(ch, got);
  }

  private keep(ch: Channel, text: string, got: Release[]): void {
    if (text === '') return;
    ch.released.add(text);
    got.push({ ch, text });
    if (ch.altered) return;
    if (ch.pending.startsWith(text)) ch.pending = ch.pending.slice(text.length);
    else this.alter(ch);
  }

  private alter(ch: Channel): void {
    ch.altered = true;
    ch.pending = '';
  }

  /** From this event on, output waits for the final check (a local block releases it: no check follows). */
  holdTerminal(): void {
    if (this.holdEnd && this.heldFrom === undefined) this.heldFrom = this.emitted.length;
  }

  take(): string {
    const upTo = this.verdict ? this.emitted.length : (this.heldFrom ?? this.emitted.length);
    if (upTo === 0) return '';
    const out = upTo === 1 ? this.emitted[0] : this.emitted.slice(0, upTo).join('');
    this.emitted = upTo === this.emitted.length ? [] : this.emitted.slice(upTo);
    if (this.heldFrom !== undefined) this.heldFrom = 0;
    return out;
  }

  finish(): void {
    if (this.done) return;
    this.done = true;
    const output: Segment[] = [];
    for (const ch of this.channels.values()) {
      if (ch.kind === 'token_list' || ch.kind === 'error') continue;
      output.push({ role: 'assistant', kind: SEGMENT_KIND[ch.kind], trusted: true, path: ch.path, choice: ch.choice, text: ch.released.toString() });
    }
    this.ex.output = output;
    if (this.budget.truncated) this.ex.notes.outputTruncated = `more than ${MAX_CHANNELS} channels or the kept-text bound`;
    this.ex.toolCalls = this.toolKeys.size;
  }

  prefix(): string {
    return this.space ? 'data: ' : 'data:';
  }

  emitJson(ev: SseEvent, obj: Obj): void {
    this.emitFields(ev, JSON.stringify(obj));
  }

  emitRaw(ev: SseEvent): void {
    if (this.inspector) this.emitFields(ev, ev.hasData ? ev.data : undefined);
  }

  emitFields(ev: SseEvent, data: string | undefined): void {
    this.emitted.push(sseEventText(ev, data));
  }
}
