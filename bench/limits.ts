/**
 * `node [--expose-gc] dist/bench/limits.js [--requests N]`: per-request cost of the limits hooks
 * (identity, rate limits, token accounting, anomaly baselines), in process, on one core.
 *
 * Then the shared limits: the same hooks with LIMITS_REDIS_URL pointing at a redis-server started on
 * loopback (skipped with one line when redis-server is not installed), one request at a time, against
 * the in-memory limiter in the same run: the p50 the Redis round trip adds.
 *
 * Each request runs what the server runs: identityHooks.onRequest, hooks.onRequest, then
 * hooks.onComplete with usage. Exchanges are parsed once up front so only the limits work is timed.
 * Scenarios vary the number of distinct identities (1 to 200k, past the LRU cap) and the prompt
 * size, to show the cost does not grow with either (O(1) per request; the prompt fingerprint reads
 * at most 4 KB). With --expose-gc it also reports heap per tracked identity.
 */
import { Writable } from 'node:stream';
import { createLimits, type Limits } from '../proxy/limits';
import { MemoryPolicyStore, type Policy } from '../proxy/policy/store';
import type { Exchange } from '../proxy/protocols/exchange';
import { parseRequest } from '../proxy/protocols/request';
import { classifyRoute } from '../proxy/protocols/routes';
import { createLogger } from '../common/logger';
import { createRegistry } from '../common/metrics';
import { findRedisServer, startRedis } from '../test/support/redis';

const POLICY: Policy = {
  identity: { sources: [{ from: 'header', name: 'x-end-user-id' }, { from: 'body', field: 'user' }, { from: 'api_key' }] },
  limits: [
    { id: 'chat-per-user', per: 'identity', match: { paths: ['/v1/chat/completions'] }, requests: { limit: 1_000_000, window: '1m' }, tokens: { limit: 1_000_000_000, window: '1m' }, concurrent: 64 },
    { id: 'model', per: 'model', tokens: { limit: 1_000_000_000, window: '1m' } },
    { id: 'all', per: 'global', requests: { limit: 1_000_000_000, window: '1s' } },
  ],
  anomalies: { loop: { repeats: 1_000_000 } },
};

const WORDS = 'plan the trip book a hotel near the river check the weather send the report to the team tomorrow morning'.split(' ');

function prompt(i: number, chars: number): string {
  let s = `request ${i}:`;
  let k = i;
  while (s.length < chars) s += ' ' + WORDS[(k = (k * 1103515245 + 12345) & 0x7fffffff) % WORDS.length];
  return s.slice(0, chars);
}

function exchange(i: number, user: string, chars: number): Exchange {
  const body = { model: 'tgi', max_tokens: 256, messages: [{ role: 'system', content: 'You are a helpful agent.' }, { role: 'user', content: prompt(i, chars) }] };
  const bytes = Buffer.from(JSON.stringify(body));
  const { api, dialect } = classifyRoute('POST', '/v1/chat/completions');
  const p = parseRequest(api, bytes, 'application/json');
  return {
    id: `b${i}`,
    direction: 'egress',
    startedAt: 0,
    method: 'POST',
    path: '/v1/chat/completions',
    api: p.api,
    dialect,
    clientAddress: '127.0.0.1',
    requestHeaders: { 'x-end-user-id': user, authorization: 'Bearer hf_benchmark_token' },
    upstream: new URL('http://127.0.0.1:1'),
    requestBody: bytes,
    requestJson: p.json,
    model: p.model,
    stream: p.stream,
    maxTokens: p.maxTokens,
    input: p.input,
    output: [],
    toolCalls: 0,
    findings: [],
    responseHeaders: {},
    notes: {},
  };
}

function reset(ex: Exchange): void {
  ex.findings.length = 0;
  ex.notes = {};
  ex.responseHeaders = {};
  ex.identity = undefined;
  ex.outcome = undefined;
  ex.usage = undefined;
  ex.upstreamMs = undefined;
}

interface Result {
  name: string;
  p50: number;
  p99: number;
  mean: number;
  tracked: number;
}

