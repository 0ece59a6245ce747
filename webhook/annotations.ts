/**
 * Per-pod annotations, declared once: this table drives parsing, validation, docs/annotations.md
 * (a test checks the doc) and the tests. Values are parsed into typed fields and used structurally;
 * nothing is ever templated into YAML or JSON as text.
 */
import { CREDENTIAL_REF_FORMAT, CredentialRef, parseCredentialRef } from './credentials';
import { QUANTITY } from './settings';

export const PREFIX = 'agent-proxy.akto.io/';
export const INJECT_LABEL = `${PREFIX}inject`;
export const NAMESPACE_LABEL = `${PREFIX}injection`;
export const STATUS_ANNOTATION = `${PREFIX}status`;
/** Every warning and refusal message the webhook writes starts with this. */
export const WARNING_PREFIX = 'agent-proxy.akto.io: ';

export interface PodOverrides {
  envVars?: string[];
  policyPack?: string;
  logLevel?: string;
  cpuRequest?: string;
  cpuLimit?: string;
  memoryRequest?: string;
  memoryLimit?: string;
  port?: number;
  /** The app's port whose name the sidecar's inbound listener takes over: its name, or its number. */
  inboundPort?: string | number;
  nativeSidecar?: boolean;
  upstreamAuthorization?: CredentialRef[];
}

interface AnnotationDecl<K extends keyof PodOverrides = keyof PodOverrides> {
  /** Name after the prefix. */
  name: string;
  field: K;
  type: string;
  example: string;
  doc: string;
  /** Returns the typed value, or throws an Error whose message says what is wrong. */
  parse(value: string): PodOverrides[K];
}

const ENV_NAME = /^[\x21-\x3c\x3e-\x7e]+$/;
/** A container port name (IANA_SVC_NAME; it must also hold a letter and no "--"). */
const PORT_NAME = /^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/;
const MAX_VALUE = 1024;

function quantity(kind: 'cpu' | 'memory') {
  return (v: string): string => {
    if (!QUANTITY.test(v)) throw new Error(`must be a Kubernetes ${kind} quantity like ${kind === 'cpu' ? '100m or 1' : '128Mi or 1Gi'}`);
    return v;
  };
}

export const ANNOTATIONS: readonly AnnotationDecl[] = [
  {
    name: 'env-vars', field: 'envVars', type: 'comma-separated env var names', example: 'OPENAI_BASE_URL,MY_LLM_URL',
    doc: 'Env vars holding inference URLs to rewrite in this pod; replaces the webhook\'s `urlEnvVars` list (in an enforced namespace: adds to it). A var named here may come from `envFrom`: the app gets an explicit entry and the proxy reads the same key of the same source.',
    parse: (v) => {
      const names = v.split(',').map((s) => s.trim()).filter(Boolean);
      if (names.length === 0) throw new Error('must list at least one env var name');
      for (const n of names) if (!ENV_NAME.test(n)) throw new Error(`"${n}" is not a valid env var name`);
      return names;
    },
  },
  {
    name: 'policy-pack', field: 'policyPack', type: 'built-in policy pack name', example: 'strict',
    doc: 'Sets POLICY_PACK on the proxy instead of mounting the policy ConfigMap. In an enforced namespace the packs in `enforcement.refusedPolicyPacks` (default `off`, `monitor`) refuse the pod.',
    parse: (v) => {
      if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(v)) throw new Error('must be a lowercase name of letters, digits and dashes');
      return v;
    },
  },
  {
    name: 'log-level', field: 'logLevel', type: 'trace, debug, info, warn or error', example: 'debug',
    doc: 'LOG_LEVEL of the proxy.',
    parse: (v) => {
      if (!['trace', 'debug', 'info', 'warn', 'error'].includes(v)) throw new Error('must be one of trace, debug, info, warn, error');
      return v;
    },
  },
  { name: 'cpu-request', field: 'cpuRequest', type: 'CPU quantity', example: '100m', doc: 'CPU request of the proxy.', parse: quantity('cpu') },
  { name: 'cpu-limit', field: 'cpuLimit', type: 'CPU quantity', example: '1', doc: 'CPU limit of the proxy.', parse: quantity('cpu') },
  { name: 'memory-request', field: 'memoryRequest', type: 'memory quantity', example: '128Mi', doc: 'Memory request of the proxy.', parse: quantity('memory') },
  { name: 'memory-limit', field: 'memoryLimit', type: 'memory quantity', example: '512Mi', doc: 'Memory limit of the proxy.', parse: quantity('memory') },
  {
    name: 'port', field: 'port', type: 'integer 1024..65535', example: '18080',
    doc: 'First proxy listener port (further upstreams take the next free ports). Must not be the admin port.',
    parse: (v) => {
      if (!/^\d{1,5}$/.test(v)) throw new Error('must be an integer between 1024 and 65535');
      const n = Number(v);
      if (n < 1024 || n > 65535) throw new Error('must be an integer between 1024 and 65535');
      return n;
    },
  },
  {
    name: 'inbound-port', field: 'inboundPort', type: 'name or number of a TCP port the app declares', example: 'http',
    doc: 'Guards the agent\'s own API (end user → proxy → app, [inbound.md](inbound.md)): the sidecar\'s inbound listener (`sidecar.inboundPort`) takes over this port\'s name and the app\'s port loses it, so every Service with `targetPort: <name>` reaches the proxy first; probes on that name are pointed at the app\'s port number. A Service or probe using the number is not redirected (admission warning).',
    parse: (v) => {
      if (/^\d{1,5}$/.test(v)) {
        const n = Number(v);
        if (n < 1 || n > 65535) throw new Error('must be a port name or a number between 1 and 65535');
        return n;
      }
      if (!PORT_NAME.test(v) || !/[a-z]/.test(v) || v.includes('--')) throw new Error('must be a port name (at most 15 lowercase letters, digits and "-") or a port number');
      return v;
    },
  },
  {
    name: 'native-sidecar', field: 'nativeSidecar', type: '"true" or "false"', example: 'false',
    doc: '"true": inject as a native sidecar (init container with restartPolicy Always, Kubernetes >= 1.29); "false": classic sidecar. Overrides the webhook\'s `nativeSidecar` mode.',
    parse: (v) => {
      if (v === 'true') return true;
      if (v === 'false') return false;
      throw new Error('must be "true" or "false"');
    },
  },
  {
    name: 'upstream-authorization', field: 'upstreamAuthorization', type: `comma-separated \`${CREDENTIAL_REF_FORMAT}\``, example: 'HF_INFERENCE_ENDPOINT=hf-token/token',
    doc: 'Credential of the upstream whose URL the app holds in ENV_VAR, from a Secret in the pod\'s namespace; sent as Authorization to that upstream only. Adds to or replaces (per env var) the webhook\'s `upstreamAuthorization` entries.',
    parse: (v) => {
      const refs = v.split(',').map((s) => s.trim()).filter(Boolean).map(parseCredentialRef);
      if (refs.length === 0) throw new Error(`must list at least one ${CREDENTIAL_REF_FORMAT}`);
      const twice = refs.find((r, i) => refs.findIndex((o) => o.envVar === r.envVar) !== i);
      if (twice) throw new Error(`names ${twice.envVar} twice`);
      return refs;
    },
  },
];

