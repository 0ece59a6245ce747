import type { ApiKind, Severity } from '../protocols/exchange';
import { PolicyError, type PolicyCheck } from '../policy/load';
import type { Policy } from '../policy/store';

/**
 * The `identity`, `limits` and `anomalies` sections of the policy as written (snake_case, see
 * policy.schema.json), and their compiled form with defaults filled in and durations in ms.
 * The schema validates the document; compile() only normalizes and guards against the few
 * things a schema cannot say.
 */

export type Duration = number | string;

export type IdentitySourceSpec =
  | { from: 'header'; name: string }
  | { from: 'body'; field?: string }
  | { from: 'jwt'; claim?: string }
  | { from: 'api_key' | 'client_address' | 'workload' };

export interface IdentitySection {
  sources?: IdentitySourceSpec[];
  max_length?: number;
}

export interface WindowSpec {
  limit: number;
  window: Duration;
}

export type Scope = 'identity' | 'model' | 'identity_model' | 'global';

export interface LimitRuleSpec {
  id: string;
  description?: string;
  match?: { paths?: string[]; apis?: ApiKind[]; models?: string[] };
  per?: Scope;
  requests?: WindowSpec;
  tokens?: WindowSpec;
  concurrent?: number;
  mode?: 'enforce' | 'shadow';
  on_error?: StoreErrorAction;
}

/** What a rule does when the shared store (LIMITS_REDIS_URL) cannot answer in time. */
export type StoreErrorAction = 'local' | 'allow' | 'block';

export interface EscalationSpec {
  action: 'block' | 'pack';
  duration: Duration;
  pack?: string;
}

interface DetectorSpec {
  enabled?: boolean;
  severity?: Severity;
  escalate?: EscalationSpec;
}

export type SpikeMetric = 'request_rate' | 'prompt_size' | 'tool_calls';

export interface AnomaliesSection {
  enabled?: boolean;
  alpha?: number;
  warmup?: number;
  incident_gap?: Duration;
  log_interval?: Duration;
  max_log_lines_per_minute?: number;
  spike?: DetectorSpec & { z?: number; min_stddev_ratio?: number; rate_interval?: Duration; metrics?: SpikeMetric[] };
  loop?: DetectorSpec & { repeats?: number; window?: Duration };
  probing?: DetectorSpec & { hits?: number; window?: Duration };
  output_jump?: DetectorSpec & { ratio?: number; z?: number; min_tokens?: number };
  error_burst?: DetectorSpec & { errors?: number; rate?: number; window?: Duration };
}

// ---- compiled form ----

export type IdentitySource =
  | { from: 'header'; name: string }
  | { from: 'body'; field: string }
  | { from: 'jwt'; claim: string }
  | { from: 'api_key' | 'client_address' | 'workload' };

export interface IdentityConfig {
  sources: IdentitySource[];
  maxLength: number;
}

export interface WindowLimit {
  limit: number;
  windowMs: number;
}

export interface LimitRule {
  id: string;
  paths?: ReadonlySet<string>;
  apis?: ReadonlySet<string>;
  models?: ReadonlySet<string>;
  per: Scope;
  requests?: WindowLimit;
  tokens?: WindowLimit;
  concurrent?: number;
  shadow: boolean;
  onError: StoreErrorAction;
}

export interface Escalation {
  action: 'block' | 'pack';
  durationMs: number;
  pack?: string;
}

export interface Detector {
  enabled: boolean;
  severity: Severity;
  escalate?: Escalation;
}

export interface AnomalyConfig {
  enabled: boolean;
  alpha: number;
  warmup: number;
  incidentGapMs: number;
  logIntervalMs: number;
  maxLogLinesPerMinute: number;
  spike: Detector & { z: number; minStddevRatio: number; rateIntervalMs: number; metrics: ReadonlySet<SpikeMetric> };
  loop: Detector & { repeats: number; windowMs: number };
  probing: Detector & { hits: number; windowMs: number };
  outputJump: Detector & { ratio: number; z: number; minTokens: number };
  errorBurst: Detector & { errors: number; rate: number; windowMs: number };
}

