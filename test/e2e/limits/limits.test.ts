import path from 'node:path';
import OpenAI from 'openai';
import type { Registry } from 'prom-client';
import { checkLimitsPolicy, createLimits, type Limits } from '../../../proxy/limits';
import { loadPolicyFile } from '../../../proxy/policy/load';
import { MemoryPolicyStore, type Policy } from '../../../proxy/policy/store';
import { createLogger } from '../../../common/logger';
import { createRegistry } from '../../../common/metrics';
import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { logSink, startTestProxy, type TestProxy } from '../../support/proxy-harness';

const EXAMPLE = path.join(__dirname, '../../../examples/policies/limits.yaml');

/** The proxy in front of the stub with limits wired as main wires them: identity first, limits after guardrails. */
async function proxyWith(upstream: string, policy: Policy): Promise<{ proxy: TestProxy; limits: Limits; registry: Registry }> {
  const registry = createRegistry(false);
  const limits = createLimits(new MemoryPolicyStore(policy), {}, createLogger('warn', logSink().stream), registry);
  const proxy = await startTestProxy(upstream, {}, [limits.identityHooks, limits.hooks]);
  return { proxy, limits, registry };
}

const ask = (content: string) => ({ model: 'tgi', messages: [{ role: 'user' as const, content }] });

