import OpenAI from 'openai';
import { startAktoGuardrailsFake, type AktoGuardrailsFake, type Fault } from '../../fixtures/akto-guardrails';
import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { startTestApp, type TestApp } from '../../support/app-harness';
import { waitFor } from '../../support/wait';

const TOKEN = 'akto-failure-token';

/** Every way Akto can fail to give a verdict, and the reason it is counted under. */
const FAULTS: Array<[string, Fault, string]> = [
  ['a slow answer past the deadline', { delayMs: 1500 }, 'timeout'],
  ['HTTP 503', { status: 503 }, 'http_5xx'],
  ['HTTP 500 with an HTML page', { status: 500, body: '<html>Internal Server Error</html>' }, 'http_5xx'],
  ['HTTP 401 (token refused)', { status: 401, body: '' }, 'auth'],
  ['HTTP 422', { status: 422, body: '{"success":false,"message":"Missing required field: requestPayload"}' }, 'http_4xx'],
  ['a 200 that is not JSON', { body: 'proxy error: upstream connect error' }, 'unreadable'],
  ['a 200 without a verdict', { body: '{"success":true,"message":"Request processed successfully","data":{"success":true}}' }, 'unreadable'],
  ['a verdict without Allowed', { body: '{"success":true,"data":{"guardrailsResult":{"Reason":"?","behaviour":"block"}}}' }, 'unreadable'],
  ['success:false', { body: '{"success":false,"message":"Unexpected error: NullPointerException"}' }, 'unreadable'],
  ['a reset connection', { reset: true }, 'network'],
  ["Akto's own fail-open (its guardrails service timed out)", { failOpen: true }, 'fail_open'],
];

const sdk = (base: string, id: string) => new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-test', maxRetries: 0, defaultHeaders: { 'x-request-id': id } });
const ask = (base: string, id: string) =>
  sdk(base, id)
    .chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: 'What is the capital of France?' }] })
    .then(
      (r) => ({ status: 200, text: r.choices[0].message.content, type: undefined as string | undefined, retry: undefined as string | null | undefined }),
      (e: InstanceType<typeof OpenAI.APIError>) => ({ status: e.status, text: undefined, type: e.type, retry: e.headers?.get('x-should-retry') }),
    );

async function tagOf(akto: AktoGuardrailsFake, id: string): Promise<Record<string, string>> {
  const find = () => akto.receiver.records.find((r) => JSON.parse(r.tag)['exchange-id'] === id);
  await waitFor(() => find() !== undefined, 10_000, `trace of ${id}`);
  return JSON.parse(find()!.tag);
}