export interface LimitsConfig {
  identity: IdentityConfig;
  /** Who the end user is on the inbound listener (the policy's inbound.identity). */
  inboundIdentity: IdentityConfig;
  rules: LimitRule[];
  anomalies: AnomalyConfig;
}

/** A policy value compile() cannot use; `path` says where (e.g. "limits[2].tokens.window"). */
export class LimitsPolicyError extends Error {
  constructor(readonly path: string, readonly problem: string) {
    super(`policy ${path}: ${problem}`);
    this.name = 'LimitsPolicyError';
  }
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "500ms" | "30s" | "5m" | "1h" | integer seconds → milliseconds. */
export function parseDuration(value: Duration, path: string): number {
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value > 0) return value * 1000;
  } else {
    const m = /^([1-9][0-9]*)(ms|s|m|h)$/.exec(value);
    if (m) return Number(m[1]) * UNIT_MS[m[2]];
  }
  throw new LimitsPolicyError(path, `"${String(value)}" is not a duration (use 30s, 5m, 1h, 500ms or whole seconds)`);
}

export const DEFAULT_IDENTITY_SOURCES: readonly IdentitySource[] = [{ from: 'api_key' }, { from: 'client_address' }];
/** The end user on the inbound listener: a bearer JWT's sub (unverified: a gateway in front verifies), the key hash, the address. */
export const DEFAULT_INBOUND_IDENTITY_SOURCES: readonly IdentitySource[] = [{ from: 'jwt', claim: 'sub' }, { from: 'api_key' }, { from: 'client_address' }];

function compileIdentity(spec: IdentitySection | undefined, where: string, defaults: readonly IdentitySource[]): IdentityConfig {
  const sources: IdentitySource[] = [];
  (spec?.sources ?? defaults).forEach((s, i) => {
    if (s.from === 'header') {
      if (!s.name) throw new LimitsPolicyError(`${where}.sources[${i}].name`, 'is required for from: header');
      sources.push({ from: 'header', name: s.name.toLowerCase() });
    } else if (s.from === 'body') {
      sources.push({ from: 'body', field: s.field ?? 'user' });
    } else if (s.from === 'jwt') {
      sources.push({ from: 'jwt', claim: s.claim ?? 'sub' });
    } else if (s.from === 'api_key' || s.from === 'client_address' || s.from === 'workload') {
      sources.push({ from: s.from });
    } else {
      throw new LimitsPolicyError(`${where}.sources[${i}].from`, `unknown source "${String((s as { from: unknown }).from)}"`);
    }
  });
  return { sources, maxLength: spec?.max_length ?? 128 };
}

function compileWindow(w: WindowSpec | undefined, path: string): WindowLimit | undefined {
  if (w === undefined) return undefined;
  if (!Number.isInteger(w.limit) || w.limit < 1) throw new LimitsPolicyError(`${path}.limit`, 'must be a positive integer');
  return { limit: w.limit, windowMs: parseDuration(w.window, `${path}.window`) };
}

function compileRules(specs: LimitRuleSpec[] | undefined): LimitRule[] {
  const seen = new Set<string>();
  return (specs ?? []).map((r, i) => {
    const at = `limits[${i}]`;
    if (typeof r.id !== 'string' || r.id === '') throw new LimitsPolicyError(`${at}.id`, 'is required');
    if (seen.has(r.id)) throw new LimitsPolicyError(`${at}.id`, `"${r.id}" is used by two rules`);
    seen.add(r.id);
    const rule: LimitRule = {
      id: r.id,
      paths: r.match?.paths ? new Set(r.match.paths) : undefined,
      apis: r.match?.apis ? new Set(r.match.apis) : undefined,
      models: r.match?.models ? new Set(r.match.models) : undefined,
      per: r.per ?? 'identity',
      requests: compileWindow(r.requests, `${at}.requests`),
      tokens: compileWindow(r.tokens, `${at}.tokens`),
      concurrent: r.concurrent,
      shadow: r.mode === 'shadow',
      onError: r.on_error ?? 'local',
    };
    if (!rule.requests && !rule.tokens && rule.concurrent === undefined) {
      throw new LimitsPolicyError(at, 'needs at least one of requests, tokens, concurrent');
    }
    return rule;
  });
}

