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

/** "v1.30.2", "v1.29.3-eks-1234" → { major: "1", minor: "30" }. */
export function parseKubeletVersion(v: string): { major: string; minor: string } {
  const m = /^v?(\d+)\.(\d+)/.exec(v);
  return m ? { major: m[1], minor: m[2] } : { major: '', minor: '' };
}

/**
 * For `nativeSidecar: auto`: native when the API server is >= 1.29 and so is every node's kubelet
 * (an older kubelet would run the sidecar as a blocking init container). Without permission to
 * list nodes the API server's version decides (nodes lag it by policy, so this assumes no skew);
 * classic when the cluster cannot be asked at all.
 */
export async function detectNativeSidecars(kube: KubeApi | undefined): Promise<NativeDecision> {
  if (!kube) return { native: false, source: 'no Kubernetes API access: classic sidecars' };
  let server: string;
  try {
    const v = await kube.serverVersion();
    server = v.gitVersion ?? `${v.major}.${v.minor}`;
    if (!supportsNativeSidecars(v)) return { native: false, source: `API server ${server} < 1.29: classic sidecars` };
  } catch (err) {
    return { native: false, source: `API server version unavailable (${(err as Error).message}): classic sidecars` };
  }
  let kubelets: string[];
  try {
    kubelets = await kube.kubeletVersions();
  } catch (err) {
    return { native: true, source: `API server ${server}; node versions unavailable (${(err as Error).message}): native sidecars` };
  }
  const old = kubelets.filter((k) => !supportsNativeSidecars(parseKubeletVersion(k)));
  if (old.length > 0) return { native: false, source: `API server ${server}, but ${old.length} node(s) run a kubelet < 1.29 (${old[0]}): classic sidecars` };
  return { native: true, source: `API server ${server} and ${kubelets.length} node(s) >= 1.29: native sidecars` };
}
