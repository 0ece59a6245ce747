/**
 * Gateway mode and shared limits in the Helm chart: rendered by the real helm binary (structure, the env
 * contract the proxy reads, TLS modes, refusals), and installed on a real kube-apiserver (objects only: no
 * kubelet runs the pods).
 */
import path from 'node:path';
import { loadProxyConfig } from '../../proxy/config';
import { redisOptionsFromEnv } from '../../proxy/limits/store';
import { loadSettings } from '../../webhook/settings';
import { ControlPlane, describeIf, findTools, helm, renderChart, renderChartError, type ChartObject } from './harness';

const CHART = path.resolve(__dirname, '../../charts/akto-agent-proxy');
const tools = findTools();

type Obj = ChartObject;

const UPSTREAMS = [
  '--set', 'gateway.enabled=true',
  '--set', 'gateway.upstreams[0].name=hf', '--set', 'gateway.upstreams[0].url=https://x.endpoints.huggingface.cloud', '--set', 'gateway.upstreams[0].port=443',
  '--set', 'gateway.upstreams[0].authorization.secretName=hf-token',
  '--set', 'gateway.upstreams[1].name=vllm', '--set', 'gateway.upstreams[1].url=http://vllm.models:8000/v1', '--set', 'gateway.upstreams[1].port=8000',
  '--set', 'gateway.upstreams[1].authorization.secretName=vllm-key', '--set', 'gateway.upstreams[1].authorization.key=token',
];

