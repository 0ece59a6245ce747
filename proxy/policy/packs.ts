import type { GuardrailRule, PackName, ResolvedPolicy } from './types';

/** Roles whose text is user-controlled input: where prompt injection arrives (directly or through tools). */
const INPUT_ROLES = ['user', 'tool', 'function', 'ipython'];

/** Injection in input, by category: direct, role-play jailbreaks, and instructions inside tool results. */
function injectionRules(threshold?: number): GuardrailRule[] {
  const common = { stage: 'request', action: 'block', match: { roles: INPUT_ROLES }, severity: 'high', ...(threshold !== undefined ? { threshold } : {}) } as const;
  return [
    { id: 'prompt-injection', description: 'Block instruction-override and system-prompt-extraction attempts in user input.', category: 'prompt_injection', ...common },
    { id: 'jailbreak', description: 'Block role-play jailbreaks (DAN, developer mode, "no restrictions" personas).', category: 'jailbreak', ...common },
    { id: 'indirect-injection', description: 'Block instructions planted in tool results and pasted documents (exfiltration, pushed links, overrides).', category: 'indirect_injection', ...common },
  ];
}

const defaultRules: GuardrailRule[] = [
  {
    id: 'pii-redact',
    description: 'Replace personal data (email, phone, card, SSN, IBAN, IP) with typed placeholders in both directions.',
    category: 'pii.*',
    stage: 'both',
    action: 'redact',
    redaction: 'placeholder',
    severity: 'medium',
  },
  {
    id: 'secrets-request-redact',
    description: 'Keep credentials the agent pastes into a prompt away from the model.',
    category: 'secrets.*',
    stage: 'request',
    action: 'redact',
    redaction: 'placeholder',
    severity: 'high',
  },
  {
    id: 'secrets-response-block',
    description: 'Stop a response that would hand a credential to the agent.',
    category: 'secrets.*',
    stage: 'response',
    action: 'block',
    severity: 'critical',
  },
  ...injectionRules(),
  {
    id: 'toxicity',
    description: 'Record (log and trace, no block) toxic text in prompts and answers.',
    category: 'toxicity',
    stage: 'both',
    action: 'flag',
    severity: 'medium',
  },
  {
    id: 'harmful-intent',
    description: 'Record (log and trace, no block) requests for harmful assistance.',
    category: 'harmful_intent',
    stage: 'request',
    action: 'flag',
    match: { roles: ['user'] },
    severity: 'medium',
  },
];

const strictRules: GuardrailRule[] = [
  { id: 'pii-block', category: 'pii.*', stage: 'both', action: 'block', severity: 'high' },
  // 0.3: documented example credentials count too unless they sit in documentation (secret-examples.ts).
  { id: 'secrets-block', category: 'secrets.*', stage: 'both', action: 'block', severity: 'critical', threshold: 0.3 },
  ...injectionRules(0.35),
  { id: 'toxicity', category: 'toxicity', stage: 'both', action: 'block', severity: 'high' },
  { id: 'harmful-intent', category: 'harmful_intent', stage: 'request', action: 'block', match: { roles: ['user'] }, severity: 'high' },
];

/** Built-in packs, already resolved. `monitor` is `default` with every rule in shadow mode. */
export const PACKS: Readonly<Record<PackName, ResolvedPolicy>> = {
  default: { version: 1, name: 'pack:default', guardrails: { rules: defaultRules } },
  monitor: { version: 1, name: 'pack:monitor', guardrails: { mode: 'monitor', rules: defaultRules } },
  strict: { version: 1, name: 'pack:strict', guardrails: { rules: strictRules } },
  off: { version: 1, name: 'pack:off', guardrails: { rules: [] } },
};
