import type { ApiKind, Direction, Severity } from '../protocols/exchange';
import type { Policy } from './store';

/**
 * A response over MAX_RESPONSE_SIZE: `scan` streams it through the channel filters in bounded memory, `block`
 * refuses it (502, not retried), `allow` passes it unchecked (recorded in the trace).
 */
export type OversizeAction = 'scan' | 'block' | 'allow';

/** The names of the built-in policy packs (POLICY_PACK, `extends`). */
export const PACK_NAMES = ['default', 'monitor', 'strict', 'off'] as const;
export type PackName = (typeof PACK_NAMES)[number];

export type DetectorName = 'pii' | 'secrets' | 'injection' | 'toxicity' | 'harmful' | 'regex' | 'keywords' | 'size';
/** Risk categories a rule can name instead of a detector. */
export const MODEL_CATEGORIES = ['prompt_injection', 'indirect_injection', 'jailbreak', 'toxicity', 'harmful_intent'] as const;
export type ModelCategory = (typeof MODEL_CATEGORIES)[number];
/** A model category, or pii.<ENTITY|*>, secrets.<ENTITY|*>. */
export type RiskCategory = ModelCategory | `pii.${string}` | `secrets.${string}`;
export type ModelUse = 'auto' | 'always' | 'never';
export type RuleStage = 'request' | 'response' | 'both';
export type RuleAction = 'block' | 'redact' | 'flag';
export type RuleMode = 'enforce' | 'monitor';
export type RedactionStyle = 'placeholder' | 'mask' | 'hash';

export interface RuleMatch {
  routes?: ApiKind[];
  /** Which listener took the request: the agent's calls out (egress) or end users' calls in (inbound). */
  directions?: Direction[];
  paths?: string[];
  methods?: string[];
  models?: string[];
  headers?: Record<string, string>;
  roles?: string[];
  /** Globs over the request's identity (set by limits from the identity policy). */
  identities?: string[];
}

export interface RegexPattern {
  id?: string;
  pattern: string;
  case_insensitive?: boolean;
}

/** Text a rule does not inspect (blanked before its scan), optionally only where `match` holds. */
export interface AllowEntry {
  phrases?: string[];
  patterns?: RegexPattern[];
  match?: RuleMatch;
}

/** One guardrail rule as written in a policy (snake_case, as in YAML). Exactly one of detector and category. */
export interface GuardrailRule {
  id: string;
  detector?: DetectorName;
  category?: RiskCategory;
  model?: ModelUse;
  allow?: AllowEntry[];
  action: RuleAction;
  description?: string;
  entities?: string[];
  stage?: RuleStage;
  threshold?: number;
  min_count?: number;
  match?: RuleMatch;
  mode?: RuleMode;
  on_error?: 'allow' | 'block';
  redaction?: RedactionStyle;
  severity?: Severity;
  block_status?: 400 | 403;
  message?: string;
  patterns?: RegexPattern[];
  keywords?: string[];
  max_chars?: number;
  max_tokens?: number;
}

export type RuleOverride = Partial<Omit<GuardrailRule, 'detector' | 'category'>> & { id: string };

export interface GuardrailsSection {
  mode?: RuleMode;
  rules?: GuardrailRule[];
  override?: RuleOverride[];
  remove?: string[];
  stream?: { max_holdback_chars?: number };
  on_oversize?: OversizeAction;
  on_unparsable?: 'allow' | 'block';
}

/** A policy after `extends` is resolved: `guardrails.rules` is the full list, no override/remove left. */
export interface ResolvedPolicy extends Policy {
  name: string;
  guardrails: { mode?: RuleMode; rules: GuardrailRule[]; stream?: { max_holdback_chars?: number }; on_oversize?: OversizeAction; on_unparsable?: 'allow' | 'block' };
}
