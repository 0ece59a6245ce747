/**
 * `npm run eval -- [--data DIR] [--format json|table] [--split all|tune|holdout]`
 *
 * Runs the built-in detectors over the labelled JSONL sets (text, label, category, spans) and prints, per file
 * and category, tp/fp/tn/fn, precision, recall, false-positive rate and scan time per MB; for PII also
 * span-level counts per entity. Time is CPU time of normalize + scan. Rows are split into two stable halves by a hash of their text so thresholds
 * tuned on one half ("tune") can be checked on the other ("holdout"). Then the `bypass` section: the request-side
 * (scripts/eval-bypass.ts) and the response and stream (scripts/eval-bypass-response.ts) bypass corpora through
 * the real proxy, in one table.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { builtinDetectors } from '../proxy/guardrails/detectors';
import type { Detector, Match, ScanOptions } from '../proxy/guardrails/detectors';
import { normalizeText } from '../proxy/guardrails/normalize';
import { conversationControls, formatBypass, formatConversationControls, runBypass } from './eval-bypass';
import { evalResponseBypass } from './eval-bypass-response';

export interface Row {
  text: string;
  label: 0 | 1;
  category: string;
  source?: string;
  spans?: { type: string; start: number; end: number }[];
}

/** A labelled or predicted PII span; offsets are UTF-16 indexes into the row's text, end exclusive. */
export interface Span {
  entity: string;
  start: number;
  end: number;
}

export interface Counts {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export interface Scored extends Counts {
  precision: number | null;
  recall: number | null;
  fpr: number | null;
  f1?: number | null;
}

interface FileReport {
  file: string;
  detector: string;
  rows: number;
  msPerMB: number;
  overall: Scored;
  tune: Scored;
  holdout: Scored;
  categories: Record<string, Scored>;
  entities?: Record<string, Scored>;
}

/** Which detector each labelled file measures, and how the text is presented to it. */
const SUITES: { file: string; detector: string; opts?: ScanOptions; gold?: Readonly<Record<string, string>> }[] = [
  { file: 'injection.jsonl', detector: 'injection' },
  { file: 'indirect-injection.jsonl', detector: 'injection', opts: { untrusted: true } },
  { file: 'pii.jsonl', detector: 'pii' },
  { file: 'pii.jsonl', detector: 'pii', opts: { entities: new Set(['PERSON', 'STREET_ADDRESS']) }, gold: { PERSON: 'PERSON', STREET_ADDRESS: 'STREET_ADDRESS' } },
  { file: 'secrets.jsonl', detector: 'secrets' },
];

/**
 * Gold span types in pii.jsonl → our entity names (the other gold types have no detector here). The gold set
 * uses Presidio's entity names, so this is also the Presidio → ours mapping in eval-peers.
 */
export const PII_GOLD: Readonly<Record<string, string>> = {
  EMAIL_ADDRESS: 'EMAIL',
  PHONE_NUMBER: 'PHONE',
  CREDIT_CARD: 'CREDIT_CARD',
  IBAN_CODE: 'IBAN',
  US_SSN: 'US_SSN',
  IP_ADDRESS: 'IP_ADDRESS',
};

function ratio(a: number, b: number): number | null {
  return b === 0 ? null : Math.round((a / b) * 10000) / 10000;
}

export function score(c: Counts): Scored {
  const precision = ratio(c.tp, c.tp + c.fp);
  const recall = ratio(c.tp, c.tp + c.fn);
  const f1 = precision !== null && recall !== null && precision + recall > 0 ? Math.round(((2 * precision * recall) / (precision + recall)) * 10000) / 10000 : null;
  return { ...c, precision, recall, fpr: ratio(c.fp, c.fp + c.tn), f1 };
}

export function zero(): Counts {
  return { tp: 0, fp: 0, tn: 0, fn: 0 };
}

export function add(c: Counts, label: number, predicted: boolean): void {
  if (label === 1) {
    if (predicted) c.tp++;
    else c.fn++;
  } else if (predicted) c.fp++;
  else c.tn++;
}

/** Stable half: even first byte of the text's SHA-1 → tune, odd → holdout. */
export function isHoldout(text: string): boolean {
  return (createHash('sha1').update(text).digest()[0] & 1) === 1;
}

/**
 * Span matching rule for PII: a predicted span counts for a gold span of the same entity when their overlap
 * covers at least half of the gold span; each gold span is matched at most once. Unmatched predictions are fp,
 * unmatched gold spans fn. Predictions inside a gold span of a type we do not detect (e.g. a phone number
 * inside a STREET_ADDRESS) still count as fp.
 */
export function matchSpans(gold: Span[], predicted: Span[], into: Record<string, Counts>): void {
  const used = new Array<boolean>(gold.length).fill(false);
  for (const p of predicted) {
    let hit = -1;
    for (let g = 0; g < gold.length; g++) {
      const s = gold[g];
      if (used[g] || s.entity !== p.entity) continue;
      const overlap = Math.min(s.end, p.end) - Math.max(s.start, p.start);
      if (overlap * 2 >= s.end - s.start) {
        hit = g;
        break;
      }
    }
    const c = (into[p.entity] ??= zero());
    if (hit >= 0) {
      used[hit] = true;
      c.tp++;
    } else c.fp++;
  }
  gold.forEach((s, g) => {
    if (!used[g]) (into[s.entity] ??= zero()).fn++;
  });
}

/** The gold spans of a pii.jsonl row that we score: types in `gold` (default PII_GOLD), under our entity names. */
function goldSpans(row: Row, gold: Readonly<Record<string, string>>): Span[] {
  return (row.spans ?? []).filter((s) => gold[s.type]).map((s) => ({ entity: gold[s.type], start: s.start, end: s.end }));
}

/**
 * Span-level scoring of one PII row. Predictions of an entity the gold set does not map to (none of ours today;
 * e.g. Presidio's URL) are dropped before matching, for every system alike, so no system is charged a false
 * positive for a type the gold set cannot confirm or refute.
 */
export function scorePiiRow(row: Row, predicted: Span[], into: Record<string, Counts>, goldTypes: Readonly<Record<string, string>> = PII_GOLD): Span[] {
  const gold = goldSpans(row, goldTypes);
  const scored = new Set(Object.values(goldTypes));
  matchSpans(gold, predicted.filter((p) => scored.has(p.entity)), into);
  return gold;
}

/** The labelled rows of a JSONL file. */
export function readRows(file: string): Row[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Row);
}

