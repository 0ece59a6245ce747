import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import { ConfigError, declare, type Env } from '../../common/env';
import type { ExchangeHooks } from '../hooks';
import type { Policy, PolicyStore } from '../policy/store';
import type { BlockVerdict, Exchange } from '../protocols/exchange';
import type { Logger } from '../../common/logger';
import { Alert, AnomalyState, newAnomalyState, onCompleteSignals, onRequestSignals } from './anomaly';
import { systemClock, type Clock } from './clock';
import { promptFingerprint } from './fingerprint';
import { resolveIdentity, workloadFromEnv, type IdentitySourceName } from './identity';
import { AnomalyReporter, tagIncident } from './anomaly-report';
import { Incidents, type IncidentListener } from './incidents';
import { limitsMetrics } from './metrics';
import { rateLimitedVerdict } from './rate-limited';
import { Limiter, type Admission, type Decision } from './limiter';
import { Lru } from './lru';
import { compileLimitsPolicy, LimitsPolicyError, type LimitsConfig } from './policy';
import type { SharedAdmission } from './shared-limiter';
import { createSharedLimiter } from './store';

export { checkLimitsPolicy } from './policy';
import { completionTokens, promptChars } from './usage';

export type { Clock } from './clock';

declare module '../protocols/exchange' {
  interface ExchangeNotes {
    /** The identity, its workload, an escalation in force, the rule that answered 429, tokens charged. */
    limits?: LimitsNote;
  }
}

/** What limits records on each exchange (ex.notes.limits); guardrails read escalatedPack. */
export interface LimitsNote {
  identity: string;
  identitySource: IdentitySourceName;
  workload: string;
  /** A stricter guardrail pack this identity must get until escalatedUntil (epoch ms). */
  escalatedPack?: string;
  escalatedUntil?: number;
  /** Rule id that answered 429, when one did. */
  limitedBy?: string;
  /** Token estimate taken at admission and the real usage charged at completion. */
  tokens?: { estimated: number; charged: number };
}

export interface Limits {
  /** Register after guardrails: admission, 429s, usage charging, anomaly baselines. */
  hooks: ExchangeHooks;
  /**
   * Register before guardrails: resolves ex.identity, answers 429 during an escalation cool-down,
   * and sets ex.notes.limits.escalatedPack so the request's guardrails can already use it.
   */
  identityHooks: ExchangeHooks;
  /** Hears every alert that opens or extends an incident (the alert sender subscribes). Must not throw. */
  onIncident(listener: IncidentListener): void;
  close(): void;
}

/** Per-exchange state that must not leak into traces (notes are recorded; this is not). */
interface Flight {
  state: AnomalyState;
  admission?: Admission | SharedAdmission;
  /** onComplete ran (the client left) while a shared-store check was still out: release on arrival. */
  ended?: boolean;
}

export const LIMITS_ENV = {
  maxIdentities: declare.int('LIMITS_MAX_IDENTITIES', 10_000, 1, 10_000_000, 'identities tracked (LRU); rule counters are capped at 4×; see [docs/limits.md](docs/limits.md)'),
  defaultCompletionTokens: declare.int('LIMITS_DEFAULT_COMPLETION_TOKENS', 256, 0, 10_000_000, 'completion assumed when a request sets no `max_tokens`/`max_new_tokens`'),
};

/**
 * Rate limits and anomaly detection for the proxy.
 *
 * Env: LIMITS_MAX_IDENTITIES (default 10000) caps the identities tracked (LRU; rule counters are
 * capped at 4x that); LIMITS_DEFAULT_COMPLETION_TOKENS (default 256) is the completion assumed when a
 * request sets no max_tokens; POD_NAMESPACE, POD_NAME, POD_SERVICE_ACCOUNT name the workload;
 * LIMITS_REDIS_URL (and the LIMITS_REDIS_* settings in store.ts) moves the rule counters to Redis, shared
 * by every pod using it. Anomaly baselines and cool-downs stay per pod.
 */
