/**
 * `npm run bench:classifier -- [--rate 50] [--seconds 20] [--cpus 0] [--json]`
 *
 * The classifier service (dist/classifier/main.js) on one core (`taskset -c`), one ONNX thread, driven by the
 * paced open-loop generator with 128-token requests at a fixed rate. Prints p50/p99 request latency against
 * the targets (p50 <= 15 ms, p99 <= 40 ms at 50 req/s), the peak RSS, and — as the baseline measured in the
 * same run — the time of one bare ONNX embedding of the same window in this process: the ratio is what the
 * service, its HTTP and its queue add.
 */
import { spawn } from 'node:child_process';
import { loadEmbedder } from '../classifier/embedder';
import { missingModelFiles, modelsDir } from '../classifier/models';
import { freePort } from '../test/support/ports';
import { pacedLoad } from './load';
import { DIST, fmt, peakRssMiB, percentile, pinned, stopChild, waitUntilReady } from './support';
import path from 'node:path';

/** About 128 WordPiece tokens of ordinary English. */
const TEXT =
  'Our quarterly planning meeting covered the hiring plan for the platform team, the migration of the billing ' +
  'service to the new cluster, and the customer feedback we collected after the spring release. Please summarise ' +
  'the open questions about the migration timeline, list who owns each follow-up, and suggest a short agenda for ' +
  'next week so that the team can agree on the rollout order before the end of the month. Keep it short, use ' +
  'plain language, and mention any risks to the launch date that came up during the discussion.';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const rate = Number(arg('rate', '50'));
  const seconds = Number(arg('seconds', '20'));
  const cpus = arg('cpus', '0');
  const json = process.argv.includes('--json');
  const dir = modelsDir();
  if (missingModelFiles(dir).length > 0) throw new Error(`model files missing in ${dir} (run make models)`);

  const embedder = await loadEmbedder(dir, { threads: 1 });
  const windows = embedder.windows(TEXT);
  const baseline: number[] = [];
  for (let i = 0; i < 60; i++) {
    const t0 = process.hrtime.bigint();
    await embedder.embedWindows(windows);
    if (i >= 10) baseline.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await embedder.close();
  baseline.sort((a, b) => a - b);

  const port = await freePort();
  const [cmd, ...argv] = pinned(cpus, [process.execPath, path.join(DIST, 'classifier/main.js')]);
  const proc = spawn(cmd, argv, {
    env: { PATH: process.env.PATH ?? '', MODELS_DIR: dir, CLASSIFIER_PORT: String(port), CLASSIFIER_HOST: '127.0.0.1', CLASSIFIER_THREADS: '1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await waitUntilReady(proc, 'the classifier', `http://127.0.0.1:${port}/readyz`, { timeoutMs: 60000, isReady: (r) => r.ok });
    const url = `http://127.0.0.1:${port}/v1/classify`;
    const body = JSON.stringify({ inputs: [{ text: TEXT }] });
    await pacedLoad({ url, body, headers: { 'content-type': 'application/json' }, rate, seconds: 3 }); // warm-up
    const run = await pacedLoad({ url, body, headers: { 'content-type': 'application/json' }, rate, seconds });
    const lat = [...run.latencies].sort((a, b) => a - b);
    const p50 = percentile(lat, 50);
    const p99 = percentile(lat, 99);
    const rss = peakRssMiB([proc.pid!]);
    const result = {
      rate,
      seconds,
      cpus,
      tokens: windows[0].length,
      requests: run.latencies.length,
      errors: run.errors,
      late: run.late,
      p50Ms: p50,
      p99Ms: p99,
      rssMiB: rss,
      baselineEmbedP50Ms: percentile(baseline, 50),
      p50OverBaseline: p50 / percentile(baseline, 50),
      targets: { p50: p50 <= 15 ? 'met' : 'missed', p99: p99 <= 40 ? 'met' : 'missed' },
    };
    if (json) console.log(JSON.stringify(result, null, 2));
    else {
      console.log(`classifier service, ${windows[0].length}-token request, ${rate} req/s for ${seconds} s on CPU ${cpus} (1 ONNX thread)`);
      console.log(`  p50 ${fmt(p50)} ms (target <= 15: ${result.targets.p50}), p99 ${fmt(p99)} ms (target <= 40: ${result.targets.p99}), errors ${run.errors}, late ${run.late}`);
      console.log(`  baseline: one bare ONNX embedding in this process p50 ${fmt(result.baselineEmbedP50Ms)} ms; service p50 / baseline = ${fmt(result.p50OverBaseline)}`);
      console.log(`  peak RSS of the service ${fmt(rss, 0)} MiB`);
    }
  } finally {
    await stopChild(proc);
  }
}

main().catch((err: unknown) => {
  console.error(`bench:classifier: ${(err as Error).message}`);
  process.exit(2);
});
