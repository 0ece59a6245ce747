/** @jest-environment ./test/support/onnx-environment.js */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EMBEDDING_DIM } from '../../../classifier/embedder';
import { HEADS_DIR, loadHeads, logit, type HeadFile } from '../../../classifier/heads';
import { fitLogisticTexts, fitMlp, type Net } from '../../../classifier/train';

/** Deterministic pseudo-random numbers, so the synthetic sets are the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Embedding-sized vectors whose label is the XOR of the signs of two coordinates: no linear head can separate
 * them, one hidden layer can. Each text is one window.
 */
function xorSet(n: number, seed: number): { texts: Float32Array[][]; labels: number[] } {
  const r = rng(seed);
  const texts: Float32Array[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = new Float32Array(EMBEDDING_DIM).map(() => (r() - 0.5) * 0.02);
    const a = r() < 0.5 ? -1 : 1;
    const b = r() < 0.5 ? -1 : 1;
    x[3] = a * (0.2 + r() * 0.1);
    x[7] = b * (0.2 + r() * 0.1);
    texts.push([x]);
    labels.push(a === b ? 1 : 0);
  }
  return { texts, labels };
}

const accuracy = (net: Net, set: { texts: Float32Array[][]; labels: number[] }): number =>
  set.texts.filter((t, i) => (net.logit(t[0]) >= 0 ? 1 : 0) === set.labels[i]).length / set.texts.length;

describe('classifier heads: MLP and logistic', () => {
  const train = xorSet(400, 1);
  const test = xorSet(200, 2);

  it('an MLP head learns a boundary a logistic head cannot', () => {
    const mlp = fitMlp(train.texts, train.labels, 40);
    const logistic = fitLogisticTexts(train.texts, train.labels);
    expect(accuracy(mlp, test)).toBeGreaterThan(0.9);
    expect(accuracy(logistic, test)).toBeLessThan(0.7);
  });

  it('a written MLP head scores in the service as it did in training', () => {
    const net = fitMlp(train.texts, train.labels, 10);
    const head: HeadFile = { category: 'toxicity', kind: 'model', inputs: EMBEDDING_DIM, ...net.file(), platt: { a: 1, b: 0 }, threshold: 0.5 };
    const served = JSON.parse(JSON.stringify(head)) as HeadFile;
    for (const [x] of test.texts.slice(0, 20)) expect(logit(served, x, [])).toBeCloseTo(net.logit(x), 2);
  });

  it('loads the committed heads and refuses an MLP head whose layers do not fit', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'aap-heads-'));
    try {
      cpSync(HEADS_DIR, dir, { recursive: true });
      expect(() => loadHeads(dir)).not.toThrow();
      const file = path.join(dir, 'model-toxicity.json');
      const net = fitMlp(train.texts.slice(0, 20), train.labels.slice(0, 20), 1);
      const head = { ...(JSON.parse(readFileSync(file, 'utf8')) as HeadFile), ...net.file() };
      head.hidden!.bias.pop();
      writeFileSync(file, JSON.stringify(head));
      expect(() => loadHeads(dir)).toThrow(/model-toxicity\.json does not fit/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
