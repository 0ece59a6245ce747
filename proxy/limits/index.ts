import { randomBytes } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
import { ConfigError, declare, type Env } from '../../common/env';
import type { ExchangeHooks } from '../hooks';
import type { Policy, PolicyStore } from '../policy/store';
import { SEVERITY_RANK, type BlockVerdict, type Exchange, type Finding, type Severity } from '../protocols/exchange';
import type { Logger } from '../../common/logger';
import { Alert, AnomalyState, newAnomalyState, onCompleteSignals, onRequestSignals } from './anomaly';
import { systemClock, type Clock } from './clock';
import { promptFingerprint } from './fingerprint';
import { resolveIdentity, workloadFromEnv, type IdentitySourceName } from './identity';
import { Incidents, type IncidentListener } from './incidents';
import { Limiter, type Admission, type Decision, type Denial } from './limiter';
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
  const incidentListeners: IncidentListener[] = [];
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

  const m = metrics(registry, () => [identities.size, local.states.size], () => [identities.evictions, local.states.evictions]);

  function flightOf(ex: Exchange): Flight {
    let f = flights.get(ex);
    if (f) return f;
    const id = resolveIdentity(ex, cfg.identity, workload);
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

  /** Records alerts: findings, metrics, incident-grouped warn lines, escalation. True when one starts a cool-down block at request time. */
  function raise(ex: Exchange, alerts: Alert[], state: AnomalyState, scope: 'identity' | 'workload', who: string, now: number, stage: 'request' | 'response'): boolean {
    let blockNow = false;
    const a = cfg.anomalies;
    for (const alert of alerts) {
      // One finding per rule per exchange: the identity's alert already covers this workload one.
      if (scope === 'workload' && ex.findings.some((f) => f.source === 'anomaly' && f.ruleId === alert.ruleId)) continue;
      const escalate = scope === 'identity' ? alert.escalate : undefined;
      const { incident, opened, log: writeLine } = incidents.record(state, alert.ruleId, now, a.incidentGapMs, a.logIntervalMs);
      m.alerts.inc({ rule: alert.ruleId, severity: alert.severity, scope });
      if (opened) m.incidents.inc({ rule: alert.ruleId, scope });
      if (escalate) {
        if (escalate.action === 'block') {
          state.blockedUntil = Math.max(state.blockedUntil, now + escalate.durationMs);
          state.blockedBy = alert.ruleId;
          blockNow = blockNow || stage === 'request';
        } else {
          state.pack = escalate.pack;
          state.packUntil = now + escalate.durationMs;
          const note = ex.notes.limits;
          if (note) {
            note.escalatedPack = escalate.pack;
            note.escalatedUntil = state.packUntil;
          }
        }
        m.escalations.inc({ rule: alert.ruleId, action: escalate.action });
      }
      const finding: Finding = {
        source: 'anomaly',
        ruleId: alert.ruleId,
        action: escalate?.action === 'block' ? 'block' : 'alert',
        severity: alert.severity,
        stage,
        reason: `${scope} ${who}: ${alert.explanation} [incident ${incident.id}, alert ${incident.count}]`,
        detector: alert.ruleId.replace(/^anomaly\./, ''),
      };
      ex.findings.push(finding);
      tagIncident(ex, incident.id, alert.ruleId, alert.severity);
      for (const listener of incidentListeners) {
        listener({
          id: incident.id,
          kind: alert.ruleId,
          severity: alert.severity,
          scope,
          subject: who,
          opened,
          count: incident.count,
          firstSeen: incident.firstSeen,
          lastSeen: incident.lastSeen,
          explanation: alert.explanation,
          model: ex.model,
          requestId: ex.id,
        });
      }
      if (writeLine) {
        const suppressedLines = incidents.suppressed;
        incidents.suppressed = 0;
        log.warn(
          {
            event: 'anomaly',
            rule: alert.ruleId,
            severity: alert.severity,
            scope,
            identity: who,
            metric: alert.metric,
            observed: alert.observed,
            baseline: round(alert.baseline),
            stddev: alert.stddev === undefined ? undefined : round(alert.stddev),
            incident: { id: incident.id, firstSeen: new Date(incident.firstSeen).toISOString(), lastSeen: new Date(incident.lastSeen).toISOString(), count: incident.count },
            escalation: escalate ? { action: escalate.action, pack: escalate.pack, untilMs: escalate.durationMs } : undefined,
            reqId: ex.id,
            suppressedLines: suppressedLines || undefined,
          },
          `anomaly ${alert.ruleId}: ${alert.explanation}`,
        );
      }
    }
    return blockNow;
  }

  function rateLimited(ex: Exchange, d: Denial, headers: Record<string, string>): BlockVerdict {
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
        const block = alerts.length > 0 && raise(ex, alerts, f.state, 'identity', ex.identity!, now, 'request');
        alerts.length = 0;
        onRequestSignals(workloadState, cfg.anomalies, now, { promptChars: chars }, alerts);
        if (alerts.length > 0) raise(ex, alerts, workloadState, 'workload', workload.name, now, 'request');
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
    if (d.denied) return rateLimited(ex, d.denied, d.headers);
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
    if (alerts.length > 0) raise(ex, alerts, f.state, 'identity', ex.identity ?? 'anonymous', now, 'response');
    alerts.length = 0;
    onCompleteSignals(workloadState, cfg.anomalies, now, sig, alerts);
    if (alerts.length > 0) raise(ex, alerts, workloadState, 'workload', workload.name, now, 'response');
  }

  return {
    hooks,
    identityHooks,
    onIncident(listener) {
      incidentListeners.push(listener);
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

/** The trace's tag names the exchange's incident (the most severe one when alerts of several rules fired). */
function tagIncident(ex: Exchange, id: string, kind: string, severity: Severity): void {
  const tags = (ex.traceTags ??= {});
  const current = tags['incident-severity'] as Severity | undefined;
  if (current !== undefined && SEVERITY_RANK[current] >= SEVERITY_RANK[severity]) return;
  tags.incident = id;
  tags['incident-kind'] = kind;
  tags['incident-severity'] = severity;
}

/** Longest Retry-After we let SDKs wait out on their own. */
const MAX_SDK_RETRY_WAIT_S = 60;

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function humanWindow(ms: number): string {
  if (ms % 3_600_000 === 0) return ms === 3_600_000 ? 'hour' : `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return ms === 60_000 ? 'minute' : `${ms / 60_000}m`;
  if (ms % 1000 === 0) return ms === 1000 ? 'second' : `${ms / 1000}s`;
  return `${ms}ms`;
}

function metrics(registry: Registry, sizes: () => [number, number], evictions: () => [number, number]) {
  let seen: [number, number] = [0, 0];
  return {
    limited: new Counter({ name: 'akto_proxy_rate_limited_total', help: 'Requests answered 429 by a limit rule or an anomaly cool-down.', labelNames: ['rule', 'kind'], registers: [registry] }),
    shadow: new Counter({ name: 'akto_proxy_rate_limit_shadow_total', help: 'Requests a shadow-mode limit rule would have refused.', labelNames: ['rule', 'kind'], registers: [registry] }),
    alerts: new Counter({ name: 'akto_proxy_anomaly_alerts_total', help: 'Anomaly detections.', labelNames: ['rule', 'severity', 'scope'], registers: [registry] }),
    incidents: new Counter({ name: 'akto_proxy_anomaly_incidents_total', help: 'Anomaly incidents opened (repeated alerts are grouped).', labelNames: ['rule', 'scope'], registers: [registry] }),
    escalations: new Counter({ name: 'akto_proxy_anomaly_escalations_total', help: 'Alerts escalated to a cool-down block or a stricter pack.', labelNames: ['rule', 'action'], registers: [registry] }),
    tracked: new Gauge({
      name: 'akto_proxy_limits_tracked',
      help: 'Entries held in the limits LRU tables (identities: anomaly baselines; counters: rule buckets).',
      labelNames: ['table'],
      registers: [registry],
      collect() {
        const [i, c] = sizes();
        this.set({ table: 'identities' }, i);
        this.set({ table: 'counters' }, c);
      },
    }),
    evicted: new Counter({
      name: 'akto_proxy_limits_evictions_total',
      help: 'Entries dropped from the limits LRU tables because they were full.',
      labelNames: ['table'],
      registers: [registry],
      collect() {
        const now = evictions();
        this.inc({ table: 'identities' }, now[0] - seen[0]);
        this.inc({ table: 'counters' }, now[1] - seen[1]);
        seen = now;
      },
    }),
  };
}
