import * as http from 'node:http';
import * as https from 'node:https';

/** How one POST ended, in the terms delivery acts on. */
export type PostResult =
  /** 2xx. `acknowledged`: the body said {"success":true}; Akto's ingestData answers {"success":false} even when it stored the batch. */
  | { kind: 'ok'; status: number; acknowledged: boolean }
  /** Network error, timeout, 408, 429 or a 5xx other than 500: try again later. */
  | { kind: 'retry'; reason: string; status?: number; retryAfterMs?: number }
  /** 401/403: the token is wrong; keep the records and retry slowly. */
  | { kind: 'auth'; status: number }
  /**
   * 500 or 422: Akto's ingestion service answers 500 to a body it cannot parse and 422 to one
   * without batchData, but also 500 when it breaks and 422 when its Kafka insert throws. Retried a
   * few times; a batch that keeps failing is split, and a single record that still fails is dead-lettered.
   */
  | { kind: 'suspect'; status: number; body: string; retryAfterMs?: number }
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

/**
 * POSTs batches to `{base}/api/ingestData` over a keep-alive agent with maxSockets = maxInFlight.
 * `timeoutMs` bounds the whole exchange, response body included: an Akto that answers 200 and
 * never ends the body must not hold a delivery slot (the socket is destroyed, the batch retried).
 */
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
        let timedOut = false;
        const done = (r: PostResult): void => {
          if (settled) return;
          settled = true;
          clearTimeout(deadline);
          resolve(r);
        };
        const failed = (err: Error): void => {
          done({ kind: 'retry', reason: timedOut ? 'timeout' : `network: ${(err as NodeJS.ErrnoException).code ?? err.message}` });
        };
        const req = request(url, { method: 'POST', agent, headers, signal }, (res) => {
          const chunks: Buffer[] = [];
          let kept = 0;
          res.on('data', (c: Buffer) => {
            if (kept < BODY_KEEP) {
              chunks.push(c);
              kept += c.length;
            }
          });
          res.on('error', failed);
          res.on('aborted', () => failed(new Error('response aborted')));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const text = Buffer.concat(chunks).toString('utf8').slice(0, BODY_KEEP);
            done(classify(status, text, res.headers['retry-after']));
          });
        });
        const deadline = setTimeout(() => {
          timedOut = true;
          req.destroy(new Error(`no complete answer within ${timeoutMs} ms`));
        }, timeoutMs);
        req.on('error', failed);
        req.on('close', () => failed(new Error('connection closed')));
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
  if (status >= 200 && status < 300) return { kind: 'ok', status, acknowledged: acknowledges(body) };
  if (status === 401 || status === 403) return { kind: 'auth', status };
  if (status === 500 || status === 422) return { kind: 'suspect', status, body, retryAfterMs: parseRetryAfter(retryAfter) };
  if (status === 408 || status === 429 || status >= 500 || status < 200) {
    return { kind: 'retry', reason: `http ${status}`, status, retryAfterMs: parseRetryAfter(retryAfter) };
  }
  return { kind: 'reject', status, body };
}

/** {"success":true}: the only positive statement a 2xx body can make. */
function acknowledges(body: string): boolean {
  try {
    const parsed: unknown = JSON.parse(body);
    return typeof parsed === 'object' && parsed !== null && (parsed as { success?: unknown }).success === true;
  } catch {
    return false;
  }
}

/** Retry-After as seconds or an HTTP date, in milliseconds from now. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
