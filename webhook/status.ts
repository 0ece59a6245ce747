/**
 * The status annotation records exactly what the webhook injected, so a later call can strip
 * those parts and inject again (idempotent under reinvocationPolicy IfNeeded).
 */
import { STATUS_ANNOTATION } from './annotations';
import { InboundStatus, isInboundStatus, stripInbound } from './inbound';
import { JsonObject, JsonValue, PatchBuilder, pointer, isJsonObject as isObject } from './patch';
import { canonical } from './upstreams';

export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

export interface EnvEdit {
  container: string;
  /** Index of the container once our sidecar is removed (names can repeat in invalid pods). */
  index: number;
  init: boolean;
  name: string;
  /** The app's entry before the rewrite; null when the var came from envFrom and we added it. */
  original: JsonObject | null;
  /** The entry we wrote. */
  rewritten: JsonObject;
}

export interface InjectionStatus {
  version: string;
  mode: 'native' | 'classic';
  sidecar: string;
  volumes: string[];
  env: EnvEdit[];
  listeners: Array<{ port: number; env: string }>;
  adminPort: number;
  defaultContainer: boolean;
  /** The app port whose name the inbound listener took over (annotation inbound-port). */
  inbound?: InboundStatus;
}

/** Parses the status annotation; undefined when absent, 'invalid' when it is not ours to trust. */
export function readStatus(pod: JsonObject): InjectionStatus | undefined | 'invalid' {
  const meta = pod.metadata;
  const raw = isObject(meta) && isObject(meta.annotations) ? meta.annotations[STATUS_ANNOTATION] : undefined;
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string') return 'invalid';
  try {
    const s = JSON.parse(raw) as InjectionStatus;
    const ok = isObject(s) && typeof s.sidecar === 'string' && Array.isArray(s.volumes) && Array.isArray(s.env)
      && s.volumes.every((v) => typeof v === 'string')
      && s.env.every((e) => isObject(e) && typeof e.container === 'string' && typeof e.name === 'string' && isObject(e.rewritten))
      && (s.inbound === undefined || isInboundStatus(s.inbound));
    return ok ? s : 'invalid';
  } catch {
    return 'invalid';
  }
}

function indexByName(list: JsonValue | undefined, name: string): number {
  if (!Array.isArray(list)) return -1;
  return list.findIndex((c) => isObject(c) && c.name === name);
}

/** Removes everything the status says we injected, restoring rewritten env entries the app still has. */
export function strip(b: PatchBuilder, status: InjectionStatus): void {
  for (const field of ['initContainers', 'containers'] as const) {
    const i = indexByName(b.get(['spec', field]), status.sidecar);
    if (i >= 0) b.remove(pointer('spec', field, i));
  }
  for (const vol of status.volumes) {
    const i = indexByName(b.get(['spec', 'volumes']), vol);
    if (i >= 0) b.remove(pointer('spec', 'volumes', i));
  }
  for (const edit of status.env) {
    const field = edit.init ? 'initContainers' : 'containers';
    const list = b.get(['spec', field]);
    const atIndex = Array.isArray(list) ? list[edit.index] : undefined;
    const ci = isObject(atIndex) && atIndex.name === edit.container ? edit.index : indexByName(list, edit.container);
    if (ci < 0) continue;
    const env = b.get(['spec', field, ci, 'env']);
    if (!Array.isArray(env)) continue;
    let ei = -1;
    for (let i = env.length - 1; i >= 0; i--) {
      if (isObject(env[i]) && canonical(env[i]) === canonical(edit.rewritten)) {
        ei = i;
        break;
      }
    }
    if (ei < 0) continue; // changed since we wrote it: the user's value wins
    if (edit.original) b.replace(pointer('spec', field, ci, 'env', ei), edit.original);
    else b.remove(pointer('spec', field, ci, 'env', ei));
  }
  if (status.inbound) stripInbound(b, status.inbound);
  const annotations = b.get(['metadata', 'annotations']);
  if (isObject(annotations)) {
    if (status.defaultContainer && DEFAULT_CONTAINER_ANNOTATION in annotations) b.remove(pointer('metadata', 'annotations', DEFAULT_CONTAINER_ANNOTATION));
    if (STATUS_ANNOTATION in annotations) b.remove(pointer('metadata', 'annotations', STATUS_ANNOTATION));
  }
}
