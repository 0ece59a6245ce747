import type { Severity } from '../protocols/exchange';
import { Ewma, newEwma, observe, zScore } from './ewma';
import type { AnomalyConfig, Escalation } from './policy';

export type AnomalyRuleId =
  | 'anomaly.spike.request_rate'
  | 'anomaly.spike.prompt_size'
  | 'anomaly.spike.tool_calls'
  | 'anomaly.loop'
  | 'anomaly.probing'
  | 'anomaly.output_jump'
  | 'anomaly.error_burst';

/** One detection: which rule, on what metric, the baseline it was compared with and what was seen. */
export interface Alert {
  ruleId: AnomalyRuleId;
  metric: string;
  observed: number;
  /** Baseline mean (EWMA) of the metric, or the count threshold for windowed detectors. */
  baseline: number;
  /** Baseline standard deviation, for z-score detectors. */
  stddev?: number;
  explanation: string;
  severity: Severity;
  escalate?: Escalation;
}

export interface Incident {
  id: string;
  firstSeen: number;
  lastSeen: number;
  count: number;
  lastLogged: number;
}

/** Distinct recent prompts remembered per identity for loop detection (the arrays below have this length). */
const LOOP_SLOTS = 8;

/** Baselines and windows of one identity (or of the whole workload). Fixed size: O(1) per request. */
export interface AnomalyState {
  rate: Ewma;
  rateStart: number;
  rateCount: number;
  rateFired: boolean;
  prompt: Ewma;
  completion: Ewma;
  tools: Ewma;
  hitRate: Ewma;
  errorRate: Ewma;
  // Plain arrays: typed arrays cost microseconds to allocate, and a state is made per new identity.
  loopFp: number[];
  loopCount: number[];
  loopFirst: number[];
  loopNext: number;
  hitsStart: number;
  hitsCount: number;
  /** Sliding-window counters for errors: current and previous aligned window. */
  errWindow: number;
  errCur: number;
  errPrev: number;
  totCur: number;
  totPrev: number;
  incidents?: Map<AnomalyRuleId, Incident>;
  /** Escalations in force (identity states only). */
  blockedUntil: number;
  blockedBy?: AnomalyRuleId;
  packUntil: number;
  pack?: string;
}

export function newAnomalyState(now: number): AnomalyState {
  return {
    rate: newEwma(),
    rateStart: now,
    rateCount: 0,
    rateFired: false,
    prompt: newEwma(),
    completion: newEwma(),
    tools: newEwma(),
    hitRate: newEwma(),
    errorRate: newEwma(),
    loopFp: [0, 0, 0, 0, 0, 0, 0, 0],
    loopCount: [0, 0, 0, 0, 0, 0, 0, 0],
    loopFirst: [0, 0, 0, 0, 0, 0, 0, 0],
    loopNext: 0,
    hitsStart: now,
    hitsCount: 0,
    errWindow: -1,
    errCur: 0,
    errPrev: 0,
    totCur: 0,
    totPrev: 0,
    blockedUntil: 0,
    packUntil: 0,
  };
}

// Absolute standard-deviation floors, in each metric's unit.
const FLOOR_RATE = 1;
const FLOOR_PROMPT_CHARS = 100;
const FLOOR_TOOLS = 1;
const FLOOR_COMPLETION_TOKENS = 10;

const fmt = (x: number): string => (Number.isInteger(x) ? String(x) : x.toFixed(2));

export interface RequestSignals {
  promptChars: number;
  /** Fingerprint of the newest prompt segment; undefined when there is no text (loop check skipped). */
  fingerprint?: number;
}

