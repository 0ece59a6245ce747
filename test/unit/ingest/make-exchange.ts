import { newExchange, type Exchange } from '../../../proxy/protocols/exchange';

/** A finished exchange as the server hands it to onComplete; fields overridable per test. */
export function makeExchange(over: Partial<Exchange> = {}): Exchange {
  const body = Buffer.from(JSON.stringify({ model: 'tgi', messages: [{ role: 'user', content: 'What is the refund policy?' }] }));
  return newExchange({
    id: 'ex-1',
    startedAt: Date.UTC(2026, 10, 26, 12, 0, 0, 250),
    method: 'POST',
    path: '/v1/chat/completions?debug=1',
    api: 'openai.chat',
    dialect: 'openai',
    clientAddress: '::ffff:10.0.0.12',
    requestHeaders: {
      host: '127.0.0.1:8080',
      'content-type': 'application/json',
      'content-length': String(body.length),
      authorization: 'Bearer hf_secretToken123',
      'x-session-id': 'c0ffee-42',
    },
    upstream: new URL('https://xyz.us-east-1.aws.endpoints.huggingface.cloud/'),
    requestBody: body,
    model: 'tgi',
    input: [],
    response: {
      status: 200,
      headers: { 'content-type': 'application/json', 'x-compute-type': 'gpu+optimized', 'set-cookie': ['a=b', 'c=d'] },
      body: Buffer.from('{"choices":[{"index":0,"message":{"role":"assistant","content":"Refunds within 30 days."}}]}'),
    },
    outcome: 'ok',
    ...over,
  });
}
