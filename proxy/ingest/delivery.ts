import type { Logger } from '../../common/logger';
import type { DeliverySettings } from './config';
import type { DeadLetterFile } from './dead-letter';
import type { IngestMetrics } from './metrics';
import { batchBody, type BatchSender, type PostResult } from './sender';
import type { Segment, Spool } from './spool';
import { errorText } from './spool';

/** Where finished records go. enqueue never throws and never waits. */
export interface RecordSink {
  enqueue(line: string): void;
  /** Stops intake, delivers what it can within drainMs, keeps the rest on disk. */
  close(drainMs: number): Promise<void>;
}

interface Batch {
  lines: string[];
  bytes: number;
  /** 500/422 answers in a row for exactly these lines. */
  suspects: number;
}

/** `{"batchData":[` + `]}` and one comma per record. */
const ENVELOPE_BYTES = 16;
const AUTH_LOG_INTERVAL_MS = 5 * 60_000;
const GROWTH_LOG_INTERVAL_MS = 60_000;
const REJECT_LOG_INTERVAL_MS = 10_000;
const MIN_BATCH_BYTES = 16 * 1024;

type Failure = Extract<PostResult, { kind: 'retry' | 'auth' | 'suspect' }>;

/**
 * Delivers records to Akto. Records wait in memory, are cut into batches by count, bytes or time
 * and POSTed with at most maxInFlight requests open. A batch that fails (Akto down, slow, refusing
 * the token) stays in memory and is retried with exponential backoff and jitter; memory is used
 * first, whatever the state of the disk. Only what does not fit AKTO_MEMORY_QUEUE_BYTES, and what
 * is left at shutdown, goes to the spool; a replay loop sends the spool oldest-first. Lines the
 * spool could not write come back to memory while it has room; past that they are counted as
 * dropped and logged. With SPOOL_WRITE_AHEAD every record goes to the spool first instead.
 */
export class Delivery implements RecordSink {
  private pending: string[] = [];
  private pendingBytes = 0;
  private readonly queue: Batch[] = [];
  private memoryBytes = 0;
  private inFlight = 0;
  private readonly slotWaiters: Array<() => void> = [];
  private timer?: NodeJS.Timeout;
  /** Pumps the memory queue again once a backoff has passed. */
  private wake?: NodeJS.Timeout;
  private replay?: Promise<void>;
  /** Earliest time the next POST may go out after a failure (shared by memory and replay). */
  private retryAt = 0;
  private failures = 0;
  private closing = false;
  private spooling = false;
  private readonly stop = new AbortController();
  private lastAuthLog = -Infinity;
  private lastGrowthLog = -Infinity;
  private lastRejectLog = -Infinity;
  private lastDropLog = -Infinity;
  private rejectsSuppressed = 0;
  private readonly memoryTasks = new Set<Promise<void>>();
  /** AKTO_MAX_BATCH_BYTES, lowered when something in front of Akto answers 413. */
  private batchBytes: number;

  constructor(
    private readonly sender: BatchSender,
    private readonly spool: Spool,
    private readonly deadLetter: DeadLetterFile,
    private readonly settings: DeliverySettings,
    private readonly logger: Logger,
    private readonly metrics: IngestMetrics,
  ) {
    this.batchBytes = settings.maxBatchBytes;
    metrics.memorySource = () => this.memoryBytes;
    spool.onUnwritten = (lines) => this.takeBack(lines);
    if (!spool.isEmpty) {
      if (!settings.writeAhead) this.noteSpooling('records left in the spool by a previous run');
      this.startReplay();
    }
  }

  enqueue(line: string): void {
    this.metrics.queued.inc();
    if (this.closing) return this.spool.append(line);
    if (this.settings.writeAhead) {
      this.spool.append(line);
      this.startReplay();
      return;
    }
    if (this.hold(line)) return;
    this.spool.append(line);
    this.noteSpooling(`memory queue is full (AKTO_MEMORY_QUEUE_BYTES, ${this.settings.memoryQueueBytes} bytes)`);
    this.startReplay();
  }

