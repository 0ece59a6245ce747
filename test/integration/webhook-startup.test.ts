/**
 * The webhook's start-up as a pod lives it (`node dist/webhook/main.js`, selfManaged certificates): the API server
 * may be unreachable for a while (a NetworkPolicy, a broken kubernetes Service). It must listen at once so its
 * probes pass, say in /readyz and in its log what it waits for, stop at once on SIGTERM while waiting, and carry on
 * by itself when the API server appears.
 */
import https from 'node:https';
import net from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ControlPlane, DIST_WEBHOOK, describeIf, eventually, findTools, freePort, LocalWebhook, startLocalWebhook } from './harness';

jest.setTimeout(120_000);

function readyz(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: '/readyz', rejectUnauthorized: false, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

function exited(hook: LocalWebhook): Promise<number | null> {
  if (hook.child.exitCode !== null) return Promise.resolve(hook.child.exitCode);
  return new Promise((resolve) => hook.child.once('exit', (code) => resolve(code)));
}

const haveDist = existsSync(DIST_WEBHOOK);
const selfManaged = (kubeconfig: string) => ({ CERT_MODE: 'selfManaged', KUBECONFIG: kubeconfig, LOG_LEVEL: 'info', WEBHOOK_NAMESPACE: 'akto-agent-proxy' });

describeIf(haveDist, 'dist/webhook/main.js (npm run build)')('webhook start-up while the API server is unreachable', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'akto-webhook-startup-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('listens at once, /readyz and the log name the API server it waits for; SIGTERM while waiting exits at once', async () => {
    const deadPort = await freePort();
    const kubeconfig = path.join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, [
      'apiVersion: v1', 'kind: Config', 'current-context: t',
      `clusters: [{name: t, cluster: {server: "https://127.0.0.1:${deadPort}", insecure-skip-tls-verify: true}}]`,
      'users: [{name: t, user: {token: x}}]', 'contexts: [{name: t, context: {cluster: t, user: t}}]', '',
    ].join('\n'));
    const hook = await startLocalWebhook(selfManaged(kubeconfig)); // resolves once /healthz answers
    try {
      const r = await eventually(async () => {
        const res = await readyz(hook.port);
        return res.body.includes('ECONNREFUSED') ? res : undefined;
      }, 15_000, '/readyz naming the refused API server');
      expect(r.status).toBe(503);
      expect(r.body).toContain(`not ready: waiting for the Kubernetes API server at https://127.0.0.1:${deadPort}`);
      await eventually(async () => /"msg":"waiting for the Kubernetes API server[^"]*"/.test(readFileSync(hook.logFile, 'utf8')), 5000, 'the log line');

      const t0 = Date.now();
      hook.child.kill('SIGTERM');
      expect(await exited(hook)).toBe(0);
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      await hook.stop();
    }
  });
});

const tools = findTools();
describeIf(!!(tools.apiserver && tools.etcd) && haveDist, 'kube-apiserver, etcd, dist/webhook/main.js')('webhook start-up when the API server appears later', () => {
  let cp: ControlPlane;
  beforeAll(async () => {
    cp = await ControlPlane.start({ apiserver: tools.apiserver!, etcd: tools.etcd! });
    await cp.api.createNamespace('akto-agent-proxy');
  });
  afterAll(() => cp?.stop());

  test('carries on by itself: creates its certificate, then /readyz waits only for the webhook configuration', async () => {
    // The kubeconfig points at a port that forwards to the API server only from some moment on.
    const port = await freePort();
    const kubeconfig = cp.writeKubeconfig('late-kubeconfig', cp.token, `https://127.0.0.1:${port}`);
    const hook = await startLocalWebhook(selfManaged(kubeconfig));
    const target = Number(new URL(cp.url).port);
    const forwarder = net.createServer((s) => {
      const up = net.connect(target, '127.0.0.1');
      s.pipe(up).pipe(s);
      s.on('error', () => up.destroy());
      up.on('error', () => s.destroy());
    });
    try {
      expect((await eventually(async () => {
        const r = await readyz(hook.port);
        return r.body.includes('waiting for the Kubernetes API server') ? r : undefined;
      }, 15_000, '/readyz: waiting')).status).toBe(503);
      await new Promise<void>((r) => forwarder.listen(port, '127.0.0.1', r));
      const after = await eventually(async () => {
        const r = await readyz(hook.port);
        return r.body.includes('MutatingWebhookConfiguration') ? r : undefined;
      }, 30_000, '/readyz: caBundle');
      expect(after.status).toBe(503);
      // The logger writes in short batches.
      const log = await eventually(async () => {
        const text = readFileSync(hook.logFile, 'utf8');
        return text.includes('"msg":"webhook listening"') ? text : undefined;
      }, 5000, 'the log line "webhook listening"');
      expect(log).toContain('"msg":"Kubernetes API server reachable"');
      expect(log).toContain('"msg":"created the webhook CA and serving certificate"');
      expect((await cp.api.request('GET', '/api/v1/namespaces/akto-agent-proxy/secrets/akto-agent-proxy-webhook-tls')).status).toBe(200);
    } finally {
      await hook.stop();
      forwarder.close();
    }
  });
});
