import type { ChannelKind } from './stream-filter';
import type { BlockVerdict, JsonPath } from './exchange';
import type { SseEvent } from './sse';
import { index, type Channel, type Obj, type Release, type StreamChannels } from './stream-channels';
import { isObject } from '../../common/json';

/** The OpenAI Responses API's typed events: deltas and done events per part, items, the response's lifecycle. */
export class ResponsesEvents {
  /** The response object of the last lifecycle event, the template of a closing one. */
  private response?: Obj;
  private sequence = 0;

  constructor(private readonly s: StreamChannels) {}

  /** The channel a Responses API text event belongs to, from its type and indexes. */
  private channelOf(obj: Obj): { ch: Channel; field: string } | undefined {
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
      if (re.test(type)) return { ch: this.s.channel(key, kind, oi, { at: 'none' }, path), field };
    }
    return undefined;
  }

  /** One Responses API event (also its `error` events). */
  onEvent(obj: Obj, ev: SseEvent): void {
    this.s.responsesApi = true;
    const type = obj.type as string;
    if (typeof obj.sequence_number === 'number') this.sequence = obj.sequence_number;
    if (isObject(obj.response)) this.response = obj.response;
    const got: Release[] = [];
    const target = this.channelOf(obj);
    if (target && type.endsWith('.delta') && typeof obj.delta === 'string') {
      const { ch } = target;
      ch.lastDelta = { ev, obj };
      if (obj.delta === '') return this.s.emitRaw(ev);
      const r = this.s.feed(ch, obj.delta, got);
      if (this.s.verdict) return this.s.block(got);
      if (r === obj.delta) return this.s.emitRaw(ev);
      obj.delta = r;
      if ('logprobs' in obj) obj.logprobs = [];
      return this.s.emitJson(ev, obj);
    }
    if (target && type.endsWith('.done')) {
      // The full text of a part: its channel ends here, and the client gets the released text.
      this.rewriteTexts(obj);
      if (this.s.verdict) return this.s.block([]);
      return this.s.emitJson(ev, obj);
    }
    if (type === 'error' || /^response\.(completed|incomplete|failed)$/.test(type)) this.s.holdTerminal();
    if (type === 'error' && typeof obj.message === 'string' && this.s.inspector) {
      const r = this.s.whole('error', 'error', 0, { at: 'none' }, ['message'], obj.message, got);
      if (this.s.verdict) return this.s.block(got);
      obj.message = r;
      return this.s.emitJson(ev, obj);
    }
    if (/^response\.(completed|incomplete|failed)$/.test(type)) this.s.flushAll();
    if (this.s.verdict) return;
    if (/^response\.(output_item\.(added|done)|content_part\.(added|done)|completed|incomplete|failed)$/.test(type) && this.s.inspector) {
      this.scanNames(obj, got);
      if (!this.s.verdict) this.rewriteTexts(obj, !type.endsWith('.added'));
      if (this.s.verdict) return this.s.block(got);
      return this.s.emitJson(ev, obj);
    }
    this.s.emitRaw(ev);
  }

  /** Function names in Responses API items arrive whole: scanned once each. */
  private scanNames(obj: Obj, got: Release[]): void {
    const items = isObject(obj.item) ? [obj.item] : isObject(obj.response) && Array.isArray(obj.response.output) ? obj.response.output : [];
    items.forEach((item, i) => {
      if (this.s.verdict || !isObject(item) || typeof item.name !== 'string' || item.name === '') return;
      const oi = index(obj.output_index, i);
      const r = this.s.whole(`name:${oi}`, 'tool_name', oi, { at: 'none' }, ['output', oi, 'name'], item.name, got);
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
      if (!final) return text === '' ? text : this.s.whole(`${key}:added`, kind, index(path[1], 0), { at: 'none' }, path, text, []);
      let ch = this.s.channels.get(key);
      if (!ch) {
        ch = this.s.channel(key, kind, index(path[1], 0), { at: 'none' }, path);
        this.s.feed(ch, text, []);
      }
      if (!ch.ended) {
        const got: Release[] = [];
        this.s.close(ch, got);
        for (const g of got) this.emitDelta(g.ch, g.text);
      }
      return ch.released.toString();
    };
    const oi = index(obj.output_index, 0);
    const ci = index(obj.content_index, 0);
    const target = this.channelOf(obj);
    if (target && typeof obj[target.field] === 'string') obj[target.field] = released(target.ch.key, target.ch.kind, target.ch.path, obj[target.field] as string);
    const fixPart = (part: Obj, o: number, j: number, reasoning: boolean): void => {
      if (typeof part.text === 'string') {
        const key = reasoning || this.s.channels.has(`reasoning_text:${o}:${j}`) ? `reasoning_text:${o}:${j}` : `output_text:${o}:${j}`;
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
        const parts = [...this.s.channels.values()].filter((c) => c.key.startsWith('output_text:'));
        response.output_text = parts.length > 0 ? parts.map((c) => c.released.toString()).join('') : released('output_text', 'content', ['output_text'], response.output_text);
      }
    }
  }

  /** After every channel closed: what they still held, as deltas (or the block). */
  flush(got: Release[]): void {
    if (this.s.verdict) this.block(got);
    else for (const { ch, text } of got) this.emitDelta(ch, text);
  }

  /** A delta event for text released after its channel's last delta, shaped like that delta. */
  private emitDelta(ch: Channel, text: string): void {
    if (!ch.lastDelta || text === '') return;
    const obj: Obj = { ...ch.lastDelta.obj, delta: text };
    if ('logprobs' in obj) obj.logprobs = [];
    this.s.emitJson(ch.lastDelta.ev, obj);
  }

  /** The Responses API's `error` event, which the openai client raises. */
  errorEvent(verdict: BlockVerdict): string {
    const obj = { type: 'error', code: verdict.code, message: verdict.message, param: null, sequence_number: this.sequence + 1 };
    return `event: error\n${this.s.prefix()}${JSON.stringify(obj)}\n\n`;
  }

  /** Responses API block: released deltas, then `response.incomplete` with reason content_filter. */
  block(got: Release[]): void {
    if (this.s.inspector && this.s.verdict) {
      for (const { ch, text } of got) this.emitDelta(ch, text);
      const response: Obj = { ...(this.response ?? { object: 'response' }), status: 'incomplete', incomplete_details: { reason: 'content_filter' } };
      response.output = [];
      const obj: Obj = { type: 'response.incomplete', sequence_number: this.sequence + 1, response };
      this.s.emitted.push(`event: response.incomplete\n${this.s.prefix()}${JSON.stringify(obj)}\n\n`);
    }
    this.s.finish();
  }
}
