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
import { CATEGORIES, HEADS_DIR, heuristicFeatures, sigmoid, type Category, type HeadFile, type HeadKind } from './heads';
import { modelsDir } from './models';
import { seededRandom } from '../common/random';

export interface Example {
  text: string;
  label: 0 | 1;
  untrusted: boolean;
  /**
   * Negatives that are what the guard sees in production: the project's own everyday prompts (input users type,
   * with trigger words) and the indirect set's clean e-mails (what tools return). A few hundred among thousands,
   * so they weigh more in the loss and are held to the FPR budget on their own.
   */
  watched?: boolean;
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
  const ex = (rows: Row[], untrusted = false): Example[] => rows.map((r) => ({ text: r.text, label: r.label, untrusted, ...(r.category === 'own-everyday' ? { watched: true } : {}) }));
  switch (category) {
    case 'prompt_injection':
      // BIPIA's attack payloads are ordinary requests when a user types them ("Reply in Spanish"): they teach
      // the indirect head, in their e-mails, not the direct one (the eval README's advice for direct detectors).
      return ex([...inj.filter((r) => r.label === 1 && !r.category.startsWith('bipia')), ...benign]);
    case 'jailbreak':
      return ex([...inj.filter((r) => r.category === 'jailbreak-inthewild'), ...benign]);
    case 'indirect_injection':
      return [...ex(read('indirect-injection.jsonl'), true).map((e) => (e.label === 0 ? { ...e, watched: true } : e)), ...ex(benign, true)];
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

type Vec = Float32Array;

/** A fitted head before it is written: the raw logit of one input row, and its weights for the head file. */
export interface Net {
  logit(x: Vec): number;
  file(): Pick<HeadFile, 'weights' | 'bias' | 'hidden'>;
}

export type HeadType = 'logistic' | 'mlp';

/** The head's input rows of one text: each window's embedding, followed by the text's features for `combined`. */
function inputRows(t: Encoded, useFeatures: boolean): Vec[] {
  if (!useFeatures) return t.windows;
  return t.windows.map((e) => {
    const x = new Float32Array(EMBEDDING_DIM + t.features.length);
    x.set(e);
    x.set(t.features, EMBEDDING_DIM);
    return x;
  });
}

/** Per-class weights so both classes weigh the same in the loss. */
function classWeights(y: readonly number[]): [number, number] {
  const pos = y.filter((v) => v === 1).length;
  const neg = y.length - pos;
  return [y.length / (2 * Math.max(neg, 1)), y.length / (2 * Math.max(pos, 1))];
}

/** Adam over one flat parameter vector; `decay` marks the entries that get L2 (weights, not biases). */
class Adam {
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private t = 0;
  constructor(
    private readonly params: Float64Array,
    private readonly lr: number,
    private readonly l2: number,
    private readonly decay: (i: number) => boolean,
  ) {
    this.m = new Float64Array(params.length);
    this.v = new Float64Array(params.length);
  }

  step(grad: Float64Array, scale: number): void {
    this.t++;
    const c1 = 1 - 0.9 ** this.t;
    const c2 = 1 - 0.999 ** this.t;
    for (let i = 0; i < this.params.length; i++) {
      const g = grad[i] * scale + (this.decay(i) ? this.l2 * this.params[i] : 0);
      this.m[i] = 0.9 * this.m[i] + 0.1 * g;
      this.v[i] = 0.999 * this.v[i] + 0.001 * g * g;
      this.params[i] -= (this.lr * (this.m[i] / c1)) / (Math.sqrt(this.v[i] / c2) + 1e-8);
    }
  }
}

/** Logistic regression with L2, class-balanced, full-batch Adam. */
function fitLogistic(x: Vec[], y: number[], sw: number[], epochs = 150): Net {
  const dims = x[0].length;
  const p = new Float64Array(dims + 1); // weights, then the bias
  const cw = classWeights(y);
  const opt = new Adam(p, 0.05, 1e-3, (i) => i < dims);
  const g = new Float64Array(dims + 1);
  const logit = (xi: Vec): number => {
    let z = p[dims];
    for (let d = 0; d < dims; d++) z += p[d] * xi[d];
    return z;
  };
  for (let epoch = 1; epoch <= epochs; epoch++) {
    g.fill(0);
    for (let i = 0; i < x.length; i++) {
      const err = (sigmoid(logit(x[i])) - y[i]) * cw[y[i]] * sw[i];
      for (let d = 0; d < dims; d++) g[d] += err * x[i][d];
      g[dims] += err;
    }
    opt.step(g, 1 / x.length);
  }
  return { logit, file: () => ({ weights: Array.from(p.subarray(0, dims), round), bias: round(p[dims]) }) };
}

const textLogit = (net: Net, windows: Vec[]): number => Math.max(...windows.map((x) => net.logit(x)));

/** Multiple-instance training: all windows first, then each positive text's best window only (twice). */
export function fitLogisticTexts(texts: Vec[][], labels: number[], weights: number[] = labels.map(() => 1)): Net {
  let net: Net | undefined;
  for (let round = 0; round < 3; round++) {
    const x: Vec[] = [];
    const y: number[] = [];
    const sw: number[] = [];
    texts.forEach((windows, i) => {
      const chosen = net && labels[i] === 1 && windows.length > 1 ? [bestWindow(net, windows)] : windows;
      for (const e of chosen) {
        x.push(e);
        y.push(labels[i]);
        sw.push(weights[i]);
      }
    });
    net = fitLogistic(x, y, sw);
    if (!texts.some((t) => t.length > 1)) break;
  }
  return net!;
}

function bestWindow(net: Net, windows: Vec[]): Vec {
  let best = windows[0];
  let top = -Infinity;
  for (const x of windows) {
    const z = net.logit(x);
    if (z > top) [best, top] = [x, z];
  }
  return best;
}

/** The MLP heads' shape and training schedule (chosen on out-of-fold scores of the tune half). */
const MLP = { units: 32, maxEpochs: 60, checkEvery: 5, warmEpochs: 10, lr: 2e-3, l2: 1e-4, dropout: 0.2, batch: 64, seed: 20261203 };


/**
 * One hidden ReLU layer, class-balanced cross-entropy, mini-batch Adam with L2 and dropout on the hidden
 * units. Multiple instances as for the logistic heads: all windows during the first epochs, then each
 * positive text through its best window, chosen again every few epochs. `checkpoint` sees the net every
 * `checkEvery` epochs (out-of-fold early stopping picks the epoch count).
 */
export function fitMlp(texts: Vec[][], labels: number[], epochs: number, weights: number[] = labels.map(() => 1), checkpoint?: (epoch: number, net: Net) => void): Net {
  const dims = texts[0][0].length;
  const H = MLP.units;
  const rnd = seededRandom(MLP.seed);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  // Parameters in one vector: hidden weights (H × dims), hidden biases (H), output weights (H), output bias.
  const p = new Float64Array(H * dims + 2 * H + 1);
  const B1 = H * dims;
  const W2 = B1 + H;
  const B2 = W2 + H;
  for (let i = 0; i < B1; i++) p[i] = gauss() * Math.sqrt(2 / dims);
  for (let j = 0; j < H; j++) p[W2 + j] = gauss() * Math.sqrt(1 / H);
  const opt = new Adam(p, MLP.lr, MLP.l2, (i) => i < B1 || (i >= W2 && i < B2));
  const grad = new Float64Array(p.length);
  const h = new Float64Array(H);
  const hidden = (x: Vec, mask?: Float64Array): void => {
    for (let j = 0; j < H; j++) {
      let z = p[B1 + j];
      const o = j * dims;
      for (let d = 0; d < dims; d++) z += p[o + d] * x[d];
      h[j] = z > 0 ? z * (mask ? mask[j] : 1) : 0;
    }
  };
  const out = (): number => {
    let z = p[B2];
    for (let j = 0; j < H; j++) z += p[W2 + j] * h[j];
    return z;
  };
  const net: Net = {
    logit: (x) => {
      hidden(x);
      return out();
    },
    file: () => ({
      hidden: { units: H, weights: Array.from(p.subarray(0, B1), round), bias: Array.from(p.subarray(B1, W2), round) },
      weights: Array.from(p.subarray(W2, B2), round),
      bias: round(p[B2]),
    }),
  };
  const mask = new Float64Array(H);
  let chosen: Vec[][] = texts;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    if (epoch > MLP.warmEpochs && (epoch - MLP.warmEpochs) % MLP.checkEvery === 1) {
      chosen = texts.map((windows, i) => (labels[i] === 1 && windows.length > 1 ? [bestWindow(net, windows)] : windows));
    }
    const rows: { x: Vec; y: number; w: number }[] = chosen.flatMap((windows, i) => windows.map((x) => ({ x, y: labels[i], w: weights[i] })));
    const cw = classWeights(rows.map((r) => r.y));
    for (let i = rows.length - 1; i > 0; i--) {
      const k = Math.floor(rnd() * (i + 1));
      [rows[i], rows[k]] = [rows[k], rows[i]];
    }
    for (let start = 0; start < rows.length; start += MLP.batch) {
      const batch = rows.slice(start, start + MLP.batch);
      grad.fill(0);
      for (const { x, y, w } of batch) {
        for (let j = 0; j < H; j++) mask[j] = rnd() < MLP.dropout ? 0 : 1 / (1 - MLP.dropout);
        hidden(x, mask);
        const err = (sigmoid(out()) - y) * cw[y] * w;
        grad[B2] += err;
        for (let j = 0; j < H; j++) {
          if (h[j] === 0) continue;
          grad[W2 + j] += err * h[j];
          const dz = err * p[W2 + j] * mask[j];
          grad[B1 + j] += dz;
          const o = j * dims;
          for (let d = 0; d < dims; d++) grad[o + d] += dz * x[d];
        }
      }
      opt.step(grad, 1 / batch.length);
    }
    if (checkpoint && epoch % MLP.checkEvery === 0) checkpoint(epoch, net);
  }
  return net;
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

/** Area under the ROC curve by ranks (ties count half). */
function rocAuc(p: readonly number[], y: readonly number[]): number {
  const order = p.map((s, i) => ({ s, y: y[i] })).sort((a, b) => a.s - b.s);
  let negBelow = 0;
  let wins = 0;
  let pos = 0;
  for (let i = 0; i < order.length; ) {
    let j = i;
    let posHere = 0;
    let negHere = 0;
    while (j < order.length && order[j].s === order[i].s) {
      if (order[j].y === 1) posHere++;
      else negHere++;
      j++;
    }
    wins += posHere * (negBelow + negHere / 2);
    negBelow += negHere;
    pos += posHere;
    i = j;
  }
  const neg = negBelow;
  return pos && neg ? wins / (pos * neg) : 0;
}

/** Precision, recall, FPR and F1 at every candidate threshold in one sweep from the top score down. */
function sweep(p: readonly number[], y: readonly number[]): Omit<Quality, 'auc'>[] {
  const candidates = [...new Set(p.map((s) => Math.round(s * 1000) / 1000))].sort((a, b) => b - a);
  const order = p.map((s, i) => ({ s, y: y[i] })).sort((a, b) => b.s - a.s);
  const pos = y.filter((v) => v === 1).length;
  const neg = y.length - pos;
  let tp = 0;
  let fp = 0;
  let k = 0;
  const out: Omit<Quality, 'auc'>[] = [];
  for (const t of candidates) {
    while (k < order.length && order[k].s >= t) {
      if (order[k].y === 1) tp++;
      else fp++;
      k++;
    }
    const precision = tp + fp ? tp / (tp + fp) : 1;
    const recall = pos ? tp / pos : 0;
    out.push({ threshold: t, precision, recall, fpr: neg ? fp / neg : 0, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0 });
  }
  return out.reverse();
}

/** The out-of-fold false-positive budget of the injection-like categories (targets allow 0.02 benign, 0.03 NotInject). */
export const FPR_BUDGET = 0.015;

/** Loss weight of a watched negative (Example.watched). */
const WATCHED_WEIGHT = 3;

const CONTENT: readonly Category[] = ['toxicity', 'harmful_intent'];

/**
 * Injection-like categories: the lowest threshold with out-of-fold FPR <= FPR_BUDGET on all negatives and on
 * the watched negatives alone (everyday prompts, clean e-mails: what a block must not hit); content categories: best F1.
 */
function chooseThreshold(category: Category, p: number[], y: number[], watched: readonly boolean[]): Quality {
  const qs = sweep(p, y);
  const auc = rocAuc(p, y);
  if (CONTENT.includes(category)) return { ...qs.reduce((a, b) => (b.f1 > a.f1 ? b : a)), auc };
  const own = p.filter((_s, i) => watched[i]);
  const ownFpr = (t: number): number => (own.length ? own.filter((s) => s >= t).length / own.length : 0);
  return { ...(qs.find((q) => q.fpr <= FPR_BUDGET && ownFpr(q.threshold) <= FPR_BUDGET) ?? qs[qs.length - 1]), auc };
}

/** What the head is chosen by: recall at the FPR budget (injection-like), F1 (content); AUC breaks ties. */
function merit(category: Category, q: Quality): number {
  return (CONTENT.includes(category) ? q.f1 : q.recall) + q.auc * 1e-3;
}

const round = (x: number): number => Math.round(x * 1e5) / 1e5;

const FOLDS = 5;

/** Out-of-fold logits of one head type (5 folds by text); for the MLP also the epoch count early stopping chose. */
function outOfFold(category: Category, type: HeadType, texts: Vec[][], labels: number[], weights: number[], watched: boolean[]): { oof: number[]; epochs: number } {
  const folds = Array.from({ length: FOLDS }, (_v, k) => texts.map((_t, i) => i).filter((i) => i % FOLDS === k));
  if (type === 'logistic') {
    const oof = new Array<number>(texts.length);
    for (const held of folds) {
      const inFold = new Set(held);
      const rest = texts.map((_t, i) => i).filter((i) => !inFold.has(i));
      const net = fitLogisticTexts(rest.map((i) => texts[i]), rest.map((i) => labels[i]), rest.map((i) => weights[i]));
      for (const i of held) oof[i] = textLogit(net, texts[i]);
    }
    return { oof, epochs: 0 };
  }
  const byEpoch = new Map<number, number[]>();
  for (const held of folds) {
    const inFold = new Set(held);
    const rest = texts.map((_t, i) => i).filter((i) => !inFold.has(i));
    fitMlp(rest.map((i) => texts[i]), rest.map((i) => labels[i]), MLP.maxEpochs, rest.map((i) => weights[i]), (epoch, net) => {
      const oof = byEpoch.get(epoch) ?? new Array<number>(texts.length);
      for (const i of held) oof[i] = textLogit(net, texts[i]);
      byEpoch.set(epoch, oof);
    });
  }
  let best: { oof: number[]; epochs: number; merit: number } | undefined;
  for (const [epochs, oof] of byEpoch) {
    const m = merit(category, chooseThreshold(category, oof, labels, watched));
    if (!best || m > best.merit) best = { oof, epochs, merit: m };
  }
  return best!;
}

export interface HeadScore extends Quality {
  type: HeadType;
  n: number;
  positives: number;
  /** MLP: epochs chosen by out-of-fold early stopping. */
  epochs?: number;
  /** The other type's out-of-fold figures, for the comparison in the data card. */
  rejected?: Quality & { type: HeadType };
}

export async function train(dataDir: string, outDir: string, cacheFile: string, log: (s: string) => void, only: readonly Category[] = CATEGORIES, types: readonly HeadType[] = ['logistic', 'mlp']): Promise<Record<string, HeadScore>> {
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
  const scores: Record<string, HeadScore> = {};
  mkdirSync(outDir, { recursive: true });
  for (const category of only) {
    const examples = sets[category];
    const encoded: Encoded[] = examples.map((e) => {
      const f = heuristicFeatures(e.text);
      return { windows: cache.get(e.text), features: e.untrusted ? [f[1], f[1], f[2], f[3], f[4], f[5]] : f };
    });
    const labels = examples.map((e) => e.label as number);
    const watched = examples.map((e) => e.watched === true);
    const weights = watched.map((w) => (w ? WATCHED_WEIGHT : 1));
    for (const kind of ['model', 'combined'] as HeadKind[]) {
      const texts = encoded.map((t) => inputRows(t, kind === 'combined'));
      const tried = types.map((type) => {
        const { oof, epochs } = outOfFold(category, type, texts, labels, weights, watched);
        const platt = fitPlatt(oof, labels);
        const q = chooseThreshold(category, oof.map((z) => sigmoid(platt.a * z + platt.b)), labels, watched);
        log(`  ${kind}/${category} ${type}${epochs ? ` (${epochs} epochs)` : ''}: out-of-fold AUC ${q.auc.toFixed(3)}, precision ${q.precision.toFixed(3)} recall ${q.recall.toFixed(3)} FPR ${q.fpr.toFixed(3)} F1 ${q.f1.toFixed(3)}`);
        return { type, epochs, platt, q };
      });
      const chosen = tried.reduce((a, b) => (merit(category, b.q) > merit(category, a.q) ? b : a));
      const other = tried.find((t) => t !== chosen);
      const net = chosen.type === 'mlp' ? fitMlp(texts, labels, chosen.epochs, weights) : fitLogisticTexts(texts, labels, weights);
      const head: HeadFile = {
        category,
        kind,
        inputs: texts[0][0].length,
        ...net.file(),
        platt: { a: round(chosen.platt.a), b: round(chosen.platt.b) },
        threshold: chosen.q.threshold,
      };
      writeFileSync(path.join(outDir, `${kind}-${category}.json`), JSON.stringify(head) + '\n');
      scores[`${kind}/${category}`] = {
        ...chosen.q,
        type: chosen.type,
        n: examples.length,
        positives: labels.filter((l) => l === 1).length,
        ...(chosen.epochs ? { epochs: chosen.epochs } : {}),
        ...(other ? { rejected: { ...other.q, type: other.type } } : {}),
      };
      log(`${kind}/${category}: ${chosen.type} head, threshold ${chosen.q.threshold}`);
    }
  }
  return scores;
}

interface TrainArgs {
  data?: string;
  out: string;
  only: Category[];
  types: HeadType[];
}

function parse(argv: string[]): TrainArgs {
  const usage = 'npm run train -- --data DIR [--out DIR] [--categories a,b] [--types logistic,mlp]';
  const args: TrainArgs = { out: HEADS_DIR, only: [...CATEGORIES], types: ['logistic', 'mlp'] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--') continue;
    if (argv[i] === '--data') args.data = argv[++i];
    else if (argv[i] === '--out') args.out = path.resolve(argv[++i]);
    else if (argv[i] === '--categories') {
      args.only = (argv[++i] ?? '').split(',') as Category[];
      const bad = args.only.filter((c) => !CATEGORIES.includes(c));
      if (bad.length > 0) throw new Error(`--categories: unknown ${bad.join(', ')} (known: ${CATEGORIES.join(', ')})`);
    } else if (argv[i] === '--types') {
      args.types = (argv[++i] ?? '').split(',') as HeadType[];
      if (args.types.length === 0 || args.types.some((t) => t !== 'logistic' && t !== 'mlp')) throw new Error('--types: a comma-separated list of logistic, mlp');
    } else throw new Error(`unknown argument "${argv[i]}" (usage: ${usage})`);
  }
  return args;
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const data = resolveDataDir(args.data);
  const root = findRepoRoot(__dirname);
  mkdirSync(path.join(root, '.cache'), { recursive: true });
  const out = args.out === HEADS_DIR ? path.join(root, 'classifier', 'heads') : args.out;
  const scores = await train(data, out, path.join(root, '.cache', 'classifier-embeddings.tsv'), (s) => process.stdout.write(`${s}\n`), args.only, args.types);
  const file = path.join(out, 'scores.json');
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, HeadScore>) : {};
  writeFileSync(file, JSON.stringify({ ...previous, ...scores }, null, 2) + '\n');
  process.stdout.write(`heads written to ${out}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`train: ${(err as Error).message}\n`);
    process.exit(2);
  });
}
