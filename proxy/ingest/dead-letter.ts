import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import type { Logger } from '../../common/logger';
import type { IngestMetrics } from './metrics';
import type { SecretScrubber } from '../../common/scrub';
import { diskFiles, type FileOpener, PartialWriteError, wholeLines, writeFully } from './files';
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
    private readonly secrets?: SecretScrubber,
    private readonly files: FileOpener = diskFiles,
  ) {}

  static async open(dir: string, maxBytes: number, logger: Logger, metrics: IngestMetrics, secrets?: SecretScrubber, files?: FileOpener): Promise<DeadLetterFile> {
    const file = path.join(dir, DEAD_LETTER_FILE);
    const size = await fsp.stat(file).then(
      (s) => s.size,
      () => 0,
    );
    return new DeadLetterFile(file, size, maxBytes, logger, metrics, secrets, files);
  }

  add(records: readonly string[], status: number, error: string): Promise<void> {
    // Akto's answer may reflect our request (its Authorization header included): scrubbed like a log line.
    const reason = this.secrets ? this.secrets.scrub(error) : error;
    const prefix = `{"rejectedAt":"${new Date().toISOString()}","status":${status},"error":${JSON.stringify(reason)},"record":`;
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
      const lines = text.slice(0, -1).split('\n');
      let kept = lines.length;
      let fh: FileHandle | undefined;
      try {
        fh = await this.files.open(this.file, 'a');
        await writeFully(fh, text);
        this.bytes += bytes;
      } catch (err) {
        // Only whole lines count as kept; a torn tail is cut off.
        const written = err instanceof PartialWriteError ? err.written : 0;
        const whole = wholeLines(lines, written);
        if (fh && written > whole.bytes) await fh.truncate(this.bytes + whole.bytes).catch(() => undefined);
        this.bytes += whole.bytes;
        kept = whole.count;
        this.metrics.dropped.inc({ reason: 'dead_letter_write' }, records.length - kept);
        this.logger.error({ file: this.file, err: errorText(err), records: records.length - kept }, 'dead-letter write failed; rejected records dropped');
      } finally {
        await fh?.close().catch(() => undefined);
      }
      if (kept > 0) this.metrics.deadLettered.inc(kept);
    });
    this.chain = run;
    return run;
  }

  close(): Promise<void> {
    return this.chain;
  }
}
