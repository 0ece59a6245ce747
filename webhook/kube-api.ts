/**
 * The few Kubernetes API calls the webhook makes, behind an interface: unit tests pass a fake,
 * production passes webhook/kube.ts (the one module that loads the ESM-only client).
 */
export interface SecretData {
  /** Decoded values by key. */
  data: Record<string, string>;
  resourceVersion?: string;
}

export interface KubeApi {
  /** The API server's URL, for messages. */
  readonly server?: string;
  readSecret(namespace: string, name: string): Promise<SecretData | null>;
  /** 'exists' when another replica created it first (HTTP 409). */
  createSecret(namespace: string, name: string, data: Record<string, string>): Promise<'created' | 'exists'>;
  /** 'conflict' when the resourceVersion is stale (another replica wrote it). */
  replaceSecret(namespace: string, name: string, data: Record<string, string>, resourceVersion: string): Promise<'replaced' | 'conflict'>;
  /** The decoded caBundle of each webhook entry of the MutatingWebhookConfiguration; null when it does not exist. */
  readWebhookCaBundles(name: string): Promise<string[] | null>;
  /** Sets the caBundle of every webhook entry (JSON patch, RBAC-limited to this name). */
  patchWebhookCaBundles(name: string, bundlePem: string, entries: number): Promise<void>;
  serverVersion(): Promise<{ major: string; minor: string; gitVersion?: string }>;
  /** status.nodeInfo.kubeletVersion of every node (e.g. "v1.30.2"); throws when not allowed. */
  kubeletVersions(): Promise<string[]>;
}
