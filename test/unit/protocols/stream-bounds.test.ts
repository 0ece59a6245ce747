/**
 * What one stream or one large body may hold in memory, whatever the upstream sends: a line or event is capped
 * (the stream then ends with an in-stream error in its own dialect), the text kept for the record is bounded,
 * the number of channels too, and JSON nesting or keys cannot grow without end.
 */
import type { ChannelFilter, StreamInspector } from '../../../proxy/protocols/stream-filter';
import { newExchange, type BlockVerdict, type Exchange } from '../../../proxy/protocols/exchange';
import { createInboundProtocol } from '../../../proxy/protocols/inbound';
import { createJsonStreamRewriter } from '../../../proxy/protocols/json-stream';
import { KeptText, OutputBudget } from '../../../proxy/protocols/kept-text';
import { SseParser, type SseEvent } from '../../../proxy/protocols/sse';
import { createStreamRewriter, MAX_CHANNELS } from '../../../proxy/protocols/stream';
import { makeExchange } from './make-exchange';

const RESET: BlockVerdict = { status: 502, type: 'upstream_error', code: 'upstream_reset', message: 'upstream closed the connection before its response ended' };
const chatEx = (stream = true) => makeExchange('POST', '/v1/chat/completions', { model: 'm', stream, messages: [{ role: 'user', content: 'hi' }] });
const tgiEx = () => makeExchange('POST', '/generate_stream', { inputs: 'hi', stream: true });
const responsesEx = () => makeExchange('POST', '/v1/responses', { model: 'm', stream: true, input: 'hi' });
const chunk = (text: string, index = 0) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [{ index, delta: { content: text }, finish_reason: null }] })}\n\n`;
const token = (text: string, i: number) => `data:${JSON.stringify({ index: i, token: { id: i, text, logprob: 0, special: false }, generated_text: null, details: null })}\n\n`;

/** Releases all but the last `n` characters, replacing `from` with `to` in what it releases at the end. */
function holdTail(n: number): ChannelFilter {
  let held = '';
  return {
    push: (d) => {
      held += d;
      const cut = Math.max(0, held.length - n);
      const text = held.slice(0, cut);
      held = held.slice(cut);
      return { text };
    },
    end: () => ({ text: held.replace('AKIA', '[KEY]') }),
  };
}
const inspector = (n = 8): StreamInspector => ({ channel: () => holdTail(n) });

/** The data of each event the client would read. */
function events(sse: string): Array<{ event?: string; data: unknown }> {
  return sse
    .split('\n\n')
    .filter((e) => e.includes('data:'))
    .map((e) => {
      const lines = e.split('\n');
      const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      const event = lines.find((l) => l.startsWith('event:'))?.slice(6).trim();
      let parsed: unknown = data;
      try {
        parsed = JSON.parse(data);
      } catch {
        // [DONE] and other plain data stay text
      }
      return { event, data: parsed };
    });
}

describe('SseParser bound', () => {
  const collect = (max: number) => {
    const got: SseEvent[] = [];
    let overflows = 0;
    const p = new SseParser({ event: (e) => got.push(e), comment: () => undefined, overflow: () => overflows++ }, max);
    return { p, got, overflows: () => overflows };
  };

  test('one endless line stops the parser once past the bound, and nothing more is kept', () => {
    const { p, got, overflows } = collect(64 * 1024);
    p.push(Buffer.from('data: {"a":"'));
    const filler = Buffer.alloc(16 * 1024, 0x78);
    for (let i = 0; i < 10_000; i++) p.push(filler);
    expect(overflows()).toBe(1);
    expect(got).toHaveLength(0);
    expect(p.midEvent).toBe(false);
    p.end();
    expect(got).toHaveLength(0);
  });

  test('an event of endless short data lines stops it too; events within the bound pass', () => {
    const { p, got, overflows } = collect(1024);
    p.push(Buffer.from('data: small\n\n'));
    for (let i = 0; i < 1000; i++) p.push(Buffer.from('data: 0123456789\n'));
    expect(got.map((e) => e.data)).toEqual(['small']);
    expect(overflows()).toBe(1);
  });

  test('a comment line over the bound stops it', () => {
    const { p, overflows } = collect(100);
    p.push(Buffer.from(`:${'k'.repeat(500)}\n`));
    expect(overflows()).toBe(1);
  });
});

describe('stream rewriter bounds and abort', () => {
  const bounds = { maxEventBytes: 4096, maxKeptChars: 1000 };

  test.each([
    ['OpenAI chat, inspected', chatEx, chunk('hello '), true],
    ['OpenAI chat, passed through', chatEx, chunk('hello '), false],
    ['TGI native', tgiEx, token('hello ', 1), true],
  ])('an event over maxEventBytes fails the stream (%s); abort() ends it with an error event in its dialect', (_name, ex, first, inspected) => {
    const rw = createStreamRewriter(ex(), inspected ? inspector() : undefined, bounds);
    let out = String(rw.push(Buffer.from(first)));
    out += String(rw.push(Buffer.from(`data: {"choices":[{"index":0,"delta":{"content":"${'y'.repeat(10_000)}"}}]}\n\n`)));
    expect(rw.failed).toMatchObject({ code: 'stream_event_too_large', status: 502 });
    const ended = rw.abort(rw.failed!);
    const evs = events(inspected ? out + ended : first + ended);
    expect(JSON.stringify(evs)).not.toContain('yyyy');
    const last = evs.filter((e) => e.data !== '[DONE]').pop()!.data as Record<string, unknown>;
    if (ex === tgiEx) expect(last).toEqual({ error: expect.stringContaining('MAX_RESPONSE_SIZE'), error_type: 'upstream_error' });
    else {
      expect(last).toEqual({ error: { message: expect.stringContaining('MAX_RESPONSE_SIZE'), type: 'upstream_error', code: 'stream_event_too_large', param: null } });
      expect(evs[evs.length - 1].data).toBe('[DONE]');
    }
    // Ended: nothing more comes out.
    expect(rw.abort(RESET)).toBe('');
  });

  test('passed through mid-event, abort() first ends the half-sent event', () => {
    const rw = createStreamRewriter(chatEx(), undefined, bounds);
    rw.push(Buffer.from('data: {"choices":[{"index":0,"delta":{"cont'));
    expect(String(rw.abort(RESET)).startsWith('\n\n')).toBe(true);
  });

  test('a Responses API stream ends with an `error` event', () => {
    const rw = createStreamRewriter(responsesEx(), inspector(), bounds);
    const delta = `event: response.output_text.delta\ndata: ${JSON.stringify({ type: 'response.output_text.delta', sequence_number: 4, output_index: 0, content_index: 0, delta: 'hi there' })}\n\n`;
    const out = String(rw.push(Buffer.from(delta))) + rw.abort(RESET);
    const evs = events(out);
    expect(evs[evs.length - 1]).toEqual({ event: 'error', data: { type: 'error', code: 'upstream_reset', message: RESET.message, param: null, sequence_number: 5 } });
  });

  test('abort() judges and releases what the filters held before the error event', () => {
    const rw = createStreamRewriter(chatEx(), inspector(8), bounds);
    const out = String(rw.push(Buffer.from(chunk('my key is AKIA')))) + rw.abort(RESET);
    const text = events(out)
      .map((e) => (e.data as { choices?: Array<{ delta?: { content?: string } }> }).choices?.[0]?.delta?.content ?? '')
      .join('');
    expect(text).toBe('my key is [KEY]');
    expect(out).toContain('upstream_reset');
  });

  test('the text kept for ex.output stops at maxKeptChars; the client still gets every token', () => {
    const ex = chatEx();
    const rw = createStreamRewriter(ex, inspector(), bounds);
    let out = '';
    for (let i = 0; i < 500; i++) out += String(rw.push(Buffer.from(chunk('abcdefghij'))));
    out += String(rw.push(Buffer.from('data: [DONE]\n\n'))) + String(rw.end());
    const sent = events(out)
      .map((e) => (e.data as { choices?: Array<{ delta?: { content?: string } }> }).choices?.[0]?.delta?.content ?? '')
      .join('');
    expect(sent).toHaveLength(5000);
    expect(ex.output[0].text).toBe('abcdefghij'.repeat(100));
    expect(ex.notes.outputTruncated).toContain('kept-text bound');
  });

  test(`more than ${MAX_CHANNELS} channels fail the stream`, () => {
    const rw = createStreamRewriter(chatEx(), inspector(), { maxEventBytes: 10 * 1024 * 1024, maxKeptChars: 1000 });
    for (let i = 0; i <= MAX_CHANNELS && !rw.failed; i++) rw.push(Buffer.from(chunk('x', i)));
    expect(rw.failed).toMatchObject({ code: 'stream_too_many_channels' });
  });

  test('TGI generated_text follows what was released when a filter changed the tokens, also past the kept bound', () => {
    const ex = tgiEx();
    const rw = createStreamRewriter(ex, inspector(8), { maxEventBytes: 4096, maxKeptChars: 6 });
    let out = String(rw.push(Buffer.from(token('key AKIA', 1))));
    out += String(rw.push(Buffer.from(`data:${JSON.stringify({ index: 2, token: { id: 2, text: '!', logprob: 0, special: false }, generated_text: 'key AKIA!', details: null })}\n\n`)));
    out += String(rw.end());
    const last = events(out).pop()!.data as { generated_text: string };
    expect(last.generated_text).not.toContain('AKIA');
    expect(last.generated_text).toBe('key [K');
  });
});

describe('KeptText and OutputBudget', () => {
  test('pieces add up until the shared budget, then the rest is dropped and marked', () => {
    const budget = new OutputBudget(10_000);
    const a = new KeptText(budget);
    const b = new KeptText(budget, 100);
    for (let i = 0; i < 3000; i++) a.add('abc');
    for (let i = 0; i < 50; i++) b.add('xyz');
    expect(a.toString()).toBe('abc'.repeat(3000));
    expect(a.truncated).toBe(false);
    expect(b.toString()).toBe('xyz'.repeat(34).slice(0, 100));
    expect(b.truncated).toBe(true);
    // 900 characters of the budget are left.
    a.add('z'.repeat(1000));
    expect(a.toString()).toBe('abc'.repeat(3000) + 'z'.repeat(900));
    expect(a.truncated).toBe(true);
    expect(budget.truncated).toBe(true);
  });
});

describe('large JSON bodies: nesting and keys are bounded', () => {
  const passAll: StreamInspector = { channel: () => ({ push: (d) => ({ text: d }), end: () => ({ text: '' }) }) };

  test('a body nested 200 000 deep is copied through byte for byte', () => {
    const depth = 200_000;
    const body = `{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}],"x":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const rw = createJsonStreamRewriter(chatEx(false), passAll, { maxKeptChars: 1000 });
    let out = '';
    const bytes = Buffer.from(body);
    for (let i = 0; i < bytes.length; i += 4096) out += rw.push(bytes.subarray(i, i + 4096));
    out += rw.end();
    expect(out).toBe(body);
  });

  test('a megabyte-long key does not stop the text fields after it from being read', () => {
    const ex = chatEx(false);
    const body = `{"${'k'.repeat(1024 * 1024)}":1,"choices":[{"index":0,"message":{"role":"assistant","content":"after the long key"}}]}`;
    const rw = createJsonStreamRewriter(ex, passAll, { maxKeptChars: 1000 });
    const out = rw.push(Buffer.from(body)) + rw.end();
    expect(out).toBe(body);
    expect(ex.output.map((s) => s.text)).toEqual(['after the long key']);
  });

  test('thousands of text values keep at most the budget for the record', () => {
    const ex = chatEx(false);
    const choices = Array.from({ length: 6000 }, (_, i) => ({ index: i, message: { role: 'assistant', content: 'value' } }));
    const rw = createJsonStreamRewriter(ex, passAll, { maxKeptChars: 100_000 });
    rw.push(Buffer.from(JSON.stringify({ choices })));
    rw.end();
    expect(ex.output.length).toBeLessThanOrEqual(4096);
    expect(ex.notes.outputTruncated).toContain('kept for the record');
  });
});

