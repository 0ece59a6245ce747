/**
 * The production KubeApi over @kubernetes/client-node 1.4. That package is ESM-only, so it is
 * loaded with a dynamic import() here and nowhere else (jest never loads this module).
 * Credentials: in-cluster service account, else KUBECONFIG / ~/.kube/config (loadFromDefault).
 */
import { readFileSync } from 'node:fs';
import { KubeApi, SecretData, serviceAccountOwner } from './kube-api';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

type ClientNode = typeof import('@kubernetes/client-node', { with: { 'resolution-mode': 'import' } });

function status(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  return typeof e.code === 'number' ? e.code : typeof e.statusCode === 'number' ? e.statusCode : undefined;
}

/**
 * The client's errors carry the whole response (headers and body) in their message; logs and /readyz get
 * "HTTP 403: <the API server's message>" instead. Network errors keep their own message.
 */
function concise(err: unknown): Error {
  const code = status(err);
  if (code === undefined) return err instanceof Error ? err : new Error(String(err));
  const body = (err as { body?: unknown }).body;
  let message = '';
  try {
    const parsed: unknown = typeof body === 'string' ? JSON.parse(body) : body;
    if (parsed && typeof (parsed as { message?: unknown }).message === 'string') message = (parsed as { message: string }).message;
  } catch {
    message = typeof body === 'string' ? body.slice(0, 200) : '';
  }
  const out = new Error(`HTTP ${code}${message ? `: ${message}` : ''}`) as Error & { code: number };
  out.code = code;
  return out;
}

/** Every call of `api` throws concise errors. */
function withConciseErrors(api: KubeApi): KubeApi {
  const wrapped: Record<string, unknown> = { server: api.server };
  for (const [name, fn] of Object.entries(api)) {
    if (typeof fn !== 'function') continue;
    wrapped[name] = async (...args: unknown[]) => {
      try {
        return await (fn as (...a: unknown[]) => Promise<unknown>).apply(api, args);
      } catch (err) {
        throw concise(err);
      }
    };
  }
  return wrapped as unknown as KubeApi;
}

function decode(data: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  return out;
}

export async function loadKube(): Promise<KubeApi> {
  const k8s: ClientNode = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error('no Kubernetes cluster configured (no in-cluster service account, no KUBECONFIG)');
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
  const version = kc.makeApiClient(k8s.VersionApi);
  let sa: ReturnType<typeof serviceAccountOwner>;
  try {
    sa = serviceAccountOwner(readFileSync(SERVICE_ACCOUNT_TOKEN, 'utf8'));
  } catch {
    sa = undefined; // not in a pod (KUBECONFIG): nothing owns the Secret
  }
  const secretBody = (namespace: string, name: string, data: Record<string, string>, resourceVersion?: string) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name,
      namespace,
      ...(resourceVersion ? { resourceVersion } : {}),
      labels: { 'app.kubernetes.io/managed-by': 'akto-agent-proxy-webhook' },
      ...(sa && sa.namespace === namespace ? { ownerReferences: [sa.owner] } : {}),
    },
    stringData: data,
  });

  return withConciseErrors({
    server: kc.getCurrentCluster()?.server,
    async readSecret(namespace, name): Promise<SecretData | null> {
      try {
        const s = await core.readNamespacedSecret({ name, namespace });
        return { data: decode(s.data), resourceVersion: s.metadata?.resourceVersion };
      } catch (err) {
        if (status(err) === 404) return null;
        throw err;
      }
    },
    async createSecret(namespace, name, data) {
      try {
        await core.createNamespacedSecret({ namespace, body: secretBody(namespace, name, data) });
        return 'created';
      } catch (err) {
        if (status(err) === 409) return 'exists';
        throw err;
      }
    },
    async replaceSecret(namespace, name, data, resourceVersion) {
      try {
        await core.replaceNamespacedSecret({ name, namespace, body: secretBody(namespace, name, data, resourceVersion) });
        return 'replaced';
      } catch (err) {
        if (status(err) === 409) return 'conflict';
        throw err;
      }
    },
    async readWebhookCaBundles(name) {
      try {
        const mwc = await admission.readMutatingWebhookConfiguration({ name });
        return (mwc.webhooks ?? []).map((w) => {
          const b = w.clientConfig?.caBundle as unknown;
          if (typeof b === 'string') return Buffer.from(b, 'base64').toString('utf8');
          if (b instanceof Uint8Array) return Buffer.from(b).toString('utf8');
          return '';
        });
      } catch (err) {
        if (status(err) === 404) return null;
        throw err;
      }
    },
    async patchWebhookCaBundles(name, bundlePem, entries) {
      const value = Buffer.from(bundlePem).toString('base64');
      const body = Array.from({ length: entries }, (_, i) => ({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value }));
      await admission.patchMutatingWebhookConfiguration({ name, body }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch));
    },
    async kubeletVersions() {
      const nodes = await core.listNode({});
      return nodes.items.map((n) => n.status?.nodeInfo?.kubeletVersion ?? '');
    },
    async createEvent(e) {
      const created = await core.createNamespacedEvent({
        namespace: e.namespace,
        body: {
          metadata: { generateName: `${e.involvedObject.name.slice(0, 200)}.`, namespace: e.namespace },
          involvedObject: e.involvedObject,
          type: e.type,
          reason: e.reason,
          message: e.message,
          count: e.count,
          firstTimestamp: e.firstTimestamp,
          lastTimestamp: e.lastTimestamp,
          source: { component: e.component },
          reportingComponent: e.component,
          reportingInstance: e.instance,
        },
      });
      return created.metadata?.name ?? '';
    },
    async updateEventCount(namespace, name, count, lastTimestamp) {
      try {
        await core.patchNamespacedEvent({ name, namespace, body: { count, lastTimestamp: lastTimestamp.toISOString() } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
        return 'updated';
      } catch (err) {
        if (status(err) === 404) return 'gone';
        throw err;
      }
    },
    async serverVersion() {
      const v = await version.getCode();
      return { major: v.major, minor: v.minor, gitVersion: v.gitVersion };
    },
  });
}
