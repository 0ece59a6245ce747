import { Writable } from 'node:stream';
import type { IncomingHttpHeaders } from 'node:http';
import type { Exchange } from '../../../proxy/protocols/exchange';
import { parsedExchange } from '../../support/exchange';
import { createLogger, type Logger } from '../../../common/logger';

/** An exchange as the server builds it: route classified and body parsed by the real protocols code. */
export function exchange(body: unknown, opts: { path?: string; headers?: IncomingHttpHeaders; clientAddress?: string } = {}): Exchange {
  return parsedExchange('POST', opts.path ?? '/v1/chat/completions', body, {
    id: `ex-${Math.random().toString(36).slice(2, 8)}`,
    clientAddress: opts.clientAddress ?? '10.0.0.7',
    requestHeaders: { 'content-type': 'application/json', ...opts.headers },
  });
}

export function chat(text: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: 'tgi', messages: [{ role: 'user', content: text }], ...extra };
}

/** Marks an exchange as answered by the upstream with this completion. */
export function answer(ex: Exchange, text: string, usage?: Exchange['usage'], status = 200): Exchange {
  ex.output.push({ role: 'assistant', kind: 'completion', trusted: false, path: ['choices', 0, 'message', 'content'], choice: 0, text });
  ex.usage = usage;
  ex.upstreamMs = 5;
  ex.response = { status, headers: {} };
  ex.outcome = 'ok';
  return ex;
}

/** A clock the test moves by hand. */
export function manualClock(start = 1_700_000_000_000): { now: () => number; advance(ms: number): void; set(t: number): void } {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
    set(v: number) {
      t = v;
    },
  };
}

export function captureLogger(level: 'debug' | 'info' | 'warn' = 'info'): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: createLogger(level, stream), lines };
}

/** pino writes asynchronously through the stream; let it drain. */
export const flushLogs = (): Promise<void> => new Promise((r) => setImmediate(r));
