import type { Logger } from '../../common/logger';
import type { BlockVerdict, Exchange } from '../protocols/exchange';
import type { Denial } from './limiter';
import type { LimitsMetrics } from './metrics';

/** Longest Retry-After we let SDKs wait out on their own. */
const MAX_SDK_RETRY_WAIT_S = 60;

/** The 429 for a denied admission, in words that name the rule and its window; also its finding, metric and debug line. */
export function rateLimitedVerdict(ex: Exchange, d: Denial, headers: Record<string, string>, m: LimitsMetrics, log: Logger): BlockVerdict {
  const retryAfter = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
  const rule = d.rule;
  const what =
    d.kind === 'concurrent'
      ? `${d.limit} concurrent requests`
      : d.kind === 'store'
        ? ''
        : `${d.limit} ${d.limit === 1 ? d.kind.slice(0, -1) : d.kind} per ${humanWindow(d.kind === 'requests' ? rule.requests!.windowMs : rule.tokens!.windowMs)}`;
  const scope = rule.per === 'global' ? 'in total' : `per ${rule.per.replace('_', ' and ')}`;
  const reason =
    d.kind === 'store'
      ? `rule ${rule.id} cannot be checked: the shared limits store did not answer (${d.storeFailure}) and the rule's on_error is block`
      : `rule ${rule.id} allows ${what} ${scope}`;
  ex.findings.push({ source: 'limit', ruleId: rule.id, action: 'limit', severity: 'low', stage: 'request', reason });
  ex.notes.limits!.limitedBy = rule.id;
  m.limited.inc({ rule: rule.id, kind: d.kind });
  log.debug({ rule: rule.id, kind: d.kind, identity: ex.identity, retryAfter, reqId: ex.id }, 'rate limited');
  return {
    status: 429,
    type: 'rate_limit_exceeded',
    code: rule.id,
    message: `Rate limit exceeded: ${reason}. Retry after ${retryAfter}s.`,
    headers: {
      ...headers,
      'retry-after': String(retryAfter),
      'retry-after-ms': String(Math.max(1, d.retryAfterMs)),
      // The OpenAI SDK sleeps for any Retry-After it gets; past a minute, failing fast is kinder than hanging.
      ...(retryAfter > MAX_SDK_RETRY_WAIT_S ? { 'x-should-retry': 'false' } : {}),
    },
  };
}

function humanWindow(ms: number): string {
  if (ms % 3_600_000 === 0) return ms === 3_600_000 ? 'hour' : `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return ms === 60_000 ? 'minute' : `${ms / 60_000}m`;
  if (ms % 1000 === 0) return ms === 1000 ? 'second' : `${ms / 1000}s`;
  return `${ms}ms`;
}
