import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import type { Logger } from '../../common/logger';
import type { SpoolSettings } from './config';
import { diskFiles, type FileOpener, PartialWriteError, wholeLines, writeLines } from './files';
import type { IngestMetrics } from './metrics';

/** One closed, append-only file of records, one JSON record per line. */
export interface Segment {
  readonly name: string;
  bytes: number;
}

const SEGMENT_RE = /^seg-(\d{12})\.jsonl$/;
/** Appends this large are written at once instead of waiting for the next tick. */
const FLUSH_NOW_BYTES = 256 * 1024;
const WRITE_ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * The disk spool: records that could not go to Akto from memory. Appends are buffered for one
 * tick and written with one write() per flush to the active segment; a segment is fsync'ed when
 * it is sealed and at most every fsyncIntervalMs while active (0 = every flush). A process crash
 * (SIGKILL, OOM) loses nothing that was flushed; a machine crash can lose the last interval.
 * Segments are replayed oldest-first; past maxBytes the oldest segment is dropped and counted.
 * A write that fails part-way (disk full) keeps only the whole lines it wrote (the torn tail is
 * cut off) and hands the lines that did not reach the disk to `onUnwritten`; only lines on disk
 * count as spooled.
 */
export class Spool {
  private readonly sealed: Segment[] = [];
  private active?: { seg: Segment; fh: FileHandle; dirty: boolean; lastSync: number };
  private buffer: string[] = [];
  private bufferBytes = 0;
  private diskBytes = 0;
  /** Handed to the write chain, not yet on disk. */
  private writingBytes = 0;
  /** Lines of the current writeLines call already on disk. */
  private writeProgress = 0;
  private seq = 0;
  private chain: Promise<void> = Promise.resolve();
  private flushScheduled = false;
  private fsyncTimer?: NodeJS.Timeout;
  private readonly reading = new Set<string>();
  private closed = false;
  private lastWriteErrorLog = -Infinity;
  private unwrittenSinceLog = 0;
  /** Lines a failed write did not get to disk. By default they are counted as lost; Delivery takes them back. */
  onUnwritten: (lines: string[]) => void = (lines) => this.metrics.dropped.inc({ reason: 'spool_write' }, lines.length);

  private constructor(
    private readonly settings: SpoolSettings,
    private readonly logger: Logger,
    private readonly metrics: IngestMetrics,
    private readonly files: FileOpener,
  ) {}

  /** Opens (creating) the spool directory and adopts the segments a previous run left behind. */
  static async open(settings: SpoolSettings, logger: Logger, metrics: IngestMetrics, files: FileOpener = diskFiles): Promise<Spool> {
    const spool = new Spool(settings, logger, metrics, files);
    metrics.spoolSource = () => spool.bytes;
    await fsp.mkdir(settings.dir, { recursive: true });
    const names = (await fsp.readdir(settings.dir)).filter((n) => SEGMENT_RE.test(n)).sort();
    for (const name of names) {
      const { size } = await fsp.stat(path.join(settings.dir, name));
      if (size === 0) {
        await fsp.unlink(path.join(settings.dir, name));
        continue;
      }
      spool.sealed.push({ name, bytes: size });
      spool.diskBytes += size;
    }
    const last = names.at(-1);
    spool.seq = last ? Number(SEGMENT_RE.exec(last)?.[1]) + 1 : 1;
    if (spool.sealed.length > 0) {
      logger.info({ dir: settings.dir, segments: spool.sealed.length, bytes: spool.diskBytes }, 'trace spool holds records from a previous run; replaying them');
    }
    return spool;
  }

  /** Bytes on disk plus bytes waiting to be written. */
  get bytes(): number {
    return this.diskBytes + this.writingBytes + this.bufferBytes;
  }

  get segments(): number {
    return this.sealed.length + (this.active ? 1 : 0);
  }

  /** A closed segment is waiting for replay. */
  get hasSealed(): boolean {
    return this.sealed.some((s) => !this.reading.has(s.name));
  }

  get isEmpty(): boolean {
    return this.bytes === 0;
  }

