import { renderError } from '../../../proxy/protocols/errors';

const verdict = { status: 403, type: 'guardrail_violation', code: 'pii.email', message: 'Blocked by policy' };

describe('renderError', () => {
  test('OpenAI dialect: {error:{message,type,code,param}} and x-should-retry false', () => {
    const r = renderError('openai', verdict);
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body.toString())).toEqual({ error: { message: 'Blocked by policy', type: 'guardrail_violation', code: 'pii.email', param: null } });
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['x-should-retry']).toBe('false');
    expect(r.headers['content-length']).toBe(String(r.body.length));
  });

  test('TGI dialect: {error, error_type} with a type huggingface_hub names (validation / generation / overloaded)', () => {
    const r = renderError('tgi', verdict);
    expect(JSON.parse(r.body.toString())).toEqual({ error: 'Blocked by policy', error_type: 'validation' });
    expect(r.headers['x-should-retry']).toBe('false');
    expect(JSON.parse(renderError('tgi', verdict, 'response').body.toString()).error_type).toBe('generation');
    expect(JSON.parse(renderError('tgi', { ...verdict, status: 429 }).body.toString()).error_type).toBe('overloaded');
    expect(JSON.parse(renderError('tgi', { ...verdict, status: 413, type: 'request_too_large' }).body.toString()).error_type).toBe('validation');
    expect(JSON.parse(renderError('tgi', { ...verdict, status: 502, type: 'upstream_unreachable' }).body.toString()).error_type).toBe('upstream_unreachable');
  });

  test('429 leaves retrying to the client and merges verdict headers', () => {
    const r = renderError('openai', { status: 429, type: 'rate_limit_exceeded', code: 'rpm', message: 'slow down', headers: { 'Retry-After': '3' } });
    expect(r.status).toBe(429);
    expect(r.headers['x-should-retry']).toBeUndefined();
    expect(r.headers['retry-after']).toBe('3');
  });
});
