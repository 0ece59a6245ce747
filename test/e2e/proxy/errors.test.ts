import http from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { startTestProxy } from '../../support/proxy-harness';
import { freePort } from '../../support/ports';
import { waitFor } from '../../support/wait';

const chatBody = JSON.stringify({ model: 'tgi', messages: [{ role: 'user', content: 'hi' }] });
const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

describe('error paths', () => {
  let stub: StubUpstream;
  beforeAll(async () => {
    stub = await startStubUpstream();
  });
  afterAll(() => stub.close());

  test('unreachable upstream → 502 in the OpenAI shape on /v1 and the TGI shape elsewhere', async () => {
    const proxy = await startTestProxy(`http://127.0.0.1:${await freePort()}`);
    try {
      const r1 = await post(`${proxy.url}/v1/chat/completions`, chatBody);
      expect(r1.status).toBe(502);
      const b1 = (await r1.json()) as any;
      expect(b1.error).toMatchObject({ type: 'upstream_unreachable', code: 'upstream_unreachable' });
      expect(typeof b1.error.message).toBe('string');
      const r2 = await post(`${proxy.url}/generate`, JSON.stringify({ inputs: 'x' }));
      expect(r2.status).toBe(502);
      expect((await r2.json()) as any).toMatchObject({ error_type: 'upstream_unreachable' });
      const sdk = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'k', maxRetries: 0 });
      await expect(sdk.chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 502 });
    } finally {
      await proxy.close();
    }
  });

  test('upstream slower than REQUEST_TIMEOUT → 504', async () => {
    const proxy = await startTestProxy(stub.url, { REQUEST_TIMEOUT: '1' });
    try {
      const r = await post(`${proxy.url}/v1/chat/completions`, chatBody, { 'x-stub-delay-ms': '2500' });
      expect(r.status).toBe(504);
      expect(((await r.json()) as any).error.type).toBe('upstream_timeout');
    } finally {
      await proxy.close();
    }
  });

  test('body over MAX_REQUEST_SIZE → 413 and the upstream is not called', async () => {
    const proxy = await startTestProxy(stub.url, { MAX_REQUEST_SIZE: '2048' });
    try {
      const before = stub.requests.length;
      const big = JSON.stringify({ model: 'tgi', messages: [{ role: 'user', content: 'x'.repeat(5000) }] });
      const r = await post(`${proxy.url}/v1/chat/completions`, big);
      expect(r.status).toBe(413);
      expect(((await r.json()) as any).error.code).toBe('request_too_large');
      const r2 = await post(`${proxy.url}/generate`, JSON.stringify({ inputs: 'y'.repeat(5000) }));
      expect(r2.status).toBe(413);
      // TGI's own type for a refused request, so huggingface_hub raises ValidationError rather than UnknownError.
      expect((await r2.json()) as any).toMatchObject({ error: expect.stringContaining('MAX_REQUEST_SIZE'), error_type: 'validation' });
      expect(stub.requests.length).toBe(before);
    } finally {
      await proxy.close();
    }
  });

  test('malformed JSON is forwarded unchanged and the upstream decides', async () => {
    const proxy = await startTestProxy(stub.url);
    try {
      const bad = '{"model":"tgi","messages":[{"role":"user","content":"unterminated';
      const r = await post(`${proxy.url}/v1/chat/completions`, bad);
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(stub.requests[stub.requests.length - 1].body.toString()).toBe(bad);
      // and the proxy is still serving
      const ok = await post(`${proxy.url}/v1/chat/completions`, chatBody);
      expect(ok.status).toBe(200);
    } finally {
      await proxy.close();
    }
  });

  test('a JSON POST to an unknown route that is not an inference payload is read once and still forwarded', async () => {
    const proxy = await startTestProxy(stub.url);
    try {
      const body = JSON.stringify({ ids: [1, 2], options: { verbose: true } });
      const r = await post(`${proxy.url}/custom/handler`, body);
      expect(r.status).toBe(404);
      expect(stub.requests[stub.requests.length - 1]).toMatchObject({ path: '/custom/handler' });
      expect(stub.requests[stub.requests.length - 1].body.toString()).toBe(body);
      expect(proxy.logs.find((l) => l.msg === 'request')).toMatchObject({ api: 'passthrough', status: 404, outcome: 'ok' });
    } finally {
      await proxy.close();
    }
  });

  test('upstream error statuses and bodies pass through untouched', async () => {
    const proxy = await startTestProxy(stub.url);
    try {
      const r = await post(`${proxy.url}/v1/chat/completions`, chatBody, { 'x-stub-status': '422', 'x-stub-body': '{"error":"bad input","error_type":"validation"}' });
      expect(r.status).toBe(422);
      expect(await r.text()).toBe('{"error":"bad input","error_type":"validation"}');
    } finally {
      await proxy.close();
    }
  });
});

