/**
 * `npm run train -- --data ../shared/eval [--out classifier/heads]`
 *
 * Trains the classifier heads (logistic regression, written here) on MiniLM window embeddings, with and
 * without the heuristic tier's scores, for each risk category — on the TUNE half of the labelled data only
 * (even first byte of SHA-1(text), as scripts/eval.ts splits it; the holdout half is never read here).
 * Multiple-instance learning for long texts: a positive text teaches the head through its highest-scoring
 * window only, so the clean part of an e-mail with an injected line is not learnt as "injection". Out-of-fold
 * scores (5 folds by text) give the Platt calibration and the decision threshold; the final head is fitted on
 * the whole tune half. Writes <kind>-<category>.json and DATA_CARD.md into --out.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { isHoldout, readRows, resolveDataDir, findRepoRoot, type Row } from '../scripts/eval';
import { EMBEDDING_DIM, loadEmbedder, type Embedder } from './embedder';
import { CATEGORIES, HEADS_DIR, HEURISTIC_FEATURES, heuristicFeatures, sigmoid, type Category, type HeadFile, type HeadKind } from './heads';
import { modelsDir } from './models';

export interface Example {
  text: string;
  label: 0 | 1;
  untrusted: boolean;
}

/** Which labelled rows teach each category (file, which rows are positive, whether the text is untrusted). */
export function examplesFor(category: Category, read: (file: string) => Row[], ownEveryday: readonly string[] = []): Example[] {
  const inj = read('injection.jsonl');
  // Ordinary text of the other sets (moderation samples without a flag, benign requests) teaches the injection
  // heads what everyday input looks like beyond the injection set's own negatives.
  const everyday = [...read('toxicity.jsonl').filter((r) => r.category === 'moderation:none'), ...read('harmful-intent.jsonl').filter((r) => r.label === 0)];
  const benign = [
    ...inj.filter((r) => r.label === 0),
    ...everyday.filter((r) => !inj.some((i) => i.text === r.text)),
    ...ownEveryday.map((text): Row => ({ text, label: 0, category: 'own-everyday' })),
  ];
  const ex = (rows: Row[], untrusted = false): Example[] => rows.map((r) => ({ text: r.text, label: r.label, untrusted }));
  switch (category) {
    case 'prompt_injection':
      // BIPIA's attack payloads are ordinary requests when a user types them ("Reply in Spanish"): they teach
      // the indirect head, in their e-mails, not the direct one (the eval README's advice for direct detectors).
      return ex([...inj.filter((r) => r.label === 1 && !r.category.startsWith('bipia')), ...benign]);
    case 'jailbreak':
      return ex([...inj.filter((r) => r.category === 'jailbreak-inthewild'), ...benign]);
    case 'indirect_injection':
      return [...ex(read('indirect-injection.jsonl'), true), ...ex(benign, true)];
    case 'toxicity':
      return ex(read('toxicity.jsonl'));
    case 'harmful_intent':
      return ex(read('harmful-intent.jsonl'));
  }
}

interface Encoded {
  windows: Float32Array[];
  features: number[];
}

