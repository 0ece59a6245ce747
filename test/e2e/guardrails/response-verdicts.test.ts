/**
 * Response-side verdicts through the real proxy, read by the real clients: a block after the model answered is
 * not the client's fault (200, the offending choice withheld with finish_reason "content_filter", the verdict in
 * a header), every text field the client reads is inspected, and a block in the middle of a stream is recorded
 * as blocked.
 */
import OpenAI from 'openai';
import { InferenceClient } from '@huggingface/inference';
import type { GuardrailDecision } from '../../../proxy/guardrails';
import { useGuardedStub } from '../../support/guarded-proxy';
import { waitFor } from '../../support/wait';

const AWS_KEY = 'AKIAZ7Q3LMN4PRS5TUVW';
const EMAIL = 'alice.smith@example.com';
const openai = (base: string) => new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-test', maxRetries: 0 });
const hf = (base: string) => new InferenceClient('hf_test_token_abc', { endpointUrl: base });
const messages = [{ role: 'user' as const, content: 'What is the deploy key?' }];

/** Stub headers that make the upstream answer 200 with exactly this JSON body. */
const body = (json: unknown): Record<string, string> => ({ 'x-stub-status': '200', 'x-stub-body': JSON.stringify(json) });

function chat(choices: unknown[]): unknown {
  return { id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'm', choices, usage: { prompt_tokens: 5, completion_tokens: 9, total_tokens: 14 } };
}

function noKey(text: string): void {
  for (let i = 0; i + 4 <= AWS_KEY.length; i++) expect(text).not.toContain(AWS_KEY.slice(i, i + 4));
}

