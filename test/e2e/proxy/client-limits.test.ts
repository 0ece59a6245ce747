/**
 * What a slow or oversized client gets: 408 for headers or a body that arrive too slowly (CLIENT_HEADER_TIMEOUT,
 * CLIENT_REQUEST_TIMEOUT), 431 for a head over MAX_HEADER_SIZE, and no cut of a long answer once the request
 * itself is complete. A client that stops reading a stream is let go after REQUEST_TIMEOUT.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { startMisbehavingUpstream, type MisbehavingUpstream } from '../../fixtures/misbehaving-upstream';
import { startGuarded, type GuardedProxy } from '../../support/guarded-proxy';
import { startProxyProcess } from '../../support/proxy-process';
import { parseResponses } from '../../support/raw-http';
import { waitFor } from '../../support/wait';

/** Opens a connection, writes `first`, then `drip` one byte every `everyMs`; resolves with what came back and when. */
function slowClient(base: string, first: string, drip: string, everyMs: number): Promise<{ text: string; ms: number }> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect(Number(url.port), url.hostname, () => s.write(first));
    let i = 0;
    const timer = setInterval(() => {
      if (i < drip.length && s.writable) s.write(drip[i++]);
    }, everyMs);
    let text = '';
    s.on('data', (c) => (text += c.toString()));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearInterval(timer);
      resolve({ text, ms: Date.now() - t0 });
    });
  });
}

describe('client limits', () => {
  let stub: StubUpstream;
  let g: GuardedProxy;
  beforeAll(async () => {
    stub = await startStubUpstream({ chunkDelayMs: 400 });
    g = await startGuarded(stub.url, { CLIENT_HEADER_TIMEOUT: '1', CLIENT_REQUEST_TIMEOUT: '2', MAX_HEADER_SIZE: '4096' });
  });
  afterAll(async () => {
    await g.close();
    await stub.close();
  });

  test('headers sent too slowly: 408 after CLIENT_HEADER_TIMEOUT, counted', async () => {
    const r = await slowClient(g.proxy.url, 'POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\n', 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n', 300);
    expect(r.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.ms).toBeLessThan(4000);
    const metrics = await g.proxy.registry.getSingleMetricAsString('akto_proxy_client_errors_total');
    expect(metrics).toMatch(/status="408"\} [1-9]/);
  });

  test.each([
    ['an inspected route (read whole)', '/v1/chat/completions', 'application/json'],
    ['an upload streamed to the upstream', '/v1/audio/transcriptions', 'audio/wav'],
  ])('a body sent too slowly on %s: 408 in the client’s shape, traced as client_timeout', async (_name, path, type) => {
    const before = stub.requests.length;
    const id = `slow-body-${type.replace('/', '-')}`;
    const r = await slowClient(g.proxy.url, `POST ${path} HTTP/1.1\r\nHost: p\r\nX-Request-Id: ${id}\r\nContent-Type: ${type}\r\nContent-Length: 400\r\n\r\n{"model":`, 'x'.repeat(100), 200);
    const [res] = parseResponses(Buffer.from(r.text), [], true).responses;
    expect(res.status).toBe(408);
    expect(JSON.parse(res.body.toString()).error.code).toBe('request_timeout');
    expect(r.ms).toBeLessThan(5000);
    await waitFor(() => g.completed.some((e) => e.id === id));
    const ex = g.completed.find((e) => e.id === id)!;
    expect(ex.outcome).toBe('client_timeout');
    expect(ex.response?.status).toBe(408);
    // Nothing complete reached the upstream: the inspected body never left, the streamed one was cancelled.
    expect(stub.requests.length).toBe(before);
  });

  test('a long answer is not cut by CLIENT_REQUEST_TIMEOUT once the request is complete', async () => {
    const chunks = JSON.stringify(['one ', 'two ', 'three ', 'four ', 'five ', 'six ', 'seven ', 'eight']);
    const t0 = Date.now();
    const res = await fetch(`${g.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-stub-chunks': chunks },
      body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'count' }] }),
    });
    const text = await res.text();
    expect(Date.now() - t0).toBeGreaterThan(2500);
    expect(text).toContain('eight');
    expect(text).toContain('[DONE]');
  });

  test('a head over MAX_HEADER_SIZE: 431', async () => {
    const r = await slowClient(g.proxy.url, `GET /v1/models HTTP/1.1\r\nHost: p\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`, '', 1000);
    expect(r.text).toMatch(/^HTTP\/1\.1 431 /);
  });
});

describe('a client that stops reading', () => {
  let up: MisbehavingUpstream;
  let g: GuardedProxy;
  beforeAll(async () => {
    up = await startMisbehavingUpstream();
    g = await startGuarded(up.url, { REQUEST_TIMEOUT: '1' });
  });
  afterAll(async () => {
    await g.close();
    await up.close();
  });

  test('an endless stream to a client that reads nothing is let go after REQUEST_TIMEOUT (client_timeout), the upstream cancelled', async () => {
    const url = new URL(g.proxy.url);
    const req = http.request({ host: url.hostname, port: url.port, path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json', 'x-misbehave': 'endless-stream', 'x-request-id': 'not-reading' } });
    req.on('response', (res) => res.pause());
    req.on('error', () => undefined);
    req.end(JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'go' }] }));
    await waitFor(() => g.completed.some((e) => e.id === 'not-reading'), 10_000);
    const ex = g.completed.find((e) => e.id === 'not-reading')!;
    expect(ex.outcome).toBe('client_timeout');
    req.destroy();
  });
});

test('SIGTERM with nothing in flight stops the process at once, not after DRAIN_TIMEOUT', async () => {
  const upstream = http.createServer((_req, res) => res.end('{}'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const p = await startProxyProcess({ APP_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, DRAIN_TIMEOUT: '25' });
  try {
    const res = await fetch(`${p.url}/v1/models`);
    await res.text();
    const t0 = Date.now();
    await p.stop();
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(p.lines.some((l) => l.msg === 'stopped')).toBe(true);
  } finally {
    await p.stop();
    upstream.close();
  }
});