/** Embeddings cached on disk by text hash (outside the repo's sources: .cache/), so a retrain does not re-embed. */
export class EmbeddingCache {
  private readonly map = new Map<string, Float32Array[]>();
  constructor(private readonly file: string) {
    if (existsSync(file)) {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        if (!line) continue;
        const [key, data] = line.split('\t');
        const buf = Buffer.from(data, 'base64');
        const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
        const windows: Float32Array[] = [];
        for (let k = 0; k < all.length; k += EMBEDDING_DIM) windows.push(all.slice(k, k + EMBEDDING_DIM));
        this.map.set(key, windows);
      }
    }
  }

  static key(text: string): string {
    return createHash('sha1').update(text).digest('hex');
  }

  async embed(embedder: Embedder, texts: string[], progress?: (done: number) => void): Promise<Map<string, Float32Array[]>> {
    const todo = [...new Set(texts)].filter((t) => !this.map.has(EmbeddingCache.key(t)));
    for (let i = 0; i < todo.length; i += 8) {
      const chunk = todo.slice(i, i + 8);
      const windows = chunk.map((t) => embedder.windows(t));
      const flat = await embedder.embedWindows(windows.flat());
      let k = 0;
      const lines: string[] = [];
      chunk.forEach((t, j) => {
        const vs = flat.slice(k, k + windows[j].length);
        k += windows[j].length;
        const key = EmbeddingCache.key(t);
        this.map.set(key, vs);
        const all = new Float32Array(vs.length * EMBEDDING_DIM);
        vs.forEach((v, w) => all.set(v, w * EMBEDDING_DIM));
        lines.push(`${key}\t${Buffer.from(all.buffer).toString('base64')}`);
      });
      appendFileSync(this.file, lines.join('\n') + '\n');
      progress?.(Math.min(i + 8, todo.length));
    }
    return this.map;
  }

  get(text: string): Float32Array[] {
    const v = this.map.get(EmbeddingCache.key(text));
    if (!v) throw new Error('text not embedded');
    return v;
  }
}

/** Logistic regression with L2, class-balanced, full-batch Adam. Rows are windows: [embedding, features]. */
function fitLogistic(x: Float32Array[], feats: number[][], y: number[], useFeatures: boolean, epochs = 150): { w: Float64Array; b: number } {
  const dims = EMBEDDING_DIM + (useFeatures ? HEURISTIC_FEATURES.length : 0);
  const w = new Float64Array(dims);
  let b = 0;
  const pos = y.filter((v) => v === 1).length;
  const neg = y.length - pos;
  const cw = [y.length / (2 * Math.max(neg, 1)), y.length / (2 * Math.max(pos, 1))];
  const lr = 0.05;
  const l2 = 1e-3;
  const m = new Float64Array(dims + 1);
  const v = new Float64Array(dims + 1);
  const g = new Float64Array(dims + 1);
  for (let epoch = 1; epoch <= epochs; epoch++) {
    g.fill(0);
    for (let i = 0; i < x.length; i++) {
      let z = b;
      const xi = x[i];
      for (let d = 0; d < EMBEDDING_DIM; d++) z += w[d] * xi[d];
      if (useFeatures) for (let k = 0; k < HEURISTIC_FEATURES.length; k++) z += w[EMBEDDING_DIM + k] * feats[i][k];
      const err = (sigmoid(z) - y[i]) * cw[y[i]];
      for (let d = 0; d < EMBEDDING_DIM; d++) g[d] += err * xi[d];
      if (useFeatures) for (let k = 0; k < HEURISTIC_FEATURES.length; k++) g[EMBEDDING_DIM + k] += err * feats[i][k];
      g[dims] += err;
    }
    for (let d = 0; d <= dims; d++) {
      const grad = g[d] / x.length + (d < dims ? l2 * w[d] : 0);
      m[d] = 0.9 * m[d] + 0.1 * grad;
      v[d] = 0.999 * v[d] + 0.001 * grad * grad;
      const step = (lr * (m[d] / (1 - 0.9 ** epoch))) / (Math.sqrt(v[d] / (1 - 0.999 ** epoch)) + 1e-8);
      if (d < dims) w[d] -= step;
      else b -= step;
    }
  }
  return { w, b };
}

function rawLogit(model: { w: Float64Array; b: number }, e: Float32Array, f: number[], useFeatures: boolean): number {
  let z = model.b;
  for (let d = 0; d < EMBEDDING_DIM; d++) z += model.w[d] * e[d];
  if (useFeatures) for (let k = 0; k < f.length; k++) z += model.w[EMBEDDING_DIM + k] * f[k];
  return z;
}

