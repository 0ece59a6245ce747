/**
 * `npm run bench`: load against the stub upstream directly and through the proxy in the same run,
 * printing what the proxy adds as differences and ratios to direct. The inbound variants put the stub where the
 * agent app sits (end user → inbound listener → app): the same load through INBOUND_PORT, every string of the
 * request and of the answer read, streams through the inbound stream rewriter.
 *
 *   BENCH_SECONDS   seconds per fixed-rate run (default 8)
 *   BENCH_RATE      requests/s for the latency runs (default 500)
 *   BENCH_VARIANTS  comma list of proxy setups to measure (default: all below)
 *   BENCH_JSON      path to also write the numbers as JSON
 */
import fs from 'node:fs';
import http from 'node:http';
import autocannon from 'autocannon';
import { freePort } from '../test/support/ports';
import { cpuMs, fmt, printTable, startProxyProcess, startStub, stats, stopChild, type Child, type LatencyStats } from './support';
import { startAktoSink, type AktoSink } from './akto-sink';
import { pacedLoad } from './load';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const RATE = Number(process.env.BENCH_RATE ?? 500);

/** Proxy setups: the product with different environments, and bare http-proxy as the floor. */
const PEERS: Record<string, string> = { 'http-proxy-only': 'bench/peer-http-proxy.js' };
const VARIANTS: Record<string, (sink: AktoSink) => Record<string, string>> = {
  'http-proxy-only': () => ({}),
  plain: () => ({ POLICY_PACK: 'off', TRACE_FILE: '/dev/null' }),
  guardrails: () => ({ POLICY_PACK: 'default', TRACE_FILE: '/dev/null' }),
  tracing: (sink) => ({ POLICY_PACK: 'off', AKTO_API_BASE_URL: sink.url, AKTO_API_TOKEN: 'bench-token', SPOOL_DIR: sink.spoolDir }),
  'tracing-stalled': (sink) => ({ POLICY_PACK: 'off', AKTO_API_BASE_URL: sink.stalledUrl, AKTO_API_TOKEN: 'bench-token', SPOOL_DIR: sink.spoolDir + '-stalled' }),
  'inbound-plain': () => ({ POLICY_PACK: 'off', TRACE_FILE: '/dev/null' }),
  inbound: () => ({ POLICY_PACK: 'default', TRACE_FILE: '/dev/null' }),
};
/** Variants loaded through the inbound listener, in front of the stub as the agent app. */
const INBOUND = new Set(['inbound-plain', 'inbound']);

/** A 4 KB prompt of ordinary prose. */
const PROMPT = Array.from({ length: 64 }, (_, i) => `Sentence ${i} of the benchmark prompt talks about weather, maps and trains.`).join(' ').slice(0, 4096);
const HEADERS = { 'content-type': 'application/json', authorization: 'Bearer hf_bench_token' };
const CHAT_BODY = JSON.stringify({ model: 'tgi', max_tokens: 32, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: PROMPT }] });
/** Streams like a model: the 4 KB prompt as system context, a short answer, one token every 2 ms. */
const STREAM_BODY = JSON.stringify({ model: 'tgi', max_tokens: 32, stream: true, messages: [{ role: 'system', content: PROMPT }, { role: 'user', content: 'Summarise the weather for the train trip in one line.' }] });
const STREAM_HEADERS = { ...HEADERS, 'x-stub-chunk-delay-ms': '2' };

async function fixedRate(base: string): Promise<LatencyStats & { errors: number }> {
  const r = await pacedLoad({ url: `${base}/v1/chat/completions`, body: CHAT_BODY, headers: HEADERS, rate: RATE, seconds: SECONDS });
  return { ...stats(r.latencies, SECONDS), errors: r.errors };
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
        const req = http.request(url, { method: 'POST', headers: STREAM_HEADERS, agent }, (res) => {
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
  /** CPU microseconds per request of the process answering the load (the stub for direct, else the proxy). */
  cpuPerRequest: number;
  chat: LatencyStats & { errors: number };
  ttfb: LatencyStats;
  throughput: number;
}

async function measure(target: string, base: string, pid: number): Promise<Row> {
  // Warm up connections and JIT before measuring.
  await autocannon({ url: `${base}/v1/chat/completions`, method: 'POST', headers: HEADERS, body: CHAT_BODY, connections: 4, amount: 300 });
  const cpu0 = cpuMs(pid);
  const chat = await fixedRate(base);
  const cpuPerRequest = ((cpuMs(pid) - cpu0) * 1000) / Math.max(1, chat.n + chat.errors);
  const ttfb = await streamTtfb(base);
  const throughput = await maxThroughput(base);
  return { target, cpuPerRequest, chat, ttfb, throughput };
}

async function main(): Promise<void> {
  const wanted = (process.env.BENCH_VARIANTS ?? Object.keys(VARIANTS).join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const w of wanted) if (!VARIANTS[w]) throw new Error(`unknown BENCH_VARIANTS entry "${w}" (known: ${Object.keys(VARIANTS).join(', ')})`);
  const stub = await startStub();
  const sink = await startAktoSink();
  const children: Child[] = [stub];
  const rows: Row[] = [];
  try {
    rows.push(await measure('direct', stub.url, stub.proc.pid!));
    for (const name of wanted) {
      const inboundPort = INBOUND.has(name) ? await freePort() : undefined;
      const inbound: Record<string, string> = inboundPort === undefined ? {} : { INBOUND_PORT: String(inboundPort), INBOUND_HOST: '127.0.0.1', INBOUND_APP_URL: stub.url };
      const proxy = await startProxyProcess(stub.url, { ...VARIANTS[name](sink), ...inbound }, PEERS[name]);
      children.push(proxy);
      const base = inboundPort === undefined ? proxy.url : `http://127.0.0.1:${inboundPort}`;
      rows.push(await measure(PEERS[name] ? `peer:${name}` : `proxy:${name}`, base, proxy.proc.pid!));
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
    'CPU per request during the fixed-rate run (µs; robust to a noisy machine, unlike tail latency)',
    ['target', 'CPU µs/request', 'ratio to the upstream stub'],
    rows.map((r) => [r.target, fmt(r.cpuPerRequest, 0), fmt(r.cpuPerRequest / direct.cpuPerRequest)]),
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
