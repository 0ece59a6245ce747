import { performance } from 'node:perf_hooks';
import type { ChannelFilter, ChannelKind, StreamInspector, StreamRelease } from '../protocols/stream-filter';
import { tokensForChars } from '../protocols/tokens';
import type { BlockVerdict, Exchange, Finding } from '../protocols/exchange';
import type { CompiledAllow, CompiledPolicy, CompiledRule } from './compile';
import { addHit, emptyStage, stronger, type HitRecord, type RuleRecord, type StageRecord } from './decision';
import type { Detector, Match } from './detectors';
import { addMs, allowedFor, blockVerdict, detect, detectorFailure, errorFinding, failsClosed, matchFinding, rulesFor, scanEntities, sizeMatch, withoutAllowed } from './engine';
import { normalizeText, type NormalizedText } from './normalize';
import { applyRedactions, evidence, type RedactionContext, type RedactionSpan } from './redact';

/** Streamed output is written by the model. */
const STREAM_ROLE = 'assistant';

/** Token lists repeat the text of another channel: size rules do not count them twice. */
const UNCOUNTED: ReadonlySet<ChannelKind> = new Set<ChannelKind>(['token_list']);

/** One detector run per drain, shared by the rules with the same scan key. */
interface ScanGroup {
  detector: Detector;
  rules: CompiledRule[];
  entities?: ReadonlySet<string>;
  threshold?: number;
  /** Allow-list entries of the group's one rule that apply to this exchange: their text is blanked before the scan. */
  allow?: readonly CompiledAllow[];
  /** Characters of released text the detector and the allow list's finders need before the held tail. */
  lookback: number;
}

/** What one rule has counted over the whole stream (all channels). */
interface RuleState {
  count: number;
  /** Matches per entity and their highest score, in first-seen order. */
  entities: Map<string, { n: number; score: number }>;
  /** Hits found before the rule reached min_count, recorded once it does (bounded like the record). */
  pendingHits: HitRecord[];
  error?: string;
  record: RuleRecord;
}

/** A match of one scan group in a channel's window, in window offsets of the original text. */
interface Found {
  group: ScanGroup;
  start: number;
  end: number;
  match: Match;
}

/** Stream-wide state: the rules, their counts, the size totals and the decision record. */
class StreamState {
  readonly groups: ScanGroup[];
  readonly sizeRules: CompiledRule[];
  /** Characters of released text a channel keeps as context for its detectors. */
  readonly lookback: number;
  readonly states = new Map<CompiledRule, RuleState>();
  readonly sizeFired = new Set<CompiledRule>();
  chars = 0;
  tokens = 0;
  private reported = -1;
  private version = 0;

  constructor(
    private readonly rules: readonly CompiledRule[],
    allowed: ReadonlyMap<CompiledRule, readonly CompiledAllow[]> | undefined,
    readonly maxHoldback: number,
    readonly ctx: RedactionContext,
    readonly record: StageRecord,
    private readonly report: (findings: Finding[], record: StageRecord) => void,
  ) {
    const byKey = new Map<string, ScanGroup>();
    const entities = scanEntities(rules);
    for (const rule of rules) {
      const rec: RuleRecord = { id: rule.id, detector: rule.detectorId, status: 'pass', mode: rule.monitor ? 'monitor' : 'enforce', action: 'none', hits: 0 };
      record.rules.push(rec);
      this.states.set(rule, { count: 0, entities: new Map(), pendingHits: [], record: rec });
      if (!rule.detector) continue;
      let g = byKey.get(rule.scanKey);
      // A rule with an allow list has a scan key of its own (compile.ts), so its group holds only that rule.
      const allow = allowed?.get(rule);
      if (!g) {
        const lookback = Math.max(rule.detector.lookback, ...(allow ?? []).flatMap((a) => a.finders.map((f) => f.lookback)));
        byKey.set(rule.scanKey, (g = { detector: rule.detector, rules: [], entities: entities.get(rule.scanKey), threshold: rule.threshold, lookback, ...(allow ? { allow } : {}) }));
      }
      g.rules.push(rule);
    }
    this.groups = [...byKey.values()];
    this.sizeRules = rules.filter((r) => !r.detector);
    this.lookback = Math.max(0, ...this.groups.map((g) => g.lookback));
  }

  fired(rule: CompiledRule): boolean {
    const st = this.states.get(rule)!;
    return st.count > 0 && st.count >= rule.minCount;
  }

  /** Rules that change the text (redact, block) hold their matches until min_count is decided. */
  holdsForCount(rule: CompiledRule): boolean {
    return rule.minCount > 1 && rule.action !== 'flag';
  }

