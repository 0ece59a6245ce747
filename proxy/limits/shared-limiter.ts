import { createHash, randomBytes } from 'node:crypto';
import type { Exchange } from '../protocols/exchange';
import type { Bucket } from './bucket';
import { msUntil, msUntilFull } from './bucket';
import { fillHeaders, matches, pathOnly, type Admission, type Decision, type Denial, type Limiter, type RuleLevels } from './limiter';
import type { LimitRule } from './policy';
import { RedisUnavailableError, type RedisClient } from './redis-client';
import { ADMIT, RENEW, SETTLE } from './redis-scripts';
import type { RespValue } from './resp';
import { actualTokens, admissionEstimate } from './usage';

/** Why a check was decided without the store. */
export type StoreFailure = 'timeout' | 'unavailable' | 'queue_full' | 'connection_lost' | 'error';

export interface SharedLimiterOptions {
  /** First part of every key, so several deployments can share one Redis without sharing counters. */
  prefix: string;
  /** Deadline of one check, from sending to the last reply. */
  timeoutMs: number;
  /** A concurrency slot of a pod that died mid-request frees itself after this long. Renewed while the request runs. */
  leaseMs: number;
  defaultCompletion: number;
  /** Told about every check that fell back, and every settle that could not be sent. */
  onFailure(reason: StoreFailure, stage: 'admit' | 'settle'): void;
}

/** The rules of one hash tag: one script call, one shard. */
interface Group {
  rules: LimitRule[];
  keys: string[];
}

/** What a shared admission took, so completion can give back concurrency and correct tokens. */
export interface SharedAdmission {
  shared: true;
  groups: Group[];
  lease: string;
  /** Tokens taken per rule (the estimate; 0 for rules without a token limit), by rule id. */
  tokens: Map<string, number>;
  promptEstimate: number;
  estimate: number;
  released: boolean;
  /** Date.now() of admission, for lease renewal. */
  since: number;
}

type GroupReply = { refused: boolean; rules: Array<{ status: number; req?: number; tok?: number }> };

const STATUS_KIND = ['', 'requests', 'tokens', 'concurrent'] as const;

/**
 * Request, token and concurrency limits kept in Redis, shared by every pod that uses the same Redis and
 * key prefix. One check = one script per hash tag (usually one, two with a global rule), all written at
 * once and answered in one round trip. When Redis cannot answer within the deadline, each rule does
 * what its on_error says, and `local` rules are counted by the in-memory Limiter given here.
 */
export class SharedLimiter {
  private rules: LimitRule[] = [];
  private readonly leasePrefix = randomBytes(6).toString('hex');
  private leaseSeq = 0;
  private readonly running = new Set<SharedAdmission>();
  private readonly renewTimer: NodeJS.Timeout;

  constructor(
    private readonly redis: RedisClient,
    readonly local: Limiter,
    private readonly opts: SharedLimiterOptions,
  ) {
    this.renewTimer = setInterval(() => this.renew(), Math.max(50, Math.floor(opts.leaseMs / 3)));
    this.renewTimer.unref();
  }

  setRules(rules: LimitRule[]): void {
    this.rules = rules;
    this.local.setRules(rules.filter((r) => r.onError === 'local'));
  }

  admit(ex: Exchange, identity: string, now: number): Decision<Admission | SharedAdmission> | Promise<Decision<Admission | SharedAdmission>> {
    if (this.rules.length === 0) return { shadowDenials: [], headers: {} };
    const path = pathOnly(ex.path);
    const matched = this.rules.filter((r) => matches(r, ex, path));
    if (matched.length === 0) return { shadowDenials: [], headers: {} };
    if (this.redis.state !== 'ready') {
      this.opts.onFailure('unavailable', 'admit');
      return this.fallback(ex, identity, now, 'unavailable');
    }

    const est = matched.some((r) => r.tokens) ? admissionEstimate(ex, this.opts.defaultCompletion) : { prompt: 0, total: 0 };
    const lease = `${this.leasePrefix}:${(this.leaseSeq++).toString(36)}`;
    const groups = this.group(matched, identity, ex.model ?? '-');
    const calls = groups.map((g) => this.redis.evalScript(ADMIT, g.keys, admitArgs(g, lease, this.opts.leaseMs, est.total)));

    return new Promise((resolve) => {
      let left = calls.length;
      let decided = false;
      const replies: Array<GroupReply | undefined> = new Array(calls.length);
      let failure: StoreFailure | undefined;
      const decide = (): void => {
        if (decided) return;
        decided = true;
        clearTimeout(timer);
        if (failure || left > 0) {
          // Whatever the store still answers for this check is given back (see late()).
          for (let i = 0; i < replies.length; i++) if (replies[i]) this.release(groups[i], lease, est.total, replies[i]!);
          const reason = failure ?? 'timeout';
          this.opts.onFailure(reason, 'admit');
          resolve(this.fallback(ex, identity, now, reason));
          return;
        }
        resolve(this.decision(groups, replies as GroupReply[], lease, est));
      };
      // The deadline waits one more I/O poll: a reply already in the socket buffer when the timer fires
      // (the event loop was busy) is still read before giving up on it.
      const timer = setTimeout(() => setImmediate(decide), this.opts.timeoutMs);
      calls.forEach((call, i) => {
        call.then(
          (value) => {
            let reply: GroupReply;
            try {
              reply = parseAdmit(value, groups[i].rules.length);
            } catch {
              failure ??= 'error';
              left--;
              return decide();
            }
            // After the deadline the request was decided locally: what the store took goes back.
            if (decided) return this.release(groups[i], lease, est.total, reply);
            replies[i] = reply;
            if (--left === 0) decide();
          },
          (err: unknown) => {
            failure ??= err instanceof RedisUnavailableError ? err.reason : 'error';
            left--;
            decide();
          },
        );
      });
    });
  }

