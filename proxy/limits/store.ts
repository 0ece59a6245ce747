import { Counter, Gauge, type Registry } from 'prom-client';
import { trustedCAs } from '../http/agents';
import { ConfigError, declare, type Env } from '../../common/env';
import type { Logger } from '../../common/logger';
import type { Clock } from './clock';
import { Limiter } from './limiter';
import { RedisClient, type RedisClientOptions } from './redis-client';
import { SharedLimiter, type StoreFailure } from './shared-limiter';

/** At most one warn line per this interval about checks decided without the store. */
const SUMMARY_INTERVAL_MS = 60_000;

export const LIMITS_REDIS_ENV = {
  url: declare.string('LIMITS_REDIS_URL', '`redis://` or `rediss://`: limits shared by every proxy using this Redis; unset = per-pod limits in memory'),
  password: declare.string('LIMITS_REDIS_PASSWORD', "Redis password (from a Secret); wins over the URL's; never logged"),
  timeoutMs: declare.int('LIMITS_REDIS_TIMEOUT_MS', 5, 1, 10_000, "deadline of one shared check; past it each rule applies its `on_error`"),
  maxPending: declare.int('LIMITS_REDIS_MAX_PENDING', 1000, 1, 1_000_000, 'Redis commands waiting for a reply before checks stop waiting for Redis'),
  keyPrefix: declare.stringOr('LIMITS_REDIS_KEY_PREFIX', 'aap', 'first part of every Redis key; proxies with the same prefix share counters'),
  leaseMs: declare.int('LIMITS_REDIS_LEASE_MS', 30_000, 1000, 3_600_000, 'a concurrency slot of a pod that died is free again after this long'),
};

/** Where LIMITS_REDIS_URL points, with credentials split out (never logged). */
export function redisOptionsFromEnv(env: Env, timeoutMs: number): RedisClientOptions | undefined {
  const raw = LIMITS_REDIS_ENV.url.read(env);
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('LIMITS_REDIS_URL', 'is not a valid URL (expected redis://[user:password@]host[:port][/db] or rediss://...)');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new ConfigError('LIMITS_REDIS_URL', `must use redis or rediss, got "${url.protocol.replace(':', '')}"`);
  if (!url.hostname) throw new ConfigError('LIMITS_REDIS_URL', 'has no host');
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,5}$/.test(db)) throw new ConfigError('LIMITS_REDIS_URL', 'path must be a database number, e.g. /0');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const password = LIMITS_REDIS_ENV.password.read(env) ?? (url.password ? decodeURIComponent(url.password) : undefined);
  return {
    host,
    port: url.port ? Number(url.port) : 6379,
    tls: url.protocol === 'rediss:' ? { servername: host, ca: trustedCAs(env) } : undefined,
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password,
    db: db === '' ? undefined : Number(db),
    maxPending: LIMITS_REDIS_ENV.maxPending.read(env),
    connectTimeoutMs: 1000,
    // A reply this late is no longer a slow Redis but a lost connection: reconnect.
    stallMs: Math.max(1000, 20 * timeoutMs),
    minBackoffMs: 50,
    maxBackoffMs: 2000,
  };
}

/**
 * The shared limits store when LIMITS_REDIS_URL is set: the Redis connection, the SharedLimiter over it,
 * and what gets reported when checks fall back (metrics for each, a warn line on the first and then at
 * most one per minute with the counts, an info line on recovery).
 *
 * Env: LIMITS_REDIS_URL, LIMITS_REDIS_PASSWORD (wins over the URL's), LIMITS_REDIS_TIMEOUT_MS (deadline of
 * one check, default 5), LIMITS_REDIS_MAX_PENDING (commands waiting for a reply, default 1000),
 * LIMITS_REDIS_KEY_PREFIX (default aap), LIMITS_REDIS_LEASE_MS (concurrency lease, default 30000).
 */
export function createSharedLimiter(env: Env, local: Limiter, defaultCompletion: number, logger: Logger, registry: Registry, clock: Clock): { limiter: SharedLimiter; close(): void } | undefined {
  const timeoutMs = LIMITS_REDIS_ENV.timeoutMs.read(env);
  const opts = redisOptionsFromEnv(env, timeoutMs);
  if (!opts) return undefined;
  const prefix = LIMITS_REDIS_ENV.keyPrefix.read(env);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(prefix)) throw new ConfigError('LIMITS_REDIS_KEY_PREFIX', 'must be 1 to 64 letters, digits, "_", "." or "-"');
  const leaseMs = LIMITS_REDIS_ENV.leaseMs.read(env);
  const log = logger.child({ component: 'limits' });
  const where = `${opts.tls ? 'rediss' : 'redis'}://${opts.host}:${opts.port}`;

  const up = new Gauge({ name: 'akto_proxy_limits_store_up', help: 'Whether the shared limits store (Redis) is connected: 1 yes, 0 no.', registers: [registry] });
  const fallbacks = new Counter({
    name: 'akto_proxy_limits_store_fallbacks_total',
    help: 'Limit checks (stage admit) decided without the shared store, and settlements (stage settle) it did not get, by reason.',
    labelNames: ['reason', 'stage'],
    registers: [registry],
  });

  let counts: Record<string, number> = {};
  let total = 0;
  let lastLine = -Infinity;
  let outage = false;
  const report = (reason: StoreFailure, stage: 'admit' | 'settle'): void => {
    fallbacks.inc({ reason, stage });
    const key = `${stage}:${reason}`;
    counts[key] = (counts[key] ?? 0) + 1;
    total++;
    const now = clock();
    if (now - lastLine < SUMMARY_INTERVAL_MS) return;
    lastLine = now;
    log.warn(
      { event: 'limits_store_fallback', store: where, fallbacks: counts, state: redis.state, lastError: redis.lastError || undefined, timeoutMs },
      `limits: ${total} check(s) decided without Redis (${Object.keys(counts).join(', ')}); rules apply their on_error (default: this pod's own counters)`,
    );
    counts = {};
    total = 0;
  };

  const redis = new RedisClient(opts);
  redis.on('ready', () => {
    up.set(1);
    if (outage) log.info({ event: 'limits_store_recovered', store: where, fallbacks: total > 0 ? counts : undefined }, 'limits: Redis reachable again; limits are shared across pods again');
    else log.info({ event: 'limits_store_connected', store: where }, 'limits: connected to Redis; limits are shared across pods');
    outage = false;
  });
  redis.on('down', (reason: string, wasReady: boolean) => {
    up.set(0);
    if (wasReady || !outage) log.warn({ event: 'limits_store_down', store: where, reason }, `limits: Redis unreachable (${reason}); reconnecting with backoff, rules apply their on_error meanwhile`);
    outage = true;
  });
  redis.connect();

  const limiter = new SharedLimiter(redis, local, { prefix, timeoutMs, leaseMs, defaultCompletion, onFailure: report });
  return {
    limiter,
    close() {
      limiter.close();
      redis.close();
    },
  };
}
