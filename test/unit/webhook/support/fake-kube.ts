import type { EventRecord, KubeApi, SecretData } from '../../../../webhook/kube-api';

/** In-memory API server for the few calls the webhook makes, with resourceVersion semantics. */
export class FakeKube implements KubeApi {
  secrets = new Map<string, { data: Record<string, string>; rv: number }>();
  webhooks: Map<string, string[]> = new Map();
  calls: string[] = [];
  version = { major: '1', minor: '30', gitVersion: 'v1.30.2' };
  nodes: string[] | Error = ['v1.30.2', 'v1.29.9-eks-1'];
  private rv = 1;

  async readSecret(namespace: string, name: string): Promise<SecretData | null> {
    this.calls.push(`readSecret ${name}`);
    const s = this.secrets.get(`${namespace}/${name}`);
    return s ? { data: { ...s.data }, resourceVersion: String(s.rv) } : null;
  }
  async createSecret(namespace: string, name: string, data: Record<string, string>): Promise<'created' | 'exists'> {
    this.calls.push(`createSecret ${name}`);
    const key = `${namespace}/${name}`;
    if (this.secrets.has(key)) return 'exists';
    this.secrets.set(key, { data: { ...data }, rv: ++this.rv });
    return 'created';
  }
  async replaceSecret(namespace: string, name: string, data: Record<string, string>, resourceVersion: string): Promise<'replaced' | 'conflict'> {
    this.calls.push(`replaceSecret ${name}`);
    const s = this.secrets.get(`${namespace}/${name}`);
    if (!s || String(s.rv) !== resourceVersion) return 'conflict';
    this.secrets.set(`${namespace}/${name}`, { data: { ...data }, rv: ++this.rv });
    return 'replaced';
  }
  async readWebhookCaBundles(name: string): Promise<string[] | null> {
    this.calls.push(`readWebhook ${name}`);
    const w = this.webhooks.get(name);
    return w ? [...w] : null;
  }
  async patchWebhookCaBundles(name: string, bundlePem: string, entries: number): Promise<void> {
    this.calls.push(`patchWebhook ${name}`);
    if (!this.webhooks.has(name)) throw new Error('404');
    this.webhooks.set(name, Array.from({ length: entries }, () => bundlePem));
  }
  async serverVersion() {
    return this.version;
  }
  async kubeletVersions() {
    if (this.nodes instanceof Error) throw this.nodes;
    return this.nodes;
  }
  events = new Map<string, EventRecord>();
  /** Set to make the next event calls fail (RBAC, API server down). */
  eventFailure: Error | undefined;
  async createEvent(e: EventRecord): Promise<string> {
    this.calls.push(`createEvent ${e.reason}`);
    if (this.eventFailure) throw this.eventFailure;
    const name = `${e.involvedObject.name}.${(++this.rv).toString(16)}`;
    this.events.set(`${e.namespace}/${name}`, { ...e });
    return name;
  }
  async updateEventCount(namespace: string, name: string, count: number, lastTimestamp: Date): Promise<'updated' | 'gone'> {
    this.calls.push(`updateEvent ${name}`);
    if (this.eventFailure) throw this.eventFailure;
    const e = this.events.get(`${namespace}/${name}`);
    if (!e) return 'gone';
    this.events.set(`${namespace}/${name}`, { ...e, count, lastTimestamp });
    return 'updated';
  }
}
