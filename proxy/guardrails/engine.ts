import { performance } from 'node:perf_hooks';
import { editSegment, type BlockVerdict, type Exchange, type Finding, type Segment, type Stage } from '../protocols/exchange';
import type { CompiledPolicy, CompiledRule } from './compile';
import { addHit, emptyStage, stronger, type StageRecord } from './decision';
import { estimateTokens, type Match, type ScanOptions } from './detectors';
import { normalizeText, type NormalizedText } from './normalize';
import { applyRedactions, evidence, type RedactionContext, type RedactionSpan } from './redact';

export interface StageOutcome {
  record: StageRecord;
  verdict?: BlockVerdict;
  findings: Finding[];
}

/** Rules of `policy` that run at `stage` for this exchange (route, path, method, model and header conditions). */
export function rulesFor(policy: CompiledPolicy, ex: Exchange, stage: Stage): CompiledRule[] {
  return policy.rules.filter((r) => (stage === 'request' ? r.request : r.response) && r.appliesTo(ex));
}

/** Union of the entities the rules sharing a scan want; undefined = all. */
export function scanEntities(rules: readonly CompiledRule[]): Map<string, ReadonlySet<string> | undefined> {
  const out = new Map<string, Set<string> | undefined>();
  for (const r of rules) {
    if (!r.detector) continue;
    if (!out.has(r.scanKey)) out.set(r.scanKey, r.entities ? new Set(r.entities) : undefined);
    else {
      const cur = out.get(r.scanKey);
      if (!cur || !r.entities) out.set(r.scanKey, undefined);
      else for (const e of r.entities) cur.add(e);
    }
  }
  return out;
}

interface Located {
  segment: number | string;
  text: string;
  match: Match;
}

/** What each rule collected while scanning. */
export interface RuleTally {
  matches: Located[];
  error?: string;
}

export function blockVerdict(rule: CompiledRule, stage: Stage, what: string): BlockVerdict {
  const head = `${stage === 'request' ? 'Request' : 'Response'} blocked by guardrail rule "${rule.id}"`;
  return { status: rule.blockStatus, type: 'guardrail_violation', code: rule.id, message: `${head}: ${rule.message ?? what}` };
}

export function addMs(record: StageRecord, key: string, ms: number): void {
  record.detectorMs[key] = (record.detectorMs[key] ?? 0) + ms;
}

/**
 * One detector run for a rule's scan group, timed into the record. Errors are returned, never thrown; the
 * caller keeps the name only (a detector's message might quote the text it choked on).
 */
export function detect(rule: CompiledRule, norm: NormalizedText, opts: ScanOptions, record: StageRecord): Match[] | Error {
  const t = performance.now();
  let result: Match[] | Error;
  try {
    result = rule.detector!.scan(norm, opts);
  } catch (err) {
    result = err instanceof Error ? err : new Error(String(err));
  }
  addMs(record, rule.detectorId, performance.now() - t);
  return result;
}

export function detectorFailure(rule: CompiledRule, err: Error): string {
  return `detector ${rule.detector!.id} failed (${err.name})`;
}

/**
 * Run the detectors one rule set needs over one piece of text: normalize once, scan once per scan key,
 * hand each rule the matches it cares about. Errors are kept per rule, never thrown.
 */
export function scanText(
  text: string,
  segment: number | string,
  role: string,
  trusted: boolean,
  rules: readonly CompiledRule[],
  entities: Map<string, ReadonlySet<string> | undefined>,
  tallies: Map<CompiledRule, RuleTally>,
  record: StageRecord,
): void {
  let norm: NormalizedText | undefined;
  const scans = new Map<string, Match[] | Error>();
  for (const rule of rules) {
    if (!rule.detector || (rule.roles && !rule.roles.has(role))) continue;
    let result = scans.get(rule.scanKey);
    if (result === undefined) {
      if (!norm) {
        const t = performance.now();
        norm = normalizeText(text);
        addMs(record, 'normalize', performance.now() - t);
      }
      result = detect(rule, norm, { entities: entities.get(rule.scanKey), threshold: rule.threshold, untrusted: !trusted }, record);
      scans.set(rule.scanKey, result);
    }
    const tally = tallies.get(rule)!;
    if (result instanceof Error) {
      tally.error = detectorFailure(rule, result);
      continue;
    }
    for (const match of result) if (!rule.entities || rule.entities.has(match.entity)) tally.matches.push({ segment, text, match });
  }
}

/** Size rules measure the text they apply to: characters and estimated tokens (chars / 4). */
export function sizeMatch(rule: CompiledRule, chars: number, tokens: number): Match | undefined {
  if (rule.maxChars !== undefined && chars > rule.maxChars) {
    return { detector: 'size', entity: 'SIZE_CHARS', start: 0, end: 0, score: 1, reason: `${chars} characters > max_chars ${rule.maxChars}` };
  }
  if (rule.maxTokens !== undefined && tokens > rule.maxTokens) {
    return { detector: 'size', entity: 'SIZE_TOKENS', start: 0, end: 0, score: 1, reason: `~${tokens} tokens > max_tokens ${rule.maxTokens}` };
  }
  return undefined;
}

/** The finding for `n` matches of one entity of a rule that fired. */
export function matchFinding(rule: CompiledRule, stage: Stage, entity: string, n: number): Finding {
  return {
    source: 'guardrail',
    ruleId: rule.id,
    action: rule.action,
    severity: rule.severity,
    stage,
    reason: `${n} ${entity} match${n > 1 ? 'es' : ''} (${rule.detectorId})${rule.monitor ? `; monitor mode, would ${rule.intended}` : ''}`,
    detector: rule.detectorId,
    entity,
  };
}