const render = (args: string[]): Obj[] => renderChart(tools.helm!, CHART, args, 'agents');
const renderError = (args: string[]): string => renderChartError(tools.helm!, CHART, args);
const gatewayObjects = (objs: Obj[]) => objs.filter((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'gateway' || /gateway|akto-proxy/.test(o.metadata.name));
const one = (objs: Obj[], kind: string, name?: string): Obj => {
  const found = objs.filter((o) => o.kind === kind && (!name || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name ?? ''}, found ${found.length}`);
  return found[0];
};
/** The container env as the proxy would see it, Secret references filled with placeholder values. */
function envOf(container: { env: Array<{ name: string; value?: string; valueFrom?: unknown }> }): Record<string, string> {
  return Object.fromEntries(container.env.map((e) => [e.name, e.value ?? `<from ${JSON.stringify(e.valueFrom)}>`]));
}

describeIf(!!tools.helm, 'helm')('gateway mode in the chart (helm template)', () => {
  test('off by default: no gateway object, and the webhook settings carry empty shared limits', () => {
    const objs = render([]);
    expect(gatewayObjects(objs)).toEqual([]);
    const settings = one(objs, 'ConfigMap', 'rel-akto-agent-proxy-webhook-settings').data['settings.yaml'];
    const s = loadSettings({ WEBHOOK_SETTINGS_FILE: '/s.yaml' }, () => settings);
    expect(s.limits).toEqual({ redisUrl: '', passwordSecretName: '', passwordSecretKey: 'LIMITS_REDIS_PASSWORD', timeoutMs: 5, keyPrefix: 'aap' });
  });

  test('two upstreams: one Service port each, each URL with its own credential, in the env contract the proxy loads', () => {
    const objs = render(UPSTREAMS);
    const dep = one(objs, 'Deployment', 'rel-akto-agent-proxy-gateway');
    const pod = dep.spec.template;
    const c = pod.spec.containers[0];
    const env = envOf(c);
    expect(c.command).toEqual(['node', 'dist/proxy/main.js']);
    expect(env).toMatchObject({ APP_URL: 'https://x.endpoints.huggingface.cloud', APP_URL_1: 'http://vllm.models:8000/v1', UPSTREAMS: '8443=APP_URL,8444=APP_URL_1', LISTEN_HOST: '0.0.0.0' });
    expect(c.env.find((e: { name: string }) => e.name === 'UPSTREAM_AUTHORIZATION').valueFrom).toEqual({ secretKeyRef: { name: 'hf-token', key: 'authorization' } });
    expect(c.env.find((e: { name: string }) => e.name === 'UPSTREAM_AUTHORIZATION_1').valueFrom).toEqual({ secretKeyRef: { name: 'vllm-key', key: 'token' } });
    // The proxy's own loader accepts exactly this env: the listeners forward where the values say.
    const config = loadProxyConfig(env);
    expect(config.listeners.map((l) => [l.port, l.upstream.href])).toEqual([[8443, 'https://x.endpoints.huggingface.cloud/'], [8444, 'http://vllm.models:8000/v1']]);
    expect(config.listenTls).toMatchObject({ certFile: '/etc/akto-agent-proxy/tls/tls.crt', keyFile: '/etc/akto-agent-proxy/tls/tls.key' });

    const svc = one(objs, 'Service', 'akto-proxy');
    expect(svc.metadata.namespace).toBe('agents');
    expect(svc.spec.ports).toEqual([
      { name: 'hf', port: 443, targetPort: 'hf', protocol: 'TCP', appProtocol: 'https' },
      { name: 'vllm', port: 8000, targetPort: 'vllm', protocol: 'TCP', appProtocol: 'https' },
    ]);
    expect(c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort])).toEqual([['hf', 8443], ['vllm', 8444], ['admin', 9090]]);
    expect(svc.spec.selector).toEqual(dep.spec.selector.matchLabels);
  });

  test('restricted pod, never injected, probes on the admin port, HPA on CPU, PDB, spread, policy and Akto Secret beside it', () => {
    const objs = render(UPSTREAMS);
    const dep = one(objs, 'Deployment', 'rel-akto-agent-proxy-gateway');
    const pod = dep.spec.template;
    const c = pod.spec.containers[0];
    expect(pod.metadata.labels['agent-proxy.akto.io/inject']).toBe('false');
    expect(pod.spec.automountServiceAccountToken).toBe(false);
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    for (const p of [c.startupProbe, c.readinessProbe, c.livenessProbe]) expect(p.httpGet.port).toBe('admin');
    expect(dep.spec.replicas).toBeUndefined(); // the HPA owns it
    const hpa = one(objs, 'HorizontalPodAutoscaler');
    expect(hpa.spec).toMatchObject({ scaleTargetRef: { kind: 'Deployment', name: 'rel-akto-agent-proxy-gateway' }, minReplicas: 2, maxReplicas: 10 });
    expect(hpa.spec.metrics[0].resource).toEqual({ name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } });
    expect(c.resources.requests.cpu).toBeDefined();
    expect(one(objs, 'PodDisruptionBudget', 'rel-akto-agent-proxy-gateway').spec.selector.matchLabels).toEqual(dep.spec.selector.matchLabels);
    expect(pod.spec.topologySpreadConstraints.map((t: { topologyKey: string }) => t.topologyKey)).toEqual(['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
    expect(one(objs, 'ConfigMap', 'akto-agent-proxy-policy').metadata.namespace).toBe('agents');
    expect(one(objs, 'Secret', 'akto-agent-proxy').metadata.namespace).toBe('agents');
    const volumes = Object.fromEntries(pod.spec.volumes.map((v: { name: string }) => [v.name, v]));
    expect(volumes.policy.configMap.name).toBe('akto-agent-proxy-policy');
    expect(volumes.tls.secret.secretName).toBe('akto-proxy-tls');
    // One replica without autoscaling: no PDB (it would block every drain).
    const single = render([...UPSTREAMS, '--set', 'gateway.autoscaling.enabled=false', '--set', 'gateway.replicas=1']);
    expect(single.filter((o) => o.kind === 'PodDisruptionBudget' && o.metadata.name.includes('gateway'))).toEqual([]);
    expect(one(single, 'Deployment', 'rel-akto-agent-proxy-gateway').spec.replicas).toBe(1);
  });

  test('TLS: a cert-manager certificate for the seed URL https://akto-proxy.<namespace>.svc, a provided Secret, or plain HTTP when asked', () => {
    const cm = render(UPSTREAMS);
    const cert = one(cm, 'Certificate', 'akto-proxy');
    expect(cert.spec.dnsNames).toEqual(expect.arrayContaining(['akto-proxy.agents.svc', 'akto-proxy.agents.svc.cluster.local']));
    expect(cert.spec.secretName).toBe('akto-proxy-tls');
    expect(cert.spec.issuerRef).toEqual({ name: 'akto-proxy-ca', kind: 'Issuer' });
    const withIssuer = render([...UPSTREAMS, '--set', 'gateway.tls.certManager.issuerRef.name=corp', '--set', 'gateway.tls.certManager.issuerRef.kind=ClusterIssuer']);
    expect(withIssuer.filter((o) => o.kind === 'Issuer')).toEqual([]);
    expect(one(withIssuer, 'Certificate', 'akto-proxy').spec.issuerRef).toEqual({ name: 'corp', kind: 'ClusterIssuer' });

    const provided = render([...UPSTREAMS, '--set', 'gateway.tls.mode=secret', '--set', 'gateway.tls.secretName=my-tls']);
    expect(provided.filter((o) => o.kind === 'Certificate')).toEqual([]);
    expect(one(provided, 'Deployment', 'rel-akto-agent-proxy-gateway').spec.template.spec.volumes.find((v: { name: string }) => v.name === 'tls').secret.secretName).toBe('my-tls');

    const plain = render([...UPSTREAMS, '--set', 'gateway.tls.mode=none']);
    const c = one(plain, 'Deployment', 'rel-akto-agent-proxy-gateway').spec.template.spec.containers[0];
    expect(loadProxyConfig(envOf(c)).listenTls).toBeUndefined();
    expect(c.volumeMounts.map((m: { name: string }) => m.name)).not.toContain('tls');
    expect(one(plain, 'Service', 'akto-proxy').spec.ports[0].appProtocol).toBe('http');
  });

  test('shared limits reach the gateway and, through the webhook settings, every sidecar; the password only by Secret', () => {
    const objs = render([...UPSTREAMS, '--set', 'limits.redisUrl=rediss://redis.infra:6380/1', '--set', 'limits.passwordSecret.name=redis-auth', '--set', 'limits.timeoutMs=8']);
    const c = one(objs, 'Deployment', 'rel-akto-agent-proxy-gateway').spec.template.spec.containers[0];
    const env = envOf(c);
    expect(env).toMatchObject({ LIMITS_REDIS_URL: 'rediss://redis.infra:6380/1', LIMITS_REDIS_TIMEOUT_MS: '8', LIMITS_REDIS_KEY_PREFIX: 'aap' });
    expect(c.env.find((e: { name: string }) => e.name === 'LIMITS_REDIS_PASSWORD').valueFrom).toEqual({ secretKeyRef: { name: 'redis-auth', key: 'LIMITS_REDIS_PASSWORD' } });
    expect(redisOptionsFromEnv(env, 8)).toMatchObject({ host: 'redis.infra', port: 6380, db: 1, tls: { servername: 'redis.infra' } });
    const settings = loadSettings({ WEBHOOK_SETTINGS_FILE: '/s.yaml' }, () => one(objs, 'ConfigMap', 'rel-akto-agent-proxy-webhook-settings').data['settings.yaml']);
    expect(settings.limits).toEqual({ redisUrl: 'rediss://redis.infra:6380/1', passwordSecretName: 'redis-auth', passwordSecretKey: 'LIMITS_REDIS_PASSWORD', timeoutMs: 8, keyPrefix: 'aap' });
  });

  test('the release namespace listed in agentNamespaces gets one policy ConfigMap and one Akto Secret, not two', () => {
    const objs = render([...UPSTREAMS, '--set', 'agentNamespaces={agents,team-b}']);
    expect(objs.filter((o) => o.kind === 'ConfigMap' && o.metadata.name === 'akto-agent-proxy-policy').map((o) => o.metadata.namespace).sort()).toEqual(['agents', 'team-b']);
    expect(objs.filter((o) => o.kind === 'Secret' && o.metadata.name === 'akto-agent-proxy').map((o) => o.metadata.namespace).sort()).toEqual(['agents', 'team-b']);
  });

  test.each([
    ['gateway.enabled needs at least one gateway.upstreams entry', ['--set', 'gateway.enabled=true']],
    ['gateway.tls.mode=secret needs gateway.tls.secretName', [...UPSTREAMS, '--set', 'gateway.tls.mode=secret']],
    ['name "hf" is used twice', [...UPSTREAMS, '--set', 'gateway.upstreams[1].name=hf']],
    ['port 443 is used twice', [...UPSTREAMS, '--set', 'gateway.upstreams[1].port=443']],
    ['gateway.upstreams.0.name', [...UPSTREAMS, '--set', 'gateway.upstreams[0].name=Upstream_One']],
    ['gateway.tls.mode', [...UPSTREAMS, '--set', 'gateway.tls.mode=off']],
    ['limits.redisUrl', ['--set', 'limits.redisUrl=redis://:hunter2@redis:6379']],
  ])('refuses what it cannot serve: %s', (message, args) => {
    expect(renderError(args)).toContain(message);
  });
});

describeIf(!!(tools.apiserver && tools.etcd && tools.helm), [!tools.apiserver && 'kube-apiserver', !tools.etcd && 'etcd', !tools.helm && 'helm'].filter(Boolean).join(', '))('gateway mode installed on a real kube-apiserver', () => {
  jest.setTimeout(180_000);
  let cp: ControlPlane;
  beforeAll(async () => {
    cp = await ControlPlane.start({ apiserver: tools.apiserver!, etcd: tools.etcd! });
  });
  afterAll(async () => {
    await cp?.stop();
  });

  test('the API server accepts every gateway object (Deployment, Service, HPA v2, PDB, policy, Secret); uninstall removes them', async () => {
    const run = (args: string[]): string => helm(tools.helm!, cp.kubeconfig, args);
    // cert-manager is not installed here: mode secret, with the Secret the operator would provide.
    const args = [...UPSTREAMS, '--set', 'gateway.tls.mode=secret', '--set', 'gateway.tls.secretName=gw-tls', '--set', 'limits.redisUrl=redis://redis.infra:6379'];
    expect(run(['install', 'gw', CHART, '-n', 'edge', '--create-namespace', '--dry-run=server', ...args])).toContain('kind: HorizontalPodAutoscaler');
    const notes = run(['install', 'gw', CHART, '-n', 'edge', '--create-namespace', ...args]);
    expect(notes).toContain('https://akto-proxy.edge.svc:443  ->  https://x.endpoints.huggingface.cloud');
    expect(notes).toContain('https://akto-proxy.edge.svc:8000  ->  http://vllm.models:8000/v1');
    const dep = await cp.api.must<{ spec: { template: { spec: { containers: Array<{ env: Array<{ name: string; value?: string }> }> } } } }>('GET', '/apis/apps/v1/namespaces/edge/deployments/gw-akto-agent-proxy-gateway');
    expect(dep.spec.template.spec.containers[0].env.find((e) => e.name === 'UPSTREAMS')?.value).toBe('8443=APP_URL,8444=APP_URL_1');
    for (const p of ['/api/v1/namespaces/edge/services/akto-proxy', '/apis/autoscaling/v2/namespaces/edge/horizontalpodautoscalers/gw-akto-agent-proxy-gateway',
      '/apis/policy/v1/namespaces/edge/poddisruptionbudgets/gw-akto-agent-proxy-gateway', '/api/v1/namespaces/edge/configmaps/akto-agent-proxy-policy', '/api/v1/namespaces/edge/secrets/akto-agent-proxy']) {
      expect((await cp.api.request('GET', p)).status).toBe(200);
    }
    run(['uninstall', 'gw', '-n', 'edge']);
    expect((await cp.api.request('GET', '/api/v1/namespaces/edge/services/akto-proxy')).status).toBe(404);
  });
});
