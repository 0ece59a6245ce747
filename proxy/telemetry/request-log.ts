import type { Exchange, Outcome } from '../protocols/exchange';
import type { Logger } from '../../common/logger';
import type { createProxyMetrics } from './proxy-metrics';

/** What a finished exchange adds to its Exchange, for the request log line and the metrics. */
export interface FlightRecord {
  ex: Exchange;
  outcome: Outcome;
  /** The status the client got; 499 when it left first, 0 when it got no head. */
  status: number;
  /** The refusal or failure code, when there is one. */
  error?: string;
  totalMs: number;
  bytesIn: number;
  bytesOut: number;
}

/** Telemetry on every finished exchange (the request log line, the traffic metrics). Must not throw. */
export type FinishObserver = (record: FlightRecord) => void;

/** The request log line and the traffic metrics, written once per finished exchange. */
export function requestTelemetry(logger: Logger, metrics: ReturnType<typeof createProxyMetrics>): FinishObserver {
  return (record) => {
    const { ex, outcome, status, totalMs } = record;
    const { direction } = ex;
    metrics.requests.inc({ direction, api: ex.api, status: String(status), outcome });
    metrics.duration.observe({ direction, api: ex.api, stream: String(ex.stream) }, totalMs / 1000);
    metrics.bytes.inc({ direction, flow: 'in' }, record.bytesIn);
    metrics.bytes.inc({ direction, flow: 'out' }, record.bytesOut);
    logger.info(requestLine(record), 'request');
    if (logger.isLevelEnabled('debug')) logger.debug(requestDetail(record), 'request detail');
  };
}

/** The one line per request: what it was, how it ended, how long it took, what the guardrails found. */
export function requestLine(record: FlightRecord): Record<string, unknown> {
  const { ex } = record;
  const risky = ex.findings.filter((f) => f.category);
  return {
    reqId: ex.id,
    direction: ex.direction,
    method: ex.method,
    path: pathOnly(ex.path),
    api: ex.api,
    model: ex.model,
    stream: ex.stream,
    status: record.status,
    outcome: record.outcome,
    error: record.error,
    upstreamMs: ex.upstreamMs,
    totalMs: Math.round(record.totalMs * 100) / 100,
    bytesIn: record.bytesIn,
    bytesOut: record.bytesOut,
    identity: ex.identity,
    findings: ex.findings.length > 0 ? ex.findings.map((f) => `${f.ruleId}:${f.action}`) : undefined,
    // category:tier:score of each guardrail finding that names a risk category (e.g. prompt_injection:model:0.97)
    risks: risky.length > 0 ? risky.map((f) => `${f.category}:${f.tier ?? 'heuristic'}:${f.score ?? ''}`) : undefined,
  };
}

/** At debug level only: the headers and bodies (the logger's scrubber redacts secrets in them). */
function requestDetail({ ex }: FlightRecord): Record<string, unknown> {
  return {
    reqId: ex.id,
    headers: ex.requestHeaders,
    requestBody: ex.requestBody.toString('utf8'),
    response: ex.response && {
      status: ex.response.status,
      headers: ex.response.headers,
      body: ex.response.streamText ?? ex.response.body?.toString('utf8'),
    },
  };
}

export function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}
