import { applyPatch, type Operation } from 'fast-json-patch';
import { inject } from '../../../webhook/inject';
import { loadSettings } from '../../../webhook/settings';

const settings = loadSettings({});
const pod = (labels: Record<string, string> = {}, extra: Record<string, unknown> = {}) => ({
  metadata: { labels, ...extra },
  spec: { containers: [{ name: 'agent', image: 'a', env: [{ name: 'OPENAI_BASE_URL', value: 'https://llm.example.com/v1' }] }] },
});

describe('inject opt-in decisions', () => {
  it('checks the namespace label when the caller knows it', () => {
    expect(inject(pod(), { name: 'a', labels: {} }, settings).reason).toBe('not-opted-in');
    expect(inject(pod(), { name: 'a', labels: { 'agent-proxy.akto.io/injection': 'enabled' } }, settings).status).toBe('injected');
    expect(inject(pod({ 'agent-proxy.akto.io/inject': 'true' }), { name: 'a', labels: {} }, settings).status).toBe('injected');
    expect(inject(pod({ 'agent-proxy.akto.io/inject': 'false' }), { name: 'a', labels: { 'agent-proxy.akto.io/injection': 'enabled' } }, settings).reason).toBe('opted-out');
  });

  it('trusts the webhook selectors when namespace labels are unknown', () => {
    expect(inject(pod(), { name: 'a' }, settings).status).toBe('injected');
  });

  it('never injects the webhook\'s own namespace', () => {
    const s = loadSettings({ POD_NAMESPACE: 'guard' });
    expect(inject(pod({ 'agent-proxy.akto.io/inject': 'true' }), { name: 'guard' }, s).reason).toBe('excluded-namespace');
  });

  it('skips, with a warning, a pod carrying a foreign akto-proxy container or a status it did not write', () => {
    const foreign = pod();
    foreign.spec.containers.push({ name: 'akto-proxy', image: 'x', env: [] });
    const r = inject(foreign, { name: 'a' }, settings);
    expect(r.reason).toBe('sidecar-present');
    expect(r.warnings[0]).toMatch(/akto-proxy/);
    const forged = inject(pod({}, { annotations: { 'agent-proxy.akto.io/status': '{"sidecar":"app"}' } }), { name: 'a' }, settings);
    expect(forged.reason).toBe('invalid-status');
    expect(forged.patch).toEqual([]);
  });

  it('leaves the input untouched and returns targeted ops only', () => {
    const p = pod();
    const before = JSON.stringify(p);
    const r = inject(p, { name: 'a' }, settings);
    expect(JSON.stringify(p)).toBe(before);
    expect(r.patch.map((o) => o.op)).not.toContain('remove');
    expect(r.patch.every((o) => o.path !== '' && o.path !== '/spec' && o.path !== '/spec/containers')).toBe(true);
  });
});

describe('the injected sidecar', () => {
  type Container = { name: string; securityContext: Record<string, unknown>; ports?: Array<Record<string, unknown>>; restartPolicy?: string; startupProbe?: unknown; lifecycle?: Record<string, unknown> };
  function injected(native: boolean) {
    const r = inject(pod(), { name: 'a' }, loadSettings({ POLICY_CONFIGMAP_NAME: 'p' }), { nativeSidecars: native });
    const sidecar = r.patch.find((o) => o.op === 'add' && (o.path === '/spec/containers/0' || o.path === '/spec/initContainers'));
    const value = sidecar && 'value' in sidecar ? sidecar.value : undefined;
    const container = (Array.isArray(value) ? value[0] : value) as unknown as Container;
    const volumes = r.patch.filter((o) => o.path.startsWith('/spec/volumes')).flatMap((o) => ('value' in o ? (Array.isArray(o.value) ? o.value : [o.value]) : [])) as Array<Record<string, unknown>>;
    return { container, volumes };
  }

  it.each([true, false])('passes Pod Security "restricted" (native=%s)', (native) => {
    const { container, volumes } = injected(native);
    const sc = container.securityContext;
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.privileged).toBe(false);
    expect(sc.runAsNonRoot).toBe(true);
    expect(sc.capabilities).toEqual({ drop: ['ALL'] });
    expect(sc.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.runAsUser).not.toBe(0);
    expect(container.ports?.every((p) => p.hostPort === undefined)).toBe(true);
    expect(volumes.map((v) => v.name)).toEqual(['akto-proxy-spool', 'akto-proxy-tmp', 'akto-proxy-policy']);
    for (const v of volumes) expect(Object.keys(v).filter((k) => k !== 'name').every((k) => ['emptyDir', 'configMap', 'secret', 'projected', 'downwardAPI'].includes(k))).toBe(true);
  });

  it('native: restartPolicy Always with a startupProbe; classic: postStart wait and preStop drain', () => {
    const n = injected(true).container;
    expect(n.restartPolicy).toBe('Always');
    expect(n.startupProbe).toBeDefined();
    const c = injected(false).container;
    expect(c.restartPolicy).toBeUndefined();
    expect(Object.keys(c.lifecycle ?? {})).toEqual(['postStart', 'preStop']);
  });
});

