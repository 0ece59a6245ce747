import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * A metrics registry per process (not prom-client's global one), so tests can start several
 * proxies in one process without name clashes. Each subsystem registers its own metrics on it.
 */
export function createRegistry(withDefaults = true): Registry {
  const registry = new Registry();
  if (withDefaults) collectDefaultMetrics({ register: registry });
  return registry;
}

export type { Registry };
