/**
 * `npm run bench`: load against the stub upstream directly and through the proxy in the same run,
 * printing what the proxy adds as differences and ratios to direct.
 *
 *   BENCH_SECONDS   seconds per fixed-rate run (default 8)
 *   BENCH_RATE      requests/s for the latency runs (default 500)
 *   BENCH_VARIANTS  comma list of proxy setups to measure (default: all below)
 *   BENCH_JSON      path to also write the numbers as JSON
 */
import fs from 'node:fs';
import http from 'node:http';
import autocannon from 'autocannon';
import { fmt, printTable, startProxyProcess, startStub, stats, stopChild, type Child, type LatencyStats } from './support';
import { startAktoSink, type AktoSink } from './akto-sink';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const RATE = Number(process.env.BENCH_RATE ?? 500);

/** Proxy setups. Each is the same binary with a different environment. */
const VARIANTS: Record<string, (sink: AktoSink) => Record<string, string>> = {
  plain: () => ({ POLICY_PACK: 'off', TRACE_FILE: '/dev/null' }),
  guardrails: () => ({ POLICY_PACK: 'default', TRACE_FILE: '/dev/null' }),
  tracing: (sink) => ({ POLICY_PACK: 'off', AKTO_API_BASE_URL: sink.url, AKTO_API_TOKEN: 'bench-token', SPOOL_DIR: sink.spoolDir }),
  'tracing-stalled': (sink) => ({ POLICY_PACK: 'off', AKTO_API_BASE_URL: sink.stalledUrl, AKTO_API_TOKEN: 'bench-token', SPOOL_DIR: sink.spoolDir + '-stalled' }),
};

/** A 4 KB prompt of ordinary prose. */
const PROMPT = Array.from({ length: 64 }, (_, i) => `Sentence ${i} of the benchmark prompt talks about weather, maps and trains.`).join(' ').slice(0, 4096);
const CHAT_BODY = JSON.stringify({ model: 'tgi', max_tokens: 32, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: PROMPT }] });
const STREAM_BODY = JSON.stringify({ model: 'tgi', max_tokens: 32, stream: true, messages: [{ role: 'user', content: PROMPT }] });
const HEADERS = { 'content-type': 'application/json', authorization: 'Bearer hf_bench_token' };

async function fixedRate(base: string): Promise<LatencyStats & { errors: number }> {
  const samples: number[] = [];
  let errors = 0;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      { url: `${base}/v1/chat/completions`, method: 'POST', headers: HEADERS, body: CHAT_BODY, connections: 20, overallRate: RATE, duration: SECONDS },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    // autocannon's own histogram keeps whole milliseconds; the per-response times are exact.
    instance.on('response', (_client, status, _bytes, responseTime) => {
      if (status === 200) samples.push(responseTime);
      else errors++;
    });
  });
  errors += result.errors + result.timeouts;
  return { ...stats(samples, SECONDS), errors };
}

async function maxThroughput(base: string): Promise<number> {
  const result = await autocannon({ url: `${base}/v1/chat/completions`, method: 'POST', headers: HEADERS, body: CHAT_BODY, connections: 16, duration: Math.max(3, SECONDS / 2) });
  return result.requests.average;
}

/** Time to first byte of streamed chat, one stream at a time at a steady pace. */
async function streamTtfb(base: string): Promise<LatencyStats> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const samples: number[] = [];
  const end = Date.now() + SECONDS * 1000;
  const url = new URL(`${base}/v1/chat/completions`);
  while (Date.now() < end) {
    samples.push(
      await new Promise<number>((resolve, reject) => {
        const t0 = process.hrtime.bigint();
        let first = 0;
        const req = http.request(url, { method: 'POST', headers: HEADERS, agent }, (res) => {
          res.once('data', () => (first = Number(process.hrtime.bigint() - t0) / 1e6));
          res.on('end', () => resolve(first));
          res.resume();
        });
        req.on('error', reject);
        req.end(STREAM_BODY);
      }),
    );
    await new Promise((r) => setTimeout(r, 5));
  }
  agent.destroy();
  return stats(samples, SECONDS);
}

interface Row {
  target: string;
  chat: LatencyStats & { errors: number };
  ttfb: LatencyStats;
  throughput: number;
}

async function measure(target: string, base: string): Promise<Row> {
  // Warm up connections and JIT before measuring.
  await autocannon({ url: `${base}/v1/chat/completions`, method: 'POST', headers: HEADERS, body: CHAT_BODY, connections: 4, amount: 300 });
  const chat = await fixedRate(base);
  const ttfb = await streamTtfb(base);
  const throughput = await maxThroughput(base);
  return { target, chat, ttfb, throughput };
}

async function main(): Promise<void> {
  const wanted = (process.env.BENCH_VARIANTS ?? Object.keys(VARIANTS).join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const w of wanted) if (!VARIANTS[w]) throw new Error(`unknown BENCH_VARIANTS entry "${w}" (known: ${Object.keys(VARIANTS).join(', ')})`);
  const stub = await startStub();
  const sink = await startAktoSink();
  const children: Child[] = [stub];
  const rows: Row[] = [];
  try {
    rows.push(await measure('direct', stub.url));
    for (const name of wanted) {
      const proxy = await startProxyProcess(stub.url, VARIANTS[name](sink));
      children.push(proxy);
      rows.push(await measure(`proxy:${name}`, proxy.url));
      await stopChild(proxy.proc);
    }
  } finally {
    for (const c of children) await c.stop();
    await sink.close();
  }
  report(rows, sink);
}

function report(rows: Row[], sink: AktoSink): void {
  const [direct] = rows;
  console.log(`\nakto-agent-proxy benchmark — ${SECONDS}s runs, ${RATE} req/s, 4 KB chat prompt, node ${process.version}`);
  printTable(
    'Non-streaming chat at a fixed rate (ms; added = proxy - direct)',
    ['target', 'p50', 'p99', 'added p50', 'added p99', 'p50 ratio', 'ok', 'errors'],
    rows.map((r) => [r.target, fmt(r.chat.p50), fmt(r.chat.p99), fmt(r.chat.p50 - direct.chat.p50), fmt(r.chat.p99 - direct.chat.p99), fmt(r.chat.p50 / direct.chat.p50), r.chat.n, r.chat.errors]),
  );
  printTable(
    'Streaming chat, time to first byte (ms)',
    ['target', 'p50', 'p99', 'added p50', 'added p99'],
    rows.map((r) => [r.target, fmt(r.ttfb.p50), fmt(r.ttfb.p99), fmt(r.ttfb.p50 - direct.ttfb.p50), fmt(r.ttfb.p99 - direct.ttfb.p99)]),
  );
  printTable(
    'Throughput, 16 connections closed loop (req/s)',
    ['target', 'req/s', 'ratio to direct'],
    rows.map((r) => [r.target, fmt(r.throughput, 0), fmt(r.throughput / direct.throughput)]),
  );
  console.log(`\nAkto sink received ${sink.records()} records in ${sink.posts()} POSTs.`);
  if (process.env.BENCH_JSON) fs.writeFileSync(process.env.BENCH_JSON, JSON.stringify({ seconds: SECONDS, rate: RATE, rows }, null, 2));
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
