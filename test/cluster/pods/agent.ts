/**
 * The sample agent of `make e2e`, run in the cluster from the fixtures image. It knows nothing about the proxy: it
 * calls the inference URLs in its env (OPENAI_BASE_URL, HF_INFERENCE_ENDPOINT) with the real `openai` and
 * `@huggingface/inference` clients, which the webhook has pointed at the sidecar.
 *
 *   node agent.js            serves POST /call on 0.0.0.0:7000 (the scenario drives it over the pod network);
 *                            on SIGTERM stops accepting calls, finishes the ones in flight, then exits
 *   node agent.js once P     one streamed chat call with prompt P, prints the result, exits 0 when it worked (Jobs)
 *
 * POST /call {client: "openai"|"hf", api: "chat"|"generate", stream, prompt, headers?, baseUrl?} answers
 * {status, text, error?}: status is the HTTP status the client saw (200, or the error's status such as 400).
 * The OpenAI client's key is OPENAI_API_KEY when the pod has one (after credential custody: the placeholder).
 */
import http from 'node:http';
import { InferenceClient } from '@huggingface/inference';
import OpenAI from 'openai';

/** The scenario imports only these types. */
export interface CallRequest {
  client: 'openai' | 'hf';
  api: 'chat' | 'generate';
  stream: boolean;
  prompt: string;
  /** Sent with the call (e.g. x-stub-chunk-delay-ms to make the stub answer slowly). */
  headers?: Record<string, string>;
  /** OpenAI client only: this URL instead of OPENAI_BASE_URL, as agent code that dials the endpoint itself would. */
  baseUrl?: string;
}

export interface CallResult {
  status: number;
  text: string;
  error?: string;
}

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

async function viaOpenAi(c: CallRequest): Promise<string> {
  // The sidecar sends the endpoint's token (UPSTREAM_AUTHORIZATION); the agent's own key, if any, is what custody left it.
  const apiKey = process.env.OPENAI_API_KEY || 'agent-has-no-key';
  const openai = new OpenAI({ baseURL: c.baseUrl ?? env('OPENAI_BASE_URL'), apiKey, maxRetries: 0, timeout: 60_000 });
  const messages = [{ role: 'user' as const, content: c.prompt }];
  if (c.api === 'generate') return (await openai.completions.create({ model: 'tgi', prompt: c.prompt }, { headers: c.headers })).choices[0].text;
  if (!c.stream) return (await openai.chat.completions.create({ model: 'tgi', messages }, { headers: c.headers })).choices[0].message.content ?? '';
  let text = '';
  const stream = await openai.chat.completions.create({ model: 'tgi', messages, stream: true }, { headers: c.headers });
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  return text;
}

async function viaHf(c: CallRequest): Promise<string> {
  const hf = new InferenceClient(undefined, { endpointUrl: env('HF_INFERENCE_ENDPOINT') });
  const options = { fetch: (url: string | URL | Request, init?: RequestInit) => fetch(url, { ...init, headers: { ...(init?.headers as Record<string, string>), ...c.headers } }) };
  const messages = [{ role: 'user', content: c.prompt }];
  if (c.api === 'generate') {
    if (!c.stream) return (await hf.textGeneration({ inputs: c.prompt }, options)).generated_text;
    let text = '';
    for await (const chunk of hf.textGenerationStream({ inputs: c.prompt }, options)) text += chunk.token.special ? '' : chunk.token.text;
    return text;
  }
  if (!c.stream) return (await hf.chatCompletion({ messages }, options)).choices[0].message.content ?? '';
  let text = '';
  for await (const chunk of hf.chatCompletionStream({ messages }, options)) text += chunk.choices[0]?.delta?.content ?? '';
  return text;
}

async function call(c: CallRequest): Promise<CallResult> {
  try {
    const text = await (c.client === 'hf' ? viaHf(c) : viaOpenAi(c));
    return { status: 200, text };
  } catch (err) {
    const e = err as { status?: number; httpResponse?: { status?: number }; message?: string };
    return { status: e.status ?? e.httpResponse?.status ?? 0, text: '', error: e.message ?? String(err) };
  }
}

function serve(): void {
  let inFlight = 0;
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/healthz') return void res.end('ok');
    if (req.method !== 'POST' || req.url !== '/call') return void res.writeHead(404).end();
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      inFlight++;
      void call(JSON.parse(Buffer.concat(parts).toString('utf8')) as CallRequest).then((result) => {
        inFlight--;
        console.log(JSON.stringify({ call: 'done', status: result.status }));
        res.writeHead(200, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify(result));
      });
    });
  });
  server.listen(7000, '0.0.0.0', () => console.log('agent listening on :7000'));
  process.on('SIGTERM', () => {
    console.log(JSON.stringify({ signal: 'SIGTERM', inFlight }));
    server.close();
    server.closeIdleConnections();
    const deadline = Date.now() + 25_000;
    const check = setInterval(() => {
      if (inFlight > 0 && Date.now() < deadline) return;
      clearInterval(check);
      console.log(JSON.stringify({ exiting: true, inFlight }));
      process.exit(0);
    }, 100);
  });
}

if (process.argv[2] === 'once') {
  void call({ client: 'openai', api: 'chat', stream: true, prompt: process.argv[3] ?? 'hello' }).then((r) => {
    console.log(JSON.stringify(r));
    process.exit(r.status === 200 ? 0 : 1);
  });
} else {
  serve();
}
