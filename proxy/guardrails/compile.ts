import type { Exchange, Severity } from '../protocols/exchange';
import { PolicyError } from '../policy/load';
import { MODEL_CATEGORIES, type AllowEntry, type OversizeAction, type GuardrailRule, type ModelCategory, type ModelUse, type RedactionStyle, type ResolvedPolicy, type RuleAction, type RuleMatch } from '../policy/types';
import { createKeywordDetector, createRegexDetector, type Detector } from './detectors';
import { globMatch } from '../protocols/glob';
import { headerValue } from '../http/headers';

const DEFAULT_MAX_HOLDBACK = 16384;
const DEFAULT_SEVERITY: Record<RuleAction, Severity> = { block: 'high', redact: 'medium', flag: 'low' };

/** A rule ready to run: its detector built, its defaults filled in, its conditions turned into a predicate. */
export interface CompiledRule {
  readonly id: string;
  readonly detectorId: string;
  /** Undefined for size rules (they measure, they do not scan). */
  readonly detector?: Detector;
  /**
   * Rules with the same key run ONE scan per segment and share its matches (same detector instance and threshold;
   * entities are the union of the group's).
   */
  readonly scanKey: string;
  readonly entities?: ReadonlySet<string>;
  readonly threshold?: number;
  readonly request: boolean;
  readonly response: boolean;
  /** What the rule does when it fires; monitor mode makes it 'flag' (`intended` keeps the configured action). */
  readonly action: RuleAction;
  readonly intended: RuleAction;
  readonly monitor: boolean;
  readonly onError: 'allow' | 'block';
  readonly redaction: RedactionStyle;
  readonly severity: Severity;
  readonly blockStatus: 400 | 403;
  readonly minCount: number;
  readonly message?: string;
  readonly roles?: ReadonlySet<string>;
  readonly maxChars?: number;
  readonly maxTokens?: number;
  /** The risk category the rule was written for (category rules). */
  readonly category?: string;
  /** For prompt_injection, indirect_injection, jailbreak, toxicity, harmful_intent: when the model tier scores the text. */
  readonly model?: { category: ModelCategory; use: ModelUse };
  /** Text this rule does not inspect, where each entry applies. */
  readonly allow?: readonly CompiledAllow[];
  appliesTo(ex: Exchange): boolean;
}

export interface CompiledAllow {
  appliesTo(ex: Exchange): boolean;
  /** Detectors whose matches (on normalized text, original offsets) are blanked. */
  readonly finders: readonly Detector[];
}

export interface CompiledPolicy {
  readonly name: string;
  readonly rules: readonly CompiledRule[];
  readonly maxHoldback: number;
  /** What to do with a response too large to buffer (policy guardrails.on_oversize). */
  readonly onOversize: OversizeAction;
  /** Some rule may consult the model tier. */
  readonly usesModel: boolean;
  /** A request body a known inference route cannot read: refused (block) or forwarded uninspected (allow). */
  readonly onUnparsable: 'allow' | 'block';
}

/** What a category rule scans with: prompt_injection → the injection detector's PROMPT_INJECTION, pii.EMAIL → pii's EMAIL, … */
const CATEGORY_DETECTORS: Record<ModelCategory, { detector: 'injection' | 'toxicity' | 'harmful'; entity: string }> = {
  prompt_injection: { detector: 'injection', entity: 'PROMPT_INJECTION' },
  jailbreak: { detector: 'injection', entity: 'JAILBREAK' },
  indirect_injection: { detector: 'injection', entity: 'INDIRECT_INJECTION' },
  toxicity: { detector: 'toxicity', entity: 'TOXICITY' },
  harmful_intent: { detector: 'harmful', entity: 'HARMFUL_INTENT' },
};

/** The category a finding of `detector` / `entity` belongs to (for logs, metrics and traces). */
export function categoryOf(detector: string, entity: string | undefined): string | undefined {
  for (const [category, d] of Object.entries(CATEGORY_DETECTORS)) if (d.detector === detector && d.entity === entity) return category;
  if ((detector === 'pii' || detector === 'secrets') && entity) return `${detector}.${entity}`;
  return undefined;
}

