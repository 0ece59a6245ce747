/**
 * An agent's streamed answer on the inbound listener: SSE events or NDJSON lines, filtered as they pass with the
 * channel filters the inference streams use (holdback: text waits only while it may still become part of a match).
 *
 * Which strings are streamed text: the route's `response` fields when the policy names them; otherwise the strings
 * under a key that streaming APIs carry text in (delta, content, text, token, answer, ...), and the whole data of an
 * event that is not JSON. Each of those is a channel per event name and JSON location, read across events as one
 * text, so a secret split over several events is caught like the same text sent whole. Any other string (an id, a
 * type, a status) is judged value by value, at once, and never held.
 *
 * Held text goes out in an event shaped like the last one of its channel (its other text fields empty) before the
 * next event that carries no streamed text (a `done`, `end` or metadata event ends the text), or at the end of the
 * stream. A block ends the stream with an error event (SSE `event: error`, or an NDJSON line) carrying
 * `{error: {message, type, code}}`. Without an inspector the bytes pass unchanged; the text is still collected for
 * the trace.
 */
import type { ChannelFilter, StreamInspector } from './stream-filter';
import { isEventStream } from '../http/headers';
import { errorPayload } from './errors';
import type { BlockVerdict, Exchange, JsonPath, Segment } from './exchange';
import { setAtPath } from './json-path';
import { selectStrings, type CompiledJsonPath } from './json-select';
import { MAX_JSON_DEPTH } from './python-json';
import { SseParser, sseEventText, type SseEvent } from './sse';
import { OutputBudget, KeptText } from './kept-text';
import { MAX_CHANNELS, UNBOUNDED, type StreamBounds, type StreamRewriter } from './stream';

/** Content types of newline-delimited JSON streams. */
const NDJSON_TYPES = new Set(['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/jsonlines', 'application/x-jsonlines', 'application/stream+json', 'application/x-json-stream']);

/** Keys streaming APIs carry generated text under (OpenAI, Anthropic, LangServe, Vercel AI, Ollama, custom agents). */
const TEXT_KEYS = new Set([
  'delta',
  'content',
  'text',
  'token',
  'tokens',
  'chunk',
  'answer',
  'response',
  'output',
  'output_text',
  'message',
  'completion',
  'generated_text',
  'reasoning',
  'reasoning_content',
  'thinking',
  'thought',
  'summary',
  'partial',
  'result',
  'data',
  'markdown',
]);

/** SSE or NDJSON from the content type; undefined for an answer that is no stream. */
export function streamFormat(contentType: string | undefined): 'sse' | 'ndjson' | undefined {
  if (isEventStream(contentType)) return 'sse';
  const media = (contentType ?? '').split(';')[0].trim().toLowerCase();
  return NDJSON_TYPES.has(media) ? 'ndjson' : undefined;
}

/** The agent's answer text at one place of the response, as guardrails and traces see it. */
export function answerSegment(path: JsonPath, text: string): Segment {
  return { role: 'assistant', kind: 'completion', trusted: true, path, choice: 0, unit: path, text };
}

/** The nearest object key on the path to a string (array indexes skipped). */
function nearestKey(path: JsonPath): string | undefined {
  for (let i = path.length - 1; i >= 0; i--) if (typeof path[i] === 'string') return (path[i] as string).toLowerCase();
  return undefined;
}

/** The text at one JSON location of one kind of event, across events. */
interface Channel {
  key: string;
  path: JsonPath;
  /** Streamed text (held back while it may become a match) rather than values judged one by one. */
  streamed: boolean;
  filter?: ChannelFilter;
  /** Text the client got on this channel, within the stream's kept-text budget. */
  released: KeptText;
  /** Values judged one by one so far (each gets a filter of its own). */
  judged: number;
  /** The event this channel last appeared in, as sent: the shape of an event that carries its held tail. */
  template?: Template;
}

/** An event as the client got it: its SSE fields (none for NDJSON) and its data, parsed JSON or text. */
interface Template {
  sse?: SseEvent;
  /** Event name, or "line": the channel-key prefix. */
  prefix: string;
  json?: { value: unknown };
}

