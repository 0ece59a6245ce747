import { applyModifiedRequest, applyModifiedResponse } from '../../../proxy/akto/modified';
import { serializeRequest } from '../../../proxy/protocols/request';
import { parseResponse, serializeResponse } from '../../../proxy/protocols/response';
import { parsedExchange } from '../../support/exchange';

const chatBody = { model: 'tgi', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'my card is 4111 1111 1111 1111' }] };

describe('ModifiedPayload for a request', () => {
  test('same shape: the redacted body is what is forwarded, the changed segment marked edited', () => {
    const ex = parsedExchange('POST', '/v1/chat/completions', chatBody);
    const payload = JSON.stringify({ ...chatBody, messages: [chatBody.messages[0], { role: 'user', content: 'my card is [CARD]' }] });
    expect(applyModifiedRequest(ex, payload)).toBeUndefined();
    expect(ex.input.map((s) => [s.text, s.edited ?? false])).toEqual([
      ['be brief', false],
      ['my card is [CARD]', true],
    ]);
    expect(JSON.parse(serializeRequest(ex).toString())).toEqual(JSON.parse(payload));
  });

  test('a change outside the text fields is forwarded as Akto sent it', () => {
    const ex = parsedExchange('POST', '/v1/chat/completions', { ...chatBody, user: 'alice@example.com' });
    const payload = JSON.stringify({ ...chatBody, user: '[EMAIL]' });
    expect(applyModifiedRequest(ex, payload)).toBeUndefined();
    expect(serializeRequest(ex).toString()).toBe(payload);
  });

  test('TGI inputs', () => {
    const ex = parsedExchange('POST', '/generate', { inputs: 'call 555-0100', parameters: { max_new_tokens: 5 } });
    expect(applyModifiedRequest(ex, JSON.stringify({ inputs: 'call [PHONE]', parameters: { max_new_tokens: 5 } }))).toBeUndefined();
    expect(ex.input[0]).toMatchObject({ text: 'call [PHONE]', edited: true });
  });

  test.each([
    ['not JSON', 'redacted text'],
    ['another API kind', JSON.stringify({ inputs: 'hello' })],
    ['an extra message', JSON.stringify({ ...chatBody, messages: [...chatBody.messages, { role: 'user', content: 'more' }] })],
    ['a message fewer', JSON.stringify({ ...chatBody, messages: [chatBody.messages[1]] })],
    ['roles swapped', JSON.stringify({ ...chatBody, messages: [{ role: 'user', content: 'be brief' }, { role: 'system', content: 'x' }] })],
    ['another model', JSON.stringify({ ...chatBody, model: 'gpt-4' })],
    ['streaming switched on', JSON.stringify({ ...chatBody, stream: true })],
    ['text moved into parts', JSON.stringify({ ...chatBody, messages: [chatBody.messages[0], { role: 'user', content: [{ type: 'text', text: 'x' }] }] })],
  ])('refused when it has %s, and the exchange is untouched', (_what, payload) => {
    const ex = parsedExchange('POST', '/v1/chat/completions', chatBody);
    const before = ex.requestBody;
    expect(applyModifiedRequest(ex, payload)).toEqual(expect.any(String));
    expect(ex.requestBody).toBe(before);
    expect(ex.input.some((s) => s.edited)).toBe(false);
  });
});

describe('ModifiedPayload for a response', () => {
  const answer = { object: 'chat.completion', id: 'c1', choices: [{ index: 0, message: { role: 'assistant', content: 'You live in Paris.' }, finish_reason: 'stop' }] };

  test('only the text of the output fields changes; everything else is the upstream answer', () => {
    const ex = parsedExchange('POST', '/v1/chat/completions', chatBody);
    const body = Buffer.from(JSON.stringify(answer));
    parseResponse(ex, body, {});
    const payload = JSON.stringify({ ...answer, id: 'forged', choices: [{ ...answer.choices[0], message: { role: 'assistant', content: 'You live in [CITY].' } }] });
    expect(applyModifiedResponse(ex, payload)).toBeUndefined();
    expect(JSON.parse(serializeResponse(ex, body).toString())).toEqual({ ...answer, choices: [{ ...answer.choices[0], message: { role: 'assistant', content: 'You live in [CITY].' } }] });
  });

  test('TGI POST / with the prompt echoed: the echo is kept', () => {
    const ex = parsedExchange('POST', '/', { inputs: 'Where?', parameters: {} });
    const body = Buffer.from(JSON.stringify([{ generated_text: 'Where? In Paris.' }]));
    parseResponse(ex, body, {});
    expect(applyModifiedResponse(ex, JSON.stringify([{ generated_text: 'Where? In [CITY].' }]))).toBeUndefined();
    expect(JSON.parse(serializeResponse(ex, body).toString())).toEqual([{ generated_text: 'Where? In [CITY].' }]);
  });

  test.each([
    ['not JSON', 'You live in [CITY].'],
    ['a tool call added', JSON.stringify({ ...answer, choices: [{ index: 0, message: { role: 'assistant', content: 'x', tool_calls: [{ function: { arguments: '{}' } }] } }] })],
    ['an error body', JSON.stringify({ error: { message: 'x' } })],
  ])('refused when it is %s', (_what, payload) => {
    const ex = parsedExchange('POST', '/v1/chat/completions', chatBody);
    parseResponse(ex, Buffer.from(JSON.stringify(answer)), {});
    expect(applyModifiedResponse(ex, payload)).toEqual(expect.any(String));
    expect(ex.output.some((s) => s.edited)).toBe(false);
  });
});
