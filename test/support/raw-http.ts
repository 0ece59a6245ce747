import net from 'node:net';
import http from 'node:http';

export interface RawRequest {
  method?: string;
  /** Sent as the request target exactly as given (no URL parsing: `//`, `#`, `%2F`, absolute-form survive). */
  target: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/** One request to `base` with a raw request target; fetch() would normalise the very paths under test. */
export function sendRaw(base: string, r: RawRequest): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method: r.method ?? 'POST', path: r.target, headers: { connection: 'close', ...r.headers }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(r.body);
  });
}

export interface WireResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface WireExchange {
  /** Final responses in order (interim 1xx ones are in `interim`). */
  responses: WireResponse[];
  interim: number[];
  /** The server closed the connection. */
  closed: boolean;
}

/**
 * Writes `bytes` on one fresh TCP connection exactly as given (pipelined requests, hand-made framing, smuggling
 * attempts) and reads what comes back until `expect` final responses arrived, the server closed, or `waitMs`
 * passed. `heads` lists the requests whose responses have no body (HEAD), by position.
 */
export function wireExchange(base: string, bytes: string | Buffer, opts: { expect?: number; waitMs?: number; heads?: number[] } = {}): Promise<WireExchange> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const socket = net.connect(Number(url.port), url.hostname);
    let buf = Buffer.alloc(0);
    let closed = false;
    let parsed: { responses: WireResponse[]; interim: number[] } = { responses: [], interim: [] };
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parsed, closed });
    };
    const timer = setTimeout(finish, opts.waitMs ?? 3000);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      parsed = parseResponses(buf, opts.heads ?? []);
      if (opts.expect !== undefined && parsed.responses.length >= opts.expect) finish();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      parsed = parseResponses(buf, opts.heads ?? [], true);
      finish();
    });
  });
}

/**
 * Splits raw bytes into HTTP/1.1 responses (Content-Length, chunked, or up to the close). Bytes that cannot be a
 * response (no status line, a chunk size that is not hex) stop the split and are described in `garbled`.
 */
export function parseResponses(buf: Buffer, heads: number[] = [], atClose = false): { responses: WireResponse[]; interim: number[]; garbled?: string } {
  const responses: WireResponse[] = [];
  const interim: number[] = [];
  const garbled = (pos: number, what: string) => ({ responses, interim, garbled: `${what} at byte ${pos}: ${JSON.stringify(buf.subarray(pos, pos + 80).toString('latin1'))}` });
  let at = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end === -1) break;
    if (!/^HTTP\/1\.[01] \d{3}/.test(buf.subarray(at, at + 12).toString('latin1'))) return garbled(at, 'no status line');
    const lines = buf.subarray(at, end).toString('latin1').split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let pos = end + 4;
    if (status >= 100 && status < 200) {
      interim.push(status);
      at = pos;
      continue;
    }
    let body: Buffer;
    if (heads.includes(responses.length) || status === 204 || status === 304) body = Buffer.alloc(0);
    else if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      const parts: Buffer[] = [];
      let complete = false;
      for (;;) {
        const eol = buf.indexOf('\r\n', pos);
        if (eol === -1) break;
        const sizeLine = buf.subarray(pos, eol).toString('latin1');
        if (!/^[0-9a-fA-F]{1,16}$/.test(sizeLine)) return garbled(pos, 'a chunk size that is not hex');
        const size = parseInt(sizeLine, 16);
        if (size === 0) {
          // No trailers: an empty line follows at once; else trailer lines up to an empty one.
          const trailersEnd = buf.subarray(eol + 2, eol + 4).toString('latin1') === '\r\n' ? eol + 2 : buf.indexOf('\r\n\r\n', eol + 2);
          if (trailersEnd === -1 || buf.length < trailersEnd + 2) break;
          pos = trailersEnd === eol + 2 ? eol + 4 : trailersEnd + 4;
          complete = true;
          break;
        }
        if (buf.length < eol + 2 + size + 2) break;
        parts.push(buf.subarray(eol + 2, eol + 2 + size));
        pos = eol + 2 + size + 2;
      }
      if (!complete) break;
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (buf.length < pos + n) break;
      body = buf.subarray(pos, pos + n);
      pos += n;
    } else {
      if (!atClose) break;
      body = buf.subarray(pos);
      pos = buf.length;
    }
    responses.push({ status, headers, body });
    at = pos;
  }
  return { responses, interim };
}
