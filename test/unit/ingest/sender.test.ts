import { aktoRoute, batchBody, classify, parseRetryAfter } from '../../../proxy/ingest/sender';
import { splitBatches } from '../../../proxy/ingest/delivery';

describe('sender helpers', () => {
  it('classifies Akto answers the way delivery acts on them', () => {
    expect(classify(200, '{"success":false}')).toEqual({ kind: 'ok', status: 200, acknowledged: false });
    expect(classify(200, '{"success":true}')).toEqual({ kind: 'ok', status: 200, acknowledged: true });
    expect(classify(204, '')).toEqual({ kind: 'ok', status: 204, acknowledged: false });
    expect(classify(401, '')).toEqual({ kind: 'auth', status: 401 });
    expect(classify(403, '')).toEqual({ kind: 'auth', status: 403 });
    expect(classify(429, '', '7')).toMatchObject({ kind: 'retry', status: 429, retryAfterMs: 7000 });
    expect(classify(408, '')).toMatchObject({ kind: 'retry', status: 408 });
    expect(classify(502, '')).toMatchObject({ kind: 'retry', status: 502 });
    expect(classify(503, '')).toMatchObject({ kind: 'retry', status: 503 });
    // The real service: 500 for a body it cannot parse (or a crash), 422 for no batchData (or a Kafka insert error).
    expect(classify(422, '{"actionErrors":["x"]}')).toEqual({ kind: 'suspect', status: 422, body: '{"actionErrors":["x"]}' });
    expect(classify(500, 'oops')).toEqual({ kind: 'suspect', status: 500, body: 'oops' });
    expect(classify(400, 'bad')).toMatchObject({ kind: 'reject', status: 400 });
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-11-26T12:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter('Thu, 26 Nov 2026 12:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('builds routes from the base URL, also when the route was pasted in', () => {
    expect(aktoRoute(new URL('https://1000-guardrails.akto.io'), '/api/ingestData').href).toBe('https://1000-guardrails.akto.io/api/ingestData');
    expect(aktoRoute(new URL('http://akto:9091/ingest/'), '/api/ingestData').href).toBe('http://akto:9091/ingest/api/ingestData');
    expect(aktoRoute(new URL('http://akto:9091/api/ingestData'), '/api/auth-check').href).toBe('http://akto:9091/api/auth-check');
  });

  it('wraps serialized records in batchData and splits by count and bytes', () => {
    expect(JSON.parse(batchBody(['{"a":"1"}', '{"a":"2"}']))).toEqual({ batchData: [{ a: '1' }, { a: '2' }] });
    const lines = Array.from({ length: 10 }, (_, i) => JSON.stringify({ i: String(i), pad: 'x'.repeat(100) }));
    expect(splitBatches(lines, 4, 1 << 20).map((b) => b.length)).toEqual([4, 4, 2]);
    const bySize = splitBatches(lines, 100, 400);
    for (const b of bySize) expect(Buffer.byteLength(batchBody(b))).toBeLessThanOrEqual(400);
    expect(bySize.flat()).toEqual(lines);
  });
});