  async close(drainMs: number): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.cut();
    const deadline = Date.now() + drainMs;
    // Stop early when the next retry would come after the deadline anyway (Akto down).
    while (Date.now() < deadline && !this.idle() && this.retryAt < deadline) {
      await delay(Math.min(20, Math.max(1, deadline - Date.now())));
    }
    // Whatever is still unsent goes to disk; open POSTs are aborted and spooled by their callers.
    this.stop.abort();
    if (this.wake) clearTimeout(this.wake);
    this.spillQueue();
    await Promise.all([...this.memoryTasks]);
    await this.replay;
    await this.spool.close();
    await this.deadLetter.close();
    this.sender.close();
    const left = this.spool.bytes;
    if (left > 0) this.logger.warn({ spoolBytes: left, segments: this.spool.segments }, 'trace records kept in the spool for the next start');
  }

  private idle(): boolean {
    return this.pending.length === 0 && this.queue.length === 0 && this.memoryTasks.size === 0 && this.spool.isEmpty;
  }

  /** Keeps a record in memory when the bound allows; false when it does not fit. */
  private hold(line: string): boolean {
    const bytes = Buffer.byteLength(line) + 1;
    if (this.memoryBytes + bytes > this.settings.memoryQueueBytes) return false;
    if (this.pending.length > 0 && this.pendingBytes + bytes + ENVELOPE_BYTES > this.batchBytes) this.cut();
    this.pending.push(line);
    this.pendingBytes += bytes;
    this.memoryBytes += bytes;
    if (this.pending.length >= this.settings.batchSize) this.cut();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.cut(), this.settings.batchIntervalMs);
      this.timer.unref();
    }
    return true;
  }

  /** Lines the spool could not write (disk full, read-only): back to memory while it has room. */
  private takeBack(lines: string[]): void {
    let dropped = 0;
    for (const line of lines) if (this.closing || !this.hold(line)) dropped++;
    if (dropped === 0) return;
    this.metrics.dropped.inc({ reason: 'spool_write' }, dropped);
    const now = Date.now();
    if (now - this.lastDropLog < REJECT_LOG_INTERVAL_MS) return;
    this.lastDropLog = now;
    const why = this.closing ? 'the proxy is stopping' : 'the memory queue is full (AKTO_MEMORY_QUEUE_BYTES)';
    this.logger.error({ records: dropped }, `trace records dropped: the spool could not write them (SPOOL_DIR) and ${why}`);
  }

  /** Turns pending records into a batch and sends what the in-flight bound allows. */
  private cut(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending.length > 0) {
      this.queue.push({ lines: this.pending, bytes: this.pendingBytes, suspects: 0 });
      this.pending = [];
      this.pendingBytes = 0;
    }
    this.pump();
  }

  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.settings.maxInFlight && !this.stop.signal.aborted) {
      const wait = this.retryAt - Date.now();
      if (wait > 0) {
        this.wake ??= setTimeout(() => {
          this.wake = undefined;
          this.pump();
        }, wait);
        return;
      }
      const batch = this.queue.shift() as Batch;
      this.inFlight++;
      const task = this.sendFromMemory(batch).finally(() => {
        this.memoryTasks.delete(task);
        this.releaseSlot();
      });
      this.memoryTasks.add(task);
    }
  }

  private async sendFromMemory(batch: Batch): Promise<void> {
    let result = await this.post(batch.lines);
    // A reset on a reused keep-alive socket is common and harmless: one immediate retry.
    if (result.kind === 'retry' && result.status === undefined && result.reason !== 'timeout' && !this.stop.signal.aborted) {
      this.metrics.retried.inc(batch.lines.length);
      result = await this.post(batch.lines);
    }
    if (result.kind === 'ok') {
      this.memoryBytes -= batch.bytes;
      return;
    }
    if (result.kind === 'reject' && result.status === 413 && batch.lines.length > 1) {
      // Too large for Akto (or a proxy in front of it): send the halves instead, first in line.
      this.shrinkBatches(batch.bytes);
      this.queue.unshift(...halves(batch.lines));
      return;
    }
    if (result.kind === 'reject') {
      this.memoryBytes -= batch.bytes;
      return this.reject(batch.lines, result);
    }
    if (this.stop.signal.aborted) {
      // Stopping: the batch goes to the spool with the rest.
      this.memoryBytes -= batch.bytes;
      for (const line of batch.lines) this.spool.append(line);
      return;
    }
    if (result.kind === 'suspect' && ++batch.suspects >= this.settings.errorAttempts) {
      if (batch.lines.length > 1) {
        // One bad record must not hold the others back: find it by halves.
        this.queue.unshift(...halves(batch.lines));
        return;
      }
      this.memoryBytes -= batch.bytes;
      return this.reject(batch.lines, result);
    }
    // Retryable: the batch stays in memory, first in line, and is sent again after the backoff.
    this.metrics.retried.inc(batch.lines.length);
    this.queue.unshift(batch);
    this.noteFailure(result);
  }

  /** Says once per outage that records now go to disk. */
  private noteSpooling(reason: string): void {
    const now = Date.now();
    if (!this.spooling) {
      this.spooling = true;
      this.lastGrowthLog = now;
      this.logger.warn({ reason, spoolBytes: this.spool.bytes }, 'trace delivery to Akto is falling behind; spooling records to disk (SPOOL_DIR)');
    } else if (now - this.lastGrowthLog >= GROWTH_LOG_INTERVAL_MS) {
      this.lastGrowthLog = now;
      this.logger.warn({ spoolBytes: this.spool.bytes, segments: this.spool.segments }, 'trace spool is growing while Akto is unreachable or slow');
    }
  }

  private startReplay(): void {
    if (this.replay || this.closing) return;
    const run: Promise<void> = this.replayLoop().finally(() => {
      if (this.replay === run) this.replay = undefined;
      // Records may have arrived between the loop's last look and now.
      if (!this.closing && !this.spool.isEmpty) this.startReplay();
    });
    this.replay = run;
  }

  /** Moves records not yet sent from memory to the spool, keeping their order. */
  private spillQueue(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending.length > 0) this.queue.push({ lines: this.pending, bytes: this.pendingBytes, suspects: 0 });
    this.pending = [];
    this.pendingBytes = 0;
    for (const batch of this.queue.splice(0)) {
      for (const line of batch.lines) this.spool.append(line);
      this.memoryBytes -= batch.bytes;
    }
  }

  private async replayLoop(): Promise<void> {
    try {
      while (!this.stop.signal.aborted) {
        // Write-ahead: let the active segment collect a batch's worth before taking it.
        if (this.settings.writeAhead && !this.closing && this.spool.bytes < this.settings.maxBatchBytes && !this.spool.hasSealed) {
          await this.pause(this.settings.batchIntervalMs);
        }
        const seg = await this.spool.takeOldest();
        if (!seg) {
          if (this.spool.isEmpty) break;
          // Only records still being written: give the write a moment.
          await this.pause(10);
          continue;
        }
        try {
          await this.replaySegment(seg);
        } finally {
          this.spool.release(seg);
        }
      }
      if (!this.stop.signal.aborted && this.spool.isEmpty && this.spooling) {
        this.spooling = false;
        this.logger.info('trace spool drained; delivering from memory again');
      }
    } catch (err) {
      this.logger.error({ err: errorText(err) }, 'trace spool replay failed; retrying');
      await this.pause(this.settings.retryMaxMs);
    }
  }

  /** Sends one segment with up to maxInFlight POSTs; deletes it, or keeps what was not delivered. */
  private async replaySegment(seg: Segment): Promise<void> {
    const lines = await this.spool.read(seg);
    const batches = splitBatches(lines, this.settings.batchSize, this.batchBytes);
    const delivered = new Array<boolean>(batches.length).fill(false);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < batches.length && !this.stop.signal.aborted) {
        const i = next++;
        delivered[i] = await this.sendWithRetry(batches[i]);
      }
    };
    const workers = Math.min(this.settings.maxInFlight, batches.length);
    await Promise.all(Array.from({ length: workers }, worker));
    if (delivered.every(Boolean)) await this.spool.remove(seg);
    else await this.spool.rewrite(seg, batches.filter((_, i) => !delivered[i]).flat());
  }

  /** True once the batch is delivered or dead-lettered; false if stopped first. */
  private async sendWithRetry(lines: string[]): Promise<boolean> {
    let suspects = 0;
    for (;;) {
      await this.pause(this.retryAt - Date.now());
      if (this.stop.signal.aborted) return false;
      await this.acquireSlot();
      let result: PostResult;
      try {
        result = await this.post(lines);
      } finally {
        this.releaseSlot();
      }
      if (result.kind === 'ok') return true;
      const split = (result.kind === 'reject' && result.status === 413) || (result.kind === 'suspect' && ++suspects >= this.settings.errorAttempts);
      if (split && lines.length > 1) {
        if (result.kind === 'reject') this.shrinkBatches(Buffer.byteLength(batchBody(lines)));
        const mid = lines.length >> 1;
        return (await this.sendWithRetry(lines.slice(0, mid))) && this.sendWithRetry(lines.slice(mid));
      }
      if (result.kind === 'reject' || split) {
        await this.reject(lines, result as Extract<PostResult, { kind: 'reject' | 'suspect' }>);
        return true;
      }
      if (this.stop.signal.aborted) return false;
      this.metrics.retried.inc(lines.length);
      this.noteFailure(result as Failure);
    }
  }

  private async post(lines: string[]): Promise<PostResult> {
    const started = process.hrtime.bigint();
    let result: PostResult;
    try {
      result = await this.sender.post(lines, this.stop.signal);
    } catch (err) {
      result = { kind: 'retry', reason: `network: ${errorText(err)}` };
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.metrics.batchDuration.observe({ result: result.kind }, seconds);
    if (result.kind === 'ok') {
      this.failures = 0;
      this.retryAt = 0;
      this.metrics.sent.inc(lines.length);
      if (result.acknowledged) this.metrics.acknowledged.inc(lines.length);
      this.metrics.lastSuccess.set(Date.now() / 1000);
    } else {
      this.metrics.batchFailures.inc({ reason: failureReason(result) });
    }
    return result;
  }

  /** Schedules the next attempt: Retry-After when given, slow for auth, else backoff with jitter. */
  private noteFailure(result: Failure): void {
    this.failures++;
    let wait: number;
    if (result.kind === 'auth') {
      wait = this.settings.authRetryMs;
      this.reportAuthRefused(result.status);
    } else {
      const ceiling = Math.min(this.settings.retryMaxMs, this.settings.retryBaseMs * 2 ** Math.min(this.failures - 1, 30));
      wait = ceiling / 2 + Math.random() * (ceiling / 2);
      if (result.retryAfterMs !== undefined) wait = Math.max(wait, Math.min(result.retryAfterMs, 10 * this.settings.retryMaxMs));
      this.logger.debug({ reason: describe(result), retryInMs: Math.round(wait) }, 'trace batch not delivered; will retry');
    }
    this.retryAt = Math.max(this.retryAt, Date.now() + wait);
  }

  /** One clear line naming AKTO_API_TOKEN, at most every few minutes however many batches fail. */
  reportAuthRefused(status: number): void {
    const now = Date.now();
    if (now - this.lastAuthLog < AUTH_LOG_INTERVAL_MS) return;
    this.lastAuthLog = now;
    this.logger.error(
      { status, retryInMs: this.settings.authRetryMs },
      `Akto refused the trace upload with HTTP ${status}: check AKTO_API_TOKEN (the raw token from Akto, no "Bearer " prefix). Records are kept and retried.`,
    );
  }

  private shrinkBatches(refusedBytes: number): void {
    const next = Math.max(MIN_BATCH_BYTES, Math.floor(refusedBytes / 2));
    if (next >= this.batchBytes) return;
    this.batchBytes = next;
    this.logger.warn(
      { refusedBytes, batchBytes: next },
      'Akto answered 413 to a trace batch: sending smaller batches (lower AKTO_MAX_BATCH_BYTES to match the limit in front of Akto)',
    );
  }

  private async reject(lines: string[], result: Extract<PostResult, { kind: 'reject' | 'suspect' }>): Promise<void> {
    const now = Date.now();
    if (now - this.lastRejectLog >= REJECT_LOG_INTERVAL_MS) {
      const why = result.kind === 'suspect' ? ` ${this.settings.errorAttempts} times in a row` : '';
      this.logger.error(
        { status: result.status, body: result.body, records: lines.length, file: this.deadLetter.file, suppressed: this.rejectsSuppressed },
        `Akto rejected a trace batch with HTTP ${result.status}${why}; moved it to the dead-letter file`,
      );
      this.lastRejectLog = now;
      this.rejectsSuppressed = 0;
    } else this.rejectsSuppressed++;
    await this.deadLetter.add(lines, result.status, result.body);
  }

  private acquireSlot(): Promise<void> {
    if (this.inFlight < this.settings.maxInFlight) {
      this.inFlight++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.slotWaiters.push(resolve));
  }

  /** Frees a slot: memory batches first (they hold memory), then waiting replay workers. */
  private releaseSlot(): void {
    this.inFlight--;
    this.pump();
    while (this.inFlight < this.settings.maxInFlight && this.slotWaiters.length > 0) {
      this.inFlight++;
      (this.slotWaiters.shift() as () => void)();
    }
  }

  private pause(ms: number): Promise<void> {
    if (ms <= 0 || this.stop.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const onAbort = (): void => {
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(() => {
        this.stop.signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      this.stop.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

function halves(lines: string[]): Batch[] {
  const mid = lines.length >> 1;
  return [lines.slice(0, mid), lines.slice(mid)].map(toBatch);
}

function toBatch(lines: string[]): Batch {
  let bytes = 0;
  for (const l of lines) bytes += Buffer.byteLength(l) + 1;
  return { lines, bytes, suspects: 0 };
}

/** Groups records by count and bytes so each POST stays under the body limit. */
export function splitBatches(lines: readonly string[], maxCount: number, maxBytes: number): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  let bytes = ENVELOPE_BYTES;
  for (const line of lines) {
    const b = Buffer.byteLength(line) + 1;
    if (cur.length > 0 && (cur.length >= maxCount || bytes + b > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = ENVELOPE_BYTES;
    }
    cur.push(line);
    bytes += b;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

function failureReason(result: Exclude<PostResult, { kind: 'ok' }>): string {
  if (result.kind === 'auth') return 'auth';
  if (result.kind === 'reject') return 'rejected';
  if (result.kind === 'suspect') return `http_${result.status}`;
  if (result.status === undefined) return result.reason === 'timeout' ? 'timeout' : 'network';
  if (result.status >= 500) return 'http_5xx';
  return `http_${result.status}`;
}

function describe(result: Failure): string {
  if (result.kind === 'auth') return `HTTP ${result.status} (AKTO_API_TOKEN refused)`;
  if (result.kind === 'suspect') return `HTTP ${result.status}`;
  return result.reason;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
