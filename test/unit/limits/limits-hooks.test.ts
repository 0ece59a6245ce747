import path from 'node:path';
import { createLimits, checkLimitsPolicy, type Limits, type LimitsNote } from '../../../proxy/limits';
import { loadPolicyFile } from '../../../proxy/policy/load';
import { MemoryPolicyStore, type Policy } from '../../../proxy/policy/store';
import type { BlockVerdict, Exchange } from '../../../proxy/protocols/exchange';
import { createRegistry } from '../../../common/metrics';
import { answer, captureLogger, chat, exchange, manualClock } from './helpers';

const EXAMPLE = path.join(__dirname, '../../../examples/policies/limits.yaml');

function setup(policy: Policy, env: Record<string, string> = {}) {
  const clock = manualClock();
  const { logger, lines } = captureLogger('debug');
  const registry = createRegistry(false);
  const store = new MemoryPolicyStore<Policy>(policy);
  const limits = createLimits(store, env, logger, registry, clock.now);
  return { clock, lines, registry, store, limits };
}

/** Runs the hooks the way the server does: identity, (guardrails), limits, then completion. */
function request(l: Limits, ex: Exchange): BlockVerdict | undefined {
  const early = l.identityHooks.onRequest!(ex) as BlockVerdict | undefined;
  if (early) return early;
  return l.hooks.onRequest!(ex) as BlockVerdict | undefined;
}
function complete(l: Limits, ex: Exchange): void {
  l.identityHooks.onComplete?.(ex);
  l.hooks.onComplete!(ex);
}

describe('examples/policies/limits.yaml', () => {
  const policy = loadPolicyFile(EXAMPLE, [checkLimitsPolicy]);

  test('loads through the policy loader, keeps the default pack and adds the limit', () => {
    expect(policy.guardrails.rules.map((r) => r.id)).toContain('prompt-injection');
    expect(policy.limits).toEqual([expect.objectContaining({ id: 'chat-per-user', requests: { limit: 5, window: '1m' } })]);
    // The loader's store type (MemoryPolicyStore<ResolvedPolicy>) is what main passes in.
    const limits = createLimits(new MemoryPolicyStore(policy), {}, captureLogger().logger, createRegistry(false));
    limits.close();
  });

  test('checkLimitsPolicy turns limits problems into PolicyError lines', () => {
    const dup = { ...policy, limits: [{ id: 'a', concurrent: 1 }, { id: 'a', concurrent: 2 }] };
    expect(() => checkLimitsPolicy(dup, 'p.yaml')).toThrow('p.yaml: limits[1].id: "a" is used by two rules');
  });

  test('a bad limits section at start is a ConfigError naming POLICY_FILE', () => {
    const bad = { limits: [{ id: 'a', concurrent: 1 }, { id: 'a', concurrent: 2 }] };
    expect(() => createLimits(new MemoryPolicyStore<Policy>(bad), {}, captureLogger().logger, createRegistry(false))).toThrow(
      expect.objectContaining({ name: 'ConfigError', key: 'POLICY_FILE', message: expect.stringContaining('limits[1].id') }),
    );
  });

  test('a 6th request from one user within the minute gets 429; another user is unaffected', () => {
    const { limits, clock } = setup(policy);
    let n = 0;
    // Distinct prompts: five identical ones would (rightly) also trip the loop detector.
    const alice = () => exchange(chat(`question ${'abcdefgh'[n++]}`), { headers: { 'x-end-user-id': 'alice' } });
    for (let i = 0; i < 5; i++) {
      const ex = alice();
      expect(request(limits, ex)).toBeUndefined();
      expect(ex.identity).toBe('user:alice');
      expect(ex.responseHeaders['x-ratelimit-remaining-requests']).toBe(String(4 - i));
      expect(ex.responseHeaders['x-ratelimit-limit-requests']).toBe('5');
      complete(limits, answer(ex, 'ok'));
      clock.advance(1000);
    }
    const sixth = alice();
    const v = request(limits, sixth);
    expect(v).toMatchObject({ status: 429, type: 'rate_limit_exceeded', code: 'chat-per-user' });
    // Continuous refill, 1 per 12s: after 5 requests at t=0..4s the bucket holds 5/12 at t=5s; 7/12 more take 7s.
    expect(v!.headers).toMatchObject({
      'retry-after': '7',
      'x-ratelimit-limit-requests': '5',
      'x-ratelimit-remaining-requests': '0',
    });
    expect(Number(v!.headers!['x-ratelimit-reset-requests'])).toBeGreaterThan(7);
    expect(v!.message).toContain('5 requests per minute');
    expect(sixth.findings).toEqual([expect.objectContaining({ source: 'limit', ruleId: 'chat-per-user', action: 'limit' })]);
    expect((sixth.notes.limits as LimitsNote).limitedBy).toBe('chat-per-user');
    complete(limits, sixth);

    // Another user, identified by the body's `user` field, is unaffected.
    const bob = exchange(chat('hi', { user: 'bob' }));
    expect(request(limits, bob)).toBeUndefined();
    expect(bob.identity).toBe('user:bob');

    // After the Retry-After has passed, alice gets in again.
    clock.advance(7000);
    expect(request(limits, alice())).toBeUndefined();
  });

  test('a wait over a minute tells SDKs not to retry on their own', () => {
    const { limits } = setup({ limits: [{ id: 'hourly', requests: { limit: 1, window: '1h' } }] });
    request(limits, exchange(chat('one')));
    const v = request(limits, exchange(chat('two')));
    expect(v!.headers).toMatchObject({ 'retry-after': '3600', 'retry-after-ms': '3600000', 'x-should-retry': 'false' });
  });

  test('the header wins over the body user; other routes are not limited', () => {
    const { limits } = setup(policy);
    const ex = exchange(chat('hi', { user: 'bob' }), { headers: { 'x-end-user-id': 'carol' } });
    request(limits, ex);
    expect(ex.identity).toBe('user:carol');
    for (let i = 0; i < 20; i++) {
      const e = exchange({ inputs: 'x' }, { path: '/generate', headers: { 'x-end-user-id': 'carol' } });
      expect(request(limits, e)).toBeUndefined();
      expect(e.responseHeaders['x-ratelimit-limit-requests']).toBeUndefined();
    }
  });
});

