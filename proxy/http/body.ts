import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import zlib from 'node:zlib';
import { contentCodings } from './content-encoding';
import { headerValue } from './headers';

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`request body exceeds ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/** Reads a whole request body as bytes, once, refusing more than `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      if (!req.complete) onError(new Error('client closed the request before its body ended'));
    };
    function cleanup(): void {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** Collects up to `limit` bytes of what is written, for traces; remembers whether it had to cut. */
export class Capture {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  /** Bytes seen, including those past the bound. */
  total = 0;
  truncated = false;

  constructor(private readonly limit: number) {}

  add(chunk: Buffer | string): void {
    this.total += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (this.size >= this.limit) {
      if (chunk.length > 0) this.truncated = true;
      return;
    }
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const room = this.limit - this.size;
    if (buf.length > room) {
      this.chunks.push(buf.subarray(0, room));
      this.size += room;
      this.truncated = true;
    } else {
      this.chunks.push(buf);
      this.size += buf.length;
    }
  }

  get bytes(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size);
  }
}

/** Decoders for the content codings a client decodes; gzip and deflate share one that detects the wrapper. */
const DECODERS: Record<string, () => Transform> = {
  gzip: () => zlib.createUnzip(),
  'x-gzip': () => zlib.createUnzip(),
  deflate: () => zlib.createUnzip(),
  br: () => zlib.createBrotliDecompress(),
};

/**
 * A response body as the client will read it: decoded per content-encoding (the last coding applied first),
 * with the encoding and length headers dropped from `headers`; the response itself when it is not encoded;
 * undefined for a coding that cannot be decoded here. `onError` hears a body that does not decode.
 */
export function decodedBody(res: IncomingMessage, headers: OutgoingHttpHeaders, onError: (err: Error) => void): Readable | undefined {
  const codings = contentCodings(headerValue(res.headers, 'content-encoding'));
  if (codings.length === 0) return res;
  if (codings.some((c) => DECODERS[c] === undefined)) return undefined;
  let out: Readable = res;
  for (const coding of codings.reverse()) {
    const decoder = DECODERS[coding]();
    decoder.on('error', onError);
    out = out.pipe(decoder);
  }
  delete headers['content-encoding'];
  delete headers['content-length'];
  return out;
}
