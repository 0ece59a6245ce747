/**
 * The webhook's HTTPS server while main is still starting (waiting for the API server, the certificate): kubelet's
 * probes get answers that say why it is not ready, and an AdmissionReview that arrives anyway (the webhook
 * registered by URL) is refused, so the API server applies failurePolicy instead of a half-configured injection.
 */
import { request } from 'node:https';
import { createLogger } from '../../../common/logger';
import { createRegistry } from '../../../common/metrics';
import { generateCa, issueServingCert } from '../../../webhook/certs';
import { createWebhookServer, WebhookServer } from '../../../webhook/server';
import { loadSettings } from '../../../webhook/settings';

function call(port: number, ca: string, method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, servername: 'localhost', ca, method, path, agent: false, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('webhook server during start-up', () => {
  const now = new Date();
  const ca = generateCa(now, 2);
  const leaf = issueServingCert(ca, ['localhost'], now, 1);
  let starting: string | undefined = 'waiting for the Kubernetes API server at https://10.0.0.1:443: connect ECONNREFUSED';
  let caBundle: true | string = 'the caBundle does not trust the served certificate yet';
  let srv: WebhookServer;
  let port: number;

  beforeAll(async () => {
    srv = createWebhookServer({
      settings: loadSettings({}), logger: createLogger('silent'), registry: createRegistry(false), tls: { cert: leaf.certPem, key: leaf.keyPem },
      cluster: () => ({ nativeSidecars: false }), starting: () => starting, ready: () => caBundle,
    });
    port = await srv.listen(0, '127.0.0.1');
  });
  afterAll(() => srv.close());

  test('healthz is live; readyz names what start-up waits for, then what readiness waits for, then ready', async () => {
    expect(await call(port, ca.certPem, 'GET', '/healthz')).toEqual({ status: 200, body: 'ok' });
    expect(await call(port, ca.certPem, 'GET', '/readyz')).toEqual({ status: 503, body: `not ready: ${starting}` });
    starting = undefined;
    expect(await call(port, ca.certPem, 'GET', '/readyz')).toEqual({ status: 503, body: `not ready: ${caBundle}` });
    caBundle = true;
    expect(await call(port, ca.certPem, 'GET', '/readyz')).toEqual({ status: 200, body: 'ready' });
  });

  test('an AdmissionReview during start-up gets 503 with the reason (the API server then applies failurePolicy)', async () => {
    starting = 'self-managed certificate setup failed: HTTP 403: secrets is forbidden';
    const review = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u1', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'agents', operation: 'CREATE', object: { spec: { containers: [] } } } });
    const r = await call(port, ca.certPem, 'POST', '/mutate', review);
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toEqual({ error: `webhook starting: ${starting}` });
    starting = undefined;
    expect((await call(port, ca.certPem, 'POST', '/mutate', review)).status).toBe(200);
  });
});