/** A fixed sentence scanned once, untimed, before the timed rows (the peer runners do the same). */
const WARM_UP = 'Warm-up: mail jane.doe@example.com or call 212-555-0100.';

/**
 * Our detector over every row: its matches and the CPU time of normalize + scan per row. One untimed warm-up
 * scan first, so one-time lazy set-up is not billed per MB.
 */
export function scanRows(rows: Row[], detector: Detector, opts?: ScanOptions): { matches: Match[]; cpuMicros: number }[] {
  detector.scan(normalizeText(WARM_UP), opts);
  return rows.map((row) => {
    const t0 = process.cpuUsage();
    const matches = detector.scan(normalizeText(row.text), opts);
    const spent = process.cpuUsage(t0);
    return { matches, cpuMicros: spent.user + spent.system };
  });
}

/** CPU milliseconds per MiB of UTF-8 text, 2 decimals. */
export function msPerMB(cpuMicros: number, rows: Row[]): number {
  const bytes = rows.reduce((n, r) => n + Buffer.byteLength(r.text), 0);
  return Math.round((cpuMicros / 1000 / (bytes / 1048576)) * 100) / 100;
}

export function runSuite(dir: string, file: string, detector: Detector, opts?: ScanOptions, gold?: Readonly<Record<string, string>>): FileReport | undefined {
  const full = path.join(dir, file);
  if (!existsSync(full)) return undefined;
  const rows = readRows(full);
  const overall = zero();
  const tune = zero();
  const holdout = zero();
  const categories: Record<string, Counts> = {};
  const entities: Record<string, Counts> = {};
  const entitiesBySplit: Record<'tune' | 'holdout', Record<string, Counts>> = { tune: {}, holdout: {} };
  const scanned = scanRows(rows, detector, opts);
  let cpuMicros = 0;
  rows.forEach((row, i) => {
    const { matches } = scanned[i];
    cpuMicros += scanned[i].cpuMicros;
    const predicted = matches.length > 0;
    let label = row.label;
    let category = row.category;
    if (row.spans) {
      // Row level for PII: positive when the row has a gold span of an entity this suite scores.
      const spans = scorePiiRow(row, matches, entities, gold);
      scorePiiRow(row, matches, entitiesBySplit[isHoldout(row.text) ? 'holdout' : 'tune'], gold);
      label = spans.length > 0 ? 1 : 0;
      category = spans.length > 0 ? 'has-detectable-pii' : 'no-detectable-pii';
    } else if (file === 'secrets.jsonl') {
      category = secretKind(row);
    }
    add(overall, label, predicted);
    add(isHoldout(row.text) ? holdout : tune, label, predicted);
    add((categories[category] ??= zero()), label, predicted);
  });
  const report: FileReport = {
    file: gold ? `${file} (${Object.values(gold).join(', ')})` : file,
    detector: detector.id,
    rows: rows.length,
    msPerMB: msPerMB(cpuMicros, rows),
    overall: score(overall),
    tune: score(tune),
    holdout: score(holdout),
    categories: Object.fromEntries(Object.entries(categories).sort().map(([k, v]) => [k, score(v)])),
  };
  if (file === 'pii.jsonl') {
    const all = Object.entries(entities).flatMap(([k, v]) => [
      [k, v],
      [`${k} (tune)`, entitiesBySplit.tune[k] ?? zero()],
      [`${k} (holdout)`, entitiesBySplit.holdout[k] ?? zero()],
    ] as const);
    report.entities = Object.fromEntries(all.sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, { ...score(v), fpr: null }]));
  }
  return report;
}

/** The secret kind of a secrets.jsonl row: its category before the `/` (`aws` of `aws/np.aws.1`). */
export function secretKind(row: Row): string {
  return row.category.split('/')[0];
}

