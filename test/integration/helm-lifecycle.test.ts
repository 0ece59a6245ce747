/**
 * `helm install`, `helm upgrade` and `helm uninstall` of the chart (default values: selfManaged certificates)
 * against a real kube-apiserver, without --wait (no kubelet: the webhook pods are never started). The webhook's
 * runtime work (create its TLS Secret, patch the caBundle) is replayed through its own service account, which also
 * proves the RBAC is enough and no more; then an upgrade must leave that certificate alone.
 */
import path from 'node:path';
import { ControlPlane, describeIf, findTools, helm } from './harness';

const tools = findTools();
const CHART = path.resolve(__dirname, '../../charts/akto-agent-proxy');
const NS = 'akto-agent-proxy';
const NAME = 'akto-agent-proxy-webhook';
const SA = `system:serviceaccount:${NS}:${NAME}`;
const MWC_PATH = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${NAME}`;

jest.setTimeout(180_000);

type Obj = { metadata: { resourceVersion: string; annotations?: Record<string, string> }; [k: string]: unknown };
interface Mwc { metadata: { resourceVersion: string }; webhooks: Array<{ name: string; clientConfig: { caBundle?: string; service?: unknown } }> }

describeIf(!!(tools.apiserver && tools.etcd && tools.helm), [!tools.apiserver && 'kube-apiserver', !tools.etcd && 'etcd', !tools.helm && 'helm'].filter(Boolean).join(', '))('helm lifecycle against a real kube-apiserver', () => {
  let cp: ControlPlane;
  const run = (args: string[]): string => helm(tools.helm!, cp.kubeconfig, args);

  beforeAll(async () => {
    cp = await ControlPlane.start({ apiserver: tools.apiserver!, etcd: tools.etcd! });
    await cp.api.createNamespace('team-a');
  });
  afterAll(async () => {
    await cp?.stop();
  });

  test('install creates every object; the webhook service account may touch only its own Secret and webhook configuration', async () => {
    expect(run(['install', 'akto-agent-proxy', CHART, '-n', NS, '--create-namespace', '--set', 'agentNamespaces={team-a}',
      '--set', 'akto.apiBaseUrl=https://akto.example', '--set', 'akto.apiToken=tok-1'])).toContain('agent-proxy.akto.io/injection=enabled');

    const dep = await cp.api.must<{ spec: { replicas: number } }>('GET', `/apis/apps/v1/namespaces/${NS}/deployments/${NAME}`);
    expect(dep.spec.replicas).toBe(2);
    const mwc = await cp.api.must<Mwc>('GET', MWC_PATH);
    expect(mwc.webhooks.map((w) => w.name)).toEqual(['namespace.inject.agent-proxy.akto.io', 'object.inject.agent-proxy.akto.io']);
    for (const p of [`/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/${NAME}`, `/api/v1/namespaces/${NS}/services/${NAME}`,
      `/api/v1/namespaces/${NS}/configmaps/${NAME}-settings`, '/api/v1/namespaces/team-a/secrets/akto-agent-proxy',
      '/api/v1/namespaces/team-a/configmaps/akto-agent-proxy-policy']) {
      expect((await cp.api.request('GET', p)).status).toBe(200);
    }

    // What the self-managed webhook does at runtime, as its service account.
    const sa = cp.api.as(SA);
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${NAME}-tls` }, type: 'kubernetes.io/tls', data: { 'tls.crt': 'Y2VydA==', 'tls.key': 'a2V5', 'ca.crt': 'Y2E=' } };
    expect((await sa.request('POST', `/api/v1/namespaces/${NS}/secrets`, secret)).status).toBe(201);
    expect((await sa.request('GET', `/api/v1/namespaces/${NS}/secrets/${NAME}-tls`)).status).toBe(200);
    const patch = mwc.webhooks.map((_, i) => ({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: 'Y2E=' }));
    expect((await sa.request('PATCH', MWC_PATH, patch, 'application/json-patch+json')).status).toBe(200);

    // ...and nothing else.
    expect((await sa.request('GET', '/api/v1/namespaces/team-a/secrets/akto-agent-proxy')).status).toBe(403);
    expect((await sa.request('GET', `/api/v1/namespaces/${NS}/secrets`)).status).toBe(403);
    expect((await sa.request('POST', '/api/v1/namespaces/team-a/secrets', { ...secret, metadata: { name: 'x' } })).status).toBe(403);
    expect((await sa.request('GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations')).status).toBe(403);
    expect((await sa.request('GET', '/api/v1/namespaces/team-a/pods')).status).toBe(403);
  });

  test('upgrade keeps the runtime certificate and caBundle (no churn) and rolls the webhook when its settings change', async () => {
    const before = await cp.api.must<Mwc>('GET', MWC_PATH);
    const secretBefore = await cp.api.must<Obj>('GET', `/api/v1/namespaces/${NS}/secrets/${NAME}-tls`);
    const depBefore = await cp.api.must<{ spec: { template: Obj } }>('GET', `/apis/apps/v1/namespaces/${NS}/deployments/${NAME}`);

    run(['upgrade', 'akto-agent-proxy', CHART, '-n', NS, '--reuse-values', '--set', 'sidecar.logLevel=debug']);

    const after = await cp.api.must<Mwc>('GET', MWC_PATH);
    expect(after.webhooks.map((w) => w.clientConfig.caBundle)).toEqual(['Y2E=', 'Y2E=']);
    expect(after.webhooks.map((w) => w.clientConfig.service)).toEqual(before.webhooks.map((w) => w.clientConfig.service));
    const secretAfter = await cp.api.must<Obj>('GET', `/api/v1/namespaces/${NS}/secrets/${NAME}-tls`);
    expect(secretAfter.metadata.resourceVersion).toBe(secretBefore.metadata.resourceVersion);
    const depAfter = await cp.api.must<{ spec: { template: Obj } }>('GET', `/apis/apps/v1/namespaces/${NS}/deployments/${NAME}`);
    expect(depAfter.spec.template.metadata.annotations?.['checksum/settings']).not.toBe(depBefore.spec.template.metadata.annotations?.['checksum/settings']);
    const settings = await cp.api.must<{ data: Record<string, string> }>('GET', `/api/v1/namespaces/${NS}/configmaps/${NAME}-settings`);
    expect(settings.data['settings.yaml']).toContain('logLevel: debug');

    // An upgrade that changes nothing in the templates changes no certificate-related object either.
    run(['upgrade', 'akto-agent-proxy', CHART, '-n', NS, '--reuse-values']);
    expect((await cp.api.must<Mwc>('GET', MWC_PATH)).webhooks.map((w) => w.clientConfig.caBundle)).toEqual(['Y2E=', 'Y2E=']);
  });

  test('uninstall (no --wait) removes the release objects, cluster-scoped ones included', async () => {
    run(['uninstall', 'akto-agent-proxy', '-n', NS]);
    for (const p of [MWC_PATH, `/apis/apps/v1/namespaces/${NS}/deployments/${NAME}`, `/apis/rbac.authorization.k8s.io/v1/clusterroles/${NAME}-cabundle`,
      `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${NAME}-cabundle`, '/api/v1/namespaces/team-a/secrets/akto-agent-proxy']) {
      expect((await cp.api.request('GET', p)).status).toBe(404);
    }
    expect(run(['list', '-n', NS, '-q'])).toBe('');
  });
});
