import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import { ConfigError, declare, type Env } from '../../common/env';
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

export const POLICY_ENV = {
  file: declare.string('POLICY_FILE', 'path of a YAML or JSON guardrail policy, followed for changes; see [docs/policy.md](docs/policy.md)'),
  pack: declare.string('POLICY_PACK', 'a built-in pack: `default`, `monitor`, `strict` or `off`; ignored when `POLICY_FILE` is set', '`default`'),
  reloadDebounceMs: declare.int('POLICY_RELOAD_DEBOUNCE_MS', 250, 0, 60_000, 'quiet time after the last change event before the policy file is re-read'),
  reloadPollMs: declare.int('POLICY_RELOAD_POLL_MS', 30_000, 0, 86_400_000, 're-read the policy file this often too; `0` turns polling off'),
};

/**
 * The policy store from the environment: POLICY_FILE (loaded and followed) or POLICY_PACK (built-in), or the
 * default pack. Any problem at start is a ConfigError naming the variable, the JSON path and the problem.
 */
export function openPolicyStore(env: Env, logger: Logger, registry: Registry, checks: readonly PolicyCheck[] = []): OpenedPolicyStore {
  const file = POLICY_ENV.file.read(env);
  const pack = POLICY_ENV.pack.read(env);
  const metrics = policyMetrics(registry);
  if (file !== undefined) {
    if (pack !== undefined) logger.warn({ policyFile: file, pack }, 'POLICY_FILE and POLICY_PACK both set: using POLICY_FILE');
    const debounceMs = POLICY_ENV.reloadDebounceMs.read(env);
    const pollMs = POLICY_ENV.reloadPollMs.read(env);
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