describe('token limits', () => {
  const policy: Policy = { limits: [{ id: 'tpm', per: 'identity', tokens: { limit: 1000, window: '1m' } }] };

  test('admission charges the estimate; completion corrects it to the real usage', () => {
    const { limits } = setup(policy);
    // 400 chars of prompt = 100 tokens, + max_tokens 300 = 400 estimated.
    const ex = exchange(chat('x'.repeat(400), { max_tokens: 300 }));
    expect(request(limits, ex)).toBeUndefined();
    expect(ex.responseHeaders['x-ratelimit-remaining-tokens']).toBe('600');
    complete(limits, answer(ex, 'short', { promptTokens: 90, completionTokens: 10, totalTokens: 100, source: 'response' }));
    expect((ex.notes.limits as LimitsNote).tokens).toEqual({ estimated: 400, charged: 100 });

    const next = exchange(chat('x'.repeat(400), { max_tokens: 300 }));
    request(limits, next);
    // 1000 - 100 (real) - 400 (this estimate) = 500
    expect(next.responseHeaders['x-ratelimit-remaining-tokens']).toBe('500');
  });

  test('usage above the estimate is charged too (a stream is never cut, its real usage counts)', () => {
    const { limits, clock } = setup(policy);
    const ex = exchange(chat('hello', { max_tokens: 100, stream: true }));
    expect(request(limits, ex)).toBeUndefined();
    complete(limits, answer(ex, 'long...', { promptTokens: 2, completionTokens: 1200, totalTokens: 1202, source: 'stream' }));
    const next = exchange(chat('hello', { max_tokens: 100 }));
    const v = request(limits, next);
    expect(v).toMatchObject({ status: 429, code: 'tpm' });
    // Level is 1000 - 1202 = -202; needs 102 (estimate 2 + 100): 304 tokens at 1000/min = 18.24s.
    expect(v!.headers!['retry-after']).toBe('19');
    expect(v!.headers!['x-ratelimit-remaining-tokens']).toBe('0');
    clock.advance(18_240);
    expect(request(limits, exchange(chat('hello', { max_tokens: 100 })))).toBeUndefined();
  });

  test('without usage, the output is counted; without max_tokens the documented default is assumed', () => {
    const { limits } = setup(policy, { LIMITS_DEFAULT_COMPLETION_TOKENS: '500' });
    const ex = exchange(chat('y'.repeat(40)));
    request(limits, ex);
    expect(ex.responseHeaders['x-ratelimit-remaining-tokens']).toBe(String(1000 - 10 - 500));
    complete(limits, answer(ex, 'z'.repeat(80)));
    expect((ex.notes.limits as LimitsNote).tokens).toEqual({ estimated: 510, charged: 30 });
  });

  test('an upstream that never answered charges no tokens', () => {
    const { limits } = setup(policy);
    const ex = exchange(chat('y'.repeat(40), { max_tokens: 900 }));
    request(limits, ex);
    ex.outcome = 'upstream_error';
    complete(limits, ex);
    expect((ex.notes.limits as LimitsNote).tokens).toEqual({ estimated: 910, charged: 0 });
  });
});

