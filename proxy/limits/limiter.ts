import type { Exchange } from '../protocols/exchange';
import { Bucket, canTake, msUntil, msUntilFull, newBucket, refill } from './bucket';
import { Lru } from './lru';
import type { LimitRule, WindowLimit } from './policy';
import { actualTokens, admissionEstimate } from './usage';

/** Counters of one rule for one scope key (an identity, a model, a pair, or the whole sidecar). */
interface RuleState {
  req?: Bucket;
  tok?: Bucket;
  inflight: number;
}

interface Charge {
  rule: LimitRule;
  state: RuleState;
  /** Tokens taken at admission (the estimate), 0 when the rule has no token limit. */
  tokens: number;
}

/** What admission took, so completion can give back concurrency and correct the token charge. */
export interface Admission {
  charges: Charge[];
  promptEstimate: number;
  estimate: number;
  released: boolean;
}

/** `store`: the shared store could not answer and the rule's on_error is block. */
export type LimitKind = 'requests' | 'tokens' | 'concurrent' | 'store';

export interface Denial {
  rule: LimitRule;
  kind: LimitKind;
  retryAfterMs: number;
  limit: number;
  /** Milliseconds until the denied bucket is full again (0 for concurrency). */
  resetMs: number;
  /** kind `store`: why the shared store could not answer. */
  storeFailure?: string;
}

export interface Decision<A = Admission> {
  /** Set when an enforced rule refuses the request; nothing was taken then. */
  denied?: Denial;
  /** Shadow rules that would have refused it. */
  shadowDenials: Denial[];
  /** Present when admitted and at least one rule matched. */
  admission?: A;
  /** x-ratelimit-* headers for the most constrained enforced rule of each kind. */
  headers: Record<string, string>;
}

function scopeKey(rule: LimitRule, identity: string, model: string): string {
  switch (rule.per) {
    case 'identity':
      return `${rule.id}\u0000${identity}`;
    case 'model':
      return `${rule.id}\u0001${model}`;
    case 'identity_model':
      return `${rule.id}\u0000${identity}\u0001${model}`;
    case 'global':
      return rule.id;
  }
}

export function matches(rule: LimitRule, ex: Exchange, path: string): boolean {
  if (rule.paths && !rule.paths.has(path)) return false;
  if (rule.apis && !rule.apis.has(ex.api)) return false;
  if (rule.models && (ex.model === undefined || !rule.models.has(ex.model))) return false;
  return true;
}

export function pathOnly(p: string): string {
  const q = p.indexOf('?');
  return q < 0 ? p : p.slice(0, q);
}

const seconds = (ms: number): string => String(Math.ceil(ms / 1000));

/**
 * Request, token and concurrency limits over token buckets, with state in an LRU of at most
 * `maxKeys` (rule, scope) entries. Pure apart from the clock value passed in.
 */
export class Limiter {
  readonly states: Lru<RuleState>;
  private rules: LimitRule[] = [];

  constructor(maxKeys: number, private readonly defaultCompletion: number) {
    this.states = new Lru<RuleState>(maxKeys);
  }

  setRules(rules: LimitRule[]): void {
    this.rules = rules;
  }

  get ruleCount(): number {
    return this.rules.length;
  }

  admit(ex: Exchange, identity: string, now: number): Decision {
    const decision: Decision = { shadowDenials: [], headers: {} };
    if (this.rules.length === 0) return decision;
    const path = pathOnly(ex.path);
    const model = ex.model ?? '-';
    let est: { prompt: number; total: number } | undefined;
    const matched: Charge[] = [];

    for (const rule of this.rules) {
      if (!matches(rule, ex, path)) continue;
      const state = this.states.getOrCreate(scopeKey(rule, identity, model), () => ({ inflight: 0 }));
      if (rule.tokens && est === undefined) est = admissionEstimate(ex, this.defaultCompletion);
      const tokens = rule.tokens ? est!.total : 0;
      const denial = this.check(rule, state, tokens, now);
      if (denial) {
        if (rule.shadow) decision.shadowDenials.push(denial);
        else if (!decision.denied || denial.retryAfterMs > decision.denied.retryAfterMs) decision.denied = denial;
        continue;
      }
      matched.push({ rule, state, tokens });
    }
    if (matched.length === 0 && !decision.denied) return decision;
    if (decision.denied) {
      fillHeaders(decision.headers, matched, decision.denied);
      return decision;
    }
    for (const c of matched) {
      if (c.state.req) c.state.req.level -= 1;
      if (c.state.tok) c.state.tok.level -= c.tokens;
      if (c.rule.concurrent !== undefined) c.state.inflight++;
    }
    fillHeaders(decision.headers, matched);
    decision.admission = { charges: matched, promptEstimate: est?.prompt ?? 0, estimate: est?.total ?? 0, released: false };
    return decision;
  }

