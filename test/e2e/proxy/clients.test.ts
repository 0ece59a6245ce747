import OpenAI from 'openai';
import { InferenceClient } from '@huggingface/inference';
import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { startTestProxy, type TestProxy } from '../../support/proxy-harness';

/** The same calls through the proxy and directly must give the same answers, with real SDKs unchanged. */
describe('real clients through the proxy', () => {
  let stub: StubUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    stub = await startStubUpstream();
    proxy = await startTestProxy(stub.url);
  });
  afterAll(async () => {
    await proxy.close();
    await stub.close();
  });

  const openai = (base: string): OpenAI => new OpenAI({ baseURL: `${base}/v1`, apiKey: 'hf_test_token_abc', maxRetries: 0 });
  const messages = [
    { role: 'system' as const, content: 'You are terse.' },
    { role: 'user' as const, content: 'Say hello to the proxy' },
  ];

  test('chat completion equals the direct answer and carries Authorization unchanged', async () => {
    const direct = await openai(stub.url).chat.completions.create({ model: 'tgi', messages });
    const before = stub.requests.length;
    const proxied = await openai(proxy.url).chat.completions.create({ model: 'tgi', messages });
    expect(proxied).toEqual(direct);
    expect(proxied.choices[0].message.content).toBe('Echo: Say hello to the proxy');
    const seen = stub.requests[before];
    expect(seen.path).toBe('/v1/chat/completions');
    expect(seen.headers.authorization).toBe('Bearer hf_test_token_abc');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.json.messages).toEqual(messages);
  });

  test('streaming chat yields the same chunks as direct', async () => {
    const collect = async (base: string) => {
      const stream = await openai(base).chat.completions.create({ model: 'tgi', messages, stream: true, stream_options: { include_usage: true } });
      const chunks = [];
      for await (const c of stream) chunks.push(c);
      return chunks;
    };
    const direct = await collect(stub.url);
    const proxied = await collect(proxy.url);
    expect(proxied).toEqual(direct);
    const text = proxied.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    expect(text).toBe('Echo: Say hello to the proxy');
    expect(proxied[proxied.length - 1].usage?.total_tokens).toBeGreaterThan(0);
  });

  test('streaming chat in the TGI dialect (data: without a space) also matches', async () => {
    const collect = async (base: string) => {
      const stream = await openai(base).chat.completions.create(
        { model: 'tgi', messages, stream: true },
        { headers: { 'x-stub-dialect': 'tgi', 'x-stub-keepalive': '1' } },
      );
      const chunks = [];
      for await (const c of stream) chunks.push(c);
      return chunks;
    };
    expect(await collect(proxy.url)).toEqual(await collect(stub.url));
  });

  test('completions and embeddings', async () => {
    const c1 = await openai(stub.url).completions.create({ model: 'tgi', prompt: 'Once upon a time', max_tokens: 8 });
    const c2 = await openai(proxy.url).completions.create({ model: 'tgi', prompt: 'Once upon a time', max_tokens: 8 });
    expect(c2).toEqual(c1);
    const e1 = await openai(stub.url).embeddings.create({ model: 'bge', input: ['alpha', 'beta'] });
    const e2 = await openai(proxy.url).embeddings.create({ model: 'bge', input: ['alpha', 'beta'] });
    expect(e2).toEqual(e1);
    expect(e2.data).toHaveLength(2);
  });

  test('@huggingface/inference chat completion, streaming and text generation against an endpoint URL', async () => {
    const hf = (base: string) => new InferenceClient('hf_test_token_abc', { endpointUrl: base });
    const args = { messages: [{ role: 'user', content: 'What is TGI?' }], max_tokens: 16 };
    const direct = await hf(stub.url).chatCompletion(args);
    const proxied = await hf(proxy.url).chatCompletion(args);
    // Without a model the client sends its endpoint URL as the model, and TGI echoes it back.
    expect(proxied.model).toBe(proxy.url);
    expect({ ...proxied, model: '' }).toEqual({ ...direct, model: '' });

    let streamed = '';
    for await (const chunk of hf(proxy.url).chatCompletionStream(args)) streamed += chunk.choices[0]?.delta?.content ?? '';
    expect(streamed).toBe('Echo: What is TGI?');

    const g1 = await hf(stub.url).textGeneration({ inputs: 'Deep learning is', parameters: { max_new_tokens: 8 } });
    const g2 = await hf(proxy.url).textGeneration({ inputs: 'Deep learning is', parameters: { max_new_tokens: 8 } });
    expect(g2).toEqual(g1);
    expect(stub.requests[stub.requests.length - 1].headers.authorization).toBe('Bearer hf_test_token_abc');
  });

  test('TGI native routes: POST /, /generate and /generate_stream', async () => {
    const body = JSON.stringify({ inputs: 'Hello TGI', parameters: { max_new_tokens: 5, details: true } });
    for (const path of ['/', '/generate', '/generate_stream']) {
      const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body };
      const direct = await fetch(stub.url + path, init);
      const proxied = await fetch(proxy.url + path, init);
      expect(proxied.status).toBe(direct.status);
      expect(proxied.headers.get('content-type')).toBe(direct.headers.get('content-type'));
      expect(await proxied.text()).toBe(await direct.text());
    }
  });

  test('an APP_URL ending in /v1 with a bare local base URL (as the webhook rewrites it) is still recognised', async () => {
    const v1 = await startTestProxy(`${stub.url}/v1/`);
    try {
      const sdk = new OpenAI({ baseURL: v1.url, apiKey: 'k', maxRetries: 0 });
      const r = await sdk.chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: 'via the bare URL' }] });
      expect(r.choices[0].message.content).toBe('Echo: via the bare URL');
      expect(stub.requests[stub.requests.length - 1].path).toBe('/v1/chat/completions');
      expect(v1.logs.find((l) => l.msg === 'request')).toMatchObject({ api: 'openai.chat', path: '/v1/chat/completions', model: 'tgi' });
    } finally {
      await v1.close();
    }
  });

  test('each request is logged once at info without prompt text or secrets', () => {
    const requestLines = proxy.logs.filter((l) => l.msg === 'request');
    expect(requestLines.length).toBeGreaterThan(5);
    const chat = requestLines.find((l) => l.api === 'openai.chat');
    expect(chat).toMatchObject({ method: 'POST', path: '/v1/chat/completions', status: 200, outcome: 'ok' });
    expect(typeof chat!.totalMs).toBe('number');
    const all = JSON.stringify(proxy.logs);
    expect(all).not.toContain('hf_test_token_abc');
    expect(all).not.toContain('Say hello to the proxy');
  });
});
