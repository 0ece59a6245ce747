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
  /** A line or an event outgrew the parser's bound: nothing more is parsed. */
  overflow?(): void;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Incremental SSE parser (the WHATWG event-stream rules): lines end in \n, \r\n or \r, a blank line
 * dispatches the event, `:` lines are comments, one space after the colon is dropped. Bytes are split
 * into lines before decoding, so a chunk boundary inside a UTF-8 character is harmless. A line, or an event's
 * lines together, longer than `maxEventBytes` stop the parser (overflow): an endless line never grows memory.
 */
export class SseParser {
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** Bytes of the fields of the event being collected. */
  private eventBytes = 0;
  private stopped = false;
  /** The previous chunk ended in \r: a leading \n in the next one belongs to the same line end. */
  private skipLf = false;
  private data: string[] = [];
  private other: string[] = [];
  private event?: string;
  private id?: string;
  private dataSpace = false;

  constructor(
    private readonly on: SseHandlers,
    private readonly maxEventBytes = Infinity,
  ) {}

  /** Part of a line or of an event was read and not dispatched yet. */
  get midEvent(): boolean {
    return this.partial.length > 0 || this.eventBytes > 0;
  }

  push(chunk: Buffer): void {
    if (this.stopped) return;
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
      if (this.stopped) return;
      start = i + 1;
      if (atCr) {
        if (start === chunk.length) this.skipLf = true;
        else if (chunk[start] === LF) start++;
        cr = chunk.indexOf(CR, start);
      }
      if (lf !== -1 && lf < start) lf = chunk.indexOf(LF, start);
    }
    if (start < chunk.length) {
      this.partial.push(chunk.subarray(start));
      this.partialBytes += chunk.length - start;
      if (this.partialBytes + this.eventBytes > this.maxEventBytes) this.stop();
    }
  }

  /** The body ended: a last line without its terminator and an event without its blank line still count. */
  end(): void {
    if (this.stopped) return;
    if (this.partial.length > 0) this.line(Buffer.alloc(0), 0, 0);
    this.dispatch();
  }

  private stop(): void {
    this.stopped = true;
    this.partial = [];
    this.data = [];
    this.other = [];
    this.on.overflow?.();
  }

  private line(chunk: Buffer, start: number, end: number): void {
    let text: string;
    if (this.partial.length === 0) text = chunk.toString('utf8', start, end);
    else {
      this.partial.push(chunk.subarray(start, end));
      text = Buffer.concat(this.partial).toString('utf8');
      this.partial = [];
      this.partialBytes = 0;
    }
    if (text === '') return this.dispatch();
    if (text.charCodeAt(0) === 0x3a) {
      if (text.length > this.maxEventBytes) return this.stop();
      return this.on.comment(text);
    }
    this.eventBytes += text.length;
    if (this.eventBytes > this.maxEventBytes) return this.stop();
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
    this.eventBytes = 0;
    this.on.event(ev);
  }
}

/** One SSE event written back with its fields as they came; `data` undefined for an event without data. */
export function sseEventText(ev: SseEvent, data: string | undefined): string {
  let out = '';
  if (ev.event !== undefined) out += `event: ${ev.event}\n`;
  if (ev.id !== undefined) out += `id: ${ev.id}\n`;
  for (const line of ev.other) out += `${line}\n`;
  if (data !== undefined) {
    const prefix = ev.dataSpace ? 'data: ' : 'data:';
    out += data.includes('\n') ? data.split('\n').map((l) => prefix + l).join('\n') : prefix + data;
    out += '\n';
  }
  return `${out}\n`;
}
