import { Counter, Gauge, type Registry } from 'prom-client';

/** The limits' Prometheus metrics; `sizes` and `evictions` report the LRU tables (identities, counters) at scrape time. */
export function limitsMetrics(registry: Registry, sizes: () => [number, number], evictions: () => [number, number]) {
  let seen: [number, number] = [0, 0];
  return {
    limited: new Counter({ name: 'akto_proxy_rate_limited_total', help: 'Requests answered 429 by a limit rule or an anomaly cool-down.', labelNames: ['rule', 'kind'], registers: [registry] }),
    shadow: new Counter({ name: 'akto_proxy_rate_limit_shadow_total', help: 'Requests a shadow-mode limit rule would have refused.', labelNames: ['rule', 'kind'], registers: [registry] }),
    alerts: new Counter({ name: 'akto_proxy_anomaly_alerts_total', help: 'Anomaly detections.', labelNames: ['rule', 'severity', 'scope'], registers: [registry] }),
    incidents: new Counter({ name: 'akto_proxy_anomaly_incidents_total', help: 'Anomaly incidents opened (repeated alerts are grouped).', labelNames: ['rule', 'scope'], registers: [registry] }),
    escalations: new Counter({ name: 'akto_proxy_anomaly_escalations_total', help: 'Alerts escalated to a cool-down block or a stricter pack.', labelNames: ['rule', 'action'], registers: [registry] }),
    tracked: new Gauge({
      name: 'akto_proxy_limits_tracked',
      help: 'Entries held in the limits LRU tables (identities: anomaly baselines; counters: rule buckets).',
      labelNames: ['table'],
      registers: [registry],
      collect() {
        const [i, c] = sizes();
        this.set({ table: 'identities' }, i);
        this.set({ table: 'counters' }, c);
      },
    }),
    evicted: new Counter({
      name: 'akto_proxy_limits_evictions_total',
      help: 'Entries dropped from the limits LRU tables because they were full.',
      labelNames: ['table'],
      registers: [registry],
      collect() {
        const now = evictions();
        this.inc({ table: 'identities' }, now[0] - seen[0]);
        this.inc({ table: 'counters' }, now[1] - seen[1]);
        seen = now;
      },
    }),
  };
}

export type LimitsMetrics = ReturnType<typeof limitsMetrics>;
