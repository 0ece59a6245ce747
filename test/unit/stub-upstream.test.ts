import { startStubUpstream, type StubUpstream } from '../fixtures/stub-upstream';

let stub: StubUpstream;
beforeAll(async () => {
  stub = await startStubUpstream();
});
afterAll(() => stub.close());

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(stub.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('stub upstream', () => {
  test('GET health, info and models', async () => {
    expect((await fetch(`${stub.url}/health`)).status).toBe(200);
    expect(((await (await fetch(`${stub.url}/info`)).json()) as { model_id: string }).model_id).toBe('stub/echo-model');
    const models = (await (await fetch(`${stub.url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data[0].id).toBe('stub/echo-model');
  });

  test('records raw bytes, headers and path with the query', async () => {
    const before = stub.requests.length;
    await post('/generate?x=1', '{"inputs":"hi"}', { authorization: 'Bearer hf_test' });
    const rec = stub.requests[before];
    expect(rec.path).toBe('/generate?x=1');
    expect(rec.body.toString()).toBe('{"inputs":"hi"}');
    expect(rec.headers.authorization).toBe('Bearer hf_test');
    expect(rec.json).toEqual({ inputs: 'hi' });
  });

  test('POST / answers an array with the prompt prepended (return_full_text default)', async () => {
    const res = await post('/', { inputs: 'Say hi.' });
    expect(await res.json()).toEqual([{ generated_text: 'Say hi.Echo: Say hi.' }]);
    const res2 = await post('/', { inputs: 'Say hi.', parameters: { return_full_text: false } });
    expect(await res2.json()).toEqual([{ generated_text: 'Echo: Say hi.' }]);
  });

  test('/generate with details and TGI token headers', async () => {
    const res = await post('/generate', { inputs: 'a b c', parameters: { details: true } }, { 'x-stub-reply': 'one two' });
    expect(res.headers.get('x-prompt-tokens')).toBe('3');
    expect(res.headers.get('x-generated-tokens')).toBe('2');
    const body = (await res.json()) as { generated_text: string; details: { generated_tokens: number } };
    expect(body.generated_text).toBe('one two');
    expect(body.details.generated_tokens).toBe(2);
  });

  test('/generate_stream: native events, data: without space, no [DONE]', async () => {
    const res = await post('/generate_stream', { inputs: 'x', parameters: { details: true } }, { 'x-stub-chunks': '["Hel","lo"]' });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const text = await res.text();
    const events = text.split('\n\n').filter(Boolean);
    expect(events).toHaveLength(3);
    expect(events[0]).toBe('data:{"index":1,"token":{"id":1001,"text":"Hel","logprob":-0.25,"special":false},"generated_text":null,"details":null}');
    expect(JSON.parse(events[2].slice(5))).toMatchObject({ token: { special: true }, generated_text: 'Hello', details: { generated_tokens: 3 } });
    expect(text).not.toContain('[DONE]');
  });

  test('chat non-stream and stream in both dialects, with include_usage', async () => {
    const msgs = { messages: [{ role: 'system', content: 'be nice' }, { role: 'user', content: 'ping' }] };
    const plain = (await (await post('/v1/chat/completions', msgs)).json()) as { choices: { message: { content: string } }[] };
    expect(plain.choices[0].message.content).toBe('Echo: ping');

    const openai = await (await post('/v1/chat/completions', { ...msgs, stream: true, stream_options: { include_usage: true } })).text();
    expect(openai.startsWith('data: {')).toBe(true);
    expect(openai.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(openai).toContain('"choices":[],"usage":{');

    const tgi = await (await post('/v1/chat/completions', { ...msgs, stream: true }, { 'x-stub-dialect': 'tgi' })).text();
    const events = tgi.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data:[DONE]');
    for (const ev of events.slice(0, -1)) expect(JSON.parse(ev.slice(5))).toMatchObject({ id: '', choices: [{ delta: { role: 'assistant' } }] });
  });

  test('tool calls: whole arguments and streamed fragments', async () => {
    const args = '{"location":"Brooklyn, NY"}';
    const plain = (await (await post('/v1/chat/completions', { messages: [] }, { 'x-stub-tool-call': args })).json()) as {
      choices: { message: { tool_calls: { function: { arguments: string } }[] }; finish_reason: string }[];
    };
    expect(plain.choices[0].message.tool_calls[0].function.arguments).toBe(args);
    expect(plain.choices[0].finish_reason).toBe('tool_calls');
    const streamed = await (await post('/v1/chat/completions', { messages: [], stream: true }, { 'x-stub-tool-call': args })).text();
    const frags = streamed
      .split('\n\n')
      .filter((e) => e.startsWith('data: {'))
      .flatMap((e) => JSON.parse(e.slice(6)).choices[0]?.delta?.tool_calls ?? [])
      .map((t: { function: { arguments: string } }) => t.function.arguments);
    expect(frags.join('')).toBe(args);
  });

  test('completions with an array prompt, embeddings, TEI embed, toolkit payload', async () => {
    const c = (await (await post('/v1/completions', { prompt: ['a', 'b'] }, { 'x-stub-reply': 'z' })).json()) as { choices: { text: string }[] };
    expect(c.choices.map((x) => x.text)).toEqual(['z', 'z']);
    const e = (await (await post('/v1/embeddings', { input: ['a', 'b'] })).json()) as { data: unknown[] };
    expect(e.data).toHaveLength(2);
    const t = (await (await post('/embed', { inputs: 'a' })).json()) as number[][];
    expect(t).toHaveLength(1);
    const k = await (await post('/my/handler', { inputs: 'q' }, { 'x-stub-reply': 'r' })).json();
    expect(k).toEqual([{ generated_text: 'r' }]);
  });

  test('status, in-stream error, keep-alive and malformed JSON', async () => {
    const r = await post('/v1/chat/completions', { messages: [] }, { 'x-stub-status': '429' });
    expect(r.status).toBe(429);
    expect(((await r.json()) as { error: { message: string } }).error.message).toBe('stub error 429');
    const b = await post('/generate', { inputs: 'x' }, { 'x-stub-status': '503', 'x-stub-body': 'down' });
    expect(await b.text()).toBe('down');

    const s = await (await post('/generate_stream', { inputs: 'x' }, { 'x-stub-chunks': '["a"]', 'x-stub-stream-error': 'boom', 'x-stub-keepalive': '1' })).text();
    expect(s).toBe(':\n\ndata:{"index":1,"token":{"id":1001,"text":"a","logprob":-0.25,"special":false},"generated_text":null,"details":null}\n\n:\n\ndata:{"error":"boom","error_type":"generation"}\n\n');
    const chat = await (await post('/v1/chat/completions', { messages: [], stream: true }, { 'x-stub-dialect': 'tgi', 'x-stub-stream-error': 'bad' })).text();
    expect(chat).toContain('data:{"error":{"message":"bad","http_status_code":422}}\n\ndata:[DONE]\n\n');

    const m = await post('/v1/chat/completions', '{"messages":');
    expect(m.status).toBe(400);
  });

  test('x-stub-delay-ms delays the head', async () => {
    const t0 = Date.now();
    await post('/generate', { inputs: 'x' }, { 'x-stub-delay-ms': '80' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(75);
  });

  test('record: false keeps no requests', async () => {
    const quiet = await startStubUpstream({ record: false });
    await fetch(`${quiet.url}/health`);
    expect(quiet.requests).toEqual([]);
    await quiet.close();
  });
});
