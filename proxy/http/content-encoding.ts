import zlib from 'node:zlib';

export type ContentDecoding =
  | { ok: true; body: Buffer; /** The codings undone, outermost first; empty when the body was identity-coded. */ codings: string[] }
  | { ok: false; tooLarge: true }
  | { ok: false; tooLarge: false; reason: string };

type Inflate = (buf: Buffer, opts: zlib.ZlibOptions | zlib.BrotliOptions) => Promise<Buffer>;

function promisify(fn: (buf: Buffer, opts: zlib.ZlibOptions, cb: (err: Error | null, out: Buffer) => void) => void): Inflate {
  return (buf, opts) => new Promise((resolve, reject) => fn(buf, opts as zlib.ZlibOptions, (err, out) => (err ? reject(err) : resolve(out))));
}

const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);
const inflateRaw = promisify(zlib.inflateRaw);
const brotli = promisify(zlib.brotliDecompress as typeof zlib.gunzip);

/** Decoders by content-coding name (RFC 9110 §8.4.1; x-gzip is gzip). deflate is zlib-wrapped, or raw as some clients send it. */
const DECODERS: Record<string, Inflate> = {
  gzip: gunzip,
  'x-gzip': gunzip,
  deflate: async (buf, opts) => {
    try {
      return await inflate(buf, opts);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw err;
      return inflateRaw(buf, opts);
    }
  },
  br: brotli,
};

/** The codings a Content-Encoding header lists, in the order they were applied (identity left out). */
export function contentCodings(header: string | undefined): string[] {
  return (header ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
}

/**
 * Undoes a request's Content-Encoding (stacked codings in reverse order), never producing more than `limit`
 * bytes at any step: a zip bomb stops at the bound (maxOutputLength) instead of being inflated.
 */
export async function decodeContentEncoding(body: Buffer, header: string | undefined, limit: number): Promise<ContentDecoding> {
  const codings = contentCodings(header);
  if (codings.length === 0) return { ok: true, body, codings };
  let out = body;
  for (const coding of [...codings].reverse()) {
    const decode = DECODERS[coding];
    if (!decode) return { ok: false, tooLarge: false, reason: `unsupported content-encoding "${coding.slice(0, 32)}"` };
    try {
      out = await decode(out, { maxOutputLength: limit });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return { ok: false, tooLarge: true };
      return { ok: false, tooLarge: false, reason: `body is not valid ${coding}` };
    }
  }
  return { ok: true, body: out, codings };
}
