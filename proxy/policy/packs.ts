import type { GuardrailRule, PackName, ResolvedPolicy } from './types';

/** Roles whose text is user-controlled input: where prompt injection arrives (directly or through tools). */
const INPUT_ROLES = ['user', 'tool', 'function', 'ipython'];

const defaultRules: GuardrailRule[] = [
  {
    id: 'pii-redact',
    description: 'Replace personal data (email, phone, card, SSN, IBAN, IP) with typed placeholders in both directions.',
    detector: 'pii',
    stage: 'both',
    action: 'redact',
    redaction: 'placeholder',
    severity: 'medium',
  },
  {
    id: 'secrets-request-redact',
    description: 'Keep credentials the agent pastes into a prompt away from the model.',
    detector: 'secrets',
    stage: 'request',
    action: 'redact',
    redaction: 'placeholder',
    severity: 'high',
  },
  {
    id: 'secrets-response-block',
    description: 'Stop a response that would hand a credential to the agent.',
    detector: 'secrets',
    stage: 'response',
    action: 'block',
    severity: 'critical',
  },
  {
    id: 'prompt-injection',
    description: 'Block instruction-override, jailbreak and system-prompt-extraction attempts in user input and tool results.',
    detector: 'injection',
    stage: 'request',
    action: 'block',
    match: { roles: INPUT_ROLES },
    severity: 'high',
  },
];

const strictRules: GuardrailRule[] = [
  { id: 'pii-block', detector: 'pii', stage: 'both', action: 'block', severity: 'high' },
  { id: 'secrets-block', detector: 'secrets', stage: 'both', action: 'block', severity: 'critical' },
  {
    id: 'prompt-injection',
    detector: 'injection',
    stage: 'request',
    action: 'block',
    threshold: 0.35,
    match: { roles: INPUT_ROLES },
    severity: 'high',
  },
];

/** Built-in packs, already resolved. `monitor` is `default` with every rule in shadow mode. */
export const PACKS: Readonly<Record<PackName, ResolvedPolicy>> = {
  default: { version: 1, name: 'pack:default', guardrails: { rules: defaultRules } },
  monitor: { version: 1, name: 'pack:monitor', guardrails: { mode: 'monitor', rules: defaultRules } },
  strict: { version: 1, name: 'pack:strict', guardrails: { rules: strictRules } },
  off: { version: 1, name: 'pack:off', guardrails: { rules: [] } },
};
