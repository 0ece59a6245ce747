/**
 * The injected proxy container and its volumes, built structurally from typed settings and
 * validated overrides (never from text templates).
 */
import { authorizationVarFor } from '../common/sidecar-env';
import { PodOverrides } from './annotations';
import { CredentialRef } from './credentials';
import type { InboundListener } from './inbound';
import { JsonObject } from './patch';
import { Settings } from './settings';

export const SIDECAR_NAME = 'akto-proxy';
export const VOLUME_SPOOL = 'akto-proxy-spool';
export const VOLUME_TMP = 'akto-proxy-tmp';
export const VOLUME_POLICY = 'akto-proxy-policy';
export const SPOOL_DIR = '/var/lib/akto-agent-proxy/spool';
export const POLICY_DIR = '/etc/akto-agent-proxy/policy';
export const POLICY_FILE = `${POLICY_DIR}/policy.yaml`;
export const PROXY_COMMAND = ['node', 'dist/proxy/main.js'];
export const IMAGE_WORKDIR = '/app';

export interface Listener {
  port: number;
  /** Env var of the sidecar holding this listener's upstream URL. */
  envName: string;
  /** Sidecar env entries: referenced copies first, the URL entry last. */
  entries: JsonObject[];
  /** This upstream's credential, sent to it alone (the proxy's UPSTREAM_AUTHORIZATION* naming rule). */
  credential?: CredentialRef;
}

export interface SidecarPlan {
  native: boolean;
  adminPort: number;
  listeners: Listener[];
  overrides: PodOverrides;
  adminPortName?: string;
  /** The inbound listener, when the pod asks for one (annotation inbound-port). */
  inbound?: InboundListener;
}

/** Waits for the proxy's /readyz before kubelet starts the next container (classic mode). */
function waitReadyScript(adminPort: number, timeoutSeconds: number): string {
  return [
    `const http=require('http');const end=Date.now()+${timeoutSeconds * 1000};`,
    `function poll(){http.get({host:'127.0.0.1',port:${adminPort},path:'/readyz',timeout:1000},`,
    `(r)=>{r.resume();r.statusCode===200?process.exit(0):retry();}).on('timeout',function(){this.destroy();}).on('error',retry);}`,
    `function retry(){if(Date.now()>end)process.exit(1);setTimeout(poll,250);}`,
    'poll();',
  ].join('');
}

function resources(settings: Settings, o: PodOverrides): JsonObject {
  const r = settings.sidecar.resources;
  const pick = (entries: Array<[string, string | undefined, string]>): JsonObject | undefined => {
    const out: JsonObject = {};
    for (const [k, override, fallback] of entries) {
      const v = override ?? fallback;
      if (v) out[k] = v;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  };
  const requests = pick([['cpu', o.cpuRequest, r.requests.cpu], ['memory', o.memoryRequest, r.requests.memory]]);
  const limits = pick([['cpu', o.cpuLimit, r.limits.cpu], ['memory', o.memoryLimit, r.limits.memory]]);
  const out: JsonObject = {};
  if (requests) out.requests = requests;
  if (limits) out.limits = limits;
  return out;
}

function fieldRef(path: string): JsonObject {
  return { valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: path } } };
}

function secretRef(name: string, key: string): JsonObject {
  return { valueFrom: { secretKeyRef: { name, key, optional: true } } };
}

/** Akto inline verdicts, alerts and the model tier: set only when configured, so the proxy's defaults hold otherwise. */
function optionalTiers(settings: Settings): JsonObject[] {
  const env: JsonObject[] = [];
  const a = settings.akto;
  if (a.guardrails !== 'off') {
    env.push(
      { name: 'AKTO_GUARDRAILS', value: a.guardrails },
      { name: 'AKTO_GUARDRAILS_TIMEOUT_MS', value: String(a.guardrailsTimeoutMs) },
      { name: 'AKTO_GUARDRAILS_ON_ERROR', value: a.guardrailsOnError },
      { name: 'AKTO_CONNECTOR', value: a.connector },
    );
  }
  const alerts = settings.alerts;
  if (alerts.secretName) {
    env.push(
      { name: 'ALERT_WEBHOOK_URL', ...secretRef(alerts.secretName, alerts.urlKey) },
      { name: 'ALERT_AUTHORIZATION', ...secretRef(alerts.secretName, alerts.authorizationKey) },
      { name: 'ALERT_FORMAT', value: alerts.format },
      { name: 'ALERT_MIN_SEVERITY', value: alerts.minSeverity },
    );
  }
  if (settings.classifier.url) {
    env.push({ name: 'CLASSIFIER_URL', value: settings.classifier.url }, { name: 'CLASSIFIER_TIMEOUT_MS', value: String(settings.classifier.timeoutMs) });
  }
  return env;
}