function run(name: string, requests: number, identities: number, chars: number, cap: number, policy: Policy = POLICY): Result {
  const silent = new Writable({ write: (_c, _e, cb) => cb() });
  const registry = createRegistry(false);
  const limits = createLimits(new MemoryPolicyStore(policy), { LIMITS_MAX_IDENTITIES: String(cap) }, createLogger('warn', silent), registry);
  const pool: Exchange[] = [];
  const poolSize = Math.min(2048, requests);
  for (let i = 0; i < poolSize; i++) pool.push(exchange(i, 'u0', chars));
  const users: string[] = [];
  for (let u = 0; u < Math.min(identities, 1_000_000); u++) users.push(`user-${u}`);
  const output = { role: 'assistant', kind: 'completion' as const, trusted: false, path: ['choices', 0, 'message', 'content'], choice: 0, text: 'The answer is short.' };
  const times = new Float64Array(requests);
  let blocked = 0;
  for (let i = 0; i < requests; i++) {
    const ex = pool[i % poolSize];
    reset(ex);
    (ex.requestHeaders as Record<string, string>)['x-end-user-id'] = users[i % users.length];
    const t0 = process.hrtime.bigint();
    const v = limits.identityHooks.onRequest!(ex) ?? limits.hooks.onRequest!(ex);
    if (v) blocked++;
    ex.upstreamMs = 3;
    ex.output[0] = output;
    ex.usage = { promptTokens: 40, completionTokens: 5, totalTokens: 45, source: 'response' };
    ex.response = { status: 200, headers: {} };
    ex.outcome = 'ok';
    limits.hooks.onComplete!(ex);
    times[i] = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  if (blocked > 0) throw new Error(`${name}: ${blocked} requests were limited; the bench policy must admit everything`);
  const warm = times.slice(Math.floor(requests / 10)).sort();
  const sum = warm.reduce((a, b) => a + b, 0);
  const tracked = Math.min(identities, cap);
  limits.close();
  return { name, p50: warm[Math.floor(warm.length * 0.5)], p99: warm[Math.floor(warm.length * 0.99)], mean: sum / warm.length, tracked };
}

function heapPerIdentity(cap: number): number | undefined {
  const gc = (global as { gc?: () => void }).gc;
  if (!gc) return undefined;
  const silent = new Writable({ write: (_c, _e, cb) => cb() });
  const limits = createLimits(new MemoryPolicyStore(POLICY), { LIMITS_MAX_IDENTITIES: String(cap) }, createLogger('warn', silent), createRegistry(false));
  const ex = exchange(1, 'x', 200);
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let u = 0; u < cap; u++) {
    reset(ex);
    (ex.requestHeaders as Record<string, string>)['x-end-user-id'] = `user-${u}`;
    limits.identityHooks.onRequest!(ex);
    limits.hooks.onRequest!(ex);
    ex.outcome = 'ok';
    limits.hooks.onComplete!(ex);
  }
  gc();
  const per = (process.memoryUsage().heapUsed - before) / cap;
  limits.close();
  return per;
}

async function main(): Promise<void> {
  const arg = process.argv.indexOf('--requests');
  const n = arg > 0 ? Number(process.argv[arg + 1]) : 200_000;
  const cap = 10_000;
  const results = [
    run('1 identity, 1 KB prompt', n, 1, 1000, cap),
    run('1k identities, 1 KB prompt', n, 1000, 1000, cap),
    run(`200k identities (LRU cap ${cap}, evicting), 1 KB prompt`, n, 200_000, 1000, cap),
    run('1k identities, 100 B prompt', n, 1000, 100, cap),
    run('1k identities, 32 KB prompt', Math.min(n, 50_000), 1000, 32_000, cap),
    run('identity = SHA-256 of the API key, 1 KB prompt', n, 1, 1000, cap, { ...POLICY, identity: { sources: [{ from: 'api_key' }] } }),
  ];
  console.log(`limits hooks, per request (identity + limits + completion), ${n} requests, node ${process.version}`);
  console.log('scenario'.padEnd(56) + 'p50 ms'.padStart(10) + 'p99 ms'.padStart(10) + 'mean ms'.padStart(10) + 'tracked'.padStart(10));
  for (const r of results) {
    console.log(r.name.padEnd(56) + r.p50.toFixed(4).padStart(10) + r.p99.toFixed(4).padStart(10) + r.mean.toFixed(4).padStart(10) + String(r.tracked).padStart(10));
  }
  const per = heapPerIdentity(cap);
  console.log(per === undefined ? 'heap per identity: run with node --expose-gc to measure' : `heap per tracked identity (baselines + 2 rule counters): ${Math.round(per)} bytes; ${cap} identities ≈ ${((per * cap) / 1e6).toFixed(1)} MB`);
  const target = 0.05;
  const worst = Math.max(...results.map((r) => r.p50));
  console.log(`worst p50 ${worst.toFixed(4)} ms: ${worst <= target ? 'within' : 'OVER'} the ${target} ms target`);
  await shared(Math.min(n, 20_000));
}

