import { loadIngestConfig } from '../../../proxy/ingest/config';
import { buildAktoRecord, RecordOptions, truncateUtf8 } from '../../../proxy/ingest/record';
import { validateRecord } from '../../fixtures/akto-receiver';
import { makeExchange } from './make-exchange';

const opts = (env: Record<string, string> = {}): RecordOptions => ({ ...loadIngestConfig(env).record, version: '9.9.9' });

describe('buildAktoRecord', () => {
  it('fills every field of the contract as strings, as the strict receiver checks them', () => {
    const { record, truncated } = buildAktoRecord(makeExchange(), opts());
    expect(validateRecord(record, { forbidden: ['hf_secretToken123'] })).toEqual([]);
    expect(truncated).toBe(0);
    expect(record).toMatchObject({
      path: '/v1/chat/completions?debug=1',
      method: 'POST',
      ip: '10.0.0.12',
      time: String(Math.floor(Date.UTC(2026, 10, 26, 12, 0, 0) / 1000)),
      statusCode: '200',
      status: 'OK',
      type: 'HTTP/1.1',
      akto_account_id: '1000000',
      akto_vxlan_id: '0',
      is_pending: 'false',
      source: 'MIRRORING',
    });
    expect(record.requestPayload).toContain('refund policy');
    expect(record.responsePayload).toContain('Refunds within 30 days.');
    expect(record._guardrail).toBeUndefined();
    expect(record.destIp).toBeUndefined();
  });

  it('names the collection after the upstream host and redacts secret headers', () => {
    const { record } = buildAktoRecord(makeExchange(), opts());
    const req = JSON.parse(record.requestHeaders);
    const res = JSON.parse(record.responseHeaders);
    expect(req.host).toBe('xyz.us-east-1.aws.endpoints.huggingface.cloud');
    expect(req.authorization).toBe('<redacted>');
    expect(req['x-session-id']).toBe('c0ffee-42');
    expect(res['set-cookie']).toBe('<redacted>');
    expect(res['x-compute-type']).toBe('gpu+optimized');
  });

  it('uses APP_SERVER_NAME, POD_IP, the pod name and AKTO_SECRET_HEADERS', () => {
    const ex = makeExchange({ requestHeaders: { 'x-internal-key': 'k-123', host: 'h' }, identity: 'key:abcd' });
    const o = opts({ APP_SERVER_NAME: 'support-agent.prod', POD_IP: '10.1.2.3', POD_NAME: 'agent-7d9', POD_NAMESPACE: 'ai', AKTO_SECRET_HEADERS: 'X-Internal-Key' });
    const { record } = buildAktoRecord(ex, o);
    expect(JSON.parse(record.requestHeaders)).toEqual({ host: 'support-agent.prod', 'x-internal-key': '<redacted>' });
    expect(record.ip).toBe('10.1.2.3');
    const tag = JSON.parse(record.tag);
    expect(tag).toMatchObject({ 'gen-ai': 'Gen AI', 'ai-agent': 'agent-7d9', 'agent-proxy': '9.9.9', guardrail: 'allowed', pod: 'agent-7d9', namespace: 'ai', identity: 'key:abcd', model: 'tgi' });
  });

  it('records the endpoint path (APP_URL prefix included by the server) and an IP upstream as destIp', () => {
    const ex = makeExchange({ upstream: new URL('http://10.0.0.40:8000/models/x/'), path: '/models/x/generate' });
    const { record } = buildAktoRecord(ex, opts());
    expect(record.path).toBe('/models/x/generate');
    expect(record.destIp).toBe('10.0.0.40');
  });

  it('records the event-stream text of a streamed answer', () => {
    const streamText = 'data:{"token":{"text":"Hi"}}\n\ndata:[DONE]\n\n';
    const ex = makeExchange({ stream: true, response: { status: 200, headers: { 'content-type': 'text/event-stream' }, streamText } });
    const { record } = buildAktoRecord(ex, opts());
    expect(record.responsePayload).toBe(streamText);
    expect(JSON.parse(record.tag).stream).toBe('true');
  });

  it('tags a request whose body was not read as unparsed, so a forwarded-uninspected body does not look clean', () => {
    const ex = makeExchange({ parseError: 'unsupported content-encoding "zstd"' });
    expect(JSON.parse(buildAktoRecord(ex, opts()).record.tag)['request-body']).toBe('unparsed');
    expect(JSON.parse(buildAktoRecord(makeExchange(), opts()).record.tag)['request-body']).toBeUndefined();
  });

  it('turns findings into _guardrail and the tag, with the strongest action first', () => {
    const ex = makeExchange({
      outcome: 'blocked',
      response: { status: 400, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"error":{"type":"guardrail_violation"}}') },
      findings: [
        { source: 'guardrail', ruleId: 'pii.email', action: 'redact', severity: 'medium', stage: 'request', reason: 'email address', detector: 'pii', entity: 'email' },
        { source: 'guardrail', ruleId: 'injection.ignore', action: 'block', severity: 'high', stage: 'request', reason: 'prompt injection', detector: 'injection' },
      ],
    });
    const { record } = buildAktoRecord(ex, opts());
    expect(validateRecord(record)).toEqual([]);
    expect(record.statusCode).toBe('400');
    expect(record.status).toBe('Bad Request');
    expect(record.responsePayload).toContain('guardrail_violation');
    const g = JSON.parse(record._guardrail as string);
    expect(g).toMatchObject({
      guardrailViolated: true,
      guardrailAction: 'block',
      guardrailRule: 'injection.ignore',
      guardrailSeverity: 'HIGH',
      guardrailReason: 'prompt injection',
      guardrailPolicy: 'guardrail/injection',
    });
    expect(g.guardrailFindings).toHaveLength(2);
    expect(JSON.parse(record.tag).guardrail).toBe('blocked');
  });

  it('gives exchanges without a response the status the client got', () => {
    const { record } = buildAktoRecord(makeExchange({ response: undefined, outcome: 'upstream_error' }), opts());
    expect(record.statusCode).toBe('502');
    expect(record.responsePayload).toBe('');
    expect(JSON.parse(record.responseHeaders)).toEqual({});
    expect(validateRecord(record)).toEqual([]);
  });

  it('switches time to milliseconds with AKTO_TIME_UNIT=ms', () => {
    const { record } = buildAktoRecord(makeExchange(), opts({ AKTO_TIME_UNIT: 'ms' }));
    expect(record.time).toBe(String(Date.UTC(2026, 10, 26, 12, 0, 0, 250)));
    expect(validateRecord(record, { timeUnit: 'ms' })).toEqual([]);
  });

  it('cuts payloads over AKTO_MAX_PAYLOAD_BYTES with a marker and counts them', () => {
    const big = Buffer.from(JSON.stringify({ inputs: 'é'.repeat(5000) }));
    const { record, truncated } = buildAktoRecord(makeExchange({ requestBody: big }), opts({ AKTO_MAX_PAYLOAD_BYTES: '2048' }));
    expect(truncated).toBe(1);
    expect(Buffer.byteLength(record.requestPayload)).toBeLessThanOrEqual(2048);
    expect(record.requestPayload).toMatch(/truncated by akto-agent-proxy: \d+ bytes, kept \d+\]$/);
    expect(record.requestPayload).not.toContain('\uFFFD');
    expect(JSON.parse(record.requestHeaders)['content-length']).toBe(String(big.length));
  });
});

describe('truncateUtf8', () => {
  it('leaves short text alone and never splits a character', () => {
    expect(truncateUtf8('hello', 100)).toBe('hello');
    const cut = truncateUtf8('😀'.repeat(100), 150);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(150);
    expect(cut.startsWith('😀')).toBe(true);
    expect(cut).not.toContain('\uFFFD');
  });
});