/** Whether a rule that could not be evaluated blocks (on_error block, enforced). */
export function failsClosed(rule: CompiledRule): boolean {
  return rule.onError === 'block' && !rule.monitor;
}

/** The finding for a rule that could not be evaluated. */
export function errorFinding(rule: CompiledRule, stage: Stage, error: string): Finding {
  return {
    source: 'guardrail',
    ruleId: rule.id,
    action: failsClosed(rule) ? 'block' : 'flag',
    severity: rule.severity,
    stage,
    reason: `not evaluated: ${error}; on_error ${rule.onError}`,
    detector: rule.detectorId,
  };
}

export interface Decided {
  verdict?: BlockVerdict;
  /** Segment keys a blocking rule matched in (a response block withholds just those choices). */
  blocking: Set<number | string>;
  /** Redaction spans per segment key, offsets into that segment's text. */
  spans: Map<number | string, RedactionSpan[]>;
  findings: Finding[];
}

/**
 * Turn what the rules collected into actions and records: the first blocking rule (in policy order) wins;
 * redact rules contribute spans; monitor rules only record. Rules that errored are not_evaluated and apply on_error.
 */
export function decide(rules: readonly CompiledRule[], tallies: Map<CompiledRule, RuleTally>, stage: Stage, record: StageRecord): Decided {
  const out: Decided = { spans: new Map(), blocking: new Set(), findings: [] };
  for (const rule of rules) {
    const tally = tallies.get(rule)!;
    const fired = tally.matches.length >= rule.minCount && tally.matches.length > 0;
    const mode = rule.monitor ? 'monitor' : 'enforce';
    let action: StageRecord['rules'][number]['action'] = fired ? rule.action : 'none';
    if (fired) {
      const perEntity = new Map<string, number>();
      for (const { segment, text, match } of tally.matches) {
        perEntity.set(match.entity, (perEntity.get(match.entity) ?? 0) + 1);
        addHit(record, {
          rule: rule.id,
          detector: match.detector,
          entity: match.entity,
          stage,
          segment,
          start: match.start,
          end: match.end,
          score: match.score,
          evidence: match.end > match.start ? evidence(text.slice(match.start, match.end)) : '',
          ...(match.reason ? { reason: match.reason } : {}),
          action: rule.action,
        });
        if (rule.action === 'block') out.blocking.add(segment);
        if (rule.action === 'redact' && match.end > match.start) {
          const list = out.spans.get(segment) ?? [];
          list.push({ start: match.start, end: match.end, entity: match.entity, style: rule.redaction });
          out.spans.set(segment, list);
        }
      }
      for (const [entity, n] of perEntity) out.findings.push(matchFinding(rule, stage, entity, n));
      if (rule.action === 'block' && !out.verdict) {
        out.verdict = blockVerdict(rule, stage, `${[...perEntity.keys()].join(', ')} detected`);
        record.blockedBy = rule.id;
      }
      record.action = stronger(record.action, rule.action);
    }
    if (tally.error) {
      const failClosed = failsClosed(rule);
      if (failClosed) {
        action = 'block';
        if (!out.verdict) {
          out.verdict = blockVerdict(rule, stage, 'the rule could not be evaluated and its on_error is block');
          record.blockedBy = rule.id;
        }
        record.action = 'block';
      }
      out.findings.push(errorFinding(rule, stage, tally.error));
    }
    record.rules.push({
      id: rule.id,
      detector: rule.detectorId,
      status: tally.error ? 'not_evaluated' : fired ? 'hit' : 'pass',
      mode,
      action,
      ...(rule.monitor && fired ? { intended: rule.intended } : {}),
      hits: tally.matches.length,
      ...(tally.error ? { error: tally.error } : {}),
    });
  }
  return out;
}

function segmentsOf(ex: Exchange, stage: Stage): Segment[] {
  return stage === 'request' ? ex.input : ex.output;
}

/**
 * The decision engine for a complete request or response: pure and synchronous apart from editing the
 * exchange's segments in place (redactions land on the original text through the detectors' offsets).
 */
export function evaluateStage(policy: CompiledPolicy, ex: Exchange, stage: Stage, ctx: RedactionContext): StageOutcome {
  const started = performance.now();
  const record = emptyStage();
  const rules = rulesFor(policy, ex, stage);
  if (rules.length === 0) return { record, findings: [] };
  const segments = segmentsOf(ex, stage);
  const entities = scanEntities(rules);
  const tallies = new Map<CompiledRule, RuleTally>(rules.map((r) => [r, { matches: [] }]));
  segments.forEach((seg, i) => scanText(seg.text, i, seg.role, seg.trusted, rules, entities, tallies, record));
  for (const rule of rules) {
    if (rule.detector) continue;
    let chars = 0;
    let tokens = 0;
    for (const seg of segments) {
      // Token lists repeat the text of another segment.
      if ((rule.roles && !rule.roles.has(seg.role)) || seg.kind === 'token_list') continue;
      chars += seg.text.length;
      tokens += estimateTokens(seg.text);
    }
    const m = sizeMatch(rule, chars, tokens);
    if (m) tallies.get(rule)!.matches.push({ segment: -1, text: '', match: m });
  }
  const decided = decide(rules, tallies, stage, record);
  // A blocked request is not sent at all; a blocked response still serves the choices no blocking rule matched in.
  if (!decided.verdict || stage === 'response') {
    for (const [key, spans] of decided.spans) {
      const seg = segments[key as number];
      editSegment(seg, applyRedactions(seg.text, spans, ctx));
    }
  }
  if (stage === 'response') for (const key of decided.blocking) segments[key as number].blocked = true;
  record.ms = performance.now() - started;
  return { record, verdict: decided.verdict, findings: decided.findings };
}
