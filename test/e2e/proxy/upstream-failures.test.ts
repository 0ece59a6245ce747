/**
 * An upstream that fails at every phase of its answer: before its head, after it, in the middle of a JSON body,
 * in the middle of a stream, stalled, with a body that does not decode, with an event too large to hold. Each
 * phase has one outcome, and the client, the log line and the trace say the same.
 */
import { InferenceClient } from '@huggingface/inference';
import OpenAI from 'openai';
import type { Exchange } from '../../../proxy/protocols/exchange';
import { startMisbehavingUpstream, type MisbehavingUpstream } from '../../fixtures/misbehaving-upstream';
import { startGuarded, type GuardedProxy } from '../../support/guarded-proxy';
import { waitFor } from '../../support/wait';

const chat = (extra: Record<string, unknown> = {}) => JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello there' }], ...extra });

async function post(base: string, path: string, misbehave: string, body = chat(), headers: Record<string, string> = {}): Promise<{ status: number; text: string; ms: number }> {
  const t0 = Date.now();
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-misbehave': misbehave, ...headers }, body });
  return { status: res.status, text: await res.text(), ms: Date.now() - t0 };
}

/** The log line and the trace (the exchange as completed) of the request with this id. */
async function recorded(g: GuardedProxy, id: string): Promise<{ line: Record<string, unknown>; ex: Exchange }> {
  await waitFor(() => g.completed.some((e) => e.id === id) && g.logs.some((l) => l.msg === 'request' && l.reqId === id));
  return { line: g.logs.find((l) => l.msg === 'request' && l.reqId === id)!, ex: g.completed.find((e) => e.id === id)! };
}