/** One request at a time through the hooks, awaiting the shared store's answer as the server does. */
async function runAwaited(limits: Limits, requests: number, chars: number): Promise<Result> {
  const pool: Exchange[] = [];
  for (let i = 0; i < 256; i++) pool.push(exchange(i, 'u0', chars));
  const output = { role: 'assistant', kind: 'completion' as const, trusted: false, path: ['choices', 0, 'message', 'content'], choice: 0, text: 'The answer is short.' };
  const times = new Float64Array(requests);
  for (let i = 0; i < requests; i++) {
    const ex = pool[i % pool.length];
    reset(ex);
    (ex.requestHeaders as Record<string, string>)['x-end-user-id'] = `user-${i % 1000}`;
    const t0 = process.hrtime.bigint();
    const v = (await limits.identityHooks.onRequest!(ex)) ?? (await limits.hooks.onRequest!(ex));
    if (v) throw new Error(`request ${i} was limited (${v.code}); the bench policy must admit everything`);
    ex.upstreamMs = 3;
    ex.output[0] = output;
    ex.usage = { promptTokens: 40, completionTokens: 5, totalTokens: 45, source: 'response' };
    ex.response = { status: 200, headers: {} };
    ex.outcome = 'ok';
    limits.hooks.onComplete!(ex);
    times[i] = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  const warm = times.slice(Math.floor(requests / 10)).sort();
  return { name: '', p50: warm[Math.floor(warm.length * 0.5)], p99: warm[Math.floor(warm.length * 0.99)], mean: warm.reduce((a, b) => a + b, 0) / warm.length, tracked: 0 };
}

async function shared(requests: number): Promise<void> {
  console.log('');
  if (!findRedisServer()) {
    console.log('shared limits: redis-server not installed (bash bench/peers/install.sh redis); skipped');
    return;
  }
  const redis = await startRedis();
  const silent = new Writable({ write: (_c, _e, cb) => cb() });
  const onePerUser: Policy = { ...POLICY, limits: [(POLICY.limits as unknown[])[0]] };
  const scenarios: Array<[string, Policy]> = [
    ['1 rule per identity (1 script call)', onePerUser],
    ['3 rules: identity, model, global (3 calls, one write)', POLICY],
  ];
  console.log(`shared limits on loopback redis-server, one request at a time, ${requests} requests (LIMITS_REDIS_TIMEOUT_MS 50 so nothing falls back)`);
  console.log('scenario'.padEnd(56) + 'memory p50'.padStart(12) + 'redis p50'.padStart(12) + 'added p50'.padStart(12) + 'redis p99'.padStart(12) + 'ratio'.padStart(8));
  let worstAdded = 0;
  try {
    for (const [name, policy] of scenarios) {
      const registry = createRegistry(false);
      const memory = createLimits(new MemoryPolicyStore(policy), {}, createLogger('warn', silent), createRegistry(false));
      const viaRedis = createLimits(new MemoryPolicyStore(policy), { LIMITS_REDIS_URL: redis.url, LIMITS_REDIS_TIMEOUT_MS: '50', LIMITS_REDIS_KEY_PREFIX: `bench${Date.now()}` }, createLogger('warn', silent), registry);
      while (!/^akto_proxy_limits_store_up 1$/m.test(await registry.metrics())) await new Promise((r) => setTimeout(r, 10));
      // Alternate short rounds so both see the same machine load.
      const mem: Result[] = [];
      const red: Result[] = [];
      for (let round = 0; round < 4; round++) {
        mem.push(await runAwaited(memory, requests / 4, 1000));
        red.push(await runAwaited(viaRedis, requests / 4, 1000));
      }
      const fellBack = /akto_proxy_limits_store_fallbacks_total\{[^}]*\} [1-9]/.test(await registry.metrics());
      const med = (rs: Result[], k: 'p50' | 'p99'): number => rs.map((r) => r[k]).sort((a, b) => a - b)[rs.length >> 1];
      const m50 = med(mem, 'p50');
      const r50 = med(red, 'p50');
      worstAdded = Math.max(worstAdded, r50 - m50);
      console.log(
        name.padEnd(56) + m50.toFixed(4).padStart(12) + r50.toFixed(4).padStart(12) + (r50 - m50).toFixed(4).padStart(12) + med(red, 'p99').toFixed(4).padStart(12) + `${(r50 / m50).toFixed(1)}x`.padStart(8) + (fellBack ? '  (some checks fell back!)' : ''),
      );
      memory.close();
      viaRedis.close();
    }
  } finally {
    await redis.stop();
  }
  const target = 0.3;
  console.log(`worst p50 added by the Redis check ${worstAdded.toFixed(4)} ms: ${worstAdded <= target ? 'within' : 'OVER'} the ${target} ms target`);
}

void main();
