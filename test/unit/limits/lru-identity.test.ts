import { createLimits, type LimitsNote } from '../../../proxy/limits';
import { hashApiKey, resolveIdentity, workloadFromEnv } from '../../../proxy/limits/identity';
import { Lru } from '../../../proxy/limits/lru';
import { compileLimitsPolicy } from '../../../proxy/limits/policy';
import { MemoryPolicyStore, type Policy } from '../../../proxy/policy/store';
import { createRegistry } from '../../../common/metrics';
import { captureLogger, chat, exchange, manualClock } from './helpers';

describe('LRU', () => {
  test('keeps the most recently used and never more than the cap', () => {
    const lru = new Lru<number>(3);
    lru.getOrCreate('a', () => 1);
    lru.getOrCreate('b', () => 2);
    lru.getOrCreate('c', () => 3);
    lru.get('a');
    lru.getOrCreate('d', () => 4);
    expect(lru.size).toBe(3);
    expect(lru.peek('b')).toBeUndefined();
    expect(lru.peek('a')).toBe(1);
    expect(lru.evictions).toBe(1);
  });

  test('the limits tables hold their caps under 100k distinct identities, and memory stays flat', () => {
    const clock = manualClock();
    const registry = createRegistry(false);
    const policy: Policy = {
      identity: { sources: [{ from: 'header', name: 'x-end-user-id' }] },
      limits: [{ id: 'per-user', per: 'identity', requests: { limit: 10, window: '1m' }, tokens: { limit: 10000, window: '1m' }, concurrent: 4 }],
    };
    const limits = createLimits(new MemoryPolicyStore(policy), { LIMITS_MAX_IDENTITIES: '5000' }, captureLogger().logger, registry, clock.now);
    const run = (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const ex = exchange(chat('hello there'), { headers: { 'x-end-user-id': `u${i}` } });
        limits.identityHooks.onRequest!(ex);
        limits.hooks.onRequest!(ex);
        ex.outcome = 'ok';
        limits.hooks.onComplete!(ex);
        clock.advance(1);
      }
    };
    run(0, 20_000); // fill and settle
    global.gc?.();
    const before = process.memoryUsage().heapUsed;
    run(20_000, 100_000);
    global.gc?.();
    const after = process.memoryUsage().heapUsed;
    return registry.getSingleMetricAsString('akto_proxy_limits_tracked').then((text) => {
      expect(text).toContain('akto_proxy_limits_tracked{table="identities"} 5000');
      // Rule counters are capped at 4x the identity cap.
      expect(text).toContain('akto_proxy_limits_tracked{table="counters"} 20000');
      console.log(`heap after 20k identities ${(before / 1e6).toFixed(1)} MB, after 100k ${(after / 1e6).toFixed(1)} MB`);
      if (global.gc) expect(after - before).toBeLessThan(8e6);
      limits.close();
    });
  });

  test('an evicted identity starts from a full bucket (documented trade-off of the cap)', () => {
    const clock = manualClock();
    const policy: Policy = { identity: { sources: [{ from: 'header', name: 'u' }] }, limits: [{ id: 'one', requests: { limit: 1, window: '1h' } }] };
    const limits = createLimits(new MemoryPolicyStore(policy), { LIMITS_MAX_IDENTITIES: '2' }, captureLogger().logger, createRegistry(false), clock.now);
    const go = (u: string) => limits.hooks.onRequest!(exchange(chat(`q ${u}`), { headers: { u } }));
    expect(go('a')).toBeUndefined();
    expect(go('a')).toMatchObject({ status: 429 });
    for (const u of ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']) go(u);
    expect(go('a')).toBeUndefined();
  });
});

