import { createRegistry } from '../../../common/metrics';
import { rateLimitedVerdict } from '../../../proxy/limits/rate-limited';
import { limitsMetrics } from '../../../proxy/limits/metrics';
import type { Denial } from '../../../proxy/limits/limiter';
import type { LimitRule } from '../../../proxy/limits/policy';
import { chatExchange } from '../../support/exchange';
import { captureLogger } from './helpers';

const rule = (over: Partial<LimitRule>): LimitRule => ({ id: 'r', per: 'identity', shadow: false, onError: 'local', ...over });

function verdict(d: Denial) {
  const ex = chatExchange();
  ex.notes.limits = { identity: 'user:a', identitySource: 'header', workload: 'ns/p' };
  const { logger, lines } = captureLogger('debug');
  const v = rateLimitedVerdict(ex, d, { 'x-ratelimit-limit-requests': '2' }, limitsMetrics(createRegistry(false), () => [0, 0], () => [0, 0]), logger);
  return { v, ex, lines };
}

describe('rateLimitedVerdict', () => {
  it('names the rule and its window, records the finding, and keeps SDK retries for short waits', () => {
    const { v, ex, lines } = verdict({ rule: rule({ id: 'chat', requests: { limit: 2, windowMs: 60_000 } }), kind: 'requests', retryAfterMs: 1500, limit: 2, resetMs: 1500 });
    expect(v).toMatchObject({ status: 429, code: 'chat', message: 'Rate limit exceeded: rule chat allows 2 requests per minute per identity. Retry after 2s.' });
    expect(v.headers).toEqual({ 'x-ratelimit-limit-requests': '2', 'retry-after': '2', 'retry-after-ms': '1500' });
    expect(ex.findings).toEqual([expect.objectContaining({ source: 'limit', ruleId: 'chat', action: 'limit' })]);
    expect(ex.notes.limits?.limitedBy).toBe('chat');
    expect(lines.some((l) => l.msg === 'rate limited')).toBe(true);
  });

  it('tells SDKs not to retry past a minute, and explains a store failure', () => {
    const long = verdict({ rule: rule({ id: 't', per: 'global', tokens: { limit: 1, windowMs: 3_600_000 } }), kind: 'tokens', retryAfterMs: 120_000, limit: 1, resetMs: 120_000 }).v;
    expect(long.message).toContain('allows 1 token per hour in total');
    expect(long.headers?.['x-should-retry']).toBe('false');
    const store = verdict({ rule: rule({ id: 's' }), kind: 'store', retryAfterMs: 1000, limit: 0, resetMs: 0, storeFailure: 'timeout' }).v;
    expect(store.message).toContain('the shared limits store did not answer (timeout)');
  });
});
