import * as http from 'node:http';
import * as https from 'node:https';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Env } from '../../common/env';
import { createUpstreamAgent } from '../http/agents';
import { classify, type PostResult } from '../ingest/sender';
import type { Logger } from '../../common/logger';
import type { AlertConfig } from './config';
import { alertBody, type AlertContext, type AlertEvent, type AlertGroupView } from './format';

/** POSTs one alert body; resolves with how it went, never rejects. */
export type AlertPost = (body: string) => Promise<PostResult>;

interface Group extends AlertGroupView {
  /** Events since the last POST of this group. */
  unsent: number;
  sentAt: number;
}

type DropReason = 'evicted' | 'failed' | 'rejected' | 'shutdown';

const DROP_LOG_INTERVAL_MS = 60_000;
const SWEEP_MS = 1000;
const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 30_000;

/**
 * Alert delivery off the request path. report() is synchronous and O(1) in the common case: it folds the
 * event into its group (same key = same alert) and, when the group is due (never sent, or its de-duplication
 * window has passed), puts one POST body on a bounded queue that one worker sends with retries and backoff.
 * Groups that cannot go yet (window, rate limit, full queue) keep counting and are swept every second.
 * Every alert that is given up is counted in akto_proxy_alerts_dropped_total and logged (at most once a minute).
 */
export class AlertSender {
  private readonly groups = new Map<string, Group>();
  /** Groups with unsent events. */
  private readonly waiting = new Set<Group>();
  private readonly queue: Array<{ body: string; type: AlertEvent['type'] }> = [];
  private tokens: number;
  private tokensAt: number;
  private sweep?: NodeJS.Timeout;
  private sending = false;
  private closed = false;
  private readonly aborts = new Set<() => void>();
  private dropsSinceLog = new Map<DropReason, number>();
  private lastDropLog = -Infinity;
  private lastFailure?: string;
  private readonly m: ReturnType<typeof alertMetrics>;

  constructor(
    private readonly cfg: AlertConfig,
    private readonly ctx: AlertContext,
    private readonly post: AlertPost,
    private readonly log: Logger,
    registry: Registry,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = cfg.maxPerMinute;
    this.tokensAt = now();
    this.m = alertMetrics(registry, () => this.queue.length);
  }

  report(event: AlertEvent): void {
    if (this.closed) return;
    let g = this.groups.get(event.key);
    if (!g) {
      g = { event, count: 0, firstSeen: event.at, lastSeen: event.at, unsent: 0, sentAt: -Infinity };
      this.groups.set(event.key, g);
      if (this.groups.size > this.cfg.maxGroups) this.evictOldest();
    }
    g.event = event;
    g.count++;
    g.lastSeen = Math.max(g.lastSeen, event.at);
    g.unsent++;
    if (g.unsent > 1 || this.now() - g.sentAt < this.cfg.dedupWindowMs) this.m.deduplicated.inc({ type: event.type });
    this.waiting.add(g);
    this.pump();
  }

  /** Stops intake and sends what is queued within drainMs; the rest is counted as dropped. */
  async close(drainMs: number): Promise<void> {
    this.closed = true;
    clearTimeout(this.sweep);
    const deadline = this.now() + drainMs;
    while ((this.queue.length > 0 || this.sending) && this.now() < deadline) await sleep(20);
    for (const abort of this.aborts) abort();
    const left = this.queue.length + this.waiting.size;
    this.queue.length = 0;
    this.waiting.clear();
    if (left > 0) this.dropped('shutdown', left);
    this.logDrops(true);
  }

  /** Moves due groups onto the queue as tokens and room allow, then makes sure the worker and the sweep run. */
  private pump(): void {
    const now = this.now();
    this.refill(now);
    for (const g of this.waiting) {
      if (this.queue.length >= this.cfg.queueSize || this.tokens < 1) break;
      if (now - g.sentAt < this.cfg.dedupWindowMs) continue;
      this.tokens--;
      g.sentAt = now;
      g.unsent = 0;
      this.waiting.delete(g);
      this.queue.push({ body: alertBody(g, this.ctx, this.cfg.format), type: g.event.type });
    }
    if (!this.sending && this.queue.length > 0) void this.work();
    if (this.waiting.size > 0 && !this.sweep && !this.closed) {
      this.sweep = setTimeout(() => {
        this.sweep = undefined;
        this.pump();
      }, SWEEP_MS);
      this.sweep.unref();
    }
  }

  private refill(now: number): void {
    if (now <= this.tokensAt) return;
    this.tokens = Math.min(this.cfg.maxPerMinute, this.tokens + ((now - this.tokensAt) * this.cfg.maxPerMinute) / 60_000);
    this.tokensAt = now;
  }

