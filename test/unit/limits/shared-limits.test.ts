/**
 * Limits shared through a real redis-server (started here on loopback): the hooks as the server runs
 * them, two limiters standing for two pods, and what happens when Redis dies, stalls or forgets scripts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLimits, type Limits } from '../../../proxy/limits';
import { MemoryPolicyStore, type Policy } from '../../../proxy/policy/store';
import type { BlockVerdict, Exchange } from '../../../proxy/protocols/exchange';
import { createRegistry } from '../../../common/metrics';
import { TestCa } from '../../integration/harness';
import { describeWithRedis, startRedis, type TestRedis } from '../../support/redis';
import { waitFor } from '../../support/wait';
import { answer, captureLogger, chat, exchange } from './helpers';

/** One "pod": its own limits, Redis connection, logger and metrics. */
function pod(policy: Policy, env: Record<string, string>) {
  const { logger, lines } = captureLogger('info');
  const registry = createRegistry(false);
  const limits = createLimits(new MemoryPolicyStore<Policy>(policy), { LIMITS_REDIS_TIMEOUT_MS: '250', ...env }, logger, registry);
  return { limits, lines, registry };
}

/** The hooks as the server runs them: identity, then admission (awaited when the shared store answers). */
async function request(l: Limits, ex: Exchange): Promise<BlockVerdict | undefined> {
  const early = (await l.identityHooks.onRequest!(ex)) as BlockVerdict | undefined;
  if (early) return early;
  return (await l.hooks.onRequest!(ex)) as BlockVerdict | undefined;
}

let n = 0;
/** Distinct prompts, so the loop detector stays out of the way. */
const ask = (user: string, extra: Record<string, unknown> = {}): Exchange => exchange(chat(`question ${n++} ${'x'.repeat(n % 7)}`, extra), { headers: { 'x-end-user-id': user } });
const IDENTITY = { sources: [{ from: 'header', name: 'x-end-user-id' }] };
const ANOMALIES_OFF = { enabled: false };