  /** Queues one record line (no newline) for the spool. Never throws. */
  append(line: string): void {
    this.buffer.push(line);
    this.bufferBytes += Buffer.byteLength(line) + 1;
    if (this.bufferBytes >= FLUSH_NOW_BYTES) void this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  /** Writes buffered lines to disk. Resolves once they are written (not necessarily fsync'ed). */
  flush(): Promise<void> {
    this.flushScheduled = false;
    if (this.buffer.length === 0) return this.chain;
    const lines = this.buffer;
    const bytes = this.bufferBytes;
    this.buffer = [];
    this.bufferBytes = 0;
    this.writingBytes += bytes;
    return this.enqueue(async () => {
      try {
        await this.writeLines(lines);
      } catch (err) {
        this.writingBytes -= this.unwritten(lines);
        const unwritten = lines.slice(this.writeProgress);
        this.unwrittenSinceLog += unwritten.length;
        const now = Date.now();
        if (now - this.lastWriteErrorLog >= WRITE_ERROR_LOG_INTERVAL_MS) {
          this.lastWriteErrorLog = now;
          this.logger.error({ err: errorText(err), dir: this.settings.dir, records: this.unwrittenSinceLog }, 'trace spool write failed (SPOOL_DIR); records not written to disk');
          this.unwrittenSinceLog = 0;
        }
        // Start the next write in a fresh segment.
        await this.sealActive().catch(() => undefined);
        this.onUnwritten(unwritten);
      }
      await this.enforceBound();
    });
  }

  /**
   * The oldest segment to replay, sealing the active one when it is the only one left. The
   * segment is protected from bound drops until remove(), rewrite() or release().
   */
  async takeOldest(): Promise<Segment | undefined> {
    await this.flush();
    return this.enqueue(async () => {
      let seg = this.sealed.find((s) => !this.reading.has(s.name));
      if (!seg && this.active && this.active.seg.bytes > 0) {
        await this.sealActive();
        seg = this.sealed.find((s) => !this.reading.has(s.name));
      }
      if (seg) this.reading.add(seg.name);
      return seg;
    });
  }

  /** The records of a segment, oldest first. Unparseable lines (a torn write) are counted and skipped. */
  async read(seg: Segment): Promise<string[]> {
    let text: string;
    try {
      text = await fsp.readFile(path.join(this.settings.dir, seg.name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    // Lines are written whole, so only a crash can leave a torn line, and only at a segment's
    // end: the last line is parsed, the others get a cheap shape check (catches zero-filled tails).
    const parts = text.split('\n');
    while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
    const lines: string[] = [];
    let corrupt = 0;
    for (let i = 0; i < parts.length; i++) {
      const line = parts[i];
      if (line === '') continue;
      if (line.charCodeAt(0) === 0x7b && line.charCodeAt(line.length - 1) === 0x7d && (i < parts.length - 1 || parsesAsJson(line))) lines.push(line);
      else corrupt++;
    }
    if (corrupt > 0) {
      this.metrics.dropped.inc({ reason: 'corrupt' }, corrupt);
      this.logger.error({ segment: seg.name, records: corrupt }, 'trace spool segment had unreadable lines (torn write); they are dropped');
    }
    return lines;
  }

  /** The segment is delivered: delete it. */
  remove(seg: Segment): Promise<void> {
    return this.enqueue(async () => {
      this.reading.delete(seg.name);
      const i = this.sealed.indexOf(seg);
      if (i < 0) return;
      this.sealed.splice(i, 1);
      this.diskBytes -= seg.bytes;
      await fsp.rm(path.join(this.settings.dir, seg.name), { force: true });
    });
  }

  /** Part of the segment was delivered: keep only the rest (atomically, via rename). */
  rewrite(seg: Segment, remaining: readonly string[]): Promise<void> {
    if (remaining.length === 0) return this.remove(seg);
    return this.enqueue(async () => {
      this.reading.delete(seg.name);
      if (!this.sealed.includes(seg)) return;
      const file = path.join(this.settings.dir, seg.name);
      const tmp = `${file}.tmp`;
      const fh = await this.files.open(tmp, 'w');
      let bytes: number;
      try {
        bytes = await writeLines(fh, remaining);
        await fh.sync();
      } catch (err) {
        // The segment itself is untouched: its records are replayed (again) later.
        await fh.close().catch(() => undefined);
        await fsp.rm(tmp, { force: true });
        throw err;
      }
      await fh.close();
      await fsp.rename(tmp, file);
      this.diskBytes += bytes - seg.bytes;
      seg.bytes = bytes;
    });
  }

  /** Replay of the segment stopped; it may be taken again later. */
  release(seg: Segment): void {
    this.reading.delete(seg.name);
  }

  /** Writes what is buffered, fsyncs and closes the active segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    if (this.fsyncTimer) clearTimeout(this.fsyncTimer);
    await this.enqueue(() => this.sealActive());
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.chain.then(task);
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Appends lines, sealing the active segment whenever it reaches segmentBytes. */
  private async writeLines(lines: string[]): Promise<void> {
    this.writeProgress = 0;
    let start = 0;
    while (start < lines.length) {
      const active = this.active ?? (await this.openActive());
      let end = start;
      let bytes = 0;
      while (end < lines.length && (end === start || active.seg.bytes + bytes < this.settings.segmentBytes)) {
        bytes += Buffer.byteLength(lines[end]) + 1;
        end++;
      }
      const chunk = lines.slice(start, end);
      try {
        await writeLines(active.fh, chunk);
      } catch (err) {
        const written = err instanceof PartialWriteError ? err.written : 0;
        const whole = wholeLines(chunk, written);
        this.commit(active, whole.count, whole.bytes);
        this.writeProgress = start + whole.count;
        // A torn last line is cut off, so the file holds whole records only.
        if (written > whole.bytes) await active.fh.truncate(active.seg.bytes).catch(() => undefined);
        throw err;
      }
      this.commit(active, chunk.length, bytes);
      start = end;
      this.writeProgress = start;
      if (active.seg.bytes >= this.settings.segmentBytes) await this.sealActive();
    }
    if (!this.active) return;
    if (this.settings.fsyncIntervalMs === 0 || Date.now() - this.active.lastSync >= this.settings.fsyncIntervalMs) {
      await this.syncActive();
    } else if (!this.fsyncTimer && !this.closed) {
      this.fsyncTimer = setTimeout(() => {
        this.fsyncTimer = undefined;
        void this.enqueue(() => this.syncActive());
      }, this.settings.fsyncIntervalMs);
      this.fsyncTimer.unref();
    }
  }

  /** Lines that are on disk now. */
  private commit(active: NonNullable<Spool['active']>, count: number, bytes: number): void {
    if (count === 0) return;
    active.seg.bytes += bytes;
    active.dirty = true;
    this.diskBytes += bytes;
    this.writingBytes -= bytes;
    this.metrics.spooled.inc(count);
  }

  /** Bytes of the lines a failed writeLines did not get to disk. */
  private unwritten(lines: string[]): number {
    let n = 0;
    for (let i = this.writeProgress; i < lines.length; i++) n += Buffer.byteLength(lines[i]) + 1;
    return n;
  }

  private async openActive(): Promise<NonNullable<Spool['active']>> {
    const name = `seg-${String(this.seq++).padStart(12, '0')}.jsonl`;
    const fh = await this.files.open(path.join(this.settings.dir, name), 'a');
    this.active = { seg: { name, bytes: 0 }, fh, dirty: false, lastSync: Date.now() };
    return this.active;
  }

  private async syncActive(): Promise<void> {
    const active = this.active;
    if (!active || !active.dirty) return;
    await active.fh.sync();
    active.dirty = false;
    active.lastSync = Date.now();
  }

  private async sealActive(): Promise<void> {
    const active = this.active;
    if (!active) return;
    this.active = undefined;
    // The segment is tracked even if sync fails: its records are on disk and must be replayed.
    if (active.seg.bytes > 0) this.sealed.push(active.seg);
    try {
      await active.fh.sync();
    } finally {
      await active.fh.close();
      if (active.seg.bytes === 0) await fsp.rm(path.join(this.settings.dir, active.seg.name), { force: true });
    }
  }

  /** Past maxBytes, drop whole segments, oldest first, never the one being replayed. */
  private async enforceBound(): Promise<void> {
    while (this.diskBytes > this.settings.maxBytes) {
      let victim = this.sealed.find((s) => !this.reading.has(s.name));
      if (!victim && this.active) {
        await this.sealActive();
        victim = this.sealed.find((s) => !this.reading.has(s.name));
      }
      if (!victim) return;
      const file = path.join(this.settings.dir, victim.name);
      const records = await countLines(file);
      this.sealed.splice(this.sealed.indexOf(victim), 1);
      this.diskBytes -= victim.bytes;
      await fsp.rm(file, { force: true });
      this.metrics.dropped.inc({ reason: 'spool_full' }, records);
      this.logger.error(
        { segment: victim.name, records, bytes: victim.bytes, limit: this.settings.maxBytes },
        'trace spool is full (SPOOL_MAX_BYTES): dropped its oldest segment',
      );
    }
  }
}

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

async function countLines(file: string): Promise<number> {
  try {
    const buf = await fsp.readFile(file);
    let n = 0;
    for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) n++;
    return n;
  } catch {
    return 0;
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
