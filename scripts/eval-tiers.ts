/**
 * The risk-category part of `npm run eval`: precision, recall and false-positive rate per category and per
 * tier — heuristic (the detectors alone), model (the embedding head alone), combined (what the sidecar does
 * with a classifier: a heuristic score >= 0.9 decides, a grey-zone score asks the combined head; `always`
 * asks it for every text) — on the tune and holdout halves, plus a calibration table of the combined heads
 * on the holdout half, and the project's own corpora (everyday prompts, obfuscated and translated attacks).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadEmbedder } from '../classifier/embedder';
import { heuristicFeatures, loadHeads, probability, type Category, type HeadSet } from '../classifier/heads';
import { missingModelFiles, modelsDir } from '../classifier/models';
import { EmbeddingCache } from '../classifier/train';
import { builtinDetectors, type Detector } from '../proxy/guardrails/detectors';
import { GREY_HIGH, GREY_LOW } from '../proxy/guardrails/engine';
import { normalizeText } from '../proxy/guardrails/normalize';
import { add, findRepoRoot, isHoldout, readRows, score, zero, type Counts, type Scored } from './eval';

export type TierName = 'heuristic' | 'model' | 'combined' | 'combined_always';

interface Case {
  text: string;
  label: 0 | 1;
  untrusted: boolean;
  /** A slice name the rows are also counted under (e.g. notinject, everyday). */
  slice: string;
  /** A summary slice counted per half as well (`holdout direct`): injection rows that are attacks as direct input. */
  also?: string;
  holdout: boolean;
}

/** One evaluated set: which categories decide it (any of them flagging = positive). */
interface SetSpec {
  name: string;
  categories: Category[];
  cases: Case[];
}

export interface TierReport {
  set: string;
  categories: Category[];
  rows: number;
  /** tier → slice (all, tune, holdout, and the row slices) → counts and rates */
  tiers: Record<TierName, Record<string, Scored>>;
}

export interface CalibrationBin {
  bin: string;
  n: number;
  meanPredicted: number | null;
  observed: number | null;
}

export interface TiersResult {
  models: string;
  reports: TierReport[];
  /** Combined heads on the holdout half of their own set. */
  calibration: Record<string, CalibrationBin[]>;
}

const HEURISTIC_ENTITY: Record<Category, { detector: string; entity: string }> = {
  prompt_injection: { detector: 'injection', entity: 'PROMPT_INJECTION' },
  jailbreak: { detector: 'injection', entity: 'JAILBREAK' },
  indirect_injection: { detector: 'injection', entity: 'INDIRECT_INJECTION' },
  toxicity: { detector: 'toxicity', entity: 'TOXICITY' },
  harmful_intent: { detector: 'harmful', entity: 'HARMFUL_INTENT' },
};

function casesOf(file: string, untrusted: boolean, slice: (category: string) => string): Case[] {
  return readRows(file).map((r) => ({ text: r.text, label: r.label, untrusted, slice: slice(r.category), holdout: isHoldout(r.text) }));
}

