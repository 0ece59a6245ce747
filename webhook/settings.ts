/**
 * The webhook's settings: one declaration table drives loading (mounted file and env),
 * validation (errors name the key and the env var), defaults and the table in docs/webhook.md.
 * The Helm chart fills the file (WEBHOOK_SETTINGS_FILE, YAML or JSON); env wins over the file.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError, Env } from '../common/env';
import pkg from '../package.json';
import { CREDENTIAL_REF, CREDENTIAL_REF_FORMAT } from './credentials';
import { parseSelector } from './selector';

export const WEBHOOK_VERSION: string = pkg.version;

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';
export type NativeSidecarMode = 'auto' | 'always' | 'never';
export type AnnotationErrorMode = 'deny' | 'warn';
export type CertMode = 'selfManaged' | 'provided' | 'certManager';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

export interface Settings {
  sidecar: {
    image: string;
    imagePullPolicy: PullPolicy;
    proxyPort: number;
    adminPort: number;
    /** The inbound listener of pods annotated inbound-port: it takes over the name of the app's port. */
    inboundPort: number;
    /** Numeric uid/gid the sidecar runs as; null leaves them to the platform (OpenShift). */
    runAsUser: number | null;
    runAsGroup: number | null;
    logLevel: LogLevel;
    /** preStop keeps the proxy alive this long so in-flight streams of a stopping app finish. */
    drainSeconds: number;
    spoolSizeLimit: string;
    resources: {
      requests: { cpu: string; memory: string };
      limits: { cpu: string; memory: string };
    };
  };
  akto: {
    secretName: string;
    baseUrlKey: string;
    tokenKey: string;
    /** AKTO_GUARDRAILS and its settings on every sidecar: inline verdicts from Akto. */
    guardrails: 'off' | 'request' | 'both';
    guardrailsTimeoutMs: number;
    guardrailsOnError: 'allow' | 'block';
    connector: string;
  };
  /** ALERT_WEBHOOK_URL (and ALERT_AUTHORIZATION) from a Secret in the pod's namespace; empty name = no alerts. */
  alerts: { secretName: string; urlKey: string; authorizationKey: string; format: 'json' | 'slack'; minSeverity: 'low' | 'medium' | 'high' | 'critical' };
  /** CLASSIFIER_URL of every sidecar (the model tier's Service); empty = heuristic tier only. */
  classifier: { url: string; timeoutMs: number };
  /** Namespaces labelled injection=enforced: who may skip the guard, and what a pod may not do there. */
  enforcement: {
    exemptServiceAccounts: string[];
    /** Label selector in kubectl syntax; empty = no pod is exempt by its labels. */
    exemptPodSelector: string;
    exemptionContact: string;
    refusedPolicyPacks: string[];
    requireCustody: boolean;
  };
  /** The agent's own copy of an upstream credential is replaced by a placeholder (the sidecar holds the real one). */
  custody: { enabled: boolean; envVars: string[]; placeholder: string };
  /** Kubernetes Events on the pod's owner when a pod is skipped, opted out or refused. */
  events: { enabled: boolean; maxPerSecond: number };
  /** `ENV_VAR=secret/key` entries: the credential of the upstream whose URL the app holds in ENV_VAR. */
  upstreamAuthorization: string[];
  /** ConfigMap (in the pod's namespace) mounted as the proxy's policy; empty name = proxy default. */
  policy: { configMapName: string; key: string };
  /** Limits shared through Redis (LIMITS_REDIS_*); empty URL = per-pod limits. The password Secret is in the pod's namespace. */
  limits: { redisUrl: string; passwordSecretName: string; passwordSecretKey: string; timeoutMs: number; keyPrefix: string };
  urlEnvVars: string[];
  excludedNamespaces: string[];
  nativeSidecar: NativeSidecarMode;
  annotationErrors: AnnotationErrorMode;
  certs: {
    mode: CertMode;
    secretName: string;
    webhookConfigName: string;
    serviceName: string;
    serviceNamespace: string;
    caValidityDays: number;
    certValidityDays: number;
    checkIntervalSeconds: number;
  };
  tls: { certFile: string; keyFile: string; reloadIntervalMs: number };
  server: { port: number; drainSeconds: number; maxBodyBytes: number; logLevel: LogLevel };
}