/** Multiple-instance training: all windows first, then each positive text's best window only (twice). */
function fitTexts(texts: Encoded[], labels: number[], useFeatures: boolean): { w: Float64Array; b: number } {
  let model: { w: Float64Array; b: number } | undefined;
  for (let round = 0; round < 3; round++) {
    const x: Float32Array[] = [];
    const f: number[][] = [];
    const y: number[] = [];
    texts.forEach((t, i) => {
      let windows = t.windows;
      if (model && labels[i] === 1 && windows.length > 1) {
        const scores = windows.map((e) => rawLogit(model!, e, t.features, useFeatures));
        windows = [windows[scores.indexOf(Math.max(...scores))]];
      }
      for (const e of windows) {
        x.push(e);
        f.push(t.features);
        y.push(labels[i]);
      }
    });
    model = fitLogistic(x, f, y, useFeatures);
    if (!texts.some((t) => t.windows.length > 1)) break;
  }
  return model!;
}

function textLogit(model: { w: Float64Array; b: number }, t: Encoded, useFeatures: boolean): number {
  return Math.max(...t.windows.map((e) => rawLogit(model, e, t.features, useFeatures)));
}

/** Platt scaling: a one-feature logistic regression of the label on the logit. */
function fitPlatt(z: number[], y: number[]): { a: number; b: number } {
  let a = 1;
  let b = 0;
  for (let it = 0; it < 2000; it++) {
    let ga = 0;
    let gb = 0;
    for (let i = 0; i < z.length; i++) {
      const err = sigmoid(a * z[i] + b) - y[i];
      ga += err * z[i];
      gb += err;
    }
    a -= (0.5 * ga) / z.length;
    b -= (0.5 * gb) / z.length;
  }
  return { a, b };
}

export interface Quality {
  threshold: number;
  precision: number;
  recall: number;
  fpr: number;
  f1: number;
  auc: number;
}

function quality(p: number[], y: number[], threshold: number): Quality {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let tn = 0;
  p.forEach((s, i) => {
    if (s >= threshold) {
      if (y[i]) tp++;
      else fp++;
    } else if (y[i]) fn++;
    else tn++;
  });
  const precision = tp + fp ? tp / (tp + fp) : 1;
  const recall = tp + fn ? tp / (tp + fn) : 0;
  const pos = p.filter((_s, i) => y[i] === 1);
  const neg = p.filter((_s, i) => y[i] === 0);
  let wins = 0;
  for (const a of pos) for (const b of neg) wins += a > b ? 1 : a === b ? 0.5 : 0;
  return { threshold, precision, recall, fpr: fp + tn ? fp / (fp + tn) : 0, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0, auc: pos.length && neg.length ? wins / (pos.length * neg.length) : 0 };
}

/** Injection-like categories: the lowest threshold with out-of-fold FPR <= 0.01; content categories: best F1. */
function chooseThreshold(category: Category, p: number[], y: number[]): Quality {
  const candidates = [...new Set(p.map((s) => Math.round(s * 1000) / 1000))].sort((a, b) => a - b);
  let best: Quality | undefined;
  for (const t of candidates) {
    const q = quality(p, y, t);
    if (category === 'toxicity' || category === 'harmful_intent') {
      if (!best || q.f1 > best.f1) best = q;
    } else if (q.fpr <= 0.01) return q;
  }
  return best ?? quality(p, y, 0.5);
}

const round = (x: number): number => Math.round(x * 1e5) / 1e5;

