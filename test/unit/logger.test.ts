import { createLogger, redactLogObject } from '../../proxy/telemetry/logger';
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
