import { readFileSync } from 'node:fs';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020';
import policySchema from './policy.schema.json';
import limitsSchema from './limits.schema.json';
import { PACKS } from './packs';
import { PACK_NAMES, type GuardrailRule, type GuardrailsSection, type PackName, type ResolvedPolicy } from './types';
import type { Policy } from './store';

/** A policy that cannot be used. `problems` are "<json path>: <problem>" lines; they never quote secrets. */
export class PolicyError extends Error {
  constructor(readonly source: string, readonly problems: readonly string[]) {
    super(`${source}: ${problems.join('; ')}`);
    this.name = 'PolicyError';
  }
}

/** Extra checks a consumer runs on a resolved policy (e.g. guardrails compiling its regexes). Throws PolicyError. */
export type PolicyCheck = (policy: ResolvedPolicy, source: string) => void;

let validator: ValidateFunction | undefined;

/** Built on first use: a sidecar on a built-in pack never loads the schema validator (nor the YAML parser). */
function schemaValidator(): ValidateFunction {
  if (validator) return validator;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- on demand, see above
  const { default: Ajv2020 } = require('ajv/dist/2020') as typeof import('ajv/dist/2020');
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
  // The main schema refers to the limits fragment by its file name beside it (so editors resolve it too).
  ajv.addSchema(limitsSchema);
  validator = ajv.compile(policySchema);
  return validator;
}

function describe(e: ErrorObject): string {
  const path = e.instancePath || '/';
  switch (e.keyword) {
    case 'additionalProperties':
    case 'unevaluatedProperties': {
      const p = (e.params as { additionalProperty?: string; unevaluatedProperty?: string });
      return `${path}: unknown field "${p.additionalProperty ?? p.unevaluatedProperty}"`;
    }
    case 'required':
      return `${path}: missing required field "${(e.params as { missingProperty: string }).missingProperty}"`;
    case 'enum':
      return `${path}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'false schema':
      return `${path}: field not allowed for this rule's detector`;
    default:
      return `${path}: ${e.message ?? e.keyword}`;
  }
}

/** Schema errors as "<path>: <problem>", without the noise of if/then/anyOf wrappers. */
export function schemaProblems(doc: unknown): string[] {
  const validate = schemaValidator();
  if (validate(doc)) return [];
  const problems = new Set<string>();
  const oneOf = new Map<string, string[]>();
  for (const e of validate.errors ?? []) {
    if (e.keyword === 'if' || e.keyword === 'anyOf') continue;
    if (e.keyword === 'required' && e.schemaPath.includes('/anyOf/')) {
      const fields = oneOf.get(e.instancePath) ?? [];
      fields.push((e.params as { missingProperty: string }).missingProperty);
      oneOf.set(e.instancePath, fields);
      continue;
    }
    problems.add(describe(e));
  }
  for (const [path, fields] of oneOf) problems.add(`${path || '/'}: missing one of the fields ${fields.join(', ')}`);
  return [...problems];
}

/** Parse YAML or JSON text (JSON is valid YAML; syntax errors carry line and column). */
export function parsePolicyText(text: string, source: string): unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- on demand, like the schema validator
  const { parseDocument } = require('yaml') as typeof import('yaml');
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new PolicyError(source, doc.errors.map((e) => `syntax: ${e.message.split('\n')[0]}`));
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  return value ?? {};
}

function ruleIdProblems(rules: readonly GuardrailRule[], where: string): string[] {
  const seen = new Set<string>();
  const problems: string[] = [];
  rules.forEach((r, i) => {
    if (seen.has(r.id)) problems.push(`${where}/${i}/id: duplicate rule id "${r.id}"`);
    seen.add(r.id);
  });
  return problems;
}

export const NO_RULES =
  '/: no guardrail rule (an empty, version-only or partly written file would turn the guardrails off): extend a pack (extends: default) or add rules; to run without guardrails say so with extends: off';

/** Apply `extends`: inherit the pack's rules, then replace/add `rules`, merge `override`, drop `remove`. */
export function resolvePolicy(doc: Policy, source: string): ResolvedPolicy {
  const section = (doc.guardrails ?? {}) as GuardrailsSection;
  const own = section.rules ?? [];
  const problems = ruleIdProblems(own, '/guardrails/rules');
  const base = doc.extends ? PACKS[doc.extends as PackName] : undefined;
  if (!base && (section.override || section.remove)) {
    problems.push('/guardrails: override and remove need "extends" (there is nothing to inherit)');
  }
  const rules: GuardrailRule[] = base ? base.guardrails.rules.map((r) => ({ ...r })) : [];
  const index = new Map(rules.map((r, i) => [r.id, i]));
  for (const r of own) {
    const at = index.get(r.id);
    if (at === undefined) {
      index.set(r.id, rules.length);
      rules.push(r);
    } else rules[at] = r;
  }
  (section.override ?? []).forEach((o, i) => {
    const at = index.get(o.id);
    if (at === undefined) problems.push(`/guardrails/override/${i}/id: no inherited rule "${o.id}" to override`);
    else rules[at] = { ...rules[at], ...o };
  });
  const removed = new Set(section.remove ?? []);
  (section.remove ?? []).forEach((id, i) => {
    if (!index.has(id)) problems.push(`/guardrails/remove/${i}: no inherited rule "${id}" to remove`);
  });
  const kept = rules.filter((r) => !removed.has(r.id));
  // An empty file, `version: 1` alone or a half-written one must not switch the guardrails off.
  if (kept.length === 0 && doc.extends !== 'off' && problems.length === 0) problems.push(NO_RULES);
  if (problems.length > 0) throw new PolicyError(source, problems);
  const { override: _o, remove: _r, rules: _rules, ...settings } = section;
  const mode = settings.mode ?? base?.guardrails.mode;
  const onOversize = settings.on_oversize ?? base?.guardrails.on_oversize;
  return {
    ...(base ?? {}),
    ...doc,
    name: typeof doc.name === 'string' ? doc.name : source,
    guardrails: {
      ...(base?.guardrails.stream || settings.stream ? { stream: { ...base?.guardrails.stream, ...settings.stream } } : {}),
      ...(mode ? { mode } : {}),
      ...(onOversize ? { on_oversize: onOversize } : {}),
      ...(settings.on_unparsable ? { on_unparsable: settings.on_unparsable } : {}),
      rules: kept,
    },
  };
}

/** Validate a parsed document and resolve it, running consumer checks. Throws PolicyError. */
export function buildPolicy(doc: unknown, source: string, checks: readonly PolicyCheck[] = []): ResolvedPolicy {
  const problems = schemaProblems(doc);
  if (problems.length > 0) throw new PolicyError(source, problems);
  const resolved = resolvePolicy(doc as Policy, source);
  for (const check of checks) check(resolved, source);
  return resolved;
}

export function loadPolicyText(text: string, source: string, checks: readonly PolicyCheck[] = []): ResolvedPolicy {
  return buildPolicy(parsePolicyText(text, source), source, checks);
}

export function loadPolicyFile(path: string, checks: readonly PolicyCheck[] = []): ResolvedPolicy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PolicyError(path, [`cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  return loadPolicyText(text, path, checks);
}

export function packPolicy(name: PackName, checks: readonly PolicyCheck[] = []): ResolvedPolicy {
  const policy = PACKS[name];
  for (const check of checks) check(policy, `pack:${name}`);
  return policy;
}

export function isPackName(name: string): name is PackName {
  return (PACK_NAMES as readonly string[]).includes(name);
}
