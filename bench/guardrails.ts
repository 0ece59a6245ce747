/**
 * `node dist/bench/guardrails.js [--json] [--n N]`: what the guardrails cost on the hot path, on one core.
 *  1. onRequest of the default pack on a 4 KB chat request (system + user + assistant + user), clean and with PII;
 *  2. stream holdback on prose: CPU per delta, characters held after each delta, and the added delay in tokens
 *     (time-to-first-token and per token), converted to ms at a stated token rate;
 *  3. end to end over loopback: a stream of prose words (one every CHUNK_MS) through the proxy with the default
 *     pack and with POLICY_PACK=off: time to the first content byte and the mean lag of each word's arrival.
 */
import { Writable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { createGuardrails } from '../proxy/guardrails';
import type { Exchange, Segment } from '../proxy/protocols/exchange';
import { chatExchange } from '../test/support/exchange';
import { loadProxyConfig } from '../proxy/config';
import type { ExchangeHooks } from '../proxy/hooks';
import { startProxy } from '../proxy/server';
import { createLogger, type Logger } from '../proxy/telemetry/logger';
import { createRegistry } from '../proxy/telemetry/metrics';
import { startStubUpstream } from '../test/fixtures/stub-upstream';

const WORDS = (
  'the report shows steady growth across all three regions while costs stayed flat and margins improved ' +
  'because the team shipped the new pricing model in march and customers renewed at a higher rate than ' +
  'expected please summarise the main risks for the next quarter and suggest two actions for the board'
).split(' ');

function prose(chars: number, seed = 11): string {
  let x = seed;
  let out = '';
  while (out.length < chars) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out += WORDS[x % WORDS.length] + (x % 13 === 0 ? '. ' : ' ');
  }
  return out.slice(0, chars);
}

function seg(role: string, text: string, i: number): Segment {
  return { role, kind: 'message', trusted: true, path: ['messages', i, 'content'], text };
}

function benchExchange(withPii: boolean): Exchange {
  const user = prose(2600) + (withPii ? ' Reach me at jane.doe@example.com or on +1 415 555 0199, card 4111 1111 1111 1111.' : '');
  return chatExchange({
    id: 'bench',
    model: 'tgi',
    input: [seg('system', prose(600, 3), 0), seg('user', prose(400, 5), 1), seg('assistant', prose(400, 7), 2), seg('user', user, 3)],
  });
}

function percentiles(samples: number[]): { p50: number; p95: number; p99: number; mean: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

const round = (x: number, d = 4) => Number(x.toFixed(d));

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const nArg = process.argv.indexOf('--n');
  const n = nArg > 0 ? Number(process.argv[nArg + 1]) : 3000;
  const logger = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
  const g = await createGuardrails({ POLICY_PACK: 'default' }, logger, createRegistry(false));
  const results: Record<string, unknown> = {};

  for (const withPii of [false, true]) {
    const requestBytes = benchExchange(withPii).input.reduce((a, s) => a + s.text.length, 0);
    const times: number[] = [];
    for (let i = 0; i < n + 500; i++) {
      const ex = benchExchange(withPii);
      const t = performance.now();
      await g.hooks.onRequest!(ex);
      if (i >= 500) times.push(performance.now() - t);
    }
    const p = percentiles(times);
    results[withPii ? 'request_4kb_with_pii_ms' : 'request_4kb_clean_ms'] = { bytes: requestBytes, p50: round(p.p50), p95: round(p.p95), p99: round(p.p99) };
  }

  // Streaming: ~4-character tokens of prose, as a model emits them.
  const text = prose(8000, 17) + ' Contact ops@example.com for the key rotation schedule. ' + prose(2000, 19);
  const tokens = text.match(/.{1,4}/gs) ?? [];
  const perPush: number[] = [];
  const held: number[] = [];
  const tokenDelay: number[] = []; // tokens that arrive before token i is fully released
  let firstTokenDelay = -1;
  for (let round_ = 0; round_ < 5; round_++) {
    const ex = benchExchange(false);
    ex.stream = true;
    const filter = g.hooks.openStream!(ex)!.channel('0', 'content');
    let pushed = 0;
    let released = 0;
    const ends: number[] = [];
    tokens.forEach((tok, i) => {
      pushed += tok.length;
      ends.push(pushed);
      const t = performance.now();
      const r = filter.push(tok);
      if (round_ > 0) perPush.push((performance.now() - t) * 1000);
      released += r.text.length;
      if (round_ === 4) {
        held.push(pushed - released);
        // each token whose last character is now out was delayed by the tokens that arrived since it
        while (tokenDelay.length < ends.length && ends[tokenDelay.length] <= released) tokenDelay.push(i - tokenDelay.length);
        if (firstTokenDelay < 0 && released > 0) firstTokenDelay = i;
      }
    });
    filter.end();
    if (round_ === 4) while (tokenDelay.length < tokens.length) tokenDelay.push(tokens.length - tokenDelay.length);
  }
  const hp = percentiles(held);
  const pp = percentiles(perPush);
  const dp = percentiles(tokenDelay);
  const msPerToken = 25; // ~40 tokens/s, a typical served 8B model
  results.stream_holdback = {
    tokens: tokens.length,
    cpu_per_delta_us: { p50: round(pp.p50, 2), p99: round(pp.p99, 2) },
    chars_held_after_delta: { p50: hp.p50, p95: hp.p95, max: Math.max(...held) },
    added_ttft_tokens: firstTokenDelay,
    added_delay_tokens: { mean: round(dp.mean, 3), p50: dp.p50, p95: dp.p95, p99: dp.p99 },
    at_ms_per_token: msPerToken,
    added_ttft_ms: round(firstTokenDelay * msPerToken + pp.p50 / 1000, 3),
    added_delay_ms_mean: round(dp.mean * msPerToken + pp.p50 / 1000, 3),
  };
  g.close();
  results.e2e_stream = await endToEnd(logger);
  if (json) {
    console.log(JSON.stringify(results, null, 2));
    return;
  }
  for (const [k, v] of Object.entries(results)) console.log(`${k.padEnd(28)} ${JSON.stringify(v)}`);
}

