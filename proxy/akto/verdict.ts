import type { Severity, Stage } from '../protocols/exchange';
import { isObject } from '../../common/json';

/** Akto's policy behaviours (GuardrailPolicies.behaviour); what this proxy does with each is in index.ts. */
export type Behaviour = 'block' | 'warn' | 'alert' | 'approval';

/** One phase's verdict from `data.guardrailsResult`, normalised (Akto's clients accept either key casing). */
export interface AktoVerdict {
  allowed: boolean;
  modified: boolean;
  /** The whole redacted body, in the shape that was sent, when modified. */
  modifiedPayload?: string;
  reason: string;
  behaviour: Behaviour;
  policy?: string;
  rule?: string;
  severity?: Severity;
  /** Akto's gateway could not reach its guardrails service and allowed without a verdict. */
  failOpen: boolean;
}

export type ReadVerdict = { ok: true; verdict: AktoVerdict } | { ok: false; problem: string };

type Obj = Record<string, unknown>;

/** Reasons end up in client errors and traces: bounded, one line. */
const MAX_REASON_CHARS = 500;

function first(o: Obj, ...keys: string[]): unknown {
  for (const k of keys) if (o[k] !== undefined && o[k] !== null) return o[k];
  return undefined;
}

/** Java's Boolean.parseBoolean reading of a flag; undefined when absent or not a flag. */
function flag(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === 'true';
  return undefined;
}

function text(v: unknown): string | undefined {
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  const s = String(v).replace(/\p{Cc}+/gu, ' ').trim();
  if (s === '') return undefined;
  return s.length > MAX_REASON_CHARS ? `${s.slice(0, MAX_REASON_CHARS)}…` : s;
}

function behaviourOf(v: unknown): Behaviour {
  const b = typeof v === 'string' ? v.trim().toLowerCase().replace(/[\s-]+/g, '_') : '';
  if (b === 'warn') return 'warn';
  // The docs call it Alert; guardrails-sync says "monitor".
  if (b === 'alert' || b === 'monitor') return 'alert';
  if (b === 'approval' || b === 'human_approval') return 'approval';
  // "block", "mask", empty or unknown: a verdict of Allowed:false is never weakened by a word we do not know.
  return 'block';
}

function severityOf(v: unknown): Severity | undefined {
  const s = typeof v === 'string' ? v.trim().toLowerCase() : '';
  return s === 'low' || s === 'medium' || s === 'high' || s === 'critical' ? s : undefined;
}

/**
 * Reads Akto's `/api/http-proxy` answer (`{success, message, data: {guardrailsResult}}`). When both phases ran
 * Akto merges them (Allowed = request && response) and keeps each under requestResult / responseResult; the
 * phase asked about is read from its own side. A result without an Allowed flag is unreadable: Akto's own
 * client never counts such an answer as an allow.
 */
export function readVerdict(body: string, phase: Stage): ReadVerdict {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { ok: false, problem: 'the answer is not JSON' };
  }
  if (!isObject(json)) return { ok: false, problem: 'the answer is not a JSON object' };
  if (flag(json.success) === false) return { ok: false, problem: `Akto answered success:false (${text(json.message) ?? 'no message'})` };
  let result = (isObject(json.data) ? json.data.guardrailsResult : undefined) ?? json.guardrailsResult;
  if (!isObject(result)) return { ok: false, problem: 'the answer has no data.guardrailsResult' };
  const side = result[phase === 'request' ? 'requestResult' : 'responseResult'];
  if (isObject(side)) result = side;
  const r = result as Obj;
  const allowed = flag(first(r, 'Allowed', 'allowed'));
  if (allowed === undefined) return { ok: false, problem: 'guardrailsResult has no Allowed flag' };
  const meta = first(r, 'Metadata', 'metadata');
  const m = isObject(meta) ? meta : {};
  const payload = first(r, 'ModifiedPayload', 'modifiedPayload');
  const modifiedPayload = typeof payload === 'string' ? payload : isObject(payload) || Array.isArray(payload) ? JSON.stringify(payload) : undefined;
  return {
    ok: true,
    verdict: {
      allowed,
      modified: flag(first(r, 'Modified', 'modified')) === true,
      modifiedPayload: modifiedPayload === '' ? undefined : modifiedPayload,
      reason: text(first(r, 'Reason', 'reason')) ?? '',
      behaviour: behaviourOf(first(r, 'behaviour', 'Behaviour')),
      policy: text(first(m, 'policy_name', 'policyName')),
      rule: text(first(m, 'rule_violated', 'ruleViolated')),
      severity: severityOf(first(m, 'severity', 'Severity') ?? first(r, 'severity', 'Severity')),
      failOpen: flag(r.failOpen) === true,
    },
  };
}
