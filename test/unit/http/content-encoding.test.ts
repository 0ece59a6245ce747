import zlib from 'node:zlib';
import { decodeContentEncoding } from '../../../proxy/http/content-encoding';

const text = Buffer.from('{"inputs":"hello"}');

describe('decodeContentEncoding', () => {
  test.each<[string, Buffer]>([
    ['gzip', zlib.gzipSync(text)],
    ['x-gzip', zlib.gzipSync(text)],
    ['deflate', zlib.deflateSync(text)],
    ['deflate', zlib.deflateRawSync(text)],
    ['br', zlib.brotliCompressSync(text)],
    ['gzip, br', zlib.brotliCompressSync(zlib.gzipSync(text))],
    ['GZIP , identity', zlib.gzipSync(text)],
  ])('%s', async (header, body) => {
    expect(await decodeContentEncoding(body, header, 1024)).toEqual({ ok: true, body: text, codings: expect.any(Array) });
  });

  test('identity or no header: the same bytes, nothing undone', async () => {
    expect(await decodeContentEncoding(text, undefined, 1024)).toEqual({ ok: true, body: text, codings: [] });
    expect(await decodeContentEncoding(text, 'identity', 1024)).toEqual({ ok: true, body: text, codings: [] });
  });

  test('a bomb stops at the bound at every step, stacked ones too', async () => {
    const bomb = zlib.gzipSync(Buffer.alloc(32 * 1024 * 1024));
    expect(await decodeContentEncoding(bomb, 'gzip', 1024 * 1024)).toEqual({ ok: false, tooLarge: true });
    expect(await decodeContentEncoding(zlib.gzipSync(bomb), 'gzip, gzip', 1024 * 1024)).toEqual({ ok: false, tooLarge: true });
  });

  test('unknown or corrupt codings are reported, never quoted', async () => {
    expect(await decodeContentEncoding(text, 'zstd', 1024)).toEqual({ ok: false, tooLarge: false, reason: 'unsupported content-encoding "zstd"' });
    expect(await decodeContentEncoding(text, 'gzip', 1024)).toEqual({ ok: false, tooLarge: false, reason: 'body is not valid gzip' });
  });
});
