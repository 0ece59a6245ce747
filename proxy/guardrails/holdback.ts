import { performance } from 'node:perf_hooks';
import type { Exchange, Finding } from '../protocols/exchange';
import type { ChannelFilter, ChannelKind, StreamInspector, StreamRelease } from '../hooks';
import type { CompiledPolicy, CompiledRule } from './compile';
import { addHit, emptyStage, stronger, type StageRecord } from './decision';
import type { Detector } from './detectors';
import { decide, rulesFor, scanEntities, scanText, sizeMatch, type RuleTally } from './engine';
import { applyRedactions, type RedactionContext } from './redact';

/** Streamed output is written by the model. */
const STREAM_ROLE = 'assistant';

interface Shared {
  rules: CompiledRule[];
  sizeRules: CompiledRule[];
  detectors: Detector[];
  entities: ReturnType<typeof scanEntities>;
  maxHoldback: number;
  ctx: RedactionContext;
  record: StageRecord;
  report(findings: Finding[], record: StageRecord): void;
}

/** Fold one drain's record into the stream's record: rules by id, hits appended, times summed. */
function merge(into: StageRecord, from: StageRecord): void {
  into.action = stronger(into.action, from.action);
  into.blockedBy ??= from.blockedBy;
  for (const r of from.rules) {
    const cur = into.rules.find((x) => x.id === r.id);
    if (!cur) into.rules.push(r);
    else {
      cur.hits += r.hits;
      if (r.status === 'not_evaluated' || (r.status === 'hit' && cur.status === 'pass')) cur.status = r.status;
      if (r.action !== 'none') cur.action = r.action;
      if (r.intended) cur.intended = r.intended;
      if (r.error) cur.error = r.error;
    }
  }
  for (const h of from.hits) addHit(into, h);
  into.hitsDropped = (into.hitsDropped ?? 0) + (from.hitsDropped ?? 0) || undefined;
  for (const [k, v] of Object.entries(from.detectorMs)) into.detectorMs[k] = (into.detectorMs[k] ?? 0) + v;
}

/**
 * Holds back only the tail of a channel that could still become (part of) a match, scans everything before it,
 * redacts or blocks, and releases the rest at once. Ordinary prose has no pending tail, so it flows with no delay.
 */
class HoldbackFilter implements ChannelFilter {
  private pending = '';
  private total = 0;
  private done = false;
  private readonly sizeFired = new Set<CompiledRule>();

  constructor(private readonly s: Shared, private readonly key: string) {}

  push(delta: string): StreamRelease {
    if (this.done) return { text: '' };
    this.pending += delta;
    this.total += delta.length;
    return this.drain(false);
  }

  end(): StreamRelease {
    if (this.done) return { text: '' };
    const out = this.drain(true);
    this.done = true;
    return out;
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
    const tallies = new Map<CompiledRule, RuleTally>();
    for (const rule of s.sizeRules) {
      if (this.sizeFired.has(rule)) continue;
      const m = sizeMatch(rule, this.total, Math.ceil(this.total / 4));
      if (m) {
        this.sizeFired.add(rule);
        tallies.set(rule, { matches: [{ segment: this.key, text: '', match: m }] });
      }
    }
    const text = this.pending;
    let cut = text.length;
    if (!final && text.length > 0) {
      let hold = 0;
      for (const d of s.detectors) hold = Math.max(hold, d.pendingTail(text));
      if (hold > s.maxHoldback) s.record.holdbackOverflows = (s.record.holdbackOverflows ?? 0) + 1;
      else cut -= Math.min(hold, text.length);
    }
    if (cut > 0 && s.rules.length > 0) {
      for (const rule of s.rules) tallies.set(rule, { matches: [] });
      scanText(text, this.key, STREAM_ROLE, true, s.rules, s.entities, tallies, s.record);
      if (!final) cut = this.cutBeforeOpenMatches(tallies, cut);
      for (const rule of s.rules) {
        const t = tallies.get(rule)!;
        t.matches = t.matches.filter((m) => m.match.end <= cut);
        if (t.matches.length === 0 && !t.error) tallies.delete(rule);
      }
    }
    if (tallies.size === 0) return { text: this.take(cut) };
    const rules = [...tallies.keys()];
    const drainRecord = emptyStage(true);
    const decided = decide(rules, tallies, 'response', drainRecord);
    merge(s.record, drainRecord);
    s.report(decided.findings, s.record);
    if (decided.verdict) {
      this.done = true;
      this.pending = '';
      return { text: '', block: decided.verdict };
    }
    const spans = decided.spans.get(this.key);
    const released = this.take(cut);
    return { text: spans ? applyRedactions(released, spans, s.ctx) : released };
  }

  /** A complete match may still straddle the cut (a detector's tail estimate is only about prefixes): keep it whole. */
  private cutBeforeOpenMatches(tallies: Map<CompiledRule, RuleTally>, cut: number): number {
    let moved = true;
    while (moved) {
      moved = false;
      for (const t of tallies.values()) {
        for (const { match } of t.matches) {
          if (match.start < cut && match.end > cut) {
            cut = match.start;
            moved = true;
          }
        }
      }
    }
    return cut;
  }

  private take(cut: number): string {
    const out = this.pending.slice(0, cut);
    this.pending = this.pending.slice(cut);
    return out;
  }
}

/**
 * A StreamInspector for the response-stage rules that apply to this exchange, or undefined when none do (the
 * stream then flows untouched). `report` hears about findings as they happen; the record is shared and grows.
 */
export function createHoldbackInspector(
  policy: CompiledPolicy,
  ex: Exchange,
  ctx: RedactionContext,
  report: (findings: Finding[], record: StageRecord) => void,
): { inspector: StreamInspector; record: StageRecord } | undefined {
  const applicable = rulesFor(policy, ex, 'response').filter((r) => !r.roles || r.roles.has(STREAM_ROLE));
  if (applicable.length === 0) return undefined;
  const rules = applicable.filter((r) => r.detector);
  const detectors = [...new Set(rules.map((r) => r.detector!))];
  const record = emptyStage(true);
  for (const r of applicable) {
    record.rules.push({ id: r.id, detector: r.detectorId, status: 'pass', mode: r.monitor ? 'monitor' : 'enforce', action: 'none', hits: 0 });
  }
  const shared: Shared = {
    rules,
    sizeRules: applicable.filter((r) => !r.detector),
    detectors,
    entities: scanEntities(rules),
    maxHoldback: policy.maxHoldback,
    ctx,
    record,
    report,
  };
  return {
    record,
    inspector: { channel: (key: string, _kind: ChannelKind) => new HoldbackFilter(shared, key) },
  };
}
