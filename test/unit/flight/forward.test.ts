import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { admit } from '../../../proxy/flight/admit';
import { upstreamTarget } from '../../../proxy/flight';
import { startFlightHarness, type FlightHarness } from '../../support/flight-harness';
import { sendRaw } from '../../support/raw-http';

describe('forward: the request as the upstream gets it', () => {
  let upstream: StubUpstream;
  let harness: FlightHarness;
  beforeAll(async () => {
    upstream = await startStubUpstream();
    harness = await startFlightHarness({ upstream: `${upstream.url}/base`, env: { UPSTREAM_AUTHORIZATION: 'Bearer upstream-credential' }, step: admit });
  });
  afterAll(async () => {
    await harness.close();
    await upstream.close();
  });
  beforeEach(() => {
    upstream.requests.length = 0;
  });

  it("gets the upstream's Host, the listener's credential, the request id and X-Forwarded-* appended to the client's", async () => {
    await sendRaw(harness.url, {
      method: 'GET',
      target: '/v1/models?x=1',
      headers: { host: 'agent.local:9000', 'x-forwarded-for': '10.0.0.1', 'x-request-id': 'fwd-1', connection: 'keep-alive, x-drop', 'x-drop': 'hop' },
    });
    const got = upstream.requests[0];
    expect(got.path).toBe('/base/v1/models?x=1');
    expect(got.headers).toMatchObject({
      host: new URL(upstream.url).host,
      authorization: 'Bearer upstream-credential',
      'x-request-id': 'fwd-1',
      'x-forwarded-for': '10.0.0.1,127.0.0.1',
      'x-forwarded-port': '9000',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'agent.local:9000',
    });
    expect(got.headers['x-drop']).toBeUndefined();
  });

  it('frames the upstream body from what was read, not from the client headers', async () => {
    const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    await sendRaw(harness.url, { target: '/v1/chat/completions', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, body });
    const got = upstream.requests[0];
    expect(got.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(got.headers['transfer-encoding']).toBeUndefined();
    expect(got.json.messages[0].content).toBe('hi');
  });

  it('works out a target once: default ports, IPv6 literals', () => {
    expect(upstreamTarget(new URL('https://example.com/v1'))).toMatchObject({ hostname: 'example.com', port: 443, host: 'example.com', tls: true });
    expect(upstreamTarget(new URL('http://[::1]:8000'))).toMatchObject({ hostname: '::1', port: 8000, host: '[::1]:8000', tls: false });
  });
});
