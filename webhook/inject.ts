/**
 * The injection decision and patch: a pure function over the raw pod JSON. It strips anything a
 * previous call injected (per the status annotation), injects again, and returns targeted JSON
 * Patch ops, or no ops when the pod is already in the wanted state.
 */
import { INJECT_LABEL, NAMESPACE_LABEL, PREFIX, PodOverrides, STATUS_ANNOTATION, WARNING_PREFIX, parseAnnotations, AnnotationProblem } from './annotations';
import { JsonObject, JsonValue, PatchBuilder, PatchOp, isJsonObject as isObject, jsonEqual, pointer } from './patch';
import { Listener, SIDECAR_NAME, VOLUME_POLICY, VOLUME_SPOOL, VOLUME_TMP, buildSidecar, buildVolumes } from './sidecar';
import { Settings, WEBHOOK_VERSION } from './settings';
import { DEFAULT_CONTAINER_ANNOTATION, EnvEdit, InjectionStatus, readStatus, strip } from './status';
import { UpstreamSource, discover, renameRefs } from './upstreams';
import { CredentialRef, chooseCredential, credentialsByVar } from './credentials';
import { applyCustody } from './custody';
import { Posture, enforce, postureOf } from './enforcement';
import { InboundListener, InboundStatus, checkInboundPort, takeInboundPort } from './inbound';

export interface NamespaceInfo {
  name: string;
  /** When known, opt-in is checked here too; when undefined the webhook's selectors decided. */
  labels?: Record<string, string>;
  /** Labelled injection=enforced (the webhook entry for those namespaces calls /mutate/enforced). */
  enforced?: boolean;
}

export interface ClusterInfo {
  /** The cluster runs native sidecars (Kubernetes >= 1.29); decides `nativeSidecar: auto`. */
  nativeSidecars: boolean;
}

export type InjectOutcome = 'injected' | 'unchanged' | 'skipped' | 'denied';

export interface InjectResult {
  status: InjectOutcome;
  patch: PatchOp[];
  warnings: string[];
  /** Machine-readable reason (metrics label), set for every outcome. */
  reason: string;
  /** Why the pod was skipped, in words (also in warnings when the user should hear it). */
  skipped?: string;
  /** Denial message naming every bad annotation. */
  message?: string;
  /** HTTP status of a denial (400 by default). */
  code?: number;
  /** Ways around the sidecar left in the pod: URL variables not rewritten (loopback, unproxiable, classic
   * init containers) and, where custody is required, credentials it cannot replace. */
  bypasses?: string[];
}

const WARN = WARNING_PREFIX;
const OUR_VOLUMES = [VOLUME_SPOOL, VOLUME_TMP, VOLUME_POLICY];

