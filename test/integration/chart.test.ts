/**
 * The Helm chart rendered by the real helm binary (no cluster needed): structure, least privilege, schema
 * rejections, the settings file the webhook loads, GitOps-stable output, and manifests/ kept in sync.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadSettings } from '../../webhook/settings';
import { describeIf, findTools, helm, renderChart, renderChartError, type ChartObject } from './harness';

const ROOT = path.resolve(__dirname, '../..');
const CHART = path.join(ROOT, 'charts/akto-agent-proxy');
const tools = findTools();

type Obj = ChartObject;

const render = (args: string[] = [], ns = 'akto-system'): Obj[] => renderChart(tools.helm!, CHART, args, ns);
const renderError = (args: string[]): string => renderChartError(tools.helm!, CHART, args);

const one = (objs: Obj[], kind: string, name?: string): Obj => {
  const found = objs.filter((o) => o.kind === kind && (!name || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0];
};

describeIf(!!tools.helm, 'helm')('Helm chart (helm template)', () => {
  let defaults: Obj[];
  beforeAll(() => {
    defaults = render();
  });

  test('lints clean in strict mode', () => {
    expect(() => helm(tools.helm!, undefined, ['lint', '--strict', CHART])).not.toThrow();
  });

  test('MutatingWebhookConfiguration: four exclusive entries, short timeout, side effects only off dry runs, system and own namespace excluded', () => {
    const mwc = one(defaults, 'MutatingWebhookConfiguration');
    expect(mwc.webhooks.map((w: { name: string }) => w.name)).toEqual(['namespace', 'object', 'opt-out', 'enforced'].map((n) => `${n}.inject.agent-proxy.akto.io`));
    for (const w of mwc.webhooks) {
      // Events are the one side effect, never on dry runs.
      expect(w).toMatchObject({ sideEffects: 'NoneOnDryRun', admissionReviewVersions: ['v1'] });
      expect(w.timeoutSeconds).toBeLessThanOrEqual(10);
      expect(w.rules).toEqual([{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }]);
      expect(w.clientConfig.service).toEqual({ name: 'rel-akto-agent-proxy-webhook', namespace: 'akto-system', path: w.name.startsWith('enforced.') ? '/mutate/enforced' : '/mutate', port: 443 });
      expect(w.clientConfig.caBundle).toBeUndefined(); // selfManaged: the webhook patches it at runtime
      const byName = w.namespaceSelector.matchExpressions.find((e: { key: string }) => e.key === 'kubernetes.io/metadata.name');
      expect(byName.operator).toBe('NotIn');
      expect(byName.values).toEqual(expect.arrayContaining(['akto-system', 'kube-system']));
    }
    const [ns, obj, optOut, enforced] = mwc.webhooks;
    expect(ns).toMatchObject({ failurePolicy: 'Fail', reinvocationPolicy: 'IfNeeded' });
    expect(ns.namespaceSelector.matchExpressions).toContainEqual({ key: 'agent-proxy.akto.io/injection', operator: 'In', values: ['enabled'] });
    expect(ns.objectSelector.matchExpressions).toEqual([{ key: 'agent-proxy.akto.io/inject', operator: 'NotIn', values: ['false'] }]);
    expect(obj.namespaceSelector.matchExpressions).toContainEqual({ key: 'agent-proxy.akto.io/injection', operator: 'NotIn', values: ['enabled', 'enforced', 'disabled'] });
    expect(obj.objectSelector.matchExpressions).toEqual([{ key: 'agent-proxy.akto.io/inject', operator: 'In', values: ['true'] }]);
    // The opt-out notice never blocks a pod: it only warns and records an Event.
    expect(optOut).toMatchObject({ failurePolicy: 'Ignore', reinvocationPolicy: 'Never' });
    expect(optOut.namespaceSelector.matchExpressions).toContainEqual({ key: 'agent-proxy.akto.io/injection', operator: 'In', values: ['enabled'] });
    expect(optOut.objectSelector.matchExpressions).toEqual([{ key: 'agent-proxy.akto.io/inject', operator: 'In', values: ['false'] }]);
    // Enforced namespaces: every pod, opt-outs included, reaches the webhook.
    expect(enforced).toMatchObject({ failurePolicy: 'Fail', reinvocationPolicy: 'IfNeeded' });
    expect(enforced.namespaceSelector.matchExpressions).toContainEqual({ key: 'agent-proxy.akto.io/injection', operator: 'In', values: ['enforced'] });
    expect(enforced.objectSelector).toBeUndefined();
  });

  test('webhook Deployment: 2 replicas, restricted security context, probes, resources, spread, PDB, never injected itself', () => {
    const dep = one(defaults, 'Deployment');
    const pod = dep.spec.template;
    const c = pod.spec.containers[0];
    expect(dep.spec.replicas).toBe(2);
    expect(c.command).toEqual(['node', 'dist/webhook/main.js']);
    expect(pod.metadata.labels['agent-proxy.akto.io/inject']).toBe('false');
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    expect(c.readinessProbe.httpGet).toMatchObject({ path: '/readyz', scheme: 'HTTPS' });
    expect(c.livenessProbe.httpGet).toMatchObject({ path: '/healthz', scheme: 'HTTPS' });
    expect(c.resources.requests).toBeDefined();
    expect(pod.spec.topologySpreadConstraints.map((t: { topologyKey: string }) => t.topologyKey)).toEqual(['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
    expect(one(defaults, 'PodDisruptionBudget').spec.maxUnavailable).toBe(1);
    expect(render(['--set', 'webhook.replicas=1']).some((o) => o.kind === 'PodDisruptionBudget')).toBe(false);
  });

  test('NetworkPolicy (opt-in): the webhook pods accept ingress on the webhook port only, from the given peers', () => {
    expect(defaults.some((o) => o.kind === 'NetworkPolicy')).toBe(false);
    const objs = render(['--set', 'webhook.networkPolicy.enabled=true', '--set', 'webhook.port=9443', '--set', 'webhook.networkPolicy.from[0].ipBlock.cidr=172.16.0.0/28']);
    const np = one(objs, 'NetworkPolicy');
    const pod = one(objs, 'Deployment').spec.template;
    for (const [k, v] of Object.entries(np.spec.podSelector.matchLabels)) expect(pod.metadata.labels[k]).toBe(v);
    expect(np.spec.policyTypes).toEqual(['Ingress']);
    expect(np.spec.ingress).toEqual([{ ports: [{ port: 9443, protocol: 'TCP' }], from: [{ ipBlock: { cidr: '172.16.0.0/28' } }] }]);
    expect(pod.spec.containers[0].ports[0].containerPort).toBe(9443);
    const open = one(render(['--set', 'webhook.networkPolicy.enabled=true']), 'NetworkPolicy');
    expect(open.spec.ingress).toEqual([{ ports: [{ port: 8443, protocol: 'TCP' }] }]);
  });

  test('RBAC: selfManaged gets only its own Secret and webhook configuration by name, Events only create/patch on events; other cert modes get no certificate RBAC', () => {
    const role = one(defaults, 'Role');
    expect(role.metadata.namespace).toBe('akto-system');
    expect(role.rules).toEqual([
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['rel-akto-agent-proxy-webhook-tls'], verbs: ['get', 'update', 'patch'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
    ]);
    const cr = one(defaults, 'ClusterRole', 'rel-akto-agent-proxy-webhook-cabundle');
    expect(cr.rules).toEqual([{ apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: [one(defaults, 'MutatingWebhookConfiguration').metadata.name], verbs: ['get', 'patch'] }]);
    const events = one(defaults, 'ClusterRole', 'rel-akto-agent-proxy-webhook-events');
    expect(events.rules).toEqual([{ apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] }]);
    expect(one(defaults, 'ClusterRoleBinding', 'rel-akto-agent-proxy-webhook-events').subjects).toEqual([{ kind: 'ServiceAccount', name: 'rel-akto-agent-proxy-webhook', namespace: 'akto-system' }]);
    expect(one(defaults, 'Deployment').spec.template.spec.automountServiceAccountToken).toBe(true);

    const providedArgs = ['--set', 'certs.mode=provided', '--set', 'certs.provided.existingSecret=my-tls', '--set', 'webhook.caBundle=Zm9v'];
    const provided = render(providedArgs);
    expect(provided.filter((o) => /Role/.test(o.kind)).map((o) => o.metadata.name)).toEqual(['rel-akto-agent-proxy-webhook-events', 'rel-akto-agent-proxy-webhook-events']);
    const dep = one(provided, 'Deployment').spec.template.spec;
    expect(dep.automountServiceAccountToken).toBe(true); // nativeSidecar auto asks the API server's version; Events
    const noApi = render([...providedArgs, '--set', 'sidecar.nativeSidecar=always', '--set', 'webhook.events.enabled=false']);
    expect(noApi.filter((o) => /Role/.test(o.kind))).toEqual([]);
    expect(one(noApi, 'Deployment').spec.template.spec.automountServiceAccountToken).toBe(false);
    expect(dep.volumes).toContainEqual({ name: 'tls', secret: { secretName: 'my-tls' } });
    expect(one(provided, 'MutatingWebhookConfiguration').webhooks[0].clientConfig.caBundle).toBe('Zm9v');
  });

  test('certManager mode: Certificate for the service DNS names and CA injection annotation, no certificate RBAC', () => {
    const objs = render(['--set', 'certs.mode=certManager']);
    expect(objs.filter((o) => o.kind === 'Issuer').map((o) => o.metadata.name)).toEqual(['rel-akto-agent-proxy-webhook-ca-selfsign', 'rel-akto-agent-proxy-webhook-ca']);
    expect(render(['--set', 'certs.mode=certManager', '--set', 'certs.certManager.issuerRef.name=corp', '--set', 'certs.certManager.issuerRef.kind=ClusterIssuer']).filter((o) => o.kind === 'Issuer')).toEqual([]);
    const cert = one(objs, 'Certificate', 'rel-akto-agent-proxy-webhook');
    expect(cert.spec.dnsNames).toContain('rel-akto-agent-proxy-webhook.akto-system.svc');
    expect(cert.spec.secretName).toBe('rel-akto-agent-proxy-webhook-tls');
    expect(one(objs, 'MutatingWebhookConfiguration').metadata.annotations?.['cert-manager.io/inject-ca-from']).toBe('akto-system/rel-akto-agent-proxy-webhook');
    expect(objs.filter((o) => /Role/.test(o.kind) && !o.metadata.name.endsWith('-events'))).toEqual([]);
  });

  test('rendering is deterministic and carries no certificate bytes (no churn on upgrade, GitOps-safe)', () => {
    const a = helm(tools.helm!, undefined, ['template', 'rel', CHART, '-n', 'akto-system']);
    const b = helm(tools.helm!, undefined, ['template', 'rel', CHART, '-n', 'akto-system']);
    expect(a).toBe(b);
    expect(a).not.toMatch(/BEGIN (CERTIFICATE|.*PRIVATE KEY)|caBundle:/);
  });

  test('webhook.url registers the webhook by URL instead of the Service', () => {
    const objs = render(['--set', 'webhook.url=https://127.0.0.1:9443/mutate', '--set', 'certs.mode=provided', '--set', 'certs.provided.existingSecret=x', '--set', 'webhook.caBundle=Zm9v']);
    for (const w of one(objs, 'MutatingWebhookConfiguration').webhooks) {
      const url = w.name.startsWith('enforced.') ? 'https://127.0.0.1:9443/mutate/enforced' : 'https://127.0.0.1:9443/mutate';
      expect(w.clientConfig).toEqual({ url, caBundle: 'Zm9v' });
    }
  });

  test('the settings file is accepted by the webhook and names the objects the chart creates', () => {
    const cm = one(defaults, 'ConfigMap', 'rel-akto-agent-proxy-webhook-settings');
    const settings = loadSettings({ WEBHOOK_SETTINGS_FILE: '/settings.yaml' }, () => cm.data['settings.yaml']);
    expect(settings.certs).toMatchObject({
      mode: 'selfManaged',
      secretName: one(defaults, 'Role').rules[0].resourceNames[0],
      webhookConfigName: one(defaults, 'MutatingWebhookConfiguration').metadata.name,
      serviceName: one(defaults, 'Service').metadata.name,
      serviceNamespace: 'akto-system',
    });
    expect(settings.sidecar.image).toBe('akto-agent-proxy:0.1.0');
    expect(settings.excludedNamespaces).toEqual(expect.arrayContaining(['akto-system', 'kube-system']));
    expect(settings.urlEnvVars).toEqual(['AI_AGENT_INFERENCE_URL', 'OPENAI_BASE_URL', 'HF_INFERENCE_ENDPOINT']);
    expect(settings.server.port).toBe(one(defaults, 'Deployment').spec.template.spec.containers[0].ports[0].containerPort);

    const custom = render(['--set', 'sidecar.runAsUser=null', '--set', 'sidecar.nativeSidecar=never', '--set', 'sidecar.annotationErrors=warn', '--set', 'image.repository=reg.example/akto', '--set', 'image.tag=1.2.3']);
    const s2 = loadSettings({ WEBHOOK_SETTINGS_FILE: '/s' }, () => one(custom, 'ConfigMap', 'rel-akto-agent-proxy-webhook-settings').data['settings.yaml']);
    expect(s2.sidecar).toMatchObject({ runAsUser: null, image: 'reg.example/akto:1.2.3' });
    expect(s2).toMatchObject({ nativeSidecar: 'never', annotationErrors: 'warn' });
    expect(settings.upstreamAuthorization).toEqual([]);

    // Each credential stays bound to the env var of its upstream's URL.
    const creds = render(['--set-json', 'sidecar.upstreamAuthorization=[{"envVar":"HF_INFERENCE_ENDPOINT","secretName":"hf-token","key":"token"},{"envVar":"OPENAI_BASE_URL","secretName":"openai","key":"api-key"}]']);
    const s3 = loadSettings({ WEBHOOK_SETTINGS_FILE: '/s' }, () => one(creds, 'ConfigMap', 'rel-akto-agent-proxy-webhook-settings').data['settings.yaml']);
    expect(s3.upstreamAuthorization).toEqual(['HF_INFERENCE_ENDPOINT=hf-token/token', 'OPENAI_BASE_URL=openai/api-key']);
  });

  test('agentNamespaces get the Akto Secret and the policy ConfigMap (pack or inline policy)', () => {
    const objs = render(['--set', 'agentNamespaces={team-a,team-b}', '--set', 'akto.apiBaseUrl=https://akto.example', '--set', 'akto.apiToken=tok-123', '--set', 'policy.pack=strict']);
    const secrets = objs.filter((o) => o.kind === 'Secret');
    expect(secrets.map((s) => s.metadata.namespace)).toEqual(['team-a', 'team-b']);
    expect(Buffer.from(secrets[0].data.AKTO_API_TOKEN, 'base64').toString()).toBe('tok-123');
    const cms = objs.filter((o) => o.kind === 'ConfigMap' && o.metadata.name === 'akto-agent-proxy-policy');
    expect(cms.map((c) => c.metadata.namespace)).toEqual(['team-a', 'team-b']);
    expect(cms[0].data['policy.yaml']).toBe('extends: strict\nversion: 1\n');

    const inline = render(['--set', 'agentNamespaces={a}', '--set-json', 'policy.inline={"version":1,"extends":"monitor","name":"mine"}']);
    expect(one(inline, 'ConfigMap', 'akto-agent-proxy-policy').data['policy.yaml']).toContain('name: mine');
    expect(render(['--set', 'agentNamespaces={a}', '--set', 'akto.existingSecret=mine']).some((o) => o.kind === 'Secret')).toBe(false);

    // A pod cannot start without its ConfigMap: sidecars mount the policy only where the chart (or the user) puts it.
    const policyOf = (objs: Obj[]): unknown => loadSettings({ WEBHOOK_SETTINGS_FILE: '/s' }, () => one(objs, 'ConfigMap', 'rel-akto-agent-proxy-webhook-settings').data['settings.yaml']).policy.configMapName;
    expect(policyOf(defaults)).toBe('');
    expect(policyOf(objs)).toBe('akto-agent-proxy-policy');
    expect(policyOf(render(['--set', 'policy.mountConfigMap=true']))).toBe('akto-agent-proxy-policy');
    expect(policyOf(render(['--set', 'agentNamespaces={a}', '--set', 'policy.mountConfigMap=false']))).toBe('');
  });

  test.each([
    [['--set', 'webhook.failurePolicy=Sometimes'], /webhook.failurePolicy must be one of the following: "Fail", "Ignore"/],
    [['--set', 'webhook.timeoutSeconds=60'], /webhook.timeoutSeconds: Must be less than or equal to 30/],
    [['--set', 'webhook.replicaz=3'], /Additional property replicaz is not allowed/],
    [['--set', 'certs.mode=magic'], /certs.mode must be one of the following/],
    [['--set', 'policy.pack=lenient'], /policy.pack must be one of the following/],
    [['--set', 'sidecar.resources.requests.cpu=lots'], /sidecar.resources.requests.cpu: Does not match pattern/],
    [['--set', 'agentNamespaces={Bad_NS}'], /agentNamespaces.0: Does not match pattern/],
    [['--set', 'certs.mode=provided'], /certs.mode=provided needs certs.provided.existingSecret or both/],
    [['--set', 'certs.mode=provided', '--set', 'certs.provided.existingSecret=x'], /needs webhook.caBundle/],
    [['--set', 'webhook.caBundle=Zm9v'], /webhook.caBundle is only used with certs.mode=provided/],
    [['--set', 'akto.apiToken=t', '--set', 'akto.existingSecret=s'], /either akto.apiToken or akto.existingSecret/],
    // The old single credential for every upstream is gone: it sent one endpoint's token to all of them.
    [['--set', 'sidecar.upstreamAuthorization.secretName=hf-token'], /upstreamAuthorization/],
    [['--set-json', 'sidecar.upstreamAuthorization=[{"secretName":"hf-token","key":"token"}]'], /envVar is required/],
  ])('rejects bad values with a clear message: %j', (args, message) => {
    expect(renderError(args as string[])).toMatch(message);
  });

  test('manifests/ is the chart rendered with default values (run `make manifests` after changing the chart)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'akto-manifests-'));
    try {
      const out = path.join(dir, 'rendered.yaml');
      const res = spawnSync('bash', [path.join(ROOT, 'scripts/render-manifests.sh'), out], { env: { ...process.env, HELM_BIN: tools.helm }, encoding: 'utf8' });
      expect(res.stderr).toContain('wrote');
      expect(readFileSync(path.join(ROOT, 'manifests/akto-agent-proxy.yaml'), 'utf8')).toBe(readFileSync(out, 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('docs/install.md documents every value in values.yaml, and only those', () => {
    const values = parseYaml(readFileSync(path.join(CHART, 'values.yaml'), 'utf8'));
    const wholeObjects = new Set(['resources', 'inline', 'issuerRef', 'podAnnotations', 'podLabels', 'nodeSelector', 'affinity', 'annotations', 'podSelector']);
    const leaves = (o: Record<string, unknown>, prefix = ''): string[] => Object.entries(o).flatMap(([k, v]) =>
      v !== null && typeof v === 'object' && !Array.isArray(v) && !wholeObjects.has(k) ? leaves(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`]);
    const documented = new Set<string>();
    const doc = readFileSync(path.join(ROOT, 'docs/install.md'), 'utf8');
    for (const row of doc.slice(doc.indexOf('## Values')).split('\n').filter((l) => l.startsWith('| `'))) {
      let parent = '';
      for (const [, key] of row.split('|')[1].matchAll(/`([^`]+)`/g)) {
        const full = key.startsWith('.') ? parent + key : key;
        parent = full.slice(0, full.lastIndexOf('.'));
        documented.add(full);
      }
    }
    expect([...documented].sort()).toEqual(leaves(values).sort());
  });
});
