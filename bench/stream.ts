/**
 * `npm run bench:stream [-- --json]`: the delay stream holdback adds, with the default pack.
 *  1. In process, deterministic: text cut into tokens as a model emits them (cl100k_base) goes through a stream channel filter;
 *     for every character, how many tokens arrived between its own token and the push that released it. Reported
 *     as p50/p95/max per character and as added time-to-first-token, in tokens, for prose and for space-less text
 *     (identifiers, URLs, paths, hashes), with the CPU per token; tokens are converted to ms at a stated rate.
 *  2. End to end over loopback: the same texts streamed by the stub upstream (one token every CHUNK_MS) through the
 *     proxy with POLICY_PACK=off and =default: time to the first content, and the added arrival time per token.
 */
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { type Guardrails } from '../proxy/guardrails';
import { openGuardrails } from '../test/support/guardrails';
import { loadProxyConfig } from '../proxy/config';
import { startProxy } from '../proxy/server';
import { createLogger, type Logger } from '../common/logger';
import { createRegistry } from '../common/metrics';
import { startStubUpstream } from '../test/fixtures/stub-upstream';
import { chatExchange } from '../test/support/exchange';
import { fmt, printTable } from './support';

/** Ordinary answers, as an assistant writes them. */
const PROSE = [
  'The quarterly report shows steady growth in all three regions, with costs flat and margins up.',
  'Rain is expected on Tuesday, so the hike has been moved to the weekend and the picnic to Sunday.',
  'To bake bread, mix flour, water, salt and yeast, then let the dough rest for about an hour before shaping it.',
  'The committee approved the budget after a short discussion about travel expenses and the new office lease.',
  'Photosynthesis turns light, water and carbon dioxide into sugar and oxygen inside the leaves of the plant.',
  'She reviewed the draft twice, fixed the references, and sent it to the editor before the deadline on Friday.',
].join(' ');

/** Space-less text a coding assistant writes: identifiers, URLs, paths, flags, dotted names. */
const SPACELESS = [
  'getUserAccountById',
  'https://docs.example.com/guide/getting-started.html#install',
  'src/components/UserProfile/UserProfileCard.tsx',
  'MAX_RETRY_ATTEMPTS',
  'org.apache.kafka.clients.consumer.KafkaConsumer',
  'fetch_user_preferences_async',
  'https://api.github.com/repos/example/project/pulls?state=open&per_page=50',
  '--disable-gpu-sandbox',
  'node_modules/.bin/tsc',
  'useEffectCleanupHandler',
  '/var/log/nginx/access.log',
  'com.example.payments.PaymentGatewayClient',
  'isFeatureFlagEnabled',
  'https://www.example.org/blog/2024/05/release-notes',
  'user_account_settings_v2',
  'kubectl.kubernetes.io/last-applied-configuration',
].join(' ');

/** The pieces a model streams: GPT-4's tokenizer (cl100k_base, close to Llama 3's), one token per piece. */
async function tokenizer(): Promise<(text: string) => string[]> {
  const { getEncoding } = await import('js-tiktoken');
  const encoding = getEncoding('cl100k_base');
  return (text) => encoding.encode(text).map((id) => encoding.decode([id]));
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

interface Lag {
  tokens: number;
  ttftTokens: number;
  p50: number;
  p95: number;
  max: number;
  cpuUsPerToken: number;
}

/** Pushes `tokens` through one channel of a fresh stream and measures each character's delay in tokens. */
function measure(g: Guardrails, tokens: string[], rounds = 5): Lag {
  let delays: number[] = [];
  let ttft = -1;
  let cpu = 0;
  for (let round = 0; round < rounds; round++) {
    const ex = chatExchange({ id: 'bench', stream: true });
    const filter = g.hooks.openStream!(ex)!.channel('content:0', 'content');
    const arrivedAt: number[] = [];
    const perChar: number[] = [];
    let released = 0;
    const t0 = performance.now();
    const take = (text: string, at: number): void => {
      for (let c = 0; c < text.length; c++) perChar.push(at - arrivedAt[released + c]);
      if (released === 0 && text.length > 0 && round === 0) ttft = at;
      released += text.length;
    };
    tokens.forEach((tok, i) => {
      for (let c = 0; c < tok.length; c++) arrivedAt.push(i);
      take(filter.push(tok).text, i);
    });
    // The end of the stream comes with the last token.
    take(filter.end().text, tokens.length - 1);
    if (round > 0) cpu += performance.now() - t0;
    delays = perChar;
  }
  const sorted = [...delays].sort((a, b) => a - b);
  return { tokens: tokens.length, ttftTokens: ttft, p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), max: sorted[sorted.length - 1], cpuUsPerToken: (cpu * 1000) / ((rounds - 1) * tokens.length) };
}

