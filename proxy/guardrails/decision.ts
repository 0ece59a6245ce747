import type { JsonPath, Stage } from '../protocols/exchange';
import type { RuleAction, RuleMode } from '../policy/types';

/** One detector match that a rule counted. Evidence is masked; offsets are into the segment's original text. */
export interface HitRecord {
  rule: string;
  detector: string;
  entity: string;
  stage: Stage;
  /** Index into ex.input / ex.output, the stream channel key, or a joined view and the segments it spans (`joined:trusted:0-2`). */
  segment: number | string;
  path?: JsonPath;
  start: number;
  end: number;
  score: number;
  evidence: string;
  reason?: string;
  /** Which tier decided: the detectors (heuristic) or the model tier. */
  tier?: 'heuristic' | 'model';
  /** What was done about it: the rule's action, or 'flag' in monitor mode. */
  action: RuleAction;
}

export type RuleStatus = 'hit' | 'pass' | 'not_evaluated';

export interface RuleRecord {
  id: string;
  detector: string;
  status: RuleStatus;
  mode: RuleMode;
  /** The action taken ('none' when the rule passed, or errored with on_error allow). */
  action: RuleAction | 'none';
  /** The configured action, when monitor mode downgraded it. */
  intended?: RuleAction;
  hits: number;
  error?: string;
}

export type StageAction = 'allow' | 'flag' | 'redact' | 'block';

/** What the guardrails decided at one stage of one exchange. */
export interface StageRecord {
  action: StageAction;
  blockedBy?: string;
  rules: RuleRecord[];
  hits: HitRecord[];
  /** Hits not listed because of the per-stage bound. */
  hitsDropped?: number;
  /** Milliseconds spent per detector (normalization under 'normalize'). */
  detectorMs: Record<string, number>;
  ms: number;
  streamed?: boolean;
  /** Stream channels whose held text passed max_holdback_chars and were scanned and released early. */
  holdbackOverflows?: number;
}

declare module '../protocols/exchange' {
  interface ExchangeNotes {
    /** The guardrail decision record (docs/policy.md), where any rule applied. */
    guardrails?: GuardrailDecision;
  }
}

/** ex.notes.guardrails */
export interface GuardrailDecision {
  policy: string;
  /** The request body could not be read (on a known inference route) and what on_unparsable did about it. */
  unparsed?: { reason: string; action: 'allow' | 'block' };
  request?: StageRecord;
  response?: StageRecord;
}

export const MAX_HITS_PER_STAGE = 100;

const RANK: Record<StageAction, number> = { allow: 0, flag: 1, redact: 2, block: 3 };

export function stronger(a: StageAction, b: StageAction): StageAction {
  return RANK[a] >= RANK[b] ? a : b;
}

export function emptyStage(streamed = false): StageRecord {
  return { action: 'allow', rules: [], hits: [], detectorMs: {}, ms: 0, ...(streamed ? { streamed } : {}) };
}

export function addHit(record: StageRecord, hit: HitRecord): void {
  if (record.hits.length < MAX_HITS_PER_STAGE) record.hits.push(hit);
  else record.hitsDropped = (record.hitsDropped ?? 0) + 1;
}
