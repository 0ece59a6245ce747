import { editSegment } from '../../../proxy/protocols/exchange';
import { parseResponse, serializeResponse } from '../../../proxy/protocols/response';
import { makeExchange } from './make-exchange';

const buf = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const json = { 'content-type': 'application/json' };

describe('parseResponse', () => {
  test('chat: content per choice, usage from the body', () => {
    const ex = makeExchange('POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] });
    const body = {
      object: 'chat.completion',
      id: '',
      choices: [
        { index: 0, message: { role: 'assistant', content: 'Hello' }, finish_reason: 'stop' },
        { index: 1, message: { role: 'assistant', content: 'Hey' }, finish_reason: 'stop' },
      ],
      usage: { prompt_tokens: 39, completion_tokens: 3, total_tokens: 42 },
    };
    parseResponse(ex, buf(body), { ...json, 'x-prompt-tokens': '1' });
    expect(ex.output.map((s) => [s.choice, s.path.join('.'), s.text, s.kind])).toEqual([
      [0, 'choices.0.message.content', 'Hello', 'completion'],
      [1, 'choices.1.message.content', 'Hey', 'completion'],
    ]);
    expect(ex.usage).toEqual({ promptTokens: 39, completionTokens: 3, totalTokens: 42, source: 'response' });
  });

  test('chat tool calls: arguments as output, counted', () => {
    const ex = makeExchange('POST', '/v1/chat/completions', { messages: [] });
    const args = '{"location":"Brooklyn, NY","format":"fahrenheit"}';
    const body = { choices: [{ index: 0, message: { role: 'assistant', tool_calls: [{ id: '0', type: 'function', function: { description: null, name: 'get_current_weather', arguments: args } }] } }] };
    parseResponse(ex, buf(body), json);
    expect(ex.toolCalls).toBe(1);
    expect(ex.output).toEqual([
      expect.objectContaining({ kind: 'tool_name', text: 'get_current_weather', path: ['choices', 0, 'message', 'tool_calls', 0, 'function', 'name'] }),
      expect.objectContaining({ kind: 'tool_arguments', text: args, path: ['choices', 0, 'message', 'tool_calls', 0, 'function', 'arguments'] }),
    ]);
  });

  test('completions text, TGI headers as usage when the body has none', () => {
    const ex = makeExchange('POST', '/v1/completions', { prompt: 'x' });
    parseResponse(ex, buf({ choices: [{ index: 0, text: ' Deep', finish_reason: 'stop' }] }), { 'x-prompt-tokens': '4', 'x-generated-tokens': '2' });
    expect(ex.output.map((s) => s.text)).toEqual([' Deep']);
    expect(ex.usage).toEqual({ promptTokens: 4, completionTokens: 2, totalTokens: 6, source: 'headers' });
  });

  test('POST / strips the echoed prompt (return_full_text default) and writes it back on edit', () => {
    const ex = makeExchange('POST', '/', { inputs: 'My email is a@b.co. ' });
    const original = buf([{ generated_text: 'My email is a@b.co. Noted, a@b.co!' }]);
    parseResponse(ex, original, json);
    expect(ex.output).toEqual([expect.objectContaining({ path: [0, 'generated_text'], text: 'Noted, a@b.co!' })]);
    expect(serializeResponse(ex, original)).toBe(original);
    editSegment(ex.output[0], 'Noted, [EMAIL]!');
    expect(JSON.parse(serializeResponse(ex, original).toString())).toEqual([{ generated_text: 'My email is a@b.co. Noted, [EMAIL]!' }]);
  });

  test('POST / with return_full_text false, /generate with details', () => {
    const ex = makeExchange('POST', '/', { inputs: 'Hi', parameters: { return_full_text: false } });
    parseResponse(ex, buf([{ generated_text: 'Hi there' }]), json);
    expect(ex.output[0].text).toBe('Hi there');
    const gen = makeExchange('POST', '/generate', { inputs: 'Hi', parameters: { details: true } });
    parseResponse(gen, buf({ generated_text: 'Hi there', details: { finish_reason: 'length', generated_tokens: 10 } }), json);
    expect(gen.output).toEqual([expect.objectContaining({ path: ['generated_text'], text: 'Hi there' })]);
    expect(gen.usage).toEqual({ completionTokens: 10, source: 'response' });
  });

  test('toolkit task outputs, embeddings usage, TEI', () => {
    const sum = makeExchange('POST', '/summarize', { inputs: 'long text' });
    parseResponse(sum, buf([{ summary_text: 'short' }]), json);
    expect(sum.output.map((s) => s.text)).toEqual(['short']);
    const emb = makeExchange('POST', '/v1/embeddings', { input: 'x' });
    parseResponse(emb, buf({ object: 'list', data: [{ embedding: [0.1] }], usage: { prompt_tokens: 1, total_tokens: 1 } }), json);
    expect(emb.output).toEqual([]);
    expect(emb.usage).toMatchObject({ promptTokens: 1, totalTokens: 1 });
    const tei = makeExchange('POST', '/embed', { inputs: 'x' });
    parseResponse(tei, buf([[0.1, 0.2]]), json);
    expect(tei.output).toEqual([]);
  });

  test('edits in chat are written to the exact location; others untouched', () => {
    const ex = makeExchange('POST', '/v1/chat/completions', { messages: [] });
    const body = { id: 'x', choices: [{ index: 0, message: { role: 'assistant', content: 'card 4111 1111 1111 1111' }, finish_reason: 'stop' }], usage: { total_tokens: 1 } };
    parseResponse(ex, buf(body), json);
    editSegment(ex.output[0], 'card [CARD]');
    const expected = structuredClone(body);
    expected.choices[0].message.content = 'card [CARD]';
    expect(JSON.parse(serializeResponse(ex, buf(body)).toString())).toEqual(expected);
  });

  test.each([
    ['{"choices":[', [[[], 'completion']]],
    ['<html>bad gateway</html>', [[[], 'completion']]],
    ['{"error":{"message":"x"}}', [[['error', 'message'], 'error']]],
    ['null', []],
    ['[1,"a",null]', []],
  ])('never throws on %s, and reads what a client would read as text', (raw, segments) => {
    const ex = makeExchange('POST', '/v1/chat/completions', { messages: [] });
    expect(() => parseResponse(ex, Buffer.from(raw), json)).not.toThrow();
    expect(ex.output.map((s) => [s.path, s.kind])).toEqual(segments);
    expect(serializeResponse(ex, Buffer.from(raw)).toString()).toBe(raw);
    const tgi = makeExchange('POST', '/', { inputs: 'x' });
    expect(() => parseResponse(tgi, Buffer.from(raw), json)).not.toThrow();
  });

  test('compressed bodies are not parsed', () => {
    const ex = makeExchange('POST', '/v1/chat/completions', { messages: [] });
    parseResponse(ex, buf({ choices: [{ message: { content: 'x' } }] }), { 'content-encoding': 'gzip' });
    expect(ex.output).toEqual([]);
  });
});