type Kind =
  | { t: 'string'; pattern?: RegExp; allowEmpty?: boolean; expected?: string; check?: (s: string) => void }
  | { t: 'int'; min: number; max: number; nullable?: boolean }
  | { t: 'bool' }
  | { t: 'enum'; values: readonly string[] }
  | { t: 'list'; item?: RegExp }
  | { t: 'quantity'; allowEmpty?: boolean };

export interface SettingDecl {
  /** Dotted path in the settings file and in Settings. */
  key: string;
  env: string;
  kind: Kind;
  default: unknown;
  doc: string;
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
const DNS_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const KEY_NAME = /^[-._a-zA-Z0-9]{1,253}$/;
const ENV_NAME = /^[\x21-\x3c\x3e-\x7e]+$/; // printable ASCII without '=' (Kubernetes >= 1.34 rule)
/** Kubernetes resource quantity (decimal or binary suffix, or exponent). */
export const QUANTITY = /^\+?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$/;
const FILE_PATH = /^\/.*$/;
/** `namespace/name` of a service account. */
const SERVICE_ACCOUNT = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const HTTP_URL = /^https?:\/\/[^\s@/]+(\/[^\s]*)?$/;
const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;

export const SETTINGS: readonly SettingDecl[] = [
  { key: 'sidecar.image', env: 'SIDECAR_IMAGE', kind: { t: 'string', pattern: /^[^\s]+$/ }, default: `akto-agent-proxy:${WEBHOOK_VERSION}`, doc: 'Image of the injected proxy container.' },
  { key: 'sidecar.imagePullPolicy', env: 'SIDECAR_IMAGE_PULL_POLICY', kind: { t: 'enum', values: ['Always', 'IfNotPresent', 'Never'] }, default: 'IfNotPresent', doc: 'Pull policy of the injected container.' },
  { key: 'sidecar.proxyPort', env: 'SIDECAR_PROXY_PORT', kind: { t: 'int', min: 1024, max: 65535 }, default: 8080, doc: 'First proxy listener port on 127.0.0.1; further upstreams get the next free ports.' },
  { key: 'sidecar.inboundPort', env: 'SIDECAR_INBOUND_PORT', kind: { t: 'int', min: 1024, max: 65535 }, default: 15080, doc: 'Port of the proxy\'s inbound listener in pods with annotation `inbound-port` (docs/inbound.md): it takes over the name of the app\'s port, so Services with a named targetPort reach the proxy first. The next free port when the pod uses it.' },
  { key: 'sidecar.adminPort', env: 'SIDECAR_ADMIN_PORT', kind: { t: 'int', min: 1024, max: 65535 }, default: 9090, doc: 'Admin port of the proxy (/healthz, /readyz, /metrics), used by the probes.' },
  { key: 'sidecar.runAsUser', env: 'SIDECAR_RUN_AS_USER', kind: { t: 'int', min: 1, max: 2147483647, nullable: true }, default: 65532, doc: 'uid of the proxy; `null` (env: `none`) lets the platform choose (OpenShift).' },
  { key: 'sidecar.runAsGroup', env: 'SIDECAR_RUN_AS_GROUP', kind: { t: 'int', min: 1, max: 2147483647, nullable: true }, default: 65532, doc: 'gid of the proxy; `null` (env: `none`) lets the platform choose.' },
  { key: 'sidecar.logLevel', env: 'SIDECAR_LOG_LEVEL', kind: { t: 'enum', values: LOG_LEVELS }, default: 'info', doc: 'LOG_LEVEL of the proxy (per-pod annotation `log-level` overrides).' },
  { key: 'sidecar.drainSeconds', env: 'SIDECAR_DRAIN_SECONDS', kind: { t: 'int', min: 0, max: 600 }, default: 10, doc: 'Classic sidecars: preStop wait so the app\'s in-flight LLM calls finish before the proxy gets SIGTERM (native sidecars stop after the app anyway).' },
  { key: 'sidecar.spoolSizeLimit', env: 'SIDECAR_SPOOL_SIZE_LIMIT', kind: { t: 'quantity' }, default: '256Mi', doc: 'sizeLimit of the emptyDir the proxy spools undelivered traces to (SPOOL_DIR).' },
  { key: 'sidecar.resources.requests.cpu', env: 'SIDECAR_CPU_REQUEST', kind: { t: 'quantity', allowEmpty: true }, default: '50m', doc: 'CPU request of the proxy (empty = none).' },
  { key: 'sidecar.resources.requests.memory', env: 'SIDECAR_MEMORY_REQUEST', kind: { t: 'quantity', allowEmpty: true }, default: '64Mi', doc: 'Memory request of the proxy (empty = none).' },
  { key: 'sidecar.resources.limits.cpu', env: 'SIDECAR_CPU_LIMIT', kind: { t: 'quantity', allowEmpty: true }, default: '', doc: 'CPU limit of the proxy (empty = none, avoids throttling on the hot path).' },
  { key: 'sidecar.resources.limits.memory', env: 'SIDECAR_MEMORY_LIMIT', kind: { t: 'quantity', allowEmpty: true }, default: '256Mi', doc: 'Memory limit of the proxy (empty = none).' },
  { key: 'akto.secretName', env: 'AKTO_SECRET_NAME', kind: { t: 'string', pattern: DNS_NAME }, default: 'akto-agent-proxy', doc: 'Secret in the pod\'s namespace with the Akto URL and token (referenced optional: a missing Secret means local trace sink).' },
  { key: 'akto.baseUrlKey', env: 'AKTO_SECRET_BASE_URL_KEY', kind: { t: 'string', pattern: KEY_NAME }, default: 'AKTO_API_BASE_URL', doc: 'Key of that Secret holding AKTO_API_BASE_URL.' },
  { key: 'akto.tokenKey', env: 'AKTO_SECRET_TOKEN_KEY', kind: { t: 'string', pattern: KEY_NAME }, default: 'AKTO_API_TOKEN', doc: 'Key of that Secret holding AKTO_API_TOKEN.' },
  { key: 'akto.guardrails', env: 'SIDECAR_AKTO_GUARDRAILS', kind: { t: 'enum', values: ['off', 'request', 'both'] }, default: 'off', doc: 'AKTO_GUARDRAILS of every sidecar: inline verdicts from Akto\'s guardrails API on requests, or on requests and responses (docs/akto.md).' },
  { key: 'akto.guardrailsTimeoutMs', env: 'SIDECAR_AKTO_GUARDRAILS_TIMEOUT_MS', kind: { t: 'int', min: 50, max: 60000 }, default: 1500, doc: 'AKTO_GUARDRAILS_TIMEOUT_MS: deadline of one Akto verdict.' },
  { key: 'akto.guardrailsOnError', env: 'SIDECAR_AKTO_GUARDRAILS_ON_ERROR', kind: { t: 'enum', values: ['allow', 'block'] }, default: 'allow', doc: 'AKTO_GUARDRAILS_ON_ERROR: what a timeout, 5xx or unreadable verdict means.' },
  { key: 'akto.connector', env: 'SIDECAR_AKTO_CONNECTOR', kind: { t: 'string', pattern: /^[A-Za-z0-9_.-]{1,64}$/, expected: '1-64 letters, digits, "_", "." or "-"' }, default: 'akto-agent-proxy', doc: 'AKTO_CONNECTOR: the connector name Akto files the checks under.' },
  { key: 'alerts.secretName', env: 'SIDECAR_ALERT_SECRET_NAME', kind: { t: 'string', pattern: DNS_NAME, allowEmpty: true }, default: '', doc: 'Secret in the pod\'s namespace holding ALERT_WEBHOOK_URL (the URL is itself a credential for Slack); referenced optional, so a missing Secret means no alerts. Empty = no alerts.' },
  { key: 'alerts.urlKey', env: 'SIDECAR_ALERT_URL_KEY', kind: { t: 'string', pattern: KEY_NAME }, default: 'ALERT_WEBHOOK_URL', doc: 'Key of that Secret holding ALERT_WEBHOOK_URL.' },
  { key: 'alerts.authorizationKey', env: 'SIDECAR_ALERT_AUTHORIZATION_KEY', kind: { t: 'string', pattern: KEY_NAME }, default: 'ALERT_AUTHORIZATION', doc: 'Key of that Secret holding the optional ALERT_AUTHORIZATION header value.' },
  { key: 'alerts.format', env: 'SIDECAR_ALERT_FORMAT', kind: { t: 'enum', values: ['json', 'slack'] }, default: 'json', doc: 'ALERT_FORMAT of every sidecar.' },
  { key: 'alerts.minSeverity', env: 'SIDECAR_ALERT_MIN_SEVERITY', kind: { t: 'enum', values: SEVERITIES }, default: 'medium', doc: 'ALERT_MIN_SEVERITY: incidents and blocks below it are not alerted.' },
  { key: 'classifier.url', env: 'SIDECAR_CLASSIFIER_URL', kind: { t: 'string', pattern: HTTP_URL, allowEmpty: true, expected: 'an http(s) URL without credentials' }, default: '', doc: 'CLASSIFIER_URL of every sidecar: the model tier\'s Service (the chart sets it when `classifier.enabled`); empty = heuristic tier only.' },
  { key: 'classifier.timeoutMs', env: 'SIDECAR_CLASSIFIER_TIMEOUT_MS', kind: { t: 'int', min: 1, max: 60000 }, default: 50, doc: 'CLASSIFIER_TIMEOUT_MS: deadline of one classifier call; each rule\'s on_error decides what a late answer means.' },
  { key: 'upstreamAuthorization', env: 'UPSTREAM_AUTH_SECRETS', kind: { t: 'list', item: CREDENTIAL_REF }, default: [], doc: `Upstream credentials, each bound to the app env var holding that upstream's URL: \`${CREDENTIAL_REF_FORMAT}\` (Secret in the pod's namespace). The proxy sends the value as Authorization to that upstream only (UPSTREAM_AUTHORIZATION for APP_URL, UPSTREAM_AUTHORIZATION_<n> for APP_URL_<n>); per-pod annotation \`upstream-authorization\` adds or replaces entries.` },
  { key: 'policy.configMapName', env: 'POLICY_CONFIGMAP_NAME', kind: { t: 'string', pattern: DNS_NAME, allowEmpty: true }, default: '', doc: 'ConfigMap in the pod\'s namespace mounted as POLICY_FILE; empty = the proxy\'s built-in default policy.' },
  { key: 'policy.key', env: 'POLICY_CONFIGMAP_KEY', kind: { t: 'string', pattern: KEY_NAME }, default: 'policy.yaml', doc: 'Key of that ConfigMap holding the policy document.' },
  { key: 'limits.redisUrl', env: 'SIDECAR_LIMITS_REDIS_URL', kind: { t: 'string', pattern: /^rediss?:\/\/[^\s@/]+(\/\d{1,5})?$/, allowEmpty: true, expected: 'redis://host[:port][/db] or rediss://..., without credentials' }, default: '', doc: 'LIMITS_REDIS_URL of every sidecar: limits shared through this Redis; empty = per-pod limits.' },
  { key: 'limits.passwordSecretName', env: 'SIDECAR_LIMITS_REDIS_SECRET_NAME', kind: { t: 'string', pattern: DNS_NAME, allowEmpty: true }, default: '', doc: 'Secret in the pod\'s namespace with the Redis password (LIMITS_REDIS_PASSWORD); empty = none.' },
  { key: 'limits.passwordSecretKey', env: 'SIDECAR_LIMITS_REDIS_SECRET_KEY', kind: { t: 'string', pattern: KEY_NAME }, default: 'LIMITS_REDIS_PASSWORD', doc: 'Key in that Secret.' },
  { key: 'limits.timeoutMs', env: 'SIDECAR_LIMITS_REDIS_TIMEOUT_MS', kind: { t: 'int', min: 1, max: 10000 }, default: 5, doc: 'LIMITS_REDIS_TIMEOUT_MS: deadline of one limit check; past it each rule applies its on_error.' },
  { key: 'limits.keyPrefix', env: 'SIDECAR_LIMITS_REDIS_KEY_PREFIX', kind: { t: 'string', pattern: /^[A-Za-z0-9_.-]{1,64}$/ }, default: 'aap', doc: 'LIMITS_REDIS_KEY_PREFIX: proxies with the same prefix and rule id share a counter.' },
  { key: 'urlEnvVars', env: 'URL_ENV_VARS', kind: { t: 'list', item: ENV_NAME }, default: ['AI_AGENT_INFERENCE_URL', 'OPENAI_BASE_URL', 'HF_INFERENCE_ENDPOINT'], doc: 'Env vars holding an inference URL to rewrite (per-pod annotation `env-vars` overrides).' },
  { key: 'excludedNamespaces', env: 'EXCLUDED_NAMESPACES', kind: { t: 'list', item: DNS_LABEL }, default: ['kube-system', 'kube-public', 'kube-node-lease'], doc: 'Namespaces never injected; the webhook\'s own namespace is always added.' },
  { key: 'nativeSidecar', env: 'NATIVE_SIDECAR', kind: { t: 'enum', values: ['auto', 'always', 'never'] }, default: 'auto', doc: '`auto`: native sidecar when the API server and every node\'s kubelet are >= 1.29 (API server alone without node list permission), else classic; per-pod annotation `native-sidecar` overrides.' },
  { key: 'enforcement.exemptServiceAccounts', env: 'ENFORCEMENT_EXEMPT_SERVICE_ACCOUNTS', kind: { t: 'list', item: SERVICE_ACCOUNT }, default: [], doc: 'Namespaces labelled `injection=enforced`: pods running as one of these service accounts (`namespace/name`) may opt out or run without the sidecar.' },
  { key: 'enforcement.exemptPodSelector', env: 'ENFORCEMENT_EXEMPT_POD_SELECTOR', kind: { t: 'string', allowEmpty: true, check: (s) => void parseSelector(s) }, default: '', doc: 'Enforced namespaces: pods whose labels match this selector (kubectl syntax: `a=b,c in (d,e),!f`) are exempt too; empty = none.' },
  { key: 'enforcement.exemptionContact', env: 'ENFORCEMENT_EXEMPTION_CONTACT', kind: { t: 'string', pattern: /^[^\r\n]{1,200}$/ }, default: 'the administrators of the akto-agent-proxy Helm release', doc: 'Who may exempt a pod, named in the message that refuses an opt-out.' },
  { key: 'enforcement.refusedPolicyPacks', env: 'ENFORCEMENT_REFUSED_POLICY_PACKS', kind: { t: 'list', item: /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/ }, default: ['off', 'monitor'], doc: 'Enforced namespaces: values of the pod annotation `policy-pack` that are refused (packs that block nothing).' },
  { key: 'enforcement.requireCustody', env: 'ENFORCEMENT_REQUIRE_CUSTODY', kind: { t: 'bool' }, default: false, doc: 'Enforced namespaces: replace the agent\'s credential variables even where no upstream credential is bound (the chart\'s policy then refuses pods that hold one).' },
  { key: 'custody.enabled', env: 'CUSTODY_ENABLED', kind: { t: 'bool' }, default: true, doc: 'When an upstream credential is bound, replace the app containers\' own copy of it with `custody.placeholder`: the variables in `custody.envVars` (plain, `valueFrom` or `envFrom`) and any variable read from the same Secret key.' },
  { key: 'custody.envVars', env: 'CUSTODY_ENV_VARS', kind: { t: 'list', item: ENV_NAME }, default: ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_API_TOKEN', 'HF_AUTHORIZATION', 'OPENAI_API_KEY'], doc: 'Variables that hold an inference credential in the app containers.' },
  { key: 'custody.placeholder', env: 'CUSTODY_PLACEHOLDER', kind: { t: 'string', pattern: /^[\x21-\x7e]{1,200}$/, expected: '1-200 printable characters without spaces' }, default: 'held-by-akto-proxy', doc: 'The non-empty value the app gets instead (SDKs refuse to start without a key; the proxy replaces it with the real credential).' },
  { key: 'events.enabled', env: 'EVENTS_ENABLED', kind: { t: 'bool' }, default: true, doc: 'Kubernetes Events on the pod\'s owner (or the pod) when it is skipped, opted out or refused; needs `create`/`patch` on events.' },
  { key: 'events.maxPerSecond', env: 'EVENTS_MAX_PER_SECOND', kind: { t: 'int', min: 1, max: 100 }, default: 5, doc: 'Event API calls per second at most; repeats of one Event are counted into it, and past 256 pending Events new ones are dropped and counted.' },
  { key: 'annotationErrors', env: 'ANNOTATION_ERRORS', kind: { t: 'enum', values: ['deny', 'warn'] }, default: 'deny', doc: 'Invalid per-pod annotation: `deny` rejects the pod naming the annotation; `warn` ignores it with a warning.' },
  { key: 'certs.mode', env: 'CERT_MODE', kind: { t: 'enum', values: ['selfManaged', 'provided', 'certManager'] }, default: 'provided', doc: '`selfManaged`: the webhook keeps a CA and serving cert in a Secret and patches caBundle (needs the Kubernetes API); `provided`/`certManager`: cert and key from TLS_CERT_FILE/TLS_KEY_FILE.' },
  { key: 'certs.secretName', env: 'CERT_SECRET_NAME', kind: { t: 'string', pattern: DNS_NAME }, default: 'akto-agent-proxy-webhook-tls', doc: 'selfManaged: Secret (in the webhook namespace) holding the CA and serving cert.' },
  { key: 'certs.webhookConfigName', env: 'WEBHOOK_CONFIG_NAME', kind: { t: 'string', pattern: DNS_NAME }, default: 'akto-agent-proxy-webhook', doc: 'selfManaged: MutatingWebhookConfiguration whose caBundle the webhook patches.' },
  { key: 'certs.serviceName', env: 'WEBHOOK_SERVICE_NAME', kind: { t: 'string', pattern: DNS_LABEL }, default: 'akto-agent-proxy-webhook', doc: 'Service name in the serving cert\'s DNS names.' },
  { key: 'certs.serviceNamespace', env: 'WEBHOOK_NAMESPACE', kind: { t: 'string', pattern: DNS_LABEL }, default: 'akto-agent-proxy', doc: 'Namespace of the webhook (POD_NAMESPACE is used when this is unset).' },
  { key: 'certs.caValidityDays', env: 'CERT_CA_VALIDITY_DAYS', kind: { t: 'int', min: 2, max: 36500 }, default: 3650, doc: 'selfManaged: CA lifetime; a new CA is made at 2/3 of it, the old one stays in caBundle.' },
  { key: 'certs.certValidityDays', env: 'CERT_VALIDITY_DAYS', kind: { t: 'int', min: 1, max: 3650 }, default: 30, doc: 'selfManaged: serving cert lifetime; renewed at 2/3 of it.' },
  { key: 'certs.checkIntervalSeconds', env: 'CERT_CHECK_INTERVAL_SECONDS', kind: { t: 'int', min: 1, max: 86400 }, default: 300, doc: 'selfManaged: how often the Secret and caBundle are re-checked.' },
  { key: 'tls.certFile', env: 'TLS_CERT_FILE', kind: { t: 'string', pattern: FILE_PATH, expected: 'an absolute path' }, default: '/etc/akto-agent-proxy-webhook/tls/tls.crt', doc: 'provided/certManager: PEM serving certificate, reloaded on change.' },
  { key: 'tls.keyFile', env: 'TLS_KEY_FILE', kind: { t: 'string', pattern: FILE_PATH, expected: 'an absolute path' }, default: '/etc/akto-agent-proxy-webhook/tls/tls.key', doc: 'provided/certManager: PEM private key, reloaded on change.' },
  { key: 'tls.reloadIntervalMs', env: 'TLS_RELOAD_INTERVAL_MS', kind: { t: 'int', min: 50, max: 3600000 }, default: 5000, doc: 'How often the cert files are checked for changes.' },
  { key: 'server.port', env: 'WEBHOOK_PORT', kind: { t: 'int', min: 1, max: 65535 }, default: 8443, doc: 'HTTPS port of the webhook.' },
  { key: 'server.drainSeconds', env: 'WEBHOOK_DRAIN_SECONDS', kind: { t: 'int', min: 0, max: 300 }, default: 15, doc: 'After SIGTERM: not ready, but keeps serving this long (the API server reuses connections).' },
  { key: 'server.maxBodyBytes', env: 'WEBHOOK_MAX_BODY_BYTES', kind: { t: 'int', min: 1024, max: 64 * 1024 * 1024 }, default: 3 * 1024 * 1024, doc: 'Largest AdmissionReview accepted (413 above).' },
  { key: 'server.logLevel', env: 'LOG_LEVEL', kind: { t: 'enum', values: LOG_LEVELS }, default: 'info', doc: 'Log level of the webhook itself.' },
];

function describe(d: SettingDecl): string {
  return `${d.key} (env ${d.env})`;
}

function validate(d: SettingDecl, raw: unknown, fromEnv: boolean): unknown {
  const where = describe(d);
  const k = d.kind;
  const fail = (problem: string): never => {
    throw new ConfigError(where, problem);
  };
  switch (k.t) {
    case 'string':
    case 'quantity': {
      if (typeof raw !== 'string') fail(`must be a string, got ${typeof raw}`);
      const s = (raw as string).trim();
      if (s === '') return k.allowEmpty ? '' : fail('must not be empty');
      const re = k.t === 'quantity' ? QUANTITY : k.pattern;
      if (re && !re.test(s)) fail(k.t === 'string' && k.expected ? `must be ${k.expected}, got "${s}"` : `has an invalid value "${s}"`);
      if (k.t === 'string' && k.check) {
        try {
          k.check(s);
        } catch (err) {
          fail((err as Error).message);
        }
      }
      return s;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string' && /^(true|false)$/i.test(raw.trim())) return raw.trim().toLowerCase() === 'true';
      return fail(`must be true or false, got ${JSON.stringify(raw)}`);
    }
    case 'int': {
      if (k.nullable && (raw === null || (fromEnv && /^(none|null)$/i.test(String(raw))))) return null;
      let n: number;
      if (typeof raw === 'number') n = raw;
      else if (typeof raw === 'string' && /^-?\d+$/.test(raw.trim())) n = Number(raw.trim());
      else return fail(`must be an integer, got ${JSON.stringify(raw)}`);
      if (!Number.isInteger(n) || n < k.min || n > k.max) fail(`must be an integer between ${k.min} and ${k.max}, got ${n}`);
      return n;
    }
    case 'enum': {
      if (typeof raw !== 'string') return fail(`must be one of ${k.values.join(', ')}`);
      const match = k.values.find((v) => v.toLowerCase() === raw.trim().toLowerCase());
      if (match === undefined) fail(`must be one of ${k.values.join(', ')}, got "${raw}"`);
      return match;
    }
    case 'list': {
      let items: unknown[];
      if (typeof raw === 'string') items = raw.split(',').map((s) => s.trim()).filter(Boolean);
      else if (Array.isArray(raw)) items = raw;
      else return fail('must be a list (array, or a comma-separated string)');
      return items.map((item, i) => {
        if (typeof item !== 'string' || item.trim() === '') fail(`item ${i} must be a non-empty string`);
        const s = (item as string).trim();
        if (k.item && !k.item.test(s)) fail(`item ${i} has an invalid value "${s}"`);
        return s;
      });
    }
  }
}

function getPath(obj: Record<string, unknown>, key: string): unknown {
  let cur: unknown = obj;
  for (const part of key.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function setPath(obj: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let cur = obj;
  for (const part of parts.slice(0, -1)) {
    cur[part] ??= {};
    cur = cur[part] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]] = value;
}

/** Keys present in the file that no declaration knows: reported, so a typo never goes unnoticed. */
function unknownKeys(obj: unknown, prefix = ''): string[] {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (SETTINGS.some((d) => d.key === key)) continue;
    if (SETTINGS.some((d) => d.key.startsWith(`${key}.`))) out.push(...unknownKeys(v, key));
    else out.push(key);
  }
  return out;
}

export function parseSettingsFile(text: string, fileName: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(text); // YAML is a superset of JSON
  } catch (err) {
    throw new ConfigError('WEBHOOK_SETTINGS_FILE', `${fileName} is not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError('WEBHOOK_SETTINGS_FILE', `${fileName} must hold a mapping of settings`);
  const unknown = unknownKeys(doc);
  if (unknown.length > 0) throw new ConfigError('WEBHOOK_SETTINGS_FILE', `${fileName} has unknown key(s): ${unknown.join(', ')}`);
  return doc as Record<string, unknown>;
}

/**
 * Settings from defaults, then the file named by WEBHOOK_SETTINGS_FILE, then env.
 * Throws ConfigError naming the key and env var of the first bad value.
 */
export function loadSettings(env: Env = process.env, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): Settings {
  let file: Record<string, unknown> = {};
  const fileName = env.WEBHOOK_SETTINGS_FILE?.trim();
  if (fileName) {
    let text: string;
    try {
      text = readFile(fileName);
    } catch (err) {
      throw new ConfigError('WEBHOOK_SETTINGS_FILE', `cannot read ${fileName}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    file = parseSettingsFile(text, fileName);
  }
  const out: Record<string, unknown> = {};
  for (const d of SETTINGS) {
    const envValue = env[d.env];
    let value: unknown = structuredClone(d.default);
    if (envValue !== undefined && envValue.trim() !== '') value = validate(d, envValue, true);
    else {
      const fromFile = getPath(file, d.key);
      if (fromFile !== undefined) value = validate(d, fromFile, false);
    }
    setPath(out, d.key, value);
  }
  const settings = out as unknown as Settings;
  if (!env.WEBHOOK_NAMESPACE?.trim() && getPath(file, 'certs.serviceNamespace') === undefined && env.POD_NAMESPACE?.trim()) {
    settings.certs.serviceNamespace = validate(SETTINGS.find((d) => d.key === 'certs.serviceNamespace')!, env.POD_NAMESPACE, true) as string;
  }
  return checkConsistency(settings);
}

function checkConsistency(s: Settings): Settings {
  if (s.sidecar.proxyPort === s.sidecar.adminPort) {
    throw new ConfigError('sidecar.adminPort (env SIDECAR_ADMIN_PORT)', `must differ from sidecar.proxyPort (${s.sidecar.proxyPort})`);
  }
  for (const [key, port] of [['proxyPort', s.sidecar.proxyPort], ['adminPort', s.sidecar.adminPort]] as const) {
    if (s.sidecar.inboundPort === port) throw new ConfigError('sidecar.inboundPort (env SIDECAR_INBOUND_PORT)', `must differ from sidecar.${key} (${port})`);
  }
  if (!s.excludedNamespaces.includes(s.certs.serviceNamespace)) s.excludedNamespaces.push(s.certs.serviceNamespace);
  const both = s.custody.envVars.find((v) => s.urlEnvVars.includes(v));
  if (both) throw new ConfigError('custody.envVars (env CUSTODY_ENV_VARS)', `${both} is also in urlEnvVars: a variable holds a URL or a credential, not both`);
  return s;
}

/** Defaults only (what `node dist/webhook/main.js` uses with no settings). */
export function defaultSettings(): Settings {
  return loadSettings({}, () => '');
}

/** The markdown table of docs/webhook.md, generated from SETTINGS (a test keeps the doc in sync). */
export function renderSettingsTable(): string {
  const rows = SETTINGS.map((d) => {
    const text = Array.isArray(d.default) ? d.default.join(', ') : String(d.default);
    const def = text === '' ? '(empty)' : text;
    return `| \`${d.key}\` | \`${d.env}\` | ${kindText(d.kind)} | \`${def}\` | ${d.doc} |`;
  });
  return ['| key (file) | env | type | default | meaning |', '|---|---|---|---|---|', ...rows].join('\n');
}

function kindText(k: Kind): string {
  switch (k.t) {
    case 'string': return 'string';
    case 'quantity': return 'quantity';
    case 'int': return `int ${k.min}..${k.max}${k.nullable ? ' or null' : ''}`;
    case 'bool': return 'bool';
    case 'enum': return k.values.join(' \\| ');
    case 'list': return 'list';
  }
}
