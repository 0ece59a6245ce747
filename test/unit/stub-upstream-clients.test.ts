import { InferenceClient } from '@huggingface/inference';
import OpenAI from 'openai';
import { startStubUpstream, type StubUpstream } from '../fixtures/stub-upstream';

// The stub must be faithful enough that the real, unchanged clients accept every answer.
let stub: StubUpstream;
let openai: OpenAI;
let openaiTgi: OpenAI;
beforeAll(async () => {
  stub = await startStubUpstream();
  openai = new OpenAI({ baseURL: `${stub.url}/v1/`, apiKey: 'sk-test', maxRetries: 0 });
  openaiTgi = new OpenAI({ baseURL: `${stub.url}/v1/`, apiKey: 'hf_test', maxRetries: 0, defaultHeaders: { 'x-stub-dialect': 'tgi' } });
});
afterAll(() => stub.close());

describe('real clients against the stub upstream', () => {
  test('openai: chat, streaming chat in both dialects, usage chunk', async () => {
    const chat = await openai.chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: 'ping' }] });
    expect(chat.choices[0].message.content).toBe('Echo: ping');
    for (const client of [openai, openaiTgi]) {
      const stream = await client.chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: 'a b c' }], stream: true, stream_options: { include_usage: true } });
      let text = '';
      let total = 0;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? '';
        total = chunk.usage?.total_tokens ?? total;
      }
      expect(text).toBe('Echo: a b c');
      expect(total).toBeGreaterThan(0);
    }
  });

  test('openai: streamed tool call arguments reassemble; in-stream error throws', async () => {
    const args = '{"location":"Paris"}';
    const stream = await openai.chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: 'weather?' }], stream: true }, { headers: { 'x-stub-tool-call': args } });
    let got = '';
    for await (const chunk of stream) got += chunk.choices[0]?.delta?.tool_calls?.[0]?.function?.arguments ?? '';
    expect(got).toBe(args);

    const failing = await openaiTgi.chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: 'x' }], stream: true }, { headers: { 'x-stub-stream-error': 'boom' } });
    await expect(async () => {
      for await (const _ of failing) void _;
    }).rejects.toThrow(/boom/);
  });

  test('openai: completions and embeddings', async () => {
    const c = await openai.completions.create({ model: 'tgi', prompt: 'Once' });
    expect(c.choices[0].text).toBe('Echo: Once');
    const e = await openai.embeddings.create({ model: 'tgi', input: ['a', 'b'] });
    expect(e.data).toHaveLength(2);
  });

  test('@huggingface/inference: chat, streaming chat, text generation against an endpoint URL', async () => {
    const hf = new InferenceClient('hf_test', { endpointUrl: stub.url });
    const out = await hf.chatCompletion({ messages: [{ role: 'user', content: 'hello' }] });
    expect(out.choices[0].message.content).toBe('Echo: hello');
    let text = '';
    for await (const chunk of hf.chatCompletionStream({ messages: [{ role: 'user', content: 'hello there' }] })) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toBe('Echo: hello there');
    const gen = await hf.textGeneration({ inputs: 'Tell me' });
    expect(gen.generated_text).toBe('Echo: Tell me');
    expect(stub.requests.at(-1)?.headers.authorization).toBe('Bearer hf_test');
  });
});
