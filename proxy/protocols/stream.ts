import type { ChannelFilter, ChannelKind, StreamInspector } from './stream-filter';
import { errorPayload } from './errors';
import type { BlockVerdict, Exchange, JsonPath, Segment, SegmentKind } from './exchange';
import { echoedPrompt } from './prompt-echo';
import { logprobTexts, usageFrom } from './response';
import { SseParser, type SseEvent } from './sse';
import { isObject } from '../../common/json';

export interface StreamRewriter {
  /** Bytes to send to the client now ('' or empty Buffer allowed). With no inspector, returns the chunk itself. */
  push(chunk: Buffer): Buffer | string;
  /** Upstream body ended: flush held text (in the client's own chunk format), return the final bytes. */
  end(): Buffer | string;
  /** Set when a ChannelFilter blocked: the stream was closed in the client's dialect; the server stops reading upstream. */
  readonly blocked?: BlockVerdict;
  /** With an inspector's finalCheck, after end(): the held terminal events, to send when the check passed. */
  release(): string;
  /** With an inspector's finalCheck, after end(): drops the held terminal events and closes the stream with this verdict. */
  cut(verdict: BlockVerdict): string;
}

type Obj = Record<string, unknown>;

/** Channel keys handed to StreamInspector.channel: `content:<choice>` and `tool:<choice>:<tool call index>`, among others. */
export function channelKey(choice: number, toolIndex?: number): string {
  return toolIndex === undefined ? `content:${choice}` : `tool:${choice}:${toolIndex}`;
}

/**
 * Where a channel's released text goes in an OpenAI choice: a delta field (content, reasoning_content,
 * reasoning, refusal), the audio transcript, a tool call's arguments or name, the legacy function call, or a
 * completions choice's text. Token lists (logprobs) are never re-emitted: their channels only gate them.
 */
type Place =
  | { at: 'delta'; field: string }
  | { at: 'audio' }
  | { at: 'tool'; index: number; field: 'arguments' | 'name' }
  | { at: 'function_call'; field: 'arguments' | 'name' }
  | { at: 'text' }
  | { at: 'none' };

interface Channel {
  key: string;
  kind: ChannelKind;
  choice: number;
  place: Place;
  /** JSON location recorded for the output segment (and, for the Responses API, the item it belongs to). */
  path: JsonPath;
  filter?: ChannelFilter;
  /** Text the client got on this channel (everything, when nothing inspects the stream). */
  released: string[];
  /** Text the upstream sent on this channel (kept only while inspecting). */
  received: string[];
  ended: boolean;
  /** Responses API: the last delta event of this channel, the template for one we have to add. */
  lastDelta?: { ev: SseEvent; obj: Obj };
}

/** Text released during the event being handled, to put in a closing chunk if the stream is blocked mid-event. */
interface Release {
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

/** Text fields of a chat delta, with the channel kind each is. */
const DELTA_FIELDS: ReadonlyArray<[string, ChannelKind]> = [
  ['content', 'content'],
  ['reasoning_content', 'reasoning'],
  ['reasoning', 'reasoning'],
  ['refusal', 'refusal'],
];

function index(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isInteger(v) ? v : fallback;
}

function finished(reason: unknown): boolean {
  return typeof reason === 'string' && reason !== '';
}

/**
 * Parses an upstream SSE body incrementally (TGI native events, OpenAI chat and completions chunks, OpenAI
 * Responses API events, both `data:` dialects) and, when an inspector is given, re-emits each event with
 * every text the client reads replaced by what the channel filters release: content, reasoning, refusals,
 * tool-call arguments and names, audio transcripts, error messages. Token lists (logprobs, top tokens) are
 * scanned as channels of their own and dropped from an event whose text was held or changed. Without an
 * inspector the bytes pass through unchanged; only the output, usage and tool-call count are collected.
 */
class Rewriter implements StreamRewriter {
  private readonly parser: SseParser;
  private readonly channels = new Map<string, Channel>();
  private readonly toolKeys = new Set<string>();
  private readonly finishedChoices = new Set<number>();
  private emitted: string[] = [];
  /** Index in `emitted` from which the terminal events are held for the inspector's finalCheck. */
  private heldFrom?: number;
  private readonly holdEnd: boolean;
  private verdict?: BlockVerdict;
  private done = false;
  /** Last OpenAI chunk seen: the template for chunks we have to add. */
  private template?: Obj;
  private chatChunks = true;
  private tgiNative = false;
  private responsesApi = false;
  /** Responses API: the response object of the last lifecycle event, the template of a closing one. */
  private response?: Obj;
  private sequence = 0;
  private space = true;
  private lastTokenId = 0;
  private lastIndex = 0;
  private oneShots = 0;