describeWithRedis('limits shared through Redis', () => {
  let redis: TestRedis;
  const open: Limits[] = [];
  const started = (p: ReturnType<typeof pod>) => (open.push(p.limits), p);
  const ready = (p: { lines: Array<Record<string, unknown>> }) => waitFor(() => p.lines.some((l) => l.event === 'limits_store_connected' || l.event === 'limits_store_recovered'), 5000, 'redis connected');

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(() => {
    for (const l of open.splice(0)) l.close();
  });
  afterAll(() => redis.stop());

  test('two pods share one request limit exactly, with requests in flight at once on both', async () => {
    const policy: Policy = { identity: IDENTITY, anomalies: ANOMALIES_OFF, limits: [{ id: 'exact', per: 'identity', requests: { limit: 10, window: '1h' } }] };
    const env = { LIMITS_REDIS_URL: redis.url, LIMITS_REDIS_KEY_PREFIX: 'exact' };
    const a = started(pod(policy, env));
    const b = started(pod(policy, env));
    await Promise.all([ready(a), ready(b)]);
    const verdicts = await Promise.all(Array.from({ length: 40 }, (_, i) => request((i % 2 ? a : b).limits, ask('carol'))));
    expect(verdicts.filter((v) => v === undefined)).toHaveLength(10);
    const refused = verdicts.filter((v): v is BlockVerdict => v !== undefined);
    expect(refused).toHaveLength(30);
    expect(refused[0]).toMatchObject({ status: 429, code: 'exact', type: 'rate_limit_exceeded' });
    expect(Number(refused[0].headers!['retry-after'])).toBeGreaterThan(300);
    // Another identity has its own ten.
    expect(await request(a.limits, ask('dave'))).toBeUndefined();
    // No check fell back to local counters.
    expect(await a.registry.metrics()).not.toMatch(/akto_proxy_limits_store_fallbacks_total\{[^}]*\} [1-9]/);
  });

  test('headers and token accounting come from the shared bucket: the estimate is replaced by real usage on either pod', async () => {
    const policy: Policy = { identity: IDENTITY, anomalies: ANOMALIES_OFF, limits: [{ id: 'tpm', per: 'global', tokens: { limit: 1000, window: '1h' } }] };
    const env = { LIMITS_REDIS_URL: redis.url, LIMITS_REDIS_KEY_PREFIX: 'tokens' };
    const a = started(pod(policy, env));
    const b = started(pod(policy, env));
    await Promise.all([ready(a), ready(b)]);
    const first = ask('erin', { max_tokens: 500 });
    expect(await request(a.limits, first)).toBeUndefined();
    const remaining = Number(first.responseHeaders['x-ratelimit-remaining-tokens']);
    expect(remaining).toBeLessThan(500);
    expect(first.responseHeaders['x-ratelimit-limit-tokens']).toBe('1000');
    // 500+ of 1000 are taken: a second 500 does not fit on the other pod.
    const second = ask('erin', { max_tokens: 500 });
    expect(await request(b.limits, second)).toMatchObject({ status: 429, code: 'tpm' });
    // The first one used 20 tokens in truth: completion gives the rest back, and now it fits.
    answer(first, 'short', { promptTokens: 10, completionTokens: 10, totalTokens: 20, source: 'response' });
    a.limits.hooks.onComplete!(first);
    expect((first.notes.limits as { tokens?: unknown }).tokens).toEqual({ estimated: expect.any(Number), charged: 20 });
    await new Promise((r) => setTimeout(r, 50));
    const third = ask('erin', { max_tokens: 500 });
    expect(await request(b.limits, third)).toBeUndefined();
    // 1000 - 20 (first, settled) - ~504 (third's estimate) left.
    expect(Number(third.responseHeaders['x-ratelimit-remaining-tokens'])).toBeGreaterThan(450);
  });

  test('concurrency slots are shared, given back on completion, and expire when a pod dies mid-request', async () => {
    const policy: Policy = { identity: IDENTITY, anomalies: ANOMALIES_OFF, limits: [{ id: 'two-at-once', per: 'identity', concurrent: 2 }] };
    const env = { LIMITS_REDIS_URL: redis.url, LIMITS_REDIS_KEY_PREFIX: 'conc', LIMITS_REDIS_LEASE_MS: '1000' };
    const a = started(pod(policy, env));
    const b = started(pod(policy, env));
    await Promise.all([ready(a), ready(b)]);
    const x = ask('frank');
    const y = ask('frank');
    expect(await request(a.limits, x)).toBeUndefined();
    expect(await request(b.limits, y)).toBeUndefined();
    expect(await request(b.limits, ask('frank'))).toMatchObject({ status: 429, code: 'two-at-once' });
    // A request that ends gives its slot back to everyone.
    answer(x, 'done');
    a.limits.hooks.onComplete!(x);
    await new Promise((r) => setTimeout(r, 50));
    const z = ask('frank');
    expect(await request(b.limits, z)).toBeUndefined();
    // Pod b dies with y and z in flight (no completion, no renewal): its leases expire within the lease time.
    b.limits.close();
    expect(await request(a.limits, ask('frank'))).toMatchObject({ status: 429 });
    await new Promise((r) => setTimeout(r, 1300));
    expect(await request(a.limits, ask('frank'))).toBeUndefined();
  });

  test('a long request keeps its slot: the lease is renewed while it runs', async () => {
    const policy: Policy = { identity: IDENTITY, anomalies: ANOMALIES_OFF, limits: [{ id: 'one-at-once', per: 'identity', concurrent: 1 }] };
    const env = { LIMITS_REDIS_URL: redis.url, LIMITS_REDIS_KEY_PREFIX: 'renew', LIMITS_REDIS_LEASE_MS: '1000' };
    const a = started(pod(policy, env));
    await ready(a);
    const long = ask('gina');
    expect(await request(a.limits, long)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 2500));
    expect(await request(a.limits, ask('gina'))).toMatchObject({ status: 429, code: 'one-at-once' });
    answer(long, 'done');
    a.limits.hooks.onComplete!(long);
    await new Promise((r) => setTimeout(r, 50));
    expect(await request(a.limits, ask('gina'))).toBeUndefined();
  });

  test('a client that leaves while the check is out does not keep the slot it was just given', async () => {
    const policy: Policy = { identity: IDENTITY, anomalies: ANOMALIES_OFF, limits: [{ id: 'solo', per: 'identity', concurrent: 1 }] };
    const a = started(pod(policy, { LIMITS_REDIS_URL: redis.url, LIMITS_REDIS_KEY_PREFIX: 'abort' }));
    await ready(a);
    const ex = ask('quinn');
    await a.limits.identityHooks.onRequest!(ex);
    const pending = a.limits.hooks.onRequest!(ex);
    expect(pending).toBeInstanceOf(Promise);
    // The server finishes the exchange (client gone) before Redis answered.
    ex.outcome = 'aborted';
    a.limits.hooks.onComplete!(ex);
    expect(await pending).toBeUndefined();
    await new Promise((r) => setTimeout(r, 50));
    expect(await request(a.limits, ask('quinn'))).toBeUndefined();
  });

  test('a script Redis forgot (SCRIPT FLUSH, restart, failover) is sent again with EVAL', async () => {
    const policy: Policy = { identity: IDENTITY, anomalies: ANOMALIES_OFF, limits: [{ id: 'flush', requests: { limit: 2, window: '1h' } }] };
    const a = started(pod(policy, { LIMITS_REDIS_URL: redis.url, LIMITS_REDIS_KEY_PREFIX: 'flush' }));
    await ready(a);
    expect(await request(a.limits, ask('hank'))).toBeUndefined();
    expect(await redis.command('SCRIPT', 'FLUSH')).toBe('+OK');
    expect(await request(a.limits, ask('hank'))).toBeUndefined();
    expect(await request(a.limits, ask('hank'))).toMatchObject({ status: 429 });
    expect(await a.registry.metrics()).not.toMatch(/akto_proxy_limits_store_fallbacks_total\{[^}]*\} [1-9]/);
  });

  test('identities with hash-tag braces or separators cannot move the tag or share a counter', async () => {
    const policy: Policy = { identity: IDENTITY, anomalies: ANOMALIES_OFF, limits: [{ id: 'tag', requests: { limit: 1, window: '1h' } }] };
    const a = started(pod(policy, { LIMITS_REDIS_URL: redis.url, LIMITS_REDIS_KEY_PREFIX: 'tags' }));
    await ready(a);
    for (const who of ['a}b', 'a', '{a}', 'a:b', 'a%7db']) expect(await request(a.limits, ask(who))).toBeUndefined();
    for (const who of ['a}b', 'a', '{a}', 'a:b', 'a%7db']) expect(await request(a.limits, ask(who))).toMatchObject({ status: 429 });
  });
});

