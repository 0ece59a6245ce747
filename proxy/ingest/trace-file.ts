import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { ConfigError } from '../config-env';
import type { Logger } from '../telemetry/logger';
import type { RecordSink } from './delivery';
import type { IngestMetrics } from './metrics';
import { errorText } from './spool';

/**
 * The local sink used when AKTO_API_BASE_URL is unset: one Akto record per line in TRACE_FILE
 * (never stdout, which carries the logs). Lines are buffered for one tick and appended together.
 */
export class TraceFileSink implements RecordSink {
  private buffer: string[] = [];
  private scheduled = false;
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
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  async close(): Promise<void> {
    await this.flush();
    await this.fh.close();
  }

  private flush(): Promise<void> {
    this.scheduled = false;
    if (this.buffer.length === 0) return this.chain;
    const lines = this.buffer;
    this.buffer = [];
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