  constructor(
    private readonly ex: Exchange,
    private readonly inspector?: StreamInspector,
  ) {
    this.holdEnd = inspector?.finalCheck !== undefined;
    this.parser = new SseParser({
      event: (ev) => this.onEvent(ev),
      comment: (line) => {
        if (this.inspector && !this.verdict) this.emitted.push(`${line}\n\n`);
      },
    });
  }

  get blocked(): BlockVerdict | undefined {
    return this.verdict;
  }

  push(chunk: Buffer): Buffer | string {
    if (this.done) return '';
    this.parser.push(chunk);
    if (!this.inspector) return chunk;
    return this.take();
  }

  end(): Buffer | string {
    if (this.done) return '';
    this.parser.end();
    if (!this.verdict) this.flushAll();
    this.finish();
    return this.take();
  }

  release(): string {
    this.heldFrom = undefined;
    return this.take();
  }

  cut(verdict: BlockVerdict): string {
    this.emitted = [];
    this.heldFrom = undefined;
    this.verdict = verdict;
    // The held finish events are dropped: every choice ends with the verdict.
    this.finishedChoices.clear();
    if (this.tgiNative) this.blockTgi([]);
    else this.blockOpenAi([]);
    return this.take();
  }

  /** From this event on, output waits for the final check (a local block releases it: no check follows). */
  private holdTerminal(): void {
    if (this.holdEnd && this.heldFrom === undefined) this.heldFrom = this.emitted.length;
  }

  private take(): string {
    const upTo = this.verdict ? this.emitted.length : (this.heldFrom ?? this.emitted.length);
    if (upTo === 0) return '';
    const out = upTo === 1 ? this.emitted[0] : this.emitted.slice(0, upTo).join('');
    this.emitted = upTo === this.emitted.length ? [] : this.emitted.slice(upTo);
    if (this.heldFrom !== undefined) this.heldFrom = 0;
    return out;
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    const output: Segment[] = [];
    for (const ch of this.channels.values()) {
      if (ch.kind === 'token_list' || ch.kind === 'error') continue;
      output.push({ role: 'assistant', kind: SEGMENT_KIND[ch.kind], trusted: true, path: ch.path, choice: ch.choice, text: ch.released.join('') });
    }
    this.ex.output = output;
    this.ex.toolCalls = this.toolKeys.size;
  }

  private onEvent(ev: SseEvent): void {
    if (this.verdict) return;
    this.space = ev.dataSpace;
    if (!ev.hasData) return this.emitRaw(ev);
    if (ev.data === '[DONE]') {
      this.holdTerminal();
      this.flushAll();
      return this.emitRaw(ev);
    }
    let obj: unknown;
    try {
      obj = JSON.parse(ev.data);
    } catch {
      return this.emitRaw(ev);
    }
    if (!isObject(obj)) return this.emitRaw(ev);
    if (typeof obj.type === 'string' && (obj.type.startsWith('response.') || (obj.type === 'error' && this.responsesApi))) return this.onResponsesEvent(obj, ev);
    if ('error' in obj) return this.onError(obj, ev);
    if (Array.isArray(obj.choices)) return this.onChunk(obj, obj.choices, ev);
    if ('token' in obj || 'generated_text' in obj) return this.onToken(obj, ev);
    this.emitRaw(ev);
  }

  private channel(key: string, kind: ChannelKind, choice: number, place: Place, path: JsonPath): Channel {
    let ch = this.channels.get(key);
    if (!ch) {
      ch = { key, kind, choice, place, path, released: [], received: [], ended: false };
      this.channels.set(key, ch);
    }
    return ch;
  }

