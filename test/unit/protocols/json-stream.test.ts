import { Writable } from 'node:stream';
import { type Guardrails } from '../../../proxy/guardrails';
import { openGuardrails } from '../../support/guardrails';
import type { Exchange } from '../../../proxy/protocols/exchange';
import { createJsonStreamRewriter } from '../../../proxy/protocols/json-stream';
import { parseResponse, serializeResponse } from '../../../proxy/protocols/response';
import { createLogger } from '../../../common/logger';
import { createRegistry } from '../../../common/metrics';
import { makeExchange } from './make-exchange';

const quiet = () => createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
const AWS_KEY = 'AKIAZ7Q3LMN4PRS5TUVW';
const EMAIL = 'alice.smith@example.com';

/** The large-response path: the body fed in pieces of `size` bytes through the guardrails' stream filters. */
function streamed(g: Guardrails, ex: Exchange, body: string, size: number): { text: string; ex: Exchange; blocked?: string } {
  const rw = createJsonStreamRewriter(ex, g.hooks.openStream!(ex)!);
  const bytes = Buffer.from(body);
  let text = '';
  for (let i = 0; i < bytes.length; i += size) text += rw.push(bytes.subarray(i, i + size));
  text += rw.end();
  return { text, ex, blocked: rw.blocked?.code };
}

/** The buffered path on the same body: parse, guardrails, serialize. */
function buffered(g: Guardrails, ex: Exchange, body: string): string {
  parseResponse(ex, Buffer.from(body), {});
  const verdict = g.hooks.onResponse!(ex) as undefined;
  return serializeResponse(ex, Buffer.from(body), verdict)!.toString();
}

const chatEx = () => makeExchange('POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] });

describe('large responses scanned as they stream (bounded memory)', () => {
  let g: Guardrails;
  beforeAll(async () => {
    g = await openGuardrails({}, quiet(), createRegistry(false));
  });
  afterAll(() => g.close());

  const bodies: Array<[string, () => Exchange, unknown]> = [
    [
      'chat with reasoning and tool calls',
      chatEx,
      {
        id: 'c',
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: `Write to ${EMAIL} — café 😀 "quoted"\n`, reasoning_content: `found ${EMAIL}`, tool_calls: [{ id: '1', type: 'function', function: { name: 'mail', arguments: `{"to":"${EMAIL}"}` } }] },
            finish_reason: 'stop',
          },
          { index: 1, message: { role: 'assistant', content: 'nothing here' }, finish_reason: 'stop' },
        ],
        usage: { prompt_tokens: 3, completion_tokens: 9, total_tokens: 12 },
      },
    ],
    ['completions', () => makeExchange('POST', '/v1/completions', { prompt: 'x' }), { choices: [{ index: 0, text: `call +41 44 668 18 00 or ${EMAIL}`, finish_reason: 'stop' }] }],
    ['TGI compat with the echoed prompt', () => makeExchange('POST', '/', { inputs: `I am ${EMAIL}.` }), [{ generated_text: `I am ${EMAIL}. Hello ${EMAIL}!` }]],
    [
      'Responses API',
      () => makeExchange('POST', '/v1/responses', { input: 'hi' }),
      { id: 'r', object: 'response', status: 'completed', output: [{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: `mail ${EMAIL}`, annotations: [] }] }] },
    ],
  ];

  it.each(bodies)('%s: the same bytes as the buffered path, for every piece size', (_name, makeEx, json) => {
    const body = JSON.stringify(json);
    const expected = JSON.parse(buffered(g, makeEx(), body));
    for (const size of [1, 2, 3, 5, 8, 13, 64, body.length]) {
      const got = streamed(g, makeEx(), body, size);
      expect(JSON.parse(got.text)).toEqual(expected);
    }
  });

  it('keeps usage and the output for the trace', () => {
    const ex = chatEx();
    streamed(g, ex, JSON.stringify(bodies[0][2]), 7);
    expect(ex.usage).toEqual({ promptTokens: 3, completionTokens: 9, totalTokens: 12, source: 'response' });
    expect(ex.output.map((s) => [s.kind, s.text])).toEqual([
      ['completion', 'Write to <EMAIL_1> — café 😀 "quoted"\n'],
      ['reasoning', 'found <EMAIL_1>'],
      ['tool_name', 'mail'],
      ['tool_arguments', '{"to":"<EMAIL_1>"}'],
      ['completion', 'nothing here'],
    ]);
  });

  it('a secret: the text before it, nothing of it, later texts emptied, finish reasons content_filter, valid JSON', () => {
    const body = JSON.stringify({
      choices: [
        { index: 0, message: { role: 'assistant', content: `The key is ${AWS_KEY} for prod.` }, finish_reason: 'stop' },
        { index: 1, message: { role: 'assistant', content: 'second answer' }, finish_reason: 'stop' },
      ],
    });
    for (const size of [1, 4, 9, body.length]) {
      const got = streamed(g, chatEx(), body, size);
      expect(got.blocked).toBe('secrets-response-block');
      const json = JSON.parse(got.text);
      expect('The key is '.startsWith(json.choices[0].message.content)).toBe(true);
      expect(got.text).not.toContain('AKIA');
      expect(json.choices.map((c: { finish_reason: string }) => c.finish_reason)).toEqual(['content_filter', 'content_filter']);
      expect(json.choices[1].message.content).toBe('');
    }
  });

  it('token lists are dropped: they cannot be checked against text already on its way', () => {
    const body = JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, logprobs: { content: [{ token: 'ok', logprob: -1, top_logprobs: [{ token: 'AKIA', logprob: -2 }] }] }, finish_reason: 'stop' }] });
    expect(JSON.parse(streamed(g, chatEx(), body, 3).text).choices[0].logprobs).toBeNull();
    const tgi = JSON.stringify({ generated_text: 'ok', details: { finish_reason: 'length', tokens: [{ id: 1, text: 'ok', logprob: -1, special: false }], top_tokens: [[{ id: 2, text: 'x' }]] } });
    expect(JSON.parse(streamed(g, makeExchange('POST', '/generate', { inputs: 'q' }), tgi, 5).text).details).toEqual({ finish_reason: 'length', tokens: [], top_tokens: [] });
  });

  it('a body that is not JSON, or stops being JSON, is scanned as plain text', () => {
    expect(streamed(g, chatEx(), `Mail ${EMAIL} now`, 4).text).toBe('Mail <EMAIL_1> now');
    const broken = streamed(g, chatEx(), `{"choices": [} trailing ${EMAIL}`, 3);
    expect(broken.text).toBe('{"choices": [} trailing <EMAIL_1>');
  });
});