  /** Gives back concurrency and replaces the token estimate by the real usage. Idempotent. */
  complete(adm: Admission | SharedAdmission, ex: Exchange, now: number): number {
    if (!('shared' in adm)) return this.local.complete(adm, ex, now);
    if (adm.released) return 0;
    adm.released = true;
    this.running.delete(adm);
    const failed = (ex.outcome === 'upstream_error' || ex.outcome === 'timeout') && ex.output.length === 0 && !ex.usage;
    const actual = failed ? 0 : actualTokens(ex, adm.promptEstimate);
    for (const g of adm.groups) {
      const args: Array<string | number> = [adm.lease];
      let work = false;
      for (const r of g.rules) {
        const taken = adm.tokens.get(r.id) ?? 0;
        const back = taken > 0 ? taken - actual : 0;
        args.push(r.requests?.limit ?? 0, r.requests?.windowMs ?? 0, 0, r.tokens?.limit ?? 0, r.tokens?.windowMs ?? 0, back, r.concurrent !== undefined ? 1 : 0);
        work ||= back !== 0 || r.concurrent !== undefined;
      }
      if (work) this.settle(g, args);
    }
    return actual;
  }

  close(): void {
    clearInterval(this.renewTimer);
    this.running.clear();
  }

  /** Rules grouped by hash tag: an identity's rules together, each model's, and the global ones. */
  private group(rules: LimitRule[], identity: string, model: string): Group[] {
    const byTag = new Map<string, Group>();
    const p = this.opts.prefix;
    for (const r of rules) {
      let tag: string;
      let scope = '';
      switch (r.per) {
        case 'identity':
          tag = `i:${keyPart(identity)}`;
          break;
        case 'identity_model':
          tag = `i:${keyPart(identity)}`;
          scope = `:${keyPart(model)}`;
          break;
        case 'model':
          tag = `m:${keyPart(model)}`;
          break;
        case 'global':
          tag = 'g';
          break;
      }
      let g = byTag.get(tag);
      if (!g) byTag.set(tag, (g = { rules: [], keys: [] }));
      const base = `${p}:{${tag}}:${keyPart(r.id)}${scope}`;
      g.rules.push(r);
      g.keys.push(`${base}:b`, `${base}:c`);
    }
    return [...byTag.values()];
  }

  private decision(groups: Group[], replies: GroupReply[], lease: string, est: { prompt: number; total: number }): Decision<SharedAdmission> {
    const decision: Decision<SharedAdmission> = { shadowDenials: [], headers: {} };
    const admitted: RuleLevels[] = [];
    for (let gi = 0; gi < groups.length; gi++) {
      const g = groups[gi];
      replies[gi].rules.forEach((res, i) => {
        const rule = g.rules[i];
        const state: { req?: Bucket; tok?: Bucket } = {};
        if (res.req !== undefined) state.req = { level: res.req, at: 0 };
        if (res.tok !== undefined) state.tok = { level: res.tok, at: 0 };
        if (res.status === 0) {
          admitted.push({ rule, state });
          return;
        }
        const d = denial(rule, STATUS_KIND[res.status] as 'requests' | 'tokens' | 'concurrent', state, est.total);
        if (rule.shadow) decision.shadowDenials.push(d);
        else if (!decision.denied || d.retryAfterMs > decision.denied.retryAfterMs) decision.denied = d;
      });
    }
    if (decision.denied) {
      // A group that admitted took its share; the request is refused as a whole, so it goes back.
      groups.forEach((g, i) => this.release(g, lease, est.total, replies[i]));
      fillHeaders(decision.headers, admitted, decision.denied);
      return decision;
    }
    if (admitted.length === 0) return decision;
    fillHeaders(decision.headers, admitted);
    const tokens = new Map<string, number>();
    for (const a of admitted) if (a.rule.tokens) tokens.set(a.rule.id, est.total);
    const adm: SharedAdmission = { shared: true, groups: this.admittedOnly(groups, replies), lease, tokens, promptEstimate: est.prompt, estimate: est.total, released: false, since: Date.now() };
    if (adm.groups.some((g) => g.rules.some((r) => r.concurrent !== undefined))) this.running.add(adm);
    decision.admission = adm;
    return decision;
  }