/** A string of an event and the channel it belongs to. */
interface Piece {
  ch: Channel;
  path: JsonPath;
  text: string;
}

const LF = 0x0a;

class InboundStreamRewriter implements StreamRewriter {
  private readonly sse?: SseParser;
  private readonly channels = new Map<string, Channel>();
  /** Per kind of event: JSON data, or text. */
  private readonly modes = new Map<string, 'json' | 'text'>();
  private partial: Buffer[] = [];
  private emitted: string[] = [];
  private heldFrom?: number;
  private verdict?: BlockVerdict;
  private errorSent = false;
  private done = false;
  private failure?: BlockVerdict;
  private partialBytes = 0;
  private readonly budget: OutputBudget;

  constructor(
    private readonly ex: Exchange,
    private readonly format: 'sse' | 'ndjson',
    /** The route's `response` fields; undefined = every string, streamed text recognised by its key. */
    private readonly fields: readonly CompiledJsonPath[] | undefined,
    private readonly inspector: StreamInspector | undefined,
    private readonly bounds: StreamBounds,
  ) {
    this.budget = new OutputBudget(bounds.maxKeptChars);
    if (format === 'sse') {
      this.sse = new SseParser(
        {
          event: (ev) => this.onSse(ev),
          comment: (line) => {
            if (!this.verdict) this.out(`${line}\n\n`);
          },
          overflow: () => this.tooLarge(),
        },
        bounds.maxEventBytes,
      );
    }
  }

  get failed(): BlockVerdict | undefined {
    return this.failure;
  }

  get blocked(): BlockVerdict | undefined {
    return this.verdict;
  }

  push(chunk: Buffer): Buffer | string {
    if (this.done || this.failure) return '';
    if (this.sse) this.sse.push(chunk);
    else this.lines(chunk);
    return this.inspector ? this.take() : chunk;
  }

  end(): Buffer | string {
    if (this.done) return '';
    if (this.sse) this.sse.end();
    else if (this.partial.length > 0 && !this.verdict) this.onLine(Buffer.concat(this.partial), '');
    this.partial = [];
    if (!this.verdict) {
      // A check of the whole answer (Akto) decides whether the held tails go out.
      if (this.inspector?.finalCheck) this.heldFrom = this.emitted.length;
      this.flush();
    }
    this.finish();
    return this.inspector ? this.take() : '';
  }

  release(): string {
    this.heldFrom = undefined;
    return this.take();
  }

  abort(verdict: BlockVerdict): string {
    if (this.done) return '';
    // Without an inspector the client already has the app's bytes, maybe up to the middle of an event or line.
    const midEvent = this.sse ? this.sse.midEvent : this.partial.length > 0;
    const gap = !this.inspector && midEvent ? (this.sse ? '\n\n' : '\n') : '';
    if (this.heldFrom !== undefined) this.emitted = this.emitted.slice(0, this.heldFrom);
    this.heldFrom = undefined;
    this.partial = [];
    if (!this.verdict) this.flush();
    if (!this.verdict) this.emitted.push(this.errorText(verdict));
    this.finish();
    return gap + this.take();
  }

  cut(verdict: BlockVerdict): string {
    this.emitted = this.emitted.slice(0, this.heldFrom ?? this.emitted.length);
    this.heldFrom = undefined;
    this.verdict = verdict;
    this.emitError();
    return this.take();
  }

  /** Output for the client; without an inspector the upstream's bytes go out as they are, so nothing is built. */
  private out(text: string): void {
    if (this.inspector) this.emitted.push(text);
  }

  private take(): string {
    // A local block ends the stream at once: no final check follows it.
    const upTo = this.verdict ? this.emitted.length : (this.heldFrom ?? this.emitted.length);
    if (upTo === 0) return '';
    const out = this.emitted.slice(0, upTo).join('');
    this.emitted = this.emitted.slice(upTo);
    if (this.heldFrom !== undefined) this.heldFrom = 0;
    return out;
  }

