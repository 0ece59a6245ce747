import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { ConfigError } from '../../common/env';
import type { Logger } from '../../common/logger';
import type { RecordSink } from './delivery';
import { diskFiles, type FileOpener, PartialWriteError, wholeLines, writeLines } from './files';
import type { IngestMetrics } from './metrics';
import { errorText } from './spool';

/**
 * Lines wait at most this long, or until about this many characters are pending, and are appended in one
 * write: a write per tick meant a file-system round trip per request under load.
 */
const FLUSH_MS = 50;
const FLUSH_CHARS = 256 * 1024;
/** After a failed write (disk full), wait this long before trying again. */
const RETRY_MS = 1000;
const ERROR_LOG_INTERVAL_MS = 60_000;

/**
 * The local sink used when AKTO_API_BASE_URL is unset: one Akto record per line in TRACE_FILE
 * (never stdout, which carries the logs). Lines are buffered briefly (FLUSH_MS) and appended together.
 * A write that fails part-way keeps the whole lines it wrote (a torn tail is cut off); the rest stay
 * in memory and are written when the disk has room again. Only lines past maxPendingBytes are
 * dropped, counted and logged.
 */
export class TraceFileSink implements RecordSink {
  private buffer: string[] = [];
  private bufferedChars = 0;
  private bufferedBytes = 0;
  private timer?: NodeJS.Timeout;
  private chain: Promise<void> = Promise.resolve();
  private lastErrorLog = -Infinity;
  private failing = false;

  private constructor(
    readonly file: string,
    private readonly fh: FileHandle,
    /** Bytes in the file, where a torn write is cut back to. */
    private size: number,
    private readonly logger: Logger,
    private readonly metrics: IngestMetrics,
    private readonly maxPendingBytes: number,
  ) {}

  static async open(file: string, logger: Logger, metrics: IngestMetrics, opts: { maxPendingBytes: number; files?: FileOpener }): Promise<TraceFileSink> {
    try {
      await fsp.mkdir(path.dirname(file), { recursive: true });
      const fh = await (opts.files ?? diskFiles).open(file, 'a');
      const { size } = await fh.stat();
      return new TraceFileSink(file, fh, size, logger, metrics, opts.maxPendingBytes);
    } catch (err) {
      throw new ConfigError('TRACE_FILE', `cannot open ${file} for appending: ${errorText(err)}`);
    }
  }

  enqueue(line: string): void {
    this.metrics.queued.inc();
    const bytes = Buffer.byteLength(line) + 1;
    if (this.bufferedBytes + bytes > this.maxPendingBytes) {
      this.metrics.dropped.inc({ reason: 'trace_file' });
      this.logError(undefined, 1, 'TRACE_FILE cannot be written and the memory bound (AKTO_MEMORY_QUEUE_BYTES) is reached; trace record dropped');
      return;
    }
    this.buffer.push(line);
    this.bufferedChars += line.length;
    this.bufferedBytes += bytes;
    if (this.failing) return; // the retry timer writes it
    if (this.bufferedChars >= FLUSH_CHARS) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  async close(): Promise<void> {
    await this.flush();
    clearTimeout(this.timer);
    if (this.buffer.length > 0) {
      this.metrics.dropped.inc({ reason: 'trace_file' }, this.buffer.length);
      this.logError(undefined, this.buffer.length, 'TRACE_FILE could not be written before exit; trace records dropped');
    }
    await this.fh.close();
  }

  private flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer.length === 0) return this.chain;
    const lines = this.buffer;
    this.buffer = [];
    this.bufferedChars = 0;
    this.bufferedBytes = 0;
    this.chain = this.chain.then(async () => {
      let done = 0;
      try {
        this.size += await writeLines(this.fh, lines);
        done = lines.length;
        this.failing = false;
      } catch (err) {
        const written = err instanceof PartialWriteError ? err.written : 0;
        const whole = wholeLines(lines, written);
        done = whole.count;
        // Cut a torn last line off, so the file holds whole records only.
        if (written > whole.bytes) await this.fh.truncate(this.size + whole.bytes).catch(() => undefined);
        this.size += whole.bytes;
        this.keep(lines.slice(done));
        this.logError(err, lines.length - done, 'cannot write trace records to TRACE_FILE; keeping them in memory and retrying');
      }
      if (done > 0) this.metrics.sent.inc(done);
    });
    return this.chain;
  }

  /** Lines a failed write left: back in front of the buffer, retried after a pause. */
  private keep(lines: string[]): void {
    this.failing = true;
    this.buffer = [...lines, ...this.buffer];
    for (const l of lines) {
      this.bufferedChars += l.length;
      this.bufferedBytes += Buffer.byteLength(l) + 1;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.flush(), RETRY_MS);
    this.timer.unref();
  }

  private logError(err: unknown, records: number, msg: string): void {
    const now = Date.now();
    if (now - this.lastErrorLog < ERROR_LOG_INTERVAL_MS) return;
    this.lastErrorLog = now;
    this.logger.error({ file: this.file, records, ...(err === undefined ? {} : { err: errorText(err) }) }, msg);
  }
}