  /** Feeds text to a channel; returns what the client gets now. Sets the verdict when the filter blocks. */
  private feed(ch: Channel, text: string, got: Release[]): string {
    if (!this.inspector) {
      ch.released.push(text);
      return text;
    }
    if (ch.ended) {
      // More text after the channel ended (an upstream that reopens a part): scanned on a fresh filter, never dropped.
      ch.ended = false;
      ch.filter = undefined;
    }
    ch.filter ??= this.inspector.channel(ch.key, ch.kind);
    ch.received.push(text);
    const r = ch.filter.push(text);
    this.keep(ch, r.text, got);
    if (r.block) this.verdict = r.block;
    return r.text;
  }

  /** Ends a channel's filter; returns the held text it releases. */
  private close(ch: Channel, got: Release[]): string {
    if (ch.ended) return '';
    ch.ended = true;
    if (!this.inspector || !ch.filter) return '';
    const r = ch.filter.end();
    this.keep(ch, r.text, got);
    if (r.block) this.verdict = r.block;
    return r.text;
  }

  /** A value that arrives whole (a tool name, an error message): scanned and decided at once. */
  private whole(key: string, kind: ChannelKind, choice: number, place: Place, path: JsonPath, text: string, got: Release[]): string {
    const ch = this.channel(`${key}#${this.oneShots++}`, kind, choice, place, path);
    const head = this.feed(ch, text, got);
    return this.verdict ? head : head + this.close(ch, got);
  }

  private keep(ch: Channel, text: string, got: Release[]): void {
    if (text === '') return;
    ch.released.push(text);
    got.push({ ch, text });
  }

  /** An in-stream error event: its message is text the client reads too. */
  private onError(obj: Obj, ev: SseEvent): void {
    this.holdTerminal();
    const err = obj.error;
    const holder = isObject(err) ? err : obj;
    const field = isObject(err) ? 'message' : 'error';
    const message = holder[field];
    this.ex.notes.streamError = typeof message === 'string' ? message : 'error event';
    this.flushAll();
    if (this.verdict) return;
    if (typeof message === 'string' && this.inspector) {
      const got: Release[] = [];
      const r = this.whole('error', 'error', 0, { at: 'none' }, [field], message, got);
      if (this.verdict) return this.tgiNative ? this.blockTgi([]) : this.blockOpenAi([]);
      if (r !== message) {
        holder[field] = r;
        return this.emitJson(ev, obj);
      }
    }
    this.emitRaw(ev);
  }

  /** Feeds the token lists of a choice's logprobs; true when any of them was held or changed. */
  private feedTokenLists(ci: number, logprobs: unknown, got: Release[]): boolean {
    let changed = false;
    for (const { list, texts } of logprobTexts(logprobs)) {
      texts.forEach((text, rank) => {
        if (text === '' || this.verdict) return;
        const ch = this.channel(`logprobs:${ci}:${list}:${rank}`, 'token_list', ci, { at: 'none' }, ['choices', ci, 'logprobs']);
        if (this.feed(ch, text, got) !== text) changed = true;
      });
    }
    return changed;
  }

