/**
 * The webhook over real HTTPS on loopback: a TLS client that verifies the chain sends
 * AdmissionReviews; certificate reload from files; drain.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyPatch, Operation } from 'fast-json-patch';
import { createLogger } from '../../../common/logger';
import { createRegistry } from '../../../common/metrics';
import { generateCa, issueServingCert, KeyPairPem } from '../../../webhook/certs';
import type { AdmissionEvent } from '../../../webhook/events';
import { createWebhookServer, WebhookServer } from '../../../webhook/server';
import { loadSettings } from '../../../webhook/settings';
import { readTlsFiles, TlsFileWatcher } from '../../../common/tls-files';

const settings = loadSettings({ WEBHOOK_MAX_BODY_BYTES: '65536' });
const logger = createLogger('silent');
const now = new Date();
let ca1: KeyPairPem, leaf1: KeyPairPem, ca2: KeyPairPem, leaf2: KeyPairPem;

beforeAll(() => {
  ca1 = generateCa(now, 2);
  leaf1 = issueServingCert(ca1, ['localhost'], now, 1);
  ca2 = generateCa(now, 2);
  leaf2 = issueServingCert(ca2, ['localhost'], now, 1);
});

interface Reply {
  status: number;
  body: string;
  headers: Record<string, unknown>;
}

function call(port: number, ca: string, method: string, path: string, body?: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, servername: 'localhost', ca, method, path, agent: false, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function admissionReview(uid: string, pod: unknown, kind = 'Pod', apiVersion: string | null = 'admission.k8s.io/v1') {
  return JSON.stringify({
    apiVersion,
    kind: 'AdmissionReview',
    request: { uid, kind: { group: '', version: 'v1', kind }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'agents', operation: 'CREATE', object: pod },
  });
}

const agentPod = {
  metadata: { generateName: 'agent-', labels: { app: 'agent' } },
  spec: { containers: [{ name: 'agent', image: 'a', env: [{ name: 'OPENAI_BASE_URL', value: 'https://llm.example.com/v1' }] }] },
};

describe('webhook HTTPS server', () => {
  let srv: WebhookServer;
  let port: number;
  const registry = createRegistry(false);
  let ready = true;
  const events: AdmissionEvent[] = [];

  beforeAll(async () => {
    srv = createWebhookServer({
      settings, logger, registry, tls: { cert: leaf1.certPem, key: leaf1.keyPem }, cluster: () => ({ nativeSidecars: true }), ready: () => ready,
      events: { record: (e) => events.push(e) },
    });
    port = await srv.listen(0, '127.0.0.1');
  });
  afterAll(() => srv.close());

  it('answers an AdmissionReview v1 over TLS with the same uid and an applicable patch', async () => {
    const r = await call(port, ca1.certPem, 'POST', '/mutate', admissionReview('uid-123', agentPod));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/application\/json/);
    const review = JSON.parse(r.body);
    expect(review).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'uid-123', allowed: true, patchType: 'JSONPatch' } });
    const ops = JSON.parse(Buffer.from(review.response.patch, 'base64').toString()) as Operation[];
    const pod = applyPatch(structuredClone(agentPod), ops, true, false).newDocument as unknown as { spec: { initContainers: Array<{ name: string; restartPolicy: string }>; containers: Array<{ env: unknown[] }> } };
    expect(pod.spec.initContainers[0]).toMatchObject({ name: 'akto-proxy', restartPolicy: 'Always' });
    expect(pod.spec.containers[0].env).toEqual([{ name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:8080' }]);
  });

  it('/mutate/enforced is the enforced posture: an opt-out is refused there, warned about and recorded on /mutate', async () => {
    const optOut = { ...agentPod, metadata: { name: 'opted', labels: { 'agent-proxy.akto.io/inject': 'false' } } };
    const enforced = JSON.parse((await call(port, ca1.certPem, 'POST', '/mutate/enforced', admissionReview('uid-e', optOut))).body).response;
    expect(enforced).toMatchObject({ uid: 'uid-e', allowed: false, status: { code: 403, reason: 'Forbidden' } });
    expect(enforced.status.message).toMatch(/namespace "agents" is enforced .* cannot opt out .*Only the administrators of the akto-agent-proxy Helm release can exempt a pod/);
    const enabled = JSON.parse((await call(port, ca1.certPem, 'POST', '/mutate', admissionReview('uid-o', optOut))).body).response;
    expect(enabled).toMatchObject({ uid: 'uid-o', allowed: true, warnings: [expect.stringContaining('runs without the guardrail proxy')] });
    expect(events.map((e) => [e.reason, e.regarding.name])).toEqual([['InjectionRefused', 'opted'], ['InjectionOptOut', 'opted']]);
    expect((await call(port, ca1.certPem, 'POST', '/mutate/other', admissionReview('uid-x', optOut))).status).toBe(404);
  });

  it('allows non-Pod objects unchanged', async () => {
    const r = await call(port, ca1.certPem, 'POST', '/mutate', admissionReview('uid-d', { metadata: {}, spec: {} }, 'Deployment'));
    expect(JSON.parse(r.body).response).toEqual({ uid: 'uid-d', allowed: true });
  });

  it('denies a pod with an invalid annotation, naming it, in a well-formed response', async () => {
    const pod = { ...agentPod, metadata: { annotations: { 'agent-proxy.akto.io/log-level': 'loud' } } };
    const r = await call(port, ca1.certPem, 'POST', '/mutate', admissionReview('uid-x', pod));
    const res = JSON.parse(r.body).response;
    expect(res.allowed).toBe(false);
    expect(res.uid).toBe('uid-x');
    expect(res.status.message).toMatch(/agent-proxy\.akto\.io\/log-level/);
  });

  it('rejects unreadable or uid-less bodies with 400 and oversized ones with 413', async () => {
    expect((await call(port, ca1.certPem, 'POST', '/mutate', '{not json')).status).toBe(400);
    expect((await call(port, ca1.certPem, 'POST', '/mutate', '{"kind":"AdmissionReview","request":{}}')).status).toBe(400);
    expect((await call(port, ca1.certPem, 'POST', '/mutate', '[]')).status).toBe(400);
    expect((await call(port, ca1.certPem, 'POST', '/mutate', Buffer.alloc(70_000, 32))).status).toBe(413);
    expect((await call(port, ca1.certPem, 'GET', '/healthz')).status).toBe(200);
  });

  it('exposes health, readiness and reason-labelled metrics', async () => {
    expect((await call(port, ca1.certPem, 'GET', '/readyz')).status).toBe(200);
    ready = false;
    expect((await call(port, ca1.certPem, 'GET', '/readyz')).status).toBe(503);
    ready = true;
    const m = await call(port, ca1.certPem, 'GET', '/metrics');
    expect(m.body).toMatch(/akto_webhook_admissions_total\{result="injected",reason="native"\} 1/);
    expect(m.body).toMatch(/akto_webhook_admissions_total\{result="denied",reason="invalid-annotation"\} 1/);
    expect(m.body).toMatch(/akto_webhook_admissions_total\{result="error",reason="body-too-large"\} 1/);
    expect(m.body).toMatch(/akto_webhook_admission_duration_seconds_bucket/);
    const expiry = Number(/akto_webhook_certificate_expiry_timestamp_seconds (\d+)/.exec(m.body)?.[1]);
    expect(Math.abs(expiry * 1000 - (now.getTime() + 24 * 3600 * 1000))).toBeLessThan(5000);
  });

  it('answers in the apiVersion it was asked in (v1beta1 too) and refuses unknown versions clearly', async () => {
    const beta = await call(port, ca1.certPem, 'POST', '/mutate', admissionReview('uid-beta', agentPod, 'Pod', 'admission.k8s.io/v1beta1'));
    expect(beta.status).toBe(200);
    expect(JSON.parse(beta.body)).toMatchObject({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', response: { uid: 'uid-beta', allowed: true, patchType: 'JSONPatch' } });
    const betaOther = await call(port, ca1.certPem, 'POST', '/mutate', admissionReview('uid-beta-d', { metadata: {}, spec: {} }, 'Deployment', 'admission.k8s.io/v1beta1'));
    expect(JSON.parse(betaOther.body)).toEqual({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', response: { uid: 'uid-beta-d', allowed: true } });
    for (const version of ['admission.k8s.io/v2', 'v1', 'admission.k8s.io/V1', null]) {
      const r = await call(port, ca1.certPem, 'POST', '/mutate', admissionReview('uid-v', agentPod, 'Pod', version));
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body).error).toMatch(/apiVersion .* is not supported; this webhook answers admission\.k8s\.io\/v1 and admission\.k8s\.io\/v1beta1/);
    }
  });
});

describe('certificate reload and drain', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'webhook-tls-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serves a new certificate after the files change, skipping a mismatched pair, without a restart', async () => {
    const certFile = join(dir, 'tls.crt');
    const keyFile = join(dir, 'tls.key');
    writeFileSync(certFile, leaf1.certPem);
    writeFileSync(keyFile, leaf1.keyPem);
    const initial = readTlsFiles(certFile, keyFile);
    const srv = createWebhookServer({ settings, logger, registry: createRegistry(false), tls: initial, cluster: () => ({ nativeSidecars: false }) });
    const port = await srv.listen(0, '127.0.0.1');
    const watcher = new TlsFileWatcher(certFile, keyFile, 50, logger, initial);
    const changes: string[] = [];
    watcher.start((m) => {
      changes.push(m.cert);
      srv.setTls(m);
    });
    try {
      expect((await call(port, ca1.certPem, 'GET', '/healthz')).status).toBe(200);
      await expect(call(port, ca2.certPem, 'GET', '/healthz')).rejects.toThrow();

      writeFileSync(certFile, leaf2.certPem); // half-updated: cert 2 with key 1
      await new Promise((r) => setTimeout(r, 300));
      expect(changes).toHaveLength(0);
      expect((await call(port, ca1.certPem, 'GET', '/healthz')).status).toBe(200);

      writeFileSync(keyFile, leaf2.keyPem);
      const deadline = Date.now() + 5000;
      while (changes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(changes).toEqual([leaf2.certPem]);
      expect((await call(port, ca2.certPem, 'GET', '/healthz')).status).toBe(200);
      await expect(call(port, ca1.certPem, 'GET', '/healthz')).rejects.toThrow();
    } finally {
      watcher.stop();
      await srv.close();
    }
  });

  it('names the env var when the cert files are missing or do not match', () => {
    expect(() => readTlsFiles(join(dir, 'nope.crt'), join(dir, 'nope.key'))).toThrow(/TLS_CERT_FILE: cannot read/);
    const certFile = join(dir, 'a.crt');
    const keyFile = join(dir, 'a.key');
    writeFileSync(certFile, leaf1.certPem);
    writeFileSync(keyFile, leaf2.keyPem);
    expect(() => readTlsFiles(certFile, keyFile)).toThrow(/TLS_KEY_FILE/);
  });

  it('drains: not ready but still answering, then closed', async () => {
    const srv = createWebhookServer({ settings, logger, registry: createRegistry(false), tls: { cert: leaf1.certPem, key: leaf1.keyPem }, cluster: () => ({ nativeSidecars: false }) });
    const port = await srv.listen(0, '127.0.0.1');
    const drained = srv.drain(0.5);
    const readyz = await call(port, ca1.certPem, 'GET', '/readyz');
    expect(readyz.status).toBe(503);
    expect(readyz.headers.connection).toBe('close');
    const r = await call(port, ca1.certPem, 'POST', '/mutate', admissionReview('uid-drain', agentPod));
    expect(JSON.parse(r.body).response.uid).toBe('uid-drain');
    await drained;
    await expect(call(port, ca1.certPem, 'GET', '/healthz')).rejects.toThrow();
  });

  it('admits the pod unchanged with a warning when injection hits a bug', async () => {
    const srv = createWebhookServer({
      settings, logger, registry: createRegistry(false), tls: { cert: leaf1.certPem, key: leaf1.keyPem }, cluster: () => ({ nativeSidecars: false }),
      injectFn: () => {
        throw new Error('boom');
      },
    });
    const port = await srv.listen(0, '127.0.0.1');
    try {
      const r = await call(port, ca1.certPem, 'POST', '/mutate', admissionReview('uid-bug', agentPod));
      expect(JSON.parse(r.body).response).toMatchObject({ uid: 'uid-bug', allowed: true });
    } finally {
      await srv.close();
    }
  });
});
