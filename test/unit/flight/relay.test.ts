import OpenAI from 'openai';
import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { admit } from '../../../proxy/flight/admit';
import { VERDICT_HEADER } from '../../../proxy/protocols/errors';
import { editSegment } from '../../../proxy/protocols/exchange';
import type { ExchangeHooks } from '../../../proxy/hooks';
import { startFlightHarness, type FlightHarness } from '../../support/flight-harness';

/** Forward → upstream response → relay or judge, driven from an admitted flight against a real upstream. */
describe('forward, response verdict, relay', () => {
  let upstream: StubUpstream;
  let harness: FlightHarness;
  let client: OpenAI;
  const hook: ExchangeHooks = {
    name: 'response-test',
    onResponse(ex) {
      for (const s of ex.output) if (s.text.includes('pineapple')) editSegment(s, s.text.replace('pineapple', '[FRUIT]'));
      if (ex.output.some((s) => s.text.includes('forbidden'))) return { status: 400, type: 'guardrail', code: 'out_block', message: 'no' };
    },
    responseInspection: () => ({ onOversize: 'block' }),
    openStream: () => ({ channel: () => ({ push: (delta) => ({ text: delta.replace('pineapple', '[FRUIT]') }), end: () => ({ text: '' }) }) }),
  };
  beforeAll(async () => {
    upstream = await startStubUpstream();
    harness = await startFlightHarness({ upstream: upstream.url, env: { MAX_RESPONSE_SIZE: '65536' }, hooks: [hook], step: admit });
    client = new OpenAI({ baseURL: `${harness.url}/v1`, apiKey: 'k', maxRetries: 0 });
  });
  afterAll(async () => {
    await harness.close();
    await upstream.close();
  });

  const ask = (reply: string, extra: Record<string, string> = {}) =>
    client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-stub-reply': reply, ...extra } });

  it('an unchanged JSON answer is relayed as the upstream sent it; the trace and record say what the client got', async () => {
    const out = await ask('plain answer');
    expect(out.choices[0].message.content).toBe('plain answer');
    const rec = harness.records.at(-1)!;
    expect(rec).toMatchObject({ outcome: 'ok', status: 200 });
    expect(rec.ex.upstreamMs).toBeGreaterThanOrEqual(0);
    expect(rec.bytesOut).toBe(rec.ex.response!.body!.length);
  });

  it('an edited answer is serialised again and marked redacted', async () => {
    const res = await ask('I like pineapple').asResponse();
    expect(res.headers.get(VERDICT_HEADER)).toBe('redacted');
    expect(((await res.json()) as OpenAI.ChatCompletion).choices[0].message.content).toBe('I like [FRUIT]');
  });

  it("a response-stage block withholds the answer (content_filter), it is not the client's fault", async () => {
    const out = await ask('something forbidden');
    expect(out.choices[0].finish_reason).toBe('content_filter');
    expect(out.choices[0].message.content ?? '').not.toContain('forbidden');
    expect(harness.records.at(-1)).toMatchObject({ outcome: 'blocked' });
  });

  // The test filter holds nothing back, so each chunk carries the whole word.
  it('a stream goes through the stream filters, chunk by chunk', async () => {
    const stream = await client.chat.completions.create(
      { model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true },
      { headers: { 'x-stub-chunks': JSON.stringify(['a pineapple ', 'and ', 'a pineapple']) } },
    );
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).not.toContain('pineapple');
    expect(text).toContain('[FRUIT]');
    expect(harness.records.at(-1)!.ex.stream).toBe(true);
  });

  it('an answer over MAX_RESPONSE_SIZE is refused 502 when the policy says block', async () => {
    const err = await ask('x'.repeat(1000), { 'x-stub-reply-repeat': '100' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect(harness.records.at(-1)).toMatchObject({ outcome: 'blocked', status: 502 });
  });

  it('an uninspected route is relayed raw', async () => {
    const res = await fetch(`${harness.url}/v1/models`);
    expect(res.status).toBe(200);
    await res.text();
    expect(harness.records.at(-1)).toMatchObject({ outcome: 'ok' });
    expect(harness.flights.at(-1)!.inspect).toBe(false);
  });

  it('an unreachable upstream is a retryable 502 in the API shape', async () => {
    const gone = await startFlightHarness({ upstream: 'http://127.0.0.1:1', step: admit });
    try {
      const res = await fetch(`${gone.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [] }) });
      expect(res.status).toBe(502);
      expect(gone.records.at(-1)).toMatchObject({ outcome: 'upstream_error', error: 'upstream_unreachable' });
    } finally {
      await gone.close();
    }
  });

  it('REQUEST_TIMEOUT with no answer from the upstream is a 504', async () => {
    const slow = await startFlightHarness({ upstream: upstream.url, env: { REQUEST_TIMEOUT: '1' }, step: admit });
    try {
      const res = await fetch(`${slow.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-stub-delay-ms': '3000' }, body: JSON.stringify({ model: 'm', messages: [] }) });
      expect(res.status).toBe(504);
      expect(slow.records.at(-1)).toMatchObject({ outcome: 'timeout', error: 'upstream_timeout' });
    } finally {
      await slow.close();
    }
  });
});