  /** NDJSON: whole lines, split as bytes (a chunk may end inside a UTF-8 character), each with its line end. */
  private lines(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(LF); nl !== -1 && !this.verdict; nl = chunk.indexOf(LF, start)) {
      this.partial.push(chunk.subarray(start, nl));
      const line = this.partial.length === 1 ? this.partial[0] : Buffer.concat(this.partial);
      this.partial = [];
      const cr = line.length > 0 && line[line.length - 1] === 0x0d;
      this.onLine(cr ? line.subarray(0, -1) : line, cr ? '\r\n' : '\n');
      start = nl + 1;
    }
    if (start < chunk.length && !this.verdict) {
      this.partial.push(chunk.subarray(start));
      this.partialBytes = start === 0 ? this.partialBytes + chunk.length : chunk.length - start;
      // An endless line never grows memory: past the bound the stream ends with an error (as egress SSE does).
      if (this.partialBytes > this.bounds.maxEventBytes) this.tooLarge();
    } else this.partialBytes = 0;
  }

  private tooLarge(): void {
    this.failure ??= { status: 502, type: 'upstream_error', code: 'stream_event_too_large', message: `an event of the app's stream exceeds MAX_RESPONSE_SIZE (${this.bounds.maxEventBytes} bytes)` };
  }

  private onLine(bytes: Buffer, eol: string): void {
    const line = bytes.toString('utf8');
    if (line.trim() === '') return this.out(line + eol);
    const data = this.filterData({ prefix: 'line' }, line);
    if (data !== undefined) this.out(data + eol);
    if (this.verdict) this.emitError();
  }

  private onSse(ev: SseEvent): void {
    if (this.verdict) return;
    if (!ev.hasData) return this.out(sseEventText(ev, undefined));
    const data = this.filterData({ sse: ev, prefix: ev.event ?? 'message' }, ev.data);
    if (data !== undefined) this.out(sseEventText(ev, data));
    if (this.verdict) this.emitError();
  }

  /**
   * The data of one event with every inspected string replaced by what its channel releases; undefined when a held
   * tail blocked before it (the event is not sent).
   */
  private filterData(template: Template, data: string): string | undefined {
    let value: unknown;
    let parsed = true;
    try {
      value = JSON.parse(data);
    } catch {
      parsed = false;
    }
    // A kind of event is JSON or text by its first data: a plain-text stream whose token happens to parse as JSON
    // (`"done"`, `42`) stays text, so one answer never splits over two channels.
    let mode = this.modes.get(template.prefix);
    if (!mode) this.modes.set(template.prefix, (mode = parsed && value !== null && typeof value !== 'number' && typeof value !== 'boolean' ? 'json' : 'text'));
    const json = mode === 'json' && parsed && value !== null && (typeof value === 'object' || typeof value === 'string');
    // Anything else is streamed text as it stands (a bare "4111" too), except the `[DONE]` marker.
    const text = !json && data.trim() !== '[DONE]';
    const pieces: Piece[] = json ? this.piecesOf(template.prefix, value) : text ? [{ ch: this.channel(`${template.prefix}|[]`, [], true), path: [], text: data }] : [];
    // An event without streamed text ends the text before it: held tails go out first.
    if (!pieces.some((p) => p.ch.streamed && p.text !== '')) this.flush();
    if (this.verdict) return undefined;
    if (json) template.json = { value };
    let changed = false;
    for (const p of pieces) {
      p.ch.template = template;
      // After a block the rest of the event is not sent unread.
      const r = this.verdict ? '' : p.ch.streamed ? this.feed(p.ch, p.text) : this.judge(p.ch, p.text);
      if (r === p.text) continue;
      changed = true;
      if (!json) return r;
      if (p.path.length === 0) template.json!.value = r;
      else setAtPath(value, p.path, r);
    }
    return changed && json ? JSON.stringify(template.json!.value) : data;
  }

  private piecesOf(prefix: string, value: unknown): Piece[] {
    return selectStrings(value, this.fields, MAX_JSON_DEPTH).texts.map((t) => {
      const key = nearestKey(t.path);
      const streamed = this.fields !== undefined || (key !== undefined ? TEXT_KEYS.has(key) : true);
      return { ch: this.channel(`${prefix}|${JSON.stringify(t.path)}`, t.path, streamed), path: t.path, text: t.text };
    });
  }

  private channel(key: string, path: JsonPath, streamed: boolean): Channel {
    let ch = this.channels.get(key);
    if (!ch) {
      this.channels.set(key, (ch = { key, path, streamed, released: new KeptText(this.budget), judged: 0 }));
      if (this.channels.size > MAX_CHANNELS) this.failure ??= { status: 502, type: 'upstream_error', code: 'stream_too_many_channels', message: `the app's stream opened more than ${MAX_CHANNELS} text channels` };
    }
    return ch;
  }

  /** Streamed text for one channel: what the client gets now; sets the verdict when the filter blocks. */
  private feed(ch: Channel, text: string): string {
    if (!this.inspector) {
      ch.released.add(text);
      return text;
    }
    ch.filter ??= this.inspector.channel(ch.key, 'content');
    const r = ch.filter.push(text);
    return this.keep(ch, r.text, r.block);
  }

  /** A value judged on its own, at once: nothing of it waits for the next event. */
  private judge(ch: Channel, text: string): string {
    if (!this.inspector) {
      ch.released.add(text);
      return text;
    }
    const filter = this.inspector.channel(`${ch.key}#${ch.judged++}`, 'content');
    const head = filter.push(text);
    const out = this.keep(ch, head.text, head.block);
    if (this.verdict) return out;
    const tail = filter.end();
    return out + this.keep(ch, tail.text, tail.block);
  }

  private keep(ch: Channel, text: string, block: BlockVerdict | undefined): string {
    ch.released.add(text);
    if (block) this.verdict ??= block;
    return text;
  }

  /** Ends every streamed channel; held tails go out in events shaped like their channels' last ones. */
  private flush(): void {
    if (!this.inspector) return;
    const tails = new Map<Template, Array<[Channel, string]>>();
    for (const ch of this.channels.values()) {
      if (this.verdict) break;
      if (!ch.filter) continue;
      const r = ch.filter.end();
      ch.filter = undefined;
      const text = this.keep(ch, r.text, r.block);
      if (text === '' || !ch.template) continue;
      const list = tails.get(ch.template) ?? [];
      list.push([ch, text]);
      tails.set(ch.template, list);
    }
    for (const [template, list] of tails) this.out(this.tailEvent(template, list));
    if (this.verdict) this.emitError();
  }

  /** An event like `template` carrying held tails; its other streamed texts are emptied, its other values kept. */
  private tailEvent(template: Template, tails: Array<[Channel, string]>): string {
    let data: string;
    if (template.json) {
      let value = structuredClone(template.json.value);
      const own = new Map(tails.map(([ch, text]) => [ch, text]));
      for (const p of this.piecesOf(template.prefix, value)) {
        const next = own.get(p.ch) ?? (p.ch.streamed ? '' : p.text);
        if (next === p.text) continue;
        if (p.path.length === 0) value = next;
        else setAtPath(value, p.path, next);
      }
      data = JSON.stringify(value);
    } else data = tails.map(([, text]) => text).join('');
    return template.sse ? sseEventText({ ...template.sse, id: undefined }, data) : `${data}\n`;
  }

  private emitError(): void {
    if (!this.verdict || this.errorSent) return;
    this.errorSent = true;
    this.out(this.errorText(this.verdict));
    this.finish();
  }

  private errorText(verdict: BlockVerdict): string {
    const body = JSON.stringify(errorPayload('openai', verdict, 'response'));
    return this.format === 'sse' ? `event: error\ndata: ${body}\n\n` : `${body}\n`;
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.ex.output = [...this.channels.values()].map((ch) => answerSegment(ch.path, ch.released.toString()));
    if (this.budget.truncated) this.ex.notes.outputTruncated = `more than ${MAX_CHANNELS} channels or the kept-text bound`;
  }
}

export function createInboundStreamRewriter(ex: Exchange, format: 'sse' | 'ndjson', fields: readonly CompiledJsonPath[] | undefined, inspector?: StreamInspector, bounds: StreamBounds = UNBOUNDED): StreamRewriter {
  return new InboundStreamRewriter(ex, format, fields, inspector, bounds);
}
