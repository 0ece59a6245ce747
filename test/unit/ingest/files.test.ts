import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { diskFiles, PartialWriteError, writeFully, writeLines } from '../../../proxy/ingest/files';
import { fillingDisk, tempDir } from './harness';

const CHUNK = 64 * 1024;

/** Line sets around the chunk boundary, with multi-byte text, lone surrogates and lines larger than a chunk. */
const CASES: Record<string, string[]> = {
  none: [],
  'one empty line': [''],
  'short ASCII': ['{"a":1}', '{"b":2}', ''],
  'multi-byte': ['é'.repeat(1000), '😀'.repeat(5000), 'x\ud800y', '中'.repeat(21845)],
  'filling a chunk exactly': ['a'.repeat(CHUNK - 1), 'b'.repeat(CHUNK - 1)],
  'one byte over a chunk': ['a'.repeat(CHUNK), 'b'],
  'many mid-sized': Array.from({ length: 40 }, (_, i) => String.fromCharCode(97 + (i % 26)).repeat(9000 + i * 37)),
  'larger than a chunk between small ones': ['s', 'L'.repeat(3 * CHUNK + 5), 'é'.repeat(CHUNK), 't'],
};

describe('writeLines', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  test.each(Object.keys(CASES))('writes what joining the lines would: %s', async (name) => {
    const lines = CASES[name];
    const file = path.join(tmp.dir, `lines-${name.replace(/\W/g, '-')}`);
    const fh = await diskFiles.open(file, 'w');
    const written = await writeLines(fh, lines).finally(() => fh.close());
    const expected = lines.length === 0 ? '' : lines.join('\n') + '\n';
    expect(readFileSync(file)).toEqual(Buffer.from(expected, 'utf8'));
    expect(written).toBe(Buffer.byteLength(expected));
  });

  test.each([0, 1, 7, CHUNK - 3, CHUNK, CHUNK + 1, 2 * CHUNK + 11, 200_000])('a disk that fills after %d bytes: the same partial count as one joined write', async (budget) => {
    const lines = [...CASES['many mid-sized'], ...CASES['larger than a chunk between small ones']];
    const result = async (write: (fh: Awaited<ReturnType<typeof diskFiles.open>>) => Promise<number>, file: string): Promise<{ written: number; bytes: Buffer }> => {
      const fh = await fillingDisk({ bytes: budget }).open(path.join(tmp.dir, file), 'w');
      let written = -1;
      try {
        written = await write(fh);
      } catch (err) {
        expect(err).toBeInstanceOf(PartialWriteError);
        written = (err as PartialWriteError).written;
      } finally {
        await fh.close();
      }
      return { written, bytes: await fsp.readFile(path.join(tmp.dir, file)) };
    };
    const joined = await result((fh) => writeFully(fh, lines.join('\n') + '\n'), `joined-${budget}`);
    const chunked = await result((fh) => writeLines(fh, lines), `chunked-${budget}`);
    expect(chunked.written).toBe(joined.written);
    expect(chunked.written).toBe(chunked.bytes.length);
    expect(chunked.bytes).toEqual(joined.bytes);
  });
});
