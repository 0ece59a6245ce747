/**
 * The contract between the webhook and the proxy: every sidecar a golden case injects must start
 * (loadProxyConfig accepts its env as the kubelet would resolve it), and each listener must carry
 * exactly the credential the webhook bound to that upstream's URL variable.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadProxyConfig } from '../../../proxy/config';
import { loadAktoGuardrailsConfig } from '../../../proxy/akto/config';
import { loadAlertConfig } from '../../../proxy/alerts/config';
import { parseHttpUrl } from '../../../common/env';
import { AUTHORIZATION_PREFIX, URL_VAR } from '../../../common/sidecar-env';
import { PROXY_ENV } from '../../../proxy/env';

const expectedDir = join(__dirname, '../../fixtures/webhook/expected');

type EnvEntry = { name: string; value?: string; valueFrom?: Record<string, { name?: string; key?: string; fieldPath?: string }> };
type Container = { name: string; env?: EnvEntry[] };

/** What the kubelet would hand the process: valueFrom resolved to recognisable stand-ins, `$(VAR)` expanded. */
function resolveEnv(entries: EnvEntry[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of entries) {
    if (e.value !== undefined) {
      env[e.name] = e.value.replace(/\$\$|\$\(([^)]*)\)/g, (m, name: string | undefined) => (name === undefined ? '$' : env[name] ?? m));
      continue;
    }
    const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
    if (!ref) env[e.name] = 'from-field-ref';
    else if (/^APP_URL|_URL$/.test(e.name)) env[e.name] = `https://${ref.name}.example/${ref.key}`;
    else if (/^UPSTREAM_AUTHORIZATION/.test(e.name)) env[e.name] = `secret:${ref.name}/${ref.key}`;
    else env[e.name] = `${ref.name}-${ref.key}`.toLowerCase().replace(/[^a-z0-9-]/g, '-'); // a piece of a URL
  }
  return env;
}

function sidecarOf(pod: { spec: { containers?: Container[]; initContainers?: Container[] } }): Container | undefined {
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers ?? []].find((c) => c.name === 'akto-proxy');
}

const cases = readdirSync(expectedDir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => [f.replace(/\.json$/, ''), JSON.parse(readFileSync(join(expectedDir, f), 'utf8'))] as const)
  .filter(([, golden]) => golden.result === 'injected');

describe('the injected sidecar env is a configuration the proxy accepts', () => {
  it('covers the goldens that inject, including several upstreams with credentials', () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
    expect(cases.map(([name]) => name)).toEqual(expect.arrayContaining(['credentials-per-upstream', 'credential-one-upstream', 'two-different-urls']));
  });

  it.each(cases)('%s', (_name, golden) => {
    const sidecar = sidecarOf(golden.pod);
    expect(sidecar).toBeDefined();
    const entries = sidecar!.env ?? [];
    const config = loadProxyConfig(resolveEnv(entries));
    const declared = new Map(entries.map((e) => [e.name, e]));
    for (const l of config.listeners) {
      // The inbound listener has no credential variable: it never sends one to the agent app.
      const credential = l.authorizationVar === undefined ? undefined : declared.get(l.authorizationVar)?.valueFrom?.secretKeyRef;
      expect(l.authorization).toBe(credential ? `secret:${credential.name}/${credential.key}` : undefined);
    }
    // The optional tiers the settings switch on start too.
    const env = resolveEnv(entries);
    expect(loadAktoGuardrailsConfig(env, 'test')?.mode).toBe(env.AKTO_GUARDRAILS);
    expect(loadAlertConfig(env)?.format).toBe(env.ALERT_WEBHOOK_URL ? env.ALERT_FORMAT : undefined);
    if (env.CLASSIFIER_URL) expect(parseHttpUrl('CLASSIFIER_URL', env.CLASSIFIER_URL).port).toBe('8090');
  });

  it('sets only variables the proxy declares (PROXY_ENV), so none is silently ignored', () => {
    const declared = new Set(PROXY_ENV.map((v) => v.name));
    const entries = cases.flatMap(([, golden]) => sidecarOf(golden.pod)?.env ?? []);
    // Variables that only feed the kubelet's `$(VAR)` expansion of another entry are not read by the proxy.
    const expansionOnly = new Set(entries.flatMap((e) => [...(e.value ?? '').matchAll(/(?<!\$)\$\(([^)]*)\)/g)].map((m) => m[1])));
    const set = new Set(entries.map((e) => e.name).filter((name) => !expansionOnly.has(name)));
    expect(set.size).toBeGreaterThan(20);
    expect([...set].filter((name) => !declared.has(name) && !URL_VAR.test(name) && !name.startsWith(AUTHORIZATION_PREFIX))).toEqual([]);
  });

  it('the optional tiers reach the sidecar when the settings turn them on', () => {
    const golden = cases.find(([name]) => name === 'sidecar-optional-tiers')![1];
    const env = resolveEnv(sidecarOf(golden.pod)!.env ?? []);
    expect(env).toMatchObject({
      AKTO_GUARDRAILS: 'both', AKTO_GUARDRAILS_TIMEOUT_MS: '800', AKTO_GUARDRAILS_ON_ERROR: 'block', AKTO_CONNECTOR: 'team-a',
      ALERT_FORMAT: 'slack', ALERT_MIN_SEVERITY: 'high', CLASSIFIER_URL: 'http://akto-classifier.akto-system.svc:8090', CLASSIFIER_TIMEOUT_MS: '40',
    });
    expect(loadAlertConfig(env)?.url.hostname).toBe('akto-alerts.example');
  });
});
