/**
 * RESP2, the Redis wire protocol: encoding commands and parsing replies from a byte stream.
 * Pure: no sockets here (redis-client.ts owns the connection).
 */

export type RespValue = string | number | null | RespError | RespValue[];

/** An error reply (`-ERR ...`, `-NOSCRIPT ...`): a value, not a thrown exception, until the caller decides. */
export class RespError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RespError';
  }
}

/** `*N\r\n$len\r\narg\r\n...` for one command; lengths are byte lengths (arguments may be non-ASCII). */
export function encodeCommand(args: readonly (string | number)[]): string {
  let out = `*${args.length}\r\n`;
  for (const a of args) {
    const s = typeof a === 'string' ? a : String(a);
    out += `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
  }
  return out;
}

/** Thrown for bytes that are not RESP: the connection cannot be trusted after that. */
export class RespProtocolError extends Error {}

const INCOMPLETE = Symbol('incomplete');
type Parsed = { value: RespValue; end: number } | typeof INCOMPLETE;

/**
 * Incremental reply parser: feed it chunks as they arrive, get back every complete reply. A reply cut
 * between chunks is parsed again from its start once more bytes came (replies here are small).
 */
export class RespParser {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): RespValue[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: RespValue[] = [];
    let pos = 0;
    for (;;) {
      const r = parseAt(this.buf, pos);
      if (r === INCOMPLETE) break;
      out.push(r.value);
      pos = r.end;
    }
    this.buf = pos === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(pos);
    return out;
  }

  reset(): void {
    this.buf = Buffer.alloc(0);
  }
}

function parseAt(buf: Buffer, pos: number): Parsed {
  if (pos >= buf.length) return INCOMPLETE;
  const eol = buf.indexOf('\r\n', pos + 1, 'latin1');
  if (eol < 0) return INCOMPLETE;
  const type = buf[pos];
  const line = buf.toString('utf8', pos + 1, eol);
  const next = eol + 2;
  switch (type) {
    case 0x2b: // +
      return { value: line, end: next };
    case 0x2d: // -
      return { value: new RespError(line), end: next };
    case 0x3a: // :
      return { value: integer(line), end: next };
    case 0x24: {
      // $
      const len = integer(line);
      if (len < 0) return { value: null, end: next };
      if (next + len + 2 > buf.length) return INCOMPLETE;
      return { value: buf.toString('utf8', next, next + len), end: next + len + 2 };
    }
    case 0x2a: {
      // *
      const n = integer(line);
      if (n < 0) return { value: null, end: next };
      const items: RespValue[] = [];
      let at = next;
      for (let i = 0; i < n; i++) {
        const r = parseAt(buf, at);
        if (r === INCOMPLETE) return INCOMPLETE;
        items.push(r.value);
        at = r.end;
      }
      return { value: items, end: at };
    }
    default:
      throw new RespProtocolError(`unexpected reply type byte 0x${type.toString(16)}`);
  }
}

function integer(s: string): number {
  if (!/^-?\d+$/.test(s)) throw new RespProtocolError(`bad integer "${s.slice(0, 20)}"`);
  return Number(s);
}
