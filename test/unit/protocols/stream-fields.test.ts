/**
 * Every text a streamed answer carries goes through the guardrails (default pack, real hooks and rewriter):
 * reasoning, refusals, tool names, audio transcripts, in-stream error messages, logprobs and top tokens, and the
 * OpenAI Responses API's events.
 */
import { Writable } from 'node:stream';
import { type Guardrails } from '../../../proxy/guardrails';
import { openGuardrails } from '../../support/guardrails';
import type { Exchange } from '../../../proxy/protocols/exchange';
import { createStreamRewriter } from '../../../proxy/protocols/stream';
import { createLogger } from '../../../common/logger';
import { createRegistry } from '../../../common/metrics';
import { makeExchange } from './make-exchange';

const quiet = () => createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
const AWS_KEY = 'AKIAZ7Q3LMN4PRS5TUVW';
const EMAIL = 'alice.smith@example.com';
type Obj = Record<string, any>;

const sse = (events: Array<Obj | string>, named = false): string =>
  events.map((e) => (typeof e === 'string' ? `data: ${e}\n\n` : `${named ? `event: ${e.type}\n` : ''}data: ${JSON.stringify(e)}\n\n`)).join('');

function run(g: Guardrails, ex: Exchange, body: string): { events: Obj[]; blocked?: string } {
  const rw = createStreamRewriter(ex, g.hooks.openStream!(ex));
  let out = '';
  for (const part of body.split(/(?<=\n\n)/)) out += rw.push(Buffer.from(part));
  out += rw.end();
  const events = out
    .split('\n\n')
    .map((e) => e.split('\n').find((l) => l.startsWith('data:')))
    .filter((l): l is string => l !== undefined)
    .map((l) => l.slice(5).trim())
    .filter((d) => d !== '[DONE]')
    .map((d) => JSON.parse(d) as Obj);
  return { events, blocked: rw.blocked?.code };
}

