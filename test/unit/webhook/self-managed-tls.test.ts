import { createLogger } from '../../../common/logger';
import { certInfo, splitPem, verifiedBy } from '../../../webhook/certs';
import { SECRET_KEYS, SelfManagedTls } from '../../../webhook/self-managed-tls';
import { loadSettings } from '../../../webhook/settings';
import { FakeKube } from './support/fake-kube';

const DAY = 24 * 3600 * 1000;
const settings = loadSettings({ CERT_MODE: 'selfManaged', WEBHOOK_NAMESPACE: 'akto', CERT_CA_VALIDITY_DAYS: '30', CERT_VALIDITY_DAYS: '3' });
const logger = createLogger('silent');
const MWC = settings.certs.webhookConfigName;

function replica(kube: FakeKube, clock: { now: Date }) {
  return new SelfManagedTls(kube, settings, logger, () => clock.now);
}

describe('self-managed certificates', () => {
  it('first replica creates the Secret, the second reads it; caBundle patched once; both ready', async () => {
    const kube = new FakeKube();
    kube.webhooks.set(MWC, ['', '']);
    const clock = { now: new Date('2026-11-26T12:00:00Z') };
    const [a, b] = [replica(kube, clock), replica(kube, clock)];
    const [ra, rb] = await Promise.all([a.sync(), b.sync()]);
    expect([ra.wrote, rb.wrote].sort()).toEqual(['created', 'nothing']);
    expect(ra.material).toEqual(rb.material);
    expect(kube.secrets.size).toBe(1);
    expect(certInfo(ra.material.cert).dnsNames).toEqual(expect.arrayContaining([`${settings.certs.serviceName}.akto.svc`]));
    expect(kube.webhooks.get(MWC)).toEqual([ra.caBundle, ra.caBundle]);
    expect(a.ready() && b.ready()).toBe(true);
    expect(kube.calls.filter((c) => c.startsWith('patchWebhook')).length).toBeLessThanOrEqual(2);
    const again = await a.sync();
    expect(again.wrote).toBe('nothing');
    expect(again.patchedCaBundle).toBe(false);
  });

  it('is not ready while the MutatingWebhookConfiguration is missing or does not trust the cert', async () => {
    const kube = new FakeKube();
    const clock = { now: new Date('2026-11-26T12:00:00Z') };
    const a = replica(kube, clock);
    expect((await a.sync()).ready).toBe(false);
    kube.webhooks.set(MWC, ['-----BEGIN CERTIFICATE-----\nbogus\n-----END CERTIFICATE-----\n']);
    expect((await a.sync()).ready).toBe(true);
    expect(verifiedBy(a.current()!.material.cert, kube.webhooks.get(MWC)![0], clock.now)).toBe(true);
  });

  it('renews the serving cert at 2/3 of its life with the same CA, without touching caBundle', async () => {
    const kube = new FakeKube();
    kube.webhooks.set(MWC, ['']);
    const clock = { now: new Date('2026-11-26T12:00:00Z') };
    const a = replica(kube, clock);
    const first = await a.sync();
    clock.now = new Date(clock.now.getTime() + 2.1 * DAY);
    const second = await a.sync();
    expect(second.wrote).toBe('renewed-cert');
    expect(second.material.cert).not.toBe(first.material.cert);
    expect(second.caBundle).toBe(first.caBundle);
    expect(second.patchedCaBundle).toBe(false);
    expect(second.ready).toBe(true);
  });

  it('rotates the CA before expiry and keeps the old CA in the bundle during the overlap', async () => {
    const kube = new FakeKube();
    kube.webhooks.set(MWC, ['']);
    const clock = { now: new Date('2026-11-26T12:00:00Z') };
    const a = replica(kube, clock);
    const b = replica(kube, clock);
    await a.sync();
    await b.sync();
    // Keep the leaf fresh so only the CA ages past 2/3 of its 30 days.
    for (const d of [6, 12, 18]) {
      clock.now = new Date(new Date('2026-11-26T12:00:00Z').getTime() + d * DAY);
      await a.sync();
    }
    const old = a.current()!;
    clock.now = new Date(new Date('2026-11-26T12:00:00Z').getTime() + 20.5 * DAY);
    const rotated = await a.sync();
    expect(rotated.wrote).toBe('rotated-ca');
    const cas = splitPem(rotated.caBundle);
    expect(cas).toHaveLength(2);
    expect(cas[1]).toBe(splitPem(old.caBundle)[0]);
    expect(rotated.patchedCaBundle).toBe(true);
    // A replica still serving the old cert stays trusted during the overlap.
    expect(verifiedBy(old.material.cert, kube.webhooks.get(MWC)![0], clock.now)).toBe(true);
    // The other replica picks the new cert up on its next sync and does not undo the bundle.
    const rb = await b.sync();
    expect(rb.material).toEqual(rotated.material);
    expect(rb.wrote).toBe('nothing');
    expect(rb.ready).toBe(true);
  });

  it('a replica with a stale resourceVersion loses the race and uses the winner\'s cert', async () => {
    const kube = new FakeKube();
    kube.webhooks.set(MWC, ['']);
    const clock = { now: new Date('2026-11-26T12:00:00Z') };
    await replica(kube, clock).sync();
    clock.now = new Date(clock.now.getTime() + 2.5 * DAY);
    const [ra, rb] = await Promise.all([replica(kube, clock).sync(), replica(kube, clock).sync()]);
    expect(ra.material).toEqual(rb.material);
    expect(kube.calls.filter((c) => c.startsWith('replaceSecret')).length).toBe(2);
    expect([ra.wrote, rb.wrote].sort()).toEqual(['nothing', 'renewed-cert']);
  });

  it('repairs a Secret whose key does not match its cert', async () => {
    const kube = new FakeKube();
    kube.webhooks.set(MWC, ['']);
    const clock = { now: new Date('2026-11-26T12:00:00Z') };
    const a = replica(kube, clock);
    await a.sync();
    const s = kube.secrets.get(`akto/${settings.certs.secretName}`)!;
    s.data[SECRET_KEYS.caKey] = 'garbage';
    const r = await a.sync();
    expect(r.wrote).toBe('repaired');
    expect(r.ready).toBe(true);
  });

  it('readiness: names the failed sync while not ready; a failed re-sync keeps a ready replica ready', async () => {
    jest.useFakeTimers();
    try {
      const kube = new FakeKube();
      kube.webhooks.set(MWC, ['']);
      const clock = { now: new Date('2026-11-26T12:00:00Z') };
      const fresh = replica(kube, clock);
      const read = kube.readSecret.bind(kube);
      kube.readSecret = async () => {
        throw new Error('HTTP 503: etcdserver: leader changed');
      };
      fresh.start(() => {});
      await jest.advanceTimersByTimeAsync(5000);
      expect(fresh.readiness()).toBe('certificate sync failed: HTTP 503: etcdserver: leader changed');
      fresh.stop();

      kube.readSecret = read;
      const ready = replica(kube, clock);
      await ready.sync();
      expect(ready.readiness()).toBe(true);
      ready.start(() => {});
      let failedResyncs = 0;
      kube.readSecret = async () => {
        failedResyncs++;
        throw new Error('HTTP 503: etcdserver: leader changed');
      };
      await jest.advanceTimersByTimeAsync(settings.certs.checkIntervalSeconds * 1000);
      expect(failedResyncs).toBe(1);
      expect(ready.readiness()).toBe(true);
      ready.stop();
    } finally {
      jest.useRealTimers();
    }
  });
});
