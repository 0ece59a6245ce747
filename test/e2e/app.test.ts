import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startApp, type RunningApp } from '../../proxy/app';
import { createLogger } from '../../common/logger';
import { createRegistry } from '../../common/metrics';
import { startAktoReceiver, type AktoReceiver } from '../fixtures/akto-receiver';
import { startStubUpstream, type StubUpstream } from '../fixtures/stub-upstream';
import { trackInFlight } from '../support/in-flight';
import { logSink } from '../support/proxy-harness';

/** Every feature together, built from the environment exactly as main does. */
describe('the whole sidecar (startApp) with the example limits policy', () => {
  let stub: StubUpstream;
  let akto: AktoReceiver;
  let app: RunningApp;
  const registry = createRegistry(false);
  let spool: string;
  const logs = logSink();

  beforeAll(async () => {
    stub = await startStubUpstream();
    akto = await startAktoReceiver({ token: 'akto-e2e-token', forbidden: ['hf_client_secret_token', 'akto-e2e-token'] });
    spool = fs.mkdtempSync(path.join(os.tmpdir(), 'akto-app-e2e-'));
    app = await startApp(
      {
        APP_URL: stub.url,
        AKTO_PROXY_PORT: '0',
        ADMIN_PORT: '0',
        ADMIN_HOST: '127.0.0.1',
        LISTEN_HOST: '127.0.0.1',
        POLICY_FILE: path.resolve(__dirname, '../../examples/policies/limits.yaml'),
        AKTO_API_BASE_URL: akto.url,
        AKTO_API_TOKEN: 'akto-e2e-token',
        AKTO_BATCH_INTERVAL_MS: '50',
        SPOOL_DIR: spool,
        POD_NAME: 'agent-7d9f',
        POD_NAMESPACE: 'agents',
      },
      { logger: createLogger('info', logs.stream), registry },
    );
    trackInFlight(app, registry);
  });
  afterAll(async () => {
    await app.close();
    await stub.close();
    await akto.close();
    fs.rmSync(spool, { recursive: true, force: true });
  });

  const sdk = (user: string) =>
    new OpenAI({ baseURL: `${app.url}/v1`, apiKey: 'hf_client_secret_token', maxRetries: 0, defaultHeaders: { 'x-end-user-id': user } });

  test('PII is redacted upstream, a sixth request is limited, and every exchange is traced', async () => {
    const before = stub.requests.length;
    const first = await sdk('alice').chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: 'Mail bob@example.org about it' }] });
    expect(stub.requests[before].json.messages[0].content).toBe('Mail <EMAIL_1> about it');
    expect(first.choices[0].message.content).toBe('Echo: Mail <EMAIL_1> about it');

    for (let i = 0; i < 4; i++) await sdk('alice').chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: `question ${i}` }] });
    const limited = await sdk('alice')
      .chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: 'one more' }] })
      .then(() => undefined, (e: { status: number; headers: Headers }) => e);
    expect(limited?.status).toBe(429);
    expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(stub.requests.length).toBe(before + 5);
    await sdk('bob').chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: 'hello' }] });

    await akto.waitForRecords(7, 10000);
    expect(akto.errors).toEqual([]);
    const statuses = akto.records.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === '429')).toHaveLength(1);
    const redacted = akto.records.find((r) => r.requestPayload.includes('<EMAIL_1>'))!;
    expect(redacted.requestPayload).not.toContain('bob@example.org');
    expect(JSON.parse(redacted._guardrail)).toMatchObject({ guardrailViolated: true });
    const requestLine = logs.lines.find((l) => l.msg === 'request' && l.status === 429);
    expect(requestLine).toMatchObject({ outcome: 'blocked', identity: expect.stringContaining('alice') });
  });
});
