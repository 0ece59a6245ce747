import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { judgeTargets, median, overCapacity, summarise, type Sample, type Scenario, type SystemResult } from '../../../bench/peers/report';
import { promptFingerprint } from '../../../proxy/limits/fingerprint';
import { parseWrkOutput, REQUEST_NUMBER, requestLabel, runWrk, wrkScript } from '../../../bench/peers/wrk';

const sample = (p50: number, extra: Partial<Sample> = {}): Sample => ({ p50, p90: p50 * 2, p99: p50 * 4, rps: 500, requests: 2500, errors: 0, late: 0, cpuSecPer1k: 0.5, ...extra });
const paced: Scenario = { id: 'chat-0ms@500', kind: 'chat', serviceMs: 0, rate: 500 };

describe('bench:peers summaries', () => {
  test('median of odd and even counts ignores NaN', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([NaN, 5])).toBe(5);
    expect(median([])).toBeNaN();
  });

  test('added latency and ratios are taken round by round against direct and nginx, then summarised', () => {
    const direct = [sample(1.0), sample(2.0), sample(1.0)];
    const nginx = [sample(1.1), sample(2.2), sample(1.2)];
    const ours = [sample(1.5), sample(2.4), sample(1.8)];
    const r = summarise(paced, ours, direct, nginx);
    // Round by round: added p50 = 0.5, 0.4, 0.8; a drifting machine (round 2 twice as slow) cancels out.
    expect(r.median.addedP50).toBeCloseTo(0.5);
    expect(r.spread.addedP50![0]).toBeCloseTo(0.4);
    expect(r.spread.addedP50![1]).toBeCloseTo(0.8);
    // Added p50 over nginx's added p50: 0.5/0.1, 0.4/0.2, 0.8/0.2.
    expect(r.median.addedP50ToNginx).toBeCloseTo(4);
    expect(r.median.ratioP50ToDirect).toBeCloseTo(1.5);
    expect(r.median.addedP99).toBeCloseTo(2);
    expect(r.overCapacity).toBe(false);
  });

  test('a paced run that falls behind, runs late or errs is over capacity; saturation only when it errs', () => {
    expect(overCapacity(paced, sample(1))).toBe(false);
    expect(overCapacity(paced, sample(1, { rps: 400 }))).toBe(true);
    expect(overCapacity(paced, sample(1, { late: 200 }))).toBe(true);
    expect(overCapacity(paced, sample(1, { errors: 100 }))).toBe(true);
    const max: Scenario = { id: 'chat-0ms@max', kind: 'chat', serviceMs: 0, rate: null };
    expect(overCapacity(max, sample(1, { rps: 10 }))).toBe(false);
    expect(overCapacity(max, sample(1, { errors: 100 }))).toBe(true);
  });

  function system(name: string, p50s: Record<string, number>, overloaded: string[] = []): SystemResult {
    return {
      name,
      describe: name,
      peakRssMiB: 100,
      scenarios: Object.entries(p50s).map(([id, p50]) => {
        const scenario: Scenario = { id, kind: 'chat', serviceMs: 0, rate: id.endsWith('max') ? null : Number(id.split('@')[1]) };
        const s = sample(p50, overloaded.includes(id) ? { rps: 10 } : {});
        return summarise(scenario, [s], [sample(1)], [sample(1.2)]);
      }),
    };
  }

  test('targets: limits at 500 req/s, 3x nginx, and below each peer in every chat scenario', () => {
    const ours = system('akto-default', { 'chat-0ms@500': 1.5, 'chat-0ms@max': 3 });
    const portkey = system('portkey', { 'chat-0ms@500': 4, 'chat-0ms@max': 2 });
    const litellm = system('litellm', { 'chat-0ms@500': 90, 'chat-0ms@max': 50 }, ['chat-0ms@500']);
    const targets = Object.fromEntries(judgeTargets([ours, portkey, litellm], [500]).map((t) => [t.id, t]));
    expect(targets['added-p50-500']).toMatchObject({ value: 0.5, met: true });
    expect(targets['added-p99-500'].value).toBeCloseTo(6 - 4);
    expect(targets['nginx-3x'].value).toBeCloseTo(2.5);
    expect(targets['nginx-3x'].met).toBe(true);
    // Portkey adds less at saturation (1 ms vs 2 ms): one loss.
    expect(targets['below-portkey']).toMatchObject({ value: 1, met: false });
    // LiteLLM is over capacity at 500 req/s and slower at saturation: no loss.
    expect(targets['below-litellm']).toMatchObject({ value: 0, met: true });
  });

  test('targets for a peer that did not run are not judged', () => {
    const targets = judgeTargets([system('akto-default', { 'chat-0ms@500': 1.5 })], [500]);
    expect(targets.find((t) => t.id === 'below-portkey')).toMatchObject({ met: null, value: null });
  });
});