  /** An OpenAI chat or completions chunk (also the usage chunk with no choices). */
  private onChunk(obj: Obj, choices: unknown[], ev: SseEvent): void {
    this.template = obj;
    const usage = usageFrom(obj.usage, 'stream');
    if (usage) this.ex.usage = usage;
    if (choices.length === 0 || choices.some((c) => isObject(c) && finished(c.finish_reason))) this.holdTerminal();
    if (choices.length === 0) {
      this.flushAll();
      return this.emitRaw(ev);
    }
    const got: Release[] = [];
    let changed = false;
    for (let i = 0; i < choices.length && !this.verdict; i++) {
      const c = choices[i];
      if (!isObject(c)) continue;
      const ci = index(c.index, i);
      let choiceChanged = false;
      const set = (holder: Obj, field: string, value: string, kind: ChannelKind, place: Place, path: JsonPath): void => {
        if (value === '' || this.verdict) return;
        const ch = this.channel(this.keyOf(ci, place), kind, ci, place, path);
        const r = this.feed(ch, value, got);
        if (r !== value) {
          holder[field] = r;
          choiceChanged = true;
        }
      };
      const delta = isObject(c.delta) ? c.delta : undefined;
      if (delta) {
        for (const [field, kind] of DELTA_FIELDS) {
          if (typeof delta[field] === 'string') set(delta, field, delta[field] as string, kind, { at: 'delta', field }, ['choices', ci, 'delta', field]);
        }
        const audio = isObject(delta.audio) ? delta.audio : undefined;
        if (audio && typeof audio.transcript === 'string') set(audio, 'transcript', audio.transcript, 'transcript', { at: 'audio' }, ['choices', ci, 'delta', 'audio', 'transcript']);
        if (Array.isArray(delta.tool_calls)) {
          for (let j = 0; j < delta.tool_calls.length && !this.verdict; j++) {
            const tc = delta.tool_calls[j];
            if (!isObject(tc)) continue;
            const ti = index(tc.index, j);
            this.toolKeys.add(channelKey(ci, ti));
            const fn = isObject(tc.function) ? tc.function : undefined;
            if (!fn) continue;
            if (typeof fn.name === 'string' && fn.name !== '') {
              const r = this.whole(`tool_name:${ci}:${ti}`, 'tool_name', ci, { at: 'tool', index: ti, field: 'name' }, ['choices', ci, 'delta', 'tool_calls', ti, 'function', 'name'], fn.name, []);
              if (r !== fn.name) {
                fn.name = r;
                choiceChanged = true;
              }
            }
            if (typeof fn.arguments === 'string') {
              set(fn, 'arguments', fn.arguments, 'tool_arguments', { at: 'tool', index: ti, field: 'arguments' }, ['choices', ci, 'delta', 'tool_calls', ti, 'function', 'arguments']);
            }
          }
        }
        const legacy = isObject(delta.function_call) ? delta.function_call : undefined;
        if (legacy && typeof legacy.arguments === 'string') {
          set(legacy, 'arguments', legacy.arguments, 'tool_arguments', { at: 'function_call', field: 'arguments' }, ['choices', ci, 'delta', 'function_call', 'arguments']);
        }
      } else if (typeof c.text === 'string') {
        this.chatChunks = false;
        set(c, 'text', c.text, 'content', { at: 'text' }, ['choices', ci, 'text']);
      }
      if (!this.verdict && this.feedTokenLists(ci, c.logprobs, [])) choiceChanged = true;
      if (!this.verdict && finished(c.finish_reason)) {
        this.finishedChoices.add(ci);
        for (const ch of this.channels.values()) {
          if (this.verdict) break;
          if (ch.choice !== ci || ch.ended) continue;
          const tail = this.close(ch, got);
          if (tail === '' || ch.place.at === 'none') continue;
          choiceChanged = true;
          this.appendTo(c, ch, tail);
        }
      }
      if (choiceChanged) {
        // Logprobs would reveal held or rewritten tokens.
        if ('logprobs' in c) c.logprobs = null;
        changed = true;
      }
    }
    if (this.verdict) return this.blockOpenAi(got);
    if (!this.inspector) return;
    if (changed) this.emitJson(ev, obj);
    else this.emitRaw(ev);
  }

  private keyOf(ci: number, place: Place): string {
    switch (place.at) {
      case 'delta':
        return place.field === 'content' ? channelKey(ci) : `${place.field}:${ci}`;
      case 'text':
        return channelKey(ci);
      case 'tool':
        return place.field === 'arguments' ? channelKey(ci, place.index) : `tool_name:${ci}:${place.index}`;
      case 'function_call':
        return `function_call:${ci}`;
      case 'audio':
        return `transcript:${ci}`;
      case 'none':
        return `none:${ci}`;
    }
  }

  /** Puts released tail text into an OpenAI choice object (delta field, tool call, or completions text). */
  private appendTo(c: Obj, ch: Channel, text: string): void {
    const add = (holder: Obj, field: string): void => {
      holder[field] = (typeof holder[field] === 'string' ? holder[field] : '') + text;
    };
    const place = ch.place;
    if (place.at === 'text' || !this.chatChunks) return add(c, 'text');
    const delta: Obj = isObject(c.delta) ? c.delta : (c.delta = {});
    switch (place.at) {
      case 'delta':
        return add(delta, place.field);
      case 'audio':
        return add(isObject(delta.audio) ? delta.audio : (delta.audio = {}), 'transcript');
      case 'function_call':
        return add(isObject(delta.function_call) ? delta.function_call : (delta.function_call = {}), place.field);
      case 'tool': {
        const calls: unknown[] = Array.isArray(delta.tool_calls) ? delta.tool_calls : (delta.tool_calls = []);
        let tc = calls.find((t, j) => isObject(t) && index(t.index, j) === place.index) as Obj | undefined;
        if (!tc) calls.push((tc = { index: place.index, function: { arguments: '' } }));
        return add(isObject(tc.function) ? tc.function : (tc.function = {}), place.field);
      }
      case 'none':
        return;
    }
  }

