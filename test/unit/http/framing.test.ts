import type { IncomingMessage } from 'node:http';
import { carriesBody, isRefusedMethod, requestFraming } from '../../../proxy/http/framing';

/** A request as Node's parser leaves it: raw header pairs, the joined map, the version. */
function req(raw: Array<[string, string]>, httpVersion = '1.1'): IncomingMessage {
  const headers: Record<string, string> = {};
  for (const [k, v] of raw) headers[k.toLowerCase()] = headers[k.toLowerCase()] === undefined ? v : `${headers[k.toLowerCase()]}, ${v}`;
  return { rawHeaders: raw.flat(), headers, httpVersion } as unknown as IncomingMessage;
}

describe('requestFraming', () => {
  test.each([
    [[], { ok: true, body: 'none' }],
    [[['Content-Length', '0']], { ok: true, body: 'length', length: 0 }],
    [[['Content-Length', '12']], { ok: true, body: 'length', length: 12 }],
    [[['Transfer-Encoding', 'chunked']], { ok: true, body: 'chunked' }],
    [[['Transfer-Encoding', 'Chunked']], { ok: true, body: 'chunked' }],
    [[['Connection', 'keep-alive, x-hop']], { ok: true, body: 'none' }],
  ] as Array<[Array<[string, string]>, object]>)('%j is framed as %j', (raw, framing) => {
    expect(requestFraming(req(raw))).toEqual(framing);
  });

  test.each([
    [[['Transfer-Encoding', 'gzip, chunked']], 'only chunked'],
    [[['Transfer-Encoding', 'chunked'], ['Transfer-Encoding', 'chunked']], 'only chunked'],
    [[['Transfer-Encoding', 'chunked'], ['Content-Length', '3']], 'both'],
    [[['Content-Length', '3'], ['Content-Length', '3']], 'more than one'],
    [[['Content-Length', '-1']], 'decimal'],
    [[['Connection', 'close, Content-Length'], ['Content-Length', '3']], 'content-length'],
    [[['Connection', 'x-forwarded-for']], 'x-forwarded-for'],
    [[['Connection', 'content-type']], 'content-type'],
  ] as Array<[Array<[string, string]>, string]>)('%j is refused (%s)', (raw, reason) => {
    const f = requestFraming(req(raw));
    expect(f.ok).toBe(false);
    expect(f.ok ? '' : f.reason).toContain(reason);
  });

  test('Transfer-Encoding on HTTP/1.0 is faulty framing (RFC 9112 §6.1)', () => {
    expect(requestFraming(req([['Transfer-Encoding', 'chunked']], '1.0'))).toMatchObject({ ok: false, reason: expect.stringContaining('HTTP/1.0') });
  });

  test('a body is carried by a chunked or non-empty length framing', () => {
    expect(carriesBody(requestFraming(req([['Transfer-Encoding', 'chunked']])))).toBe(true);
    expect(carriesBody(requestFraming(req([['Content-Length', '1']])))).toBe(true);
    expect(carriesBody(requestFraming(req([['Content-Length', '0']])))).toBe(false);
    expect(carriesBody(requestFraming(req([])))).toBe(false);
  });

  test('TRACE and CONNECT are refused in any case', () => {
    expect(['TRACE', 'trace', 'CONNECT'].map(isRefusedMethod)).toEqual([true, true, true]);
    expect(['GET', 'POST', 'DELETE', 'OPTIONS'].map(isRefusedMethod)).toEqual([false, false, false, false]);
  });
});
