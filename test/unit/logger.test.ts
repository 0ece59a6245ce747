import { createLogger, redactLogObject } from '../../common/logger';
import { MIN_SECRET_LENGTH, SecretScrubber } from '../../common/scrub';
import { logSink } from '../support/proxy-harness';

describe('the logger', () => {
  test('secret headers are redacted wherever a header map sits in a log object', () => {
    const sink = logSink();
    const logger = createLogger('debug', sink.stream);
    logger.debug(
      {
        headers: { authorization: 'Bearer hf_top', 'x-api-key': 'k-1', accept: 'json' },
        response: { status: 200, headers: { 'set-cookie': 'session=s3cr3t', 'content-type': 'json' } },
        req: { headers: { cookie: 'a=b', 'proxy-authorization': 'Basic x' } },
      },
      'request detail',
    );
    logger.flush();
    const [line] = sink.lines as any[];
    expect(line.headers).toEqual({ authorization: '<redacted>', 'x-api-key': '<redacted>', accept: 'json' });
    expect(line.response.headers).toEqual({ 'set-cookie': '<redacted>', 'content-type': 'json' });
    expect(line.req.headers).toEqual({ cookie: '<redacted>', 'proxy-authorization': '<redacted>' });
    expect(JSON.stringify(sink.lines)).not.toMatch(/hf_top|s3cr3t|k-1/);
  });

  test('every configured secret value is scrubbed from every line, wherever it sits', () => {
    const env = {
      AKTO_API_TOKEN: 'eyJhbGciOi.akto-token.sig',
      UPSTREAM_AUTHORIZATION: 'Bearer hf_firstUpstream_0123',
      UPSTREAM_AUTHORIZATION_2: 'Basic c2VydmljZTpwdw==',
      GUARDRAILS_HASH_KEY: 'hash-key-material-42',
      APP_URL_1: 'https://svc:url-pass-77@llm.example.com/v1',
      POD_NAME: 'not-a-secret-pod',
    };
    const raw: string[] = [];
    const logger = createLogger('debug', { write: (line: string) => void raw.push(line) }, SecretScrubber.fromEnv(env));
    logger.error({ body: `{"headers":{"authorization":"${env.AKTO_API_TOKEN}"}}` }, 'Akto rejected a batch');
    logger.warn({ nested: { deeper: [`token hf_firstUpstream_0123 leaked`] } }, `message with ${env.GUARDRAILS_HASH_KEY}`);
    logger.info({ err: new Error(`upstream said: invalid credentials ${env.UPSTREAM_AUTHORIZATION_2}`) }, 'failure');
    logger.info({ quoted: 'a "hf_firstUpstream_0123" b', url: 'https://svc:url-pass-77@llm.example.com' }, 'JSON escaping and URL passwords');
    logger.info({ pod: env.POD_NAME }, 'ordinary values stay');
    logger.flush();
    const all = raw.join('');
    for (const secret of ['akto-token', 'hf_firstUpstream_0123', 'c2VydmljZTpwdw==', 'hash-key-material-42', 'url-pass-77']) expect(all).not.toContain(secret);
    expect(all).toContain('<redacted>');
    expect(all).toContain('not-a-secret-pod');
    for (const line of raw) expect(() => JSON.parse(line)).not.toThrow();
  });

  test('a secret shorter than the scrub minimum is not scrubbed (it would wreck every line)', () => {
    expect(SecretScrubber.fromEnv({ AKTO_API_TOKEN: 'abc' }).empty).toBe(true);
    expect(new SecretScrubber(['x'.repeat(MIN_SECRET_LENGTH)]).scrub(`a ${'x'.repeat(MIN_SECRET_LENGTH)} b`)).toBe('a <redacted> b');
  });
});

describe('redactLogObject', () => {
  test('copies what it censors and leaves the caller objects untouched', () => {
    const headers = { authorization: 'Bearer hf_x', accept: 'json' };
    const response = { status: 200, headers: { cookie: 'c=1' } };
    const obj = { headers, response, reqId: 'r1' };
    const out = redactLogObject(obj);
    expect(out).toEqual({ headers: { authorization: '<redacted>', accept: 'json' }, response: { status: 200, headers: { cookie: '<redacted>' } }, reqId: 'r1' });
    expect(headers.authorization).toBe('Bearer hf_x');
    expect(response.headers.cookie).toBe('c=1');
  });

  test('a line without secret headers is returned as is', () => {
    const obj = { reqId: 'r1', status: 200, headers: { accept: 'json' }, response: { headers: { 'content-type': 'json' } } };
    expect(redactLogObject(obj)).toBe(obj);
  });

  test('an error carrying headers keeps its message and stack through the err serializer', () => {
    const sink = logSink();
    const logger = createLogger('info', sink.stream);
    const err = Object.assign(new Error('upstream said no'), { headers: { 'set-cookie': 'session=s3cr3t' } });
    logger.error({ err }, 'failed');
    logger.flush();
    const [line] = sink.lines as any[];
    expect(line.err.message).toBe('upstream said no');
    expect(line.err.stack).toContain('upstream said no');
    expect(line.err.headers).toEqual({ 'set-cookie': '<redacted>' });
    expect(JSON.stringify(sink.lines)).not.toContain('s3cr3t');
    expect(err.headers['set-cookie']).toBe('session=s3cr3t');
  });
});