describe('identity', () => {
  const cfg = (policy: Policy) => compileLimitsPolicy(policy).identity;
  const local = workloadFromEnv({});

  test('default order: API-key hash, then client address; the key itself is never kept', () => {
    const ex = exchange(chat('hi'), { headers: { authorization: 'Bearer hf_SECRETSECRETSECRET' } });
    const id = resolveIdentity(ex, cfg({}), local);
    expect(id).toEqual({ key: `key:${hashApiKey('hf_SECRETSECRETSECRET')}`, source: 'api_key' });
    expect(id.key).not.toContain('SECRET');
    expect(id.key).toMatch(/^key:[0-9a-f]{16}$/);
    expect(resolveIdentity(exchange(chat('hi'), { headers: { 'x-api-key': 'k1' } }), cfg({}), local).key).toBe(`key:${hashApiKey('k1')}`);
    expect(resolveIdentity(exchange(chat('hi'), { clientAddress: '10.1.2.3' }), cfg({}), local)).toEqual({ key: 'ip:10.1.2.3', source: 'client_address' });
  });

  test('unusable values fall through to the next source', () => {
    const c = cfg({ identity: { sources: [{ from: 'header', name: 'X-End-User-Id' }, { from: 'body' }, { from: 'client_address' }], max_length: 16 } });
    expect(resolveIdentity(exchange(chat('hi', { user: 'bob' }), { headers: { 'x-end-user-id': 'has space' } }), c, local).key).toBe('user:bob');
    expect(resolveIdentity(exchange(chat('hi', { user: 'x'.repeat(17) })), c, local).key).toBe('ip:10.0.0.7');
    expect(resolveIdentity(exchange(chat('hi', { user: 42 })), c, local).key).toBe('ip:10.0.0.7');
  });

  test('jwt: a claim of the bearer JWT, read without verification; anything else falls through', () => {
    const jwt = (payload: unknown) => `Bearer eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.c2ln`;
    const c = cfg({ identity: { sources: [{ from: 'jwt' }, { from: 'jwt', claim: 'uid' }, { from: 'client_address' }] } });
    expect(resolveIdentity(exchange(chat('hi'), { headers: { authorization: jwt({ sub: 'user-42', uid: 7 }) } }), c, local)).toEqual({ key: 'user:user-42', source: 'jwt' });
    expect(resolveIdentity(exchange(chat('hi'), { headers: { authorization: jwt({ uid: 7 }) } }), c, local).key).toBe('user:7');
    expect(resolveIdentity(exchange(chat('hi'), { headers: { authorization: jwt({ sub: 'has space' }) } }), c, local).key).toBe('ip:10.0.0.7');
    expect(resolveIdentity(exchange(chat('hi'), { headers: { authorization: 'Bearer not-a-jwt' } }), c, local).key).toBe('ip:10.0.0.7');
    expect(resolveIdentity(exchange(chat('hi'), { headers: { authorization: 'Bearer a.!!!.c' } }), c, local).key).toBe('ip:10.0.0.7');
    expect(resolveIdentity(exchange(chat('hi'), { headers: { authorization: `Bearer x.${Buffer.from('[1]').toString('base64url')}.y` } }), c, local).key).toBe('ip:10.0.0.7');
  });

  test('the inbound listener has its own identity: by default the JWT subject, then the key hash, then the address', () => {
    const inbound = (policy: Policy) => compileLimitsPolicy(policy).inboundIdentity;
    const token = `Bearer h.${Buffer.from(JSON.stringify({ sub: 'end-user-9' })).toString('base64url')}.s`;
    expect(resolveIdentity(exchange(chat('hi'), { headers: { authorization: token } }), inbound({}), local).key).toBe('user:end-user-9');
    expect(resolveIdentity(exchange(chat('hi'), { headers: { authorization: 'Bearer opaque' } }), inbound({}), local).key).toBe(`key:${hashApiKey('opaque')}`);
    const byHeader = inbound({ identity: { sources: [{ from: 'workload' }] }, inbound: { identity: { sources: [{ from: 'header', name: 'X-End-User-Id' }] } } });
    expect(resolveIdentity(exchange(chat('hi'), { headers: { 'x-end-user-id': 'u1' } }), byHeader, local).key).toBe('user:u1');
    expect(() => compileLimitsPolicy({ inbound: { identity: { sources: [{ from: 'header' }] } } } as Policy)).toThrow(/inbound\.identity\.sources\[0\]\.name/);
  });

  test('workload identity from the pod env', () => {
    const w = workloadFromEnv({ POD_NAMESPACE: 'agents', POD_NAME: 'planner-7d9f', POD_SERVICE_ACCOUNT: 'planner' });
    expect(w.name).toBe('agents/planner');
    expect(workloadFromEnv({ POD_NAMESPACE: 'agents', POD_NAME: 'planner-7d9f' }).name).toBe('agents/planner-7d9f');
    const c = cfg({ identity: { sources: [{ from: 'header', name: 'x-user' }, { from: 'workload' }] } });
    expect(resolveIdentity(exchange(chat('hi')), c, w)).toEqual({ key: 'workload:agents/planner', source: 'workload' });
    expect(resolveIdentity(exchange(chat('hi')), c, local)).toEqual({ key: 'anonymous', source: 'none' });
  });

  test('the hook sets ex.identity and the note, and the env cap is validated', () => {
    const ex = exchange(chat('hi'), { headers: { 'x-end-user-id': 'dana' } });
    const limits = createLimits(
      new MemoryPolicyStore<Policy>({ identity: { sources: [{ from: 'header', name: 'x-end-user-id' }] } }),
      { POD_NAMESPACE: 'ns', POD_NAME: 'p' },
      captureLogger().logger,
      createRegistry(false),
    );
    limits.identityHooks.onRequest!(ex);
    expect(ex.identity).toBe('user:dana');
    expect(ex.notes.limits as LimitsNote).toEqual({ identity: 'user:dana', identitySource: 'header', workload: 'ns/p' });
    expect(() => createLimits(new MemoryPolicyStore<Policy>({}), { LIMITS_MAX_IDENTITIES: 'lots' }, captureLogger().logger, createRegistry(false))).toThrow(
      'LIMITS_MAX_IDENTITIES: must be an integer',
    );
  });
});
