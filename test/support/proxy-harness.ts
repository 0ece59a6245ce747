import { Writable } from 'node:stream';
import { loadProxyConfig } from '../../proxy/config';
import type { ExchangeHooks } from '../../proxy/hooks';
import { startProxy, type RunningProxy } from '../../proxy/server';
import { createLogger, type Logger } from '../../common/logger';
import { createRegistry } from '../../common/metrics';
import type { Registry } from 'prom-client';
import { trackInFlight } from './in-flight';

export interface TestProxy extends RunningProxy {
  /** Every log line the proxy wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  registry: Registry;
}

/** Collects pino's JSON lines in memory so tests can assert on what the proxy logged. */
export function logSink(): { stream: Writable; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  let pending = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      pending += chunk.toString('utf8');
      let nl: number;
      while ((nl = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.trim()) lines.push(JSON.parse(line));
      }
      cb();
    },
  });
  return { stream, lines };
}

/** Builds hooks on the proxy's own env, logger and registry, as main does. */
export type HooksFactory = (ctx: { env: Record<string, string>; logger: Logger; registry: Registry }) => Promise<ExchangeHooks[]> | ExchangeHooks[];

/** Starts the data plane on loopback ports in front of `upstream`, with the given hooks. */
export async function startTestProxy(upstream: string, env: Record<string, string> = {}, hooks: ExchangeHooks[] | HooksFactory = []): Promise<TestProxy> {
  const fullEnv = { APP_URL: upstream, AKTO_PROXY_PORT: '0', ADMIN_PORT: '0', ADMIN_HOST: '127.0.0.1', LISTEN_HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env };
  const config = loadProxyConfig(fullEnv);
  const sink = logSink();
  const logger = createLogger(config.logLevel, sink.stream);
  const registry = createRegistry(false);
  const resolved = typeof hooks === 'function' ? await hooks({ env: fullEnv, logger, registry }) : hooks;
  const proxy = await startProxy({ config, hooks: resolved, logger, registry, env: fullEnv });
  return trackInFlight({ ...proxy, logs: sink.lines, registry }, registry);
}