export function createLimits(store: PolicyStore<Policy>, env: Env, logger: Logger, registry: Registry, clock: Clock = systemClock): Limits {
  const maxIdentities = LIMITS_ENV.maxIdentities.read(env);
  const defaultCompletion = LIMITS_ENV.defaultCompletionTokens.read(env);
  const workload = workloadFromEnv(env);
  const log = logger.child({ component: 'limits' });

  let cfg: LimitsConfig;
  try {
    cfg = compileLimitsPolicy(store.current());
  } catch (err) {
    // Packs carry no limits sections, so a problem here comes from the policy file.
    if (err instanceof LimitsPolicyError) throw new ConfigError('POLICY_FILE', err.message);
    throw err;
  }
  const local = new Limiter(maxIdentities * 4, defaultCompletion);
  const shared = createSharedLimiter(env, local, defaultCompletion, logger, registry, clock);
  const limiter = shared?.limiter ?? local;
  limiter.setRules(cfg.rules);
  /** A shared admission only ever comes from the shared limiter, which also settles local ones. */
  const release = (adm: Admission | SharedAdmission, ex: Exchange, now: number): number => (shared ? shared.limiter.complete(adm, ex, now) : local.complete(adm as Admission, ex, now));
  const identities = new Lru<AnomalyState>(maxIdentities);
  let workloadState = newAnomalyState(clock());
  const incidents = new Incidents(cfg.anomalies.maxLogLinesPerMinute, `inc-${randomBytes(3).toString('hex')}`);
  const flights = new WeakMap<Exchange, Flight>();
  /** Reused for each request's alerts (hooks run one at a time), so the common no-alert case allocates nothing. */
  const scratch: Alert[] = [];

  const unsubscribe = store.subscribe((policy) => {
    try {
      cfg = compileLimitsPolicy(policy);
      limiter.setRules(cfg.rules);
      incidents.setLinesPerMinute(cfg.anomalies.maxLogLinesPerMinute);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'limits: reloaded policy rejected; keeping the previous limits');
    }
  });

  const m = limitsMetrics(registry, () => [identities.size, local.states.size], () => [identities.evictions, local.states.evictions]);
  const reporter = new AnomalyReporter(incidents, log, m);

  function flightOf(ex: Exchange): Flight {
    let f = flights.get(ex);
    if (f) return f;
    const id = resolveIdentity(ex, ex.direction === 'inbound' ? cfg.inboundIdentity : cfg.identity, workload);
    const now = clock();
    const state = identities.get(id.key) ?? identities.add(id.key, newAnomalyState(now));
    f = { state };
    flights.set(ex, f);
    ex.identity = id.key;
    const note: LimitsNote = { identity: id.key, identitySource: id.source, workload: workload.name };
    if (state.packUntil > now && state.pack) {
      note.escalatedPack = state.pack;
      note.escalatedUntil = state.packUntil;
    }
    ex.notes.limits = note;
    return f;
  }

  /** 429 while the identity is in an escalation cool-down. */
  function coolDown(ex: Exchange, f: Flight, now: number, justRaised = false): BlockVerdict | undefined {
    const s = f.state;
    if (s.blockedUntil <= now) return undefined;
    const ms = s.blockedUntil - now;
    const rule = s.blockedBy ?? 'anomaly';
    // The alert that starts a cool-down already left its finding.
    if (!justRaised) {
      ex.findings.push({ source: 'anomaly', ruleId: rule, action: 'block', severity: 'high', stage: 'request', reason: `identity is in a cool-down after ${rule} for ${Math.ceil(ms / 1000)}s more` });
      // Requests refused during the cool-down belong to the incident that started it.
      const incident = s.blockedBy ? s.incidents?.get(s.blockedBy) : undefined;
      if (incident) tagIncident(ex, incident.id, s.blockedBy!, 'high');
    }
    ex.notes.limits!.limitedBy = rule;
    m.limited.inc({ rule, kind: 'cooldown' });
    return {
      status: 429,
      type: 'rate_limit_exceeded',
      code: rule,
      message: `Temporarily blocked after anomaly ${rule}; retry after ${Math.ceil(ms / 1000)}s`,
      // A cool-down is longer than an SDK's retry budget: tell it not to retry blindly.
      headers: { 'retry-after': String(Math.ceil(ms / 1000)), 'retry-after-ms': String(ms), 'x-should-retry': 'false' },
    };
  }



  const identityHooks: ExchangeHooks = {
    name: 'limits-identity',
    onRequest(ex) {
      const f = flightOf(ex);
      return coolDown(ex, f, clock());
    },
  };

  const hooks: ExchangeHooks = {
    name: 'limits',
    onRequest(ex) {
      const now = clock();
      const f = flightOf(ex);
      const cool = coolDown(ex, f, now);
      if (cool) return cool;

      if (cfg.anomalies.enabled) {
        const last = ex.input.length > 0 ? ex.input[ex.input.length - 1].text : undefined;
        const chars = promptChars(ex);
        const alerts = scratch;
        alerts.length = 0;
        onRequestSignals(f.state, cfg.anomalies, now, { promptChars: chars, fingerprint: last ? promptFingerprint(last) : undefined }, alerts);
        const block = alerts.length > 0 && reporter.raise(ex, alerts, f.state, 'identity', ex.identity!, now, 'request', cfg.anomalies);
        alerts.length = 0;
        onRequestSignals(workloadState, cfg.anomalies, now, { promptChars: chars }, alerts);
        if (alerts.length > 0) reporter.raise(ex, alerts, workloadState, 'workload', workload.name, now, 'request', cfg.anomalies);
        if (block) return coolDown(ex, f, now, true);
      }

      const d = limiter.admit(ex, ex.identity!, now);
      return d instanceof Promise ? d.then((res) => admitted(ex, f, res)) : admitted(ex, f, d);
    },
    onComplete(ex) {
      const f = flights.get(ex);
      if (!f) {
        // Blocked before limits ran (e.g. by a guardrail): still counts for probing detection.
        if (cfg.anomalies.enabled) completeSignals(ex, flightOf(ex));
        flights.delete(ex);
        return;
      }
      flights.delete(ex);
      f.ended = true;
      const now = clock();
      if (f.admission) {
        const charged = release(f.admission, ex, now);
        const note = ex.notes.limits;
        if (note && f.admission.estimate > 0) note.tokens = { estimated: f.admission.estimate, charged };
      }
      if (cfg.anomalies.enabled) completeSignals(ex, f, now);
    },
  };

  function admitted(ex: Exchange, f: Flight, d: Decision<Admission | SharedAdmission>): BlockVerdict | undefined {
    for (const s of d.shadowDenials) {
      ex.findings.push({ source: 'limit', ruleId: s.rule.id, action: 'flag', severity: 'low', stage: 'request', reason: `shadow: rule ${s.rule.id} would refuse (${s.kind})` });
      m.shadow.inc({ rule: s.rule.id, kind: s.kind });
    }
    if (d.denied) return rateLimitedVerdict(ex, d.denied, d.headers, m, log);
    if (f.ended) {
      // The exchange ended while the shared store answered: give back what was just taken.
      if (d.admission) release(d.admission, ex, clock());
      return undefined;
    }
    f.admission = d.admission;
    for (const k in d.headers) ex.responseHeaders[k] = d.headers[k];
    return undefined;
  }

  function completeSignals(ex: Exchange, f: Flight, now = clock()): void {
    let hit = false;
    for (const x of ex.findings) {
      if (x.source === 'guardrail' && (x.action === 'block' || x.action === 'flag')) {
        hit = true;
        break;
      }
    }
    const status = ex.response?.status ?? 0;
    const upstreamError = ex.outcome === 'upstream_error' || ex.outcome === 'timeout' || (ex.upstreamMs !== undefined && status >= 500);
    const sig = {
      answered: ex.upstreamMs !== undefined && !upstreamError,
      completionTokens: completionTokens(ex),
      toolCalls: ex.toolCalls,
      guardrailHit: hit,
      upstreamError,
    };
    const alerts = scratch;
    alerts.length = 0;
    onCompleteSignals(f.state, cfg.anomalies, now, sig, alerts);
    if (alerts.length > 0) reporter.raise(ex, alerts, f.state, 'identity', ex.identity ?? 'anonymous', now, 'response', cfg.anomalies);
    alerts.length = 0;
    onCompleteSignals(workloadState, cfg.anomalies, now, sig, alerts);
    if (alerts.length > 0) reporter.raise(ex, alerts, workloadState, 'workload', workload.name, now, 'response', cfg.anomalies);
  }

  return {
    hooks,
    identityHooks,
    onIncident(listener) {
      reporter.onIncident(listener);
    },
    close() {
      unsubscribe();
      shared?.close();
      identities.clear();
      local.states.clear();
      workloadState = newAnomalyState(clock());
    },
  };
}