  /** A chunk like the last one seen, carrying the given choices. */
  private chunk(choices: Obj[]): Obj {
    const t = this.template ?? { object: this.chatChunks ? 'chat.completion.chunk' : 'text_completion' };
    const c: Obj = { ...t, choices };
    if ('usage' in t) c.usage = null;
    return c;
  }

  private emptyChoice(ci: number, finishReason: string | null): Obj {
    return this.chatChunks ? { index: ci, delta: {}, logprobs: null, finish_reason: finishReason } : { index: ci, text: '', logprobs: null, finish_reason: finishReason };
  }

  /** Choices carrying released text, one per choice, in first-seen order. */
  private choicesFor(got: Release[], finishReason: string | null): Map<number, Obj> {
    const byChoice = new Map<number, Obj>();
    for (const { ch, text } of got) {
      if (ch.place.at === 'none') continue;
      let c = byChoice.get(ch.choice);
      if (!c) byChoice.set(ch.choice, (c = this.emptyChoice(ch.choice, finishReason)));
      this.appendTo(c, ch, text);
    }
    return byChoice;
  }

  /** Ends every open channel and emits what they still held, before the stream's end, usage or error. */
  private flushAll(): void {
    if (!this.inspector || this.done) return;
    const got: Release[] = [];
    for (const ch of this.channels.values()) {
      if (this.verdict) break;
      this.close(ch, got);
    }
    if (this.responsesApi) {
      if (this.verdict) this.blockResponses(got);
      else for (const { ch, text } of got) this.emitResponsesDelta(ch, text);
      return;
    }
    if (this.tgiNative) {
      const text = got.filter((g) => g.ch.place.at !== 'none').map((g) => g.text).join('');
      if (text !== '') this.emitToken(text);
      if (this.verdict) this.blockTgi([]);
      return;
    }
    if (this.verdict) return this.blockOpenAi(got);
    const choices = [...this.choicesFor(got, null).values()];
    if (choices.length > 0) this.emitObject(choices);
  }

  /** OpenAI dialect block: released text, finish_reason "content_filter" on every open choice, then [DONE]. */
  private blockOpenAi(got: Release[]): void {
    if (this.tgiNative) return this.blockTgi(got);
    if (this.responsesApi) return this.blockResponses(got);
    const byChoice = this.choicesFor(got, 'content_filter');
    for (const ch of this.channels.values()) {
      if (!this.finishedChoices.has(ch.choice) && !byChoice.has(ch.choice)) byChoice.set(ch.choice, this.emptyChoice(ch.choice, 'content_filter'));
    }
    if (byChoice.size === 0) byChoice.set(0, this.emptyChoice(0, 'content_filter'));
    if (this.inspector) {
      this.emitObject([...byChoice.values()]);
      this.emitted.push(`${this.prefix()}[DONE]\n\n`);
    }
    this.finish();
  }

