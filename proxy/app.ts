import type { Registry } from 'prom-client';
import pkg from '../package.json';
import { loadProxyConfig } from './config';
import type { Env } from './config-env';
import type { ExchangeHooks } from './hooks';
import { createIngest } from './ingest';
import { startProxy, type RunningProxy } from './server';
import { createLogger, type Logger } from './telemetry/logger';
import { createRegistry } from './telemetry/metrics';

export const VERSION: string = pkg.version;

export interface RunningApp extends RunningProxy {
  logger: Logger;
  registry: Registry;
}

/**
 * Builds the whole sidecar from the environment: config, features in data-flow order
 * (guardrails, limits, then traces), listeners. Config errors throw ConfigError before anything listens.
 */
export async function startApp(env: Env, opts: { logger?: Logger; registry?: Registry } = {}): Promise<RunningApp> {
  const config = loadProxyConfig(env);
  const logger = opts.logger ?? createLogger(config.logLevel);
  const registry = opts.registry ?? createRegistry();
  const ingest = await createIngest(env, logger, registry, { version: VERSION });
  const hooks: ExchangeHooks[] = [ingest.hooks];
  let proxy: RunningProxy;
  try {
    proxy = await startProxy({ config, hooks, logger, registry, env });
  } catch (err) {
    await ingest.close(0);
    throw err;
  }
  return {
    ...proxy,
    logger,
    registry,
    async close() {
      const started = Date.now();
      await proxy.close();
      // Traces of the drained requests get what is left of the drain budget; the rest is spooled.
      await ingest.close(Math.max(1000, config.drainTimeoutMs - (Date.now() - started)));
    },
  };
}