describe('the inbound listener\'s streams (the agent app\'s SSE and NDJSON) have the same bounds', () => {
  const protocol = createInboundProtocol(() => ({}));
  const appEx = (): Exchange => {
    const routed = protocol.route('POST', '/api/chat', '/');
    if (!routed.ok) throw new Error(routed.reason);
    const ex = newExchange({ id: 'bounds', direction: 'inbound', method: 'POST', path: routed.path, api: routed.api, dialect: routed.dialect, upstream: new URL('http://127.0.0.1:8000') });
    protocol.attachBody(ex, Buffer.from('{"message":"go"}'), 'application/json');
    return ex;
  };
  const bounds = { maxEventBytes: 1024, maxKeptChars: 100 };

  it.each([
    ['application/x-ndjson', (s: string) => `{"text":${JSON.stringify(s)}}\n`, '{"text":"'],
    ['text/event-stream', (s: string) => `data: {"text":${JSON.stringify(s)}}\n\n`, 'data: {"text":"'],
  ])('%s: an endless line fails the stream; abort ends it with an error the client can read', (contentType, line, open) => {
    const rw = protocol.streamRewriter(appEx(), contentType, inspector(), bounds);
    let out = rw.push(Buffer.from(line('hello ') + line('world'))).toString();
    rw.push(Buffer.from(open));
    for (let i = 0; i < 10 && !rw.failed; i++) rw.push(Buffer.from('x'.repeat(200)));
    expect(rw.failed).toMatchObject({ status: 502, code: 'stream_event_too_large' });
    expect(rw.push(Buffer.from('x'.repeat(200)))).toBe('');
    out += rw.abort(rw.failed!);
    // What the filter held is released before the error: the client reads the whole text of the complete lines.
    expect([...out.matchAll(/"text":"([^"]*)"/g)].map((m) => m[1]).join('')).toBe('hello world');
    expect(out).toContain('"code":"stream_event_too_large"');
    expect(out).not.toContain('xxxx');
    expect(rw.abort(rw.failed!)).toBe('');
  });

  it('the text kept for the record stops at the budget and says so', () => {
    const ex = appEx();
    const rw = protocol.streamRewriter(ex, 'application/x-ndjson', inspector(), bounds);
    let out = '';
    for (let i = 0; i < 40; i++) out += rw.push(Buffer.from(`{"text":"word${i} "}\n`));
    out += rw.end();
    expect(out).toContain('word39');
    expect(ex.output.reduce((n, s) => n + s.text.length, 0)).toBeLessThanOrEqual(100);
    expect(ex.notes.outputTruncated).toMatch(/kept-text bound/);
  });

  it('more than MAX_CHANNELS distinct fields fail the stream', () => {
    const rw = protocol.streamRewriter(appEx(), 'application/x-ndjson', inspector(), bounds);
    const fields = Object.fromEntries(Array.from({ length: MAX_CHANNELS + 1 }, (_, i) => [`text${i}`, 'a']));
    rw.push(Buffer.from(`${JSON.stringify(fields)}\n`));
    expect(rw.failed).toMatchObject({ code: 'stream_too_many_channels' });
  });
});
