import { performance } from 'node:perf_hooks';
import { editSegment, type BlockVerdict, type Exchange, type Finding, type Segment, type Stage } from '../protocols/exchange';
import { categoryOf, type CompiledAllow, type CompiledPolicy, type CompiledRule } from './compile';
import { addHit, emptyStage, stronger, type StageRecord } from './decision';
import { estimateTokens, type Match } from './detectors';
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
  /** Which tier decided: the detectors (default), or the model tier's combined score. */
  tier?: Tier;
}

export type Tier = 'heuristic' | 'model';

/** Heuristic scores in [GREY_LOW, GREY_HIGH) are the grey zone where the model tier decides (rules with model: auto). */
export const GREY_LOW = 0.1;
export const GREY_HIGH = 0.9;

/** Scores of the model tier for one segment, by category: the combined score and the head's own threshold. */
export type SegmentScores = Partial<Record<string, { combined: number; model: number; threshold: number }>>;

/** What the model tier said for this stage: scores per segment index, or why it could not answer. */
export interface ModelOutcome {
  scores: Map<number, SegmentScores>;
  /** Segments that were sent; when `error` is set none of them has scores. */
  asked: ReadonlySet<number>;
  error?: string;
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

function addMs(record: StageRecord, key: string, ms: number): void {
  record.detectorMs[key] = (record.detectorMs[key] ?? 0) + ms;
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
  allowed?: ReadonlyMap<CompiledRule, readonly CompiledAllow[]>,
  model?: ModelOutcome,
): void {
  let norm: NormalizedText | undefined;
  const scans = new Map<string, Match[] | Error>();
  for (const rule of rules) {
    const detector = rule.detector;
    if (!detector || (rule.roles && !rule.roles.has(role))) continue;
    let result = scans.get(rule.scanKey);
    if (result === undefined) {
      if (!norm) {
        const t = performance.now();
        norm = normalizeText(text);
        addMs(record, 'normalize', performance.now() - t);
      }
      const t = performance.now();
      try {
        const allow = allowed?.get(rule);
        const seen = allow ? normalizeText(blankAllowed(text, norm, allow)) : norm;
        result = detector.scan(seen, { entities: entities.get(rule.scanKey), threshold: rule.threshold, untrusted: !trusted });
      } catch (err) {
        result = err instanceof Error ? err : new Error(String(err));
      }
      addMs(record, rule.detectorId, performance.now() - t);
      scans.set(rule.scanKey, result);
    }
    const tally = tallies.get(rule)!;
    if (result instanceof Error) {
      // The name only: a detector's message might quote the text it choked on.
      tally.error = `detector ${detector.id} failed (${result.name})`;
      continue;
    }
    const own = result.filter((match) => !rule.entities || rule.entities.has(match.entity));
    if (rule.model && model && typeof segment === 'number' && model.asked.has(segment)) {
      decideWithModel(rule, text, segment, own, model, tally);
      continue;
    }
    for (const match of own) tally.matches.push({ segment, text, match, tier: 'heuristic' });
  }
}

/**
 * A rule with a model tier on a segment the model was asked about: the combined score decides against the
 * rule's threshold (or the head's own); a heuristic score at or above GREY_HIGH still decides alone. When
 * the model tier could not answer, the heuristic decision stands and the rule is not_evaluated (on_error).
 */
function decideWithModel(rule: CompiledRule, text: string, segment: number, heuristic: Match[], model: ModelOutcome, tally: RuleTally): void {
  const category = rule.model!.category;
  const strong = heuristic.filter((m) => m.score >= GREY_HIGH);
  const scores = model.scores.get(segment)?.[category];
  if (!scores) {
    for (const match of heuristic) tally.matches.push({ segment, text, match, tier: 'heuristic' });
    tally.error = `model tier: ${model.error ?? 'no score'}`;
    return;
  }
  for (const match of strong) tally.matches.push({ segment, text, match, tier: 'heuristic' });
  const threshold = rule.threshold ?? scores.threshold;
  if (strong.length === 0 && scores.combined >= threshold) {
    const entity = rule.entities ? [...rule.entities][0] : category.toUpperCase();
    tally.matches.push({ segment, text, tier: 'model', match: { detector: rule.detectorId, entity, start: 0, end: text.length, score: scores.combined, reason: `model ${scores.model}` } });
  }
}

/** `text` with every allowed phrase or pattern match replaced by spaces (same length: offsets stay valid). */
function blankAllowed(text: string, norm: NormalizedText, allow: readonly CompiledAllow[]): string {
  const spans: [number, number][] = [];
  for (const a of allow) for (const f of a.finders) for (const m of f.scan(norm)) spans.push([m.start, m.end]);
  if (spans.length === 0) return text;
  const chars = text.split('');
  for (const [start, end] of spans) for (let i = start; i < end; i++) chars[i] = ' ';
  return chars.join('');
}

/**
 * Segments whose text the model tier should score for this stage, by the rules that want it: `always`, or
 * `auto` with the heuristic score in the grey zone. Scans only the model rules' detectors.
 */
export function modelCandidates(policy: CompiledPolicy, ex: Exchange, stage: Stage): { segment: number; text: string; untrusted: boolean; categories: string[] }[] {
  const rules = rulesFor(policy, ex, stage).filter((r) => r.model && r.detector);
  if (rules.length === 0) return [];
  const out: { segment: number; text: string; untrusted: boolean; categories: string[] }[] = [];
  segmentsOf(ex, stage).forEach((seg, i) => {
    const categories = new Set<string>();
    let norm: NormalizedText | undefined;
    for (const rule of rules) {
      if (rule.roles && !rule.roles.has(seg.role)) continue;
      if (rule.model!.use === 'always') {
        categories.add(rule.model!.category);
        continue;
      }
      norm ??= normalizeText(seg.text);
      const top = rule.detector!.scan(norm, { threshold: 0, untrusted: !seg.trusted, entities: rule.entities }).reduce((s, m) => Math.max(s, m.score), 0);
      if (top >= GREY_LOW && top < GREY_HIGH) categories.add(rule.model!.category);
    }
    if (categories.size > 0) out.push({ segment: i, text: seg.text, untrusted: !seg.trusted, categories: [...categories] });
  });
  return out;
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

export interface Decided {
  verdict?: BlockVerdict;
  /** Redaction spans per segment key, offsets into that segment's text. */
  spans: Map<number | string, RedactionSpan[]>;
  findings: Finding[];
}

/**
 * Turn what the rules collected into actions and records: the first blocking rule (in policy order) wins;
 * redact rules contribute spans; monitor rules only record. Rules that errored are not_evaluated and apply on_error.
 */
export function decide(rules: readonly CompiledRule[], tallies: Map<CompiledRule, RuleTally>, stage: Stage, record: StageRecord): Decided {
  const out: Decided = { spans: new Map(), findings: [] };
  for (const rule of rules) {
    const tally = tallies.get(rule)!;
    const fired = tally.matches.length >= rule.minCount && tally.matches.length > 0;
    const mode = rule.monitor ? 'monitor' : 'enforce';
    let action: StageRecord['rules'][number]['action'] = fired ? rule.action : 'none';
    if (fired) {
      const perEntity = new Map<string, { n: number; score: number; tier: Tier }>();
      for (const { segment, text, match, tier } of tally.matches) {
        const seen = perEntity.get(match.entity);
        perEntity.set(match.entity, { n: (seen?.n ?? 0) + 1, score: Math.max(seen?.score ?? 0, match.score), tier: seen?.tier === 'model' ? 'model' : tier ?? 'heuristic' });
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
          tier: tier ?? 'heuristic',
          action: rule.action,
        });
        if (rule.action === 'redact' && match.end > match.start) {
          const list = out.spans.get(segment) ?? [];
          list.push({ start: match.start, end: match.end, entity: match.entity, style: rule.redaction });
          out.spans.set(segment, list);
        }
      }
      for (const [entity, { n, score, tier }] of perEntity) {
        const category = categoryOf(rule.detectorId, entity) ?? rule.category;
        out.findings.push({
          source: 'guardrail',
          ruleId: rule.id,
          action: rule.action,
          severity: rule.severity,
          stage,
          reason: `${n} ${entity} match${n > 1 ? 'es' : ''} (${rule.detectorId}, ${tier} tier)${rule.monitor ? `; monitor mode, would ${rule.intended}` : ''}`,
          detector: rule.detectorId,
          entity,
          ...(category ? { category } : {}),
          score,
          tier,
        });
      }
      if (rule.action === 'block' && !out.verdict) {
        out.verdict = blockVerdict(rule, stage, `${[...perEntity.keys()].join(', ')} detected`);
        record.blockedBy = rule.id;
      }
      record.action = stronger(record.action, rule.action);
    }
    if (tally.error) {
      const failClosed = rule.onError === 'block' && !rule.monitor;
      if (failClosed) {
        action = 'block';
        if (!out.verdict) {
          out.verdict = blockVerdict(rule, stage, 'the rule could not be evaluated and its on_error is block');
          record.blockedBy = rule.id;
        }
        record.action = 'block';
      }
      out.findings.push({
        source: 'guardrail',
        ruleId: rule.id,
        action: failClosed ? 'block' : 'flag',
        severity: rule.severity,
        stage,
        reason: `not evaluated: ${tally.error}; on_error ${rule.onError}`,
        detector: rule.detectorId,
      });
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

/** The allow-list entries of each rule that apply to this exchange (none in most policies: undefined). */
export function allowedFor(rules: readonly CompiledRule[], ex: Exchange): Map<CompiledRule, CompiledAllow[]> | undefined {
  let out: Map<CompiledRule, CompiledAllow[]> | undefined;
  for (const r of rules) {
    const entries = r.allow?.filter((a) => a.appliesTo(ex));
    if (entries && entries.length > 0) (out ??= new Map()).set(r, entries);
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
export function evaluateStage(policy: CompiledPolicy, ex: Exchange, stage: Stage, ctx: RedactionContext, model?: ModelOutcome): StageOutcome {
  const started = performance.now();
  const record = emptyStage();
  const rules = rulesFor(policy, ex, stage);
  if (rules.length === 0) return { record, findings: [] };
  const segments = segmentsOf(ex, stage);
  const entities = scanEntities(rules);
  const tallies = new Map<CompiledRule, RuleTally>(rules.map((r) => [r, { matches: [] }]));
  const allowed = allowedFor(rules, ex);
  segments.forEach((seg, i) => scanText(seg.text, i, seg.role, seg.trusted, rules, entities, tallies, record, allowed, model));
  for (const rule of rules) {
    if (rule.detector) continue;
    let chars = 0;
    let tokens = 0;
    for (const seg of segments) {
      if (rule.roles && !rule.roles.has(seg.role)) continue;
      chars += seg.text.length;
      tokens += estimateTokens(seg.text);
    }
    const m = sizeMatch(rule, chars, tokens);
    if (m) tallies.get(rule)!.matches.push({ segment: -1, text: '', match: m });
  }
  const decided = decide(rules, tallies, stage, record);
  if (!decided.verdict) {
    for (const [key, spans] of decided.spans) {
      const seg = segments[key as number];
      editSegment(seg, applyRedactions(seg.text, spans, ctx));
    }
  }
  record.ms = performance.now() - started;
  return { record, verdict: decided.verdict, findings: decided.findings };
}
