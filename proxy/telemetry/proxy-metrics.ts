import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * The data plane's own metrics: traffic by route kind and status, upstream latency, bytes, in-flight. `direction`
 * separates the egress listeners (the agent's calls out) from the inbound listener (end users' calls in).
 */
export function createProxyMetrics(registry: Registry) {
  return {
    requests: new Counter({
      name: 'akto_proxy_requests_total',
      help: 'Proxied requests by direction, API kind, HTTP status and outcome.',
      labelNames: ['direction', 'api', 'status', 'outcome'] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'akto_proxy_request_duration_seconds',
      help: 'Time from request arrival to the last byte sent to the client.',
      labelNames: ['direction', 'api', 'stream'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    upstreamDuration: new Histogram({
      name: 'akto_proxy_upstream_response_seconds',
      help: 'Time from sending the request upstream to the upstream response head.',
      labelNames: ['direction', 'api'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    bytes: new Counter({
      name: 'akto_proxy_bytes_total',
      help: 'Body bytes received from clients (flow in) and sent to clients (flow out), by direction.',
      labelNames: ['direction', 'flow'] as const,
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'akto_proxy_in_flight_requests',
      help: 'Requests currently being proxied.',
      labelNames: ['direction'] as const,
      registers: [registry],
    }),
    clientErrors: new Counter({
      name: 'akto_proxy_client_errors_total',
      help: 'Requests refused before they reached the proxy: malformed (400), sent too slowly (408), CONNECT (405), head over MAX_HEADER_SIZE (431). They have no trace.',
      labelNames: ['status'] as const,
      registers: [registry],
    }),
    hookErrors: new Counter({
      name: 'akto_proxy_hook_errors_total',
      help: 'Exceptions thrown by a feature hook (guardrails, limits, ingest); the request went on.',
      labelNames: ['hook', 'phase'] as const,
      registers: [registry],
    }),
  };
}

export type ProxyMetrics = ReturnType<typeof createProxyMetrics>;