export function buildSidecar(settings: Settings, plan: SidecarPlan): JsonObject {
  const s = settings.sidecar;
  const o = plan.overrides;
  const env: JsonObject[] = [];
  for (const l of plan.listeners) {
    env.push(...l.entries.map((e, i) => (i === l.entries.length - 1 ? { name: l.envName, ...e } : e)));
    if (l.credential) env.push({ name: authorizationVarFor(l.envName), valueFrom: { secretKeyRef: { name: l.credential.secretName, key: l.credential.key } } });
  }
  if (plan.listeners.length > 1) env.push({ name: 'UPSTREAMS', value: plan.listeners.map((l) => `${l.port}=${l.envName}`).join(',') });
  env.push(
    { name: 'AKTO_PROXY_PORT', value: String(plan.listeners[0].port) },
    { name: 'LISTEN_HOST', value: '127.0.0.1' },
    { name: 'ADMIN_PORT', value: String(plan.adminPort) },
    // The inbound listener binds INBOUND_HOST's default 0.0.0.0: end users reach it through the pod address.
    ...(plan.inbound ? [{ name: 'INBOUND_PORT', value: String(plan.inbound.listenPort) }, { name: 'INBOUND_APP_URL', value: plan.inbound.appUrl }] : []),
    { name: 'AKTO_API_BASE_URL', ...secretRef(settings.akto.secretName, settings.akto.baseUrlKey) },
    { name: 'AKTO_API_TOKEN', ...secretRef(settings.akto.secretName, settings.akto.tokenKey) },
  );
  env.push(...optionalTiers(settings));
  const l = settings.limits;
  if (l.redisUrl) {
    env.push(
      { name: 'LIMITS_REDIS_URL', value: l.redisUrl },
      { name: 'LIMITS_REDIS_TIMEOUT_MS', value: String(l.timeoutMs) },
      { name: 'LIMITS_REDIS_KEY_PREFIX', value: l.keyPrefix },
    );
    if (l.passwordSecretName) env.push({ name: 'LIMITS_REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: l.passwordSecretName, key: l.passwordSecretKey } } });
  }
  if (o.policyPack) env.push({ name: 'POLICY_PACK', value: o.policyPack });
  else if (settings.policy.configMapName) env.push({ name: 'POLICY_FILE', value: POLICY_FILE });
  env.push(
    { name: 'LOG_LEVEL', value: o.logLevel ?? s.logLevel },
    { name: 'SPOOL_DIR', value: SPOOL_DIR },
    { name: 'POD_NAME', ...fieldRef('metadata.name') },
    { name: 'POD_NAMESPACE', ...fieldRef('metadata.namespace') },
    { name: 'POD_IP', ...fieldRef('status.podIP') },
    { name: 'POD_SERVICE_ACCOUNT', ...fieldRef('spec.serviceAccountName') },
  );

  const mounts: JsonObject[] = [
    { name: VOLUME_SPOOL, mountPath: SPOOL_DIR },
    { name: VOLUME_TMP, mountPath: '/tmp' },
  ];
  if (usesPolicyVolume(settings, o)) mounts.push({ name: VOLUME_POLICY, mountPath: POLICY_DIR, readOnly: true });

  const probe = (path: string, period: number, failures: number): JsonObject => ({
    httpGet: { path, port: plan.adminPort, scheme: 'HTTP' },
    periodSeconds: period,
    timeoutSeconds: 1,
    successThreshold: 1,
    failureThreshold: failures,
  });

  const securityContext: JsonObject = {
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
  if (s.runAsUser !== null) securityContext.runAsUser = s.runAsUser;
  if (s.runAsGroup !== null) securityContext.runAsGroup = s.runAsGroup;

  const container: JsonObject = {
    name: SIDECAR_NAME,
    image: s.image,
    imagePullPolicy: s.imagePullPolicy,
    command: PROXY_COMMAND,
    workingDir: IMAGE_WORKDIR,
  };
  if (plan.native) container.restartPolicy = 'Always';
  container.env = env;
  container.ports = [{ ...(plan.adminPortName ? { name: plan.adminPortName } : {}), containerPort: plan.adminPort, protocol: 'TCP' }];
  if (plan.inbound) container.ports.push(plan.inbound.port);
  container.startupProbe = probe('/readyz', 1, 120);
  container.readinessProbe = probe('/readyz', 5, 3);
  container.livenessProbe = probe('/healthz', 10, 3);
  // Native sidecars stop only after the app has exited, so nothing is left to drain. A classic
  // sidecar is stopped together with the app: stay up while the app finishes its LLM calls, and
  // hold the app back until the proxy is ready.
  if (!plan.native) {
    container.lifecycle = {
      postStart: { exec: { command: ['node', '-e', waitReadyScript(plan.adminPort, 120)] } },
      preStop: { exec: { command: ['node', '-e', `setTimeout(()=>{},${s.drainSeconds * 1000})`] } },
    };
  }
  container.resources = resources(settings, o);
  container.securityContext = securityContext;
  container.volumeMounts = mounts;
  // Fields the API server would default are spelled out, so a reinvocation finds the sidecar unchanged.
  container.terminationMessagePath = '/dev/termination-log';
  container.terminationMessagePolicy = 'FallbackToLogsOnError';
  return container;
}

export function usesPolicyVolume(settings: Settings, o: PodOverrides): boolean {
  return !o.policyPack && settings.policy.configMapName !== '';
}

export function buildVolumes(settings: Settings, o: PodOverrides): JsonObject[] {
  const vols: JsonObject[] = [
    { name: VOLUME_SPOOL, emptyDir: { sizeLimit: settings.sidecar.spoolSizeLimit } },
    { name: VOLUME_TMP, emptyDir: { sizeLimit: '64Mi' } },
  ];
  if (usesPolicyVolume(settings, o)) {
    vols.push({ name: VOLUME_POLICY, configMap: { name: settings.policy.configMapName, items: [{ key: settings.policy.key, path: 'policy.yaml' }] } });
  }
  return vols;
}
