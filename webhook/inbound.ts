/**
 * The named-port takeover behind the inbound listener (annotation `inbound-port`, docs/inbound.md). A Service
 * with `targetPort: <name>` is resolved by Kubernetes to the first container port of that name (app containers
 * first, then native sidecars). So the app's port gives up its name and the sidecar declares a port of that name
 * on its inbound listener: every such Service reaches the proxy first, with no iptables and no extra capability.
 * Probes and lifecycle handlers of the app that used the name are pointed at the app's port number, so health
 * checks do not pass through the guard. A Service using the number cannot be redirected this way: warned.
 *
 * Pure over the patch builder; every change is recorded (status.ts) so a re-invocation strips and redoes it.
 */
import { PREFIX, WARNING_PREFIX, type AnnotationProblem } from './annotations';
import { JsonObject, JsonValue, PatchBuilder, isJsonObject, jsonEqual, pointer } from './patch';
import { SIDECAR_NAME } from './sidecar';

/** What the webhook changed for the inbound listener, kept in the status annotation. */
export interface InboundStatus {
  container: string;
  /** Index of the app container once our sidecar is removed. */
  index: number;
  /** The app's port entry before and after losing its name, at this index of its ports. */
  port: number;
  original: JsonObject;
  rewritten: JsonObject;
  /** Probe and lifecycle ports that named the moved port, as paths inside the container. */
  handlers: Array<{ at: Array<string | number>; original: JsonValue; rewritten: JsonValue }>;
}

/** What the sidecar gets: the port it declares (with the app port's name) and where its inbound listener forwards. */
export interface InboundListener {
  listenPort: number;
  appUrl: string;
  port: JsonObject;
}

/** The sidecar's inbound port name when the app's port had none: a Service can then target it by name. */
const FALLBACK_NAME = 'akto-inbound';
const PROBES = ['livenessProbe', 'readinessProbe', 'startupProbe'];
const HOOKS = ['postStart', 'preStop'];
const HANDLERS = ['httpGet', 'tcpSocket'];

interface Found {
  index: number;
  name: string;
  port: number;
  entry: JsonObject;
}

/** The app's TCP port the annotation names (by name or number), in the pod as it is without our sidecar. */
function findPort(pod: JsonObject, wanted: string | number): Found | AnnotationProblem {
  const annotation = `${PREFIX}inbound-port`;
  const containers = isJsonObject(pod.spec) && Array.isArray(pod.spec.containers) ? pod.spec.containers : [];
  for (let index = 0; index < containers.length; index++) {
    const c = containers[index];
    if (!isJsonObject(c) || c.name === SIDECAR_NAME || !Array.isArray(c.ports)) continue;
    for (let port = 0; port < c.ports.length; port++) {
      const entry = c.ports[port];
      if (!isJsonObject(entry) || (entry.name !== wanted && entry.containerPort !== wanted)) continue;
      const protocol = typeof entry.protocol === 'string' ? entry.protocol : 'TCP';
      if (protocol !== 'TCP') return { annotation, message: `port ${String(wanted)} of container "${String(c.name)}" is ${protocol}; the proxy guards HTTP over TCP` };
      if (typeof entry.containerPort !== 'number') return { annotation, message: `port ${String(wanted)} of container "${String(c.name)}" has no containerPort number` };
      return { index, name: String(c.name), port, entry };
    }
  }
  return { annotation, message: `no app container declares a port ${typeof wanted === 'number' ? wanted : `named "${wanted}"`}` };
}

/** Checks the annotation against the pod before anything is changed: the problem, or nothing. */
export function checkInboundPort(pod: JsonObject, wanted: string | number | undefined): AnnotationProblem | undefined {
  if (wanted === undefined) return undefined;
  const found = findPort(pod, wanted);
  return 'annotation' in found ? found : undefined;
}

/**
 * Takes the named port over: the app's port loses its name, its probes and lifecycle handlers on that name get the
 * number, and the sidecar is to declare the name on `listenPort`. Call after checkInboundPort passed.
 */