describe.each(['allow', 'block'] as const)('no verdict from Akto, AKTO_GUARDRAILS_ON_ERROR=%s', (onError) => {
  let stub: StubUpstream;
  let akto: AktoGuardrailsFake;
  let side: TestApp;

  beforeAll(async () => {
    stub = await startStubUpstream();
    akto = await startAktoGuardrailsFake({ token: TOKEN });
    side = await startTestApp({
      APP_URL: stub.url,
      AKTO_API_BASE_URL: akto.url,
      AKTO_API_TOKEN: TOKEN,
      AKTO_GUARDRAILS: 'both',
      AKTO_GUARDRAILS_TIMEOUT_MS: '300',
      AKTO_GUARDRAILS_ON_ERROR: onError,
      AKTO_GUARDRAILS_MAX_PAYLOAD_BYTES: '2048',
      POLICY_PACK: 'off',
    });
  });
  afterAll(async () => {
    await side.close();
    await stub.close();
    await akto.close();
  });

  test.each(FAULTS)('request check: %s', async (_name, fault, reason) => {
    // Only the request check fails: the response check of a let-through request answers normally.
    akto.behave((call) => (call.phases.includes('request') ? fault : {}));
    const before = stub.requests.length;
    const id = `req-${onError}-${reason}-${Math.random().toString(36).slice(2, 8)}`;
    const started = Date.now();
    const got = await ask(side.url, id);
    expect(Date.now() - started).toBeLessThan(1400); // the deadline, not Akto's 1.5 s delay
    if (onError === 'allow') {
      expect(got).toMatchObject({ status: 200, text: 'Echo: What is the capital of France?' });
      expect(stub.requests.length).toBe(before + 1);
    } else {
      // An outage is not the request's fault: a retryable 502, never 503 (huggingface.js retries 503 forever).
      expect(got).toMatchObject({ status: 502, type: 'guardrail_unavailable', retry: 'true' });
      expect(stub.requests.length).toBe(before);
    }
    const tag = await tagOf(akto, id);
    expect(tag).toMatchObject({ 'akto-request': 'error', 'akto-error': reason, 'akto-on-error': onError });
    if (onError === 'block') expect(tag['decided-by']).toBe('akto:unavailable');
    expect(await side.metric('akto_inline_errors_total')).toMatch(new RegExp(`phase="request",reason="${reason}"\\} [1-9]`));
  });

  test('response check: an unreadable answer is decided the same way', async () => {
    akto.behave((call) => (call.phases.includes('response') ? { body: 'garbage' } : {}));
    const id = `resp-${onError}`;
    const got = await ask(side.url, id);
    if (onError === 'allow') expect(got).toMatchObject({ status: 200, text: 'Echo: What is the capital of France?' });
    else expect(got.text).toBeUndefined();
    const tag = await tagOf(akto, id);
    expect(tag).toMatchObject({ 'akto-request': 'allowed', 'akto-response': 'error', 'akto-error': 'unreadable' });
  });

  test('a body the proxy does not read (an upload on a route that is not an inference route) is not sent; ON_ERROR decides', async () => {
    const calls = akto.calls.length;
    const id = `unread-${onError}`;
    const res = await fetch(`${side.url}/custom/handler`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'x-request-id': id },
      body: JSON.stringify({ model: 'tgi', messages: [{ role: 'user', content: 'hello' }] }),
    });
    await res.arrayBuffer();
    expect(res.status === 502).toBe(onError === 'block');
    expect(akto.calls.length).toBe(calls);
    expect(await tagOf(akto, id)).toMatchObject({ 'akto-request': 'error', 'akto-error': 'no_body' });
  });

  test('a request padded past what Akto takes is refused (413) whatever ON_ERROR says: size is the client\'s choice', async () => {
    const before = stub.requests.length;
    const calls = akto.calls.length;
    const padded = `${'lorem ipsum '.repeat(250)} now the real question`;
    const got = await sdk(side.url, `padded-${onError}`)
      .chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: padded }] })
      .then(
        () => undefined,
        (e: InstanceType<typeof OpenAI.APIError>) => e,
      );
    expect(got?.status).toBe(413);
    expect(got?.type).toBe('request_too_large');
    expect(stub.requests.length).toBe(before);
    expect(akto.calls.length).toBe(calls);
    expect(await tagOf(akto, `padded-${onError}`)).toMatchObject({ 'akto-error': 'too_large', 'decided-by': 'akto:too-large' });
  });

  test('the failures are logged once a minute, not once per request', () => {
    const lines = side.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('no verdict from Akto'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', onError, reason: 'timeout' });
    expect(JSON.stringify(side.logs)).not.toContain(TOKEN);
  });

  test('Akto down: refused connections are decided at once, and a run of failures stops the calls for a moment', async () => {
    await akto.stop();
    try {
      const calls = akto.calls.length;
      for (let i = 0; i < 7; i++) {
        const got = await ask(side.url, `down-${onError}-${i}`);
        expect(got.status).toBe(onError === 'allow' ? 200 : 502);
      }
      expect(akto.calls.length).toBe(calls);
      const errors = await side.metric('akto_inline_errors_total');
      expect(errors).toMatch(/phase="request",reason="network"\} [1-9]/);
      expect(errors).toMatch(/phase="request",reason="circuit_open"\} [1-9]/);
    } finally {
      await akto.start();
    }
  });
});