export interface AnnotationProblem {
  annotation: string;
  message: string;
}

export interface ParsedAnnotations {
  overrides: PodOverrides;
  errors: AnnotationProblem[];
  /** Our-prefixed annotations nobody declared (typos): reported as warnings, never fatal. */
  unknown: string[];
}

/** Newlines and other control characters are how template injection starts (cf. istio#58889). */
function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

const KNOWN = new Map(ANNOTATIONS.map((d) => [PREFIX + d.name, d]));
const RESERVED = new Set([STATUS_ANNOTATION]);

export function parseAnnotations(annotations: unknown): ParsedAnnotations {
  const overrides: Record<string, unknown> = {};
  const errors: AnnotationProblem[] = [];
  const unknown: string[] = [];
  if (annotations === null || typeof annotations !== 'object' || Array.isArray(annotations)) return { overrides, errors, unknown };
  for (const [key, raw] of Object.entries(annotations as Record<string, unknown>)) {
    if (!key.startsWith(PREFIX) || RESERVED.has(key)) continue;
    const decl = KNOWN.get(key);
    if (!decl) {
      unknown.push(key);
      continue;
    }
    if (typeof raw !== 'string') {
      errors.push({ annotation: key, message: 'must be a string' });
      continue;
    }
    const value = raw.trim();
    if (value.length > MAX_VALUE || hasControlCharacter(value)) {
      errors.push({ annotation: key, message: 'must be a single line of at most 1024 characters' });
      continue;
    }
    try {
      overrides[decl.field] = decl.parse(value);
    } catch (err) {
      errors.push({ annotation: key, message: (err as Error).message });
    }
  }
  return { overrides: overrides as PodOverrides, errors, unknown };
}

/** docs/annotations.md, generated from ANNOTATIONS. */
export function renderAnnotationsDoc(): string {
  const rows = ANNOTATIONS.map((d) => `| \`${PREFIX}${d.name}\` | ${d.type} | \`${d.example}\` | ${d.doc} |`);
  return [
    '# Pod annotations and labels',
    '',
    '<!-- Generated from webhook/annotations.ts; test/unit/webhook/annotations.test.ts fails when this file is stale. -->',
    '',
    'Opt in with the namespace label `' + NAMESPACE_LABEL + '=enabled` or the pod label `' + INJECT_LABEL + ': "true"`.',
    'The pod label `' + INJECT_LABEL + ': "false"` opts a pod out and wins over the namespace label, with an admission',
    'warning, a Kubernetes Event on the pod\'s owner and a log line. In a namespace labelled `' + NAMESPACE_LABEL + '=enforced`',
    'the opt-out is refused unless the chart\'s values exempt the pod (docs/enforcement.md).',
    '',
    'Put these annotations on the **pod template** (`spec.template.metadata.annotations` of a Deployment, Job, ...),',
    'not on the Deployment itself. An invalid value rejects the pod with a message naming the annotation, or, with',
    'the webhook setting `annotationErrors: warn`, is ignored with a warning shown by kubectl. Unknown annotations',
    'under the `' + PREFIX + '` prefix produce a warning (a typo never goes unnoticed).',
    '',
    '| annotation | value | example | effect |',
    '|---|---|---|---|',
    ...rows,
    '',
    'Written by the webhook (do not set): `' + STATUS_ANNOTATION + '` — JSON record of what was injected (sidecar',
    'container, volumes, rewritten env vars with their originals, listeners). On re-invocation the webhook strips',
    'exactly these parts and injects again, so the result is always the same pod.',
    '',
  ].join('\n');
}
