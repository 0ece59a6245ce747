/**
 * `npm run eval:peers -- [--data DIR] [--format table|json] [--peers presidio,detect-secrets]`
 *
 * Our PII and secrets detectors next to Microsoft Presidio's analyzer (pii.jsonl) and Yelp's detect-secrets
 * (secrets.jsonl), on the same rows, scored by the same code as `npm run eval`: span-level precision/recall/F1
 * per entity for PII (matchSpans), row-level precision/recall/false-positive rate for secrets, and CPU time per
 * MB of text. Each peer is installed outside the repo by bench/peers/install.sh and run by our own small
 * runner script (bench/peers/*_scan.py) in its virtualenv; a peer that cannot be installed or run is skipped
 * with one line. Start-up and imports are never timed: only the scan calls, on both sides.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { installPeers } from '../bench/peers/install';
import { builtinDetectors } from '../proxy/guardrails/detectors';
import {
  PII_GOLD,
  add,
  findRepoRoot,
  msPerMB,
  parseArgs,
  readRows,
  resolveDataDir,
  scanRows,
  score,
  scorePiiRow,
  secretKind,
  zero,
} from './eval';
import type { Counts, Row, Scored, Span } from './eval';

export const PEERS = ['presidio', 'detect-secrets'] as const;
export type PeerName = (typeof PEERS)[number];

/** Our entity names that pii.jsonl can score, in table order. */
const PII_ENTITIES = [...new Set(Object.values(PII_GOLD))].sort();

/** One line of the presidio runner: its spans under Presidio's entity names. */
export interface PresidioResult {
  spans: { entity: string; start: number; end: number; score: number }[];
  cpuMicros: number;
}

/** One line of the detect-secrets runner: whether the row has any finding, and of which secret types. */
export interface DetectSecretsResult {
  found: boolean;
  types: string[];
  cpuMicros: number;
}


export interface PiiSystem {
  system: string;
  msPerMB: number;
  /** Micro-average over the scored entities. */
  overall: Scored;
  entities: Record<string, Scored>;
}

export interface SecretsSystem {
  system: string;
  msPerMB: number;
  overall: Scored;
  /** Per upstream repository of the row (`gitleaks/gitleaks`, ...). */
  sources: Record<string, Scored>;
  /** Per secret kind (`aws`, `github`, ...). */
  kinds: Record<string, Scored>;
}

/**
 * Presidio entity type → ours, or undefined when the gold set has no such type or we have no detector for it
 * (URL, US_DRIVER_LICENSE, ...). pii.jsonl uses Presidio's own names, so this is the gold mapping.
 */
export function presidioEntity(name: string): string | undefined {
  return PII_GOLD[name];
}

/** Presidio's spans under our entity names; types without a mapping are dropped (scorePiiRow does the same for ours). */
export function presidioSpans(r: PresidioResult): Span[] {
  const out: Span[] = [];
  for (const s of r.spans) {
    const entity = presidioEntity(s.entity);
    if (entity) out.push({ entity, start: s.start, end: s.end });
  }
  return out;
}

/** Span-level scores of one system over the PII rows: per entity, and micro-averaged. */
export function scorePii(system: string, rows: Row[], predicted: Span[][], cpuMicros: number): PiiSystem {
  const entities: Record<string, Counts> = Object.fromEntries(PII_ENTITIES.map((e) => [e, zero()]));
  rows.forEach((row, i) => scorePiiRow(row, predicted[i], entities));
  const all = zero();
  for (const c of Object.values(entities)) {
    all.tp += c.tp;
    all.fp += c.fp;
    all.fn += c.fn;
  }
  // Span level has no true negatives, so no false-positive rate.
  const noFpr = (c: Counts): Scored => ({ ...score(c), fpr: null });
  return {
    system,
    msPerMB: msPerMB(cpuMicros, rows),
    overall: noFpr(all),
    entities: Object.fromEntries(Object.entries(entities).sort().map(([k, v]) => [k, noFpr(v)])),
  };
}

/** `owner/repo` of a row's `source` (`owner/repo@commit:path`). */
export function sourceRepo(row: Row): string {
  return (row.source ?? 'unknown').split('@')[0];
}