function compileEscalation(e: EscalationSpec | undefined, path: string): Escalation | undefined {
  if (e === undefined) return undefined;
  if (e.action === 'pack' && !e.pack) throw new LimitsPolicyError(`${path}.pack`, 'is required for action: pack');
  return { action: e.action, durationMs: parseDuration(e.duration, `${path}.duration`), pack: e.pack };
}

function detector(spec: DetectorSpec | undefined, severity: Severity, path: string): Detector {
  return { enabled: spec?.enabled ?? true, severity: spec?.severity ?? severity, escalate: compileEscalation(spec?.escalate, `${path}.escalate`) };
}

function compileAnomalies(a: AnomaliesSection | undefined): AnomalyConfig {
  const p = 'anomalies';
  return {
    enabled: a?.enabled ?? true,
    alpha: a?.alpha ?? 0.05,
    warmup: a?.warmup ?? 20,
    incidentGapMs: parseDuration(a?.incident_gap ?? '10m', `${p}.incident_gap`),
    logIntervalMs: parseDuration(a?.log_interval ?? '1m', `${p}.log_interval`),
    maxLogLinesPerMinute: a?.max_log_lines_per_minute ?? 30,
    spike: {
      ...detector(a?.spike, 'medium', `${p}.spike`),
      z: a?.spike?.z ?? 5,
      minStddevRatio: a?.spike?.min_stddev_ratio ?? 0.25,
      rateIntervalMs: parseDuration(a?.spike?.rate_interval ?? '10s', `${p}.spike.rate_interval`),
      metrics: new Set(a?.spike?.metrics ?? ['request_rate', 'prompt_size', 'tool_calls']),
    },
    loop: {
      ...detector(a?.loop, 'high', `${p}.loop`),
      repeats: a?.loop?.repeats ?? 5,
      windowMs: parseDuration(a?.loop?.window ?? '2m', `${p}.loop.window`),
    },
    probing: {
      ...detector(a?.probing, 'high', `${p}.probing`),
      hits: a?.probing?.hits ?? 3,
      windowMs: parseDuration(a?.probing?.window ?? '5m', `${p}.probing.window`),
    },
    outputJump: {
      ...detector(a?.output_jump, 'high', `${p}.output_jump`),
      ratio: a?.output_jump?.ratio ?? 4,
      z: a?.output_jump?.z ?? 4,
      minTokens: a?.output_jump?.min_tokens ?? 200,
    },
    errorBurst: {
      ...detector(a?.error_burst, 'medium', `${p}.error_burst`),
      errors: a?.error_burst?.errors ?? 5,
      rate: a?.error_burst?.rate ?? 0.25,
      windowMs: parseDuration(a?.error_burst?.window ?? '1m', `${p}.error_burst.window`),
    },
  };
}

/** The limits view of a (schema-validated) policy document. Throws LimitsPolicyError. */
export function compileLimitsPolicy(policy: Policy): LimitsConfig {
  return {
    identity: compileIdentity(policy.identity as IdentitySection | undefined, 'identity', DEFAULT_IDENTITY_SOURCES),
    inboundIdentity: compileIdentity((policy.inbound as { identity?: IdentitySection } | undefined)?.identity, 'inbound.identity', DEFAULT_INBOUND_IDENTITY_SOURCES),
    rules: compileRules(policy.limits as LimitRuleSpec[] | undefined),
    anomalies: compileAnomalies(policy.anomalies as AnomaliesSection | undefined),
  };
}

/**
 * A PolicyCheck for openPolicyStore: limits problems the schema cannot express (duplicate rule ids)
 * fail the load, or the reload, like schema errors.
 */
export const checkLimitsPolicy: PolicyCheck = (policy, source) => {
  try {
    compileLimitsPolicy(policy);
  } catch (err) {
    if (err instanceof LimitsPolicyError) throw new PolicyError(source, [`${err.path}: ${err.problem}`]);
    throw err;
  }
};