export function takeInboundPort(b: PatchBuilder, wanted: string | number, listenPort: number, takenNames: ReadonlySet<string>, warnings: string[]): { listener: InboundListener; status: InboundStatus } {
  const found = findPort(b.doc, wanted);
  if ('annotation' in found) throw new Error(found.message);
  const { index, name: cname, port, entry } = found;
  const number = entry.containerPort as number;
  const name = typeof entry.name === 'string' && entry.name !== '' ? entry.name : undefined;
  const { name: _dropped, ...rewritten } = entry;
  b.replace(pointer('spec', 'containers', index, 'ports', port), rewritten);

  const handlers: InboundStatus['handlers'] = [];
  if (name !== undefined) {
    const places: Array<Array<string | number>> = [];
    for (const probe of PROBES) for (const h of HANDLERS) places.push([probe, h, 'port']);
    for (const hook of HOOKS) for (const h of HANDLERS) places.push(['lifecycle', hook, h, 'port']);
    for (const at of places) {
      if (b.get(['spec', 'containers', index, ...at]) !== name) continue;
      b.replace(pointer('spec', 'containers', index, ...at), number);
      handlers.push({ at, original: name, rewritten: number });
    }
  } else {
    warnings.push(
      `${WARNING_PREFIX}port ${number} of container "${cname}" has no name: a Service reaches it by number, which cannot be redirected to the guard; name the port and use that name as the Service's targetPort (docs/inbound.md)`,
    );
  }
  if (typeof entry.hostPort === 'number') {
    warnings.push(`${WARNING_PREFIX}port ${number} of container "${cname}" has hostPort ${entry.hostPort}: the node's port keeps reaching the app directly, around the guard`);
  }
  if (typeof wanted === 'number' && name !== undefined) {
    warnings.push(`${WARNING_PREFIX}annotation ${PREFIX}inbound-port names port ${number} by number: Services with targetPort ${number} keep reaching the app directly; only those using the name "${name}" reach the guard`);
  }
  const sidecarName = name ?? (takenNames.has(FALLBACK_NAME) ? undefined : FALLBACK_NAME);
  const sidecarPort: JsonObject = { ...(sidecarName ? { name: sidecarName } : {}), containerPort: listenPort, protocol: 'TCP' };
  return {
    listener: { listenPort, appUrl: `http://127.0.0.1:${number}`, port: sidecarPort },
    status: { container: cname, index, port, original: entry, rewritten, handlers },
  };
}

/** Undoes a takeover the status records, where the pod still has what we wrote (a later change by the user wins). */
export function stripInbound(b: PatchBuilder, status: InboundStatus): void {
  const list = b.get(['spec', 'containers']);
  const containers = Array.isArray(list) ? list : [];
  const atIndex = containers[status.index];
  const index = isJsonObject(atIndex) && atIndex.name === status.container ? status.index : containers.findIndex((c) => isJsonObject(c) && c.name === status.container);
  if (index < 0) return;
  const entry = b.get(['spec', 'containers', index, 'ports', status.port]);
  if (jsonEqual(entry, status.rewritten)) b.replace(pointer('spec', 'containers', index, 'ports', status.port), status.original);
  for (const h of status.handlers) {
    if (jsonEqual(b.get(['spec', 'containers', index, ...h.at]), h.rewritten)) b.replace(pointer('spec', 'containers', index, ...h.at), h.original);
  }
}

/** A status record's inbound part is ours to trust only in this shape. */
export function isInboundStatus(v: unknown): v is InboundStatus {
  if (!isJsonObject(v)) return false;
  return typeof v.container === 'string' && typeof v.index === 'number' && typeof v.port === 'number' && isJsonObject(v.original) && isJsonObject(v.rewritten)
    && Array.isArray(v.handlers) && v.handlers.every((h) => isJsonObject(h) && Array.isArray(h.at) && h.at.every((s) => typeof s === 'string' || typeof s === 'number'));
}
