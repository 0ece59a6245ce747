import type { BlockVerdict } from '../../../proxy/protocols/exchange';
import { createStreamRewriter } from '../../../proxy/protocols/stream';
import { chainInspectors, type ChannelFilter, type StreamInspector } from '../../../proxy/protocols/stream-filter';
import { makeExchange } from './make-exchange';
import { OPENAI_CHAT, TGI_CHAT, TGI_NATIVE } from './sse-fixtures';

const pass: ChannelFilter = { push: (d) => ({ text: d }), end: () => ({ text: '' }) };
const verdict: BlockVerdict = { status: 400, type: 'guardrail_violation', code: 'akto:secret-leak', message: 'Response blocked by Akto guardrail policy "secret-leak"' };
const withCheck: StreamInspector = { channel: () => pass, finalCheck: async () => undefined };

/** Feeds a stream in small chunks; returns what the client got before the check, and the rewriter. */
function run(sse: string, path: string, body: unknown, inspector: StreamInspector = withCheck) {
  const ex = makeExchange('POST', path, body);
  const rw = createStreamRewriter(ex, inspector);
  let sent = '';
  for (let i = 0; i < sse.length; i += 7) sent += rw.push(Buffer.from(sse.slice(i, i + 7)));
  sent += rw.end();
  return { ex, rw, sent };
}

const dataLines = (text: string): string[] => text.split('\n\n').filter((e) => e.startsWith('data:')).map((e) => e.replace(/^data: ?/, ''));

describe('stream final check: terminal events wait for it', () => {
  const chat = { model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true };

  test('OpenAI chat: content flows at once, the finish chunk, usage and [DONE] are held; release sends them unchanged', () => {
    const { rw, sent, ex } = run(OPENAI_CHAT, '/v1/chat/completions', chat);
    const before = dataLines(sent);
    expect(before.some((d) => d.includes('"finish_reason":"stop"'))).toBe(false);
    expect(before.some((d) => d === '[DONE]')).toBe(false);
    expect(before.map((d) => JSON.parse(d).choices[0].delta.content ?? '').join('')).toBe('Café olé 😀 done');
    // The check reads the whole answer, including what the held events carry.
    expect(ex.output.map((s) => s.text).join('')).toBe('Café olé 😀 done');
    expect(sent + rw.release()).toBe(OPENAI_CHAT);
    expect(rw.blocked).toBeUndefined();
  });

  test('OpenAI chat: cut drops the held events and ends every choice with content_filter, then [DONE]', () => {
    const { rw } = run(TGI_CHAT, '/v1/chat/completions', chat);
    const tail = dataLines(rw.cut(verdict));
    expect(tail).toHaveLength(2);
    expect(JSON.parse(tail[0]).choices).toEqual([{ index: 0, delta: {}, logprobs: null, finish_reason: 'content_filter' }]);
    expect(tail[1]).toBe('[DONE]');
    expect(rw.blocked).toBe(verdict);
    expect(tail.join('')).not.toContain('"stop"');
  });

  test('TGI native: the final event (generated_text, details) is held; cut answers a TGI error event instead', () => {
    const { rw, sent } = run(TGI_NATIVE, '/generate_stream', { inputs: 'x', parameters: {} });
    expect(sent).not.toContain('generated_text":" Deep');
    expect(dataLines(sent).map((d) => JSON.parse(d).token.text).join('')).toBe(' Deep learning is');
    expect(dataLines(rw.cut(verdict)).map((d) => JSON.parse(d))).toEqual([{ error: verdict.message, error_type: 'generation' }]);
  });

  test('without a final check nothing is held', () => {
    const { sent } = run(OPENAI_CHAT, '/v1/chat/completions', chat, { channel: () => pass });
    expect(sent).toBe(OPENAI_CHAT);
  });

  test('a local block mid-stream is not held back behind the check', () => {
    let seen = '';
    const blockOnDone: StreamInspector = {
      channel: () => ({
        push: (d) => {
          seen += d;
          return seen.includes('done') ? { text: '', block: verdict } : { text: d };
        },
        end: () => ({ text: '' }),
      }),
      finalCheck: async () => undefined,
    };
    const { rw, sent } = run(OPENAI_CHAT, '/v1/chat/completions', chat, blockOnDone);
    expect(rw.blocked).toBe(verdict);
    expect(sent).toContain('"finish_reason":"content_filter"');
    expect(sent.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  test('chained inspectors ask every final check in order; the first verdict wins', async () => {
    const asked: string[] = [];
    const a: StreamInspector = { channel: () => pass, finalCheck: async () => (asked.push('a'), undefined) };
    const b: StreamInspector = { channel: () => pass, finalCheck: async () => (asked.push('b'), verdict) };
    const c: StreamInspector = { channel: () => pass, finalCheck: async () => (asked.push('c'), undefined) };
    const chained = chainInspectors([a, { channel: () => pass }, b, c])!;
    expect(await chained.finalCheck!()).toBe(verdict);
    expect(asked).toEqual(['a', 'b']);
    expect(chainInspectors([{ channel: () => pass }, { channel: () => pass }])!.finalCheck).toBeUndefined();
  });
});
