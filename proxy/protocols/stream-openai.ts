import type { ChannelKind } from './stream-filter';
import { errorPayload } from './errors';
import type { BlockVerdict, JsonPath } from './exchange';
import { logprobTexts, usageFrom } from './response';
import type { SseEvent } from './sse';
import { channelKey, index, type Channel, type Obj, type Place, type Release, type StreamChannels } from './stream-channels';
import { isObject } from '../../common/json';

/** Text fields of a chat delta, with the channel kind each is. */
const DELTA_FIELDS: ReadonlyArray<[string, ChannelKind]> = [
  ['content', 'content'],
  ['reasoning_content', 'reasoning'],
  ['reasoning', 'reasoning'],
  ['refusal', 'refusal'],
];

function finished(reason: unknown): boolean {
  return typeof reason === 'string' && reason !== '';
}

/** OpenAI chat and completions chunks: which text goes on which channel, and the chunks we write back. */
export class OpenAiChunks {
  /** Last chunk seen: the template for chunks we have to add. */
  private template?: Obj;
  private chatChunks = true;
  /** Choices whose finish_reason arrived: a block does not end them again. */
  readonly finishedChoices = new Set<number>();

  constructor(private readonly s: StreamChannels) {}

  /** Whether the stream has sent an OpenAI chunk yet. */
  get spoken(): boolean {
    return this.template !== undefined;
  }

  /** OpenAI's in-stream `{error}` then [DONE], which the openai client raises. */
  errorEvent(verdict: BlockVerdict): string {
    return `${this.s.prefix()}${JSON.stringify(errorPayload('openai', verdict))}\n\n${this.s.prefix()}[DONE]\n\n`;
  }

  /** An OpenAI chat or completions chunk (also the usage chunk with no choices). */
  onChunk(obj: Obj, choices: unknown[], ev: SseEvent): void {
    this.template = obj;
    const usage = usageFrom(obj.usage, 'stream');
    if (usage) this.s.ex.usage = usage;
    if (choices.length === 0 || choices.some((c) => isObject(c) && finished(c.finish_reason))) this.s.holdTerminal();
    if (choices.length === 0) {
      this.s.flushAll();
      return this.s.emitRaw(ev);
    }
    const got: Release[] = [];
    let changed = false;
    for (let i = 0; i < choices.length && !this.s.verdict; i++) {
      const c = choices[i];
      if (!isObject(c)) continue;
      const ci = index(c.index, i);
      let choiceChanged = false;
      const set = (holder: Obj, field: string, value: string, kind: ChannelKind, place: Place, path: JsonPath): void => {
        if (value === '' || this.s.verdict) return;
        const ch = this.s.channel(this.keyOf(ci, place), kind, ci, place, path);
        const r = this.s.feed(ch, value, got);
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
          for (let j = 0; j < delta.tool_calls.length && !this.s.verdict; j++) {
            const tc = delta.tool_calls[j];
            if (!isObject(tc)) continue;
            const ti = index(tc.index, j);
            this.s.toolKeys.add(channelKey(ci, ti));
            const fn = isObject(tc.function) ? tc.function : undefined;
            if (!fn) continue;
            if (typeof fn.name === 'string' && fn.name !== '') {
              const r = this.s.whole(`tool_name:${ci}:${ti}`, 'tool_name', ci, { at: 'tool', index: ti, field: 'name' }, ['choices', ci, 'delta', 'tool_calls', ti, 'function', 'name'], fn.name, []);
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
      if (!this.s.verdict && this.feedTokenLists(ci, c.logprobs, [])) choiceChanged = true;
      if (!this.s.verdict && finished(c.finish_reason)) {
        this.finishedChoices.add(ci);
        for (const ch of this.s.channels.values()) {
          if (this.s.verdict) break;
          if (ch.choice !== ci || ch.ended) continue;
          const tail = this.s.close(ch, got);
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
    if (this.s.verdict) return this.s.block(got);
    if (!this.s.inspector) return;
    if (changed) this.s.emitJson(ev, obj);
    else this.s.emitRaw(ev);
  }

  /** Feeds the token lists of a choice's logprobs; true when any of them was held or changed. */
  private feedTokenLists(ci: number, logprobs: unknown, got: Release[]): boolean {
    let changed = false;
    for (const { list, texts } of logprobTexts(logprobs)) {
      texts.forEach((text, rank) => {
        if (text === '' || this.s.verdict) return;
        const ch = this.s.channel(`logprobs:${ci}:${list}:${rank}`, 'token_list', ci, { at: 'none' }, ['choices', ci, 'logprobs']);
        if (this.s.feed(ch, text, got) !== text) changed = true;
      });
    }
    return changed;
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

  /** After every channel closed: what they still held, as one chunk (or the block). */
  flush(got: Release[]): void {
    if (this.s.verdict) return this.s.block(got);
    const choices = [...this.choicesFor(got, null).values()];
    if (choices.length > 0) this.s.emitData(this.chunk(choices));
  }

  /** OpenAI dialect block: released text, finish_reason "content_filter" on every open choice, then [DONE]. */
  block(got: Release[]): void {
    const byChoice = this.choicesFor(got, 'content_filter');
    for (const ch of this.s.channels.values()) {
      if (!this.finishedChoices.has(ch.choice) && !byChoice.has(ch.choice)) byChoice.set(ch.choice, this.emptyChoice(ch.choice, 'content_filter'));
    }
    if (byChoice.size === 0) byChoice.set(0, this.emptyChoice(0, 'content_filter'));
    if (this.s.inspector) {
      this.s.emitData(this.chunk([...byChoice.values()]));
      this.s.emitted.push(`${this.s.prefix()}[DONE]\n\n`);
    }
    this.s.finish();
  }
}