describe('concurrency', () => {
  const policy: Policy = { limits: [{ id: 'par', per: 'global', concurrent: 2 }] };

  test.each(['aborted', 'upstream_error', 'timeout', 'ok'] as const)('a slot is released when the exchange ends as %s', (outcome) => {
    const { limits } = setup(policy);
    const a = exchange(chat('a'));
    const b = exchange(chat('b'));
    expect(request(limits, a)).toBeUndefined();
    expect(request(limits, b)).toBeUndefined();
    const c = exchange(chat('c'));
    expect(request(limits, c)).toMatchObject({ status: 429, code: 'par', headers: { 'retry-after': '1' } });
    complete(limits, c); // the refused one held no slot: completing it must not free one
    expect(request(limits, exchange(chat('d')))).toMatchObject({ status: 429 });
    a.outcome = outcome;
    complete(limits, a);
    complete(limits, a); // completing twice does not free twice
    expect(request(limits, exchange(chat('e')))).toBeUndefined();
    expect(request(limits, exchange(chat('f')))).toMatchObject({ status: 429 });
  });
});

describe('scopes', () => {
  test('per model, per identity and model, global', () => {
    const { limits } = setup({
      identity: { sources: [{ from: 'header', name: 'x-user' }] },
      limits: [
        { id: 'model', per: 'model', requests: { limit: 3, window: '1h' } },
        { id: 'pair', per: 'identity_model', requests: { limit: 2, window: '1h' } },
        { id: 'all', per: 'global', requests: { limit: 5, window: '1h' } },
      ],
    });
    const go = (user: string, model: string) => request(limits, exchange({ model, messages: [{ role: 'user', content: 'q' }] }, { headers: { 'x-user': user } }));
    expect(go('u1', 'm1')).toBeUndefined();
    expect(go('u1', 'm1')).toBeUndefined();
    expect(go('u1', 'm1')).toMatchObject({ code: 'pair' });
    expect(go('u2', 'm1')).toBeUndefined();
    expect(go('u3', 'm1')).toMatchObject({ code: 'model' });
    expect(go('u3', 'm2')).toBeUndefined();
    expect(go('u4', 'm2')).toBeUndefined();
    expect(go('u5', 'm3')).toMatchObject({ code: 'all' });
  });

  test('a refused request takes nothing from the other rules', () => {
    const { limits } = setup({
      limits: [
        { id: 'wide', per: 'global', requests: { limit: 100, window: '1h' } },
        { id: 'narrow', per: 'identity', requests: { limit: 1, window: '1h' } },
      ],
    });
    request(limits, exchange(chat('q')));
    for (let i = 0; i < 10; i++) expect(request(limits, exchange(chat('q')))).toMatchObject({ code: 'narrow' });
    const other = exchange(chat('q'), { clientAddress: '10.9.9.9' });
    request(limits, other);
    expect(other.responseHeaders['x-ratelimit-remaining-requests']).toBe('0'); // narrow: 0 left for 10.9.9.9
    const third = exchange(chat('q'), { clientAddress: '10.9.9.8' });
    request(limits, third);
    expect(third.responseHeaders).toMatchObject({ 'x-ratelimit-remaining-requests': '0' });
  });

  test('shadow rules only record a finding', () => {
    const { limits, registry } = setup({ limits: [{ id: 'trial', requests: { limit: 1, window: '1h' }, mode: 'shadow' }] });
    request(limits, exchange(chat('q')));
    const ex = exchange(chat('q'));
    expect(request(limits, ex)).toBeUndefined();
    expect(ex.findings).toEqual([expect.objectContaining({ ruleId: 'trial', action: 'flag', source: 'limit' })]);
    return registry.getSingleMetricAsString('akto_proxy_rate_limit_shadow_total').then((t) => expect(t).toContain('rule="trial",kind="requests"} 1'));
  });
});

describe('policy reload', () => {
  test('a new limit applies at once; a broken reload keeps the old limits', () => {
    const { limits, store, lines } = setup({ limits: [{ id: 'r', requests: { limit: 1, window: '1h' } }] });
    request(limits, exchange(chat('q')));
    expect(request(limits, exchange(chat('q')))).toMatchObject({ code: 'r' });
    store.set({ limits: [{ id: 'r2', requests: { limit: 10, window: '1h' } }] });
    expect(request(limits, exchange(chat('q')))).toBeUndefined();
    store.set({ limits: [{ id: 'bad', requests: { limit: 1, window: 'soon' } }] });
    expect(request(limits, exchange(chat('q')))).toBeUndefined();
    expect(lines.some((l) => String(l.msg).includes('reloaded policy rejected'))).toBe(true);
    limits.close();
  });
});

describe('metrics', () => {
  test('429s are counted by rule and the LRU size is exported', async () => {
    const { limits, registry } = setup({ limits: [{ id: 'one', requests: { limit: 1, window: '1h' } }] });
    request(limits, exchange(chat('q')));
    request(limits, exchange(chat('q')));
    const text = await registry.metrics();
    expect(text).toContain('akto_proxy_rate_limited_total{rule="one",kind="requests"} 1');
    expect(text).toContain('akto_proxy_limits_tracked{table="identities"} 1');
  });
});