const chunk = (delta: Obj, extra: Obj = {}): Obj => ({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs: null, finish_reason: null, ...extra }] });
const chatEx = () => makeExchange('POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], stream: true });
const pieces = (s: string, n: number): string[] => s.match(new RegExp(`[\\s\\S]{1,${n}}`, 'g')) ?? [];
const joined = (events: Obj[], pick: (e: Obj) => unknown): string => events.map((e) => pick(e)).filter((v): v is string => typeof v === 'string').join('');

describe('every text of a streamed answer is inspected', () => {
  let g: Guardrails;
  beforeAll(async () => {
    g = await openGuardrails({}, quiet(), createRegistry(false));
  });
  afterAll(() => g.close());

  it('reasoning deltas (reasoning_content and reasoning) are redacted like content', () => {
    for (const field of ['reasoning_content', 'reasoning']) {
      const body = sse([...pieces(`Thinking: mail ${EMAIL} later.`, 5).map((p) => chunk({ [field]: p })), chunk({ content: 'Done.' }), chunk({}, { finish_reason: 'stop' }), '[DONE]']);
      const { events } = run(g, chatEx(), body);
      expect(joined(events, (e) => e.choices[0]?.delta?.[field])).toBe('Thinking: mail <EMAIL_1> later.');
      expect(joined(events, (e) => e.choices[0]?.delta?.content)).toBe('Done.');
    }
  });

  it('a secret in a reasoning delta cuts the stream', () => {
    const body = sse([...pieces(`The key is ${AWS_KEY}.`, 4).map((p) => chunk({ reasoning_content: p })), '[DONE]']);
    const { events, blocked } = run(g, chatEx(), body);
    expect(blocked).toBe('secrets-response-block');
    expect(JSON.stringify(events)).not.toContain('AKIA');
    expect(events.at(-1)?.choices[0].finish_reason).toBe('content_filter');
  });

  it('a tool name carrying a secret is blocked; a plain one passes whole', () => {
    const call = (name: string | null, args: string): Obj => chunk({ tool_calls: [{ index: 0, id: 't', type: 'function', function: { name, arguments: args } }] });
    const ok = run(g, chatEx(), sse([call('get_weather', '{"city":'), call(null, '"Bern"}'), chunk({}, { finish_reason: 'tool_calls' }), '[DONE]']));
    expect(joined(ok.events, (e) => e.choices[0]?.delta?.tool_calls?.[0]?.function?.name)).toBe('get_weather');
    expect(joined(ok.events, (e) => e.choices[0]?.delta?.tool_calls?.[0]?.function?.arguments)).toBe('{"city":"Bern"}');
    const bad = run(g, chatEx(), sse([call(AWS_KEY, '{}'), '[DONE]']));
    expect(bad.blocked).toBe('secrets-response-block');
    expect(JSON.stringify(bad.events)).not.toContain('AKIA');
  });

  it('audio transcripts and refusals are channels too', () => {
    const body = sse([chunk({ audio: { id: 'a', transcript: `call ${EMAIL.slice(0, 9)}` } }), chunk({ audio: { transcript: `${EMAIL.slice(9)} now` } }), chunk({ refusal: `I won't share ${EMAIL}` }), chunk({}, { finish_reason: 'stop' }), '[DONE]']);
    const { events } = run(g, chatEx(), body);
    expect(joined(events, (e) => e.choices[0]?.delta?.audio?.transcript)).toBe('call <EMAIL_1> now');
    expect(joined(events, (e) => e.choices[0]?.delta?.refusal)).toBe("I won't share <EMAIL_1>");
  });

  it('logprobs: dropped whenever the text they show was held or changed; alternatives spelling a secret are caught', () => {
    const lp = (token: string, alt: string): Obj => ({ content: [{ token, logprob: -1, top_logprobs: [{ token, logprob: -1 }, { token: alt, logprob: -2 }] }] });
    const body = sse([...[...AWS_KEY].map((c) => chunk({ content: 'x ' }, { logprobs: lp('x ', c) })), chunk({}, { finish_reason: 'stop' }), '[DONE]']);
    const { events, blocked } = run(g, chatEx(), body);
    expect(blocked).toBe('secrets-response-block');
    expect(JSON.stringify(events)).not.toContain(AWS_KEY.slice(0, 4));
  });

  it('an in-stream error message is redacted', () => {
    const body = sse([chunk({ content: 'Hi' }), { error: { message: `upstream failed for ${EMAIL}`, type: 'server_error' } }, '[DONE]']);
    const { events } = run(g, chatEx(), body);
    expect(events.find((e) => e.error)?.error.message).toBe('upstream failed for <EMAIL_1>');
  });

  it('TGI native top_tokens are dropped while their text is held', () => {
    const ex = makeExchange('POST', '/generate_stream', { inputs: 'q', parameters: { top_n_tokens: 2 } });
    const body = [...`Mail ${EMAIL}`]
      .map((c, i) => `data:${JSON.stringify({ index: i, token: { id: i, text: c, logprob: -1, special: false }, top_tokens: [{ id: i, text: c, logprob: -1, special: false }], generated_text: null, details: null })}\n\n`)
      .join('');
    const { events } = run(g, ex, body);
    expect(joined(events, (e) => e.token?.text)).toBe('Mail <EMAIL_1>');
    expect(JSON.stringify(events)).not.toContain('alice');
  });

  describe('OpenAI Responses API', () => {
    const rex = () => makeExchange('POST', '/v1/responses', { input: 'hi', stream: true });
    const base = { id: 'resp_1', object: 'response', status: 'in_progress', output: [] };
    const item = { id: 'msg_1', type: 'message', role: 'assistant', status: 'in_progress', content: [] };
    const events = (text: string, n: number): Obj[] => {
      let seq = 0;
      const e = (o: Obj): Obj => ({ ...o, sequence_number: seq++ });
      const full = { ...item, status: 'completed', content: [{ type: 'output_text', text, annotations: [] }] };
      return [
        e({ type: 'response.created', response: base }),
        e({ type: 'response.output_item.added', output_index: 0, item }),
        e({ type: 'response.content_part.added', item_id: 'msg_1', output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } }),
        ...pieces(text, n).map((d) => e({ type: 'response.output_text.delta', item_id: 'msg_1', output_index: 0, content_index: 0, delta: d })),
        e({ type: 'response.output_text.done', item_id: 'msg_1', output_index: 0, content_index: 0, text }),
        e({ type: 'response.content_part.done', item_id: 'msg_1', output_index: 0, content_index: 0, part: { type: 'output_text', text, annotations: [] } }),
        e({ type: 'response.output_item.done', output_index: 0, item: full }),
        e({ type: 'response.completed', response: { ...base, status: 'completed', output: [full], output_text: text } }),
      ];
    };

    it('deltas, done texts, items and the completed response all carry the redacted text', () => {
      const { events: out } = run(g, rex(), sse(events(`Write to ${EMAIL} today.`, 4), true));
      const redacted = 'Write to <EMAIL_1> today.';
      expect(joined(out, (e) => (e.type === 'response.output_text.delta' ? e.delta : undefined))).toBe(redacted);
      expect(out.find((e) => e.type === 'response.output_text.done')?.text).toBe(redacted);
      expect(out.find((e) => e.type === 'response.content_part.done')?.part.text).toBe(redacted);
      expect(out.find((e) => e.type === 'response.output_item.done')?.item.content[0].text).toBe(redacted);
      const completed = out.find((e) => e.type === 'response.completed')!.response;
      expect(completed.output[0].content[0].text).toBe(redacted);
      expect(completed.output_text).toBe(redacted);
      expect(JSON.stringify(out)).not.toContain('alice');
    });

    it('a secret ends the stream with response.incomplete, reason content_filter', () => {
      const { events: out, blocked } = run(g, rex(), sse(events(`Key: ${AWS_KEY} ok`, 3), true));
      expect(blocked).toBe('secrets-response-block');
      expect(out.at(-1)).toMatchObject({ type: 'response.incomplete', response: { status: 'incomplete', incomplete_details: { reason: 'content_filter' } } });
      expect(JSON.stringify(out)).not.toContain('AKIA');
    });
  });
});
