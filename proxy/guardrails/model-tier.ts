/**
 * The sidecar's side of the model tier. Three modes, from the environment:
 *   CLASSIFIER_URL=http://akto-classifier:8090   the classifier Service (remote; the chart's default when enabled)
 *   CLASSIFIER=local                             the same code in this process (one agent outside Kubernetes;
 *                                                loads the model from MODELS_DIR, ~250 MB more RSS)
 *   neither (or CLASSIFIER=off)                  heuristic tier only — nothing of the model tier is loaded
 * Every call has a deadline (CLASSIFIER_TIMEOUT_MS, default 50): a late, failed or refused answer is an
 * error for the rules that asked (their on_error decides), never a wait. While the classifier is known to
 * be down (remote: /readyz probed every CLASSIFIER_PROBE_MS; local: still loading or files missing) calls
 * fail at once, so traffic does not pay the deadline for nothing.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { ConfigError, declare, parseHttpUrl, type Env } from '../../common/env';
import type { SegmentScores } from './engine';

export type ModelTierMode = 'off' | 'remote' | 'local';
export type ModelTierState = 'off' | 'ready' | 'loading' | 'unreachable' | 'unavailable';

export interface ModelRequest {
  text: string;
  untrusted: boolean;
  categories: string[];
}

export interface ModelTier {
  readonly mode: ModelTierMode;
  /** Scores per request item, in order; rejects on timeout, error, or while the tier is down. */
  classify(items: readonly ModelRequest[]): Promise<SegmentScores[]>;
  state(): ModelTierState;
  /** One line for /readyz. */
  describe(): string;
  close(): void;
}

/** What the classifier library offers in process (classifier/service.ts), loaded only with CLASSIFIER=local. */
interface LocalClassifier {
  classify(inputs: { text: string; untrusted?: boolean }[], categories?: readonly string[]): Promise<SegmentScores[]>;
  close(): Promise<void>;
}

type CallOutcome = 'ok' | 'timeout' | 'error' | 'down';

function tierMetrics(registry: Registry) {
  return {
    up: new Gauge({ name: 'guardrail_model_tier_up', help: '1 when the model tier answers, 0 when the sidecar runs the heuristic tier alone.', labelNames: ['mode'], registers: [registry] }),
    calls: new Counter({ name: 'guardrail_model_tier_calls_total', help: 'Calls to the model tier by outcome (ok, timeout, error, down).', labelNames: ['outcome'], registers: [registry] }),
    seconds: new Histogram({
      name: 'guardrail_model_tier_seconds',
      help: 'Time of a model tier call, deadline included.',
      buckets: [0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25],
      registers: [registry],
    }),
  };
}

export const MODEL_TIER_ENV = {
  url: declare.string('CLASSIFIER_URL', 'base URL of the classifier Service (the model tier), see [docs/classifier.md](docs/classifier.md)'),
  mode: declare.enum('CLASSIFIER', ['off', 'local', 'remote'] as const, 'off', '`local` loads the model in the sidecar process (from `MODELS_DIR`); `off` turns the tier off', '`remote` with `CLASSIFIER_URL`, else `off`'),
  timeoutMs: declare.int('CLASSIFIER_TIMEOUT_MS', 50, 1, 60_000, 'deadline of one classifier call'),
  probeMs: declare.int('CLASSIFIER_PROBE_MS', 10_000, 100, 600_000, "how often the classifier's `/readyz` is probed"),
};

