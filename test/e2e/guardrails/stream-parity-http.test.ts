/**
 * The stream parity property through the real proxy over HTTP, for a sample of the corpus: the same answer
 * streamed in random pieces and sent whole gives the client the same text (default pack), read with the real
 * OpenAI client for chat and as TGI native events for /generate_stream.
 */
import OpenAI from 'openai';
import { headerJson } from '../../fixtures/stub-upstream';
import { useGuardedStub } from '../../support/guarded-proxy';
import { loadStreamCorpus, randomPieces, readStream } from '../../support/stream-dialects';

const corpus = loadStreamCorpus();
/** Every 13th answer: all families, a few dozen requests. */
const sample = corpus.filter((_a, i) => i % 13 === 0);

describe('stream parity through the proxy over HTTP (default pack)', () => {
  const t = useGuardedStub();
  const client = () => new OpenAI({ baseURL: `${t.g.proxy.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });

  it('has a sample from every family', () => {
    expect(new Set(sample.map((a) => a.family)).size).toBe(new Set(corpus.map((a) => a.family)).size);
  });

  it.each(sample.map((a) => [a.id, a] as const))('%s: OpenAI chat', async (_id, answer) => {
    const headers = { 'x-stub-chunks': headerJson(randomPieces(answer.text, answer.text.length)) };
    const whole = await client().chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: 'go' }] }, { headers });
    const stream = await client().chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: 'go' }], stream: true }, { headers });
    let text = '';
    let finish: string | null = null;
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    if (whole.choices[0].finish_reason === 'content_filter') {
      expect(finish).toBe('content_filter');
      expect(whole.choices[0].message.content).toBe('');
    } else {
      expect(finish).toBe('stop');
      expect(text).toBe(whole.choices[0].message.content);
    }
  });

  it.each(sample.map((a) => [a.id, a] as const))('%s: TGI native', async (_id, answer) => {
    const headers = { 'content-type': 'application/json', 'x-stub-chunks': headerJson(randomPieces(answer.text, answer.text.length + 1)) };
    const request = JSON.stringify({ inputs: 'go', parameters: { details: true } });
    const whole = (await (await fetch(`${t.g.proxy.url}/generate`, { method: 'POST', headers, body: request })).json()) as { generated_text: string; details: { finish_reason: string } };
    const streamed = readStream('tgi', Buffer.from(await (await fetch(`${t.g.proxy.url}/generate_stream`, { method: 'POST', headers, body: request })).arrayBuffer()));
    expect(streamed.filtered).toBe(whole.details.finish_reason === 'content_filter');
    if (!streamed.filtered) expect(streamed.text).toBe(whole.generated_text);
  });
});