describe('bench:peers wrk script', () => {
  test('request numbers are written in letters, one label per number', () => {
    expect([0, 1, 25, 26, 27, 675, 676].map(requestLabel)).toEqual(['a', 'b', 'z', 'ba', 'bb', 'zz', 'baa']);
    const labels = Array.from({ length: 2000 }, (_, i) => requestLabel(i));
    expect(new Set(labels).size).toBe(labels.length);
    expect(labels.every((l) => /^[a-z]+$/.test(l))).toBe(true);
  });

  test('bodies and headers survive Lua long brackets, whatever brackets they contain', () => {
    const lua = wrkScript({ headers: { 'x-odd': 'a]]b' }, body: '{"x":"]]","y":"]=]"}', rate: undefined });
    expect(lua).toContain('wrk.body = [==[{"x":"]]","y":"]=]"}]==]');
    expect(lua).toContain('wrk.headers[ [[x-odd]] ] = [=[a]]b]=]');
    expect(lua).not.toContain('function delay()');
    expect(wrkScript({ headers: {}, body: '{}', rate: 250 })).toContain('local interval = 1000 / 250');
  });

  test('the result line is read from wrk output in ms; a missing line is an error with the output', () => {
    const r = parseWrkOutput('Running 5s test\n\nWRK_RESULT {"requests":2500,"errors":3,"micros":5000000,"p50":410,"p90":900,"p99":2500,"late":7}\n');
    expect(r).toEqual({ requests: 2500, errors: 3, rps: 500, p50: 0.41, p90: 0.9, p99: 2.5, late: 7 });
    expect(() => parseWrkOutput('socket errors: connect 4')).toThrow(/wrk printed no result:\nsocket errors/);
  });

  const wrk = (() => {
    try {
      return execFileSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  })();
  // wrk comes from `bash bench/peers/install.sh wrk`, which `make test` runs; without it this test is skipped.
  (wrk ? test : test.skip)('paced wrk sends the exact body and headers, close to the asked rate', async () => {
    const seen: { body: string; auth?: string }[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ body, auth: req.headers.authorization });
        res.end('{}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/chat/completions`;
      const body = JSON.stringify({ messages: [{ role: 'user', content: 'a "quoted" ]] text' }] });
      const r = await runWrk(wrk, { url, headers: { authorization: 'Bearer t', 'content-type': 'application/json' }, body, connections: 4, seconds: 2, rate: 100 });
      expect(r.errors).toBe(0);
      // Paced, not flooded: about 200 requests in 2 s (+ the first request of each connection).
      expect(r.requests).toBeGreaterThan(150);
      expect(r.requests).toBeLessThan(260);
      expect(seen.every((s) => s.body === body && s.auth === 'Bearer t')).toBe(true);
      expect(r.p50).toBeGreaterThan(0);
    } finally {
      server.close();
    }
  });

  (wrk ? test : test.skip)('a body template gets a new request number in every request, with its own content-length', async () => {
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push(body);
        res.end('{}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/chat/completions`;
      const template = JSON.stringify({ messages: [{ role: 'user', content: `Request ${REQUEST_NUMBER}. text ]] here` }] });
      const r = await runWrk(wrk, { url, headers: { 'content-type': 'application/json' }, body: template, connections: 2, seconds: 1, rate: 100 });
      expect(r.errors).toBe(0);
      expect(seen.length).toBeGreaterThan(50);
      // Node's parser read each body by its content-length: a wrong one would cut or run into the next request.
      for (const body of seen) expect(JSON.parse(body).messages[0].content).toMatch(/^Request [a-z]+\. text \]\] here$/);
      expect(new Set(seen).size).toBe(seen.length);
      // New to the anomaly detector too: digits alone would give every prompt the same fingerprint.
      expect(new Set(seen.map((b) => promptFingerprint(JSON.parse(b).messages[0].content))).size).toBe(seen.length);
    } finally {
      server.close();
    }
  });
});