export function createModelTier(env: Env, logger: Logger, registry: Registry): ModelTier {
  const url = MODEL_TIER_ENV.url.read(env);
  const chosen = MODEL_TIER_ENV.mode.read(env, url ? 'remote' : 'off');
  if (chosen === 'remote' && !url) throw new ConfigError('CLASSIFIER', 'remote needs CLASSIFIER_URL');
  if (chosen === 'local' && url) throw new ConfigError('CLASSIFIER', 'local and CLASSIFIER_URL exclude each other');
  const base = url && chosen === 'remote' ? parseHttpUrl('CLASSIFIER_URL', url) : undefined;
  const timeoutMs = MODEL_TIER_ENV.timeoutMs.read(env);
  const probeMs = MODEL_TIER_ENV.probeMs.read(env);
  const mode: ModelTierMode = chosen;
  const log = logger.child({ component: 'model-tier' });
  const m = tierMetrics(registry);
  let state: ModelTierState = mode === 'off' ? 'off' : mode === 'local' ? 'loading' : 'unreachable';
  let detail = mode === 'off' ? 'not configured (CLASSIFIER_URL unset): heuristic tier only' : '';
  const setState = (next: ModelTierState, why: string): void => {
    if (next !== state) log[next === 'ready' ? 'info' : 'warn']({ mode, state: next, why }, `model tier ${next}`);
    state = next;
    detail = why;
    m.up.set({ mode }, next === 'ready' ? 1 : 0);
  };
  m.up.set({ mode }, 0);

  let local: LocalClassifier | undefined;
  let timer: NodeJS.Timeout | undefined;
  if (mode === 'local') {
    // Loaded on demand so a sidecar without CLASSIFIER=local never loads ONNX Runtime.
    void (async () => {
      try {
        /* eslint-disable @typescript-eslint/no-require-imports -- on demand: without CLASSIFIER=local, ONNX Runtime never enters the sidecar */
        const { createClassifier } = require('../../classifier/service') as typeof import('../../classifier/service');
        const { modelsDir } = require('../../classifier/models') as typeof import('../../classifier/models');
        /* eslint-enable @typescript-eslint/no-require-imports */
        local = (await createClassifier({ modelsDir: modelsDir(env) })) as unknown as LocalClassifier;
        setState('ready', `in process (models in ${modelsDir(env)})`);
      } catch (err) {
        setState('unavailable', `in-process classifier did not load: ${(err as Error).message}; heuristic tier only`);
      }
    })();
  }
  if (base) {
    const probe = async (): Promise<void> => {
      try {
        const res = await fetch(new URL('readyz', base.href.endsWith('/') ? base : `${base.href}/`), { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        if (res.ok) setState('ready', `${base.origin} ready`);
        else setState('unreachable', `${base.origin} answered ${res.status} on /readyz; heuristic tier only`);
      } catch (err) {
        setState('unreachable', `${base.origin} not reachable (${(err as Error).name}); heuristic tier only`);
      }
    };
    void probe();
    timer = setInterval(() => void probe(), probeMs);
    timer.unref();
  }

  const remote = async (items: readonly ModelRequest[]): Promise<SegmentScores[]> => {
    const categories = [...new Set(items.flatMap((i) => i.categories))];
    const res = await fetch(new URL('v1/classify', base!.href.endsWith('/') ? base! : `${base!.href}/`), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: items.map((i) => ({ text: i.text, untrusted: i.untrusted })), categories }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = (await res.json()) as { results?: SegmentScores[]; error?: string };
    if (!res.ok || !Array.isArray(body.results) || body.results.length !== items.length) throw new Error(`classifier answered ${res.status}${body.error ? `: ${body.error}` : ''}`);
    return body.results;
  };

  const inProcess = (items: readonly ModelRequest[]): Promise<SegmentScores[]> => {
    const categories = [...new Set(items.flatMap((i) => i.categories))];
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { name: 'TimeoutError' })), timeoutMs);
      local!.classify(items.map((i) => ({ text: i.text, untrusted: i.untrusted })), categories).then(
        (r) => {
          clearTimeout(t);
          resolve(r);
        },
        (e: unknown) => {
          clearTimeout(t);
          reject(e as Error);
        },
      );
    });
  };

  return {
    mode,
    async classify(items) {
      if (state !== 'ready') {
        m.calls.inc({ outcome: 'down' });
        throw new Error(`model tier ${state}`);
      }
      const stop = m.seconds.startTimer();
      try {
        const out = await (mode === 'local' ? inProcess(items) : remote(items));
        m.calls.inc({ outcome: 'ok' });
        return out;
      } catch (err) {
        const name = (err as Error).name;
        const outcome: CallOutcome = name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'error';
        m.calls.inc({ outcome });
        if (outcome === 'error' && mode === 'remote' && (err as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED') {
          setState('unreachable', `${base!.origin} refused the connection; heuristic tier only`);
        }
        throw new Error(outcome === 'timeout' ? `no answer within ${timeoutMs} ms` : `classifier error (${name})`);
      } finally {
        stop();
      }
    },
    state: () => state,
    describe: () => `model tier (${mode}): ${state}${detail ? ` - ${detail}` : ''}`,
    close() {
      if (timer) clearInterval(timer);
      void local?.close();
    },
  };
}