const CHUNK_MS = 20;
const MS_PER_TOKEN = 25; // ~40 tokens/s, a typical served 8B model

/** Arrival time (ms after the request) of each token of the streamed content. */
async function arrivals(url: string, tokens: string[]): Promise<number[]> {
  const started = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-stub-chunks': JSON.stringify(tokens), 'x-stub-chunk-delay-ms': String(CHUNK_MS) },
    body: JSON.stringify({ model: 'tgi', stream: true, messages: [{ role: 'user', content: 'go' }] }),
  });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const ends: number[] = [];
  let total = 0;
  for (const t of tokens) ends.push((total += t.length));
  const at: number[] = [];
  let received = 0;
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
      received += delta.length;
      const now = performance.now() - started;
      while (at.length < ends.length && ends[at.length] <= received) at.push(now);
    }
  }
  return at;
}

async function endToEnd(logger: Logger, texts: Record<string, string[]>): Promise<Record<string, { ttftAddedMs: number; perTokenAddedMs: { p50: number; p95: number } }>> {
  const stub = await startStubUpstream({ record: false });
  const proxies: Record<string, { url: string; close(): Promise<void> }> = {};
  for (const pack of ['off', 'default']) {
    const env = { APP_URL: stub.url, AKTO_PROXY_PORT: '0', ADMIN_PORT: '0', ADMIN_HOST: '127.0.0.1', LISTEN_HOST: '127.0.0.1', POLICY_PACK: pack };
    const registry = createRegistry(false);
    const g = await openGuardrails(env, logger, registry);
    const proxy = await startProxy({ config: loadProxyConfig(env), hooks: [g.hooks], logger, registry, env });
    proxies[pack] = { url: proxy.url, close: async () => (await proxy.close(), g.close()) };
  }
  const out: Record<string, { ttftAddedMs: number; perTokenAddedMs: { p50: number; p95: number } }> = {};
  for (const [name, tokens] of Object.entries(texts)) {
    const runs: Record<string, number[][]> = { off: [], default: [] };
    for (const pack of ['off', 'default']) await arrivals(proxies[pack].url, tokens); // warm-up
    // Interleaved rounds, so machine noise falls on both alike.
    for (let i = 0; i < 3; i++) for (const pack of ['off', 'default']) runs[pack].push(await arrivals(proxies[pack].url, tokens));
    const mean = (pack: string, i: number): number => runs[pack].reduce((a, r) => a + r[i], 0) / runs[pack].length;
    const added = tokens.map((_t, i) => mean('default', i) - mean('off', i)).sort((a, b) => a - b);
    out[name] = { ttftAddedMs: mean('default', 0) - mean('off', 0), perTokenAddedMs: { p50: percentile(added, 0.5), p95: percentile(added, 0.95) } };
  }
  for (const p of Object.values(proxies)) await p.close();
  await stub.close();
  return out;
}

async function main(): Promise<void> {
  const logger = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
  const g = await openGuardrails({ POLICY_PACK: 'default' }, logger, createRegistry(false));
  const tokenize = await tokenizer();
  const texts = { prose: tokenize(PROSE), spaceless: tokenize(SPACELESS) };
  const lag = { prose: measure(g, texts.prose), spaceless: measure(g, texts.spaceless) };
  g.close();
  const e2e = await endToEnd(logger, { prose: texts.prose.slice(0, 80), spaceless: texts.spaceless.slice(0, 80) });
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ msPerToken: MS_PER_TOKEN, chunkMs: CHUNK_MS, lag, e2e }, null, 2));
    return;
  }
  printTable(
    `Added delay per character, in tokens (default pack; ms at ${MS_PER_TOKEN} ms/token)`,
    ['text', 'tokens', 'TTFT added', 'p50', 'p95', 'max', 'p95 ms', 'CPU µs/token'],
    Object.entries(lag).map(([name, l]) => [name, l.tokens, l.ttftTokens, l.p50, l.p95, l.max, l.p95 * MS_PER_TOKEN, fmt(l.cpuUsPerToken, 1)]),
  );
  printTable(
    `End to end over loopback, one token every ${CHUNK_MS} ms: default pack minus pack off (ms)`,
    ['text', 'TTFT added', 'per token added p50', 'per token added p95'],
    Object.entries(e2e).map(([name, r]) => [name, fmt(r.ttftAddedMs, 1), fmt(r.perTokenAddedMs.p50, 1), fmt(r.perTokenAddedMs.p95, 1)]),
  );
}

void main();