describeWithRedis('when Redis fails', () => {
  let redis: TestRedis;
  const open: Limits[] = [];
  const ready = (p: { lines: Array<Record<string, unknown>> }, event = 'limits_store_connected') => waitFor(() => p.lines.some((l) => l.event === event), 8000, event);
  beforeEach(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    for (const l of open.splice(0)) l.close();
    await redis.stop();
  });

  const policy: Policy = {
    identity: IDENTITY,
    anomalies: ANOMALIES_OFF,
    limits: [
      { id: 'fallback-local', match: { paths: ['/v1/chat/completions'] }, requests: { limit: 3, window: '1h' } },
      { id: 'fail-open', match: { paths: ['/v1/completions'] }, requests: { limit: 1, window: '1h' }, on_error: 'allow' },
      { id: 'fail-closed', match: { paths: ['/v1/embeddings'] }, requests: { limit: 100, window: '1h' }, on_error: 'block' },
    ],
  };
  const on = (p: string, user = 'ivy') => exchange(p === '/v1/embeddings' ? { model: 'tgi', input: `text ${n++}` } : p === '/v1/completions' ? { model: 'tgi', prompt: `text ${n++}` } : chat(`q ${n++}`), { path: p, headers: { 'x-end-user-id': user } });

  test('killed mid-run: every rule applies its on_error at once (no hung request), logged once; restarted: shared again', async () => {
    const p = pod(policy, { LIMITS_REDIS_URL: redis.url, LIMITS_REDIS_KEY_PREFIX: 'kill' });
    open.push(p.limits);
    await ready(p);
    // One of the three shared requests is used while Redis is up.
    expect(await request(p.limits, on('/v1/chat/completions'))).toBeUndefined();
    await redis.kill();
    await ready(p, 'limits_store_down');

    const t0 = Date.now();
    // on_error local: this pod's own three (the one shared request above is not known locally).
    const local = [];
    for (let i = 0; i < 5; i++) local.push(await request(p.limits, on('/v1/chat/completions')));
    expect(local.map((v) => v?.status ?? 200)).toEqual([200, 200, 200, 429, 429]);
    // on_error allow: not counted at all while Redis is away (limit 1, yet both pass).
    expect(await request(p.limits, on('/v1/completions'))).toBeUndefined();
    expect(await request(p.limits, on('/v1/completions'))).toBeUndefined();
    // on_error block: refused, saying why, retryable soon.
    const closed = await request(p.limits, on('/v1/embeddings'));
    expect(closed).toMatchObject({ status: 429, code: 'fail-closed' });
    expect(closed!.message).toContain('shared limits store');
    expect(closed!.headers!['retry-after']).toBe('1');
    expect(Date.now() - t0).toBeLessThan(1000);

    await waitFor(() => p.lines.some((l) => l.event === 'limits_store_fallback'), 2000, 'fallback line');
    const warns = p.lines.filter((l) => l.level === 40 || l.level === 'warn');
    expect(warns.filter((l) => l.event === 'limits_store_down')).toHaveLength(1);
    expect(warns.filter((l) => l.event === 'limits_store_fallback')).toHaveLength(1); // once per minute, not per request
    expect(await p.registry.metrics()).toMatch(/akto_proxy_limits_store_fallbacks_total\{reason="unavailable",stage="admit"\} 8/);
    expect(await p.registry.metrics()).toMatch(/^akto_proxy_limits_store_up 0$/m);

    await redis.restart();
    await ready(p, 'limits_store_recovered');
    // The restarted Redis is empty: the shared rule counts from a full bucket again, in Redis.
    for (let i = 0; i < 3; i++) expect(await request(p.limits, on('/v1/chat/completions', 'jack'))).toBeUndefined();
    expect(await request(p.limits, on('/v1/chat/completions', 'jack'))).toMatchObject({ status: 429 });
    expect(await redis.command('EXISTS', 'kill:{i:user%3ajack}:fallback-local:b')).toBe(':1');
    expect(await p.registry.metrics()).toMatch(/^akto_proxy_limits_store_up 1$/m);
  });

  test('a Redis that stalls (DEBUG SLEEP) costs each check its deadline, never a hung request; what it took late is given back', async () => {
    const p = pod(policy, { LIMITS_REDIS_URL: redis.url, LIMITS_REDIS_KEY_PREFIX: 'slow', LIMITS_REDIS_TIMEOUT_MS: '20' });
    open.push(p.limits);
    await ready(p);
    const sleeping = redis.command('DEBUG', 'SLEEP', '0.6');
    await new Promise((r) => setTimeout(r, 50));
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = Date.now();
      expect(await request(p.limits, on('/v1/chat/completions', 'kate'))).toBeUndefined();
      times.push(Date.now() - t);
    }
    expect(Math.max(...times)).toBeLessThan(200);
    expect(await p.registry.metrics()).toMatch(/akto_proxy_limits_store_fallbacks_total\{reason="timeout",stage="admit"\} 3/);
    await sleeping;
    // The three late admissions ran when Redis woke up and were given back: kate still has all three.
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 3; i++) expect(await request(p.limits, on('/v1/chat/completions', 'kate'))).toBeUndefined();
    expect(await request(p.limits, on('/v1/chat/completions', 'kate'))).toMatchObject({ status: 429 });
  });

  test('a bounded queue: past LIMITS_REDIS_MAX_PENDING commands waiting, checks fall back at once', async () => {
    const p = pod(policy, { LIMITS_REDIS_URL: redis.url, LIMITS_REDIS_KEY_PREFIX: 'queue', LIMITS_REDIS_TIMEOUT_MS: '1000', LIMITS_REDIS_MAX_PENDING: '2' });
    open.push(p.limits);
    await ready(p);
    const sleeping = redis.command('DEBUG', 'SLEEP', '0.5');
    await new Promise((r) => setTimeout(r, 50));
    const t = Date.now();
    const all = Promise.all(Array.from({ length: 6 }, () => request(p.limits, on('/v1/chat/completions', 'liam'))));
    const verdicts = await all;
    expect(verdicts.filter((v) => v === undefined).length).toBeGreaterThanOrEqual(3);
    expect(await p.registry.metrics()).toMatch(/akto_proxy_limits_store_fallbacks_total\{reason="queue_full",stage="admit"\} 4/);
    expect(Date.now() - t).toBeLessThan(1500);
    await sleeping;
  });

  test('password from LIMITS_REDIS_PASSWORD; a wrong one is reported without the password', async () => {
    await redis.stop();
    redis = await startRedis({ password: 's3cret-pw' });
    const good = pod(policy, { LIMITS_REDIS_URL: `redis://:wrong-in-url@127.0.0.1:${redis.port}`, LIMITS_REDIS_PASSWORD: 's3cret-pw', LIMITS_REDIS_KEY_PREFIX: 'pw' });
    open.push(good.limits);
    await ready(good);
    const bad = pod(policy, { LIMITS_REDIS_URL: `redis://:not-the-pw@127.0.0.1:${redis.port}`, LIMITS_REDIS_KEY_PREFIX: 'pw' });
    open.push(bad.limits);
    await ready(bad, 'limits_store_down');
    const down = bad.lines.find((l) => l.event === 'limits_store_down')!;
    expect(String(down.reason)).toContain('AUTH refused');
    expect(JSON.stringify(bad.lines)).not.toContain('not-the-pw');
    expect(JSON.stringify(good.lines)).not.toContain('s3cret-pw');
  });
});