function isModelCategory(c: string): c is ModelCategory {
  return (MODEL_CATEGORIES as readonly string[]).includes(c);
}

/** detector and entities of a category rule; entities undefined = all of the detector's. */
function categoryTarget(category: string): { detector: string; entities?: string[] } {
  if (isModelCategory(category)) return { detector: CATEGORY_DETECTORS[category].detector, entities: [CATEGORY_DETECTORS[category].entity] };
  const [detector, entity] = category.split('.');
  return { detector, entities: entity === '*' ? undefined : [entity] };
}

function matcher(match: RuleMatch | undefined): (ex: Exchange) => boolean {
  if (!match) return () => true;
  const identities = match.identities;
  const methods = match.methods?.map((m) => m.toUpperCase());
  const headers = match.headers ? Object.entries(match.headers).map(([k, v]) => [k.toLowerCase(), v] as const) : undefined;
  return (ex) => {
    if (match.routes && !match.routes.includes(ex.api)) return false;
    if (match.directions && !match.directions.includes(ex.direction)) return false;
    if (methods && !methods.includes(ex.method.toUpperCase())) return false;
    if (match.paths) {
      const q = ex.path.indexOf('?');
      const path = q < 0 ? ex.path : ex.path.slice(0, q);
      if (!match.paths.some((g) => globMatch(g, path))) return false;
    }
    if (match.models) {
      const model = ex.model;
      if (model === undefined || !match.models.some((g) => globMatch(g, model))) return false;
    }
    if (headers) {
      for (const [name, glob] of headers) {
        const value = headerValue(ex.requestHeaders, name, 'joined');
        if (value === undefined || !globMatch(glob, value)) return false;
      }
    }
    if (identities) {
      const id = ex.identity;
      if (id === undefined || !identities.some((g) => globMatch(g, id))) return false;
    }
    return true;
  };
}

function compileAllow(entries: readonly AllowEntry[], where: string, problems: string[]): CompiledAllow[] {
  return entries.map((e, i) => {
    const finders: Detector[] = [];
    try {
      if (e.phrases) finders.push(createKeywordDetector([{ id: 'ALLOWED', words: e.phrases }], 'allow'));
      if (e.patterns) finders.push(createRegexDetector(e.patterns.map((p, k) => ({ id: `ALLOWED_${k}`, pattern: p.pattern, flags: p.case_insensitive ? 'i' : undefined })), 'allow'));
    } catch (err) {
      problems.push(`${where}/allow/${i}: ${(err as Error).message}`);
    }
    return { appliesTo: matcher(e.match), finders };
  });
}

/** RULE-ID → RULE_ID, the entity name of a custom rule's matches when its patterns carry no id. */
function entityOf(ruleId: string): string {
  const e = ruleId.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
  return /^[A-Z]/.test(e) ? e : `R_${e}`;
}

function buildDetector(rule: GuardrailRule, name: string, builtins: Readonly<Record<string, Detector>>, problems: string[], where: string): Detector | undefined {
  try {
    switch (name) {
      case 'regex':
        return createRegexDetector(
          (rule.patterns ?? []).map((p) => ({ id: p.id ?? entityOf(rule.id), pattern: p.pattern, flags: p.case_insensitive ? 'i' : undefined })),
          'regex',
        );
      case 'keywords':
        return createKeywordDetector([{ id: entityOf(rule.id), words: rule.keywords ?? [] }], 'keywords');
      case 'size':
        return undefined;
      default: {
        const d = builtins[name];
        if (!d) problems.push(`${where}/${rule.category ? 'category' : 'detector'}: no built-in detector "${name}"`);
        return d;
      }
    }
  } catch (err) {
    problems.push(`${where}/${name === 'regex' ? 'patterns' : 'keywords'}: ${(err as Error).message}`);
    return undefined;
  }
}

