/**
 * The classifier's heads: one small network per risk category over a MiniLM window embedding — a logistic
 * regression, or an MLP with one ReLU hidden layer where that scored better out of fold — in two kinds — `model` (the embedding alone) and `combined` (the embedding plus the heuristic tier's scores of the
 * whole text) — trained by `npm run train` and committed as small JSON files in classifier/heads/. A text's
 * score is the highest over its windows; scores are Platt-calibrated probabilities, and each head carries
 * the decision threshold chosen on its training data.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { normalizeText } from '../proxy/guardrails/normalize';
import { builtinDetectors } from '../proxy/guardrails/detectors';
import { EMBEDDING_DIM } from './embedder';

export const CATEGORIES = ['prompt_injection', 'jailbreak', 'indirect_injection', 'toxicity', 'harmful_intent'] as const;
export type Category = (typeof CATEGORIES)[number];
export type HeadKind = 'model' | 'combined';

export interface HeadFile {
  category: Category;
  kind: HeadKind;
  /** Input: the embedding (384), then for `combined` the HEURISTIC_FEATURES. */
  inputs: number;
  /** MLP heads only: the hidden layer, `units` ReLUs, weights row-major (units × inputs). */
  hidden?: { units: number; weights: number[]; bias: number[] };
  /** The output layer over the inputs (logistic) or over the hidden units (MLP). */
  weights: number[];
  bias: number;
  /** Platt scaling of the raw logit: p = sigmoid(a * logit + b). */
  platt: { a: number; b: number };
  /** Calibrated probability at or above which the head says yes. */
  threshold: number;
}

export const HEURISTIC_FEATURES = ['injection', 'injection_untrusted', 'jailbreak', 'indirect', 'toxicity', 'harmful_intent'] as const;

const detectors = builtinDetectors();

/** The heuristic tier's view of a whole text, as the combined heads read it (scores 0..1). */
export function heuristicFeatures(text: string): number[] {
  const nt = normalizeText(text);
  const [inj] = detectors.injection.scan(nt, { threshold: 0 });
  const [injU] = detectors.injection.scan(nt, { threshold: 0, untrusted: true });
  const [tox] = detectors.toxicity.scan(nt, { threshold: 0 });
  const [harm] = detectors.harmful.scan(nt, { threshold: 0 });
  return [
    inj?.score ?? 0,
    injU?.score ?? 0,
    inj?.entity === 'JAILBREAK' ? (inj.score ?? 0) : 0,
    injU?.entity === 'INDIRECT_INJECTION' ? (injU.score ?? 0) : 0,
    tox?.score ?? 0,
    harm?.score ?? 0,
  ];
}

export const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

/** One affine unit over the head's input (the embedding, then the features for `combined`), from `offset` in `w`. */
function affine(w: readonly number[], offset: number, bias: number, embedding: Float32Array, features: readonly number[], withFeatures: boolean): number {
  let z = bias;
  for (let d = 0; d < EMBEDDING_DIM; d++) z += w[offset + d] * embedding[d];
  if (withFeatures) for (let k = 0; k < features.length; k++) z += w[offset + EMBEDDING_DIM + k] * features[k];
  return z;
}

export function logit(head: HeadFile, embedding: Float32Array, features: readonly number[]): number {
  const withFeatures = head.kind === 'combined';
  if (!head.hidden) return affine(head.weights, 0, head.bias, embedding, features, withFeatures);
  let z = head.bias;
  for (let j = 0; j < head.hidden.units; j++) {
    const h = affine(head.hidden.weights, j * head.inputs, head.hidden.bias[j], embedding, features, withFeatures);
    if (h > 0) z += head.weights[j] * h;
  }
  return z;
}

/** Calibrated probability of one window. */
export function probability(head: HeadFile, embedding: Float32Array, features: readonly number[]): number {
  return sigmoid(head.platt.a * logit(head, embedding, features) + head.platt.b);
}

export type HeadSet = Record<HeadKind, Record<Category, HeadFile>>;

export const HEADS_DIR = path.join(__dirname, 'heads');

/** The committed heads (classifier/heads/<kind>-<category>.json; tsc copies nothing, so read from the source folder). */
export function loadHeads(dir = headsDir()): HeadSet {
  const out = { model: {}, combined: {} } as HeadSet;
  for (const kind of ['model', 'combined'] as const) {
    for (const c of CATEGORIES) {
      const head = JSON.parse(readFileSync(path.join(dir, `${kind}-${c}.json`), 'utf8')) as HeadFile;
      const h = head.hidden;
      const fits = h ? h.weights.length === h.units * head.inputs && h.bias.length === h.units && head.weights.length === h.units : head.weights.length === head.inputs;
      if (!fits || head.inputs !== EMBEDDING_DIM + (kind === 'combined' ? HEURISTIC_FEATURES.length : 0)) {
        throw new Error(`head ${kind}-${c}.json does not fit the embedding (${head.inputs} inputs, ${head.weights.length} output weights)`);
      }
      out[kind][c] = head;
    }
  }
  return out;
}

/** classifier/heads in the source tree, also when running from dist/classifier. */
export function headsDir(): string {
  const parts = __dirname.split(path.sep);
  const i = parts.lastIndexOf('dist');
  return i >= 0 ? path.join(parts.slice(0, i).join(path.sep) || path.sep, 'classifier', 'heads') : HEADS_DIR;
}
