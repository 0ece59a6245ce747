import { fmt } from '../support';

/**
 * The pure half of `npm run bench:peers`: per-round samples in, medians with spread, ratios and target
 * verdicts out. Kept apart from process handling so the arithmetic is unit-tested.
 */

export const SCHEMA = 'akto-agent-proxy.bench-peers/1';

export interface Scenario {
  /** e.g. `chat-0ms@500`, `chat-50ms@max`, `stream-0ms` */
  id: string;
  kind: 'chat' | 'stream';
  serviceMs: number;
  /** Paced requests/s; null = saturation (closed loop, fixed connections). */
  rate: number | null;
}

/** One measurement of one system in one scenario in one round. Latencies in ms (TTFT for streams). */
export interface Sample {
  p50: number;
  p90: number;
  p99: number;
  rps: number;
  requests: number;
  errors: number;
  late: number;
  /** CPU seconds the system's processes spent per 1,000 requests. */
  cpuSecPer1k: number;
}

export type Metric =
  | 'p50'
  | 'p90'
  | 'p99'
  | 'addedP50'
  | 'addedP90'
  | 'addedP99'
  | 'ratioP50ToDirect'
  | 'addedP50ToNginx'
  | 'rps'
  | 'rpsToDirect'
  | 'cpuSecPer1k'
  | 'errorRate';

export interface ScenarioResult {
  scenario: Scenario;
  rounds: Sample[];
  median: Partial<Record<Metric, number>>;
  spread: Partial<Record<Metric, [number, number]>>;
  /** A paced run that fell behind its rate (or erred): its latencies measure queueing, not the hop. */
  overCapacity: boolean;
}

export interface SystemResult {
  name: string;
  describe: string;
  peakRssMiB: number;
  scenarios: ScenarioResult[];
}

export interface Target {
  id: string;
  description: string;
  value: number | null;
  limit: number | null;
  met: boolean | null;
}

export function median(xs: number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A paced run counts as over capacity when it delivered < 95 % of its rate, sent > 5 % late, or > 1 % erred. */
export function overCapacity(scenario: Scenario, s: Sample): boolean {
  const erred = s.errors > 0.01 * Math.max(1, s.requests);
  if (scenario.rate === null) return erred;
  return erred || s.rps < 0.95 * scenario.rate || s.late > 0.05 * Math.max(1, s.requests);
}

/**
 * Medians and [min, max] over rounds. Differences to direct and nginx are taken round by round (each
 * round measures every system back to back), then summarised, so slow drift of the machine cancels.
 */
export function summarise(scenario: Scenario, rounds: Sample[], direct: Sample[], nginx: Sample[] | undefined): ScenarioResult {
  const perRound: Record<Metric, number[]> = {
    p50: [], p90: [], p99: [], addedP50: [], addedP90: [], addedP99: [], ratioP50ToDirect: [], addedP50ToNginx: [], rps: [], rpsToDirect: [], cpuSecPer1k: [], errorRate: [],
  };
  rounds.forEach((s, i) => {
    const d = direct[i];
    const n = nginx?.[i];
    perRound.p50.push(s.p50);
    perRound.p90.push(s.p90);
    perRound.p99.push(s.p99);
    perRound.rps.push(s.rps);
    perRound.cpuSecPer1k.push(s.cpuSecPer1k);
    perRound.errorRate.push(s.errors / Math.max(1, s.requests + s.errors));
    if (d) {
      perRound.addedP50.push(s.p50 - d.p50);
      perRound.addedP90.push(s.p90 - d.p90);
      perRound.addedP99.push(s.p99 - d.p99);
      perRound.ratioP50ToDirect.push(s.p50 / d.p50);
      perRound.rpsToDirect.push(s.rps / d.rps);
      if (n) perRound.addedP50ToNginx.push((s.p50 - d.p50) / Math.max(n.p50 - d.p50, 0.001));
    }
  });
  const med: Partial<Record<Metric, number>> = {};
  const spread: Partial<Record<Metric, [number, number]>> = {};
  for (const [k, xs] of Object.entries(perRound) as [Metric, number[]][]) {
    const finite = xs.filter(Number.isFinite);
    if (finite.length === 0) continue;
    med[k] = median(finite);
    spread[k] = [Math.min(...finite), Math.max(...finite)];
  }
  return { scenario, rounds, median: med, spread, overCapacity: rounds.some((s) => overCapacity(scenario, s)) };
}

const find = (sys: SystemResult | undefined, id: string): ScenarioResult | undefined => sys?.scenarios.find((s) => s.scenario.id === id);

/** The targets for this proxy with the default pack, judged on the medians. */
export function judgeTargets(systems: SystemResult[], rates: number[]): Target[] {
  const by = (name: string): SystemResult | undefined => systems.find((s) => s.name === name);
  const ours = by('akto-default');
  const targets: Target[] = [];
  const at500 = find(ours, 'chat-0ms@500');
  const limit = (id: string, description: string, value: number | undefined, max: number): void => {
    targets.push({ id, description, value: value ?? null, limit: max, met: value === undefined ? null : value <= max });
  };
  limit('added-p50-500', 'akto-default added p50 at 500 req/s (0 ms service) <= 1 ms', at500?.median.addedP50, 1);
  limit('added-p99-500', 'akto-default added p99 at 500 req/s (0 ms service) <= 5 ms', at500?.median.addedP99, 5);
  limit('nginx-3x', 'akto-default added p50 within 3x of nginx’s at 500 req/s (0 ms service)', at500?.median.addedP50ToNginx, 3);
  for (const peer of ['portkey', 'litellm']) {
    const theirs = by(peer);
    if (!theirs || !ours) {
      targets.push({ id: `below-${peer}`, description: `akto-default adds less latency than ${peer} at every rate`, value: null, limit: null, met: null });
      continue;
    }
    const ids = ours.scenarios.filter((s) => s.scenario.kind === 'chat').map((s) => s.scenario.id);
    const losses = ids.filter((id) => {
      const a = find(ours, id);
      const b = find(theirs, id);
      // A peer over capacity at this rate has unbounded latency: ours is lower unless ours is over capacity too.
      if (!a || !b) return false;
      if (b.overCapacity && !a.overCapacity) return false;
      if (a.overCapacity && !b.overCapacity) return true;
      return (a.median.addedP50 ?? Infinity) > (b.median.addedP50 ?? Infinity);
    });
    targets.push({
      id: `below-${peer}`,
      description: `akto-default adds less p50 latency than ${peer} in every chat scenario (rates ${rates.join(', ')} req/s and saturation, 0 and 50 ms)`,
      value: losses.length,
      limit: 0,
      met: losses.length === 0,
    });
  }
  return targets;
}

/** "0.66 (0.61–0.70)": the median and its spread over rounds; a star marks an over-capacity run. */
export function cell(r: ScenarioResult | undefined, metric: Metric, digits = 2): string {
  if (!r || r.median[metric] === undefined) return '-';
  const [lo, hi] = r.spread[metric]!;
  const star = r.overCapacity && metric !== 'rps' && metric !== 'rpsToDirect' ? '*' : '';
  const m = fmt(r.median[metric]!, digits);
  return r.rounds.length > 1 ? `${m}${star} (${fmt(lo, digits)}–${fmt(hi, digits)})` : `${m}${star}`;
}
