import type { Registry } from 'prom-client';
import { loadProxyConfig } from './config';
import type { Env } from './config-env';
import type { ExchangeHooks } from './hooks';
import { startProxy, type RunningProxy } from './server';
import { createLogger, type Logger } from './telemetry/logger';
import { createRegistry } from './telemetry/metrics';

export interface RunningApp extends RunningProxy {
  logger: Logger;
  registry: Registry;
}

/**
 * Builds the whole sidecar from the environment: config, features in data-flow order, listeners.
 * Config errors throw ConfigError before anything listens.
 */
export async function startApp(env: Env, opts: { logger?: Logger; registry?: Registry } = {}): Promise<RunningApp> {
  const config = loadProxyConfig(env);
  const logger = opts.logger ?? createLogger(config.logLevel);
  const registry = opts.registry ?? createRegistry();
  const hooks: ExchangeHooks[] = [];
  const closers: Array<() => unknown> = [];
  const proxy = await startProxy({ config, hooks, logger, registry, env });
  return {
    ...proxy,
    logger,
    registry,
    async close() {
      await proxy.close();
      for (const close of closers) await close();
    },
  };
}
