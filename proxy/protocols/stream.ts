import type { ChannelFilter, ChannelKind, StreamInspector } from '../hooks';
import { errorPayload } from './errors';
import type { BlockVerdict, Exchange, Segment } from './exchange';
import { echoedPrompt } from './prompt-echo';
import { usageFrom } from './response';
import { SseParser, type SseEvent } from './sse';

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

/** Channel keys handed to StreamInspector.channel: `content:<choice>` and `tool:<choice>:<tool call index>`. */
export function channelKey(choice: number, toolIndex?: number): string {
  return toolIndex === undefined ? `content:${choice}` : `tool:${choice}:${toolIndex}`;
}

interface Channel {
  key: string;
  kind: ChannelKind;
  choice: number;
  toolIndex?: number;
  filter?: ChannelFilter;
  /** Text the client got on this channel (everything, when nothing inspects the stream). */
  released: string[];
  /** Text the upstream sent on this channel (kept only while inspecting). */
  received: string[];
  ended: boolean;
}

/** Text released during the event being handled, to put in a closing chunk if the stream is blocked mid-event. */
interface Release {
  ch: Channel;
  text: string;
}

function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function index(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isInteger(v) ? v : fallback;
}

function finished(reason: unknown): boolean {
  return typeof reason === 'string' && reason !== '';
}

/**
 * Parses an upstream SSE body incrementally (TGI native events and OpenAI chunks, both `data:`
 * dialects) and, when an inspector is given, re-emits each event with its text replaced by what the
 * channel filters release. Without an inspector the bytes pass through unchanged; only the output,
 * usage and tool-call count are collected.
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
  private space = true;
  private lastTokenId = 0;
  private lastIndex = 0;

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
      const path = ch.toolIndex === undefined ? ['choices', ch.choice, 'delta', 'content'] : ['choices', ch.choice, 'delta', 'tool_calls', ch.toolIndex, 'function', 'arguments'];
      output.push({
        role: 'assistant',
        kind: ch.kind === 'content' ? 'completion' : 'tool_arguments',
        trusted: true,
        path,
        choice: ch.choice,
        text: ch.released.join(''),
      });
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
    if ('error' in obj) {
      this.holdTerminal();
      const err = obj.error;
      this.ex.notes['stream.error'] = typeof err === 'string' ? err : isObject(err) && typeof err.message === 'string' ? err.message : 'error event';
      this.flushAll();
      return this.emitRaw(ev);
    }
    if (Array.isArray(obj.choices)) return this.onChunk(obj, obj.choices, ev);
    if ('token' in obj || 'generated_text' in obj) return this.onToken(obj, ev);
    this.emitRaw(ev);
  }

  private channel(choice: number, toolIndex?: number): Channel {
    const key = channelKey(choice, toolIndex);
    let ch = this.channels.get(key);
    if (!ch) {
      const kind: ChannelKind = toolIndex === undefined ? 'content' : 'tool_arguments';
      ch = { key, kind, choice, toolIndex, released: [], received: [], ended: false };
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

  private keep(ch: Channel, text: string, got: Release[]): void {
    if (text === '') return;
    ch.released.push(text);
    got.push({ ch, text });
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
      const delta = isObject(c.delta) ? c.delta : undefined;
      if (delta) {
        if (typeof delta.content === 'string' && delta.content !== '') {
          const r = this.feed(this.channel(ci), delta.content, got);
          if (r !== delta.content) {
            delta.content = r;
            choiceChanged = true;
          }
        }
        if (Array.isArray(delta.tool_calls)) {
          for (let j = 0; j < delta.tool_calls.length && !this.verdict; j++) {
            const tc = delta.tool_calls[j];
            if (!isObject(tc)) continue;
            const ti = index(tc.index, j);
            this.toolKeys.add(channelKey(ci, ti));
            const fn = isObject(tc.function) ? tc.function : undefined;
            if (fn && typeof fn.arguments === 'string' && fn.arguments !== '') {
              const r = this.feed(this.channel(ci, ti), fn.arguments, got);
              if (r !== fn.arguments) {
                fn.arguments = r;
                choiceChanged = true;
              }
            }
          }
        }
      } else if (typeof c.text === 'string') {
        this.chatChunks = false;
        if (c.text !== '') {
          const r = this.feed(this.channel(ci), c.text, got);
          if (r !== c.text) {
            c.text = r;
            choiceChanged = true;
          }
        }
      }
      if (!this.verdict && finished(c.finish_reason)) {
        this.finishedChoices.add(ci);
        for (const ch of this.channels.values()) {
          if (this.verdict) break;
          if (ch.choice !== ci || ch.ended) continue;
          const tail = this.close(ch, got);
          if (tail === '') continue;
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

  /** Puts released tail text into an OpenAI choice object (delta or completions text). */
  private appendTo(c: Obj, ch: Channel, text: string): void {
    if (!this.chatChunks) {
      c.text = (typeof c.text === 'string' ? c.text : '') + text;
      return;
    }
    const delta: Obj = isObject(c.delta) ? c.delta : (c.delta = {});
    if (ch.toolIndex === undefined) {
      delta.content = (typeof delta.content === 'string' ? delta.content : '') + text;
      return;
    }
    const calls: unknown[] = Array.isArray(delta.tool_calls) ? delta.tool_calls : (delta.tool_calls = []);
    let tc = calls.find((t, j) => isObject(t) && index(t.index, j) === ch.toolIndex) as Obj | undefined;
    if (!tc) calls.push((tc = { index: ch.toolIndex, function: { arguments: '' } }));
    const fn: Obj = isObject(tc.function) ? tc.function : (tc.function = {});
    fn.arguments = (typeof fn.arguments === 'string' ? fn.arguments : '') + text;
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
    if (this.tgiNative) {
      if (got.length > 0) this.emitToken(got.map((g) => g.text).join(''));
      if (this.verdict) this.blockTgi([]);
      return;
    }
    if (this.verdict) return this.blockOpenAi(got);
    if (got.length > 0) this.emitObject([...this.choicesFor(got, null).values()]);
  }

  /** OpenAI dialect block: released text, finish_reason "content_filter" on every open choice, then [DONE]. */
  private blockOpenAi(got: Release[]): void {
    if (this.tgiNative) return this.blockTgi(got);
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
    const ch = this.channel(0);
    if (token && typeof token.text === 'string' && token.text !== '' && token.special !== true) {
      this.lastTokenId = index(token.id, this.lastTokenId);
      const r = this.feed(ch, token.text, got);
      if (r !== token.text) {
        token.text = r;
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
      const text = got.map((g) => g.text).join('');
      if (text !== '') this.emitToken(text);
      this.emitted.push(`${this.prefix()}${JSON.stringify(errorPayload('tgi', this.verdict))}\n\n`);
    }
    this.finish();
  }

  private emitToken(text: string): void {
    this.emitObject({ index: this.lastIndex, token: { id: this.lastTokenId, text, logprob: 0, special: false }, generated_text: null, details: null });
  }

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
