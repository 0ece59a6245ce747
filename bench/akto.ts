/**
 * `npm run bench:akto`: what Akto inline verdicts add to a proxied call. One stub upstream, one Akto fake
 * answering every check after AKTO_BENCH_DELAY_MS (default 5 ms), and the proxy started three times with the
 * default pack and traces to the same fake: AKTO_GUARDRAILS=off, request, both. Everything is printed as the
 * difference and the ratio to `off` measured in the same run.
 *
 *   BENCH_SECONDS        seconds per fixed-rate run (default 8)
 *   BENCH_RATE           requests/s of the fixed-rate run (default 100)
 *   AKTO_BENCH_DELAY_MS  the fake Akto's answer time (default 5)
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startAktoGuardrailsFake } from '../test/fixtures/akto-guardrails';
import { pacedLoad } from './load';
import { cpuMs, fmt, printTable, startProxyProcess, startStub, stats, stopChild, type LatencyStats } from './support';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const RATE = Number(process.env.BENCH_RATE ?? 100);
const DELAY_MS = Number(process.env.AKTO_BENCH_DELAY_MS ?? 5);
const TOKEN = 'bench-akto-token';
const MODES = ['off', 'request', 'both'] as const;

const PROMPT = Array.from({ length: 16 }, (_, i) => `Sentence ${i} of the benchmark prompt talks about weather, maps and trains.`).join(' ');
const HEADERS = { 'content-type': 'application/json', authorization: 'Bearer hf_bench_token' };
const CHAT_BODY = JSON.stringify({ model: 'tgi', max_tokens: 32, messages: [{ role: 'user', content: PROMPT }] });
const STREAM_BODY = JSON.stringify({ model: 'tgi', max_tokens: 32, stream: true, messages: [{ role: 'user', content: 'Summarise the weather for the train trip in one line.' }] });

interface Row {
  mode: (typeof MODES)[number];
  chat: LatencyStats & { errors: number };
  /** Time to first byte and to the end of a streamed answer (one stream at a time). */
  ttfb: LatencyStats;
  streamEnd: LatencyStats;
  cpuPerRequest: number;
  aktoCalls: number;
}

/** Streams one at a time for SECONDS/2, timing the first byte and the last. */
async function streams(base: string): Promise<{ ttfb: LatencyStats; end: LatencyStats }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const url = new URL(`${base}/v1/chat/completions`);
  const first: number[] = [];
  const last: number[] = [];
  const until = Date.now() + (SECONDS * 1000) / 2;
  while (Date.now() < until) {
    await new Promise<void>((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      const ms = (): number => Number(process.hrtime.bigint() - t0) / 1e6;
      const req = http.request(url, { method: 'POST', headers: { ...HEADERS, 'x-stub-chunk-delay-ms': '2' }, agent }, (res) => {
        res.once('data', () => first.push(ms()));
        res.on('end', () => {
          last.push(ms());
          resolve();
        });
        res.resume();
      });
      req.on('error', reject);
      req.end(STREAM_BODY);
    });
  }
  agent.destroy();
  return { ttfb: stats(first, SECONDS / 2), end: stats(last, SECONDS / 2) };
}

async function main(): Promise<void> {
  const stub = await startStub();
  const akto = await startAktoGuardrailsFake({ token: TOKEN });
  akto.behave({ delayMs: DELAY_MS });
  const spool = fs.mkdtempSync(path.join(os.tmpdir(), 'akto-bench-inline-'));
  const rows: Row[] = [];
  try {
    for (const mode of MODES) {
      const proxy = await startProxyProcess(stub.url, {
        POLICY_PACK: 'default',
        AKTO_API_BASE_URL: akto.url,
        AKTO_API_TOKEN: TOKEN,
        AKTO_GUARDRAILS: mode,
        SPOOL_DIR: path.join(spool, mode),
      });
      try {
        // Warm up connections (upstream and Akto pools) and the JIT.
        await pacedLoad({ url: `${proxy.url}/v1/chat/completions`, body: CHAT_BODY, headers: HEADERS, rate: RATE, seconds: 1 });
        const calls0 = akto.calls.length;
        const cpu0 = cpuMs(proxy.proc.pid!);
        const r = await pacedLoad({ url: `${proxy.url}/v1/chat/completions`, body: CHAT_BODY, headers: HEADERS, rate: RATE, seconds: SECONDS });
        const cpuPerRequest = ((cpuMs(proxy.proc.pid!) - cpu0) * 1000) / Math.max(1, r.latencies.length + r.errors);
        const aktoCalls = (akto.calls.length - calls0) / Math.max(1, r.latencies.length + r.errors);
        const s = await streams(proxy.url);
        rows.push({ mode, chat: { ...stats(r.latencies, SECONDS), errors: r.errors }, ttfb: s.ttfb, streamEnd: s.end, cpuPerRequest, aktoCalls });
      } finally {
        await stopChild(proxy.proc);
      }
    }
  } finally {
    await stub.stop();
    await akto.close();
    fs.rmSync(spool, { recursive: true, force: true });
  }
  if (akto.errors.length > 0) throw new Error(`the Akto fake refused calls: ${akto.errors.slice(0, 3).join('; ')}`);
  report(rows);
}

function report(rows: Row[]): void {
  const off = rows[0];
  console.log(`\nAkto inline verdicts — fake Akto answers in ${DELAY_MS} ms; ${SECONDS}s at ${RATE} req/s, default pack, node ${process.version}`);
  printTable(
    'Non-streaming chat at a fixed rate (ms; added = mode - off)',
    ['AKTO_GUARDRAILS', 'p50', 'p99', 'added p50', 'added p99', 'p50 ratio', 'Akto calls/req', 'CPU µs/req', 'CPU ratio', 'errors'],
    rows.map((r) => [
      r.mode,
      fmt(r.chat.p50),
      fmt(r.chat.p99),
      fmt(r.chat.p50 - off.chat.p50),
      fmt(r.chat.p99 - off.chat.p99),
      fmt(r.chat.p50 / off.chat.p50),
      fmt(r.aktoCalls, 1),
      fmt(r.cpuPerRequest, 0),
      fmt(r.cpuPerRequest / off.cpuPerRequest),
      r.chat.errors,
    ]),
  );
  printTable(
    'Streaming chat, one at a time (ms): the first byte, and the end (held for the response check with both)',
    ['AKTO_GUARDRAILS', 'TTFB p50', 'added TTFB p50', 'end p50', 'added end p50', 'end p99', 'added end p99'],
    rows.map((r) => [r.mode, fmt(r.ttfb.p50), fmt(r.ttfb.p50 - off.ttfb.p50), fmt(r.streamEnd.p50), fmt(r.streamEnd.p50 - off.streamEnd.p50), fmt(r.streamEnd.p99), fmt(r.streamEnd.p99 - off.streamEnd.p99)]),
  );
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