  /** A TGI native event: token text per event, the full text and details on the last one. */
  private onToken(obj: Obj, ev: SseEvent): void {
    this.tgiNative = true;
    if (typeof obj.generated_text === 'string') this.holdTerminal();
    this.lastIndex = index(obj.index, this.lastIndex + 1);
    const got: Release[] = [];
    let changed = false;
    const token = isObject(obj.token) ? obj.token : undefined;
    const ch = this.channel(channelKey(0), 'content', 0, { at: 'text' }, ['token', 'text']);
    if (token && typeof token.text === 'string' && token.text !== '' && token.special !== true) {
      this.lastTokenId = index(token.id, this.lastTokenId);
      const r = this.feed(ch, token.text, got);
      if (r !== token.text) {
        token.text = r;
        changed = true;
      }
    }
    if (!this.verdict && Array.isArray(obj.top_tokens)) {
      // Alternatives per rank: text the client reads, dropped when any rank was held or changed.
      let altered = false;
      obj.top_tokens.forEach((t, k) => {
        if (this.verdict || !isObject(t) || typeof t.text !== 'string' || t.text === '' || t.special === true) return;
        const alt = this.channel(`top_tokens:0:${k}`, 'token_list', 0, { at: 'none' }, ['top_tokens']);
        if (this.feed(alt, t.text, []) !== t.text) altered = true;
      });
      if (altered || changed) {
        obj.top_tokens = [];
        changed = true;
      }
    }
    if (this.verdict) return this.blockTgi(got);
    if (typeof obj.generated_text === 'string') {
      const details = isObject(obj.details) ? obj.details : undefined;
      if (details && typeof details.generated_tokens === 'number') {
        const prompt = typeof details.input_length === 'number' ? details.input_length : undefined;
        this.ex.usage = {
          promptTokens: prompt,
          completionTokens: details.generated_tokens,
          totalTokens: prompt === undefined ? undefined : prompt + details.generated_tokens,
          source: 'stream',
        };
      }
      if (this.inspector) {
        const tail = this.close(ch, got);
        for (const c of this.channels.values()) if (c !== ch) this.close(c, []);
        if (this.verdict) return this.blockTgi(got);
        if (tail !== '') {
          if (token && token.special !== true && typeof token.text === 'string') {
            token.text += tail;
            changed = true;
          } else this.emitToken(tail);
        }
        const released = ch.released.join('');
        if (released !== ch.received.join('')) {
          obj.generated_text = echoedPrompt(this.ex, obj.generated_text) + released;
          changed = true;
        }
      }
    }
    if (!this.inspector) return;
    if (changed) this.emitJson(ev, obj);
    else this.emitRaw(ev);
  }

  /** TGI native block: the text released before it as a token event, then an error event; no [DONE]. */
  private blockTgi(got: Release[]): void {
    if (this.inspector && this.verdict) {
      const text = got
        .filter((g) => g.ch.place.at !== 'none')
        .map((g) => g.text)
        .join('');
      if (text !== '') this.emitToken(text);
      // A stream is only ever cut for its answer: huggingface_hub raises GenerationError for `generation`.
      this.emitted.push(`${this.prefix()}${JSON.stringify(errorPayload('tgi', this.verdict, 'response'))}\n\n`);
    }
    this.finish();
  }

  private emitToken(text: string): void {
    this.emitObject({ index: this.lastIndex, token: { id: this.lastTokenId, text, logprob: 0, special: false }, generated_text: null, details: null });
  }

  // ---- OpenAI Responses API ----------------------------------------------------------------------

  /** The channel a Responses API text event belongs to, from its type and indexes. */
  private responsesChannel(obj: Obj): { ch: Channel; field: string } | undefined {
    const type = obj.type as string;
    const oi = index(obj.output_index, 0);
    const ci = index(obj.content_index, 0);
    const si = index(obj.summary_index, 0);
    const spec: Array<[RegExp, string, ChannelKind, JsonPath, string]> = [
      [/^response\.output_text\.(delta|done)$/, `output_text:${oi}:${ci}`, 'content', ['output', oi, 'content', ci, 'text'], 'text'],
      [/^response\.refusal\.(delta|done)$/, `refusal:${oi}:${ci}`, 'refusal', ['output', oi, 'content', ci, 'refusal'], 'refusal'],
      [/^response\.reasoning_summary_text\.(delta|done)$/, `summary:${oi}:${si}`, 'reasoning', ['output', oi, 'summary', si, 'text'], 'text'],
      [/^response\.reasoning_text\.(delta|done)$/, `reasoning_text:${oi}:${ci}`, 'reasoning', ['output', oi, 'content', ci, 'text'], 'text'],
      [/^response\.function_call_arguments\.(delta|done)$/, `arguments:${oi}`, 'tool_arguments', ['output', oi, 'arguments'], 'arguments'],
    ];
    for (const [re, key, kind, path, field] of spec) {
      if (re.test(type)) return { ch: this.channel(key, kind, oi, { at: 'none' }, path), field };
    }
    return undefined;
  }