describe('response-stage verdicts in shapes clients understand (default pack)', () => {
  const t = useGuardedStub();

  const last = async (n: number) => {
    await waitFor(() => t.g.completed.length >= n, 5000, 'exchange completed');
    return t.g.completed[n - 1];
  };

  it('a secret in a complete chat answer: 200, the choice withheld with content_filter, the verdict in a header', async () => {
    const before = t.g.completed.length;
    const { data, response } = await openai(t.g.proxy.url)
      .chat.completions.create({ model: 'tgi', messages }, { headers: { 'x-stub-reply': `Sure: ${AWS_KEY}` } })
      .withResponse();
    expect(response.status).toBe(200);
    expect(response.headers.get('x-guardrail-verdict')).toBe('content_filter; rule=secrets-response-block');
    expect(data.choices[0]).toMatchObject({ index: 0, message: { role: 'assistant', content: '' }, finish_reason: 'content_filter' });
    expect(data.usage?.total_tokens).toBeGreaterThan(0);
    noKey(JSON.stringify(data));
    const ex = await last(before + 1);
    expect(ex.outcome).toBe('blocked');
    expect((ex.notes.guardrails as GuardrailDecision).response).toMatchObject({ action: 'block', blockedBy: 'secrets-response-block' });
    expect(t.g.logs.some((l) => l.msg === 'request' && l.outcome === 'blocked' && l.status === 200)).toBe(true);
  });

  it('n = 2: only the offending choice is withheld; the other is served, redacted', async () => {
    const res = await openai(t.g.proxy.url).chat.completions.create(
      { model: 'tgi', messages, n: 2 },
      {
        headers: body(
          chat([
            { index: 0, message: { role: 'assistant', content: `Use ${AWS_KEY}` }, logprobs: null, finish_reason: 'stop' },
            { index: 1, message: { role: 'assistant', content: `Ask ${EMAIL} for it.` }, logprobs: null, finish_reason: 'stop' },
          ]),
        ),
      },
    );
    expect(res.choices[0]).toMatchObject({ message: { content: '' }, finish_reason: 'content_filter' });
    expect(res.choices[1]).toMatchObject({ message: { content: 'Ask <EMAIL_1> for it.' }, finish_reason: 'stop' });
  });

  it('reasoning, refusal, tool names and arguments, audio transcripts and logprobs are all inspected', async () => {
    const logprobs = {
      content: [
        { token: 'Ask ', logprob: -0.1, top_logprobs: [{ token: 'Ask ', logprob: -0.1 }] },
        { token: EMAIL, logprob: -0.2, top_logprobs: [] },
      ],
    };
    const res = await openai(t.g.proxy.url).chat.completions.create(
      { model: 'tgi', messages, logprobs: true },
      {
        headers: body(
          chat([
            {
              index: 0,
              message: {
                role: 'assistant',
                content: `Ask ${EMAIL}`,
                reasoning_content: `The user wants ${EMAIL}; call +41 44 668 18 00.`,
                refusal: null,
                audio: { id: 'a1', data: 'AAAA', expires_at: 1, transcript: `mail ${EMAIL}` },
                tool_calls: [{ id: 'c1', type: 'function', function: { name: 'notify', arguments: `{"to":"${EMAIL}"}` } }],
              },
              logprobs,
              finish_reason: 'tool_calls',
            },
          ]),
        ),
      },
    );
    const message = res.choices[0].message as OpenAI.Chat.ChatCompletionMessage & { reasoning_content?: string };
    expect(message.content).toBe('Ask <EMAIL_1>');
    expect(message.reasoning_content).toBe('The user wants <EMAIL_1>; call <PHONE_1>.');
    expect(message.audio?.transcript).toBe('mail <EMAIL_1>');
    expect(message.tool_calls?.[0]).toMatchObject({ function: { name: 'notify', arguments: '{"to":"<EMAIL_1>"}' } });
    // The token list would show the redacted address next to the redacted text: it is dropped.
    expect(res.choices[0].logprobs).toBeNull();
    expect(JSON.stringify(res)).not.toContain(EMAIL);
  });

  it('a secret only in the logprobs alternatives withholds the choice', async () => {
    const top = [...AWS_KEY].map((c) => ({ token: 'x', logprob: -1, top_logprobs: [{ token: 'x', logprob: -1 }, { token: c, logprob: -2 }] }));
    const res = await openai(t.g.proxy.url).chat.completions.create(
      { model: 'tgi', messages, logprobs: true, top_logprobs: 2 },
      { headers: body(chat([{ index: 0, message: { role: 'assistant', content: 'xxxxxxxxxxxxxxxxxxxx' }, logprobs: { content: top }, finish_reason: 'stop' }])) },
    );
    expect(res.choices[0]).toMatchObject({ message: { content: '' }, logprobs: null, finish_reason: 'content_filter' });
  });

  it('@huggingface/inference chatCompletion and textGeneration get the withheld answer, not an error', async () => {
    const chatRes = await hf(t.g.proxy.url).chatCompletion({ messages, max_tokens: 16 }, { retry_on_error: false });
    expect(chatRes.choices[0]).toBeDefined();
    const blocked = await hf(t.g.proxy.url).chatCompletion(
      { messages, max_tokens: 16 },
      { retry_on_error: false, fetch: (url, init) => fetch(url, { ...init, headers: { ...(init?.headers as Record<string, string>), 'x-stub-reply': `key ${AWS_KEY}` } }) },
    );
    expect(blocked.choices[0]).toMatchObject({ message: { content: '' }, finish_reason: 'content_filter' });
    const gen = await hf(t.g.proxy.url).textGeneration(
      { inputs: 'key?', parameters: { max_new_tokens: 8 } },
      { retry_on_error: false, fetch: (url, init) => fetch(url, { ...init, headers: { ...(init?.headers as Record<string, string>), 'x-stub-reply': `key ${AWS_KEY}` } }) },
    );
    expect(gen.generated_text).toBe('');
  });

  it('TGI /generate: 200 with generated_text withheld, details.finish_reason content_filter, token lists emptied', async () => {
    const res = await fetch(`${t.g.proxy.url}/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-stub-chunks': JSON.stringify(['The key ', AWS_KEY]) },
      body: JSON.stringify({ inputs: 'key?', parameters: { details: true } }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-guardrail-verdict')).toBe('content_filter; rule=secrets-response-block');
    const json = (await res.json()) as { generated_text: string; details: { finish_reason: string; tokens: unknown[] } };
    expect(json).toMatchObject({ generated_text: '', details: { finish_reason: 'content_filter', tokens: [] } });
  });

  it('POST / with the echoed prompt: the prompt stays, the answer is withheld', async () => {
    const res = await fetch(`${t.g.proxy.url}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-stub-reply': ` ${AWS_KEY}` },
      body: JSON.stringify({ inputs: 'The key is' }),
    });
    expect(await res.json()).toEqual([{ generated_text: 'The key is' }]);
  });

  it('a block in the middle of a stream is logged and traced as blocked', async () => {
    const before = t.g.completed.length;
    const stream = await openai(t.g.proxy.url).chat.completions.create(
      { model: 'tgi', messages, stream: true },
      { headers: { 'x-stub-chunks': JSON.stringify(['Here it is: ', 'AKIAZ7', 'Q3LMN4PRS5TUVW', ' done']) } },
    );
    let text = '';
    let finish: string | null = null;
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe('Here it is: ');
    expect(finish).toBe('content_filter');
    const ex = await last(before + 1);
    expect(ex.outcome).toBe('blocked');
    expect(ex.stream).toBe(true);
    await waitFor(() => t.g.logs.some((l) => l.msg === 'request' && l.reqId === ex.id), 5000, 'request log line');
    expect(t.g.logs.find((l) => l.msg === 'request' && l.reqId === ex.id)).toMatchObject({ outcome: 'blocked', stream: true });
  });

  it('the Responses API through the openai client: complete and streamed', async () => {
    const item = (text: string) => ({ id: 'msg_1', type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text, annotations: [] }] });
    const response = (text: string) => ({ id: 'resp_1', object: 'response', created_at: 1, status: 'completed', model: 'm', output: [item(text)], usage: { input_tokens: 3, output_tokens: 5, total_tokens: 8 } });
    const whole = await openai(t.g.proxy.url).responses.create({ model: 'm', input: 'hi' }, { headers: body(response(`Mail ${EMAIL}`)) });
    expect(whole.output_text).toBe('Mail <EMAIL_1>');
    const blocked = await openai(t.g.proxy.url).responses.create({ model: 'm', input: 'hi' }, { headers: body(response(`Key ${AWS_KEY}`)) });
    expect(blocked.status).toBe('incomplete');
    expect(blocked.incomplete_details).toEqual({ reason: 'content_filter' });
    noKey(JSON.stringify(blocked));

    let seq = 0;
    const ev = (o: Record<string, unknown>) => `event: ${o.type as string}\ndata: ${JSON.stringify({ ...o, sequence_number: seq++ })}\n\n`;
    const text = `Key: ${AWS_KEY} ok`;
    const sse =
      ev({ type: 'response.created', response: { ...response(''), status: 'in_progress', output: [] } }) +
      ['Key: ', 'AKIAZ7', 'Q3LMN4PRS5TUVW', ' ok'].map((delta) => ev({ type: 'response.output_text.delta', item_id: 'msg_1', output_index: 0, content_index: 0, delta })).join('') +
      ev({ type: 'response.output_text.done', item_id: 'msg_1', output_index: 0, content_index: 0, text }) +
      ev({ type: 'response.completed', response: response(text) });
    const stream = await openai(t.g.proxy.url).responses.create({ model: 'm', input: 'hi', stream: true }, { headers: { 'x-stub-sse': JSON.stringify(sse) } });
    const types: string[] = [];
    let streamed = '';
    for await (const e of stream) {
      types.push(e.type);
      if (e.type === 'response.output_text.delta') streamed += e.delta;
    }
    expect(streamed).toBe('Key: ');
    expect(types.at(-1)).toBe('response.incomplete');
  });

  it('an upstream error message is text the client reads: a secret in it is withheld', async () => {
    const res = await fetch(`${t.g.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-stub-status': '422', 'x-stub-body': JSON.stringify({ error: { message: `bad key ${AWS_KEY}`, type: 'invalid_request_error' } }) },
      body: JSON.stringify({ model: 'tgi', messages }),
    });
    expect(res.status).toBe(422);
    const json = (await res.json()) as { error: { message: string } };
    expect(json.error.message).toBe('withheld by guardrail rule "secrets-response-block"');
  });

  it('a plain-text body on an inspected route is read as text too', async () => {
    const res = await fetch(`${t.g.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-stub-status': '200', 'x-stub-body': `Mail ${EMAIL} now` },
      body: JSON.stringify({ model: 'tgi', messages }),
    });
    expect(await res.text()).toBe('Mail <EMAIL_1> now');
  });
});
