/**
 * Credential custody: once the sidecar holds an upstream's credential, the app containers' own copy
 * of it is replaced by a placeholder, so a (prompt-injected) agent holds nothing that works without
 * the sidecar. Pure over the patch builder: every change is an EnvEdit the status annotation records,
 * so a re-invocation strips and re-applies it like the URL rewrite.
 *
 * What counts as the agent's copy: a variable named in `custody.envVars` (a literal, any valueFrom),
 * any variable read from the Secret key of a bound credential (whatever its name), and the same names
 * where only envFrom could provide them — an explicit env entry wins over envFrom, so one is added.
 */
import type { CredentialRef } from './credentials';
import { JsonObject, PatchBuilder, isJsonObject, pointer } from './patch';
import { SIDECAR_NAME } from './sidecar';
import type { EnvEdit } from './status';

export interface CustodyPlan {
  envVars: readonly string[];
  placeholder: string;
  /** Secret keys holding an upstream credential (settings and the pod's annotation). */
  credentials: readonly CredentialRef[];
  /** URL variables the webhook rewrote: left alone. */
  urlVars: ReadonlySet<string>;
}

export interface CustodyResult {
  edits: EnvEdit[];
  /** Ways a container can still read a credential that custody cannot replace (Secret volumes, a shared process namespace). */
  leaks: string[];
}

const ENV_NAME = /^[\x21-\x3c\x3e-\x7e]+$/;

/**
 * What the status annotation keeps of a replaced literal: never the credential itself (anyone who may read the pod
 * would read it there). A re-invocation restores this marker and replaces it again, so the pod still converges.
 */
export const REDACTED_ORIGINAL = 'redacted-by-akto-proxy-custody';

function recordable(e: JsonObject): JsonObject {
  return typeof e.value === 'string' ? { ...e, value: REDACTED_ORIGINAL } : e;
}

function readsCredential(e: JsonObject, plan: CustodyPlan): boolean {
  const ref = isJsonObject(e.valueFrom) && isJsonObject(e.valueFrom.secretKeyRef) ? e.valueFrom.secretKeyRef : undefined;
  if (!ref) return false;
  return plan.credentials.some((c) => c.secretName === ref.name && c.key === ref.key);
}

function isPlaceholder(e: JsonObject, plan: CustodyPlan): boolean {
  return e.value === plan.placeholder && e.valueFrom === undefined;
}

/** Names only envFrom could give this container that custody must shadow with an explicit entry. */
function shadowedNames(container: JsonObject, explicit: ReadonlySet<string>, plan: CustodyPlan): string[] {
  if (!Array.isArray(container.envFrom)) return [];
  const names = new Set<string>();
  for (const src of container.envFrom) {
    if (!isJsonObject(src)) continue;
    const prefix = typeof src.prefix === 'string' ? src.prefix : '';
    for (const v of plan.envVars) if (v.startsWith(prefix) && v.length > prefix.length) names.add(v);
    const secret = isJsonObject(src.secretRef) ? src.secretRef.name : undefined;
    for (const c of plan.credentials) {
      const name = prefix + c.key;
      if (c.secretName === secret && ENV_NAME.test(name)) names.add(name);
    }
  }
  return [...names].filter((n) => !explicit.has(n) && !plan.urlVars.has(n)).sort();
}

/** Volumes of a credential's Secret, by volume name (any key: the chart's policy checks the same, without items). */
function credentialVolumes(spec: JsonObject, plan: CustodyPlan): Map<string, string> {
  const out = new Map<string, string>();
  const secrets = new Set(plan.credentials.map((c) => c.secretName));
  for (const v of Array.isArray(spec.volumes) ? spec.volumes : []) {
    if (!isJsonObject(v) || typeof v.name !== 'string') continue;
    const names = [isJsonObject(v.secret) ? v.secret.secretName : undefined];
    const sources = isJsonObject(v.projected) && Array.isArray(v.projected.sources) ? v.projected.sources : [];
    for (const s of sources) if (isJsonObject(s) && isJsonObject(s.secret)) names.push(s.secret.name);
    const found = names.find((n): n is string => typeof n === 'string' && secrets.has(n));
    if (found) out.set(v.name, found);
  }
  return out;
}

export function applyCustody(b: PatchBuilder, plan: CustodyPlan): CustodyResult {
  const edits: EnvEdit[] = [];
  const leaks: string[] = [];
  const spec = isJsonObject(b.doc.spec) ? b.doc.spec : {};
  const volumes = credentialVolumes(spec, plan);
  if (spec.shareProcessNamespace === true) {
    leaks.push('the pod shares one process namespace (shareProcessNamespace), so an app container running as the proxy\'s user can read its environment');
  }
  for (const field of ['initContainers', 'containers'] as const) {
    const list = b.get(['spec', field]);
    if (!Array.isArray(list)) continue;
    list.forEach((c, index) => {
      if (!isJsonObject(c) || c.name === SIDECAR_NAME) return;
      const container = typeof c.name === 'string' ? c.name : String(index);
      const init = field === 'initContainers';
      const env = Array.isArray(c.env) ? c.env : [];
      const rewritten = (name: string): JsonObject => ({ name, value: plan.placeholder });
      env.forEach((e, i) => {
        if (!isJsonObject(e) || typeof e.name !== 'string' || plan.urlVars.has(e.name) || isPlaceholder(e, plan)) return;
        if (!plan.envVars.includes(e.name) && !readsCredential(e, plan)) return;
        b.replace(pointer('spec', field, index, 'env', i), rewritten(e.name));
        edits.push({ container, index, init, name: e.name, original: recordable(e), rewritten: rewritten(e.name) });
      });
      const explicit = new Set(env.filter(isJsonObject).map((e) => String(e.name)));
      for (const name of shadowedNames(c, explicit, plan)) {
        b.insert(['spec', field, index, 'env'], 0, rewritten(name));
        edits.push({ container, index, init, name, original: null, rewritten: rewritten(name) });
      }
      for (const m of Array.isArray(c.volumeMounts) ? c.volumeMounts : []) {
        const carried = isJsonObject(m) && typeof m.name === 'string' ? volumes.get(m.name) : undefined;
        if (carried) leaks.push(`container "${container}" mounts volume "${String((m as JsonObject).name)}" of Secret ${carried}, which holds an upstream credential`);
      }
    });
  }
  return { edits, leaks };
}
