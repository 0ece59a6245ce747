import type { ApiKind, Severity } from '../protocols/exchange';
import type { Policy } from './store';

/** The names of the built-in policy packs (POLICY_PACK, `extends`). */
export const PACK_NAMES = ['default', 'monitor', 'strict', 'off'] as const;
export type PackName = (typeof PACK_NAMES)[number];

export type DetectorName = 'pii' | 'secrets' | 'injection' | 'regex' | 'keywords' | 'size';
export type RuleStage = 'request' | 'response' | 'both';
export type RuleAction = 'block' | 'redact' | 'flag';
export type RuleMode = 'enforce' | 'monitor';
export type RedactionStyle = 'placeholder' | 'mask' | 'hash';

export interface RuleMatch {
  routes?: ApiKind[];
  paths?: string[];
  methods?: string[];
  models?: string[];
  headers?: Record<string, string>;
  roles?: string[];
}

export interface RegexPattern {
  id?: string;
  pattern: string;
  case_insensitive?: boolean;
}

/** One guardrail rule as written in a policy (snake_case, as in YAML). */
export interface GuardrailRule {
  id: string;
  detector: DetectorName;
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

export type RuleOverride = Partial<Omit<GuardrailRule, 'detector'>> & { id: string };

export interface GuardrailsSection {
  mode?: RuleMode;
  rules?: GuardrailRule[];
  override?: RuleOverride[];
  remove?: string[];
  stream?: { max_holdback_chars?: number };
  on_unparsable?: 'allow' | 'block';
}

/** A policy after `extends` is resolved: `guardrails.rules` is the full list, no override/remove left. */
export interface ResolvedPolicy extends Policy {
  name: string;
  guardrails: { mode?: RuleMode; rules: GuardrailRule[]; stream?: { max_holdback_chars?: number }; on_unparsable?: 'allow' | 'block' };
}