/** Row-level scores of one system over the secrets rows: flagged = any finding. */
export function scoreSecrets(system: string, rows: Row[], flagged: boolean[], cpuMicros: number): SecretsSystem {
  const overall = zero();
  const sources: Record<string, Counts> = {};
  const kinds: Record<string, Counts> = {};
  rows.forEach((row, i) => {
    add(overall, row.label, flagged[i]);
    add((sources[sourceRepo(row)] ??= zero()), row.label, flagged[i]);
    add((kinds[secretKind(row)] ??= zero()), row.label, flagged[i]);
  });
  const scored = (m: Record<string, Counts>): Record<string, Scored> => Object.fromEntries(Object.entries(m).sort().map(([k, v]) => [k, score(v)]));
  return { system, msPerMB: msPerMB(cpuMicros, rows), overall: score(overall), sources: scored(sources), kinds: scored(kinds) };
}

export type Verdict = 'higher' | 'tie' | 'lower';

export interface PiiTarget {
  /** True only when ours is strictly higher on every entity. */
  met: boolean;
  entities: Record<string, { ours: number; peer: number; verdict: Verdict }>;
}

/**
 * Target: a higher F1 than the peer on every entity the gold set and both systems share (no F1 counts as 0).
 * A tie is reported as such: at 1.000 on both sides "higher" is out of reach, which the verdicts make visible.
 */
export function piiTarget(ours: PiiSystem, peer: PiiSystem): PiiTarget {
  const entities: PiiTarget['entities'] = {};
  for (const e of Object.keys(ours.entities)) {
    const o = ours.entities[e].f1 ?? 0;
    const p = peer.entities[e]?.f1 ?? 0;
    entities[e] = { ours: o, peer: p, verdict: o > p ? 'higher' : o === p ? 'tie' : 'lower' };
  }
  return { met: Object.values(entities).every((x) => x.verdict === 'higher'), entities };
}

/** Target: a higher recall than the peer at an equal or lower false-positive rate. */
export function secretsTarget(ours: SecretsSystem, peer: SecretsSystem): { met: boolean; recall: { ours: number; peer: number }; fpr: { ours: number; peer: number } } {
  const recall = { ours: ours.overall.recall ?? 0, peer: peer.overall.recall ?? 0 };
  const fpr = { ours: ours.overall.fpr ?? 0, peer: peer.overall.fpr ?? 0 };
  return { met: recall.ours > recall.peer && fpr.ours <= fpr.peer, recall, fpr };
}

/**
 * A runner's stdout: a `{"meta": ...}` line, then one result line per row in input order. Throws when the count
 * is off, so a crashed runner can never be scored as "found nothing" on the missing rows.
 */
export function parseRunnerOutput<T>(stdout: string, rows: number): { meta: Record<string, unknown>; results: T[] } {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  const first = lines.length > 0 ? (JSON.parse(lines[0]) as { meta?: Record<string, unknown> }) : {};
  if (!first.meta) throw new Error('runner printed no meta line');
  const results = lines.slice(1).map((l) => JSON.parse(l) as T);
  if (results.length !== rows) throw new Error(`runner returned ${results.length} results for ${rows} rows`);
  return { meta: first.meta, results };
}

const sumCpu = (rs: { cpuMicros: number }[]): number => rs.reduce((n, r) => n + r.cpuMicros, 0);