  /** The rules that took something (shadow rules that refused took nothing and must not be settled). */
  private admittedOnly(groups: Group[], replies: GroupReply[]): Group[] {
    return groups.map((g, gi) => {
      const keep: Group = { rules: [], keys: [] };
      g.rules.forEach((r, i) => {
        if (replies[gi].rules[i].status !== 0) return;
        keep.rules.push(r);
        keep.keys.push(g.keys[2 * i], g.keys[2 * i + 1]);
      });
      return keep;
    }).filter((g) => g.rules.length > 0);
  }

  /** Decides without the store, per each matching rule's on_error. */
  private fallback(ex: Exchange, identity: string, now: number, reason: StoreFailure): Decision<Admission> {
    const path = pathOnly(ex.path);
    let blocked: LimitRule | undefined;
    for (const r of this.rules) if (r.onError === 'block' && !r.shadow && matches(r, ex, path)) blocked = r;
    if (blocked) {
      return { shadowDenials: [], headers: {}, denied: { rule: blocked, kind: 'store', retryAfterMs: 1000, limit: 0, resetMs: 0, storeFailure: reason } };
    }
    return this.local.admit(ex, identity, now);
  }

  /** Gives back everything one ADMIT took: nothing when it refused, else each rule that admitted. */
  private release(g: Group, lease: string, estimate: number, reply: GroupReply): void {
    if (reply.refused) return;
    const args: Array<string | number> = [lease];
    const keys: string[] = [];
    g.rules.forEach((r, i) => {
      if (reply.rules[i].status !== 0) return;
      keys.push(g.keys[2 * i], g.keys[2 * i + 1]);
      args.push(r.requests?.limit ?? 0, r.requests?.windowMs ?? 0, r.requests ? 1 : 0, r.tokens?.limit ?? 0, r.tokens?.windowMs ?? 0, r.tokens ? estimate : 0, r.concurrent !== undefined ? 1 : 0);
    });
    if (keys.length > 0) this.settle({ rules: [], keys }, args);
  }

  private settle(g: Group, args: Array<string | number>): void {
    this.redis.evalScript(SETTLE, g.keys, args).catch((err: unknown) => this.opts.onFailure(err instanceof RedisUnavailableError ? err.reason : 'error', 'settle'));
  }

  /** Keeps the concurrency leases of long requests alive; a pod that dies stops renewing and its slots expire. */
  private renew(): void {
    if (this.redis.state !== 'ready') return;
    const due = Date.now() - this.opts.leaseMs / 3;
    for (const adm of this.running) {
      if (adm.since > due) continue;
      for (const g of adm.groups) {
        const keys = g.rules.flatMap((r, i) => (r.concurrent !== undefined ? [g.keys[2 * i + 1]] : []));
        if (keys.length > 0) this.redis.evalScript(RENEW, keys, [adm.lease, this.opts.leaseMs]).catch(() => this.opts.onFailure('error', 'settle'));
      }
    }
  }
}

function admitArgs(g: Group, lease: string, leaseMs: number, cost: number): Array<string | number> {
  const args: Array<string | number> = [lease, leaseMs];
  for (const r of g.rules) {
    args.push(r.shadow ? 1 : 0, r.requests?.limit ?? 0, r.requests?.windowMs ?? 0, r.tokens?.limit ?? 0, r.tokens?.windowMs ?? 0, r.tokens ? cost : 0, r.concurrent ?? 0);
  }
  return args;
}

function parseAdmit(v: RespValue, rules: number): GroupReply {
  if (!Array.isArray(v) || v.length !== 1 + 3 * rules) throw new Error('unexpected ADMIT reply');
  const out: GroupReply = { refused: v[0] === 1, rules: [] };
  for (let i = 0; i < rules; i++) {
    const [status, req, tok] = v.slice(1 + 3 * i, 4 + 3 * i);
    if (typeof status !== 'number' || status < 0 || status > 3) throw new Error('unexpected ADMIT status');
    out.rules.push({ status, req: level(req), tok: level(tok) });
  }
  return out;
}

function level(v: RespValue): number | undefined {
  if (typeof v !== 'string' || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error('unexpected ADMIT level');
  return n;
}

function denial(rule: LimitRule, kind: 'requests' | 'tokens' | 'concurrent', state: { req?: Bucket; tok?: Bucket }, cost: number): Denial {
  if (kind === 'concurrent') return { rule, kind, retryAfterMs: 1000, limit: rule.concurrent!, resetMs: 0 };
  const limit = kind === 'requests' ? rule.requests! : rule.tokens!;
  const b = (kind === 'requests' ? state.req : state.tok) ?? { level: 0, at: 0 };
  return { rule, kind, retryAfterMs: msUntil(b, limit, kind === 'requests' ? 1 : cost), limit: limit.limit, resetMs: msUntilFull(b, limit) };
}

/**
 * One part of a key: hash-tag braces, the separator and '%' escaped so no identity or model can move the
 * hash tag or collide with another key; long parts (a model name is client-chosen) hashed.
 */
export function keyPart(s: string): string {
  if (s.length > 128) return `#${createHash('sha256').update(s).digest('hex').slice(0, 32)}`;
  return s.replace(/[%{}:#]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
}