describe('headers', () => {
  let stub: StubUpstream;
  beforeAll(async () => {
    stub = await startStubUpstream();
  });
  afterAll(() => stub.close());

  test('hop-by-hop headers are dropped, end-to-end ones kept, X-Forwarded-* set, APP_URL path is a prefix', async () => {
    const proxy = await startTestProxy(`${stub.url}/prefix`);
    try {
      await new Promise<void>((resolve, reject) => {
        const req = http.request(`${proxy.url}/v1/models?x=1`, {
          headers: { connection: 'keep-alive, x-hop', 'x-hop': 'drop me', 'keep-alive': 'timeout=5', 'proxy-authorization': 'Basic c2VjcmV0', te: 'trailers', 'x-end-to-end': 'keep me', authorization: 'Bearer abc' },
        });
        req.on('response', (res) => res.resume().on('end', resolve));
        req.on('error', reject);
        req.end();
      });
      const seen = stub.requests[stub.requests.length - 1];
      expect(seen.path).toBe('/prefix/v1/models?x=1');
      expect(seen.headers['x-hop']).toBeUndefined();
      expect(seen.headers['keep-alive']).toBeUndefined();
      expect(seen.headers['proxy-authorization']).toBeUndefined();
      expect(seen.headers.te).toBeUndefined();
      expect(seen.headers['x-end-to-end']).toBe('keep me');
      expect(seen.headers.authorization).toBe('Bearer abc');
      expect(seen.headers['x-forwarded-proto']).toBe('http');
      expect(seen.headers['x-forwarded-host']).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(seen.headers.host).toBe(new URL(stub.url).host);
    } finally {
      await proxy.close();
    }
  });

  test('UPSTREAM_AUTHORIZATION replaces the client Authorization and never shows in logs', async () => {
    const proxy = await startTestProxy(stub.url, { UPSTREAM_AUTHORIZATION: 'Bearer hf_server_side_secret' });
    try {
      await post(`${proxy.url}/v1/chat/completions`, chatBody, { authorization: 'Bearer client-value' });
      expect(stub.requests[stub.requests.length - 1].headers.authorization).toBe('Bearer hf_server_side_secret');
      await post(`${proxy.url}/v1/chat/completions`, chatBody);
      expect(stub.requests[stub.requests.length - 1].headers.authorization).toBe('Bearer hf_server_side_secret');
      expect(JSON.stringify(proxy.logs)).not.toContain('hf_server_side_secret');
    } finally {
      await proxy.close();
    }
  });

  test('admin port serves health, readiness and metrics; the proxied port does not', async () => {
    const proxy = await startTestProxy(stub.url);
    try {
      await post(`${proxy.url}/v1/chat/completions`, chatBody);
      expect((await fetch(`${proxy.adminUrl}/healthz`)).status).toBe(200);
      expect((await fetch(`${proxy.adminUrl}/readyz`)).status).toBe(200);
      const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
      expect(metrics).toMatch(/akto_proxy_requests_total\{direction="egress",api="openai.chat",status="200",outcome="ok"\} 1/);
      expect(metrics).toContain('akto_proxy_upstream_response_seconds_bucket');
      expect(metrics).toContain('akto_proxy_in_flight_requests{direction="egress"} 0');
      await fetch(`${proxy.url}/metrics`);
      expect(stub.requests[stub.requests.length - 1].path).toBe('/metrics');
    } finally {
      await proxy.close();
    }
  });
});

describe('client abort and streams', () => {
  test('a client that disconnects cancels the upstream request', async () => {
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((r) => (upstreamClosed = r));
    const hanging = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n');
      req.socket.on('close', upstreamClosed);
    });
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    const proxy = await startTestProxy(`http://127.0.0.1:${(hanging.address() as AddressInfo).port}`);
    try {
      const ac = new AbortController();
      const res = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: 'POST',
        body: JSON.stringify({ model: 'tgi', stream: true, messages: [{ role: 'user', content: 'go' }] }),
        headers: { 'content-type': 'application/json' },
        signal: ac.signal,
      });
      const reader = res.body!.getReader();
      await reader.read();
      ac.abort();
      await closed;
      await waitFor(() => proxy.logs.some((l) => l.msg === 'request' && l.outcome === 'aborted'));
    } finally {
      await proxy.close();
      hanging.closeAllConnections();
      await new Promise((r) => hanging.close(r));
    }
  });

  test('a stream delivered one byte at a time reaches the client intact, event by event', async () => {
    const events = [
      'data:{"object":"chat.completion.chunk","id":"","choices":[{"index":0,"delta":{"role":"assistant","content":"Hé"},"finish_reason":null}]}\n\n',
      ':\n\n',
      'data: {"object":"chat.completion.chunk","id":"","choices":[{"index":0,"delta":{"role":"assistant","content":"llo 👋"},"finish_reason":null}]}\r\n\r\n',
      'data:{"object":"chat.completion.chunk","id":"","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}\n\n',
      'data:[DONE]\n\n',
    ];
    const bytes = Buffer.from(events.join(''));
    const dribble = http.createServer(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (let i = 0; i < bytes.length; i++) {
        res.write(bytes.subarray(i, i + 1));
        if (i % 16 === 0) await new Promise((r) => setImmediate(r));
      }
      res.end();
    });
    await new Promise<void>((r) => dribble.listen(0, '127.0.0.1', r));
    const proxy = await startTestProxy(`http://127.0.0.1:${(dribble.address() as AddressInfo).port}`);
    try {
      const sdk = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'k', maxRetries: 0 });
      const stream = await sdk.chat.completions.create({ model: 'tgi', stream: true, messages: [{ role: 'user', content: 'x' }] });
      let text = '';
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
      expect(text).toBe('Héllo 👋');
    } finally {
      await proxy.close();
      dribble.closeAllConnections();
      await new Promise((r) => dribble.close(r));
    }
  });
});

