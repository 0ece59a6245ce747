/**
 * Two proxy processes (the built main, as two pods run it) in front of one stub upstream, sharing their
 * limits through a real redis-server: real HTTP, the real openai client.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { startProxyProcess, type ProxyProcess } from '../../support/proxy-process';
import { describeWithRedis, startRedis, type TestRedis } from '../../support/redis';
import { waitFor } from '../../support/wait';

jest.setTimeout(60_000);

const POLICY = {
  version: 1,
  extends: 'off',
  identity: { sources: [{ from: 'header', name: 'x-end-user-id' }] },
  anomalies: { enabled: false },
  limits: [
    { id: 'chat-per-user', per: 'identity', match: { paths: ['/v1/chat/completions'] }, requests: { limit: 7, window: '1h' } },
    { id: 'two-in-flight', per: 'global', match: { paths: ['/v1/completions'] }, concurrent: 2 },
  ],
};

describeWithRedis('two proxy processes, one Redis', () => {
  let redis: TestRedis;
  let stub: StubUpstream;
  let dir: string;
  let pods: ProxyProcess[] = [];

  beforeAll(async () => {
    [redis, stub] = await Promise.all([startRedis(), startStubUpstream()]);
    dir = mkdtempSync(path.join(os.tmpdir(), 'aap-shared-'));
    writeFileSync(path.join(dir, 'policy.json'), JSON.stringify(POLICY));
  });
  afterEach(async () => {
    await Promise.all(pods.map((p) => p.stop()));
    pods = [];
  });
  afterAll(async () => {
    await Promise.all([redis.stop(), stub.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  async function twoPods(prefix: string, extra: Record<string, string> = {}): Promise<ProxyProcess[]> {
    const env = { APP_URL: stub.url, POLICY_FILE: path.join(dir, 'policy.json'), LIMITS_REDIS_URL: redis.url, LIMITS_REDIS_KEY_PREFIX: prefix, LIMITS_REDIS_TIMEOUT_MS: '250', ...extra };
    pods = await Promise.all([startProxyProcess(env), startProxyProcess(env)]);
    await waitFor(() => pods.every((p) => p.lines.some((l) => l.event === 'limits_store_connected')), 10_000, 'both connected to redis');
    return pods;
  }
  const client = (p: ProxyProcess, user: string) => new OpenAI({ baseURL: `${p.url}/v1`, apiKey: 'k', maxRetries: 0, defaultHeaders: { 'x-end-user-id': user } });
  const chat = (c: OpenAI, i: number) =>
    c.chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: `question ${i}` }] }).then(
      () => 200,
      (e: { status?: number }) => e.status ?? 0,
    );

  test('a limit of 7 per user holds exactly across both, with 30 requests racing on the two', async () => {
    const [a, b] = await twoPods('e2e-exact');
    const before = stub.requests.length;
    // Two on each pod one after the other, then 26 at once on both.
    const first: number[] = [];
    for (let i = 0; i < 4; i++) first.push(await chat(client(i % 2 ? a : b, 'mona'), i));
    expect(first).toEqual([200, 200, 200, 200]);
    const statuses = await Promise.all(Array.from({ length: 26 }, (_, i) => chat(client(i % 2 ? a : b, 'mona'), 10 + i)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(23);
    expect(stub.requests.length - before).toBe(7);
  });

  test('concurrency is global across the two: a third stream in flight is refused on the other pod', async () => {
    const [a, b] = await twoPods('e2e-conc');
    const slow = (p: ProxyProcess) =>
      fetch(`${p.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-stub-delay-ms': '800' }, body: JSON.stringify({ model: 'tgi', prompt: 'slow' }) });
    const held = [slow(a), slow(a)];
    await waitFor(() => stub.requests.filter((r) => r.json?.prompt === 'slow').length >= 2, 5000, 'two in flight');
    const third = await fetch(`${b.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tgi', prompt: 'third' }) });
    expect(third.status).toBe(429);
    expect(((await third.json()) as { error: { code: string } }).error.code).toBe('two-in-flight');
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200]);
    // A pod gives its slot back when the exchange ends, a moment after the client has its answer: allow that moment.
    let after = 0;
    for (const deadline = Date.now() + 2000; after !== 200 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
      after = (await fetch(`${b.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tgi', prompt: 'after' }) })).status;
    }
    expect(after).toBe(200);
  });

  test('Redis killed mid-run: requests keep flowing on per-pod limits, one warn line each; restarted: shared again', async () => {
    const [a, b] = await twoPods('e2e-kill');
    expect(await chat(client(a, 'nina'), 1)).toBe(200);
    await redis.kill();
    await waitFor(() => [a, b].every((p) => p.lines.some((l) => l.event === 'limits_store_down')), 5000, 'both saw redis go');
    const t0 = Date.now();
    // Per pod now: each gives nina its own 7 (on_error local).
    const statuses = await Promise.all(Array.from({ length: 20 }, (_, i) => chat(client(i % 2 ? a : b, 'nina'), i)));
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(statuses.filter((s) => s === 200)).toHaveLength(14);
    for (const p of [a, b]) {
      // Log lines are written in short batches.
      await waitFor(() => p.lines.some((l) => l.event === 'limits_store_fallback'), 2000, 'fallback line');
      expect(p.lines.filter((l) => l.event === 'limits_store_fallback')).toHaveLength(1);
      expect(p.lines.filter((l) => l.event === 'limits_store_down')).toHaveLength(1);
    }
    await redis.restart();
    await waitFor(() => [a, b].every((p) => p.lines.some((l) => l.event === 'limits_store_recovered')), 10_000, 'both reconnected');
    const again = await Promise.all(Array.from({ length: 10 }, (_, i) => chat(client(i % 2 ? a : b, 'olga'), i)));
    expect(again.filter((s) => s === 200)).toHaveLength(7);
  });

  test('a stalled Redis (DEBUG SLEEP) does not hang requests: each waits at most the deadline', async () => {
    const [a] = await twoPods('e2e-slow', { LIMITS_REDIS_TIMEOUT_MS: '20' });
    const sleeping = redis.command('DEBUG', 'SLEEP', '1.5');
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    const statuses = await Promise.all(Array.from({ length: 5 }, (_, i) => chat(client(a, 'pia'), i)));
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    expect(Date.now() - t0).toBeLessThan(1000);
    await sleeping;
  });
});