/** Request-time detectors: request-rate spike, prompt-size spike, runaway loop. Updates baselines. */
export function onRequestSignals(s: AnomalyState, cfg: AnomalyConfig, now: number, sig: RequestSignals, out: Alert[]): void {
  const { spike, loop, alpha, warmup } = cfg;

  // Request rate: requests counted per interval; the baseline learns each closed interval that had
  // requests. Idle intervals are left out on purpose: agents work in sessions, and the first busy
  // interval after an idle hour is their normal pace, not a spike.
  const interval = spike.rateIntervalMs;
  const elapsed = now - s.rateStart;
  if (elapsed >= interval) {
    if (s.rateCount > 0) observe(s.rate, s.rateCount, alpha);
    s.rateStart += Math.floor(elapsed / interval) * interval;
    s.rateCount = 0;
    s.rateFired = false;
  }
  s.rateCount++;
  if (spike.enabled && spike.metrics.has('request_rate') && !s.rateFired && s.rate.n >= warmup) {
    // Counts are at least Poisson-noisy: never assume a deviation below sqrt(mean).
    const z = zScore(s.rate, s.rateCount, spike.minStddevRatio, Math.max(FLOOR_RATE, Math.sqrt(s.rate.mean)));
    if (z >= spike.z) {
      s.rateFired = true;
      out.push(zAlert('anomaly.spike.request_rate', `requests per ${interval / 1000}s`, s.rateCount, s.rate, z, spike.severity, spike.escalate));
    }
  }

  if (spike.enabled && spike.metrics.has('prompt_size') && s.prompt.n >= warmup) {
    const z = zScore(s.prompt, sig.promptChars, spike.minStddevRatio, FLOOR_PROMPT_CHARS);
    if (z >= spike.z) out.push(zAlert('anomaly.spike.prompt_size', 'prompt characters', sig.promptChars, s.prompt, z, spike.severity, spike.escalate));
  }
  observe(s.prompt, sig.promptChars, alpha);

  if (loop.enabled && sig.fingerprint !== undefined) {
    const count = countRepeat(s, sig.fingerprint, now, loop.windowMs);
    if (count >= loop.repeats) {
      out.push({
        ruleId: 'anomaly.loop',
        metric: 'repeated prompt',
        observed: count,
        baseline: loop.repeats,
        explanation: `the same prompt was sent ${count} times within ${loop.windowMs / 1000}s (threshold ${loop.repeats}): a runaway agent loop?`,
        severity: loop.severity,
        escalate: loop.escalate,
      });
    }
  }
}

/** Counts this fingerprint in the small per-identity table; the oldest slot is reused for a new one. */
function countRepeat(s: AnomalyState, fp: number, now: number, windowMs: number): number {
  for (let i = 0; i < LOOP_SLOTS; i++) {
    if (s.loopCount[i] > 0 && s.loopFp[i] === fp) {
      if (now - s.loopFirst[i] > windowMs) {
        s.loopFirst[i] = now;
        s.loopCount[i] = 1;
      } else {
        s.loopCount[i]++;
      }
      return s.loopCount[i];
    }
  }
  const slot = s.loopNext;
  s.loopNext = (slot + 1) % LOOP_SLOTS;
  s.loopFp[slot] = fp;
  s.loopCount[slot] = 1;
  s.loopFirst[slot] = now;
  return 1;
}

export interface CompletionSignals {
  /** False when the upstream was never reached (blocked before, or it failed): size metrics skipped. */
  answered: boolean;
  completionTokens: number;
  toolCalls: number;
  guardrailHit: boolean;
  upstreamError: boolean;
}

