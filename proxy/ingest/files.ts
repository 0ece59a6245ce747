import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/** How the spool and the trace file open files; tests pass one whose disk fills up. */
export interface FileOpener {
  open(path: string, flags: string): Promise<FileHandle>;
}

export const diskFiles: FileOpener = { open: (path, flags) => fsp.open(path, flags) };

/** A write that stopped part-way: `written` bytes of it are in the file. */
export class PartialWriteError extends Error {
  constructor(readonly written: number, reason: unknown) {
    super(reason instanceof Error ? reason.message : String(reason));
    this.name = 'PartialWriteError';
  }
}

/**
 * Writes all of `text`. write(2) may write less than asked when the disk fills (and the next
 * call fails with ENOSPC); a short count is never taken for the whole. Throws PartialWriteError
 * saying how much reached the file.
 */
export async function writeFully(fh: FileHandle, text: string): Promise<number> {
  const buf = Buffer.from(text, 'utf8');
  return writeBytes(fh, buf, buf.length, 0);
}

/** Writes the first `length` bytes of buf; `before` bytes of the same call already reached the file. */
async function writeBytes(fh: FileHandle, buf: Buffer, length: number, before: number): Promise<number> {
  let written = 0;
  try {
    while (written < length) {
      const { bytesWritten } = await fh.write(buf, written, length - written);
      if (bytesWritten <= 0) throw Object.assign(new Error('no space left on device (write wrote nothing)'), { code: 'ENOSPC' });
      written += bytesWritten;
    }
  } catch (err) {
    throw new PartialWriteError(before + written, err);
  }
  return written;
}

/**
 * Lines are encoded into one buffer of this size and written a buffer at a time. Joining a batch into one string
 * and encoding that made two large objects per flush (hundreds of KiB each, mapped fresh and page-faulted in every
 * time, ~5 page faults per proxied request at 500 req/s).
 */
const LINE_CHUNK_BYTES = 64 * 1024;

/** Writes each line and a newline after it, like writeFully(lines.join('\n') + '\n'); same errors, same count. */
export async function writeLines(fh: FileHandle, lines: readonly string[]): Promise<number> {
  const chunk = Buffer.allocUnsafe(LINE_CHUNK_BYTES);
  let used = 0;
  let written = 0;
  for (const line of lines) {
    // A line may need up to 3 bytes per UTF-16 unit; one that might not fit the rest of the chunk is measured.
    const bytes = line.length * 3 + 1 <= LINE_CHUNK_BYTES - used ? -1 : Buffer.byteLength(line) + 1;
    if (bytes > LINE_CHUNK_BYTES - used && used > 0) {
      written += await writeBytes(fh, chunk, used, written);
      used = 0;
    }
    if (bytes > LINE_CHUNK_BYTES) {
      const big = Buffer.from(line + '\n', 'utf8');
      written += await writeBytes(fh, big, big.length, written);
      continue;
    }
    used += chunk.write(line, used, 'utf8');
    chunk[used++] = 10;
  }
  if (used > 0) written += await writeBytes(fh, chunk, used, written);
  return written;
}

/** How many of `lines` (each written with a trailing newline) fit whole in `bytes`, and their size. */
export function wholeLines(lines: readonly string[], bytes: number): { count: number; bytes: number } {
  let used = 0;
  let count = 0;
  for (const line of lines) {
    const size = Buffer.byteLength(line) + 1;
    if (used + size > bytes) break;
    used += size;
    count++;
  }
  return { count, bytes: used };
}