describeWithRedis('rediss://', () => {
  const ca = new TestCa('akto-redis-test-ca');
  let redis: TestRedis;
  let dir: string;
  const open: Limits[] = [];
  beforeAll(async () => {
    const pem = ca.serving('redis');
    redis = await startRedis({ tls: { cert: pem.cert, key: pem.key, ca: ca.cert } });
    dir = mkdtempSync(path.join(os.tmpdir(), 'aap-redis-ca-'));
    writeFileSync(path.join(dir, 'ca.pem'), ca.cert);
  });
  afterAll(async () => {
    for (const l of open) l.close();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const policy: Policy = { identity: IDENTITY, anomalies: ANOMALIES_OFF, limits: [{ id: 'tls-one', requests: { limit: 1, window: '1h' } }] };

  test('verifies the server against the trusted CAs (NODE_EXTRA_CA_CERTS) and shares limits over TLS', async () => {
    const p = pod(policy, { LIMITS_REDIS_URL: redis.url, NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem'), LIMITS_REDIS_KEY_PREFIX: 'tls' });
    open.push(p.limits);
    await waitFor(() => p.lines.some((l) => l.event === 'limits_store_connected'), 5000, 'connected over TLS');
    expect(await request(p.limits, ask('rita'))).toBeUndefined();
    expect(await request(p.limits, ask('rita'))).toMatchObject({ status: 429 });
    expect(await redis.command('EXISTS', 'tls:{i:user%3arita}:tls-one:b')).toBe(':1');
  });

  test('refuses a server whose certificate it cannot verify', async () => {
    const p = pod(policy, { LIMITS_REDIS_URL: redis.url, LIMITS_REDIS_KEY_PREFIX: 'tls-untrusted' });
    open.push(p.limits);
    await waitFor(() => p.lines.some((l) => l.event === 'limits_store_down'), 5000, 'refused');
    expect(String(p.lines.find((l) => l.event === 'limits_store_down')!.reason)).toMatch(/CERT|SIGNATURE|ISSUER|self.signed/i);
  });
});

describe('LIMITS_REDIS_* settings', () => {
  test.each([
    [{ LIMITS_REDIS_URL: 'http://127.0.0.1:6379' }, 'LIMITS_REDIS_URL'],
    [{ LIMITS_REDIS_URL: 'redis://:hunter2@127.0.0.1:6379/x' }, 'LIMITS_REDIS_URL'],
    [{ LIMITS_REDIS_URL: 'not a url hunter2' }, 'LIMITS_REDIS_URL'],
    [{ LIMITS_REDIS_URL: 'redis://127.0.0.1', LIMITS_REDIS_TIMEOUT_MS: '0' }, 'LIMITS_REDIS_TIMEOUT_MS'],
    [{ LIMITS_REDIS_URL: 'redis://127.0.0.1', LIMITS_REDIS_KEY_PREFIX: 'a b' }, 'LIMITS_REDIS_KEY_PREFIX'],
    [{ LIMITS_REDIS_URL: 'redis://127.0.0.1', LIMITS_REDIS_LEASE_MS: '10' }, 'LIMITS_REDIS_LEASE_MS'],
  ])('%j is a ConfigError naming %s, never echoing a password', (env, key) => {
    let err: unknown;
    try {
      createLimits(new MemoryPolicyStore<Policy>({}), env, captureLogger().logger, createRegistry(false)).close();
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ name: 'ConfigError', key });
    expect((err as Error).message).not.toContain('hunter2');
  });
});
