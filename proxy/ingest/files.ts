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
  let written = 0;
  try {
    while (written < buf.length) {
      const { bytesWritten } = await fh.write(buf, written, buf.length - written);
      if (bytesWritten <= 0) throw Object.assign(new Error('no space left on device (write wrote nothing)'), { code: 'ENOSPC' });
      written += bytesWritten;
    }
  } catch (err) {
    throw new PartialWriteError(written, err);
  }
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
