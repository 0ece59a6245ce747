/**
 * Which Event an admission leaves (pure), and the recorder that sends them: bounded, coalescing, rate-limited,
 * never blocking, never throwing — against an in-memory API server.
 */
import { createLogger } from '../../../common/logger';
import { createRegistry } from '../../../common/metrics';
import { review } from '../../../webhook/admission';
import { EventRecorder } from '../../../webhook/event-recorder';
import { AdmissionEvent, eventFor, regardingOf } from '../../../webhook/events';
import { inject } from '../../../webhook/inject';
import { loadSettings } from '../../../webhook/settings';
import { FakeKube } from './support/fake-kube';

const settings = loadSettings({ SIDECAR_IMAGE: 'akto-agent-proxy:test' });
const owner = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'agent-5d8', uid: 'rs-uid', controller: true };
const optedOut = {
  metadata: { generateName: 'agent-5d8-', labels: { 'agent-proxy.akto.io/inject': 'false' }, ownerReferences: [{ apiVersion: 'v1', kind: 'Other', name: 'x', uid: 'o' }, owner] },
  spec: { containers: [{ name: 'agent', image: 'a', env: [{ name: 'OPENAI_BASE_URL', value: 'https://llm.example/v1' }] }] },
};

function reviewOf(pod: unknown, dryRun = false) {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u1', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'agents', operation: 'CREATE', object: pod, dryRun } };
}

describe('the Event of an admission', () => {
  it('names the controller owner (the pod has no uid at CREATE), else the pod by name, else nothing', () => {
    expect(regardingOf(optedOut)).toEqual({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'agent-5d8', uid: 'rs-uid' });
    expect(regardingOf({ metadata: { name: 'bare' } })).toEqual({ apiVersion: 'v1', kind: 'Pod', name: 'bare' });
    expect(regardingOf({ metadata: { generateName: 'x-' } })).toBeUndefined();
  });

  it('records opt-outs, skips, refusals and warnings; not silent outcomes, re-invocations or dry runs', () => {
    const opt = review(reviewOf(optedOut), settings, { nativeSidecars: true });
    expect(opt.event).toMatchObject({ namespace: 'agents', reason: 'InjectionOptOut', type: 'Warning', regarding: { kind: 'ReplicaSet', uid: 'rs-uid' } });
    expect(opt.event!.note).toBe('pod agent-5d8-*: pod label agent-proxy.akto.io/inject="false": this pod runs without the guardrail proxy');
    expect(review(reviewOf(optedOut, true), settings, { nativeSidecars: true }).event).toBeUndefined();

    const refused = review(reviewOf(optedOut), settings, { nativeSidecars: true }, inject, { enforced: true });
    expect(refused.event).toMatchObject({ reason: 'InjectionRefused' });
    expect(refused.review).toMatchObject({ response: { allowed: false, status: { code: 403, reason: 'Forbidden' } } });

    const plain = { ...optedOut, metadata: { ...optedOut.metadata, labels: {} } };
    const injected = review(reviewOf(plain), settings, { nativeSidecars: true });
    expect(injected.result).toBe('injected');
    expect(injected.event).toBeUndefined();
    const r = inject(plain, { name: 'agents' }, settings, { nativeSidecars: true });
    expect(eventFor({ ...r, status: 'unchanged' as const, warnings: ['w'] }, plain, 'agents')).toBeUndefined();
    expect(eventFor({ status: 'skipped', reason: 'not-opted-in', patch: [], warnings: [] }, plain, 'agents')).toBeUndefined();
  });

  it('keeps the note within 1 kB', () => {
    const e = eventFor({ status: 'skipped', reason: 'no-url-env', patch: [], warnings: ['x'.repeat(5000)] }, optedOut, 'agents');
    expect(e!.note.length).toBe(1024);
  });
});

describe('EventRecorder', () => {
  const event = (note: string, name = 'agent-5d8'): AdmissionEvent => ({ namespace: 'agents', regarding: { apiVersion: 'apps/v1', kind: 'ReplicaSet', name, uid: 'u' }, type: 'Warning', reason: 'InjectionSkipped', note });
  const metric = async (registry: ReturnType<typeof createRegistry>, outcome: string) =>
    (await registry.getSingleMetric('akto_webhook_events_total')!.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;

  it('creates an Event, coalesces repeats into its count, and updates it within the window', async () => {
    const kube = new FakeKube();
    const registry = createRegistry(false);
    let t = 1_000_000;
    const rec = new EventRecorder({ kube, logger: createLogger('silent'), registry, maxPerSecond: 100, instance: 'webhook-0', now: () => t });
    rec.record(event('a'));
    rec.record(event('a')); // still queued: counted in
    await rec.flushed();
    expect([...kube.events.values()]).toEqual([expect.objectContaining({
      namespace: 'agents', reason: 'InjectionSkipped', message: 'a', count: 2, type: 'Warning',
      involvedObject: { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'agent-5d8', uid: 'u', namespace: 'agents' },
      component: 'akto-agent-proxy-webhook', instance: 'webhook-0',
    })]);
    t += 60_000;
    rec.record(event('a'));
    await rec.flushed();
    expect(kube.events.size).toBe(1);
    expect([...kube.events.values()][0]).toMatchObject({ count: 3, lastTimestamp: new Date(t) });
    // After the window a new Event is made; an expired one is re-created.
    t += 11 * 60_000;
    rec.record(event('a'));
    await rec.flushed();
    expect(kube.events.size).toBe(2);
    kube.events.clear();
    rec.record(event('a'));
    await rec.flushed();
    expect(kube.events.size).toBe(1);
    expect(await metric(registry, 'created')).toBe(3);
    expect(await metric(registry, 'updated')).toBe(1);
    expect(await metric(registry, 'coalesced')).toBe(1);
  });

  it('never waits: record returns at once, a full queue drops (counted), API errors are counted, not thrown', async () => {
    const kube = new FakeKube();
    const registry = createRegistry(false);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const create = kube.createEvent.bind(kube);
    kube.createEvent = async (e) => {
      await gate;
      return create(e);
    };
    const rec = new EventRecorder({ kube, logger: createLogger('silent'), registry, maxPerSecond: 100, instance: 'w', queueSize: 3 });
    rec.record(event('first'));
    await new Promise((r) => setImmediate(r)); // the first one is now in flight, held by the API server
    const started = process.hrtime.bigint();
    for (let i = 0; i < 10; i++) rec.record(event(`n${i}`));
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(50);
    expect(await metric(registry, 'dropped')).toBe(7); // three queued behind the one in flight
    release();
    await rec.flushed();
    expect(kube.events.size).toBe(4);

    kube.eventFailure = new Error('forbidden');
    rec.record(event('x', 'other'));
    await expect(rec.flushed()).resolves.toBeUndefined();
    expect(await metric(registry, 'failed')).toBe(1);
  });

  it('spaces API calls by maxPerSecond, also across bursts', async () => {
    const kube = new FakeKube();
    const sentAt: number[] = [];
    const create = kube.createEvent.bind(kube);
    kube.createEvent = async (e) => {
      sentAt.push(Date.now());
      return create(e);
    };
    const rec = new EventRecorder({ kube, logger: createLogger('silent'), registry: createRegistry(false), maxPerSecond: 20, instance: 'w' });
    for (let i = 0; i < 3; i++) rec.record(event(`m${i}`));
    await rec.flushed();
    rec.record(event('after the burst'));
    await rec.flushed();
    expect(kube.events.size).toBe(4);
    for (let i = 1; i < sentAt.length; i++) expect(sentAt[i] - sentAt[i - 1]).toBeGreaterThanOrEqual(49);
  });
});
