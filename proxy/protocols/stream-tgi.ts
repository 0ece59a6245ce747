import type { BlockVerdict } from './exchange';
import { errorPayload } from './errors';
import { echoedPrompt } from './prompt-echo';
import type { SseEvent } from './sse';
import { channelKey, index, type Obj, type Release, type StreamChannels } from './stream-channels';
import { isObject } from '../../common/json';

/** TGI's native stream: one token event at a time, the full text and details on the last one. */
export class TgiTokens {
  private lastTokenId = 0;
  private lastIndex = 0;

  constructor(private readonly s: StreamChannels) {}

  /** A TGI native event: token text per event, the full text and details on the last one. */
  onToken(obj: Obj, ev: SseEvent): void {
    this.s.tgiNative = true;
    if (typeof obj.generated_text === 'string') this.s.holdTerminal();
    this.lastIndex = index(obj.index, this.lastIndex + 1);
    const got: Release[] = [];
    let changed = false;
    const token = isObject(obj.token) ? obj.token : undefined;
    const ch = this.s.channel(channelKey(0), 'content', 0, { at: 'text' }, ['token', 'text']);
    if (token && typeof token.text === 'string' && token.text !== '' && token.special !== true) {
      this.lastTokenId = index(token.id, this.lastTokenId);
      const r = this.s.feed(ch, token.text, got);
      if (r !== token.text) {
        token.text = r;
        changed = true;
      }
    }
    if (!this.s.verdict && Array.isArray(obj.top_tokens)) {
      // Alternatives per rank: text the client reads, dropped when any rank was held or changed.
      let altered = false;
      obj.top_tokens.forEach((t, k) => {
        if (this.s.verdict || !isObject(t) || typeof t.text !== 'string' || t.text === '' || t.special === true) return;
        const alt = this.s.channel(`top_tokens:0:${k}`, 'token_list', 0, { at: 'none' }, ['top_tokens']);
        if (this.s.feed(alt, t.text, []) !== t.text) altered = true;
      });
      if (altered || changed) {
        obj.top_tokens = [];
        changed = true;
      }
    }
    if (this.s.verdict) return this.block(got);
    if (typeof obj.generated_text === 'string') {
      const details = isObject(obj.details) ? obj.details : undefined;
      if (details && typeof details.generated_tokens === 'number') {
        const prompt = typeof details.input_length === 'number' ? details.input_length : undefined;
        this.s.ex.usage = {
          promptTokens: prompt,
          completionTokens: details.generated_tokens,
          totalTokens: prompt === undefined ? undefined : prompt + details.generated_tokens,
          source: 'stream',
        };
      }
      if (this.s.inspector) {
        const tail = this.s.close(ch, got);
        for (const c of this.s.channels.values()) if (c !== ch) this.s.close(c, []);
        if (this.s.verdict) return this.block(got);
        if (tail !== '') {
          if (token && token.special !== true && typeof token.text === 'string') {
            token.text += tail;
            changed = true;
          } else this.emitToken(tail);
        }
        if (ch.altered) {
          obj.generated_text = echoedPrompt(this.s.ex, obj.generated_text) + ch.released.toString();
          changed = true;
        }
      }
    }
    if (!this.s.inspector) return;
    if (changed) this.s.emitJson(ev, obj);
    else this.s.emitRaw(ev);
  }

  /** After every channel closed: what they still held, as one token event (then the block, if any). */
  flush(got: Release[]): void {
    const text = got.filter((g) => g.ch.place.at !== 'none').map((g) => g.text).join('');
    if (text !== '') this.emitToken(text);
    if (this.s.verdict) this.block([]);
  }

  /** TGI native block: the text released before it as a token event, then an error event; no [DONE]. */
  block(got: Release[]): void {
    if (this.s.inspector && this.s.verdict) {
      const text = got
        .filter((g) => g.ch.place.at !== 'none')
        .map((g) => g.text)
        .join('');
      if (text !== '') this.emitToken(text);
      // A stream is only ever cut for its answer: huggingface_hub raises GenerationError for `generation`.
      this.s.emitted.push(`${this.s.prefix()}${JSON.stringify(errorPayload('tgi', this.s.verdict, 'response'))}\n\n`);
    }
    this.s.finish();
  }

  /** TGI's `{error, error_type}` event, which huggingface_hub raises. */
  errorEvent(verdict: BlockVerdict): string {
    return `${this.s.prefix()}${JSON.stringify(errorPayload('tgi', verdict))}\n\n`;
  }

  private emitToken(text: string): void {
    this.s.emitData({ index: this.lastIndex, token: { id: this.lastTokenId, text, logprob: 0, special: false }, generated_text: null, details: null });
  }
}
