/** Cluster facts the injection depends on, asked from the API server. */
import type { KubeApi } from './kube-api';

/** Native sidecars (init containers with restartPolicy Always) are on by default from 1.29. */
export function supportsNativeSidecars(v: { major: string; minor: string }): boolean {
  const major = parseInt(v.major, 10);
  const minor = parseInt(v.minor, 10); // "29+" on some managed clusters
  if (!Number.isFinite(major) || !Number.isFinite(minor)) return false;
  return major > 1 || (major === 1 && minor >= 29);
}

export type NativeDecision = { native: boolean; source: string };

/** For `nativeSidecar: auto`: the API server's version, or classic when it cannot be asked. */
export async function detectNativeSidecars(kube: KubeApi | undefined): Promise<NativeDecision> {
  if (!kube) return { native: false, source: 'no Kubernetes API access: classic sidecars' };
  try {
    const v = await kube.serverVersion();
    const native = supportsNativeSidecars(v);
    return { native, source: `API server ${v.gitVersion ?? `${v.major}.${v.minor}`}: ${native ? 'native' : 'classic'} sidecars` };
  } catch (err) {
    return { native: false, source: `API server version unavailable (${(err as Error).message}): classic sidecars` };
  }
}
