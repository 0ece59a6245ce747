import { schemaProblems } from '../../../proxy/policy/load';

/** The limits fragment as the policy loader sees it: bad sections get readable "<path>: <problem>" lines. */
describe('limits schema fragment', () => {
  test('a full, valid limits policy passes', () => {
    expect(
      schemaProblems({
        version: 1,
        identity: { sources: [{ from: 'header', name: 'x-end-user-id' }, { from: 'body' }, { from: 'api_key' }, { from: 'client_address' }, { from: 'workload' }], max_length: 64 },
        limits: [
          { id: 'a', match: { paths: ['/v1/chat/completions'], apis: ['openai.chat'], models: ['tgi'] }, per: 'identity_model', requests: { limit: 5, window: '1m' }, tokens: { limit: 1000, window: 60 }, concurrent: 2, mode: 'shadow' },
        ],
        anomalies: {
          alpha: 0.1,
          warmup: 10,
          incident_gap: '5m',
          log_interval: '30s',
          max_log_lines_per_minute: 10,
          spike: { z: 4, min_stddev_ratio: 0.2, rate_interval: '5s', metrics: ['request_rate'] },
          loop: { repeats: 3, window: '1m', escalate: { action: 'block', duration: '5m' } },
          probing: { hits: 2, escalate: { action: 'pack', pack: 'strict', duration: '15m' } },
          output_jump: { ratio: 3, z: 3, min_tokens: 100, severity: 'critical' },
          error_burst: { enabled: false, errors: 3, rate: 0.5, window: '30s' },
        },
      }),
    ).toEqual([]);
  });

  test.each([
    [{ limits: [{ id: 'a', requests: { limit: 5, window: '1 minute' } }] }, '/limits/0/requests/window'],
    [{ limits: [{ id: 'a' }] }, '/limits/0'],
    [{ limits: [{ id: 'a', requests: { limit: 0, window: '1m' } }] }, '/limits/0/requests/limit'],
    [{ limits: [{ id: 'a', concurrent: 1, per: 'tenant' }] }, '/limits/0/per'],
    [{ identity: { sources: [{ from: 'header' }] } }, '/identity/sources/0'],
    [{ identity: { sources: [{ from: 'cookie' }] } }, '/identity/sources/0/from'],
    [{ anomalies: { loop: { escalate: { action: 'pack', duration: '5m' } } } }, '/anomalies/loop/escalate'],
    [{ anomalies: { spike: { metrics: ['latency'] } } }, '/anomalies/spike/metrics/0'],
    [{ anomalies: { probing: { hits: 3, windw: '5m' } } }, '/anomalies/probing'],
  ])('%j is refused at %s', (doc, path) => {
    const problems = schemaProblems({ version: 1, ...doc });
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.some((p) => p.startsWith(`${path}:`))).toBe(true);
  });
});
