import { startStubUpstream, type StubUpstream } from '../../fixtures/stub-upstream';
import { admit, headRefusal } from '../../../proxy/flight/admit';
import { editSegment } from '../../../proxy/protocols/exchange';
import type { ExchangeHooks } from '../../../proxy/hooks';
import { startFlightHarness, type FlightHarness } from '../../support/flight-harness';
import { sendRaw } from '../../support/raw-http';

const chat = (content: string) => JSON.stringify({ model: 'm', messages: [{ role: 'user', content }] });

describe('admit: refusals, the request body, the request verdict', () => {
  let upstream: StubUpstream;
  let harness: FlightHarness;
  const hook: ExchangeHooks = {
    name: 'test',
    onRequest(ex) {
      const text = ex.input.map((s) => s.text).join(' ');
      if (text.includes('forbidden')) return { status: 400, type: 'guardrail', code: 'test_block', message: 'blocked by test' };
      for (const s of ex.input) if (s.text.includes('secret-word')) editSegment(s, s.text.replace('secret-word', '[REDACTED]'));
    },
  };
  beforeAll(async () => {
    upstream = await startStubUpstream();
    harness = await startFlightHarness({ upstream: upstream.url, env: { MAX_REQUEST_SIZE: '2048' }, hooks: [hook], step: admit });
  });
  afterAll(async () => {
    await harness.close();
    await upstream.close();
  });
  beforeEach(() => {
    upstream.requests.length = 0;
  });

  it('forwards an accepted request and the flight finishes ok', async () => {
    const res = await fetch(`${harness.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chat('hello') });
    expect(res.status).toBe(200);
    await res.text();
    expect(upstream.requests).toHaveLength(1);
    expect(harness.records.at(-1)).toMatchObject({ outcome: 'ok', status: 200 });
  });

  it('a block from the request verdict is answered and never reaches the upstream', async () => {
    const res = await fetch(`${harness.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chat('forbidden') });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('blocked by test');
    expect(upstream.requests).toHaveLength(0);
    expect(harness.records.at(-1)).toMatchObject({ outcome: 'blocked', status: 400, error: undefined });
  });

  it('an edited input is serialised again before it is forwarded', async () => {
    const res = await fetch(`${harness.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chat('my secret-word here') });
    await res.text();
    expect(upstream.requests[0].json.messages[0].content).toBe('my [REDACTED] here');
  });

  it('a body over MAX_REQUEST_SIZE is refused 413 without reaching the upstream', async () => {
    const res = await fetch(`${harness.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chat('x'.repeat(4096)) });
    expect(res.status).toBe(413);
    expect(upstream.requests).toHaveLength(0);
    expect(harness.records.at(-1)).toMatchObject({ outcome: 'too_large', error: 'request_too_large' });
  });

  it('refuses from the head alone: TRACE, a target with no single meaning', async () => {
    const trace = await sendRaw(harness.url, { method: 'TRACE', target: '/v1/models' });
    expect(trace.status).toBe(405);
    expect(headRefusal(harness.flights.at(-1)!)).toMatchObject({ code: 'method_not_allowed' });
    const path = await sendRaw(harness.url, { target: '/v1/chat%2Fcompletions', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(path.status).toBe(400);
    const flight = harness.flights.at(-1)!;
    expect(headRefusal(flight)).toMatchObject({ code: 'invalid_request_path' });
    expect(flight.ex.notes.proxy).toMatchObject({ refused: 'request path' });
    expect(upstream.requests).toHaveLength(0);
  });
});
