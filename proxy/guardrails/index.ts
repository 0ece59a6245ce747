import { Counter, Histogram, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { declare, type Env } from '../../common/env';
import type { ExchangeHooks } from '../hooks';
import type { BlockVerdict, Exchange, Finding, Stage } from '../protocols/exchange';
import { isInferenceRoute } from '../protocols/request';
import { PACKS } from '../policy/packs';
import { isPackName, type PolicyCheck } from '../policy/load';
import type { OpenedPolicyStore } from '../policy/open';
import type { ResolvedPolicy } from '../policy/types';
import { compilePolicy, type CompiledPolicy } from './compile';
import { emptyStage, type GuardrailDecision, type StageRecord } from './decision';
import { builtinDetectors } from './detectors';
import { evaluateStage, modelCandidates, rulesFor, type ModelOutcome, type StageOutcome } from './engine';
import { createModelTier, type ModelTier } from './model-tier';
import { createHoldbackInspector } from './holdback';
import { hashKeyFrom, RedactionContext } from './redact';

export type { GuardrailDecision, StageRecord, HitRecord, RuleRecord } from './decision';

export interface Guardrails {
  hooks: ExchangeHooks;
  /** The model tier (classifier), for /readyz detail. */
  modelTier: ModelTier;
  close(): void;
}

interface GuardrailMetrics {
  hits: Counter<'rule' | 'action' | 'stage'>;
  categories: Counter<'category' | 'tier' | 'action' | 'stage'>;
  notEvaluated: Counter<'rule' | 'stage'>;
  seconds: Histogram<'stage'>;
}

function metrics(registry: Registry): GuardrailMetrics {
  return {
    hits: new Counter({
      name: 'guardrail_rule_hits_total',
      help: 'Guardrail rules that fired, by rule id, action taken and stage.',
      labelNames: ['rule', 'action', 'stage'],
      registers: [registry],
    }),
    categories: new Counter({
      name: 'guardrail_category_hits_total',
      help: 'Findings by risk category, the tier that decided (heuristic or model), action and stage.',
      labelNames: ['category', 'tier', 'action', 'stage'],
      registers: [registry],
    }),
    notEvaluated: new Counter({
      name: 'guardrail_rule_not_evaluated_total',
      help: 'Guardrail rules that could not run (detector error); on_error decided.',
      labelNames: ['rule', 'stage'],
      registers: [registry],
    }),
    seconds: new Histogram({
      name: 'guardrail_evaluation_seconds',
      help: 'Time spent in guardrails per request or response (streams: summed over the stream).',
      labelNames: ['stage'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
      registers: [registry],
    }),
  };
}

export const GUARDRAILS_ENV = {
  hashKey: declare.string('GUARDRAILS_HASH_KEY', 'key of the HMAC behind `redaction: hash` (from a Secret): the same tag for the same value across restarts and replicas', 'random per process'),
};

let builtinsOnce: ReturnType<typeof builtinDetectors> | undefined;
const builtins = (): ReturnType<typeof builtinDetectors> => (builtinsOnce ??= builtinDetectors());
/** Compiled form of each policy the store accepted, kept for the engine. */
const compiled = new WeakMap<ResolvedPolicy, CompiledPolicy>();

/**
 * The guardrails section's check for the policy store: compiling is part of validation, so a policy whose regex
 * RE2 rejects never replaces a working one. The store runs it with the other sections' checks (limits) in one
 * pass, so a reload is all or nothing.
 */
export const checkGuardrailsPolicy: PolicyCheck = (policy, source) => {
  compiled.set(policy, compilePolicy(policy, builtins(), source));
};

/**
 * Guardrails as proxy hooks over the policy store app.ts opened (with checkGuardrailsPolicy among its checks):
 * the decision engine on requests and complete responses, the holdback filter on streams. Reads
 * GUARDRAILS_HASH_KEY (key of `redaction: hash`; random per process when unset). The store's owner closes it.
 */
export async function createGuardrails(opened: OpenedPolicyStore, env: Env, logger: Logger, registry: Registry): Promise<Guardrails> {
  const packs = new Map(Object.entries(PACKS).map(([name, p]) => [name, compilePolicy(p, builtins(), `pack:${name}`)]));
  const hashKey = hashKeyFrom(GUARDRAILS_ENV.hashKey.read(env));
  const modelTier = createModelTier(env, logger, registry);
  const m = metrics(registry);
  const contexts = new WeakMap<Exchange, RedactionContext>();
  const log = logger.child({ component: 'guardrails' });
  log.info({ policy: opened.store.current().name, source: opened.source, rules: opened.store.current().guardrails.rules.length }, 'guardrail policy loaded');

  // One policy per exchange: a reload between the request and its response does not mix two policies.
  const pinned = new WeakMap<Exchange, CompiledPolicy>();
  const policyFor = (ex: Exchange): CompiledPolicy => {
    let c = pinned.get(ex);
    if (c) return c;
    // Limits (registered first) names a stricter pack while this identity is under escalation.
    const pack = ex.notes.limits?.escalatedPack;
    if (pack && isPackName(pack)) c = packs.get(pack)!;
    else {
      const current = opened.store.current();
      c = compiled.get(current);
      if (!c) {
        c = compilePolicy(current, builtins());
        compiled.set(current, c);
      }
    }
    pinned.set(ex, c);
    return c;
  };
  const ctxFor = (ex: Exchange): RedactionContext => {
    let ctx = contexts.get(ex);
    if (!ctx) {
      ctx = new RedactionContext(hashKey);
      contexts.set(ex, ctx);
    }
    return ctx;
  };
  const decisionOf = (ex: Exchange, policy: CompiledPolicy): GuardrailDecision => {
    let d = ex.notes.guardrails;
    if (!d) {
      d = { policy: policy.name };
      ex.notes.guardrails = d;
    }
    return d;
  };
  const account = (stage: Stage, record: StageRecord, findings: Finding[]): void => {
    for (const f of findings) {
      if (f.reason.startsWith('not evaluated')) m.notEvaluated.inc({ rule: f.ruleId, stage });
      else {
        m.hits.inc({ rule: f.ruleId, action: f.action, stage });
        if (f.category) m.categories.inc({ category: f.category, tier: f.tier ?? 'heuristic', action: f.action, stage });
      }
    }
    if (!record.streamed) m.seconds.observe({ stage }, record.ms / 1000);
  };

  /** A known inference route whose body could not be read: refused unless the policy allows it (fail closed). */
  const unparsable = (ex: Exchange, policy: CompiledPolicy): BlockVerdict | undefined => {
    if (ex.parseError === undefined || !isInferenceRoute(ex.api)) return undefined;
    decisionOf(ex, policy).unparsed = { reason: ex.parseError, action: policy.onUnparsable };
    if (policy.onUnparsable === 'allow') return undefined;
    const finding: Finding = {
      source: 'guardrail',
      ruleId: 'on_unparsable',
      action: 'block',
      severity: 'medium',
      stage: 'request',
      reason: `request body could not be read (${ex.parseError}); on_unparsable block`,
    };
    ex.findings.push(finding);
    account('request', emptyStage(), [finding]);
    log.warn({ id: ex.id, direction: ex.direction, stage: 'request', rule: 'on_unparsable', path: ex.path }, 'guardrail refused an unreadable body');
    return {
      status: 400,
      type: 'invalid_request_error',
      code: 'unparsable_body',
      message: `Request refused: the body could not be read as the upstream would read it (${ex.parseError})`,
    };
  };

  const settle = (ex: Exchange, stage: Stage, policy: CompiledPolicy, out: StageOutcome): BlockVerdict | void => {
    if (out.record.rules.length === 0) return;
    decisionOf(ex, policy)[stage] = out.record;
    ex.findings.push(...out.findings);
    account(stage, out.record, out.findings);
    if (out.verdict) log.warn({ id: ex.id, direction: ex.direction, stage, rule: out.verdict.code, path: ex.path }, 'guardrail blocked');
    return out.verdict;
  };

  /**
   * The heuristic tier decides synchronously. Only when a rule asks for the model tier (model: always, or a
   * grey-zone heuristic score) and a classifier is configured does the hook return a promise; while the
   * classifier is down the rules that asked are not_evaluated at once and their on_error decides.
   */
  const run = (ex: Exchange, stage: Stage): BlockVerdict | void | Promise<BlockVerdict | void> => {
    const policy = policyFor(ex);
    if (stage === 'request') {
      const refused = unparsable(ex, policy);
      if (refused) return refused;
    }
    const ctx = ctxFor(ex);
    if (modelTier.mode === 'off' || !policy.usesModel) return settle(ex, stage, policy, evaluateStage(policy, ex, stage, ctx));
    const wanted = modelCandidates(policy, ex, stage);
    if (wanted.length === 0) return settle(ex, stage, policy, evaluateStage(policy, ex, stage, ctx));
    const asked = new Set(wanted.map((w) => w.segment));
    const finish = (model: ModelOutcome): BlockVerdict | void => settle(ex, stage, policy, evaluateStage(policy, ex, stage, ctx, model));
    if (modelTier.state() !== 'ready') return finish({ scores: new Map(), asked, error: `model tier ${modelTier.state()}` });
    return modelTier.classify(wanted).then(
      (scores) => finish({ scores: new Map(wanted.map((w, i) => [w.segment, scores[i]])), asked }),
      (err: Error) => finish({ scores: new Map(), asked, error: err.message }),
    );
  };

  const hooks: ExchangeHooks = {
    name: 'guardrails',
    onRequest: (ex) => run(ex, 'request'),
    onResponse: (ex) => run(ex, 'response'),
    openStream(ex) {
      const policy = policyFor(ex);
      const counted = new Set<string>();
      let current: Finding[] = [];
      const opened = createHoldbackInspector(policy, ex, ctxFor(ex), (findings) => {
        // The stream's findings replace the previous list: counts grow as matches are released.
        const stale = new Set(current);
        ex.findings = ex.findings.filter((f) => !stale.has(f)).concat(findings);
        current = findings;
        for (const f of findings) {
          const key = `${f.ruleId}\u0000${f.entity ?? ''}\u0000${f.action}`;
          if (counted.has(key)) continue;
          counted.add(key);
          account('response', opened!.record, [f]);
          if (f.action === 'block') log.warn({ id: ex.id, direction: ex.direction, stage: 'response', rule: f.ruleId, path: ex.path }, 'guardrail cut a stream');
        }
      });
      if (!opened) return undefined;
      decisionOf(ex, policy).response = opened.record;
      return opened.inspector;
    },
    responseInspection(ex) {
      const policy = policyFor(ex);
      return rulesFor(policy, ex, 'response').length > 0 ? { onOversize: policy.onOversize } : undefined;
    },
    onComplete(ex) {
      const record = ex.notes.guardrails?.response;
      if (record?.streamed) m.seconds.observe({ stage: 'response' }, record.ms / 1000);
    },
  };
  return {
    hooks,
    modelTier,
    close() {
      modelTier.close();
    },
  };
}
