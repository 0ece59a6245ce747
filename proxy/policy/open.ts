import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import { ConfigError, envInt, envString, type Env } from '../../common/env';
import { isPackName, packPolicy, PolicyError, type PolicyCheck } from './load';
import { MemoryPolicyStore } from './store';
import { PACK_NAMES, type ResolvedPolicy } from './types';
import { policyMetrics, WatchedPolicyStore } from './watch';

export interface OpenedPolicyStore {
  store: MemoryPolicyStore<ResolvedPolicy>;
  /** Where the policy came from: the file path or "pack:<name>". */
  source: string;
  close(): void;
}

/**
 * The policy store from the environment: POLICY_FILE (loaded and followed) or POLICY_PACK (built-in), or the
 * default pack. Any problem at start is a ConfigError naming the variable, the JSON path and the problem.
 */
export function openPolicyStore(env: Env, logger: Logger, registry: Registry, checks: readonly PolicyCheck[] = []): OpenedPolicyStore {
  const file = envString(env, 'POLICY_FILE');
  const pack = envString(env, 'POLICY_PACK');
  const metrics = policyMetrics(registry);
  if (file !== undefined) {
    if (pack !== undefined) logger.warn({ policyFile: file, pack }, 'POLICY_FILE and POLICY_PACK both set: using POLICY_FILE');
    const debounceMs = envInt(env, 'POLICY_RELOAD_DEBOUNCE_MS', 250, 0, 60_000);
    const pollMs = envInt(env, 'POLICY_RELOAD_POLL_MS', 30_000, 0, 86_400_000);
    try {
      const store = new WatchedPolicyStore(file, logger, metrics, { checks, debounceMs, pollMs });
      return { store, source: file, close: () => store.close() };
    } catch (err) {
      if (err instanceof PolicyError) throw new ConfigError('POLICY_FILE', `${file}: ${err.problems.join('; ')}`);
      throw err;
    }
  }
  const name = (pack ?? 'default').toLowerCase();
  if (!isPackName(name)) throw new ConfigError('POLICY_PACK', `must be one of ${PACK_NAMES.join(', ')}, got "${pack}"`);
  try {
    const store = new MemoryPolicyStore(packPolicy(name, checks));
    return { store, source: `pack:${name}`, close: () => undefined };
  } catch (err) {
    if (err instanceof PolicyError) throw new ConfigError('POLICY_PACK', `${name}: ${err.problems.join('; ')}`);
    throw err;
  }
}
