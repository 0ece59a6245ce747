import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../telemetry/logger';
import type { IngestMetrics } from './metrics';
import { errorText } from './spool';

export const DEAD_LETTER_FILE = 'dead-letter.jsonl';

/**
 * Records Akto refused with a non-retryable 4xx, kept for an operator to inspect or resend:
 * one line per record, `{"rejectedAt","status","error","record"}`, bounded by maxBytes.
 */
export class DeadLetterFile {
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    readonly file: string,
    private bytes: number,
    private readonly maxBytes: number,
    private readonly logger: Logger,
    private readonly metrics: IngestMetrics,
  ) {}

  static async open(dir: string, maxBytes: number, logger: Logger, metrics: IngestMetrics): Promise<DeadLetterFile> {
    const file = path.join(dir, DEAD_LETTER_FILE);
    const size = await fsp.stat(file).then(
      (s) => s.size,
      () => 0,
    );
    return new DeadLetterFile(file, size, maxBytes, logger, metrics);
  }

  add(records: readonly string[], status: number, error: string): Promise<void> {
    const prefix = `{"rejectedAt":"${new Date().toISOString()}","status":${status},"error":${JSON.stringify(error)},"record":`;
    const text = records.map((r) => `${prefix}${r}}\n`).join('');
    const bytes = Buffer.byteLength(text);
    const run = this.chain.then(async () => {
      if (this.bytes + bytes > this.maxBytes) {
        this.metrics.dropped.inc({ reason: 'dead_letter_full' }, records.length);
        this.logger.error(
          { file: this.file, records: records.length, limit: this.maxBytes },
          'dead-letter file is full (DEAD_LETTER_MAX_BYTES): rejected trace records dropped',
        );
        return;
      }
      try {
        await fsp.appendFile(this.file, text);
        this.bytes += bytes;
        this.metrics.deadLettered.inc(records.length);
      } catch (err) {
        this.metrics.dropped.inc({ reason: 'dead_letter_full' }, records.length);
        this.logger.error({ file: this.file, err: errorText(err), records: records.length }, 'dead-letter write failed; rejected records dropped');
      }
    });
    this.chain = run;
    return run;
  }

  close(): Promise<void> {
    return this.chain;
  }
}
