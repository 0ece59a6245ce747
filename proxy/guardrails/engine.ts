import { performance } from 'node:perf_hooks';
import { editSegment, type BlockVerdict, type Exchange, type Finding, type Segment, type Stage } from '../protocols/exchange';
import { categoryOf, type CompiledAllow, type CompiledPolicy, type CompiledRule } from './compile';
import { addHit, emptyStage, stronger, type StageRecord } from './decision';
import { exceededSize, type Match, type ScanOptions } from './detectors';
import { tokensForChars } from '../protocols/tokens';
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

/** A stretch of one segment's text inside a joined view: segment text [from, to) sits at view offset `at`. */
interface Piece {
  segment: number;
  from: number;
  to: number;
  at: number;
}

/** Several segments read as one text, the way the model reads the conversation (see joinedViews). */
interface View {
  key: string;
  text: string;
  pieces: Piece[];
  trusted: boolean;
}

interface Located {
  segment: number | string;
  text: string;
  match: Match;
  /** For a match across segments of a joined view: the stretch of each segment it covers (offsets into that segment). */
  parts?: Array<{ segment: number; start: number; end: number }>;
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

export function addMs(record: StageRecord, key: string, ms: number): void {
  record.detectorMs[key] = (record.detectorMs[key] ?? 0) + ms;
}

/**
 * One detector run for a rule's scan group, timed into the record; with allow-list entries the detector sees the
 * text with the allowed phrases blanked. Errors are returned, never thrown; the caller keeps the name only (a
 * detector's message might quote the text it choked on).
 */
export function detect(rule: CompiledRule, norm: NormalizedText, opts: ScanOptions, record: StageRecord, allow?: readonly CompiledAllow[]): Match[] | Error {
  const t = performance.now();
  let result: Match[] | Error;
  try {
    result = rule.detector!.scan(allow ? withoutAllowed(norm, allow) : norm, opts);
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
  allowed?: ReadonlyMap<CompiledRule, readonly CompiledAllow[]>,
  model?: ModelOutcome,
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
      result = detect(rule, norm, { entities: entities.get(rule.scanKey), threshold: rule.threshold, untrusted: !trusted }, record, allowed?.get(rule));
      scans.set(rule.scanKey, result);
    }
    const tally = tallies.get(rule)!;
    if (result instanceof Error) {
      tally.error = detectorFailure(rule, result);
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

/** `norm` with every allowed phrase or pattern match replaced by spaces in the original (same length: offsets stay valid). */
export function withoutAllowed(norm: NormalizedText, allow: readonly CompiledAllow[]): NormalizedText {
  const spans: [number, number][] = [];
  for (const a of allow) for (const f of a.finders) for (const m of f.scan(norm)) spans.push([m.start, m.end]);
  if (spans.length === 0) return norm;
  const chars = norm.original.split('');
  for (const [start, end] of spans) for (let i = start; i < end; i++) chars[i] = ' ';
  return normalizeText(chars.join(''));
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

/** Size rules measure all the text they apply to: characters and estimated tokens (exceededSize). */
export function sizeMatch(rule: CompiledRule, chars: number, tokens: number): Match | undefined {
  const first = exceededSize(rule, chars, tokens)[0];
  return first && { detector: 'size', entity: first.entity, start: 0, end: 0, score: 1, reason: first.reason };
}

/** The finding for `n` matches of one entity of a rule that fired; `score` is the highest, `tier` the one that decided. */
export function matchFinding(rule: CompiledRule, stage: Stage, entity: string, n: number, score: number, tier: Tier): Finding {
  const category = categoryOf(rule.detectorId, entity) ?? rule.category;
  return {
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
export function decide(
  rules: readonly CompiledRule[],
  tallies: Map<CompiledRule, RuleTally>,
  stage: Stage,
  record: StageRecord,
  readonlySegment: (segment: number | string) => boolean = () => false,
): Decided {
  const out: Decided = { spans: new Map(), blocking: new Set(), findings: [] };
  for (const rule of rules) {
    const tally = tallies.get(rule)!;
    const fired = tally.matches.length >= rule.minCount && tally.matches.length > 0;
    const mode = rule.monitor ? 'monitor' : 'enforce';
    let action: StageRecord['rules'][number]['action'] = fired ? rule.action : 'none';
    if (fired) {
      const perEntity = new Map<string, { n: number; score: number; tier: Tier }>();
      let unredactable: string | undefined;
      for (const { segment, text, match, tier, parts } of tally.matches) {
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
        if (rule.action === 'block') out.blocking.add(segment);
        if (rule.action === 'redact' && match.end > match.start) {
          for (const part of parts ?? [{ segment, start: match.start, end: match.end }]) {
            if (readonlySegment(part.segment)) unredactable ??= match.entity;
            const list = out.spans.get(part.segment) ?? [];
            list.push({ start: part.start, end: part.end, entity: match.entity, style: rule.redaction });
            out.spans.set(part.segment, list);
          }
        }
      }
      // Text that cannot be written back (object keys, multipart fields) cannot be redacted: refuse the request instead.
      if (unredactable !== undefined && !out.verdict) {
        out.verdict = blockVerdict(rule, stage, `${unredactable} in a field that cannot be redacted`);
        record.blockedBy = rule.id;
        record.action = 'block';
      }
      for (const [entity, { n, score, tier }] of perEntity) out.findings.push(matchFinding(rule, stage, entity, n, score, tier));
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
  if (stage === 'request') scanJoined(segments, rules, entities, tallies, record, allowed);
  for (const rule of rules) {
    if (rule.detector) continue;
    let chars = 0;
    let tokens = 0;
    for (const seg of segments) {
      // Token lists repeat the text of another segment.
      if ((rule.roles && !rule.roles.has(seg.role)) || seg.kind === 'token_list') continue;
      chars += seg.text.length;
      tokens += tokensForChars(seg.text.length);
    }
    const m = sizeMatch(rule, chars, tokens);
    if (m) tallies.get(rule)!.matches.push({ segment: -1, text: '', match: m });
  }
  const decided = decide(rules, tallies, stage, record, (key) => typeof key === 'number' && segments[key]?.readonly === true);
  // A blocked request is not sent at all; a blocked response still serves the choices no blocking rule matched in.
  if (!decided.verdict || stage === 'response') {
    for (const [key, spans] of decided.spans) {
      const seg = segments[key as number];
      editSegment(seg, applyRedactions(seg.text, spans, ctx));
    }
  }
  if (stage === 'response') {
    // A block that no one text carries (a size rule) withholds the whole answer.
    const whole = [...decided.blocking].some((key) => typeof key !== 'number' || segments[key] === undefined);
    for (const [i, seg] of segments.entries()) if (whole || decided.blocking.has(i)) seg.blocked = true;
  }
  record.ms = performance.now() - started;
  return { record, verdict: decided.verdict, findings: decided.findings };
}

/**
 * How much of each segment's start and end a joined view holds. A match across segments spans a boundary, so the
 * text near the boundaries is what the per-segment scans could not see; the middle of a long segment they did.
 */
const VIEW_WINDOW = 256;
/** Stands in for the middle of a long segment; a match across it is an artifact of the view and dropped. */
const GAP = '\n\n\n';

function buildView(key: string, segments: readonly Segment[], members: readonly number[], separator: string, trusted: boolean): View {
  const pieces: Piece[] = [];
  let text = '';
  for (const i of members) {
    if (pieces.length > 0) text += separator;
    const t = segments[i].text;
    if (t.length <= 2 * VIEW_WINDOW) {
      pieces.push({ segment: i, from: 0, to: t.length, at: text.length });
      text += t;
    } else {
      pieces.push({ segment: i, from: 0, to: VIEW_WINDOW, at: text.length });
      text += t.slice(0, VIEW_WINDOW) + GAP;
      pieces.push({ segment: i, from: t.length - VIEW_WINDOW, to: t.length, at: text.length });
      text += t.slice(t.length - VIEW_WINDOW);
    }
  }
  return { key, text, pieces, trusted };
}

/**
 * The texts an instruction split across messages or parts is whole in, per trust level: the segments joined turn
 * by turn with a line break (as chat templates put between turns and vLLM between parts), and concatenated with
 * nothing between (as TGI renders parts, and a word split across two turns reads). Only for two or more segments:
 * single segments are scanned on their own already.
 */
function joinedViews(segments: readonly Segment[], members: readonly number[]): View[] {
  const views: View[] = [];
  for (const trusted of [true, false]) {
    const group = members.filter((i) => segments[i].trusted === trusted);
    if (group.length < 2) continue;
    const level = trusted ? 'trusted' : 'untrusted';
    views.push(buildView(`joined:${level}`, segments, group, '\n', trusted), buildView(`concat:${level}`, segments, group, '', trusted));
  }
  return views;
}

/** A match in a view, as the stretch of each segment it covers; empty when it runs across a gap. */
function piecesOf(view: View, start: number, end: number): Array<{ segment: number; start: number; end: number }> {
  const out: Array<{ segment: number; start: number; end: number }> = [];
  for (const p of view.pieces) {
    const len = p.to - p.from;
    const s = Math.max(start, p.at);
    const e = Math.min(end, p.at + len);
    if (e > s || (start === end && start >= p.at && start <= p.at + len)) {
      if (out.length > 0 && out[out.length - 1].segment === p.segment) return [];
      out.push({ segment: p.segment, start: p.from + s - p.at, end: p.from + e - p.at });
    }
  }
  return out;
}

/**
 * Conversation-level scoring: runs each rule over the joined views of the segments it applies to and keeps what
 * the per-segment scans could not see — matches across segment boundaries (kept as one hit with a stretch per
 * segment, so a redaction lands in every segment it covers) and matches that only the surrounding turns make
 * (context words in the message before). Matches the per-segment scan already found are not counted twice.
 */
function scanJoined(
  segments: readonly Segment[],
  rules: readonly CompiledRule[],
  entities: Map<string, ReadonlySet<string> | undefined>,
  tallies: Map<CompiledRule, RuleTally>,
  record: StageRecord,
  allowed?: ReadonlyMap<CompiledRule, readonly CompiledAllow[]>,
): void {
  if (segments.length < 2) return;
  const byRoles = new Map<string, CompiledRule[]>();
  for (const rule of rules) {
    if (!rule.detector) continue;
    const key = rule.roles ? [...rule.roles].sort().join(',') : '*';
    byRoles.set(key, [...(byRoles.get(key) ?? []), rule]);
  }
  for (const group of byRoles.values()) {
    const roles = group[0].roles;
    const members = segments.map((_, i) => i).filter((i) => !roles || roles.has(segments[i].role));
    if (members.length < 2) continue;
    // Members already passed the group's role filter; scanText only needs a role the group accepts.
    const role = roles ? roles.values().next().value! : 'user';
    for (const view of joinedViews(segments, members)) {
      const viewTallies = new Map<CompiledRule, RuleTally>(group.map((r) => [r, { matches: [] }]));
      // Model scores are per segment; a view is judged by the heuristic tier.
      scanText(view.text, view.key, role, view.trusted, group, entities, viewTallies, record, allowed);
      for (const rule of group) {
        const found = viewTallies.get(rule)!;
        const tally = tallies.get(rule)!;
        if (found.error) tally.error ??= found.error;
        for (const { match } of found.matches) {
          const parts = piecesOf(view, match.start, match.end);
          if (parts.length === 0) continue;
          // A match a per-segment scan already found (or that only extends one across the boundary) is not new.
          const known = parts.some(({ segment, start, end }) => tally.matches.some((m) => m.segment === segment && m.match.entity === match.entity && m.match.start < end && start < m.match.end));
          if (known) continue;
          if (parts.length === 1) {
            const { segment, start, end } = parts[0];
            tally.matches.push({ segment, text: segments[segment].text, match: { ...match, start, end } });
          } else {
            const first = parts[0];
            const last = parts[parts.length - 1];
            const seen = tally.matches.some(
              (m) => m.parts && m.match.entity === match.entity && m.parts[0].segment === first.segment && m.parts[m.parts.length - 1].segment === last.segment,
            );
            if (!seen) tally.matches.push({ segment: `${view.key}:${first.segment}-${last.segment}`, text: view.text, match, parts });
          }
        }
      }
    }
  }
}
