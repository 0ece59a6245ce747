import { WarnMemory, warnFingerprint } from '../../../proxy/akto/warn';
import { parsedExchange } from '../../support/exchange';

describe('warn: refuse once, let the identical resubmission through once', () => {
  test('within the window the resubmission passes once; after it, or after the window, it is warned again', () => {
    let now = 0;
    const w = new WarnMemory(100, 60_000, () => now);
    expect(w.acknowledge('fp')).toBe(false);
    w.warn('fp');
    now = 59_000;
    expect(w.acknowledge('fp')).toBe(true);
    expect(w.acknowledge('fp')).toBe(false);
    w.warn('fp');
    now = 59_000 + 60_001;
    expect(w.acknowledge('fp')).toBe(false);
  });

  test('memory is bounded: the oldest warnings are forgotten (their resubmission is warned again, never let through unwarned)', () => {
    const w = new WarnMemory(3, 60_000, () => 0);
    for (const fp of ['a', 'b', 'c', 'd']) w.warn(fp);
    expect(w.size).toBe(3);
    expect(w.acknowledge('a')).toBe(false);
    expect(w.acknowledge('d')).toBe(true);
  });

  test('the fingerprint covers identity, phase, route and the forwarded body', () => {
    const ex = (identity: string, path = '/v1/chat/completions') => Object.assign(parsedExchange('POST', path, { model: 'm', messages: [] }), { identity });
    const body = Buffer.from('{"a":1}');
    const base = warnFingerprint(ex('user:a'), 'request', body);
    expect(warnFingerprint(ex('user:a'), 'request', body)).toBe(base);
    expect(warnFingerprint(ex('user:b'), 'request', body)).not.toBe(base);
    expect(warnFingerprint(ex('user:a'), 'response', body)).not.toBe(base);
    expect(warnFingerprint(ex('user:a', '/v1/completions'), 'request', body)).not.toBe(base);
    expect(warnFingerprint(ex('user:a'), 'request', Buffer.from('{"a":2}'))).not.toBe(base);
  });
});