  /** Gives back concurrency and replaces the token estimate by the real usage. Idempotent. */
  complete(adm: Admission, ex: Exchange, now: number): number {
    if (adm.released) return 0;
    adm.released = true;
    // Nothing was generated when the upstream never answered: charge nothing for tokens.
    const failed = (ex.outcome === 'upstream_error' || ex.outcome === 'timeout') && ex.output.length === 0 && !ex.usage;
    const actual = failed ? 0 : actualTokens(ex, adm.promptEstimate);
    for (const c of adm.charges) {
      if (c.rule.concurrent !== undefined && c.state.inflight > 0) c.state.inflight--;
      if (c.tokens > 0 && c.state.tok && c.rule.tokens) {
        refill(c.state.tok, c.rule.tokens, now);
        c.state.tok.level = Math.min(c.rule.tokens.limit, c.state.tok.level + c.tokens - actual);
      }
    }
    return actual;
  }

  private check(rule: LimitRule, s: RuleState, tokens: number, now: number): Denial | undefined {
    if (rule.concurrent !== undefined && s.inflight >= rule.concurrent) {
      // No refill schedule to point at: the client should come back soon.
      return { rule, kind: 'concurrent', retryAfterMs: 1000, limit: rule.concurrent, resetMs: 0 };
    }
    if (rule.requests) {
      s.req = this.bucket(s.req, rule.requests, now);
      if (!canTake(s.req, rule.requests, 1)) {
        const b = s.req;
        return { rule, kind: 'requests', retryAfterMs: msUntil(b, rule.requests, 1), limit: rule.requests.limit, resetMs: msUntilFull(b, rule.requests) };
      }
    }
    if (rule.tokens) {
      s.tok = this.bucket(s.tok, rule.tokens, now);
      if (!canTake(s.tok, rule.tokens, tokens)) {
        const b = s.tok;
        return { rule, kind: 'tokens', retryAfterMs: msUntil(b, rule.tokens, tokens), limit: rule.tokens.limit, resetMs: msUntilFull(b, rule.tokens) };
      }
    }
    return undefined;
  }

  private bucket(b: Bucket | undefined, limit: WindowLimit, now: number): Bucket {
    if (!b) return newBucket(limit, now);
    refill(b, limit, now);
    return b;
  }
}

/** Bucket levels of one admitted rule, for the x-ratelimit-* headers (after this request's charge). */
export interface RuleLevels {
  rule: LimitRule;
  state: { req?: Bucket; tok?: Bucket };
}

/** Reports the enforced rule with the least remaining per kind; a denied kind reports 0 remaining. */
export function fillHeaders(h: Record<string, string>, charges: readonly RuleLevels[], denied?: Denial): void {
  const least = { requests: Infinity, tokens: Infinity };
  const report = (kind: 'requests' | 'tokens', bucket: Bucket | undefined, limit: WindowLimit | undefined): void => {
    if (!bucket || !limit || bucket.level >= least[kind]) return;
    least[kind] = bucket.level;
    h[`x-ratelimit-limit-${kind}`] = String(limit.limit);
    h[`x-ratelimit-remaining-${kind}`] = String(Math.max(0, Math.floor(bucket.level)));
    h[`x-ratelimit-reset-${kind}`] = seconds(msUntilFull(bucket, limit));
  };
  for (const c of charges) {
    if (c.rule.shadow) continue;
    report('requests', c.state.req, c.rule.requests);
    report('tokens', c.state.tok, c.rule.tokens);
  }
  if (denied && (denied.kind === 'requests' || denied.kind === 'tokens')) {
    const kind = denied.kind;
    h[`x-ratelimit-limit-${kind}`] = String(denied.limit);
    h[`x-ratelimit-remaining-${kind}`] = '0';
    h[`x-ratelimit-reset-${kind}`] = seconds(denied.resetMs);
  }
}