function stringMap(v: JsonValue | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (isObject(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

function skip(reason: string, text: string, warn: boolean, warnings: string[] = [], patch: PatchOp[] = []): InjectResult {
  return { status: 'skipped', reason, skipped: text, patch, warnings: warn ? [...warnings, WARN + text] : warnings };
}

function containersOf(pod: JsonObject, field: 'containers' | 'initContainers'): JsonObject[] {
  const spec = pod.spec;
  if (!isObject(spec) || !Array.isArray(spec[field])) return [];
  return (spec[field] as JsonValue[]).filter(isObject);
}

function usedPorts(pod: JsonObject): Map<number, string> {
  const used = new Map<number, string>();
  for (const c of [...containersOf(pod, 'initContainers'), ...containersOf(pod, 'containers')]) {
    if (!Array.isArray(c.ports)) continue;
    for (const p of c.ports) if (isObject(p) && typeof p.containerPort === 'number') used.set(p.containerPort, String(c.name));
  }
  return used;
}

function portNames(pod: JsonObject): Set<string> {
  const names = new Set<string>();
  for (const c of [...containersOf(pod, 'initContainers'), ...containersOf(pod, 'containers')]) {
    if (Array.isArray(c.ports)) for (const p of c.ports) if (isObject(p) && typeof p.name === 'string') names.add(p.name);
  }
  return names;
}

function isJobPod(pod: JsonObject): boolean {
  const meta = isObject(pod.metadata) ? pod.metadata : {};
  const labels = stringMap(meta.labels);
  if ('batch.kubernetes.io/job-name' in labels || 'job-name' in labels) return true;
  return Array.isArray(meta.ownerReferences) && meta.ownerReferences.some((o) => isObject(o) && o.kind === 'Job');
}

export function podName(pod: JsonObject): string {
  const meta = isObject(pod.metadata) ? pod.metadata : {};
  return typeof meta.name === 'string' ? meta.name : typeof meta.generateName === 'string' ? `${meta.generateName}*` : '(unnamed)';
}

interface Target {
  field: 'containers' | 'initContainers';
  index: number;
  container: string;
  varName: string;
  source: UpstreamSource;
}

/** Opt-in and exclusion rules that need nothing but the pod and its namespace. */
function gate(pod: JsonObject, namespace: NamespaceInfo, settings: Settings): InjectResult | undefined {
  const meta = isObject(pod.metadata) ? pod.metadata : {};
  const podLabel = stringMap(meta.labels)[INJECT_LABEL];
  if (podLabel === 'false') return skip('opted-out', `pod label ${INJECT_LABEL}="false": this pod runs without the guardrail proxy`, true);
  if (settings.excludedNamespaces.includes(namespace.name)) {
    return skip('excluded-namespace', `namespace "${namespace.name}" is excluded from injection`, true);
  }
  if (namespace.labels && namespace.labels[NAMESPACE_LABEL] !== 'enabled' && podLabel !== 'true') {
    return skip('not-opted-in', `neither namespace label ${NAMESPACE_LABEL}=enabled nor pod label ${INJECT_LABEL}="true"`, false);
  }
  if (isObject(pod.spec) && pod.spec.hostNetwork === true) {
    return skip('host-network', 'hostNetwork pods are not injected (the proxy\'s localhost ports would be shared with the node)', true);
  }
  return undefined;
}

/** What blocks injection into the pod as it is once our previous parts are stripped. */
function conflict(stripped: JsonObject, warnings: string[]): InjectResult | undefined {
  for (const field of ['containers', 'initContainers'] as const) {
    if (containersOf(stripped, field).some((c) => c.name === SIDECAR_NAME)) {
      return skip('sidecar-present', `the pod already has a container named ${SIDECAR_NAME} the webhook did not inject`, true, warnings);
    }
  }
  const volumes = isObject(stripped.spec) && Array.isArray(stripped.spec.volumes) ? stripped.spec.volumes.filter(isObject) : [];
  const clash = volumes.find((v) => OUR_VOLUMES.includes(String(v.name)));
  if (clash) return skip('volume-conflict', `the pod already has a volume named ${String(clash.name)}`, true, warnings);
  return undefined;
}

/** Cross-checks the port annotation against the pod; returns all annotation problems. */
function checkPortOverride(overrides: PodOverrides, used: Map<number, string>, adminPort: number): AnnotationProblem[] {
  if (overrides.port === undefined) return [];
  const owner = used.get(overrides.port);
  const annotation = `${PREFIX}port`;
  let problem: AnnotationProblem | undefined;
  if (overrides.port === adminPort) problem = { annotation, message: `must not be the proxy admin port ${adminPort}` };
  else if (owner !== undefined) problem = { annotation, message: `port ${overrides.port} is already used by container "${owner}"` };
  if (!problem) return [];
  delete overrides.port;
  return [problem];
}

/** Cross-checks the inbound-port annotation against the pod: a port that cannot be taken over is an annotation problem. */
function checkInboundOverride(overrides: PodOverrides, stripped: JsonObject): AnnotationProblem[] {
  const problem = checkInboundPort(stripped, overrides.inboundPort);
  if (!problem) return [];
  delete overrides.inboundPort;
  return [problem];
}

/** The inbound listener on sidecar.inboundPort (or the next port the pod leaves free), with the named-port takeover. */
function takeInbound(b: PatchBuilder, wanted: string | number, settings: Settings, busy: Set<number>, names: ReadonlySet<string>, warnings: string[]): { listener: InboundListener; status: InboundStatus } {
  let port = settings.sidecar.inboundPort;
  while (busy.has(port)) port++;
  busy.add(port);
  return takeInboundPort(b, wanted, port, names, warnings);
}

/** Every (container, URL var) to rewrite, with warnings (and bypasses) for what is left alone. */
function findTargets(stripped: JsonObject, urlVars: string[], named: string[] | undefined, native: boolean, warnings: string[], bypasses: string[], loopbackPorts: number[]): Target[] {
  const targets: Target[] = [];
  for (const field of ['initContainers', 'containers'] as const) {
    const list = isObject(stripped.spec) && Array.isArray(stripped.spec[field]) ? (stripped.spec[field] as JsonValue[]) : [];
    list.forEach((c, index) => {
      if (!isObject(c)) return;
      const cname = typeof c.name === 'string' ? c.name : String(index);
      for (const varName of urlVars) {
        const d = discover(c, varName, named?.includes(varName) ?? false);
        if (d.kind === 'none') continue;
        if (d.kind === 'ignored') {
          warnings.push(WARN + d.warning);
          bypasses.push(d.warning);
          if (d.loopbackPort !== undefined) loopbackPorts.push(d.loopbackPort);
          continue;
        }
        if (field === 'initContainers' && !native) {
          const text = `init container "${cname}" sets ${varName}; not rewritten: a classic sidecar starts after init containers`;
          warnings.push(WARN + text);
          bypasses.push(text);
          continue;
        }
        if (d.warning) warnings.push(WARN + d.warning);
        targets.push({ field, index, container: cname, varName, source: d.source });
      }
    });
  }
  return targets;
}

export function inject(podIn: unknown, namespace: NamespaceInfo, settings: Settings, cluster: ClusterInfo = { nativeSidecars: false }): InjectResult {
  if (!isObject(podIn) || !isObject(podIn.spec) || !Array.isArray(podIn.spec.containers) || podIn.spec.containers.length === 0) {
    return skip('invalid-pod', 'the object is not a pod with containers', false);
  }
  const posture = postureOf(podIn, namespace, settings);
  return enforce(injectInto(podIn, namespace, settings, cluster, posture), podIn, namespace.name, posture, settings);
}

function injectInto(pod: JsonObject, namespace: NamespaceInfo, settings: Settings, cluster: ClusterInfo, posture: Posture): InjectResult {
  const gated = gate(pod, namespace, settings);
  if (gated) return gated;

  const warnings: string[] = [];
  const parsed = parseAnnotations(isObject(pod.metadata) ? pod.metadata.annotations : undefined);
  for (const key of parsed.unknown) warnings.push(`${WARN}unknown annotation ${key} ignored`);

  const b = new PatchBuilder(pod);
  const status = readStatus(pod);
  if (status === 'invalid') {
    return skip('invalid-status', `annotation ${STATUS_ANNOTATION} is not one this webhook wrote; remove it to inject again`, true, warnings);
  }
  if (status) strip(b, status);
  const stripped = b.doc; // a snapshot: later ops produce new documents
  const blocked = conflict(stripped, warnings);
  if (blocked) return blocked;

  // Overrides: invalid ones deny the pod, or are dropped with a warning, per settings.
  const overrides: PodOverrides = { ...parsed.overrides };
  const used = usedPorts(stripped);
  const errors = [...parsed.errors, ...checkPortOverride(overrides, used, settings.sidecar.adminPort), ...checkInboundOverride(overrides, stripped)];
  if (errors.length > 0) {
    const text = errors.map((e) => `${e.annotation}: ${e.message}`).join('; ');
    if (settings.annotationErrors === 'deny') {
      return { status: 'denied', reason: 'invalid-annotation', patch: [], warnings, message: `${WARN}invalid annotation(s): ${text}` };
    }
    warnings.push(`${WARN}invalid annotation(s) ignored: ${text}`);
  }

  const native = overrides.nativeSidecar ?? (settings.nativeSidecar === 'always' || (settings.nativeSidecar === 'auto' && cluster.nativeSidecars));
  // Where the guard is enforced, the pod's env-vars annotation adds to the list instead of replacing it, so naming
  // another variable cannot leave a default one pointing at the endpoint (the chart's policy checks the union too).
  const strict = posture.enforced && !posture.exemptBy;
  const urlVars = strict ? [...new Set([...settings.urlEnvVars, ...overrides.envVars ?? []])] : overrides.envVars ?? settings.urlEnvVars;
  const loopbackPorts: number[] = [];
  const bypasses: string[] = [];
  const targets = findTargets(stripped, urlVars, overrides.envVars, native, warnings, bypasses, loopbackPorts);
  if (targets.length === 0) {
    const hasEnvFrom = [...containersOf(stripped, 'containers'), ...containersOf(stripped, 'initContainers')].some((c) => Array.isArray(c.envFrom) && c.envFrom.length > 0);
    const hint = hasEnvFrom ? ` (if an envFrom source provides one, name it in annotation ${PREFIX}env-vars)` : '';
    const text = `no container sets ${urlVars.join(', ')}${hint}; no sidecar injected`;
    return { ...skip('no-url-env', text, true, warnings, status ? b.ops : []), bypasses }; // strip ops undo a previous injection
  }

  // Ports: the admin port and one listener per distinct upstream, avoiding ports the pod uses.
  const busy = new Set<number>([...used.keys(), ...loopbackPorts]);
  let adminPort = settings.sidecar.adminPort;
  if (busy.has(adminPort)) {
    const wanted = adminPort;
    while (busy.has(adminPort)) adminPort++;
    warnings.push(`${WARN}port ${wanted} is in use in the pod; the proxy admin port is ${adminPort}`);
  }
  busy.add(adminPort);
  let nextPort = overrides.port ?? settings.sidecar.proxyPort;
  const allocate = (): number => {
    while (busy.has(nextPort)) nextPort++;
    busy.add(nextPort);
    return nextPort;
  };
  const listeners: Listener[] = [];
  const byKey = new Map<string, Listener>();
  const varsOf = new Map<Listener, string[]>();
  const edits: EnvEdit[] = [];
  for (const t of targets) {
    let l = byKey.get(t.source.key);
    if (!l) {
      const port = allocate();
      // The proxy's naming rule: APP_URL_<n> owns UPSTREAM_AUTHORIZATION_<n> and nothing else.
      const envName = listeners.length === 0 ? 'APP_URL' : `APP_URL_${listeners.length}`;
      l = { port, envName, entries: renameRefs(t.source, `UPSTREAM_${port}_REF_`) };
      listeners.push(l);
      byKey.set(t.source.key, l);
      varsOf.set(l, []);
    }
    varsOf.get(l)!.push(t.varName);
    const rewritten: JsonObject = { name: t.varName, value: `http://127.0.0.1:${l.port}` };
    const init = t.field === 'initContainers';
    if (t.source.app.kind === 'replace') {
      b.replace(pointer('spec', t.field, t.index, 'env', t.source.app.index), rewritten);
      edits.push({ container: t.container, index: t.index, init, name: t.varName, original: t.source.app.original, rewritten });
      edits.push(...rewriteEarlierCopies(b, t, rewritten, init));
    } else {
      b.insert(['spec', t.field, t.index, 'env'], 0, rewritten); // first, so later $(VAR) references see the rewrite
      edits.push({ container: t.container, index: t.index, init, name: t.varName, original: null, rewritten });
    }
  }
  const inbound = overrides.inboundPort === undefined ? undefined : takeInbound(b, overrides.inboundPort, settings, busy, portNames(stripped), warnings);
  if (nextPort > 65535 || adminPort > 65535 || (inbound?.listener.listenPort ?? 0) > 65535) return skip('no-free-port', 'no free port left for the proxy', true, warnings);

  const credentials = credentialsByVar(settings.upstreamAuthorization, overrides.upstreamAuthorization);
  for (const l of listeners) {
    const choice = chooseCredential(varsOf.get(l)!, credentials);
    if (choice.conflict === undefined) l.credential = choice.ref;
    else if (settings.annotationErrors === 'deny') {
      return { status: 'denied', reason: 'credential-conflict', patch: [], warnings, message: `${WARN}${choice.conflict}` };
    } else warnings.push(`${WARN}${choice.conflict}; no credential is sent to that upstream`);
  }
  for (const ref of overrides.upstreamAuthorization ?? []) {
    if (!targets.some((t) => t.varName === ref.envVar)) {
      warnings.push(`${WARN}annotation ${PREFIX}upstream-authorization names ${ref.envVar}, which no rewritten container sets; not used`);
    }
  }
  const upstreams = listeners.map((l) => ({ credentialed: l.credential !== undefined, vars: varsOf.get(l)! }));
  const custody = takeCustody(b, settings, posture, upstreams, [...credentials.values()], warnings);
  edits.push(...custody.edits);
  if (custody.required) bypasses.push(...custody.leaks);

  const sidecar = buildSidecar(settings, { native, adminPort, listeners, overrides, adminPortName: portNames(stripped).has('akto-admin') ? undefined : 'akto-admin', inbound: inbound?.listener });
  if (native) b.insert(['spec', 'initContainers'], 0, sidecar);
  else b.insert(['spec', 'containers'], 0, sidecar);
  const vols = buildVolumes(settings, overrides);
  for (const v of vols) b.insert(['spec', 'volumes'], '-', v);

  // kubectl logs/exec default to the first container: keep that the app when the proxy goes first.
  const firstAppName = containersOf(stripped, 'containers')[0]?.name;
  const annotations = stringMap(isObject(b.doc.metadata) ? b.doc.metadata.annotations : undefined);
  const setDefault = !native && !(DEFAULT_CONTAINER_ANNOTATION in annotations) && typeof firstAppName === 'string';
  if (!isObject(b.doc.metadata)) b.add('/metadata', {});
  if (setDefault) b.setKey(['metadata', 'annotations'], DEFAULT_CONTAINER_ANNOTATION, firstAppName as string);
  const record: InjectionStatus = {
    version: WEBHOOK_VERSION,
    mode: native ? 'native' : 'classic',
    sidecar: SIDECAR_NAME,
    volumes: vols.map((v) => String(v.name)),
    env: edits,
    listeners: listeners.map((l) => ({ port: l.port, env: l.envName })),
    adminPort,
    defaultContainer: setDefault,
    ...(inbound ? { inbound: inbound.status } : {}),
  };
  b.setKey(['metadata', 'annotations'], STATUS_ANNOTATION, JSON.stringify(record));

  if (!native && isJobPod(pod)) {
    warnings.push(`${WARN}Job pod with a classic sidecar: the proxy keeps running after the job's containers finish (native sidecars need Kubernetes >= 1.29)`);
  }
  // Without a previous injection the status annotation alone differs: only a re-run can converge.
  if (status && jsonEqual(b.doc, pod)) return { status: 'unchanged', reason: 'already-injected', patch: [], warnings, bypasses };
  return { status: 'injected', reason: native ? 'native' : 'classic', patch: b.ops, warnings, bypasses };
}

/**
 * Kubernetes takes the last entry of a name, but a `$(VAR)` between two copies sees the earlier one: every earlier
 * copy gets the rewrite too (recorded last to first, so stripping restores each copy's own original).
 */
function rewriteEarlierCopies(b: PatchBuilder, t: Target, rewritten: JsonObject, init: boolean): EnvEdit[] {
  const edits: EnvEdit[] = [];
  const env = b.get(['spec', t.field, t.index, 'env']);
  if (!Array.isArray(env) || t.source.app.kind !== 'replace') return edits;
  for (let i = t.source.app.index - 1; i >= 0; i--) {
    const e = env[i];
    if (!isObject(e) || e.name !== t.varName) continue;
    b.replace(pointer('spec', t.field, t.index, 'env', i), rewritten);
    edits.push({ container: t.container, index: t.index, init, name: t.varName, original: e, rewritten });
  }
  return edits;
}

/**
 * Custody applies when some upstream's listener holds its credential, or everywhere in an enforced namespace
 * that requires it. `upstreams`: one per listener, with the app's URL variables that lead to it.
 */
function takeCustody(b: PatchBuilder, settings: Settings, posture: Posture, upstreams: Array<{ credentialed: boolean; vars: string[] }>, credentials: CredentialRef[], warnings: string[]) {
  const required = posture.enforced && !posture.exemptBy && settings.enforcement.requireCustody;
  if (!required && !(settings.custody.enabled && upstreams.some((u) => u.credentialed))) return { edits: [], leaks: [], required };
  const urlVars = new Set(upstreams.flatMap((u) => u.vars));
  const result = applyCustody(b, { envVars: settings.custody.envVars, placeholder: settings.custody.placeholder, credentials, urlVars });
  for (const leak of result.leaks) warnings.push(`${WARN}${leak}: custody cannot take that credential away from the agent`);
  const bare = upstreams.filter((u) => !u.credentialed).flatMap((u) => u.vars);
  if (result.edits.length > 0 && bare.length > 0) {
    warnings.push(`${WARN}the app's credential variables now hold a placeholder, but no upstream credential is bound to ${bare.join(', ')}: calls there carry the placeholder`);
  }
  return { ...result, required };
}
