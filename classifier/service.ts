/**
 * The model tier as a library: texts in, calibrated scores per risk category out. Window embeddings run in
 * micro-batches: requests queue their windows, and whenever the runtime is free it takes up to `maxBatch`
 * windows from the head of the queue in one ONNX call, so concurrent requests share the cost. The queue is
 * bounded (`maxQueue` windows): past it a request is refused at once (OverloadedError) instead of waiting
 * for a deadline it cannot meet. Used by the HTTP service (server.ts) and in-process by the sidecar with
 * CLASSIFIER=local.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { loadEmbedder, type Embedder } from './embedder';
import { CATEGORIES, heuristicFeatures, loadHeads, probability, type Category, type HeadSet } from './heads';

export interface ClassifyInput {
  text: string;
  /** Third-party content (a tool result, a retrieved document). */
  untrusted?: boolean;
}

export interface CategoryScore {
  /** The embedding head alone. */
  model: number;
  /** Embedding and heuristic scores together: the score the sidecar decides on. */
  combined: number;
  /** The head's own decision threshold (combined). */
  threshold: number;
}

export type TextScores = Partial<Record<Category, CategoryScore>>;

export class OverloadedError extends Error {
  constructor(queued: number) {
    super(`classifier queue is full (${queued} windows waiting)`);
    this.name = 'OverloadedError';
  }
}

export interface ClassifierOptions {
  modelsDir: string;
  /** Windows per ONNX call (default 16). */
  maxBatch?: number;
  /** Windows waiting at most (default 512). */
  maxQueue?: number;
  /** ONNX Runtime intra-op threads (default 1: one core per replica, scale with replicas). */
  threads?: number;
  registry?: Registry;
}

export interface Classifier {
  classify(inputs: readonly ClassifyInput[], categories?: readonly Category[]): Promise<TextScores[]>;
  /** Windows waiting now. */
  queued(): number;
  close(): Promise<void>;
}

interface Job {
  windows: number[][];
  out: Float32Array[];
  next: number;
  done: number;
  resolve: (v: Float32Array[]) => void;
  reject: (e: Error) => void;
}

function classifierMetrics(registry: Registry | undefined) {
  const registers = registry ? [registry] : [];
  return {
    batch: new Histogram({ name: 'classifier_batch_windows', help: 'Windows per ONNX call.', buckets: [1, 2, 4, 8, 16, 32], registers }),
    inference: new Histogram({ name: 'classifier_inference_seconds', help: 'Time of one ONNX call.', buckets: [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64], registers }),
    queue: new Gauge({ name: 'classifier_queue_windows', help: 'Windows waiting for the runtime.', registers }),
    rejected: new Counter({ name: 'classifier_rejected_total', help: 'Requests refused because the queue was full.', registers }),
  };
}

export async function createClassifier(opts: ClassifierOptions): Promise<Classifier> {
  const maxBatch = opts.maxBatch ?? 16;
  const maxQueue = opts.maxQueue ?? 512;
  const heads: HeadSet = loadHeads();
  const embedder: Embedder = await loadEmbedder(opts.modelsDir, { threads: opts.threads ?? 1 });
  const m = classifierMetrics(opts.registry);
  const jobs: Job[] = [];
  let waiting = 0;
  let running = false;
  let closed = false;

  const pump = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      while (jobs.length > 0) {
        // Take windows from the head of the queue, across jobs, up to maxBatch.
        const taken: { job: Job; index: number }[] = [];
        for (const job of jobs) {
          while (job.next < job.windows.length && taken.length < maxBatch) taken.push({ job, index: job.next++ });
          if (taken.length >= maxBatch) break;
        }
        while (jobs.length > 0 && jobs[0].next >= jobs[0].windows.length) jobs.shift();
        waiting -= taken.length;
        m.queue.set(waiting);
        const stop = m.inference.startTimer();
        let vectors: Float32Array[];
        try {
          vectors = await embedder.embedWindows(taken.map((t) => t.job.windows[t.index]));
        } catch (err) {
          for (const t of taken) t.job.reject(err as Error);
          continue;
        } finally {
          stop();
        }
        m.batch.observe(taken.length);
        taken.forEach((t, k) => {
          t.job.out[t.index] = vectors[k];
          if (++t.job.done === t.job.windows.length) t.job.resolve(t.job.out);
        });
      }
    } finally {
      running = false;
    }
  };

  const embed = (windows: number[][]): Promise<Float32Array[]> =>
    new Promise((resolve, reject) => {
      jobs.push({ windows, out: new Array(windows.length), next: 0, done: 0, resolve, reject });
      waiting += windows.length;
      m.queue.set(waiting);
      void pump();
    });

  return {
    async classify(inputs, categories = CATEGORIES) {
      if (closed) throw new Error('classifier is closed');
      const windows = inputs.map((i) => embedder.windows(i.text));
      const total = windows.reduce((n, w) => n + w.length, 0);
      if (waiting + total > maxQueue) {
        m.rejected.inc();
        throw new OverloadedError(waiting);
      }
      const vectors = await embed(windows.flat());
      let k = 0;
      return inputs.map((input, i) => {
        const own = vectors.slice(k, (k += windows[i].length));
        const f = heuristicFeatures(input.text);
        const features = input.untrusted ? [f[1], f[1], f[2], f[3], f[4], f[5]] : f;
        const scores: TextScores = {};
        for (const c of categories) {
          const model = Math.max(...own.map((e) => probability(heads.model[c], e, features)));
          const combined = Math.max(...own.map((e) => probability(heads.combined[c], e, features)));
          scores[c] = { model: round(model), combined: round(combined), threshold: heads.combined[c].threshold };
        }
        return scores;
      });
    },
    queued: () => waiting,
    async close() {
      closed = true;
      await embedder.close();
    },
  };
}

const round = (x: number): number => Math.round(x * 10000) / 10000;
