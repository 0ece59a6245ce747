/**
 * Which Kubernetes Event an admission leaves behind, decided purely from the injection result and the
 * pod as the API server sent it. Admission warnings reach only whoever created the pod — for a
 * Deployment's pods that is the ReplicaSet controller, which drops them — so skips, opt-outs, refusals
 * and injections with warnings are also recorded as an Event that `kubectl describe` shows.
 *
 * The Event is about the pod's controller (ReplicaSet, Job, StatefulSet, ...): at CREATE the pod has
 * no uid yet (and often no name, only generateName), while its owner exists with a uid. A pod without
 * an owner is named by its name alone; one with neither gets no Event (its creator saw the warning).
 */
import { WARNING_PREFIX } from './annotations';
import { InjectResult, podName } from './inject';
import { JsonObject, isJsonObject } from './patch';

export interface EventRef {
  apiVersion: string;
  kind: string;
  name: string;
  uid?: string;
}

export interface AdmissionEvent {
  namespace: string;
  regarding: EventRef;
  type: 'Normal' | 'Warning';
  /** UpperCamelCase, as Kubernetes reasons are. */
  reason: string;
  note: string;
}

/** Kubernetes keeps event notes short (events.k8s.io: 1 kB). */
const MAX_NOTE = 1024;

export function regardingOf(pod: JsonObject): EventRef | undefined {
  const meta = isJsonObject(pod.metadata) ? pod.metadata : {};
  const owners = (Array.isArray(meta.ownerReferences) ? meta.ownerReferences : []).filter(isJsonObject)
    .filter((o) => typeof o.apiVersion === 'string' && typeof o.kind === 'string' && typeof o.name === 'string' && typeof o.uid === 'string');
  const owner = owners.find((o) => o.controller === true) ?? owners[0];
  if (owner) return { apiVersion: owner.apiVersion as string, kind: owner.kind as string, name: owner.name as string, uid: owner.uid as string };
  if (typeof meta.name === 'string' && meta.name) return { apiVersion: 'v1', kind: 'Pod', name: meta.name };
  return undefined;
}

function reasonOf(r: InjectResult): string | undefined {
  if (r.status === 'denied') return 'InjectionRefused';
  if (r.warnings.length === 0) return undefined; // silent outcomes: not asked to inject, nothing to say
  if (r.status === 'skipped') return r.reason === 'opted-out' ? 'InjectionOptOut' : 'InjectionSkipped';
  if (r.status === 'injected') return 'InjectedWithWarnings';
  return undefined; // unchanged: a re-invocation of a pod already reported
}

export function eventFor(r: InjectResult, pod: JsonObject, namespace: string): AdmissionEvent | undefined {
  const reason = reasonOf(r);
  const regarding = reason ? regardingOf(pod) : undefined;
  if (!reason || !regarding) return undefined;
  const texts = r.status === 'denied' ? [r.message ?? r.reason] : r.warnings;
  const note = `pod ${podName(pod)}: ${texts.map((t) => (t.startsWith(WARNING_PREFIX) ? t.slice(WARNING_PREFIX.length) : t)).join('; ')}`;
  return {
    namespace,
    regarding,
    type: 'Warning',
    reason,
    note: note.length > MAX_NOTE ? `${note.slice(0, MAX_NOTE - 1)}…` : note,
  };
}