  private async work(): Promise<void> {
    this.sending = true;
    try {
      while (this.queue.length > 0) {
        const item = this.queue[0];
        const outcome = await this.deliver(item.body);
        // close() emptied the queue meanwhile: the item is already counted as a shutdown drop.
        if (this.queue[0] !== item) return;
        this.queue.shift();
        if (outcome === 'sent') this.m.sent.inc({ type: item.type });
        else if (outcome !== 'aborted') this.dropped(outcome, 1);
        if (!this.closed) this.pump();
      }
    } finally {
      this.sending = false;
    }
  }

  private async deliver(body: string): Promise<'sent' | 'failed' | 'rejected' | 'aborted'> {
    for (let attempt = 0; ; attempt++) {
      const r = await this.post(body);
      if (r.kind === 'ok') return 'sent';
      if (r.kind === 'reject' || r.kind === 'auth') {
        this.lastFailure = r.kind === 'auth' ? `HTTP ${r.status} (check ALERT_AUTHORIZATION or the URL)` : `HTTP ${r.status}`;
        return 'rejected';
      }
      if (attempt >= this.cfg.retries) {
        this.lastFailure = r.kind === 'suspect' ? `HTTP ${r.status}` : r.reason;
        return 'failed';
      }
      this.m.retries.inc();
      const wait = Math.max(r.retryAfterMs ?? 0, Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempt));
      if (!(await this.pause(wait))) return 'aborted';
    }
  }

  /** Waits between retries; false when close() cut it short (the alert is then counted as a shutdown drop). */
  private pause(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const abort = (): void => {
        clearTimeout(t);
        this.aborts.delete(abort);
        resolve(false);
      };
      const t = setTimeout(() => {
        this.aborts.delete(abort);
        resolve(true);
      }, ms);
      t.unref();
      this.aborts.add(abort);
    });
  }

  private evictOldest(): void {
    const [key, g] = this.groups.entries().next().value as [string, Group];
    this.groups.delete(key);
    if (this.waiting.delete(g)) this.dropped('evicted', 1);
  }

  private dropped(reason: DropReason, n: number): void {
    this.m.dropped.inc({ reason }, n);
    this.dropsSinceLog.set(reason, (this.dropsSinceLog.get(reason) ?? 0) + n);
    this.logDrops(false);
  }

  private logDrops(force: boolean): void {
    const now = this.now();
    if (this.dropsSinceLog.size === 0 || (!force && now - this.lastDropLog < DROP_LOG_INTERVAL_MS)) return;
    this.lastDropLog = now;
    this.log.error(
      { dropped: Object.fromEntries(this.dropsSinceLog), lastFailure: this.lastFailure, receiver: this.cfg.url.origin },
      'alerts could not be delivered and were dropped',
    );
    this.dropsSinceLog = new Map();
  }
}

/** POSTs JSON to the alert receiver over a keep-alive agent (system CAs trusted), one deadline per attempt. */
export function createAlertPost(cfg: AlertConfig, env: Env, userAgent: string): { post: AlertPost; close(): void } {
  const agent = createUpstreamAgent(cfg.url, env);
  const request = cfg.url.protocol === 'https:' ? https.request : http.request;
  return {
    post(body) {
      const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': userAgent };
      if (cfg.authorization !== undefined) headers.authorization = cfg.authorization;
      return new Promise<PostResult>((resolve) => {
        const req = request(cfg.url, { method: 'POST', agent, headers, timeout: cfg.timeoutMs }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => {
            if (chunks.length < 4) chunks.push(c);
          });
          res.on('error', (err) => resolve({ kind: 'retry', reason: `network: ${err.message}` }));
          res.on('end', () => resolve(classify(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8').slice(0, 512), headerText(res.headers['retry-after']))));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', (err: NodeJS.ErrnoException) => resolve({ kind: 'retry', reason: err.message === 'timeout' ? 'timeout' : `network: ${err.code ?? err.message}` }));
        req.end(body);
      });
    },
    close: () => agent.destroy(),
  };
}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function alertMetrics(registry: Registry, queued: () => number) {
  return {
    sent: new Counter({ name: 'akto_proxy_alerts_sent_total', help: 'Alerts POSTed to ALERT_WEBHOOK_URL and accepted.', labelNames: ['type'], registers: [registry] }),
    deduplicated: new Counter({
      name: 'akto_proxy_alerts_deduplicated_total',
      help: 'Alert events folded into an alert of the same group (sent later with a count).',
      labelNames: ['type'],
      registers: [registry],
    }),
    dropped: new Counter({ name: 'akto_proxy_alerts_dropped_total', help: 'Alerts given up, by reason (failed, rejected, evicted, shutdown).', labelNames: ['reason'], registers: [registry] }),
    retries: new Counter({ name: 'akto_proxy_alerts_retries_total', help: 'Alert POSTs retried after a network error, timeout, 408, 429 or 5xx.', registers: [registry] }),
    queue: new Gauge({
      name: 'akto_proxy_alerts_queued',
      help: 'Alerts waiting to be POSTed.',
      registers: [registry],
      collect() {
        this.set(queued());
      },
    }),
  };
}