/** The labelled sets found in `dataDir` and the project's own corpora (test/fixtures/detection). */
export function evaluationSets(dataDir: string, root: string): SetSpec[] {
  const sets: SetSpec[] = [];
  const file = (f: string): string => path.join(dataDir, f);
  const injection: Category[] = ['prompt_injection', 'jailbreak'];
  if (existsSync(file('injection.jsonl'))) {
    // BIPIA's payloads without their carrier document are ordinary requests as direct input (the data's README
    // says to leave them out when measuring a direct detector): `direct` is every other row.
    const cases = casesOf(file('injection.jsonl'), false, (c) => (c === 'notinject' ? 'notinject' : c.startsWith('jailbreak') ? 'jailbreak' : c.split(/[-:]/)[0]));
    sets.push({ name: 'injection.jsonl', categories: injection, cases: cases.map((c) => (c.slice === 'bipia' ? c : { ...c, also: 'direct' })) });
  }
  if (existsSync(file('indirect-injection.jsonl'))) sets.push({ name: 'indirect-injection.jsonl', categories: ['indirect_injection'], cases: casesOf(file('indirect-injection.jsonl'), true, (c) => c.split(':')[0]) });
  if (existsSync(file('toxicity.jsonl'))) sets.push({ name: 'toxicity.jsonl', categories: ['toxicity'], cases: casesOf(file('toxicity.jsonl'), false, (c) => c.split(':')[0]) });
  if (existsSync(file('harmful-intent.jsonl'))) sets.push({ name: 'harmful-intent.jsonl', categories: ['harmful_intent'], cases: casesOf(file('harmful-intent.jsonl'), false, (c) => c.split(':')[0]) });
  const fixtures = path.join(root, 'test', 'fixtures', 'detection');
  if (existsSync(path.join(fixtures, 'everyday-prompts.txt'))) {
    const texts = readFileSync(path.join(fixtures, 'everyday-prompts.txt'), 'utf8').split('\n').filter((l) => l.trim() !== '');
    // its tune half also teaches the model tier's injection heads (npm run train); the holdout half is unseen
    sets.push({ name: 'own: everyday prompts (benign)', categories: injection, cases: texts.map((text) => ({ text, label: 0, untrusted: false, slice: 'everyday', holdout: isHoldout(text) })) });
  }
  if (existsSync(path.join(fixtures, 'obfuscated.jsonl'))) {
    const rows = readFileSync(path.join(fixtures, 'obfuscated.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as { text: string; category: string; untrusted?: boolean });
    sets.push({
      name: 'own: obfuscated, translated, indirect',
      categories: ['prompt_injection', 'jailbreak', 'indirect_injection'],
      cases: rows.map((r) => ({ text: r.text, label: 1, untrusted: r.untrusted === true, slice: r.category.split(':')[0], holdout: true })),
    });
  }
  return sets;
}

/** Heuristic score of one category's entity (0 when the detector did not fire at all). */
function heuristicScore(detectors: Record<string, Detector>, c: Category, text: string, untrusted: boolean): number {
  const { detector, entity } = HEURISTIC_ENTITY[c];
  const [m] = detectors[detector].scan(normalizeText(text), { threshold: 0, untrusted, entities: new Set([entity]) });
  return m?.score ?? 0;
}

const BINS = 10;

export async function evaluateTiers(dataDir: string, log: (s: string) => void = () => undefined): Promise<TiersResult | string> {
  const dir = modelsDir();
  const missing = missingModelFiles(dir);
  if (missing.length > 0) return `model tier skipped: ${missing.join(', ')} not in ${dir} (run make models, or set MODELS_DIR)`;
  const root = findRepoRoot(__dirname);
  const heads: HeadSet = loadHeads();
  const detectors = builtinDetectors();
  const sets = evaluationSets(dataDir, root);
  mkdirSync(path.join(root, '.cache'), { recursive: true });
  const cache = new EmbeddingCache(path.join(root, '.cache', 'classifier-embeddings.tsv'));
  const embedder = await loadEmbedder(dir, { threads: 2 });
  const texts = [...new Set(sets.flatMap((s) => s.cases.map((c) => c.text)))];
  log(`embedding up to ${texts.length} texts (cached in .cache/)`);
  await cache.embed(embedder, texts, (n) => n % 400 === 0 && log(`  ${n} new texts embedded`));
  await embedder.close();
  const reports: TierReport[] = [];
  const calibration: Record<string, { p: number; y: number }[]> = {};
  for (const set of sets) {
    const tiers = { heuristic: {}, model: {}, combined: {}, combined_always: {} } as Record<TierName, Record<string, Counts>>;
    for (const c of set.cases) {
      const windows = cache.get(c.text);
      const f = heuristicFeatures(c.text);
      const features = c.untrusted ? [f[1], f[1], f[2], f[3], f[4], f[5]] : f;
      const predicted: Record<TierName, boolean> = { heuristic: false, model: false, combined: false, combined_always: false };
      for (const cat of set.categories) {
        const h = heuristicScore(detectors, cat, c.text, c.untrusted);
        const model = Math.max(...windows.map((e) => probability(heads.model[cat], e, features)));
        const combined = Math.max(...windows.map((e) => probability(heads.combined[cat], e, features)));
        const yes = combined >= heads.combined[cat].threshold;
        predicted.heuristic ||= h >= 0.5;
        predicted.model ||= model >= heads.model[cat].threshold;
        predicted.combined ||= h >= GREY_HIGH || (h >= GREY_LOW && yes);
        predicted.combined_always ||= h >= GREY_HIGH || yes;
        if (set.categories.length === 1 && c.holdout && !set.name.startsWith('own:')) (calibration[cat] ??= []).push({ p: combined, y: c.label });
      }
      for (const tier of Object.keys(tiers) as TierName[]) {
        const half = c.holdout ? 'holdout' : 'tune';
        for (const slice of ['all', half, c.slice, ...(c.also ? [`${half} ${c.also}`] : [])]) add((tiers[tier][slice] ??= zero()), c.label, predicted[tier]);
      }
    }
    reports.push({
      set: set.name,
      categories: set.categories,
      rows: set.cases.length,
      tiers: Object.fromEntries(Object.entries(tiers).map(([t, slices]) => [t, Object.fromEntries(Object.entries(slices).map(([k, v]) => [k, score(v)]))])) as TierReport['tiers'],
    });
  }
  return { models: dir, reports, calibration: Object.fromEntries(Object.entries(calibration).map(([cat, pts]) => [cat, calibrationBins(pts)])) };
}

/** Reliability table: predicted probability in tenths, mean prediction and observed positive rate per bin. */
export function calibrationBins(points: { p: number; y: number }[]): CalibrationBin[] {
  return Array.from({ length: BINS }, (_v, b) => {
    const inBin = points.filter((x) => Math.min(BINS - 1, Math.floor(x.p * BINS)) === b);
    const mean = (xs: number[]): number | null => (xs.length ? Math.round((xs.reduce((s, v) => s + v, 0) / xs.length) * 1000) / 1000 : null);
    return { bin: `${(b / BINS).toFixed(1)}-${((b + 1) / BINS).toFixed(1)}`, n: inBin.length, meanPredicted: mean(inBin.map((x) => x.p)), observed: mean(inBin.map((x) => x.y)) };
  });
}

const fmt = (x: number | null | undefined): string => (x === null || x === undefined ? '    -' : x.toFixed(3));

export function formatTiers(result: TiersResult | string): string {
  if (typeof result === 'string') return `\nrisk categories by tier: ${result}`;
  const out: string[] = [`\nrisk categories by tier (models in ${result.models}); combined = the sidecar with a classifier (grey zone ${GREY_LOW}-${GREY_HIGH}), combined_always = model: always`];
  for (const r of result.reports) {
    out.push(`\n${r.set}  (${r.categories.join(' + ')}, ${r.rows} rows)`);
    out.push(`  ${'slice'.padEnd(28)} ${'tier'.padEnd(16)} ${'tp'.padStart(5)} ${'fp'.padStart(5)} ${'tn'.padStart(5)} ${'fn'.padStart(5)}  prec   recall  fpr    f1`);
    const slices = Object.keys(r.tiers.heuristic).sort((a, b) => (a === 'all' ? -1 : b === 'all' ? 1 : a.localeCompare(b)));
    for (const slice of slices) {
      for (const tier of Object.keys(r.tiers) as TierName[]) {
        const s = r.tiers[tier][slice];
        if (!s) continue;
        out.push(`  ${slice.padEnd(28).slice(0, 28)} ${tier.padEnd(16)} ${String(s.tp).padStart(5)} ${String(s.fp).padStart(5)} ${String(s.tn).padStart(5)} ${String(s.fn).padStart(5)}  ${fmt(s.precision)}  ${fmt(s.recall)}  ${fmt(s.fpr)}  ${fmt(s.f1)}`);
      }
    }
  }
  out.push('\ncalibration of the combined heads on the holdout halves (predicted probability bin: n, mean predicted, observed rate)');
  for (const [cat, bins] of Object.entries(result.calibration)) {
    out.push(`  ${cat}: ${bins.map((b) => `${b.bin} ${b.n}/${fmt(b.meanPredicted).trim()}/${fmt(b.observed).trim()}`).join('  ')}`);
  }
  return out.join('\n');
}