describe('upstream failures, answered at once', () => {
  let up: MisbehavingUpstream;
  let g: GuardedProxy;
  beforeAll(async () => {
    up = await startMisbehavingUpstream();
    // REQUEST_TIMEOUT is long: none of these may wait for it.
    g = await startGuarded(up.url, { POLICY_PACK: 'default', REQUEST_TIMEOUT: '30', MAX_RESPONSE_SIZE: '65536' });
  });
  afterAll(async () => {
    await g.close();
    await up.close();
  });

  test.each([
    ['reset-before-head', 'upstream_unreachable'],
    ['reset-after-head', 'upstream_reset'],
    ['reset-mid-body', 'upstream_reset'],
    ['close-mid-body', 'upstream_reset'],
    ['bad-gzip', 'response_unreadable'],
    ['truncated-gzip', 'response_unreadable'],
  ])('%s on an inspected JSON route: 502 in the OpenAI shape at once; log and trace agree', async (mode, code) => {
    const id = `fail-${mode}`;
    const r = await post(g.proxy.url, '/v1/chat/completions', mode, chat(), { 'x-request-id': id });
    expect(r.status).toBe(502);
    expect(JSON.parse(r.text).error.code).toBe(code);
    expect(r.ms).toBeLessThan(10_000);
    const { line, ex } = await recorded(g, id);
    expect(line).toMatchObject({ status: 502, outcome: 'upstream_error', error: code });
    expect(ex.outcome).toBe('upstream_error');
    expect(ex.response?.status).toBe(502);
    expect(ex.response?.body?.toString()).toBe(r.text);
    expect(ex.traceTags?.['proxy-error']).toBe(code);
  });

  test('the OpenAI SDK sees a 502 APIError (retryable: no x-should-retry: false)', async () => {
    const sdk = new OpenAI({ baseURL: `${g.proxy.url}/v1`, apiKey: 'k', maxRetries: 0, defaultHeaders: { 'x-misbehave': 'reset-mid-body' } });
    await expect(sdk.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 502 });
  });

  test.each(['openai', 'responses'])('a %s stream reset midway ends with an in-stream error the SDK raises; status 200, outcome upstream_error', async (dialect) => {
    const id = `stream-reset-${dialect}`;
    const path = dialect === 'responses' ? '/v1/responses' : '/v1/chat/completions';
    const body = dialect === 'responses' ? JSON.stringify({ model: 'm', input: 'hello', stream: true }) : chat({ stream: true });
    const r = await post(g.proxy.url, path, 'reset-mid-stream', body, { 'x-misbehave-dialect': dialect, 'x-request-id': id });
    expect(r.status).toBe(200);
    expect(r.text.match(/"word "/g)).toHaveLength(3);
    expect(r.text).toContain('upstream_reset');
    const { line, ex } = await recorded(g, id);
    expect(line).toMatchObject({ status: 200, outcome: 'upstream_error', error: 'upstream_reset' });
    expect(ex.response?.streamText).toBe(r.text);

    if (dialect === 'openai') {
      const sdk = new OpenAI({ baseURL: `${g.proxy.url}/v1`, apiKey: 'k', maxRetries: 0, defaultHeaders: { 'x-misbehave': 'reset-mid-stream' } });
      const stream = await sdk.chat.completions.create({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
      let text = '';
      await expect(
        (async () => {
          for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
        })(),
      ).rejects.toThrow(/upstream closed the connection/);
      expect(text).toBe('word word word ');
    }
  });

  test('a TGI stream reset midway: @huggingface/inference raises the in-stream error', async () => {
    const hf = new InferenceClient('hf_x', { endpointUrl: g.proxy.url });
    const tokens: string[] = [];
    await expect(
      (async () => {
        for await (const t of hf.textGenerationStream({ inputs: 'hi', parameters: { max_new_tokens: 8 } }, { fetch: (url, init) => fetch(url, { ...init, headers: { ...(init?.headers as object), 'x-misbehave': 'reset-mid-stream', 'x-misbehave-dialect': 'tgi' } }) })) {
          tokens.push(t.token.text);
        }
      })(),
    ).rejects.toThrow(/upstream closed the connection/);
    expect(tokens.join('')).toBe('word word word ');
  });

  test('an uninspected body reset midway cuts the client connection; log and trace say upstream_error with the status sent', async () => {
    const id = 'raw-reset';
    const res = await fetch(`${g.proxy.url}/downloads/file.bin`, { headers: { 'x-misbehave': 'reset-mid-body', 'x-request-id': id } });
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    const { line, ex } = await recorded(g, id);
    expect(line).toMatchObject({ status: 200, outcome: 'upstream_error', error: 'upstream_reset' });
    expect(ex.api).toBe('passthrough');
  });

  test('an event over MAX_RESPONSE_SIZE ends the stream with an error event; the event never reaches the client', async () => {
    const id = 'huge-event';
    const r = await post(g.proxy.url, '/v1/chat/completions', 'huge-event', chat({ stream: true }), { 'x-misbehave-size': String(200 * 1024), 'x-request-id': id });
    expect(r.status).toBe(200);
    expect(r.text).not.toContain('yyyyyyyyyy');
    const errorEvent = r.text.split('\n\n').find((e) => e.includes('"error"'))!;
    expect(JSON.parse(errorEvent.replace(/^data: ?/, '')).error).toMatchObject({ code: 'stream_event_too_large', type: 'upstream_error' });
    expect(r.text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    const { line } = await recorded(g, id);
    expect(line).toMatchObject({ status: 200, outcome: 'upstream_error', error: 'stream_event_too_large' });
  });

  test('one endless line ends the stream with an error event as soon as it passes the bound', async () => {
    const id = 'endless-line';
    const r = await post(g.proxy.url, '/v1/chat/completions', 'endless-line', chat({ stream: true }), { 'x-request-id': id });
    expect(r.status).toBe(200);
    expect(r.text).toContain('stream_event_too_large');
    expect(r.text.length).toBeLessThan(4096);
    const { ex } = await recorded(g, id);
    expect(ex.outcome).toBe('upstream_error');
  });
});

describe('an upstream that stalls', () => {
  let up: MisbehavingUpstream;
  let g: GuardedProxy;
  beforeAll(async () => {
    up = await startMisbehavingUpstream();
    g = await startGuarded(up.url, { POLICY_PACK: 'default', REQUEST_TIMEOUT: '1' });
  });
  afterAll(async () => {
    await g.close();
    await up.close();
  });

  test('mid-body on an inspected route: 504, not a 200 with an empty body', async () => {
    const r = await post(g.proxy.url, '/v1/chat/completions', 'stall-mid-body', chat(), { 'x-request-id': 'stall-body' });
    expect(r.status).toBe(504);
    expect(JSON.parse(r.text).error.code).toBe('upstream_timeout');
    const { line, ex } = await recorded(g, 'stall-body');
    expect(line).toMatchObject({ status: 504, outcome: 'timeout' });
    expect(ex.response?.status).toBe(504);
  });

  test('mid-stream: the stream ends with an upstream_timeout error event', async () => {
    const r = await post(g.proxy.url, '/generate_stream', 'stall-mid-stream', JSON.stringify({ inputs: 'hi', stream: true }), { 'x-misbehave-dialect': 'tgi', 'x-request-id': 'stall-stream' });
    expect(r.status).toBe(200);
    const last = r.text.trim().split('\n\n').pop()!;
    expect(JSON.parse(last.replace(/^data: ?/, ''))).toMatchObject({ error: expect.stringContaining('upstream sent nothing'), error_type: 'upstream_timeout' });
    const { line } = await recorded(g, 'stall-stream');
    expect(line).toMatchObject({ status: 200, outcome: 'timeout', error: 'upstream_timeout' });
  });
});
