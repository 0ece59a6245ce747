import { assembledResponse } from '../../../proxy/protocols/assembled';
import { parseResponse } from '../../../proxy/protocols/response';
import { createStreamRewriter } from '../../../proxy/protocols/stream';
import { makeExchange } from './make-exchange';
import { OPENAI_CHAT, TGI_NATIVE, TGI_TOOLS } from './sse-fixtures';

/** Runs a stream through the rewriter (nothing inspecting) and returns the exchange it filled. */
function streamed(sse: string, path: string, body: unknown) {
  const ex = makeExchange('POST', path, body);
  const rw = createStreamRewriter(ex);
  rw.push(Buffer.from(sse));
  rw.end();
  return ex;
}

describe('assembledResponse: a finished stream as the same answer sent whole', () => {
  test('chat: the text per choice; it reads back as the same output a non-streamed answer gives', () => {
    const ex = streamed(OPENAI_CHAT, '/v1/chat/completions', { model: 'm', messages: [], stream: true });
    const whole = assembledResponse(ex);
    expect(JSON.parse(whole.toString())).toMatchObject({ object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'Café olé 😀 done' } }] });
    const again = makeExchange('POST', '/v1/chat/completions', { model: 'm', messages: [] });
    parseResponse(again, whole, {});
    expect(again.output.map((s) => s.text)).toEqual(['Café olé 😀 done']);
  });

  test('chat tool calls: the argument fragments joined per call', () => {
    const ex = streamed(TGI_TOOLS, '/v1/chat/completions', { model: 'm', messages: [], stream: true });
    expect(JSON.parse(assembledResponse(ex).toString()).choices[0].message).toMatchObject({
      tool_calls: [{ index: 0, type: 'function', function: { arguments: '{ "location":"Brooklyn, NY"}' } }],
    });
  });

  test('TGI native stream: {generated_text}', () => {
    const ex = streamed(TGI_NATIVE, '/generate_stream', { inputs: 'x', parameters: {} });
    expect(JSON.parse(assembledResponse(ex).toString())).toEqual({ generated_text: ' Deep learning is' });
  });
});
