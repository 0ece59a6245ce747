import { loadIngestConfig } from '../../../proxy/ingest/config';
import { buildAktoRecord, MAX_LISTED_FINDINGS, MAX_RECORD_BYTES, RecordOptions, truncateUtf8 } from '../../../proxy/ingest/record';
import type { Exchange, Finding } from '../../../proxy/protocols/exchange';
import { SecretScrubber } from '../../../common/scrub';
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

  it('names the tier that decided: a local rule, an Akto policy, a limit; a block without a finding is named by its hook', () => {
    const decided = (findings: Finding[], over: Partial<Exchange> = {}) =>
      JSON.parse(buildAktoRecord(makeExchange({ findings, ...over }), opts()).record.tag)['decided-by'];
    const local = { source: 'guardrail', ruleId: 'pii-redact', action: 'redact', severity: 'medium', stage: 'request', reason: 'EMAIL', detector: 'pii' } as const;
    const akto = { source: 'guardrail', ruleId: 'akto:finance', action: 'block', severity: 'high', stage: 'request', reason: 'Akto policy', detector: 'akto' } as const;
    const alert = { source: 'anomaly', ruleId: 'anomaly.loop', action: 'alert', severity: 'high', stage: 'request', reason: 'loop' } as const;
    expect(decided([local])).toBe('local:pii-redact');
    expect(decided([local, akto], { outcome: 'blocked' })).toBe('akto:finance');
    expect(decided([{ source: 'limit', ruleId: 'per-user', action: 'limit', severity: 'low', stage: 'request', reason: 'x' }], { outcome: 'blocked' })).toBe('limit:per-user');
    expect(decided([])).toBeUndefined();
    // Blocked by a hook that left no blocking finding: the alert is not what decided.
    expect(decided([alert], { outcome: 'blocked', traceTags: { 'decided-by': 'akto:unavailable' } })).toBe('akto:unavailable');
  });

  it('adds the tag keys hooks set (incident, akto verdicts) without letting them replace its own', () => {
    const ex = makeExchange({ traceTags: { incident: 'inc-1a2b3c-4', 'incident-kind': 'anomaly.loop', 'incident-severity': 'high', guardrail: 'allowed-by-hook', 'gen-ai': 'x' }, outcome: 'blocked' });
    const tag = JSON.parse(buildAktoRecord(ex, opts()).record.tag);
    expect(tag).toMatchObject({ incident: 'inc-1a2b3c-4', 'incident-kind': 'anomaly.loop', 'incident-severity': 'high', guardrail: 'blocked', 'gen-ai': 'Gen AI' });
  });

  it('gives exchanges without a response the status the client got', () => {
    const { record } = buildAktoRecord(makeExchange({ response: undefined, outcome: 'upstream_error' }), opts());
    expect(record.statusCode).toBe('502');
    expect(record.responsePayload).toBe('');
    expect(JSON.parse(record.responseHeaders)).toEqual({});
    expect(validateRecord(record)).toEqual([]);
  });

  it('writes time in epoch seconds, also with AKTO_TIME_UNIT=s', () => {
    const { record } = buildAktoRecord(makeExchange(), opts({ AKTO_TIME_UNIT: 's' }));
    expect(record.time).toBe(String(Math.floor(Date.UTC(2026, 10, 26, 12, 0, 0, 250) / 1000)));
  });

  it('keeps the whole serialized record under what Akto and its Kafka producer take, cutting payloads and marking them', () => {
    // Two payloads at the AKTO_MAX_PAYLOAD_BYTES maximum, full of characters JSON escapes, plus findings by the thousand.
    const quoted = '"\\'.repeat(1.4 * 1024 * 1024);
    const ex = makeExchange({
      requestBody: Buffer.from(JSON.stringify({ inputs: quoted })),
      response: { status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(`{"generated_text":${JSON.stringify(quoted)}}`) },
      findings: Array.from({ length: 20_000 }, (_, i) => ({ source: 'guardrail', ruleId: `pii-${i}`, action: 'flag' as const, severity: 'low' as const, stage: 'request' as const, reason: 'email address', detector: 'pii', entity: 'EMAIL' })),
    });
    const { record, truncated } = buildAktoRecord(ex, opts({ AKTO_MAX_PAYLOAD_BYTES: String(4 * 1024 * 1024) }));
    const size = Buffer.byteLength(JSON.stringify(record));
    expect(size).toBeLessThanOrEqual(MAX_RECORD_BYTES);
    expect(size).toBeGreaterThan(MAX_RECORD_BYTES - 256 * 1024); // cut to fit, not emptied
    expect(validateRecord(record)).toEqual([]);
    expect(truncated).toBe(2);
    expect(record.requestPayload).toMatch(/truncated by akto-agent-proxy: \d+ bytes, kept \d+\]$/);
    expect(record.responsePayload).toMatch(/truncated by akto-agent-proxy: \d+ bytes, kept \d+\]$/);
    expect(JSON.parse(record.tag).truncated).toBe('requestPayload,responsePayload');
    const verdict = JSON.parse(record._guardrail ?? '{}');
    expect(verdict.guardrailFindings).toHaveLength(MAX_LISTED_FINDINGS);
    expect(verdict.guardrailFindingsOmitted).toBe(20_000 - MAX_LISTED_FINDINGS);
  });

  it('gives the small payload its whole text when only the other one is huge', () => {
    const ex = makeExchange({ response: { status: 200, headers: {}, body: Buffer.from('x'.repeat(4 * 1024 * 1024 + 10)) } });
    const o = opts({ AKTO_MAX_PAYLOAD_BYTES: String(4 * 1024 * 1024) });
    const { record } = buildAktoRecord(ex, o);
    expect(record.requestPayload).toContain('refund policy');
    expect(JSON.parse(record.tag).truncated).toBe('responsePayload');
  });

  it('replaces configured secret values wherever they appear in the record', () => {
    const token = 'eyJhbGciOiJSUzI1NiJ9.akto-token.sig';
    const hf = 'hf_upstreamCredential_0123456789';
    const secrets = SecretScrubber.fromEnv({ AKTO_API_TOKEN: token, UPSTREAM_AUTHORIZATION_1: `Bearer ${hf}` });
    const ex = makeExchange({
      path: `/v1/chat/completions?key=${hf}`,
      requestHeaders: { host: 'h', 'x-echo': `token ${token}` },
      requestBody: Buffer.from(JSON.stringify({ messages: [{ role: 'user', content: `my key is "${hf}"` }] })),
      response: { status: 401, headers: { 'x-debug': `Bearer ${hf}` }, body: Buffer.from(`{"error":"invalid token Bearer ${hf}"}`) },
    });
    const { record } = buildAktoRecord(ex, { ...opts(), secrets });
    const text = JSON.stringify(record);
    expect(text).not.toContain(hf);
    expect(text).not.toContain(token);
    expect(validateRecord(record)).toEqual([]);
    expect(record.requestPayload).toContain('<redacted>');
    expect(JSON.parse(record.requestHeaders)['x-echo']).toBe('token <redacted>');
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
