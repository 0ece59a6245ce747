/**
 * Sends admission Events to the API server without ever holding up an admission: `record` only puts the
 * Event in a bounded queue and returns. One worker sends at most `maxPerSecond` API calls. Repeats of an
 * Event (same object, reason and note — every replica a ReplicaSet creates, say) are coalesced: while
 * queued they add to its count, and within `windowMs` of the first send they update that Event's count
 * instead of creating another, as `kubectl describe` shows ("x12 over 3m"). Past `queueSize` distinct
 * pending Events new ones are dropped, counted, and logged once a minute.
 */
import { Counter, Registry } from 'prom-client';
import type { Logger } from '../common/logger';
import type { AdmissionEvent } from './events';
import type { KubeApi } from './kube-api';

export interface EventRecorderOptions {
  kube: KubeApi;
  logger: Logger;
  registry: Registry;
  maxPerSecond: number;
  /** reportingInstance: the webhook pod's name. */
  instance: string;
  queueSize?: number;
  windowMs?: number;
  now?: () => number;
}

interface Pending {
  event: AdmissionEvent;
  count: number;
  first: number;
  last: number;
}

interface Sent {
  name: string;
  count: number;
  first: number;
}

export const EVENT_COMPONENT = 'akto-agent-proxy-webhook';
const LOG_EVERY_MS = 60_000;

function keyOf(e: AdmissionEvent): string {
  return JSON.stringify([e.namespace, e.regarding.kind, e.regarding.name, e.regarding.uid ?? '', e.reason, e.note]);
}

export class EventRecorder {
  private readonly pending = new Map<string, Pending>();
  /** Events sent within the window, oldest first (bounded like the queue, times ten). */
  private readonly sent = new Map<string, Sent>();
  private readonly calls: Counter;
  private readonly queueSize: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private running = false;
  private closed = false;
  private lastLog = new Map<string, number>();
  /** Wall-clock time of the last API call: calls stay 1/maxPerSecond apart across bursts too. */
  private lastSend = -Infinity;
  private idle: Promise<void> = Promise.resolve();

  constructor(private readonly opts: EventRecorderOptions) {
    this.queueSize = opts.queueSize ?? 256;
    this.windowMs = opts.windowMs ?? 10 * 60_000;
    this.now = opts.now ?? Date.now;
    this.calls = new Counter({
      name: 'akto_webhook_events_total',
      help: 'Kubernetes Events about skipped, opted-out and refused pods, by outcome (created, updated, coalesced, dropped, failed)',
      labelNames: ['outcome'],
      registers: [opts.registry],
    });
  }

  /** Never throws, never waits. */
  record(event: AdmissionEvent): void {
    if (this.closed) return;
    const key = keyOf(event);
    const t = this.now();
    const queued = this.pending.get(key);
    if (queued) {
      queued.count++;
      queued.last = t;
      this.calls.inc({ outcome: 'coalesced' });
      return;
    }
    if (this.pending.size >= this.queueSize) {
      this.calls.inc({ outcome: 'dropped' });
      this.logOnce('dropped', { queueSize: this.queueSize, reason: event.reason }, 'event queue full; Event dropped (see akto_webhook_events_total{outcome="dropped"})');
      return;
    }
    this.pending.set(key, { event, count: 1, first: t, last: t });
    if (!this.running) {
      this.running = true;
      this.idle = this.drain();
    }
  }

  /** Resolves once every queued Event has been sent (or failed). */
  flushed(): Promise<void> {
    return this.idle;
  }

  close(): void {
    this.closed = true;
    this.pending.clear();
  }

  private async drain(): Promise<void> {
    const gapMs = 1000 / this.opts.maxPerSecond;
    await new Promise((r) => setImmediate(r)); // admissions of this tick coalesce first
    try {
      while (!this.closed && this.pending.size > 0) {
        const wait = this.lastSend + gapMs - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait).unref());
        const next = this.pending.entries().next();
        if (next.done) break;
        const [key, p] = next.value;
        this.pending.delete(key);
        this.lastSend = Date.now();
        await this.send(key, p);
      }
    } finally {
      this.running = false;
    }
  }

  private async send(key: string, p: Pending): Promise<void> {
    const { kube } = this.opts;
    const e = p.event;
    this.forgetOld();
    const prior = this.sent.get(key);
    try {
      if (prior && (await kube.updateEventCount(e.namespace, prior.name, prior.count + p.count, new Date(p.last))) === 'updated') {
        prior.count += p.count;
        this.calls.inc({ outcome: 'updated' });
        return;
      }
      const name = await kube.createEvent({
        namespace: e.namespace,
        involvedObject: { ...e.regarding, namespace: e.namespace },
        type: e.type,
        reason: e.reason,
        message: e.note,
        count: p.count,
        firstTimestamp: new Date(p.first),
        lastTimestamp: new Date(p.last),
        component: EVENT_COMPONENT,
        instance: this.opts.instance,
      });
      this.sent.delete(key);
      this.sent.set(key, { name, count: p.count, first: p.first });
      if (this.sent.size > this.queueSize * 10) this.sent.delete(this.sent.keys().next().value as string);
      this.calls.inc({ outcome: 'created' });
    } catch (err) {
      this.calls.inc({ outcome: 'failed' });
      this.logOnce('failed', { err: (err as Error).message, reason: e.reason, namespace: e.namespace }, 'could not record a Kubernetes Event (RBAC: create/patch events?)');
    }
  }

  private forgetOld(): void {
    const horizon = this.now() - this.windowMs;
    for (const [key, s] of this.sent) {
      if (s.first >= horizon) break; // insertion order is send order
      this.sent.delete(key);
    }
  }

  private logOnce(kind: string, fields: Record<string, unknown>, message: string): void {
    const t = this.now();
    if (t - (this.lastLog.get(kind) ?? -Infinity) < LOG_EVERY_MS) return;
    this.lastLog.set(kind, t);
    this.opts.logger.warn(fields, message);
  }
}
