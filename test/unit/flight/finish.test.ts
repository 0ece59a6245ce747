import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { answer } from '../../../proxy/flight';
import { complete, failed, upstreamFailed } from '../../../proxy/flight/finish';
import type { Flight } from '../../../proxy/flight';
import type { ExchangeHooks } from '../../../proxy/hooks';
import { startFlightHarness, type FlightHarness } from '../../support/flight-harness';

const TEAPOT = { status: 429, type: 'rate_limit', code: 'test_limit', message: 'slow down' };

describe('finish: the one end of every flight', () => {
  let upstream: StubUpstream;
  let harness: FlightHarness;
  let step: (flight: Flight) => void;
  const completed: string[] = [];
  const hooks: ExchangeHooks[] = [
    { name: 'throws', onComplete: () => { throw new Error('hook broke'); } },
    { name: 'counts', onComplete: (ex) => void completed.push(`${ex.id}:${ex.outcome}`) },
  ];
  beforeAll(async () => {
    upstream = await startStubUpstream();
    harness = await startFlightHarness({ upstream: upstream.url, hooks, step: (f) => step(f) });
  });
  afterAll(async () => {
    await harness.close();
    await upstream.close();
  });

  it("answer() renders the verdict in the client's API shape, then completes once: hooks, then telemetry", async () => {
    step = (f) => {
      answer(f, TEAPOT, 'blocked');
      answer(f, { status: 500, type: 'x', code: 'second', message: 'second' }, 'error');
      complete(f, 'ok');
    };
    const res = await fetch(`${harness.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'fin-1' }, body: '{}' });
    expect(res.status).toBe(429);
    expect(res.headers.get('x-request-id')).toBe('fin-1');
    expect(((await res.json()) as { error: unknown }).error).toMatchObject({ message: 'slow down', code: 'test_limit' });
    const mine = harness.records.filter((r) => r.ex.id === 'fin-1');
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ outcome: 'blocked', status: 429, error: 'test_limit' });
    expect(mine[0].ex.traceTags).toEqual({ 'proxy-error': 'test_limit' });
    expect(mine[0].ex.response?.body?.toString()).toContain('slow down');
    // The throwing hook is logged and counted; the next one still runs.
    expect(completed).toContain('fin-1:blocked');
    expect(harness.logs.some((l) => l.hook === 'throws' && l.phase === 'complete')).toBe(true);
  });

  it('an upstream failure is retryable: no x-should-retry: false', async () => {
    step = (f) => upstreamFailed(f, { status: 502, type: 'upstream_unreachable', code: 'upstream_unreachable', message: 'gone' }, 'upstream_error');
    const res = await fetch(`${harness.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(502);
    expect(res.headers.get('x-should-retry')).toBeNull();
    expect(harness.records.at(-1)).toMatchObject({ outcome: 'upstream_error', error: 'upstream_unreachable' });
  });

  it("the proxy's own exception is a logged 500, without the error's text", async () => {
    step = (f) => failed(f, new Error('internal detail'));
    const res = await fetch(`${harness.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain('internal detail');
    expect(harness.records.at(-1)).toMatchObject({ outcome: 'error', error: 'proxy_error' });
  });

  it('a refusal with the body unread closes the connection and refuses what follows on it', async () => {
    step = (f) => answer(f, TEAPOT, 'blocked');
    const res = await fetch(`${harness.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(100) });
    expect(res.headers.get('connection')).toBe('close');
    const flight = harness.flights.at(-1)!;
    expect(harness.ctx.connections.refusesRest(flight.req.socket)).toBe(true);
  });

  it('a client that leaves before its answer ends the flight as aborted (499)', async () => {
    step = () => undefined;
    const ac = new AbortController();
    const pending = fetch(`${harness.url}/v1/models`, { signal: ac.signal }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    await pending;
    await new Promise((r) => setTimeout(r, 100));
    expect(harness.records.at(-1)).toMatchObject({ outcome: 'aborted', status: 499 });
  });
});
