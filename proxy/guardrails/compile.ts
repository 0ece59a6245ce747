import type { IncomingHttpHeaders } from 'node:http';
import type { Exchange, Severity } from '../protocols/exchange';
import { PolicyError } from '../policy/load';
import type { GuardrailRule, RedactionStyle, ResolvedPolicy, RuleAction, RuleMatch } from '../policy/types';
import { createKeywordDetector, createRegexDetector, type Detector } from './detectors';
import { globMatch } from './glob';

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
  appliesTo(ex: Exchange): boolean;
}

export interface CompiledPolicy {
  readonly name: string;
  readonly rules: readonly CompiledRule[];
  readonly maxHoldback: number;
  /** A request body a known inference route cannot read: refused (block) or forwarded uninspected (allow). */
  readonly onUnparsable: 'allow' | 'block';
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function matcher(match: RuleMatch | undefined): (ex: Exchange) => boolean {
  if (!match) return () => true;
  const methods = match.methods?.map((m) => m.toUpperCase());
  const headers = match.headers ? Object.entries(match.headers).map(([k, v]) => [k.toLowerCase(), v] as const) : undefined;
  return (ex) => {
    if (match.routes && !match.routes.includes(ex.api)) return false;
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
        const value = headerValue(ex.requestHeaders, name);
        if (value === undefined || !globMatch(glob, value)) return false;
      }
    }
    return true;
  };
}

/** RULE-ID → RULE_ID, the entity name of a custom rule's matches when its patterns carry no id. */
function entityOf(ruleId: string): string {
  const e = ruleId.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
  return /^[A-Z]/.test(e) ? e : `R_${e}`;
}

function buildDetector(rule: GuardrailRule, builtins: Readonly<Record<string, Detector>>, problems: string[], where: string): Detector | undefined {
  try {
    switch (rule.detector) {
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
        const d = builtins[rule.detector];
        if (!d) problems.push(`${where}/detector: no built-in detector "${rule.detector}"`);
        return d;
      }
    }
  } catch (err) {
    problems.push(`${where}/${rule.detector === 'regex' ? 'patterns' : 'keywords'}: ${(err as Error).message}`);
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
    const detector = buildDetector(rule, builtins, problems, where);
    if (rule.detector === 'size' && rule.action === 'redact') problems.push(`${where}/action: a size rule can block or flag, not redact`);
    if (detector && rule.entities) {
      for (const e of rule.entities) {
        if (!detector.entities.includes(e)) {
          problems.push(`${where}/entities: "${e}" is not an entity of detector ${rule.detector} (${detector.entities.join(', ')})`);
        }
      }
    }
    if (rule.detector !== 'size' && !detector) return undefined;
    const monitor = policyMonitor || rule.mode === 'monitor';
    const stage = rule.stage ?? 'both';
    const builtin = rule.detector === 'pii' || rule.detector === 'secrets' || rule.detector === 'injection';
    return {
      id: rule.id,
      detectorId: rule.detector,
      detector,
      scanKey: builtin ? `${rule.detector}@${rule.threshold ?? ''}` : `rule:${rule.id}`,
      entities: rule.entities ? new Set(rule.entities) : undefined,
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
    onUnparsable: policy.guardrails.on_unparsable ?? (inspectsRequests ? 'block' : 'allow'),
  };
}