  /** Counts one match of `rule`; returns its hit and whether the rule fires with it for the first time. */
  commit(rule: CompiledRule, channel: string, start: number, end: number, match: Match, value: string): { hit: HitRecord; first: boolean } {
    const st = this.states.get(rule)!;
    const before = this.fired(rule);
    st.count++;
    st.record.hits = st.count;
    const seen = st.entities.get(match.entity);
    st.entities.set(match.entity, { n: (seen?.n ?? 0) + 1, score: Math.max(seen?.score ?? 0, match.score) });
    const hit: HitRecord = {
      rule: rule.id,
      detector: match.detector,
      entity: match.entity,
      stage: 'response',
      segment: channel,
      start,
      end,
      score: match.score,
      evidence: value === '' ? '' : evidence(value),
      ...(match.reason ? { reason: match.reason } : {}),
      tier: 'heuristic',
      action: rule.action,
    };
    if (before) addHit(this.record, hit);
    else if (st.pendingHits.length < 100) st.pendingHits.push(hit);
    this.version++;
    if (before || !this.fired(rule)) return { hit, first: false };
    for (const h of st.pendingHits) addHit(this.record, h);
    st.pendingHits = [];
    st.record.status = 'hit';
    st.record.action = rule.action;
    if (rule.monitor) st.record.intended = rule.intended;
    this.record.action = stronger(this.record.action, rule.action);
    return { hit, first: true };
  }

  /**
   * A document-scope rule already counted on a channel scored the channel's grown window again: its hit follows
   * the latest match (entity, score, span), as the whole text's scan would report it. The match the rule fired on
   * stays counted: what was decided while the text streamed is not undone.
   */
  restate(rule: CompiledRule, hit: HitRecord, start: number, end: number, match: Match, value: string): void {
    if (hit.entity === match.entity && hit.score === match.score && hit.start === start && hit.end === end) return;
    const st = this.states.get(rule)!;
    const old = st.entities.get(hit.entity)!;
    if (--old.n === 0) st.entities.delete(hit.entity);
    Object.assign(hit, { entity: match.entity, start, end, score: match.score, evidence: evidence(value), reason: match.reason });
    const seen = st.entities.get(match.entity);
    st.entities.set(match.entity, { n: (seen?.n ?? 0) + 1, score: Math.max(seen?.score ?? 0, match.score) });
    this.version++;
  }

  /** A rule's detector failed: recorded once; returns the verdict when its on_error blocks. */
  failed(rule: CompiledRule, error: string): BlockVerdict | undefined {
    const st = this.states.get(rule)!;
    if (st.error) return undefined;
    st.error = error;
    st.record.status = 'not_evaluated';
    st.record.error = error;
    this.version++;
    if (!failsClosed(rule)) return undefined;
    st.record.action = 'block';
    this.record.action = 'block';
    this.record.blockedBy ??= rule.id;
    return blockVerdict(rule, 'response', 'the rule could not be evaluated and its on_error is block');
  }

  /** Adds a channel's new text to the size totals; returns the verdict of a size rule that blocks on it. */
  grow(kind: ChannelKind, before: number, after: number): BlockVerdict | undefined {
    if (UNCOUNTED.has(kind)) return undefined;
    this.chars += after - before;
    this.tokens += tokensForChars(after) - tokensForChars(before);
    let verdict: BlockVerdict | undefined;
    for (const rule of this.sizeRules) {
      if (this.sizeFired.has(rule)) continue;
      const m = sizeMatch(rule, this.chars, this.tokens);
      if (!m) continue;
      this.sizeFired.add(rule);
      this.commit(rule, '', 0, 0, m, '');
      if (rule.action === 'block' && !verdict) verdict = this.blocked(rule, m.entity);
    }
    return verdict;
  }

  blocked(rule: CompiledRule, entities: string): BlockVerdict {
    this.record.blockedBy ??= rule.id;
    return blockVerdict(rule, 'response', `${entities} detected`);
  }

  /** Tells the exchange the stream's findings when they changed: one per rule and entity, in policy order. */
  flushFindings(): void {
    if (this.version === this.reported) return;
    this.reported = this.version;
    const findings: Finding[] = [];
    for (const rule of this.rules) {
      const st = this.states.get(rule)!;
      // The stream is judged by the detectors alone: the model tier answers for complete texts only.
      if (this.fired(rule)) for (const [entity, { n, score }] of st.entities) findings.push(matchFinding(rule, 'response', entity, n, score, 'heuristic'));
      if (st.error) findings.push(errorFinding(rule, 'response', st.error));
    }
    this.report(findings, this.record);
  }
}