export async function train(dataDir: string, outDir: string, cacheFile: string, log: (s: string) => void, only: readonly Category[] = CATEGORIES): Promise<Record<string, Quality>> {
  const tuneOf = (file: string): Row[] => (existsSync(path.join(dataDir, file)) ? readRows(path.join(dataDir, file)).filter((r) => !isHoldout(r.text)) : []);
  const embedder = await loadEmbedder(modelsDir(), { threads: 2 });
  const cache = new EmbeddingCache(cacheFile);
  // The project's own everyday prompts (test/fixtures/detection): their tune half teaches, their holdout half is measured.
  const everydayFile = path.join(findRepoRoot(__dirname), 'test', 'fixtures', 'detection', 'everyday-prompts.txt');
  const ownEveryday = existsSync(everydayFile) ? readFileSync(everydayFile, 'utf8').split('\n').filter((l) => l.trim() !== '' && !isHoldout(l)) : [];
  const sets = Object.fromEntries(only.map((c) => [c, examplesFor(c, tuneOf, ownEveryday)])) as Record<Category, Example[]>;
  const all = [...new Set(Object.values(sets).flatMap((s) => s.map((e) => e.text)))];
  log(`embedding ${all.length} tune-half texts (cached in ${cacheFile})`);
  await cache.embed(embedder, all, (n) => n % 400 === 0 && log(`  ${n} new texts embedded`));
  await embedder.close();
  const scores: Record<string, Quality> = {};
  mkdirSync(outDir, { recursive: true });
  for (const category of only) {
    const examples = sets[category];
    const encoded: Encoded[] = examples.map((e) => {
      const f = heuristicFeatures(e.text);
      return { windows: cache.get(e.text), features: e.untrusted ? [f[1], f[1], f[2], f[3], f[4], f[5]] : f };
    });
    const labels = examples.map((e) => e.label as number);
    for (const kind of ['model', 'combined'] as HeadKind[]) {
      const useFeatures = kind === 'combined';
      const folds = 5;
      const oof = new Array<number>(examples.length);
      for (let k = 0; k < folds; k++) {
        const trainIdx = examples.map((_e, i) => i).filter((i) => i % folds !== k);
        const model = fitTexts(trainIdx.map((i) => encoded[i]), trainIdx.map((i) => labels[i]), useFeatures);
        examples.forEach((_e, i) => {
          if (i % folds === k) oof[i] = textLogit(model, encoded[i], useFeatures);
        });
      }
      const platt = fitPlatt(oof, labels);
      const q = chooseThreshold(category, oof.map((z) => sigmoid(platt.a * z + platt.b)), labels);
      const model = fitTexts(encoded, labels, useFeatures);
      const head: HeadFile = {
        category,
        kind,
        inputs: model.w.length,
        weights: Array.from(model.w, round),
        bias: round(model.b),
        platt: { a: round(platt.a), b: round(platt.b) },
        threshold: q.threshold,
      };
      writeFileSync(path.join(outDir, `${kind}-${category}.json`), JSON.stringify(head) + '\n');
      scores[`${kind}/${category}`] = { ...q, n: examples.length, positives: labels.filter((l) => l === 1).length } as Quality;
      log(`${kind}/${category}: ${examples.length} texts, out-of-fold AUC ${q.auc.toFixed(3)}, at threshold ${q.threshold}: precision ${q.precision.toFixed(3)} recall ${q.recall.toFixed(3)} FPR ${q.fpr.toFixed(3)}`);
    }
  }
  return scores;
}

function parse(argv: string[]): { data?: string; out: string; only: Category[] } {
  const args: { data?: string; out: string; only: Category[] } = { out: HEADS_DIR, only: [...CATEGORIES] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--') continue;
    if (argv[i] === '--data') args.data = argv[++i];
    else if (argv[i] === '--out') args.out = path.resolve(argv[++i]);
    else if (argv[i] === '--categories') {
      args.only = (argv[++i] ?? '').split(',') as Category[];
      const bad = args.only.filter((c) => !CATEGORIES.includes(c));
      if (bad.length > 0) throw new Error(`--categories: unknown ${bad.join(', ')} (known: ${CATEGORIES.join(', ')})`);
    } else throw new Error(`unknown argument "${argv[i]}" (usage: npm run train -- --data DIR [--out DIR] [--categories a,b])`);
  }
  return args;
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const data = resolveDataDir(args.data);
  const root = findRepoRoot(__dirname);
  mkdirSync(path.join(root, '.cache'), { recursive: true });
  const out = args.out === HEADS_DIR ? path.join(root, 'classifier', 'heads') : args.out;
  const scores = await train(data, out, path.join(root, '.cache', 'classifier-embeddings.tsv'), (s) => process.stdout.write(`${s}\n`), args.only);
  const file = path.join(out, 'scores.json');
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, Quality>) : {};
  writeFileSync(file, JSON.stringify({ ...previous, ...scores }, null, 2) + '\n');
  process.stdout.write(`heads written to ${out}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`train: ${(err as Error).message}\n`);
    process.exit(2);
  });
}
