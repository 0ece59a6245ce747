/**
 * Property test over random pods (seeded, bounded): inject never throws, its patch always applies
 * with fast-json-patch, the second call changes nothing, and no user container is lost.
 */
import { applyPatch, Operation } from 'fast-json-patch';
import { inject } from '../../../webhook/inject';
import { PREFIX } from '../../../webhook/annotations';
import { loadSettings } from '../../../webhook/settings';

function prng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const chance = (p: number) => next() < p;
  return { int, pick, chance };
}

type R = ReturnType<typeof prng>;
const VARS = ['AI_AGENT_INFERENCE_URL', 'OPENAI_BASE_URL', 'HF_INFERENCE_ENDPOINT', 'BASE', 'OTHER', 'a/b~c'];
const URLS = ['https://a.example.com/v1', 'https://b.example.com', 'http://127.0.0.1:8080', 'http://localhost', '', '$(BASE)/v1', '$$(BASE)', 'https://a.example.com/v1'];

function envEntry(r: R): unknown {
  const name = r.pick(VARS);
  switch (r.int(7)) {
    case 0: return { name, valueFrom: { secretKeyRef: { name: 's', key: r.pick(['k', 'url']) } } };
    case 1: return { name, valueFrom: { configMapKeyRef: { name: 'c', key: 'k' } } };
    case 2: return { name, valueFrom: r.pick([{ fieldRef: { fieldPath: 'metadata.name' } }, { resourceFieldRef: { resource: 'limits.cpu' } }, {}]) };
    case 3: return r.pick([{ name }, 'garbage', null, { value: 'no-name' }, { name, value: 5 }]);
    default: return { name, value: r.pick(URLS) };
  }
}

function container(r: R, i: number): unknown {
  const c: Record<string, unknown> = { name: r.pick(['agent', 'worker', 'akto-proxy-x', `c${i}`]) + (r.chance(0.5) ? `-${i}` : ''), image: 'img' };
  if (r.chance(0.8)) c.env = Array.from({ length: r.int(6) }, () => envEntry(r));
  if (r.chance(0.3)) c.envFrom = [r.pick([{ configMapRef: { name: 'cm' } }, { secretRef: { name: 's', optional: true }, prefix: 'OPENAI_' }, { bogus: 1 }])];
  if (r.chance(0.3)) c.ports = [{ containerPort: r.pick([8080, 8081, 9090, 3000, 65535]) }, { containerPort: r.pick([8082, 9091]), name: r.pick(['akto-admin', 'http']) }];
  return c;
}

function annotations(r: R): Record<string, unknown> | undefined {
  if (r.chance(0.3)) return undefined;
  const a: Record<string, unknown> = {};
  const n = r.int(4);
  for (let i = 0; i < n; i++) {
    const key = PREFIX + r.pick(['env-vars', 'port', 'native-sidecar', 'log-level', 'memory-limit', 'policy-pack', 'bogus', 'status']);
    a[key] = r.pick(['OPENAI_BASE_URL,BASE', 'a/b~c', '18080', '9090', '8080', 'true', 'false', 'debug', '1Gi\nx', 'strict', '{"sidecar":1}', '{}', 'not json', 7]);
  }
  if (r.chance(0.3)) a['example.com/x~y'] = 'v';
  return a;
}

function pod(r: R): unknown {
  if (r.chance(0.02)) return r.pick([null, 'pod', [], { spec: null }, { spec: { containers: [] } }]);
  const spec: Record<string, unknown> = { containers: Array.from({ length: 1 + r.int(4) }, (_, i) => container(r, i)) };
  if (r.chance(0.3)) spec.initContainers = Array.from({ length: 1 + r.int(2) }, (_, i) => container(r, i + 10));
  if (r.chance(0.05)) spec.hostNetwork = true;
  if (r.chance(0.2)) spec.volumes = [{ name: r.pick(['data', 'akto-proxy-tmp']), emptyDir: {} }];
  const metadata: Record<string, unknown> = {};
  if (r.chance(0.8)) metadata.labels = r.chance(0.2) ? { [`${PREFIX}inject`]: r.pick(['true', 'false']) } : { app: 'x' };
  const a = annotations(r);
  if (a) metadata.annotations = a;
  return r.chance(0.1) ? { spec } : { metadata, spec };
}

describe('inject on random pods', () => {
  it('never throws, the patch applies, and a second call changes nothing', () => {
    const r = prng(20261126);
    const settingsVariants = [
      loadSettings({}),
      loadSettings({ NATIVE_SIDECAR: 'always', ANNOTATION_ERRORS: 'warn', POLICY_CONFIGMAP_NAME: 'p' }),
      loadSettings({ NATIVE_SIDECAR: 'never', URL_ENV_VARS: 'OPENAI_BASE_URL,a/b~c', SIDECAR_RUN_AS_USER: 'none' }),
    ];
    const deadline = Date.now() + 15_000;
    let cases = 0;
    const outcomes: Record<string, number> = {};
    for (; cases < 3000 && Date.now() < deadline; cases++) {
      const p = pod(r);
      const settings = r.pick(settingsVariants);
      const cluster = { nativeSidecars: r.chance(0.5) };
      const ns = { name: r.pick(['agents', 'kube-system', 'agents']) };
      const snapshot = JSON.stringify(p);
      const first = inject(p, ns, settings, cluster);
      expect(JSON.stringify(p)).toBe(snapshot); // the input is never mutated
      outcomes[first.status] = (outcomes[first.status] ?? 0) + 1;
      if (first.patch.length === 0) continue;
      const patched = applyPatch(structuredClone(p), structuredClone(first.patch) as Operation[], true, false).newDocument as { spec: { containers: Array<{ name: string }> } };
      const before = (p as { spec: { containers: Array<{ name: string }> } }).spec.containers.map((c) => c.name);
      const after = patched.spec.containers.map((c) => c.name);
      for (const name of before) expect(after).toContain(name);
      const second = inject(patched, ns, settings, cluster);
      if (second.patch.length !== 0) throw new Error(`not idempotent for pod ${snapshot}: ${JSON.stringify(second.patch)}`);
    }
    expect(cases).toBeGreaterThanOrEqual(1000);
    expect(outcomes.injected).toBeGreaterThan(100);
    expect(outcomes.skipped).toBeGreaterThan(50);
  });
});
