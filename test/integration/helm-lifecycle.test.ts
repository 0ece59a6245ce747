/**
 * `helm install`, `helm upgrade` and `helm uninstall` of the chart (default values: selfManaged certificates)
 * against a real kube-apiserver, without --wait (no kubelet: the webhook pods are never started). The webhook itself
 * runs locally with the installed settings file and a token of the chart's service account: it creates its TLS
 * Secret and patches the caBundle, which proves the chart's RBAC is enough (and checks show it is no more); then
 * restarts and upgrades must leave that certificate alone.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ControlPlane, describeIf, eventually, findTools, helm, missingForWebhookSuites, startLocalWebhook } from './harness';

const tools = findTools();
const CHART = path.resolve(__dirname, '../../charts/akto-agent-proxy');
const NS = 'akto-agent-proxy';
const NAME = 'akto-agent-proxy-webhook';
const SA = `system:serviceaccount:${NS}:${NAME}`;
const MWC_PATH = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${NAME}`;
const VAP_PATH = '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/akto-agent-proxy-enforced';
const VAP_BINDING_PATH = '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/akto-agent-proxy-enforced';

jest.setTimeout(180_000);

type Obj = { metadata: { resourceVersion: string; annotations?: Record<string, string> }; [k: string]: unknown };
interface Mwc { metadata: { resourceVersion: string }; webhooks: Array<{ name: string; clientConfig: { caBundle?: string; service?: unknown } }> }

const missing = missingForWebhookSuites(tools);
describeIf(!missing, missing)('helm lifecycle against a real kube-apiserver', () => {
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
    // The API server validates every rendered object first (schema, defaulting, admission) without storing it.
    expect(run(['install', 'akto-agent-proxy', CHART, '-n', 'default', '--dry-run=server', '--set', 'agentNamespaces={team-a}'])).toContain('kind: MutatingWebhookConfiguration');
    expect((await cp.api.request('GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations')).text).not.toContain(NAME);
    expect(run(['install', 'akto-agent-proxy', CHART, '-n', NS, '--create-namespace', '--set', 'agentNamespaces={team-a}',
      '--set', 'akto.apiBaseUrl=https://akto.example', '--set', 'akto.apiToken=tok-1'])).toContain('agent-proxy.akto.io/injection=enabled');

    const dep = await cp.api.must<{ spec: { replicas: number } }>('GET', `/apis/apps/v1/namespaces/${NS}/deployments/${NAME}`);
    expect(dep.spec.replicas).toBe(2);
    const mwc = await cp.api.must<Mwc>('GET', MWC_PATH);
    expect(mwc.webhooks.map((w) => w.name)).toEqual(['namespace', 'object', 'opt-out', 'enforced'].map((n) => `${n}.inject.agent-proxy.akto.io`));
    expect((await cp.api.request('GET', VAP_PATH)).status).toBe(200);
    expect((await cp.api.request('GET', VAP_BINDING_PATH)).status).toBe(200);
    for (const p of [`/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/${NAME}`, `/api/v1/namespaces/${NS}/services/${NAME}`,
      `/api/v1/namespaces/${NS}/configmaps/${NAME}-settings`, '/api/v1/namespaces/team-a/secrets/akto-agent-proxy',
      '/api/v1/namespaces/team-a/configmaps/akto-agent-proxy-policy']) {
      expect((await cp.api.request('GET', p)).status).toBe(200);
    }

    // The self-managed webhook at work, with exactly the chart's settings file and service account.
    const settings = await cp.api.must<{ data: Record<string, string> }>('GET', `/api/v1/namespaces/${NS}/configmaps/${NAME}-settings`);
    const settingsFile = path.join(cp.dir, 'settings.yaml');
    writeFileSync(settingsFile, settings.data['settings.yaml']);
    const env = {
      WEBHOOK_SETTINGS_FILE: settingsFile, CERT_MODE: 'selfManaged', POD_NAMESPACE: NS,
      KUBECONFIG: cp.writeKubeconfig('webhook-sa.kubeconfig', await cp.serviceAccountToken(NS, NAME)),
    };
    let webhook = await startLocalWebhook(env);
    const bundles = async (): Promise<Array<string | undefined>> => (await cp.api.must<Mwc>('GET', MWC_PATH)).webhooks.map((w) => w.clientConfig.caBundle);
    try {
      await eventually(async () => (await bundles()).every(Boolean), 30_000, 'the webhook to patch the caBundle');
      const secret = await cp.api.must<Obj & { data: Record<string, string> }>('GET', `/api/v1/namespaces/${NS}/secrets/${NAME}-tls`);
      const caBundle = Buffer.from((await bundles())[0]!, 'base64').toString();
      expect(caBundle).toContain('BEGIN CERTIFICATE');
      // A restart (a new pod, a second replica) reuses the stored certificate instead of making a new one.
      await webhook.stop();
      webhook = await startLocalWebhook(env);
      await new Promise((r) => setTimeout(r, 1500));
      expect((await cp.api.must<Obj>('GET', `/api/v1/namespaces/${NS}/secrets/${NAME}-tls`)).metadata.resourceVersion).toBe(secret.metadata.resourceVersion);
      expect(Buffer.from((await bundles())[0]!, 'base64').toString()).toBe(caBundle);
    } finally {
      await webhook.stop();
    }

    const sa = cp.api.as(SA);
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' }, type: 'Opaque', data: { a: 'Yg==' } };
    // Events about agent pods, in their namespaces: create and patch, no reading.
    const event = { apiVersion: 'v1', kind: 'Event', metadata: { name: 'e1' }, involvedObject: { kind: 'Pod', name: 'p', namespace: 'team-a' }, reason: 'InjectionSkipped', message: 'm', type: 'Warning' };
    expect((await sa.request('POST', '/api/v1/namespaces/team-a/events', event)).status).toBe(201);
    expect((await sa.request('PATCH', '/api/v1/namespaces/team-a/events/e1', { count: 2 }, 'application/merge-patch+json')).status).toBe(200);
    expect((await sa.request('GET', '/api/v1/namespaces/team-a/events')).status).toBe(403);
    // ...and nothing else.
    expect((await sa.request('GET', '/api/v1/namespaces/team-a/secrets/akto-agent-proxy')).status).toBe(403);
    expect((await sa.request('GET', `/api/v1/namespaces/${NS}/secrets`)).status).toBe(403);
    expect((await sa.request('POST', '/api/v1/namespaces/team-a/secrets', secret)).status).toBe(403);
    expect((await sa.request('PUT', `/api/v1/namespaces/${NS}/secrets/${NAME}-settings`, secret)).status).toBe(403);
    expect((await sa.request('GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations')).status).toBe(403);
    expect((await sa.request('GET', '/api/v1/namespaces/team-a/pods')).status).toBe(403);
  });

  test('the webhook pod and the helm test pod pass Pod Security "restricted" (checked by the API server)', async () => {
    await cp.api.createNamespace('restricted', { 'pod-security.kubernetes.io/enforce': 'restricted' });
    const dep = await cp.api.must<{ spec: { template: { metadata: object; spec: object } } }>('GET', `/apis/apps/v1/namespaces/${NS}/deployments/${NAME}`);
    const webhookPod = await cp.api.createPod('restricted', { apiVersion: 'v1', kind: 'Pod', metadata: { ...dep.spec.template.metadata, name: 'webhook' }, spec: dep.spec.template.spec }, true);
    expect(webhookPod.text).not.toContain('violates PodSecurity');
    expect(webhookPod.status).toBe(201);

    const rendered = run(['template', 'akto-agent-proxy', CHART, '-n', NS, '--show-only', 'templates/tests/test-injection.yaml']);
    const testPod = parseAllDocuments(rendered).map((d) => d.toJSON()).find((d) => d?.kind === 'Pod');
    const res = await cp.api.createPod('restricted', { ...testPod, metadata: { ...testPod.metadata, namespace: 'restricted' } }, true);
    expect(res.text).not.toContain('violates PodSecurity');
    expect(res.status).toBe(201);

    // The check has teeth: the same pod without its security context is refused.
    const loose = await cp.api.createPod('restricted', { ...testPod, metadata: { name: 'loose' }, spec: { ...testPod.spec, securityContext: {} } }, true);
    expect(loose.status).toBe(403);
    expect((loose.body as unknown as { message: string }).message).toContain('violates PodSecurity "restricted');
  });

  test('upgrade keeps the runtime certificate and caBundle (no churn) and rolls the webhook when its settings change', async () => {
    const before = await cp.api.must<Mwc>('GET', MWC_PATH);
    const secretBefore = await cp.api.must<Obj>('GET', `/api/v1/namespaces/${NS}/secrets/${NAME}-tls`);
    const depBefore = await cp.api.must<{ spec: { template: Obj } }>('GET', `/apis/apps/v1/namespaces/${NS}/deployments/${NAME}`);

    run(['upgrade', 'akto-agent-proxy', CHART, '-n', NS, '--reuse-values', '--set', 'sidecar.logLevel=debug']);

    const after = await cp.api.must<Mwc>('GET', MWC_PATH);
    expect(after.webhooks.map((w) => w.clientConfig.caBundle)).toEqual(before.webhooks.map((w) => w.clientConfig.caBundle));
    expect(after.webhooks[0].clientConfig.caBundle).toBeTruthy();
    expect(after.webhooks.map((w) => w.clientConfig.service)).toEqual(before.webhooks.map((w) => w.clientConfig.service));
    const secretAfter = await cp.api.must<Obj>('GET', `/api/v1/namespaces/${NS}/secrets/${NAME}-tls`);
    expect(secretAfter.metadata.resourceVersion).toBe(secretBefore.metadata.resourceVersion);
    const depAfter = await cp.api.must<{ spec: { template: Obj } }>('GET', `/apis/apps/v1/namespaces/${NS}/deployments/${NAME}`);
    expect(depAfter.spec.template.metadata.annotations?.['checksum/settings']).not.toBe(depBefore.spec.template.metadata.annotations?.['checksum/settings']);
    const settings = await cp.api.must<{ data: Record<string, string> }>('GET', `/api/v1/namespaces/${NS}/configmaps/${NAME}-settings`);
    expect(settings.data['settings.yaml']).toContain('logLevel: debug');

    // An upgrade that changes nothing in the templates changes no certificate-related object either.
    run(['upgrade', 'akto-agent-proxy', CHART, '-n', NS, '--reuse-values']);
    expect((await cp.api.must<Mwc>('GET', MWC_PATH)).webhooks.map((w) => w.clientConfig.caBundle)).toEqual(before.webhooks.map((w) => w.clientConfig.caBundle));
  });

  test('upgrade switches the enforcement policy off and on again, and changes it in place', async () => {
    run(['upgrade', 'akto-agent-proxy', CHART, '-n', NS, '--reuse-values', '--set', 'enforcement.validatingAdmissionPolicy.enabled=false']);
    expect((await cp.api.request('GET', VAP_PATH)).status).toBe(404);
    expect((await cp.api.request('GET', VAP_BINDING_PATH)).status).toBe(404);
    run(['upgrade', 'akto-agent-proxy', CHART, '-n', NS, '--reuse-values', '--set', 'enforcement.validatingAdmissionPolicy.enabled=true',
      '--set', 'enforcement.validatingAdmissionPolicy.validationActions={Warn,Audit}', '--set', 'enforcement.requireCustody=true']);
    const binding = await cp.api.must<{ spec: { validationActions: string[] } }>('GET', VAP_BINDING_PATH);
    expect(binding.spec.validationActions).toEqual(['Warn', 'Audit']);
    const vap = await cp.api.must<{ spec: { validations: Array<{ message?: string }> } }>('GET', VAP_PATH);
    expect(vap.spec.validations.some((v) => v.message?.includes('credential custody is required'))).toBe(true);
  });

  test('uninstall (no --wait) removes the release objects, cluster-scoped ones included', async () => {
    run(['uninstall', 'akto-agent-proxy', '-n', NS]);
    for (const p of [MWC_PATH, `/apis/apps/v1/namespaces/${NS}/deployments/${NAME}`, `/apis/rbac.authorization.k8s.io/v1/clusterroles/${NAME}-cabundle`,
      `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${NAME}-cabundle`, '/api/v1/namespaces/team-a/secrets/akto-agent-proxy',
      `/apis/rbac.authorization.k8s.io/v1/clusterroles/${NAME}-events`, `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${NAME}-events`,
      VAP_PATH, VAP_BINDING_PATH]) {
      expect((await cp.api.request('GET', p)).status).toBe(404);
    }
    expect(run(['list', '-n', NS, '-q'])).toBe('');
  });
});
