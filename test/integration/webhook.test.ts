/**
 * The webhook behind a real kube-apiserver: the chart is installed with helm and registers the webhook by URL; the
 * webhook runs locally over TLS (`node dist/webhook/main.js`, as in the image). Pods are created through the API
 * server and the assertions are on what it stored. No kubelet: pods are admitted, never run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import {
  Container, ControlPlane, LocalWebhook, Pod, TestCa, describeIf, eventually, findTools, freePort, helm, missingForWebhookSuites, renderSettingsFile, startLocalWebhook,
} from './harness';

const tools = findTools();
const missing = missingForWebhookSuites(tools);

const CHART = path.resolve(__dirname, '../../charts/akto-agent-proxy');
const RELEASE_NS = 'akto-system';
const MWC = 'akto-akto-agent-proxy-webhook';
const UPSTREAM = 'http://llm.models.svc:8080/v1';
const STATUS = 'agent-proxy.akto.io/status';

jest.setTimeout(180_000);

function agentPod(name: string, opts: { labels?: Record<string, string>; annotations?: Record<string, string>; env?: Container['env'] } = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: opts.labels ?? {}, annotations: opts.annotations ?? {} },
    spec: { containers: [{ name: 'agent', image: 'agent:1', env: opts.env ?? [{ name: 'OPENAI_BASE_URL', value: UPSTREAM }] }] },
  };
}

function sidecars(pod: Pod): Array<Container & { native: boolean }> {
  return [
    ...(pod.spec.initContainers ?? []).map((c) => ({ ...c, native: true })),
    ...pod.spec.containers.map((c) => ({ ...c, native: false })),
  ].filter((c) => c.name === 'akto-proxy');
}

const envOf = (c: Container, name: string) => c.env?.find((e) => e.name === name);

describeIf(!missing, missing)('webhook through a real kube-apiserver', () => {
  let cp: ControlPlane;
  let webhook: LocalWebhook;
  let webhookCa: TestCa;
  let webhookUrl: string;
  const installArgs = (extra: string[] = []): string[] => [
    '--set', `webhook.url=${webhookUrl}`, '--set', 'certs.mode=provided', '--set', 'certs.provided.existingSecret=local-webhook-tls',
    '--set', `webhook.caBundle=${Buffer.from(webhookCa.cert).toString('base64')}`, ...extra,
  ];
  let webhookEnv: Record<string, string>;

  beforeAll(async () => {
    cp = await ControlPlane.start({ apiserver: tools.apiserver!, etcd: tools.etcd! });
    webhookCa = new TestCa('akto-test-webhook-ca');
    const port = await freePort();
    webhookUrl = `https://127.0.0.1:${port}/mutate`;
    // The webhook reads the settings file the chart renders (as in the cluster); env only moves its TLS files and port.
    webhookEnv = { KUBECONFIG: cp.kubeconfig, WEBHOOK_SETTINGS_FILE: renderSettingsFile(tools.helm!, CHART, RELEASE_NS, installArgs(), cp.dir) };
    webhook = await startLocalWebhook(webhookEnv, webhookCa, port);
    helm(tools.helm!, cp.kubeconfig, ['install', 'akto', CHART, '-n', RELEASE_NS, '--create-namespace', ...installArgs()]);
    await cp.api.createNamespace('agents', { 'agent-proxy.akto.io/injection': 'enabled' });
    await cp.api.createNamespace('plain');
    // The API server learns about webhook configurations through an informer: wait until injection happens.
    await eventually(async () => {
      const res = await cp.api.createPod('agents', agentPod('probe'), true);
      return res.status === 201 && sidecars(res.body).length === 1;
    }, 30_000, 'the webhook to be called');
  });

  afterAll(async () => {
    await webhook?.stop();
    await cp?.stop();
  });

  test('a pod in a labelled namespace is stored with the sidecar, its URL rewritten and the original handed over', async () => {
    const res = await cp.api.createPod('agents', agentPod('agent-1'));
    expect(res.status).toBe(201);
    const stored = await cp.api.must<Pod>('GET', '/api/v1/namespaces/agents/pods/agent-1');
    const [sidecar] = sidecars(stored);
    expect(sidecar).toBeDefined();
    const rewritten = envOf(stored.spec.containers.find((c) => c.name === 'agent')!, 'OPENAI_BASE_URL')?.value;
    expect(rewritten).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);
    expect(JSON.stringify(sidecar.env)).toContain(UPSTREAM);
    expect(sidecar.command).toEqual(['node', 'dist/proxy/main.js']);
    expect(stored.metadata.annotations?.[STATUS]).toBeDefined();
  });

  test('a pod in an unlabelled namespace is stored untouched', async () => {
    expect((await cp.api.createPod('plain', agentPod('agent-plain'))).status).toBe(201);
    const stored = await cp.api.must<Pod>('GET', '/api/v1/namespaces/plain/pods/agent-plain');
    expect(sidecars(stored)).toHaveLength(0);
    expect(envOf(stored.spec.containers[0], 'OPENAI_BASE_URL')?.value).toBe(UPSTREAM);
  });

  test('pod label opt-out wins in a labelled namespace; pod label opt-in works in an unlabelled one', async () => {
    const out = await cp.api.createPod('agents', agentPod('opted-out', { labels: { 'agent-proxy.akto.io/inject': 'false' } }));
    expect(out.status).toBe(201);
    expect(sidecars(out.body)).toHaveLength(0);
    expect(envOf(out.body.spec.containers[0], 'OPENAI_BASE_URL')?.value).toBe(UPSTREAM);

    const inPod = await cp.api.createPod('plain', agentPod('opted-in', { labels: { 'agent-proxy.akto.io/inject': 'true' } }));
    expect(inPod.status).toBe(201);
    expect(sidecars(inPod.body)).toHaveLength(1);
  });

  test('the webhook\'s own namespace and kube-system are never injected, even with the pod label', async () => {
    for (const ns of [RELEASE_NS, 'kube-system']) {
      const res = await cp.api.createPod(ns, agentPod('never', { labels: { 'agent-proxy.akto.io/inject': 'true' } }), true);
      expect(res.status).toBe(201);
      expect(sidecars(res.body)).toHaveLength(0);
    }
  });

  test('URL env from a ConfigMap reference: the app gets the localhost URL, the sidecar the same reference', async () => {
    const env = [{ name: 'AI_AGENT_INFERENCE_URL', valueFrom: { configMapKeyRef: { name: 'llm', key: 'url' } } }];
    const res = await cp.api.createPod('agents', agentPod('from-cm', { env }), true);
    expect(res.status).toBe(201);
    const app = res.body.spec.containers.find((c) => c.name === 'agent')!;
    expect(envOf(app, 'AI_AGENT_INFERENCE_URL')?.value).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);
    expect(JSON.stringify(sidecars(res.body)[0].env)).toContain('"configMapKeyRef":{"name":"llm","key":"url"');
  });

  test('native sidecar on a server that supports it; the per-pod annotation selects a classic one', async () => {
    const { minor } = await cp.version();
    expect(Number(minor)).toBeGreaterThanOrEqual(29);
    const native = await cp.api.createPod('agents', agentPod('native'), true);
    const [n] = sidecars(native.body);
    expect(n.native).toBe(true);
    expect(n.restartPolicy).toBe('Always');

    const classic = await cp.api.createPod('agents', agentPod('classic', { annotations: { 'agent-proxy.akto.io/native-sidecar': 'false' } }), true);
    const [c] = sidecars(classic.body);
    expect(c.native).toBe(false);
    expect(classic.body.spec.containers[0].name).toBe('akto-proxy'); // classic sidecar goes first
  });

  test('an invalid annotation is rejected and the client sees which annotation and why', async () => {
    const res = await cp.api.createPod('agents', agentPod('bad', { annotations: { 'agent-proxy.akto.io/log-level': 'loud' } }));
    expect(res.status).toBeGreaterThanOrEqual(400);
    const { message } = JSON.parse(res.text) as { message: string };
    expect(message).toMatch(/^admission webhook "namespace\.inject\.agent-proxy\.akto\.io" denied the request: .*agent-proxy\.akto\.io\/log-level: must be one of/);
    expect((await cp.api.request('GET', '/api/v1/namespaces/agents/pods/bad')).status).toBe(404);
  });

  test('idempotent under reinvocation: a later webhook changes the pod, ours runs again, one sidecar, same pod on a re-run', async () => {
    const other = await startOtherMutator();
    try {
      await cp.api.must('POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name: 'zz-test-annotator' }, // sorts after ours, so it runs after ours
        webhooks: [{
          name: 'annotate.test.example', admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Fail',
          clientConfig: { url: other.url, caBundle: Buffer.from(other.ca).toString('base64') },
          rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
          objectSelector: { matchLabels: { 'test.example/annotate': 'yes' } },
        }],
      });
      const pod = agentPod('', { labels: { 'test.example/annotate': 'yes' } }) as { metadata: Record<string, unknown> };
      const created = await eventually(async () => {
        const name = `reinvoked-${Date.now()}`;
        pod.metadata.name = name;
        const res = await cp.api.createPod('agents', pod);
        return res.status === 201 && res.body.metadata.annotations?.['test.example/annotated'] === 'yes' ? res.body : undefined;
      }, 30_000, 'the second webhook to be registered');
      expect(sidecars(created)).toHaveLength(1);
      expect(created.spec.containers.filter((c) => c.name === 'agent')).toHaveLength(1);
      // The audit log records every webhook call per round: ours ran again in round 1 (after the later webhook).
      const event = cp.auditEvents().find((e) => e.objectRef?.name === created.metadata.name && e.responseStatus?.code === 201);
      const calls = Object.entries(event?.annotations ?? {})
        .filter(([k]) => k.startsWith('mutation.webhook.admission.k8s.io/'))
        .map(([k, v]) => ({ round: Number(/round_(\d+)/.exec(k)![1]), ...(JSON.parse(v) as { configuration: string; mutated: boolean }) }));
      expect(calls).toEqual(expect.arrayContaining([
        { round: 0, configuration: MWC, webhook: 'namespace.inject.agent-proxy.akto.io', mutated: true },
        { round: 0, configuration: 'zz-test-annotator', webhook: 'annotate.test.example', mutated: true },
      ]));
      // Ours ran again in round 1 and found nothing to change: the sidecar it wrote survived the API server's defaulting.
      expect(calls.filter((c) => c.round === 1 && c.configuration === MWC)).toEqual([
        { round: 1, configuration: MWC, webhook: 'namespace.inject.agent-proxy.akto.io', mutated: false },
      ]);
      // A second pass of the stored pod through the webhook (dry run) yields the same pod.
      const again = await cp.api.createPod('agents', { ...created, metadata: { ...created.metadata, name: 'again', resourceVersion: undefined, uid: undefined, creationTimestamp: undefined } }, true);
      expect(again.status).toBe(201);
      expect(again.body.spec.containers).toEqual(created.spec.containers);
      expect(again.body.spec.initContainers).toEqual(created.spec.initContainers);
    } finally {
      await cp.api.request('DELETE', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/zz-test-annotator');
      await other.stop();
    }
  });

  test('the chart\'s `helm test` check passes: dry-run pod in a restricted, labelled namespace gets the sidecar', async () => {
    // Apply the test hook's objects as helm would, except the pod (it cannot run here): run its check locally with
    // the pod's env and a token of the hook's service account, so its RBAC is exercised too.
    const rendered = helm(tools.helm!, undefined, ['template', 'akto', CHART, '-n', RELEASE_NS, ...installArgs(), '--show-only', 'templates/tests/test-injection.yaml']);
    const docs = parseAllDocuments(rendered).map((d) => d.toJSON()).filter(Boolean) as Array<{ kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: { containers: Container[] } }>;
    const paths: Record<string, (ns: string) => string> = {
      Namespace: () => '/api/v1/namespaces',
      ServiceAccount: (ns) => `/api/v1/namespaces/${ns}/serviceaccounts`,
      ConfigMap: (ns) => `/api/v1/namespaces/${ns}/configmaps`,
      Role: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`,
      RoleBinding: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`,
    };
    const testNs = docs.find((d) => d.kind === 'Namespace')!;
    expect(testNs.metadata.labels).toMatchObject({ 'agent-proxy.akto.io/injection': 'enabled', 'pod-security.kubernetes.io/enforce': 'restricted' });
    for (const d of docs.filter((x) => x.kind !== 'Pod')) await cp.api.must('POST', paths[d.kind](d.metadata.namespace ?? ''), d);
    const checkPod = docs.find((d) => d.kind === 'Pod')!;
    const sa = (checkPod.spec as unknown as { serviceAccountName: string }).serviceAccountName;
    const tokenReview = await cp.api.must<{ status: { token: string } }>('POST', `/api/v1/namespaces/${RELEASE_NS}/serviceaccounts/${sa}/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600 } });
    const saDir = mkdtempSync(path.join(os.tmpdir(), 'akto-sa-'));
    try {
      writeFileSync(path.join(saDir, 'token'), tokenReview.status.token);
      writeFileSync(path.join(saDir, 'ca.crt'), cp.ca.cert);
      const env = Object.fromEntries((checkPod.spec!.containers[0].env ?? []).map((e) => [e.name, e.value ?? '']));
      const res = spawnSync(process.execPath, [path.join(CHART, 'files/injection-check.js')], {
        env: { ...process.env, ...env, SA_DIR: saDir, KUBE_API_URL: cp.url }, encoding: 'utf8', timeout: 60_000,
      });
      expect(res.stderr).toBe('');
      expect(res.stdout).toMatch(/^PASS: akto-proxy injected \(native sidecar\), AI_AGENT_INFERENCE_URL=http:\/\/127\.0\.0\.1:\d+/);
      expect(res.status).toBe(0);

      // The same check fails when nothing injects: an unlabelled namespace (no webhook call).
      for (const kind of ['Role', 'RoleBinding']) {
        const d = docs.find((x) => x.kind === kind)!;
        await cp.api.must('POST', paths[kind]('plain'), { ...d, metadata: { ...d.metadata, namespace: 'plain' } });
      }
      const negative = spawnSync(process.execPath, [path.join(CHART, 'files/injection-check.js')], {
        env: { ...process.env, ...env, TEST_NAMESPACE: 'plain', SA_DIR: saDir, KUBE_API_URL: cp.url }, encoding: 'utf8', timeout: 60_000,
      });
      expect(negative.status).toBe(1);
      expect(negative.stderr).toContain('FAIL: expected one akto-proxy container, found 0');
    } finally {
      rmSync(saDir, { recursive: true, force: true });
    }
  });

  test('failurePolicy with the webhook down: Ignore admits the pod without the sidecar (visible in the audit log), Fail refuses it clearly', async () => {
    helm(tools.helm!, cp.kubeconfig, ['upgrade', 'akto', CHART, '-n', RELEASE_NS, ...installArgs(['--set', 'webhook.failurePolicy=Ignore'])]);
    await webhook.stop();
    try {
      const ignored = await eventually(async () => {
        const name = `ignored-${Date.now()}`;
        const res = await cp.api.createPod('agents', agentPod(name));
        return res.status === 201 ? res.body : undefined;
      }, 30_000, 'failurePolicy Ignore to take effect');
      expect(sidecars(ignored)).toHaveLength(0);
      expect(envOf(ignored.spec.containers[0], 'OPENAI_BASE_URL')?.value).toBe(UPSTREAM);
      const event = cp.auditEvents().find((e) => e.objectRef?.name === ignored.metadata.name && e.responseStatus?.code === 201);
      expect(Object.keys(event?.annotations ?? {}).some((k) => k.startsWith('failed-open.mutation.webhook.admission.k8s.io/'))).toBe(true);
      expect(JSON.stringify(event?.annotations)).toContain('namespace.inject.agent-proxy.akto.io');

      helm(tools.helm!, cp.kubeconfig, ['upgrade', 'akto', CHART, '-n', RELEASE_NS, ...installArgs(['--set', 'webhook.failurePolicy=Fail'])]);
      const refused = await eventually(async () => {
        const res = await cp.api.createPod('agents', agentPod(`refused-${Date.now()}`));
        return res.status >= 400 ? res : undefined;
      }, 30_000, 'failurePolicy Fail to take effect');
      expect(refused.text).toContain('failed calling webhook \\"namespace.inject.agent-proxy.akto.io\\"');
      // Unlabelled namespaces are not affected by the outage.
      expect((await cp.api.createPod('plain', agentPod('during-outage'))).status).toBe(201);
    } finally {
      webhook = await startLocalWebhook(webhookEnv, webhookCa, webhook.port);
    }
    await eventually(async () => sidecars((await cp.api.createPod('agents', agentPod('back'), true)).body).length === 1, 30_000, 'the webhook to be back');
  });
});

/** A second mutating webhook, in-process: adds one annotation to every pod it sees. */
async function startOtherMutator(): Promise<{ url: string; ca: string; stop(): Promise<void> }> {
  const ca = new TestCa('other-webhook-ca');
  const pem = ca.serving('other-webhook');
  const server = https.createServer({ cert: pem.cert, key: pem.key }, (req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const review = JSON.parse(body);
      const hasAnnotations = !!review.request.object.metadata.annotations;
      const patch = hasAnnotations
        ? [{ op: 'add', path: '/metadata/annotations/test.example~1annotated', value: 'yes' }]
        : [{ op: 'add', path: '/metadata/annotations', value: { 'test.example/annotated': 'yes' } }];
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({
        apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
        response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') },
      }));
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${port}/mutate`,
    ca: ca.cert,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
