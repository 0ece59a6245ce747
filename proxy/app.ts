import type { Registry } from 'prom-client';
import pkg from '../package.json';
import { loadProxyConfig } from './config';
import type { Env } from './config-env';
import { createGuardrails } from './guardrails';
import { createIngest } from './ingest';
import { checkLimitsPolicy, createLimits } from './limits';
import { startProxy, type RunningProxy } from './server';
import { createLogger, type Logger } from './telemetry/logger';
import { createRegistry } from './telemetry/metrics';

export const VERSION: string = pkg.version;

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
  const guardrails = await createGuardrails(env, logger, registry, [checkLimitsPolicy]);
  const limits = createLimits(guardrails.store, env, logger, registry);
  const ingest = await createIngest(env, logger, registry, { version: VERSION });
  // Identity first (a cooled-down identity is refused before any scanning, an escalated one gets its
  // stricter pack), then guardrails, then admission against the limits, then the trace.
  const hooks = [limits.identityHooks, guardrails.hooks, limits.hooks, ingest.hooks];
  const stopFeatures = async (drainMs: number): Promise<void> => {
    limits.close();
    guardrails.close();
    await ingest.close(drainMs);
  };
  let proxy: RunningProxy;
  try {
    proxy = await startProxy({ config, hooks, logger, registry, env, readyDetail: () => [guardrails.modelTier.describe()] });
  } catch (err) {
    await stopFeatures(0);
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
      await stopFeatures(Math.max(1000, config.drainTimeoutMs - (Date.now() - started)));
    },
  };
}