/** Completion-time detectors: probing, output-size jump, tool-call spike, upstream error burst. */
export function onCompleteSignals(s: AnomalyState, cfg: AnomalyConfig, now: number, sig: CompletionSignals, out: Alert[]): void {
  const { spike, probing, outputJump, errorBurst, alpha, warmup } = cfg;

  observe(s.hitRate, sig.guardrailHit ? 1 : 0, alpha);
  if (sig.guardrailHit) {
    if (now - s.hitsStart > probing.windowMs) {
      s.hitsStart = now;
      s.hitsCount = 0;
    }
    s.hitsCount++;
    if (probing.enabled && s.hitsCount >= probing.hits) {
      out.push({
        ruleId: 'anomaly.probing',
        metric: 'guardrail hits',
        observed: s.hitsCount,
        baseline: probing.hits,
        explanation: `${s.hitsCount} requests hit a guardrail within ${probing.windowMs / 1000}s (threshold ${probing.hits}; usual hit rate ${fmt(s.hitRate.mean)} per request): injection probing?`,
        severity: probing.severity,
        escalate: probing.escalate,
      });
    }
  }

  if (sig.answered) {
    const x = sig.completionTokens;
    const c = s.completion;
    if (outputJump.enabled && c.n >= warmup && x >= outputJump.minTokens && x >= outputJump.ratio * c.mean) {
      const z = zScore(c, x, spike.minStddevRatio, FLOOR_COMPLETION_TOKENS);
      if (z >= outputJump.z) {
        out.push({
          ruleId: 'anomaly.output_jump',
          metric: 'completion tokens',
          observed: x,
          baseline: c.mean,
          stddev: Math.sqrt(c.variance),
          explanation: `completion of ${x} tokens is ${fmt(x / Math.max(c.mean, 1))}x the usual ${fmt(c.mean)} (z=${fmt(z)}): possible data exfiltration`,
          severity: outputJump.severity,
          escalate: outputJump.escalate,
        });
      }
    }
    observe(c, x, alpha);

    if (spike.enabled && spike.metrics.has('tool_calls') && s.tools.n >= warmup) {
      const z = zScore(s.tools, sig.toolCalls, spike.minStddevRatio, FLOOR_TOOLS);
      if (z >= spike.z) out.push(zAlert('anomaly.spike.tool_calls', 'tool calls per response', sig.toolCalls, s.tools, z, spike.severity, spike.escalate));
    }
    observe(s.tools, sig.toolCalls, alpha);
  }

  if (sig.answered || sig.upstreamError) {
    observe(s.errorRate, sig.upstreamError ? 1 : 0, alpha);
    // Sliding window estimated from two aligned fixed windows: the previous one weighted by how
    // much of it still overlaps the last `windowMs`.
    const w = errorBurst.windowMs;
    const index = Math.floor(now / w);
    if (index !== s.errWindow) {
      const adjacent = index === s.errWindow + 1;
      s.errPrev = adjacent ? s.errCur : 0;
      s.totPrev = adjacent ? s.totCur : 0;
      s.errCur = 0;
      s.totCur = 0;
      s.errWindow = index;
    }
    s.totCur++;
    if (sig.upstreamError) {
      s.errCur++;
      const overlap = 1 - (now - index * w) / w;
      const errors = s.errCur + s.errPrev * overlap;
      const total = s.totCur + s.totPrev * overlap;
      if (errorBurst.enabled && errors >= errorBurst.errors && errors / total >= errorBurst.rate) {
        out.push({
          ruleId: 'anomaly.error_burst',
          metric: 'upstream errors',
          observed: Math.round(errors),
          baseline: errorBurst.errors,
          explanation: `${Math.round(errors)} of ${Math.round(total)} requests failed upstream within ${w / 1000}s (usual error rate ${fmt(s.errorRate.mean)})`,
          severity: errorBurst.severity,
          escalate: errorBurst.escalate,
        });
      }
    }
  }
}

function zAlert(ruleId: AnomalyRuleId, metric: string, x: number, e: Ewma, z: number, severity: Severity, escalate?: Escalation): Alert {
  const sd = Math.sqrt(e.variance);
  return {
    ruleId,
    metric,
    observed: x,
    baseline: e.mean,
    stddev: sd,
    explanation: `${metric} ${fmt(x)} against a baseline of ${fmt(e.mean)} ± ${fmt(sd)} (z=${fmt(z)})`,
    severity,
    escalate,
  };
}
