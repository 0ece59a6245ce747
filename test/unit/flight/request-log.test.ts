import { requestLine, requestTelemetry } from '../../../proxy/telemetry/request-log';
import { createLogger } from '../../../common/logger';
import { createRegistry } from '../../../common/metrics';
import { createProxyMetrics } from '../../../proxy/telemetry/proxy-metrics';
import { chatExchange } from '../../support/exchange';
import { logSink } from '../../support/proxy-harness';
import type { FlightRecord } from '../../../proxy/flight';

function record(over: Partial<FlightRecord> = {}): FlightRecord {
  const ex = chatExchange({ path: '/v1/chat/completions?api-version=1&key=secret' });
  ex.findings.push(
    { source: 'guardrail', ruleId: 'inj', action: 'block', severity: 'high', stage: 'request', reason: 'injection', category: 'prompt_injection', tier: 'model', score: 0.97 },
    { source: 'guardrail', ruleId: 'pii', action: 'redact', severity: 'medium', stage: 'request', reason: 'email' },
  );
  return { ex, outcome: 'blocked', status: 400, error: undefined, totalMs: 12.3456, bytesIn: 10, bytesOut: 20, ...over };
}

describe('request telemetry on finish', () => {
  it('the log line names the request, its end, its timing and its findings, without the query', () => {
    const line = requestLine(record());
    expect(line).toMatchObject({ path: '/v1/chat/completions', status: 400, outcome: 'blocked', totalMs: 12.35, bytesIn: 10, bytesOut: 20 });
    expect(line.findings).toEqual(['inj:block', 'pii:redact']);
    expect(line.risks).toEqual(['prompt_injection:model:0.97']);
  });

  it('writes one info line and counts the request, its duration and its bytes', async () => {
    const sink = logSink();
    const registry = createRegistry(false);
    const observe = requestTelemetry(createLogger('info', sink.stream), createProxyMetrics(registry));
    observe(record({ outcome: 'ok', status: 200 }));
    await new Promise((r) => setImmediate(r));
    expect(sink.lines.filter((l) => l.msg === 'request')).toHaveLength(1);
    expect(sink.lines.some((l) => l.msg === 'request detail')).toBe(false);
    const metrics = await registry.getMetricsAsJSON();
    const requests = metrics.find((m) => m.name === 'akto_proxy_requests_total')!;
    expect(requests.values).toEqual([expect.objectContaining({ value: 1, labels: expect.objectContaining({ status: '200', outcome: 'ok' }) })]);
    const bytes = metrics.find((m) => m.name === 'akto_proxy_bytes_total')!;
    expect(bytes.values.map((v) => v.value).sort()).toEqual([10, 20]);
  });

  it('at debug level adds the detail line', async () => {
    const sink = logSink();
    const observe = requestTelemetry(createLogger('debug', sink.stream), createProxyMetrics(createRegistry(false)));
    observe(record());
    await new Promise((r) => setImmediate(r));
    expect(sink.lines.find((l) => l.msg === 'request detail')).toMatchObject({ requestBody: expect.any(String) });
  });
});