const CHUNK_MS = 20;

/** Arrival time (ms after the request) of each word of the streamed content, and of the first content. */
async function streamTimes(url: string, words: string[]): Promise<number[]> {
  const started = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-stub-chunks': JSON.stringify(words), 'x-stub-chunk-delay-ms': String(CHUNK_MS) },
    body: JSON.stringify({ model: 'tgi', stream: true, messages: [{ role: 'user', content: 'tell me a story' }] }),
  });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const arrivals: number[] = [];
  let text = '';
  let buf = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line.startsWith('data:') || line.includes('[DONE]')) continue;
      const delta = (JSON.parse(line.slice(5)) as { choices?: Array<{ delta?: { content?: string } }> }).choices?.[0]?.delta?.content ?? '';
      text += delta;
      const now = performance.now() - started;
      // a word counts as arrived when all of it (and the words before it) has been received
      let end = 0;
      for (let i = 0; i < words.length; i++) {
        end += words[i].length;
        if (i >= arrivals.length && end <= text.length) arrivals.push(now);
      }
    }
  }
  return arrivals;
}

async function endToEnd(logger: Logger): Promise<Record<string, unknown>> {
  const stub = await startStubUpstream();
  const words = prose(600, 23).split(/(?= )/);
  const out: Record<string, unknown> = { chunk_ms: CHUNK_MS, words: words.length };
  // Tokens carry their leading space, as model tokenizers emit them (" river"): the worst case for holdback,
  // since a word is known complete only when the next token arrives.
  const proxies: Record<string, { url: string; close(): Promise<void> }> = {};
  for (const pack of ['off', 'default']) {
    const env = { APP_URL: stub.url, AKTO_PROXY_PORT: '0', ADMIN_PORT: '0', LISTEN_HOST: '127.0.0.1', POLICY_PACK: pack };
    const registry = createRegistry(false);
    const g = await createGuardrails(env, logger, registry);
    const hooks: ExchangeHooks[] = [g.hooks];
    const proxy = await startProxy({ config: loadProxyConfig(env), hooks, logger, registry, env });
    proxies[pack] = { url: proxy.url, close: async () => (await proxy.close(), g.close()) };
    await streamTimes(proxy.url, words); // warm up
  }
  const runs: Record<string, number[][]> = { off: [], default: [] };
  for (let i = 0; i < 5; i++) for (const pack of ['off', 'default']) runs[pack].push(await streamTimes(proxies[pack].url, words));
  for (const p of Object.values(proxies)) await p.close();
  const base: Record<string, number[]> = {};
  for (const pack of ['off', 'default']) base[pack] = words.map((_, w) => runs[pack].reduce((a, r) => a + (r[w] ?? NaN), 0) / runs[pack].length);
  await stub.close();
  const lag = base.default.map((t, i) => t - base.off[i]);
  out.ttft_ms = { off: round(base.off[0], 2), default: round(base.default[0], 2), added: round(lag[0], 2) };
  out.per_word_added_ms = { mean: round(lag.reduce((a, b) => a + b, 0) / lag.length, 2), p95: round(percentiles(lag).p95, 2) };
  return out;
}

void main();
