/**
 * Sentence embeddings with all-MiniLM-L6-v2 (int8 ONNX) on ONNX Runtime's CPU provider: WordPiece tokens,
 * windows of at most 128 tokens, mean pooling over the attention mask, L2 normalised (384 dimensions).
 * Long texts are cut into windows so an instruction in the middle of an e-mail is embedded on its own; at
 * most MAX_WINDOWS per text, spread evenly over it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Tokenizer as TokenizerClass } from '@huggingface/tokenizers' with { 'resolution-mode': 'import' };
import { missingModelFiles } from './models';

export const EMBEDDING_DIM = 384;
export const WINDOW_TOKENS = 128;
export const MAX_WINDOWS = 8;
/** Windows overlap by this many tokens, so a sentence cut at a window edge is whole in one of them. */
const OVERLAP = 24;
const CLS = 101;
const SEP = 102;

export interface Embedder {
  /** Token windows of a text (each with [CLS] … [SEP]). */
  windows(text: string): number[][];
  /** One embedding per window, in order. */
  embedWindows(windows: number[][]): Promise<Float32Array[]>;
  close(): Promise<void>;
}

export async function loadEmbedder(dir: string, opts: { threads?: number } = {}): Promise<Embedder> {
  const missing = missingModelFiles(dir);
  if (missing.length > 0) throw new Error(`model files missing in ${dir}: ${missing.join(', ')} (run make models, or set MODELS_DIR)`);
  // The package's types are ESM-only; its CommonJS build (exports "require") is what this CommonJS code loads.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Tokenizer } = require('@huggingface/tokenizers') as { Tokenizer: typeof TokenizerClass };
  const tokenizer = new Tokenizer(
    JSON.parse(readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as object,
    JSON.parse(readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')) as object,
  );
  const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'), {
    intraOpNumThreads: opts.threads ?? 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  return {
    windows(text: string): number[][] {
      const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
      const body = WINDOW_TOKENS - 2;
      if (ids.length <= body) return [[CLS, ...ids, SEP]];
      const step = body - OVERLAP;
      const starts: number[] = [];
      for (let s = 0; s < ids.length - OVERLAP; s += step) starts.push(Math.min(s, ids.length - body));
      const picked = starts.length <= MAX_WINDOWS ? starts : Array.from({ length: MAX_WINDOWS }, (_v, k) => starts[Math.round((k * (starts.length - 1)) / (MAX_WINDOWS - 1))]);
      return [...new Set(picked)].map((s) => [CLS, ...ids.slice(s, s + body), SEP]);
    },
    async embedWindows(windows: number[][]): Promise<Float32Array[]> {
      if (windows.length === 0) return [];
      const batch = windows.length;
      const len = Math.max(...windows.map((w) => w.length));
      const ids = new BigInt64Array(batch * len);
      const mask = new BigInt64Array(batch * len);
      windows.forEach((w, b) => {
        for (let i = 0; i < w.length; i++) {
          ids[b * len + i] = BigInt(w[i]);
          mask[b * len + i] = 1n;
        }
      });
      const out = await session.run({
        input_ids: new ort.Tensor('int64', ids, [batch, len]),
        attention_mask: new ort.Tensor('int64', mask, [batch, len]),
        token_type_ids: new ort.Tensor('int64', new BigInt64Array(batch * len), [batch, len]),
      });
      const hidden = out.last_hidden_state.data as Float32Array;
      return windows.map((w, b) => {
        const v = new Float32Array(EMBEDDING_DIM);
        for (let i = 0; i < w.length; i++) {
          const base = (b * len + i) * EMBEDDING_DIM;
          for (let d = 0; d < EMBEDDING_DIM; d++) v[d] += hidden[base + d];
        }
        let norm = 0;
        for (let d = 0; d < EMBEDDING_DIM; d++) norm += v[d] * v[d];
        norm = Math.sqrt(norm) || 1;
        for (let d = 0; d < EMBEDDING_DIM; d++) v[d] /= norm;
        return v;
      });
    },
    close: () => session.release(),
  };
}
