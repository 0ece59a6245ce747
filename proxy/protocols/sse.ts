/** One server-sent event as parsed: its data lines joined by '\n', plus fields we keep verbatim. */
export interface SseEvent {
  /** False for events that carry no `data:` field (only event/id/retry/unknown lines). */
  hasData: boolean;
  data: string;
  event?: string;
  id?: string;
  /** Lines that are not data/event/id (retry, unknown fields), kept to re-emit as they came. */
  other: string[];
  /** Whether the upstream wrote `data: ` (with a space) rather than `data:`. */
  dataSpace: boolean;
}

export interface SseHandlers {
  event(ev: SseEvent): void;
  comment(line: string): void;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Incremental SSE parser (the WHATWG event-stream rules): lines end in \n, \r\n or \r, a blank line
 * dispatches the event, `:` lines are comments, one space after the colon is dropped. Bytes are split
 * into lines before decoding, so a chunk boundary inside a UTF-8 character is harmless.
 */
export class SseParser {
  private partial: Buffer[] = [];
  /** The previous chunk ended in \r: a leading \n in the next one belongs to the same line end. */
  private skipLf = false;
  private data: string[] = [];
  private other: string[] = [];
  private event?: string;
  private id?: string;
  private dataSpace = false;

  constructor(private readonly on: SseHandlers) {}

  push(chunk: Buffer): void {
    let start = 0;
    if (this.skipLf && chunk.length > 0) {
      if (chunk[0] === LF) start = 1;
      this.skipLf = false;
    }
    // Native indexOf scans; \r is rare (most servers end lines with \n alone).
    let lf = chunk.indexOf(LF, start);
    let cr = chunk.indexOf(CR, start);
    while (lf !== -1 || cr !== -1) {
      const atCr = cr !== -1 && (lf === -1 || cr < lf);
      const i = atCr ? cr : lf;
      this.line(chunk, start, i);
      start = i + 1;
      if (atCr) {
        if (start === chunk.length) this.skipLf = true;
        else if (chunk[start] === LF) start++;
        cr = chunk.indexOf(CR, start);
      }
      if (lf !== -1 && lf < start) lf = chunk.indexOf(LF, start);
    }
    if (start < chunk.length) this.partial.push(chunk.subarray(start));
  }

  /** The body ended: a last line without its terminator and an event without its blank line still count. */
  end(): void {
    if (this.partial.length > 0) this.line(Buffer.alloc(0), 0, 0);
    this.dispatch();
  }

  private line(chunk: Buffer, start: number, end: number): void {
    let text: string;
    if (this.partial.length === 0) text = chunk.toString('utf8', start, end);
    else {
      this.partial.push(chunk.subarray(start, end));
      text = Buffer.concat(this.partial).toString('utf8');
      this.partial = [];
    }
    if (text === '') return this.dispatch();
    if (text.charCodeAt(0) === 0x3a) return this.on.comment(text);
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    const spaced = value.charCodeAt(0) === 0x20;
    if (spaced) value = value.slice(1);
    if (field === 'data') {
      if (this.data.length === 0) this.dataSpace = spaced;
      this.data.push(value);
    } else if (field === 'event') this.event = value;
    else if (field === 'id') this.id = value;
    else this.other.push(text);
  }

  private dispatch(): void {
    if (this.data.length === 0 && this.other.length === 0 && this.event === undefined && this.id === undefined) return;
    const ev: SseEvent = {
      hasData: this.data.length > 0,
      data: this.data.length === 1 ? this.data[0] : this.data.join('\n'),
      event: this.event,
      id: this.id,
      other: this.other,
      dataSpace: this.dataSpace,
    };
    this.data = [];
    this.other = [];
    this.event = undefined;
    this.id = undefined;
    this.on.event(ev);
  }
}
