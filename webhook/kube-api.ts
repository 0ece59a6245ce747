/**
 * The few Kubernetes API calls the webhook makes, behind an interface: unit tests pass a fake,
 * production passes webhook/kube.ts (the one module that loads the ESM-only client).
 */
export interface SecretData {
  /** Decoded values by key. */
  data: Record<string, string>;
  resourceVersion?: string;
}

/** A core/v1 Event about an object, as the webhook records it (the API client adds apiVersion/kind). */
export interface EventRecord {
  namespace: string;
  involvedObject: { apiVersion: string; kind: string; name: string; namespace: string; uid?: string };
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  count: number;
  firstTimestamp: Date;
  lastTimestamp: Date;
  /** source.component and reportingComponent. */
  component: string;
  /** reportingInstance (the webhook pod). */
  instance: string;
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
  /** Creates the Event (generated name); returns its name. */
  createEvent(event: EventRecord): Promise<string>;
  /** Counts repeats into an existing Event; 'gone' when it no longer exists (expired). */
  updateEventCount(namespace: string, name: string, count: number, lastTimestamp: Date): Promise<'updated' | 'gone'>;
}

export interface OwnerReference {
  apiVersion: 'v1';
  kind: 'ServiceAccount';
  name: string;
  uid: string;
}

/**
 * The service account a pod runs as, read from its projected token (a JWT whose claims name it), as an owner of
 * the objects the webhook creates in its namespace: `helm uninstall` deletes the account and Kubernetes' garbage
 * collector then deletes the certificate Secret too. undefined for anything that is not such a token.
 */
export function serviceAccountOwner(token: string): { namespace: string; owner: OwnerReference } | undefined {
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    const k = claims['kubernetes.io'] as { namespace?: unknown; serviceaccount?: { name?: unknown; uid?: unknown } } | undefined;
    const sa = k?.serviceaccount;
    if (typeof k?.namespace !== 'string' || typeof sa?.name !== 'string' || typeof sa?.uid !== 'string') return undefined;
    return { namespace: k.namespace, owner: { apiVersion: 'v1', kind: 'ServiceAccount', name: sa.name, uid: sa.uid } };
  } catch {
    return undefined;
  }
}