  private onResponsesEvent(obj: Obj, ev: SseEvent): void {
    this.responsesApi = true;
    const type = obj.type as string;
    if (typeof obj.sequence_number === 'number') this.sequence = obj.sequence_number;
    if (isObject(obj.response)) this.response = obj.response;
    const got: Release[] = [];
    const target = this.responsesChannel(obj);
    if (target && type.endsWith('.delta') && typeof obj.delta === 'string') {
      const { ch } = target;
      ch.lastDelta = { ev, obj };
      if (obj.delta === '') return this.emitRaw(ev);
      const r = this.feed(ch, obj.delta, got);
      if (this.verdict) return this.blockResponses(got);
      if (r === obj.delta) return this.emitRaw(ev);
      obj.delta = r;
      if ('logprobs' in obj) obj.logprobs = [];
      return this.emitJson(ev, obj);
    }
    if (target && type.endsWith('.done')) {
      // The full text of a part: its channel ends here, and the client gets the released text.
      this.rewriteTexts(obj);
      if (this.verdict) return this.blockResponses([]);
      return this.emitJson(ev, obj);
    }
    if (type === 'error' || /^response\.(completed|incomplete|failed)$/.test(type)) this.holdTerminal();
    if (type === 'error' && typeof obj.message === 'string' && this.inspector) {
      const r = this.whole('error', 'error', 0, { at: 'none' }, ['message'], obj.message, got);
      if (this.verdict) return this.blockResponses(got);
      obj.message = r;
      return this.emitJson(ev, obj);
    }
    if (/^response\.(completed|incomplete|failed)$/.test(type)) this.flushAll();
    if (this.verdict) return;
    if (/^response\.(output_item\.(added|done)|content_part\.(added|done)|completed|incomplete|failed)$/.test(type) && this.inspector) {
      this.scanNames(obj, got);
      if (!this.verdict) this.rewriteTexts(obj, !type.endsWith('.added'));
      if (this.verdict) return this.blockResponses(got);
      return this.emitJson(ev, obj);
    }
    this.emitRaw(ev);
  }

  /** Function names in Responses API items arrive whole: scanned once each. */
  private scanNames(obj: Obj, got: Release[]): void {
    const items = isObject(obj.item) ? [obj.item] : isObject(obj.response) && Array.isArray(obj.response.output) ? obj.response.output : [];
    items.forEach((item, i) => {
      if (this.verdict || !isObject(item) || typeof item.name !== 'string' || item.name === '') return;
      const oi = index(obj.output_index, i);
      const r = this.whole(`name:${oi}`, 'tool_name', oi, { at: 'none' }, ['output', oi, 'name'], item.name, got);
      item.name = r;
    });
  }

