import type { Registry } from 'prom-client';
import pkg from '../package.json';
import { createAktoGuardrails } from './akto';
import { createAlerts } from './alerts';
import { loadProxyConfig } from './config';
import type { Env } from './config-env';
import { createGuardrails } from './guardrails';
import { createIngest } from './ingest';
import { checkLimitsPolicy, createLimits } from './limits';
import { startProxy, type RunningProxy } from './server';
import { createLogger, type Logger } from './telemetry/logger';
import { createRegistry } from './telemetry/metrics';

export const VERSION: string = pkg.version;
/** Alerts get a short part of the shutdown drain: traces matter more. */
const ALERT_DRAIN_MS = 2000;

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
  const akto = createAktoGuardrails(env, logger, registry, { version: VERSION });
  const alerts = createAlerts(env, logger, registry, { version: VERSION });
  if (alerts) limits.onIncident(alerts.incident);
  const ingest = await createIngest(env, logger, registry, { version: VERSION });
  // Identity first (a cooled-down identity is refused before any scanning, an escalated one gets its
  // stricter pack), then the local guardrails, then admission against the limits, then Akto's verdict
  // (a local block or a 429 never waits for Akto), then the trace and the alerts.
  const hooks = [limits.identityHooks, guardrails.hooks, limits.hooks, ...(akto ? [akto.hooks] : []), ingest.hooks, ...(alerts ? [alerts.hooks] : [])];
  const stopFeatures = async (drainMs: number): Promise<void> => {
    limits.close();
    guardrails.close();
    akto?.close();
    await Promise.all([ingest.close(drainMs), alerts?.close(Math.min(drainMs, ALERT_DRAIN_MS))]);
  };
  let proxy: RunningProxy;
  try {
    proxy = await startProxy({ config, hooks, logger, registry, env });
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
