import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { answer } from '../../../proxy/flight';
import { sendRaw } from '../../support/raw-http';
import { startFlightHarness, type FlightHarness } from '../../support/flight-harness';

describe('openFlight: a flight from the request head alone', () => {
  let upstream: StubUpstream;
  let harness: FlightHarness;
  beforeAll(async () => {
    upstream = await startStubUpstream();
    // Each opened flight is answered at once, so only what openFlight decided is observed.
    harness = await startFlightHarness({ upstream: upstream.url, step: (f) => answer(f, { status: 418, type: 't', code: 'opened', message: 'opened' }, 'blocked') });
  });
  afterAll(async () => {
    await harness.close();
    await upstream.close();
  });

  it('classifies the route, keeps a plain client request id and counts the flight until it ends', async () => {
    const res = await fetch(`${harness.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'abc-1' }, body: '{}' });
    expect(res.headers.get('x-request-id')).toBe('abc-1');
    const flight = harness.flights.at(-1)!;
    expect(flight.ex).toMatchObject({ id: 'abc-1', api: 'openai.chat', method: 'POST', path: '/v1/chat/completions', direction: 'egress' });
    expect(flight.inspect).toBe(true);
    expect(flight.framing).toEqual({ ok: true, body: 'length', length: 2 });
    expect(flight.pathRefused).toBeUndefined();
    expect(harness.ctx.connections.inFlight.has(flight)).toBe(false);
  });

  it('replaces a request id that is not a plain token', async () => {
    await fetch(`${harness.url}/v1/models`, { headers: { 'x-request-id': 'a b<script>' } });
    expect(harness.flights.at(-1)!.ex.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('marks a target with no single meaning as refused, and an unknown route as uninspected passthrough', async () => {
    await sendRaw(harness.url, { target: '/v1/chat%2Fcompletions', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(harness.flights.at(-1)!.pathRefused).toMatch(/percent-escapes/);
    await fetch(`${harness.url}/health`);
    const f = harness.flights.at(-1)!;
    expect(f.ex.api).toBe('passthrough');
    expect(f.inspect).toBe(false);
  });
});