/**
 * Build the runnable form of a resolved policy. Every problem the schema cannot see (unknown entity for a
 * detector, a regex RE2 rejects, redact on a size rule) is a PolicyError naming the rule.
 */
export function compilePolicy(policy: ResolvedPolicy, builtins: Readonly<Record<string, Detector>>, source = policy.name): CompiledPolicy {
  const problems: string[] = [];
  const policyMonitor = policy.guardrails.mode === 'monitor';
  const rules = policy.guardrails.rules.map((rule): CompiledRule | undefined => {
    const where = `/guardrails/rules[id=${rule.id}]`;
    const target = rule.category ? categoryTarget(rule.category) : { detector: rule.detector as string, entities: rule.entities };
    const detectorId = target.detector;
    const detector = buildDetector(rule, detectorId, builtins, problems, where);
    if (detectorId === 'size' && rule.action === 'redact') problems.push(`${where}/action: a size rule can block or flag, not redact`);
    const entities = rule.category && rule.entities ? rule.entities.filter((e) => !target.entities || target.entities.includes(e)) : target.entities;
    if (detector && entities) {
      for (const e of entities) {
        if (!detector.entities.includes(e)) {
          problems.push(`${where}/${rule.category ? 'category' : 'entities'}: "${e}" is not an entity of detector ${detectorId} (${detector.entities.join(', ')})`);
        }
      }
    }
    if (detectorId !== 'size' && !detector) return undefined;
    const monitor = policyMonitor || rule.mode === 'monitor';
    const stage = rule.stage ?? 'both';
    const builtin = detectorId === 'pii' || detectorId === 'secrets' || detectorId === 'injection' || detectorId === 'toxicity' || detectorId === 'harmful';
    const model = rule.category && isModelCategory(rule.category) && rule.model !== 'never' ? { category: rule.category, use: rule.model ?? 'auto' } : undefined;
    const allow = rule.allow ? compileAllow(rule.allow, where, problems) : undefined;
    return {
      id: rule.id,
      detectorId,
      detector,
      // Rules that blank allowed text see a different text: they scan on their own.
      scanKey: builtin && !allow ? `${detectorId}@${rule.threshold ?? ''}` : `rule:${rule.id}`,
      // "Every entity" leaves out the opt-in ones, spelled out so a rule sharing the scan can still add them.
      entities: entities ? new Set(entities) : detector?.optIn ? new Set(detector.entities.filter((e) => !detector.optIn!.includes(e))) : undefined,
      threshold: rule.threshold,
      request: stage !== 'response',
      response: stage !== 'request',
      action: monitor ? 'flag' : rule.action,
      intended: rule.action,
      monitor,
      onError: rule.on_error ?? 'allow',
      redaction: rule.redaction ?? 'placeholder',
      severity: rule.severity ?? DEFAULT_SEVERITY[rule.action],
      blockStatus: rule.block_status ?? 400,
      minCount: rule.min_count ?? 1,
      message: rule.message,
      roles: rule.match?.roles ? new Set(rule.match.roles) : undefined,
      maxChars: rule.max_chars,
      maxTokens: rule.max_tokens,
      ...(rule.category ? { category: rule.category } : {}),
      ...(model ? { model } : {}),
      ...(allow ? { allow } : {}),
      appliesTo: matcher(rule.match),
    };
  });
  if (problems.length > 0) throw new PolicyError(source, problems);
  const compiled = rules.filter((r): r is CompiledRule => r !== undefined);
  // Nothing would inspect the request anyway (monitor mode, no request rules): an unreadable body passes by default.
  const inspectsRequests = !policyMonitor && compiled.some((r) => r.request && !r.monitor);
  return {
    name: policy.name,
    rules: compiled,
    maxHoldback: policy.guardrails.stream?.max_holdback_chars ?? DEFAULT_MAX_HOLDBACK,
    onOversize: policy.guardrails.on_oversize ?? 'scan',
    usesModel: compiled.some((r) => r.model !== undefined),
    onUnparsable: policy.guardrails.on_unparsable ?? (inspectsRequests ? 'block' : 'allow'),
  };
}
