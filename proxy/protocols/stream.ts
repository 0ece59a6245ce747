import type { StreamInspector } from './stream-filter';
import type { BlockVerdict, Exchange } from './exchange';
import { SseParser, type SseEvent } from './sse';
import { StreamChannels, UNBOUNDED, type Obj, type Release, type StreamBounds } from './stream-channels';
import { OpenAiChunks } from './stream-openai';
import { ResponsesEvents } from './stream-responses';
import { TgiTokens } from './stream-tgi';
import { isObject } from '../../common/json';

export { channelKey, MAX_CHANNELS, UNBOUNDED, type StreamBounds } from './stream-channels';

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
  /** Set when the upstream's stream broke a bound (an event over maxEventBytes, more than MAX_CHANNELS channels). */
  readonly failed?: BlockVerdict;
  /**
   * Ends the stream now (the upstream failed or broke a bound): what the filters hold is judged and released as at
   * the stream's end, held terminal events are dropped (no final check follows), then an error event in the stream's
   * own dialect. '' once the stream already ended.
   */
  abort(verdict: BlockVerdict): string;
}

/**
 * Parses an upstream SSE body incrementally (TGI native events, OpenAI chat and completions chunks, OpenAI
 * Responses API events, both `data:` dialects) and, when an inspector is given, re-emits each event with
 * every text the client reads replaced by what the channel filters release: content, reasoning, refusals,
 * tool-call arguments and names, audio transcripts, error messages. Token lists (logprobs, top tokens) are
 * scanned as channels of their own and dropped from an event whose text was held or changed. Without an
 * inspector the bytes pass through unchanged; only the output, usage and tool-call count are collected.
 */
class Rewriter extends StreamChannels implements StreamRewriter {
  private readonly parser: SseParser;
  private readonly openai = new OpenAiChunks(this);
  private readonly tgi = new TgiTokens(this);
  private readonly responses = new ResponsesEvents(this);

  constructor(ex: Exchange, inspector: StreamInspector | undefined, bounds: StreamBounds) {
    super(ex, inspector, bounds);
    this.parser = new SseParser(
      {
        event: (ev) => this.onEvent(ev),
        comment: (line) => {
          if (this.inspector && !this.verdict) this.emitted.push(`${line}\n\n`);
        },
        overflow: () => this.fail('stream_event_too_large', `an event of the upstream's stream exceeds MAX_RESPONSE_SIZE (${bounds.maxEventBytes} bytes)`),
      },
      bounds.maxEventBytes,
    );
  }

  get blocked(): BlockVerdict | undefined {
    return this.verdict;
  }

  get failed(): BlockVerdict | undefined {
    return this.failure;
  }

  push(chunk: Buffer): Buffer | string {
    if (this.done || this.failure) return '';
    this.parser.push(chunk);
    if (!this.inspector) return chunk;
    return this.take();
  }

  abort(verdict: BlockVerdict): string {
    if (this.done) return '';
    // Without an inspector the client already has the upstream's bytes, maybe up to the middle of an event.
    const gap = !this.inspector && this.parser.midEvent ? '\n\n' : '';
    this.dropHeld();
    this.flushAll();
    if (!this.verdict) this.emitted.push(this.errorEvent(verdict));
    this.finish();
    return gap + this.take();
  }

  /** An in-stream error the client's SDK raises, in the dialect the stream speaks (or the route's, before any event). */
  private errorEvent(verdict: BlockVerdict): string {
    if (this.responsesApi || this.ex.api === 'openai.responses') return this.responses.errorEvent(verdict);
    if (this.tgiNative || (!this.openai.spoken && this.ex.dialect === 'tgi')) return this.tgi.errorEvent(verdict);
    return this.openai.errorEvent(verdict);
  }

  end(): Buffer | string {
    if (this.done) return '';
    this.parser.end();
    if (!this.verdict) this.flushAll();
    this.finish();
    return this.take();
  }

  release(): string {
    this.releaseHeld();
    return this.take();
  }

  cut(verdict: BlockVerdict): string {
    this.emitted = [];
    this.releaseHeld();
    this.verdict = verdict;
    // The held finish events are dropped: every choice ends with the verdict.
    this.openai.finishedChoices.clear();
    this.block([]);
    return this.take();
  }

  flushAll(): void {
    if (!this.inspector || this.done) return;
    const got: Release[] = [];
    for (const ch of this.channels.values()) {
      if (this.verdict) break;
      this.close(ch, got);
    }
    if (this.responsesApi) return this.responses.flush(got);
    if (this.tgiNative) return this.tgi.flush(got);
    this.openai.flush(got);
  }

  block(got: Release[]): void {
    if (this.tgiNative) return this.tgi.block(got);
    if (this.responsesApi) return this.responses.block(got);
    this.openai.block(got);
  }

  private onEvent(ev: SseEvent): void {
    if (this.verdict || this.failure) return;
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
    if (typeof obj.type === 'string' && (obj.type.startsWith('response.') || (obj.type === 'error' && this.responsesApi))) return this.responses.onEvent(obj, ev);
    if ('error' in obj) return this.onError(obj, ev);
    if (Array.isArray(obj.choices)) return this.openai.onChunk(obj, obj.choices, ev);
    if ('token' in obj || 'generated_text' in obj) return this.tgi.onToken(obj, ev);
    this.emitRaw(ev);
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
      if (this.verdict) return this.block([]);
      if (r !== message) {
        holder[field] = r;
        return this.emitJson(ev, obj);
      }
    }
    this.emitRaw(ev);
  }
}

export function createStreamRewriter(ex: Exchange, inspector?: StreamInspector, bounds: StreamBounds = UNBOUNDED): StreamRewriter {
  return new Rewriter(ex, inspector, bounds);
}
