import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { ConfigError } from '../config-env';
import type { Logger } from '../telemetry/logger';
import type { RecordSink } from './delivery';
import type { IngestMetrics } from './metrics';
import { errorText } from './spool';

/**
 * Lines wait at most this long, or until about this many characters are pending, and are appended in one
 * write: a write per tick meant a file-system round trip per request under load.
 */
const FLUSH_MS = 50;
const FLUSH_CHARS = 256 * 1024;

/**
 * The local sink used when AKTO_API_BASE_URL is unset: one Akto record per line in TRACE_FILE
 * (never stdout, which carries the logs). Lines are buffered briefly (FLUSH_MS) and appended together.
 */
export class TraceFileSink implements RecordSink {
  private buffer: string[] = [];
  private bufferedChars = 0;
  private timer?: NodeJS.Timeout;
  private chain: Promise<void> = Promise.resolve();
  private lastErrorLog = -Infinity;

  private constructor(
    readonly file: string,
    private readonly fh: FileHandle,
    private readonly logger: Logger,
    private readonly metrics: IngestMetrics,
  ) {}

  static async open(file: string, logger: Logger, metrics: IngestMetrics): Promise<TraceFileSink> {
    try {
      await fsp.mkdir(path.dirname(file), { recursive: true });
      const fh = await fsp.open(file, 'a');
      return new TraceFileSink(file, fh, logger, metrics);
    } catch (err) {
      throw new ConfigError('TRACE_FILE', `cannot open ${file} for appending: ${errorText(err)}`);
    }
  }

  enqueue(line: string): void {
    this.metrics.queued.inc();
    this.buffer.push(line);
    this.bufferedChars += line.length;
    if (this.bufferedChars >= FLUSH_CHARS) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  async close(): Promise<void> {
    await this.flush();
    await this.fh.close();
  }

  private flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer.length === 0) return this.chain;
    const lines = this.buffer;
    this.buffer = [];
    this.bufferedChars = 0;
    this.chain = this.chain.then(async () => {
      try {
        await this.fh.write(lines.join('\n') + '\n');
        this.metrics.sent.inc(lines.length);
      } catch (err) {
        this.metrics.dropped.inc({ reason: 'trace_file' }, lines.length);
        const now = Date.now();
        if (now - this.lastErrorLog > 60_000) {
          this.lastErrorLog = now;
          this.logger.error({ file: this.file, err: errorText(err), records: lines.length }, 'cannot write trace records to TRACE_FILE; records dropped');
        }
      }
    });
    return this.chain;
  }
}