describe('annotation inbound-port: the named-port takeover', () => {
  type Port = { name?: string; containerPort: number; protocol?: string };
  const withPorts = (ports: Port[], annotation: string, extra: Record<string, unknown> = {}) => ({
    metadata: { annotations: { 'agent-proxy.akto.io/inbound-port': annotation } },
    spec: { containers: [{ name: 'agent', image: 'a', ports, env: [{ name: 'OPENAI_BASE_URL', value: 'https://llm.example.com/v1' }], ...extra }] },
  });
  const apply = (podIn: unknown, s = settings) => {
    const r = inject(podIn, { name: 'a' }, s);
    type Pod = { spec: { containers: Array<{ name: string; ports?: Port[]; env?: Array<{ name: string; value?: string }> }> } };
    return { r, pod: r.patch.length > 0 ? (applyPatch(structuredClone(podIn), r.patch as Operation[], true, false).newDocument as Pod) : undefined };
  };

  it.each([
    ['a name that is no port name', 'Web_1', 'must be a port name'],
    ['a name without a letter', '8-0', 'must be a port name'],
    ['a port out of range', '70000', 'must be a port name or a number between 1 and 65535'],
    ['a UDP port', 'dns', 'is UDP; the proxy guards HTTP over TCP'],
    ['a port only the sidecar would have', 'akto-admin', 'no app container declares a port named "akto-admin"'],
  ])('refuses %s, naming the annotation', (_what, value, message) => {
    const r = inject(withPorts([{ name: 'http', containerPort: 8000 }, { name: 'dns', containerPort: 53, protocol: 'UDP' }], value), { name: 'a' }, settings);
    expect(r.status).toBe('denied');
    expect(r.message).toContain('agent-proxy.akto.io/inbound-port');
    expect(r.message).toContain(message);
  });

  it('with annotationErrors: warn, an unusable annotation is dropped and the pod injected without the inbound listener', () => {
    const { r, pod } = apply(withPorts([{ name: 'http', containerPort: 8000 }], 'web'), loadSettings({ ANNOTATION_ERRORS: 'warn' }));
    expect(r.status).toBe('injected');
    expect(r.warnings.join('\n')).toMatch(/inbound-port: no app container declares a port named "web"/);
    const sidecar = pod!.spec.containers.find((c) => c.name === 'akto-proxy')!;
    expect(sidecar.env!.some((e) => e.name.startsWith('INBOUND_'))).toBe(false);
    expect(pod!.spec.containers.find((c) => c.name === 'agent')!.ports).toEqual([{ name: 'http', containerPort: 8000 }]);
  });

  it('the name is declared exactly once in the pod, on the sidecar, and the listener port avoids every port in use', () => {
    const s = loadSettings({ SIDECAR_PROXY_PORT: '15081' });
    const { pod } = apply(withPorts([{ name: 'http', containerPort: 15080 }], 'http'), s);
    const named = pod!.spec.containers.flatMap((c) => (c.ports ?? []).filter((p) => p.name === 'http').map((p) => [c.name, p.containerPort]));
    // 15080 is the app, 15081 the egress listener: the inbound listener takes 15082.
    expect(named).toEqual([['akto-proxy', 15082]]);
    const env = Object.fromEntries(pod!.spec.containers[0].env!.map((e) => [e.name, e.value]));
    expect([env.AKTO_PROXY_PORT, env.INBOUND_PORT, env.INBOUND_APP_URL]).toEqual(['15081', '15082', 'http://127.0.0.1:15080']);
  });

  it('settings: the inbound port must differ from the proxy and admin ports', () => {
    expect(() => loadSettings({ SIDECAR_INBOUND_PORT: '9090' })).toThrow('sidecar.inboundPort (env SIDECAR_INBOUND_PORT): must differ from sidecar.adminPort (9090)');
  });
});
