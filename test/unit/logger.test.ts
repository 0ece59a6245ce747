import { createLogger } from '../../proxy/telemetry/logger';
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