  /**
   * Replaces every full text in a Responses API event (done events, parts, items, the final response) by what
   * was released. A channel still open is ended here, its tail sent as a delta first.
   */
  private rewriteTexts(obj: Obj, final = true): void {
    // The released text of a channel (ended here if still open, its tail sent as a delta first); a text no
    // delta carried is scanned whole on a channel of its own. An `added` event opens a part, whose text (if it
    // has any yet) is scanned on its own: the part's deltas are still to come.
    const released = (key: string, kind: ChannelKind, path: JsonPath, text: string): string => {
      if (!final) return text === '' ? text : this.whole(`${key}:added`, kind, index(path[1], 0), { at: 'none' }, path, text, []);
      let ch = this.channels.get(key);
      if (!ch) {
        ch = this.channel(key, kind, index(path[1], 0), { at: 'none' }, path);
        this.feed(ch, text, []);
      }
      if (!ch.ended) {
        const got: Release[] = [];
        this.close(ch, got);
        for (const g of got) this.emitResponsesDelta(g.ch, g.text);
      }
      return ch.released.join('');
    };
    const oi = index(obj.output_index, 0);
    const ci = index(obj.content_index, 0);
    const target = this.responsesChannel(obj);
    if (target && typeof obj[target.field] === 'string') obj[target.field] = released(target.ch.key, target.ch.kind, target.ch.path, obj[target.field] as string);
    const fixPart = (part: Obj, o: number, j: number, reasoning: boolean): void => {
      if (typeof part.text === 'string') {
        const key = reasoning || this.channels.has(`reasoning_text:${o}:${j}`) ? `reasoning_text:${o}:${j}` : `output_text:${o}:${j}`;
        part.text = released(key, reasoning ? 'reasoning' : 'content', ['output', o, 'content', j, 'text'], part.text);
      }
      if (typeof part.refusal === 'string') part.refusal = released(`refusal:${o}:${j}`, 'refusal', ['output', o, 'content', j, 'refusal'], part.refusal);
      // Token lists cannot follow a rewritten text.
      if (Array.isArray(part.logprobs)) part.logprobs = [];
    };
    const fixItem = (item: Obj, o: number): void => {
      if (typeof item.arguments === 'string') item.arguments = released(`arguments:${o}`, 'tool_arguments', ['output', o, 'arguments'], item.arguments);
      (Array.isArray(item.content) ? item.content : []).forEach((part, j) => isObject(part) && fixPart(part, o, j, item.type === 'reasoning'));
      (Array.isArray(item.summary) ? item.summary : []).forEach((part, j) => {
        if (isObject(part) && typeof part.text === 'string') part.text = released(`summary:${o}:${j}`, 'reasoning', ['output', o, 'summary', j, 'text'], part.text);
      });
    };
    if (isObject(obj.part)) fixPart(obj.part, oi, ci, obj.part.type === 'reasoning_text');
    if (isObject(obj.item)) fixItem(obj.item, oi);
    const response = isObject(obj.response) ? obj.response : undefined;
    if (response) {
      (Array.isArray(response.output) ? response.output : []).forEach((item, o) => isObject(item) && fixItem(item, o));
      if (typeof response.output_text === 'string') {
        const parts = [...this.channels.values()].filter((c) => c.key.startsWith('output_text:'));
        response.output_text = parts.length > 0 ? parts.map((c) => c.released.join('')).join('') : released('output_text', 'content', ['output_text'], response.output_text);
      }
    }
  }

  /** A delta event for text released after its channel's last delta, shaped like that delta. */
  private emitResponsesDelta(ch: Channel, text: string): void {
    if (!ch.lastDelta || text === '') return;
    const obj: Obj = { ...ch.lastDelta.obj, delta: text };
    if ('logprobs' in obj) obj.logprobs = [];
    this.emitJson(ch.lastDelta.ev, obj);
  }

  /** Responses API block: released deltas, then `response.incomplete` with reason content_filter. */
  private blockResponses(got: Release[]): void {
    if (this.inspector && this.verdict) {
      for (const { ch, text } of got) this.emitResponsesDelta(ch, text);
      const response: Obj = { ...(this.response ?? { object: 'response' }), status: 'incomplete', incomplete_details: { reason: 'content_filter' } };
      response.output = [];
      const obj: Obj = { type: 'response.incomplete', sequence_number: this.sequence + 1, response };
      this.emitted.push(`event: response.incomplete\n${this.prefix()}${JSON.stringify(obj)}\n\n`);
    }
    this.finish();
  }

  // ---- writing -----------------------------------------------------------------------------------

  private prefix(): string {
    return this.space ? 'data: ' : 'data:';
  }

  private emitObject(choicesOrEvent: Obj[] | Obj): void {
    const obj = Array.isArray(choicesOrEvent) ? this.chunk(choicesOrEvent) : choicesOrEvent;
    this.emitted.push(`${this.prefix()}${JSON.stringify(obj)}\n\n`);
  }

  private emitJson(ev: SseEvent, obj: Obj): void {
    this.emitFields(ev, JSON.stringify(obj));
  }

  private emitRaw(ev: SseEvent): void {
    if (this.inspector) this.emitFields(ev, ev.hasData ? ev.data : undefined);
  }

  private emitFields(ev: SseEvent, data: string | undefined): void {
    let out = '';
    if (ev.event !== undefined) out += `event: ${ev.event}\n`;
    if (ev.id !== undefined) out += `id: ${ev.id}\n`;
    for (const line of ev.other) out += `${line}\n`;
    if (data !== undefined) {
      const prefix = ev.dataSpace ? 'data: ' : 'data:';
      out += data.includes('\n') ? data.split('\n').map((l) => prefix + l).join('\n') : prefix + data;
      out += '\n';
    }
    this.emitted.push(`${out}\n`);
  }
}

export function createStreamRewriter(ex: Exchange, inspector?: StreamInspector): StreamRewriter {
  return new Rewriter(ex, inspector);
}
