import * as http from 'node:http';
import * as https from 'node:https';

/** How one POST ended, in the terms delivery acts on. */
export type PostResult =
  | { kind: 'ok'; status: number }
  /** Network error, timeout, 408, 429 or 5xx: try again later. */
  | { kind: 'retry'; reason: string; status?: number; retryAfterMs?: number }
  /** 401/403: the token is wrong; keep the records and retry slowly. */
  | { kind: 'auth'; status: number }
  /** Any other 4xx: the batch itself is unacceptable. */
  | { kind: 'reject'; status: number; body: string };

export interface BatchSender {
  post(records: readonly string[], signal?: AbortSignal): Promise<PostResult>;
  close(): void;
}

/** Response bodies are kept only this long, for error logs. */
const BODY_KEEP = 2048;

/** Wraps already-serialized records in Akto's `{"batchData":[...]}` envelope. */
export function batchBody(records: readonly string[]): string {
  return `{"batchData":[${records.join(',')}]}`;
}

/** POSTs batches to `{base}/api/ingestData` over a keep-alive agent with maxSockets = maxInFlight. */
export function createAktoSender(baseUrl: URL, token: string | undefined, maxInFlight: number, timeoutMs: number): BatchSender {
  const url = aktoRoute(baseUrl, '/api/ingestData');
  const secure = url.protocol === 'https:';
  const agent = secure
    ? new https.Agent({ keepAlive: true, maxSockets: maxInFlight })
    : new http.Agent({ keepAlive: true, maxSockets: maxInFlight });
  const request = secure ? https.request : http.request;

  return {
    post(records, signal) {
      // The socket encodes the string as it writes; a Buffer.from copy first cost ~2% of a traced request's CPU.
      const body = batchBody(records);
      const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
      if (token !== undefined) headers.authorization = token;
      return new Promise<PostResult>((resolve) => {
        let settled = false;
        const done = (r: PostResult): void => {
          if (settled) return;
          settled = true;
          resolve(r);
        };
        const req = request(url, { method: 'POST', agent, headers, signal, timeout: timeoutMs }, (res) => {
          const chunks: Buffer[] = [];
          let kept = 0;
          res.on('data', (c: Buffer) => {
            if (kept < BODY_KEEP) {
              chunks.push(c);
              kept += c.length;
            }
          });
          res.on('error', (err) => done({ kind: 'retry', reason: `network: ${err.message}` }));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const text = Buffer.concat(chunks).toString('utf8').slice(0, BODY_KEEP);
            done(classify(status, text, res.headers['retry-after']));
          });
        });
        req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        req.on('error', (err) => {
          const timedOut = err.message.startsWith('no answer within');
          done({ kind: 'retry', reason: timedOut ? 'timeout' : `network: ${(err as NodeJS.ErrnoException).code ?? err.message}` });
        });
        req.end(body);
      });
    },
    close() {
      agent.destroy();
    },
  };
}

/** A route on the ingestion host; a base URL pasted with the route already on it still works. */
export function aktoRoute(baseUrl: URL, route: string): URL {
  const prefix = baseUrl.pathname.replace(/\/api\/(ingestData|auth-check)\/?$/, '').replace(/\/$/, '');
  return new URL(`${prefix}${route}`, baseUrl);
}

export function classify(status: number, body: string, retryAfter?: string): PostResult {
  if (status >= 200 && status < 300) return { kind: 'ok', status };
  if (status === 401 || status === 403) return { kind: 'auth', status };
  if (status === 408 || status === 429 || status >= 500 || status < 200) {
    return { kind: 'retry', reason: `http ${status}`, status, retryAfterMs: parseRetryAfter(retryAfter) };
  }
  return { kind: 'reject', status, body };
}

/** Retry-After as seconds or an HTTP date, in milliseconds from now. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