/** Smallest index of normalized text whose source starts at or after original index `orig`. */
function normIndex(nt: NormalizedText, orig: number): number {
  let lo = 0;
  let hi = nt.text.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (nt.toOriginal(mid) < orig) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Where an allowed phrase or pattern that may still complete begins (an original offset into `nt`), if one does:
 * its text waits, since the rule must not judge what the allow list may yet blank.
 */
function pendingAllowed(allow: readonly CompiledAllow[], nt: NormalizedText, rel: number): number | undefined {
  const from = normIndex(nt, rel);
  let tail = 0;
  for (const a of allow) for (const f of a.finders) tail = Math.max(tail, f.pendingTail(nt.text, from));
  return tail > 0 ? nt.toOriginal(nt.text.length - tail) : undefined;
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

/**
 * One stream channel. Every drain scans a bounded window of the channel's text, on normalized text: the
 * context already released (each detector's lookback) plus the held tail, so a value is judged with the words
 * before it even when those were released long ago. It then releases everything up to the earliest point a
 * detector says may still become (part of) a match, or where a match may still grow or change, and decides
 * each match before any character of it is released. Decisions therefore equal those on the whole text.
 */
class HoldbackFilter implements ChannelFilter {
  /** The channel's text from `base` on: released context followed by the held tail. */
  private text = '';
  private base = 0;
  /** Absolute offset up to which text was released. */
  private released = 0;
  private done = false;
  /** The hit of each document-scope rule (injection, toxicity, harmful intent) counted on this channel. */
  private readonly documentHits = new Map<CompiledRule, HitRecord>();

  constructor(private readonly s: StreamState, private readonly key: string, private readonly kind: ChannelKind) {}

  push(delta: string): StreamRelease {
    if (this.done) return { text: '' };
    const before = this.base + this.text.length;
    this.text += delta;
    const sizeBlock = this.s.grow(this.kind, before, before + delta.length);
    if (sizeBlock) return this.stop(sizeBlock);
    return this.drain(false);
  }

  end(): StreamRelease {
    if (this.done) return { text: '' };
    const out = this.drain(true);
    this.done = true;
    return out;
  }

  private stop(verdict: BlockVerdict): StreamRelease {
    this.done = true;
    this.text = '';
    this.s.flushFindings();
    return { text: '', block: verdict };
  }

  private drain(final: boolean): StreamRelease {
    const started = performance.now();
    try {
      return this.release(final);
    } finally {
      this.s.record.ms += performance.now() - started;
    }
  }

  private release(final: boolean): StreamRelease {
    const s = this.s;
    const text = this.text;
    const n = text.length;
    const rel = this.released - this.base;
    const found: Found[] = [];
    let hold = n;
    let verdict: BlockVerdict | undefined;
    if (n > rel) {
      const windows = new Map<number, NormalizedText>();
      for (const g of s.groups) {
        const document = g.detector.scope === 'document';
        const start = Math.max(0, rel - g.lookback);
        let nt = windows.get(start);
        if (!nt) {
          const t = performance.now();
          windows.set(start, (nt = normalizeText(start === 0 ? text : text.slice(start))));
          addMs(s.record, 'normalize', performance.now() - t);
        }
        let seen = nt;
        if (g.allow) {
          const pending = final ? undefined : pendingAllowed(g.allow, nt, rel - start);
          if (pending !== undefined) {
            hold = Math.min(hold, start + pending);
            // A document-scope rule decides once the allowed phrase is complete (its window still holds the text).
            if (document) continue;
          }
          try {
            seen = withoutAllowed(nt, g.allow);
          } catch (err) {
            for (const rule of g.rules) verdict ??= s.failed(rule, detectorFailure(rule, err instanceof Error ? err : new Error(String(err))));
            continue;
          }
        }
        const from = normIndex(seen, rel - start);
        const result = detect(g.rules[0], seen, { entities: g.entities, threshold: g.threshold, from }, s.record);
        if (result instanceof Error) {
          for (const rule of g.rules) verdict ??= s.failed(rule, detectorFailure(rule, result));
          continue;
        }
        for (const m of result) {
          const mStart = start + m.start;
          if (!document && mStart < rel) continue;
          found.push({ group: g, start: mStart, end: start + m.end, match: m });
        }
        if (final || document) continue;
        const t = performance.now();
        const tail = g.detector.pendingTail(seen.text, from, g.entities);
        addMs(s.record, g.rules[0].detectorId, performance.now() - t);
        if (tail > 0) hold = Math.min(hold, start + seen.toOriginal(seen.text.length - tail));
      }
    }
    if (verdict) return this.stop(verdict);
    const cut = final ? n : this.cutBefore(found, rel, Math.max(rel, hold));

    const candidates: Array<{ rule: CompiledRule; span: RedactionSpan }> = [];
    for (const f of found) {
      const document = f.group.detector.scope === 'document';
      if (!document && f.end > cut) continue;
      for (const rule of f.group.rules) {
        if (rule.entities && !rule.entities.has(f.match.entity)) continue;
        const counted = document ? this.documentHits.get(rule) : undefined;
        if (counted) {
          s.restate(rule, counted, this.base + f.start, this.base + f.end, f.match, text.slice(f.start, f.end));
          continue;
        }
        const { hit, first } = s.commit(rule, this.key, this.base + f.start, this.base + f.end, f.match, text.slice(f.start, f.end));
        if (document) this.documentHits.set(rule, hit);
        if (first && rule.action === 'block') verdict ??= s.blocked(rule, f.match.entity);
        const start = Math.max(f.start, rel);
        const end = Math.min(f.end, cut);
        if (rule.action === 'redact' && end > start) candidates.push({ rule, span: { start: start - rel, end: end - rel, entity: f.match.entity, style: rule.redaction } });
      }
    }
    if (verdict) return this.stop(verdict);
    // Only rules that have fired redact (a rule short of min_count at the end of the stream redacts nothing).
    const spans = candidates.filter((c) => s.fired(c.rule)).map((c) => c.span);
    s.flushFindings();
    const piece = text.slice(rel, cut);
    this.released = this.base + cut;
    this.trim();
    return { text: spans.length > 0 ? applyRedactions(piece, spans, s.ctx) : piece };
  }

  /**
   * Where this drain may release up to: before any match that may still grow (it reaches the end of the text)
   * or straddles the point the detectors hold from, before the matches of a rule still short of min_count, and
   * never inside a surrogate pair. Past max_holdback_chars of held text, everything is released (counted).
   */
  private cutBefore(found: Found[], rel: number, hold: number): number {
    const n = this.text.length;
    let cut = hold;
    let moved = true;
    while (moved) {
      moved = false;
      for (const f of found) {
        if (f.group.detector.scope === 'document' || f.start >= cut) continue;
        if (f.end > cut || f.end >= n) {
          cut = f.start;
          moved = true;
        }
      }
      for (const g of this.s.groups) {
        for (const rule of g.rules) {
          if (!this.s.holdsForCount(rule)) continue;
          let count = 0;
          let first = cut;
          for (const f of found) {
            if (f.group !== g || f.end > cut || (rule.entities && !rule.entities.has(f.match.entity))) continue;
            count++;
            first = Math.min(first, f.start);
          }
          if (count > 0 && !this.s.fired(rule) && this.s.states.get(rule)!.count + count < rule.minCount && first < cut) {
            cut = first;
            moved = true;
          }
        }
      }
    }
    if (n - cut > this.s.maxHoldback) {
      this.s.record.holdbackOverflows = (this.s.record.holdbackOverflows ?? 0) + 1;
      return n;
    }
    if (cut > rel && cut < n && isHighSurrogate(this.text.charCodeAt(cut - 1))) cut--;
    return Math.max(cut, rel);
  }

  /** Keeps only the released context the detectors still need before the held text. */
  private trim(): void {
    let keep = Math.max(this.base, this.released - this.s.lookback);
    if (keep > this.base && isHighSurrogate(this.text.charCodeAt(keep - this.base - 1))) keep--;
    if (keep === this.base) return;
    this.text = this.text.slice(keep - this.base);
    this.base = keep;
  }
}

/**
 * A StreamInspector for the response-stage rules that apply to this exchange, or undefined when none do (the
 * stream then flows untouched). `report` hears the stream's findings (all of them, in policy order) whenever
 * they change; the record is shared and grows.
 */
export function createHoldbackInspector(
  policy: CompiledPolicy,
  ex: Exchange,
  ctx: RedactionContext,
  report: (findings: Finding[], record: StageRecord) => void,
): { inspector: StreamInspector; record: StageRecord } | undefined {
  const applicable = rulesFor(policy, ex, 'response').filter((r) => !r.roles || r.roles.has(STREAM_ROLE));
  if (applicable.length === 0) return undefined;
  const record = emptyStage(true);
  const state = new StreamState(applicable, allowedFor(applicable, ex), policy.maxHoldback, ctx, record, report);
  return {
    record,
    inspector: { channel: (key: string, kind: ChannelKind) => new HoldbackFilter(state, key, kind) },
  };
}