/**
 * The repository root above `from`: the first directory holding package.json and tsconfig.json (tsc copies
 * package.json into dist/, because the sources import it, so package.json alone would stop at dist/).
 */
export function findRepoRoot(from: string): string {
  let dir = from;
  while (!existsSync(path.join(dir, 'package.json')) || !existsSync(path.join(dir, 'tsconfig.json'))) {
    const up = path.dirname(dir);
    if (up === dir) return from;
    dir = up;
  }
  return dir;
}

export interface EvalArgs {
  data?: string;
  format: 'json' | 'table';
  /** Only with `peers` allowed (eval-peers): the comma-separated `--peers` list. */
  peers?: string[];
}

/** The command line of `npm run eval` and, with `peers` allowed, of `npm run eval:peers`. */
export function parseArgs(argv: string[], cli: { usage: string; peers?: boolean } = { usage: 'npm run eval -- [--data DIR] [--format json|table]' }): EvalArgs {
  const args: EvalArgs = { format: 'table' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') continue;
    if (a === '--data') args.data = argv[++i];
    else if (a === '--format') {
      const f = argv[++i];
      if (f !== 'json' && f !== 'table') throw new Error(`--format must be json or table, got "${f}"`);
      args.format = f;
    } else if (a === '--peers' && cli.peers) {
      args.peers = (argv[++i] ?? '').split(',').filter((p) => p !== '');
      if (args.peers.length === 0) throw new Error('--peers needs a comma-separated list');
    } else if (a === '--help' || a === '-h') {
      console.log(`usage: ${cli.usage}`);
      process.exit(0);
    } else throw new Error(`unknown argument "${a}" (usage: ${cli.usage})`);
  }
  if (args.data === '') throw new Error('--data needs a directory');
  return args;
}

/** `--data` if given, else ../shared/eval beside the repo; an error saying where to point it if missing. */
export function resolveDataDir(data: string | undefined): string {
  const dir = path.resolve(data ?? path.join(findRepoRoot(__dirname), '..', 'shared', 'eval'));
  if (!existsSync(dir)) {
    throw new Error(`evaluation data not found at ${dir}; point --data at a directory holding injection.jsonl, pii.jsonl, secrets.jsonl, ...`);
  }
  return dir;
}

const fmt = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : x.toFixed(3));

function line(name: string, s: Scored, extra = ''): string {
  return `  ${name.padEnd(58).slice(0, 58)} ${String(s.tp).padStart(5)} ${String(s.fp).padStart(5)} ${String(s.tn).padStart(5)} ${String(s.fn).padStart(5)}  ${fmt(s.precision)}  ${fmt(s.recall)}  ${fmt(s.fpr)}${extra}`;
}

export function formatTable(reports: FileReport[]): string {
  const out: string[] = [];
  for (const r of reports) {
    out.push(`\n${r.file}  (detector ${r.detector}, ${r.rows} rows, ${r.msPerMB} ms CPU per MB)`);
    out.push(`  ${'slice'.padEnd(58)} ${'tp'.padStart(5)} ${'fp'.padStart(5)} ${'tn'.padStart(5)} ${'fn'.padStart(5)}  prec   recall  fpr`);
    out.push(line('ALL', r.overall), line('tune half', r.tune), line('holdout half', r.holdout));
    for (const [k, v] of Object.entries(r.categories)) out.push(line(k, v));
    if (r.entities) {
      out.push('  span-level per entity (overlap >= half of the gold span):');
      for (const [k, v] of Object.entries(r.entities)) out.push(line(k, v, `  f1 ${fmt(v.f1)}`));
    }
  }
  return out.join('\n');
}

/** Every labelled file found in `dir`, scanned by its detector with default thresholds. */
export function evaluate(dir: string): FileReport[] {
  const detectors = builtinDetectors();
  const reports: FileReport[] = [];
  for (const s of SUITES) {
    const r = runSuite(dir, s.file, detectors[s.detector], s.opts, s.gold);
    if (r) reports.push(r);
  }
  if (reports.length === 0) throw new Error(`no labelled files (${SUITES.map((s) => s.file).join(', ')}) in ${dir}`);
  return reports;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const dir = resolveDataDir(args.data);
  const reports = evaluate(dir);
  // Loaded here, not at the top: eval-tiers imports this module's helpers.
  const { evaluateTiers, formatTiers } = await import('./eval-tiers.js');
  const tiers = await evaluateTiers(dir, (s) => console.error(s));
  // Bypass corpora through the real proxy: request side (scripts/eval-bypass.ts), response and stream side
  // (scripts/eval-bypass-response.ts).
  const bypass = await runBypass(findRepoRoot(__dirname));
  const responseBypass = await evalResponseBypass();
  const conversations = conversationControls(dir);
  if (args.format === 'json') console.log(JSON.stringify({ data: dir, reports, tiers, bypass, responseBypass, conversations }, null, 2));
  else console.log(formatTable(reports) + formatTiers(tiers) + formatBypass(bypass, responseBypass) + formatConversationControls(conversations));
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`eval: ${(err as Error).message}`);
    process.exit(2);
  });
}