/** Runs a peer's runner over the rows (texts on stdin). Errors carry the tail of its stderr. */
function runRunner<T>(python: string, script: string, args: string[], rows: Row[]): { meta: Record<string, unknown>; results: T[] } {
  const input = rows.map((r) => JSON.stringify({ text: r.text })).join('\n') + '\n';
  const res = spawnSync(python, [script, ...args], { input, encoding: 'utf8', maxBuffer: 1 << 28, timeout: 30 * 60_000 });
  if (res.error) throw res.error;
  if (res.status !== 0) throw new Error(`exit ${res.status ?? res.signal}: ${(res.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  return parseRunnerOutput<T>(res.stdout, rows.length);
}

export interface PeerInfo {
  status: 'ready' | 'unavailable' | 'skipped';
  reason?: string;
  meta?: Record<string, unknown>;
}

export interface PeersReport {
  data: string;
  peers: Record<string, PeerInfo>;
  pii?: { file: string; rows: number; bytes: number; entities: string[]; systems: PiiSystem[]; target?: PiiTarget };
  secrets?: { file: string; rows: number; bytes: number; positives: number; negatives: number; systems: SecretsSystem[]; target?: ReturnType<typeof secretsTarget> };
}

const bytesOf = (rows: Row[]): number => rows.reduce((n, r) => n + Buffer.byteLength(r.text), 0);

function evaluatePeers(dir: string, wanted: readonly PeerName[], root: string): PeersReport {
  const report: PeersReport = { data: dir, peers: Object.fromEntries(PEERS.map((p) => [p, { status: 'skipped' } as PeerInfo])) };
  const statuses = installPeers(root, wanted);
  const detectors = builtinDetectors();

  /** Runs one peer, or records why it could not be run and returns undefined. */
  const runPeer = <T>(peer: PeerName, script: string, args: string[], rows: Row[]): T[] | undefined => {
    const st = statuses[peer];
    if (st.status === 'unavailable') {
      report.peers[peer] = { status: 'unavailable', reason: st.reason };
      return undefined;
    }
    try {
      const out = runRunner<T>(st.path, path.join(root, 'bench', 'peers', script), args, rows);
      report.peers[peer] = { status: 'ready', meta: out.meta };
      return out.results;
    } catch (err) {
      report.peers[peer] = { status: 'unavailable', reason: `runner failed: ${(err as Error).message}` };
      return undefined;
    }
  };

  const piiFile = path.join(dir, 'pii.jsonl');
  if (existsSync(piiFile)) {
    const rows = readRows(piiFile);
    const ours = scanRows(rows, detectors.pii);
    const systems = [scorePii('ours', rows, ours.map((o) => o.matches), sumCpu(ours))];
    const peer = wanted.includes('presidio') ? runPeer<PresidioResult>('presidio', 'presidio_scan.py', ['--entities', Object.keys(PII_GOLD).join(',')], rows) : undefined;
    if (peer) systems.push(scorePii('presidio', rows, peer.map(presidioSpans), sumCpu(peer)));
    report.pii = {
      file: 'pii.jsonl',
      rows: rows.length,
      bytes: bytesOf(rows),
      entities: PII_ENTITIES,
      systems,
      target: systems[1] ? piiTarget(systems[0], systems[1]) : undefined,
    };
  }

  const secretsFile = path.join(dir, 'secrets.jsonl');
  if (existsSync(secretsFile)) {
    const rows = readRows(secretsFile);
    const ours = scanRows(rows, detectors.secrets);
    const systems = [scoreSecrets('ours', rows, ours.map((o) => o.matches.length > 0), sumCpu(ours))];
    const peer = wanted.includes('detect-secrets') ? runPeer<DetectSecretsResult>('detect-secrets', 'detect_secrets_scan.py', [], rows) : undefined;
    if (peer) systems.push(scoreSecrets('detect-secrets', rows, peer.map((r) => r.found), sumCpu(peer)));
    report.secrets = {
      file: 'secrets.jsonl',
      rows: rows.length,
      bytes: bytesOf(rows),
      positives: rows.filter((r) => r.label === 1).length,
      negatives: rows.filter((r) => r.label === 0).length,
      systems,
      target: systems[1] ? secretsTarget(systems[0], systems[1]) : undefined,
    };
  }
  if (!report.pii && !report.secrets) throw new Error(`neither pii.jsonl nor secrets.jsonl in ${dir}`);
  return report;
}

const fmt = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : x.toFixed(3));
const num = (x: number, w: number): string => String(x).padStart(w);

function peerLine(name: string, p: PeerInfo): string {
  if (p.status === 'unavailable') return `${name}: unavailable, skipped (${p.reason})`;
  if (p.status === 'skipped') return `${name}: not requested`;
  const m = p.meta ?? {};
  return `${name} ${String(m.version)}: ${String(m.nlp ?? m.mode ?? '')}`;
}

export function formatTable(r: PeersReport): string {
  const out: string[] = [`data: ${r.data}`];
  for (const [name, p] of Object.entries(r.peers)) out.push(peerLine(name, p));
  if (r.pii) {
    const { systems } = r.pii;
    out.push('', `PII  ${r.pii.file}: ${r.pii.rows} rows, ${r.pii.bytes} bytes. Span level: a prediction matches an unmatched gold span of the same entity`);
    out.push('     that it overlaps by at least half the gold span; other predictions are fp, unmatched gold spans fn.');
    const head = systems.map((s) => `| ${s.system.padEnd(13)}   tp    fp    fn   prec  recall     f1  `).join('');
    out.push(`  ${'entity'.padEnd(12)}${'gold'.padStart(5)} ${head}`);
    const row = (name: string, pick: (s: PiiSystem) => Scored): string => {
      const gold = pick(systems[0]).tp + pick(systems[0]).fn;
      const cells = systems.map((s) => {
        const c = pick(s);
        return `| ${' '.repeat(13)}${num(c.tp, 5)} ${num(c.fp, 5)} ${num(c.fn, 5)}  ${fmt(c.precision)}   ${fmt(c.recall)}  ${fmt(c.f1)}  `;
      });
      return `  ${name.padEnd(12)}${num(gold, 5)} ${cells.join('')}`;
    };
    for (const e of r.pii.entities) out.push(row(e, (s) => s.entities[e]));
    out.push(row('ALL (micro)', (s) => s.overall));
    out.push(`  CPU ms per MB: ${systems.map((s) => `${s.system} ${s.msPerMB}`).join(', ')}`);
    if (r.pii.target) {
      const by = (v: Verdict): string => {
        const names = Object.entries(r.pii?.target?.entities ?? {}).filter(([, x]) => x.verdict === v);
        return names.length === 0 ? 'none' : names.map(([k, x]) => `${k} ${fmt(x.ours)} vs ${fmt(x.peer)}`).join(', ');
      };
      out.push(`  Target, higher F1 than Presidio on every entity: ${r.pii.target.met ? 'MET' : 'NOT MET'}`);
      out.push(`    higher: ${by('higher')}`, `    tied:   ${by('tie')}`, `    lower:  ${by('lower')}`);
    }
  }
  if (r.secrets) {
    const s = r.secrets;
    out.push('', `Secrets  ${s.file}: ${s.rows} rows (${s.positives} with a secret, ${s.negatives} without). Row level: flagged = any finding.`);
    out.push(`  ${'slice'.padEnd(31)} ${'system'.padEnd(15)} ${'tp'.padStart(5)} ${'fp'.padStart(5)} ${'tn'.padStart(5)} ${'fn'.padStart(5)}   prec  recall    fpr`);
    const line = (slice: string, sys: string, c: Scored): string =>
      `  ${slice.padEnd(31)} ${sys.padEnd(15)} ${num(c.tp, 5)} ${num(c.fp, 5)} ${num(c.tn, 5)} ${num(c.fn, 5)}  ${fmt(c.precision)}  ${fmt(c.recall)}  ${fmt(c.fpr)}`;
    for (const sys of s.systems) out.push(line('ALL', sys.system, sys.overall));
    for (const src of Object.keys(s.systems[0].sources)) for (const sys of s.systems) out.push(line(`from ${src}`, sys.system, sys.sources[src]));
    out.push(`  CPU ms per MB: ${s.systems.map((x) => `${x.system} ${x.msPerMB}`).join(', ')}   (per-kind counts: --format json)`);
    if (s.target) {
      const t = s.target;
      out.push(
        `  Target, higher recall than detect-secrets at an equal or lower fpr: ${t.met ? 'MET' : 'NOT MET'} (recall ${fmt(t.recall.ours)} vs ${fmt(t.recall.peer)}, fpr ${fmt(t.fpr.ours)} vs ${fmt(t.fpr.peer)})`,
      );
    }
  }
  return out.join('\n');
}

function main(): void {
  const args = parseArgs(process.argv.slice(2), { usage: 'npm run eval:peers -- [--data DIR] [--format table|json] [--peers presidio,detect-secrets]', peers: true });
  const wanted = (args.peers ?? [...PEERS]) as PeerName[];
  const unknown = wanted.filter((p) => !PEERS.includes(p));
  if (unknown.length > 0) throw new Error(`unknown peer ${unknown.join(', ')} (known: ${PEERS.join(', ')})`);
  const report = evaluatePeers(resolveDataDir(args.data), wanted, findRepoRoot(__dirname));
  if (args.format === 'json') console.log(JSON.stringify(report, null, 2));
  else console.log(formatTable(report));
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    console.error(`eval-peers: ${(err as Error).message}`);
    process.exit(2);
  }
}