describe('limits end to end with the openai SDK', () => {
  let stub: StubUpstream;
  beforeAll(async () => {
    stub = await startStubUpstream();
  });
  afterAll(() => stub.close());

  test('examples/policies/limits.yaml: the 6th request of a user in a minute gets 429 with the right headers; another user is unaffected', async () => {
    const { proxy, limits, registry } = await proxyWith(stub.url, loadPolicyFile(EXAMPLE, [checkLimitsPolicy]));
    try {
      const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'hf_e2e_key', maxRetries: 0, defaultHeaders: { 'x-end-user-id': 'alice' } });
      for (let i = 0; i < 5; i++) {
        const { data, response } = await client.chat.completions.create(ask(`question number ${'abcde'[i]}`)).withResponse();
        expect(data.choices[0].message.content).toBe(`Echo: question number ${'abcde'[i]}`);
        expect(response.headers.get('x-ratelimit-limit-requests')).toBe('5');
        expect(response.headers.get('x-ratelimit-remaining-requests')).toBe(String(4 - i));
        expect(Number(response.headers.get('x-ratelimit-reset-requests'))).toBeGreaterThan(0);
      }
      const upstreamCalls = stub.requests.length;
      const err = await client.chat.completions.create(ask('one more')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
      const rl = err as InstanceType<typeof OpenAI.RateLimitError>;
      expect(rl.status).toBe(429);
      expect(rl.code).toBe('chat-per-user');
      expect(rl.type).toBe('rate_limit_exceeded');
      expect(rl.message).toContain('5 requests per minute');
      const retryAfter = Number(rl.headers?.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(12);
      expect(rl.headers?.get('x-ratelimit-remaining-requests')).toBe('0');
      expect(rl.headers?.get('x-ratelimit-limit-requests')).toBe('5');
      expect(rl.headers?.get('x-should-retry')).toBeNull();
      expect(stub.requests.length).toBe(upstreamCalls); // the upstream was not called

      // bob, named by the body's `user` field, still has his own five.
      const bob = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'hf_e2e_key', maxRetries: 0 });
      const { response } = await bob.chat.completions.create({ ...ask('hello'), user: 'bob' }).withResponse();
      expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('4');

      const metrics = await registry.metrics();
      expect(metrics).toContain('akto_proxy_rate_limited_total{rule="chat-per-user",kind="requests"} 1');
      expect(proxy.logs.find((l) => l.msg === 'request' && l.status === 429)).toMatchObject({ identity: 'user:alice', findings: ['chat-per-user:limit'] });
    } finally {
      await proxy.close();
      limits.close();
    }
  });

  test("a burst gets 429 and the SDK's retry waits the Retry-After and then succeeds", async () => {
    const { proxy, limits } = await proxyWith(stub.url, { limits: [{ id: 'burst', per: 'global', requests: { limit: 2, window: '4s' } }] });
    try {
      const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'k', maxRetries: 2 });
      await client.chat.completions.create(ask('first'));
      await client.chat.completions.create(ask('second'));
      const started = Date.now();
      const { data, response } = await client.chat.completions.create(ask('third')).withResponse();
      const waited = Date.now() - started;
      expect(data.choices[0].message.content).toBe('Echo: third');
      // One unit refills every 2s; the SDK read retry-after-ms / Retry-After and slept that long.
      expect(waited).toBeGreaterThanOrEqual(1500);
      expect(waited).toBeLessThan(4000);
      expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('0');
      const limited = proxy.logs.filter((l) => l.msg === 'request' && l.status === 429);
      expect(limited).toHaveLength(1);
    } finally {
      await proxy.close();
      limits.close();
    }
  });

  test.each([
    ['with a usage event (include_usage)', { stream_options: { include_usage: true } }],
    ['without one (output counted)', {}],
  ])('a stream is charged its real usage %s, not the estimate', async (_label, extra) => {
    const { proxy, limits } = await proxyWith(stub.url, { limits: [{ id: 'tpm', per: 'global', tokens: { limit: 1000, window: '1h' } }] });
    try {
      const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'k', maxRetries: 0 });
      // Estimate: 18 prompt chars / 4 -> 5, + max_tokens 500 = 505 of the 1000.
      const stream = await client.chat.completions.create({ ...ask('hello there friend'), max_tokens: 500, stream: true, ...extra });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
      expect(text).toBe('Echo: hello there friend');
      await new Promise((r) => setTimeout(r, 50));
      // Had the 505 stayed charged, this second 505 would not fit (495 left): it does, because the
      // stream was re-charged at its real size (a few tokens).
      const { response } = await client.chat.completions.create({ ...ask('hello there friend'), max_tokens: 500 }).withResponse();
      const remaining = Number(response.headers.get('x-ratelimit-remaining-tokens'));
      expect(remaining).toBeGreaterThan(470);
      expect(remaining).toBeLessThan(495);
    } finally {
      await proxy.close();
      limits.close();
    }
  });

  test('TGI routes get the 429 in TGI shape', async () => {
    const { proxy, limits } = await proxyWith(stub.url, { limits: [{ id: 'tgi-one', match: { paths: ['/generate'] }, requests: { limit: 1, window: '10s' } }] });
    try {
      const post = () => fetch(`${proxy.url}/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: 'Hi', parameters: { max_new_tokens: 8 } }) });
      expect((await post()).status).toBe(200);
      const res = await post();
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe('10');
      expect(res.headers.get('x-ratelimit-limit-requests')).toBe('1');
      expect(await res.json()).toEqual({ error: expect.stringContaining('rule tgi-one allows 1 request per 10s'), error_type: 'overloaded' });
    } finally {
      await proxy.close();
      limits.close();
    }
  });

  test('a concurrency slot is released when the client aborts and when the upstream is unreachable', async () => {
    const policy: Policy = { limits: [{ id: 'one-at-a-time', per: 'global', concurrent: 1 }] };
    const { proxy, limits } = await proxyWith(stub.url, policy);
    try {
      const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'k', maxRetries: 0 });
      const abort = new AbortController();
      const slow = client.chat.completions.create(ask('slow'), { headers: { 'x-stub-delay-ms': '3000' }, signal: abort.signal }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 200));
      const blocked = await client.chat.completions.create(ask('meanwhile')).catch((e: unknown) => e);
      expect(blocked).toBeInstanceOf(OpenAI.RateLimitError);
      abort.abort();
      await slow;
      await new Promise((r) => setTimeout(r, 100));
      const after = await client.chat.completions.create(ask('after the abort'));
      expect(after.choices[0].message.content).toBe('Echo: after the abort');
    } finally {
      await proxy.close();
      limits.close();
    }

    const dead = await proxyWith('http://127.0.0.1:9', policy);
    try {
      const client = new OpenAI({ baseURL: `${dead.proxy.url}/v1`, apiKey: 'k', maxRetries: 0 });
      for (let i = 0; i < 3; i++) {
        const err = await client.chat.completions.create(ask('anyone there')).catch((e: unknown) => e);
        expect((err as { status?: number }).status).toBe(502); // never 429: each failure gave its slot back
      }
    } finally {
      await dead.proxy.close();
      dead.limits.close();
    }
  });
});
