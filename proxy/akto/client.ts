import * as http from 'node:http';
import * as https from 'node:https';
import type { Env } from '../../common/env';
import { createUpstreamAgent } from '../http/agents';
import { aktoRoute } from '../ingest/sender';
import type { Stage } from '../protocols/exchange';

/** Why a check produced no verdict; each is counted and decided by AKTO_GUARDRAILS_ON_ERROR. */
export type CheckErrorReason =
  | 'timeout'
  | 'network'
  | 'http_4xx'
  | 'http_5xx'
  | 'auth'
  | 'unreadable'
  | 'fail_open'
  | 'invalid_modified'
  | 'too_large'
  | 'no_body'
  | 'circuit_open'
  | 'internal';

export type CheckAnswer = { kind: 'answer'; body: string } | { kind: 'error'; reason: CheckErrorReason; detail: string };

export interface GuardrailsCall {
  phase: Stage;
  /** The record, serialized (the ingest record builder's output plus contextSource). */
  body: string;
  /** Session and request headers Akto correlates on. */
  headers: Record<string, string>;
}

export interface AktoGuardrailsClient {
  check(call: GuardrailsCall): Promise<CheckAnswer>;
  close(): void;
}

export interface ClientSettings {
  baseUrl: URL;
  token?: string;
  connector: string;
  timeoutMs: number;
  /** Answers larger than this are unreadable (a ModifiedPayload is about as large as the body sent). */
  maxAnswerBytes: number;
}

/**
 * POSTs one record to `{base}/api/http-proxy` per check over a kept-alive pool, with one deadline that covers
 * queueing for a socket, connecting, and reading the whole answer. Never throws: every failure is a reason.
 * Query parameters as Akto's reference clients send them: `guardrails=true` for the request phase,
 * `response_guardrails=true` for the response phase, `ingest_data=false` (traces go through /api/ingestData).
 */
export function createGuardrailsClient(settings: ClientSettings, env: Env): AktoGuardrailsClient {
  const route = aktoRoute(settings.baseUrl, '/api/http-proxy');
  const urls: Record<Stage, URL> = { request: withQuery(route, 'guardrails', settings.connector), response: withQuery(route, 'response_guardrails', settings.connector) };
  const agent = createUpstreamAgent(settings.baseUrl, env);
  const request = settings.baseUrl.protocol === 'https:' ? https.request : http.request;

  return {
    check(call) {
      const headers: http.OutgoingHttpHeaders = { ...call.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(call.body) };
      if (settings.token !== undefined) headers.authorization = settings.token;
      return new Promise<CheckAnswer>((resolve) => {
        let settled = false;
        const done = (a: CheckAnswer): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(a);
        };
        const req = request(urls[call.phase], { method: 'POST', agent, headers }, (res) => {
          const status = res.statusCode ?? 0;
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > settings.maxAnswerBytes) {
              done({ kind: 'error', reason: 'unreadable', detail: `answer over ${settings.maxAnswerBytes} bytes` });
              req.destroy();
            } else chunks.push(c);
          });
          res.on('error', (err) => done({ kind: 'error', reason: 'network', detail: err.message }));
          res.on('end', () => {
            if (status >= 200 && status < 300) return done({ kind: 'answer', body: Buffer.concat(chunks).toString('utf8') });
            const reason: CheckErrorReason = status === 401 || status === 403 ? 'auth' : status >= 500 ? 'http_5xx' : 'http_4xx';
            done({ kind: 'error', reason, detail: `HTTP ${status}` });
          });
        });
        const timer = setTimeout(() => {
          done({ kind: 'error', reason: 'timeout', detail: `no verdict within ${settings.timeoutMs} ms` });
          req.destroy();
        }, settings.timeoutMs);
        req.on('error', (err: NodeJS.ErrnoException) => done({ kind: 'error', reason: 'network', detail: err.code ?? err.message }));
        req.end(call.body);
      });
    },
    close() {
      agent.destroy();
    },
  };
}

function withQuery(route: URL, phaseFlag: 'guardrails' | 'response_guardrails', connector: string): URL {
  const url = new URL(route.href);
  url.searchParams.set(phaseFlag, 'true');
  url.searchParams.set('ingest_data', 'false');
  url.searchParams.set('akto_connector', connector);
  return url;
}
