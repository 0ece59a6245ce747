/**
 * Self-managed TLS: a CA and serving cert kept in one Secret. The first replica to create the
 * Secret wins (create → 409 → read theirs); rotations are optimistic replaces (stale
 * resourceVersion → read theirs), so replicas never fight. The MutatingWebhookConfiguration's
 * caBundle is patched when it does not trust our serving cert; a rotated CA keeps the previous
 * one in the bundle. Ready only when every webhook entry's caBundle verifies the served cert.
 */
import type { Logger } from '../common/logger';
import { generateCa, isExpired, issueServingCert, keyMatches, needsRenewal, serviceDnsNames, splitPem, verifiedBy, certInfo } from './certs';
import type { KubeApi } from './kube-api';
import type { Settings } from './settings';
import type { TlsMaterial } from './server';

export const SECRET_KEYS = { caBundle: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' } as const;

export interface SyncResult {
  material: TlsMaterial;
  caBundle: string;
  ready: boolean;
  /** What this replica wrote, for logs and tests. */
  wrote: 'nothing' | 'created' | 'rotated-ca' | 'renewed-cert' | 'repaired';
  patchedCaBundle: boolean;
}

type Data = Record<string, string>;

export class SelfManagedTls {
  private last?: SyncResult;
  private timer?: NodeJS.Timeout;
  private lastError?: string;

  constructor(
    private readonly kube: KubeApi,
    private readonly settings: Settings,
    private readonly logger: Logger,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  ready(): boolean {
    return this.last?.ready ?? false;
  }

  /**
   * true when ready, else why not (for /readyz). A failed re-sync keeps a ready replica ready: the certificate it
   * serves and the caBundle that trusts it are still valid, and an API server blip must not empty the Service.
   */
  readiness(): true | string {
    if (this.ready()) return true;
    if (this.lastError) return `certificate sync failed: ${this.lastError}`;
    const name = this.settings.certs.webhookConfigName;
    if (this.last?.caBundle === undefined) return 'no certificate yet';
    return `the caBundle of MutatingWebhookConfiguration ${name} does not trust the served certificate yet (or it does not exist)`;
  }

  current(): SyncResult | undefined {
    return this.last;
  }

  private get dnsNames(): string[] {
    return serviceDnsNames(this.settings.certs.serviceName, this.settings.certs.serviceNamespace);
  }

  private fresh(now: Date, keepCas: string[] = []): Data {
    const c = this.settings.certs;
    const ca = generateCa(now, c.caValidityDays);
    const leaf = issueServingCert(ca, this.dnsNames, now, c.certValidityDays);
    const bundle = [ca.certPem, ...keepCas.filter((p) => !isExpired(p, now))].join('');
    return { [SECRET_KEYS.caBundle]: bundle, [SECRET_KEYS.caKey]: ca.keyPem, [SECRET_KEYS.cert]: leaf.certPem, [SECRET_KEYS.key]: leaf.keyPem };
  }

  /** New Secret data when something must change, with the reason; undefined when all is well. */
  plan(data: Data, now: Date): { data: Data; why: SyncResult['wrote'] } | undefined {
    const cas = splitPem(data[SECRET_KEYS.caBundle] ?? '');
    const current = cas[0];
    const caKey = data[SECRET_KEYS.caKey] ?? '';
    if (!current || !keyMatches(current, caKey) || isExpired(current, now)) return { data: this.fresh(now, cas), why: 'repaired' };
    if (needsRenewal(current, now)) return { data: this.fresh(now, [current]), why: 'rotated-ca' };
    const live = cas.filter((p) => !isExpired(p, now));
    const cert = data[SECRET_KEYS.cert] ?? '';
    const key = data[SECRET_KEYS.key] ?? '';
    const wanted = this.dnsNames;
    const certOk = keyMatches(cert, key) && verifiedBy(cert, current, now) && !needsRenewal(cert, now)
      && wanted.every((n) => certInfo(cert).dnsNames.includes(n));
    if (certOk && live.length === cas.length) return undefined;
    const leaf = certOk ? { certPem: cert, keyPem: key } : issueServingCert({ certPem: current, keyPem: caKey }, wanted, now, this.settings.certs.certValidityDays);
    return {
      data: { [SECRET_KEYS.caBundle]: live.join(''), [SECRET_KEYS.caKey]: caKey, [SECRET_KEYS.cert]: leaf.certPem, [SECRET_KEYS.key]: leaf.keyPem },
      why: certOk ? 'repaired' : 'renewed-cert',
    };
  }

  async sync(): Promise<SyncResult> {
    const { serviceNamespace: ns, secretName: name, webhookConfigName } = this.settings.certs;
    const now = this.clock();
    let wrote: SyncResult['wrote'] = 'nothing';
    let secret = await this.kube.readSecret(ns, name);
    if (!secret) {
      const data = this.fresh(now);
      if ((await this.kube.createSecret(ns, name, data)) === 'created') {
        wrote = 'created';
        secret = { data };
        this.logger.info({ secret: `${ns}/${name}` }, 'created the webhook CA and serving certificate');
      } else {
        secret = await this.kube.readSecret(ns, name);
        if (!secret) throw new Error(`Secret ${ns}/${name} reported as existing but cannot be read`);
      }
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      const next = this.plan(secret.data, now);
      if (!next) break;
      if (secret.resourceVersion === undefined) break; // just created by us: nothing to change
      if ((await this.kube.replaceSecret(ns, name, next.data, secret.resourceVersion)) === 'replaced') {
        wrote = next.why;
        secret = { data: next.data };
        this.logger.info({ secret: `${ns}/${name}`, change: next.why }, 'updated the webhook certificates');
        break;
      }
      const reread = await this.kube.readSecret(ns, name); // another replica won: use theirs
      if (!reread) throw new Error(`Secret ${ns}/${name} disappeared during rotation`);
      secret = reread;
    }

    const material: TlsMaterial = { cert: secret.data[SECRET_KEYS.cert], key: secret.data[SECRET_KEYS.key] };
    const caBundle = secret.data[SECRET_KEYS.caBundle];
    let patchedCaBundle = false;
    let bundles = await this.kube.readWebhookCaBundles(webhookConfigName);
    if (bundles === null) {
      this.logger.warn({ webhookConfiguration: webhookConfigName }, 'MutatingWebhookConfiguration not found; not ready until it exists');
    } else if (bundles.some((b) => !verifiedBy(material.cert, b, now))) {
      await this.kube.patchWebhookCaBundles(webhookConfigName, caBundle, bundles.length);
      patchedCaBundle = true;
      this.logger.info({ webhookConfiguration: webhookConfigName, entries: bundles.length }, 'patched caBundle');
      bundles = bundles.map(() => caBundle);
    }
    const ready = bundles !== null && bundles.length > 0 && bundles.every((b) => verifiedBy(material.cert, b, now));
    this.last = { material, caBundle, ready, wrote, patchedCaBundle };
    return this.last;
  }

  /** Re-syncs periodically (every few seconds while not ready); calls onChange when the served cert changes. */
  start(onChange: (m: TlsMaterial) => void): void {
    const tick = async () => {
      const before = this.last?.material.cert;
      try {
        const r = await this.sync();
        this.lastError = undefined;
        if (r.material.cert !== before) onChange(r.material);
      } catch (err) {
        this.lastError = (err as Error).message;
        this.logger.error({ err: this.lastError }, 'certificate sync failed; will retry');
      }
      const every = this.ready() ? this.settings.certs.checkIntervalSeconds * 1000 : 5000;
      this.timer = setTimeout(tick, every);
      this.timer.unref();
    };
    this.timer = setTimeout(tick, this.ready() ? this.settings.certs.checkIntervalSeconds * 1000 : 5000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}
