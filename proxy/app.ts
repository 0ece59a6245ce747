import type { Registry } from 'prom-client';
import pkg from '../package.json';
import { createAktoGuardrails } from './akto';
import { createAlerts } from './alerts';
import { CORE_ENV, loadProxyConfig, type ProxyConfig } from './config';
import { ConfigError, type Env } from '../common/env';
import { checkGuardrailsPolicy, createGuardrails } from './guardrails';
import { openPolicyStore } from './policy/open';
import { createIngest } from './ingest';
import { checkLimitsPolicy, createLimits } from './limits';
import { createInboundProtocol } from './protocols/inbound';
import { checkInboundPolicy } from './policy/inbound';
import { startProxy, type RunningProxy } from './server';
import { createLogger, type Logger } from '../common/logger';
import { SecretScrubber } from '../common/scrub';
import { createRegistry } from '../common/metrics';
import { refuseSelfTarget } from './self-target';

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
  await refuseSelfTarget(config, env);
  const secrets = SecretScrubber.fromEnv(env);
  const logger = opts.logger ?? createLogger(config.logLevel, undefined, secrets);
  const registry = opts.registry ?? createRegistry();
  // One policy store: every section's owner validates its part in the same pass, so a reload is all or nothing.
  const policy = openPolicyStore(env, logger, registry, [checkGuardrailsPolicy, checkLimitsPolicy, checkInboundPolicy]);
  const guardrails = await createGuardrails(policy, env, logger, registry);
  const limits = createLimits(policy.store, env, logger, registry);
  const akto = createAktoGuardrails(env, logger, registry, { version: VERSION });
  const alerts = createAlerts(env, logger, registry, { version: VERSION });
  if (alerts) limits.onIncident(alerts.incident);
  const ingest = await createIngest(env, logger, registry, { version: VERSION, secrets });
  // Identity first (a cooled-down identity is refused before any scanning, an escalated one gets its
  // stricter pack), then the local guardrails, then admission against the limits, then Akto's verdict
  // (a local block or a 429 never waits for Akto), then the trace and the alerts.
  const hooks = [limits.identityHooks, guardrails.hooks, limits.hooks, ...(akto ? [akto.hooks] : []), ingest.hooks, ...(alerts ? [alerts.hooks] : [])];
  const stopFeatures = async (drainMs: number): Promise<void> => {
    limits.close();
    guardrails.close();
    policy.close();
    akto?.close();
    await Promise.all([ingest.close(drainMs), alerts?.close(Math.min(drainMs, ALERT_DRAIN_MS))]);
  };
  let proxy: RunningProxy;
  try {
    const inboundProtocol = createInboundProtocol(() => policy.store.current());
    proxy = await startProxy({ config, hooks, logger, registry, env, inboundProtocol, readyDetail: () => [guardrails.modelTier.describe()] });
  } catch (err) {
    await stopFeatures(0);
    throw listenError(err, config, env) ?? err;
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

/** A port or address that cannot be used is a configuration error naming the variable that chose it. */
function listenError(err: unknown, config: ProxyConfig, env: Env): ConfigError | undefined {
  const e = err as NodeJS.ErrnoException & { port?: number; address?: string };
  const listener = config.listeners.find((l) => l.port === e.port);
  const admin = e.port === config.adminPort && !listener;
  const inbound = listener?.direction === 'inbound';
  const portKey = admin ? 'ADMIN_PORT' : inbound ? 'INBOUND_PORT' : CORE_ENV.upstreams.read(env) ? 'UPSTREAMS' : 'AKTO_PROXY_PORT';
  const hostKey = admin ? 'ADMIN_HOST' : inbound ? 'INBOUND_HOST' : 'LISTEN_HOST';
  const where = `${e.address ?? '?'}:${e.port ?? '?'}`;
  switch (e.code) {
    case 'EADDRINUSE':
      return new ConfigError(portKey, `port ${e.port} is already in use (${where}); choose a free port`);
    case 'EACCES':
      return new ConfigError(portKey, `port ${e.port} needs privileges this process does not have (${where}); use a port above 1023`);
    case 'EADDRNOTAVAIL':
      return new ConfigError(hostKey, `${e.address} is not an address of this machine`);
    default:
      return undefined;
  }
}
