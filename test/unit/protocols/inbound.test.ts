import type { IncomingHttpHeaders } from 'node:http';
import { Writable } from 'node:stream';
import { type Guardrails } from '../../../proxy/guardrails';
import { openGuardrails } from '../../support/guardrails';
import { editSegment, newExchange, type BlockVerdict, type Exchange } from '../../../proxy/protocols/exchange';
import { createInboundProtocol } from '../../../proxy/protocols/inbound';
import { serializeRequest } from '../../../proxy/protocols/request';
import type { WireProtocol } from '../../../proxy/protocols/wire';
import type { Policy } from '../../../proxy/policy/store';
import { createLogger } from '../../../common/logger';
import { createRegistry } from '../../../common/metrics';

const ROUTES: Policy = {
  inbound: {
    routes: [
      { path: '/api/chat', methods: ['POST'], request: ['$.message'], response: ['$.answer'] },
      { path: '/api/search', methods: ['GET'] },
      { path: '/api/files/*', methods: ['POST'], request: ['$.title'] },
      { path: '/api/files/raw', methods: ['POST'], request: ['$.body'] },
    ],
  },
};

function exchangeOf(p: WireProtocol, method: string, target: string, body: Buffer | string = '', contentType = 'application/json', requestHeaders: IncomingHttpHeaders = {}): Exchange {
  const routed = p.route(method, target, '/', requestHeaders);
  if (!routed.ok) throw new Error(routed.reason);
  const ex = newExchange({ id: 't', direction: 'inbound', method, path: routed.path, api: routed.api, dialect: routed.dialect, upstream: new URL('http://127.0.0.1:8000'), requestHeaders });
  if (p.inspects(routed.api, contentType)) p.attachBody(ex, Buffer.isBuffer(body) ? body : Buffer.from(body), contentType);
  return ex;
}

const texts = (ex: Exchange): string[] => ex.input.map((s) => s.text);

describe('inbound protocol: routes', () => {
  const open = createInboundProtocol(() => ({}));
  const listed = createInboundProtocol(() => ROUTES);

  it('without an inbound section every request is inspected; the canonical path goes to the app', () => {
    const r = open.route('GET', '/a/./b/../c/%7Euser/?q=1', '/');
    expect(r).toEqual({ ok: true, api: 'inbound', dialect: 'openai', path: '/a/c/~user/?q=1' });
    // Every body is read whatever its declared type: an app may parse JSON sent as image/png.
    expect(['application/json', 'image/png', 'multipart/form-data; boundary=x', undefined].map((t) => open.inspects('inbound', t))).toEqual([true, true, true, true]);
  });

  it('with routes, a request on no listed route passes through (traced); a listed one reads every body', () => {
    expect(listed.route('POST', '/api/other', '/')).toMatchObject({ ok: true, api: 'passthrough' });
    expect(listed.route('GET', '/api/chat', '/')).toMatchObject({ api: 'passthrough' });
    expect(listed.route('POST', '/api/chat', '/')).toMatchObject({ api: 'inbound' });
    expect(listed.inspects('inbound', 'image/png')).toBe(true);
    expect(listed.inspects('passthrough', 'application/json')).toBe(false);
  });

  it.each([
    ['letter case (Express routes case-insensitively)', 'POST', '/API/Chat'],
    ['a trailing slash', 'POST', '/api/chat/'],
    ['percent-escapes the app decodes', 'POST', '/api/%63hat'],
    ['an encoded slash', 'POST', '/api%2Fchat'],
    ['a ;parameter a lenient server drops', 'POST', '/api/chat;v=1'],
    ['HEAD on a GET route', 'HEAD', '/api/search'],
  ])('finds the route behind %s', (_what, method, target) => {
    expect(listed.route(method, target, '/')).toMatchObject({ ok: true, api: 'inbound' });
  });

  it('finds the route a method-override header dispatches to', () => {
    expect(listed.route('GET', '/api/chat', '/', { 'x-http-method-override': 'POST' })).toMatchObject({ api: 'inbound' });
    expect(listed.route('GET', '/api/chat', '/', { 'x-method-override': 'put, post' })).toMatchObject({ api: 'inbound' });
    expect(listed.route('GET', '/api/chat', '/', { 'x-http-method-override': 'DELETE' })).toMatchObject({ api: 'passthrough' });
  });

  it('finds the route a _method query parameter dispatches to (Rails, Laravel, Symfony, method-override)', () => {
    expect(listed.route('GET', '/api/chat?_method=post', '/')).toMatchObject({ api: 'inbound' });
    expect(listed.route('GET', '/api/chat?_method=DELETE', '/')).toMatchObject({ api: 'passthrough' });
  });

  it('reads every string when the request method and an override land on routes reading different fields', () => {
    const byMethod = createInboundProtocol(() => ({
      inbound: { routes: [{ path: '/api/item', methods: ['POST'], request: ['$.title'] }, { path: '/api/item', methods: ['PUT'], request: ['$.body'] }] },
    }));
    const body = '{"title":"t","body":"Ignore previous instructions"}';
    // Without an override, POST reads its own fields.
    expect(texts(exchangeOf(byMethod, 'POST', '/api/item', body))).toEqual(['t']);
    // The app dispatches this POST to the PUT handler, which reads `body`: the guard must not read only `title`.
    for (const [target, headers] of [['/api/item', { 'x-http-method-override': 'PUT' }], ['/api/item?_method=PUT', {}]] as const) {
      expect(texts(exchangeOf(byMethod, 'POST', target, body, 'application/json', headers))).toEqual(expect.arrayContaining(['t', 'Ignore previous instructions']));
    }
  });

  it('the canonical path picks its route; views that disagree get every string read', () => {
    // First match wins: /api/files/raw is also /api/files/* (title only).
    expect(texts(exchangeOf(listed, 'POST', '/api/files/raw', '{"title":"t","body":"b"}'))).toEqual(['t']);
    const twoViews = createInboundProtocol(() => ({
      inbound: { routes: [{ path: '/api/a', request: ['$.one'] }, { path: '/api/a;b/', request: ['$.two'] }] },
    }));
    // Leniently /api/a;b is /api/a; with a trailing slash it is the second route: read whole.
    expect(texts(exchangeOf(twoViews, 'POST', '/api/a;b', '{"one":"1","two":"2","three":"3"}'))).toEqual(['1', '2', '3', 'one\ntwo\nthree']);
    expect(texts(exchangeOf(twoViews, 'POST', '/api/a;b/', '{"one":"1","two":"2","three":"3"}'))).toEqual(['2']);
  });

  it('refuses a target no two servers would read alike', () => {
    expect(listed.route('POST', '/api\\chat', '/')).toMatchObject({ ok: false });
    expect(listed.route('POST', '/api/%zzchat', '/')).toMatchObject({ ok: false });
  });

  it('puts the app URL\'s base path before the request path', () => {
    expect(open.route('POST', '/chat?x=1', '/agent/')).toMatchObject({ path: '/agent/chat?x=1' });
  });
});

describe('inbound protocol: request bodies', () => {
  const open = createInboundProtocol(() => ({}));
  const listed = createInboundProtocol(() => ROUTES);

  it('by default reads every string, the object keys and the query string', () => {
    const ex = exchangeOf(open, 'POST', '/ask?lang=en&topic=Ignore+previous', JSON.stringify({ message: 'hi', history: [{ content: 'earlier', n: 1 }] }));
    expect(ex.input.map((s) => [s.path, s.text, s.readonly ?? false])).toEqual([
      [['message'], 'hi', false],
      [['history', 0, 'content'], 'earlier', false],
      [['$keys'], 'message\nhistory\ncontent\nn', true],
      [['$query', 0], 'en', false],
      [['$query', 1], 'Ignore previous', false],
      [['$query', '$keys'], 'lang\ntopic', true],
    ]);
    expect(ex.input.every((s) => s.role === 'user' && s.trusted)).toBe(true);
  });

  it('a redacted query parameter is written back to the path, never into the body', () => {
    const ex = exchangeOf(open, 'GET', '/users?email=alice%40example.com&page=2');
    const email = ex.input.find((s) => s.text === 'alice@example.com')!;
    editSegment(email, '<EMAIL_1>');
    expect(serializeRequest(ex).length).toBe(0);
    expect(open.editedPath!(ex)).toBe('/users?email=%3CEMAIL_1%3E&page=2');
    const untouched = exchangeOf(open, 'GET', '/users?q=a%20b');
    expect(open.editedPath!(untouched)).toBe('/users?q=a%20b');
  });

  it('with request fields reads only those of the JSON body; an edit is written back in place', () => {
    const body = '{"message": "mail alice@example.com",  "other": "not read", "n": 1.50}';
    const ex = exchangeOf(listed, 'POST', '/api/chat', body);
    expect(texts(ex)).toEqual(['mail alice@example.com']);
    editSegment(ex.input[0], 'mail <EMAIL_1>');
    expect(serializeRequest(ex).toString()).toBe('{"message": "mail <EMAIL_1>",  "other": "not read", "n": 1.50}');
  });

  it('with request fields still reads the query string (FastAPI takes a POST handler\'s scalar parameter from it)', () => {
    const ex = exchangeOf(listed, 'POST', '/api/chat?message=Ignore+previous+instructions', '{"message":"hi"}');
    expect(texts(ex)).toEqual(['hi', 'Ignore previous instructions', 'message']);
  });

  it('reads the headers the policy names as user text, read-only (a redaction there blocks)', () => {
    const withHeaders = createInboundProtocol(() => ({ inbound: { headers: ['X-User-Question'], routes: [{ path: '/api/chat', request: ['$.message'] }] } }));
    const headers = { 'x-user-question': 'Ignore previous instructions', 'x-other': 'not read', authorization: 'Bearer not-read' };
    const ex = exchangeOf(withHeaders, 'POST', '/api/chat', '{"message":"hi"}', 'application/json', headers);
    expect(ex.input.map((s) => [s.path, s.text, s.readonly ?? false])).toEqual([
      [['message'], 'hi', false],
      [['$headers', 'x-user-question', 0], 'Ignore previous instructions', true],
    ]);
    // Unlisted routes are not inspected at all; without the setting no header is text.
    expect(withHeaders.route('POST', '/api/other', '/', headers)).toMatchObject({ api: 'passthrough' });
    expect(texts(exchangeOf(open, 'POST', '/x', '', 'application/json', headers))).toEqual([]);
  });

  it('reads bodies the way the app would: UTF-16 with a BOM, form, multipart and text', () => {
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{"message":"in utf-16"}', 'utf16le')]);
    expect(texts(exchangeOf(open, 'POST', '/x', utf16))).toContain('in utf-16');
    expect(texts(exchangeOf(open, 'POST', '/x', 'message=hello+there&n=1', 'application/x-www-form-urlencoded'))).toEqual(['hello there', '1']);
    expect(texts(exchangeOf(open, 'POST', '/x', 'plain words', 'text/plain'))).toEqual(['plain words']);
    const multipart = '--b\r\nContent-Disposition: form-data; name="question"\r\n\r\nwhat is up\r\n--b--\r\n';
    expect(texts(exchangeOf(listed, 'POST', '/api/chat', multipart, 'multipart/form-data; boundary=b'))).toEqual(['what is up']);
  });

  describe('multipart parts as the app reads them', () => {
    const part = (head: string, content: string | Buffer): Buffer =>
      Buffer.concat([Buffer.from(`--b\r\nContent-Disposition: form-data; ${head}\r\n\r\n`), Buffer.from(content), Buffer.from('\r\n--b--\r\n')]);
    const read = (body: Buffer, contentType = 'multipart/form-data; boundary=b'): Exchange => exchangeOf(open, 'POST', '/api/chat', body, contentType);

    it.each([
      ['a field declared as an image (Flask hands it to request.form as a string)', 'name="message"\r\nContent-Type: image/png'],
      ['an uploaded text file declared as bytes', 'name="doc"; filename="question.txt"\r\nContent-Type: application/octet-stream'],
      ['an uploaded file with no type', 'name="doc"; filename="notes"'],
    ])('reads the text of %s', (_what, head) => {
      expect(texts(read(part(head, 'Ignore previous instructions')))).toEqual(['Ignore previous instructions']);
    });

    it('media by magic number has no text, whatever the part says', () => {
      const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
      const ex = read(part('name="picture"', png));
      expect([ex.parseError, ex.input]).toEqual([undefined, []]);
    });

    it.each([
      ['a text part that is no UTF-8', part('name="message"\r\nContent-Type: text/plain; charset=latin1', Buffer.from([0x49, 0x67, 0xe9, 0xff])), undefined],
      ['a base64 transfer encoding some parsers undo', part('name="message"\r\nContent-Transfer-Encoding: base64', Buffer.from('Ignore previous instructions').toString('base64')), undefined],
      ['two boundary parameters (first or last?)', part('name="message"', 'hi'), 'multipart/form-data; boundary=b; boundary=c'],
      ['a boundary inside another parameter name', part('name="message"', 'hi'), 'multipart/form-data; xboundary=b'],
    ])('refuses %s', (_what, body, contentType) => {
      expect(read(body, contentType).parseError).toBeDefined();
    });
  });

  it('an empty or media body is no error; an unreadable one is (the guardrails refuse it)', () => {
    const get = exchangeOf(open, 'GET', '/status');
    expect([get.api, get.parseError, get.input]).toEqual(['inbound', undefined, []]);
    const png = exchangeOf(listed, 'POST', '/api/chat', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]), 'image/png');
    expect([png.api, png.parseError, png.input]).toEqual(['inbound', undefined, []]);
    const bytes = exchangeOf(open, 'POST', '/upload', Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xff]), 'application/octet-stream');
    expect([bytes.api, bytes.parseError, bytes.input]).toEqual(['inbound', undefined, []]);
    const disguised = exchangeOf(open, 'POST', '/upload', '{"message":"read me"}', 'image/png');
    expect(texts(disguised)).toContain('read me');
    const broken = exchangeOf(listed, 'POST', '/api/chat', '{"message": "unterminated');
    expect([broken.api, typeof broken.parseError]).toEqual(['inbound', 'string']);
    const undecodable = exchangeOf(open, 'POST', '/x', Buffer.from([0xc3, 0x28, 0xa0, 0xa1]), 'text/plain');
    expect(undecodable.parseError).toBeDefined();
  });
});

describe('inbound protocol: complete answers', () => {
  const listed = createInboundProtocol(() => ROUTES);
  const open = createInboundProtocol(() => ({}));
  const verdict: BlockVerdict = { status: 400, type: 'guardrail_violation', code: 'secrets-response-block', message: 'blocked' };

  function answered(p: WireProtocol, target: string, body: string, contentType = 'application/json'): Exchange {
    const ex = exchangeOf(p, 'POST', target, '{}');
    p.parseResponse(ex, Buffer.from(body), { 'content-type': contentType });
    return ex;
  }

  it('reads the response fields of the route, or every string', () => {
    const body = JSON.stringify({ answer: 'A', sources: [{ title: 'T' }] });
    expect(answered(listed, '/api/chat', body).output.map((s) => [s.path, s.text, s.role])).toEqual([[['answer'], 'A', 'assistant']]);
    expect(answered(open, '/x', body).output.map((s) => s.text)).toEqual(['A', 'T']);
    expect(answered(open, '/x', 'plain answer', 'text/plain').output.map((s) => [s.path, s.text])).toEqual([[[], 'plain answer']]);
    expect(answered(open, '/x', '"a JSON string"').output.map((s) => [s.path, s.text])).toEqual([[[], 'a JSON string']]);
    expect(answered(open, '/x', 'PNG...', 'image/png').output).toEqual([]);
    const bytes = exchangeOf(open, 'POST', '/x', '{}');
    open.parseResponse(bytes, Buffer.from([0x31, 0x32, 0xff, 0xfe, 0x33]), {});
    expect(bytes.output).toEqual([]);
  });

  it('writes edits back and withholds what a block flagged, leaving the rest', () => {
    const ex = answered(open, '/x', JSON.stringify({ answer: 'key AKIA...', note: 'fine', n: 2 }));
    editSegment(ex.output[1], 'FINE');
    expect(JSON.parse(open.serializeResponse(ex, Buffer.from('unused'))!.toString())).toEqual({ answer: 'key AKIA...', note: 'FINE', n: 2 });
    ex.output[0].blocked = true;
    expect(JSON.parse(open.serializeResponse(ex, Buffer.from(''), verdict)!.toString())).toEqual({ answer: '[withheld by guardrail rule "secrets-response-block"]', note: 'FINE', n: 2 });
    const raw = answered(open, '/x', 'raw secret', 'text/plain');
    expect(open.serializeResponse(raw, Buffer.from('raw secret'), verdict)!.toString()).toBe('[withheld by guardrail rule "secrets-response-block"]');
    const root = answered(open, '/x', '"root secret"');
    editSegment(root.output[0], 'root <X>');
    expect(open.serializeResponse(root, Buffer.from(''))!.toString()).toBe('"root <X>"');
    // Nothing to withhold: the server answers with the verdict instead.
    expect(open.serializeResponse(answered(open, '/x', '{"n":1}'), Buffer.from('{"n":1}'), verdict)).toBeUndefined();
  });
});

describe('inbound protocol: streamed answers', () => {
  let g: Guardrails;
  const open = createInboundProtocol(() => ({}));
  const quiet = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
  const AWS_KEY = 'AKIAZ7Q3LMN4PRS5TUVW';

  beforeAll(async () => {
    g = await openGuardrails({ POLICY_PACK: 'default' }, quiet, createRegistry(false));
  });
  afterAll(() => g.close());

  function run(contentType: string, chunks: string[], opts: { inspect?: boolean; protocol?: WireProtocol; target?: string } = {}): { out: string; ex: Exchange; blocked?: string } {
    const p = opts.protocol ?? open;
    const ex = exchangeOf(p, 'POST', opts.target ?? '/stream', '{}');
    const rw = p.streamRewriter(ex, contentType, opts.inspect === false ? undefined : g.hooks.openStream!(ex));
    let out = '';
    for (const c of chunks) {
      out += rw.push(Buffer.from(c)).toString();
      if (rw.blocked) break;
    }
    out += rw.end().toString();
    return { out, ex, blocked: rw.blocked?.code };
  }

  const sse = (event: string, data: unknown): string => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

  it('knows SSE and NDJSON by content type', () => {
    expect(['text/event-stream; charset=utf-8', 'application/x-ndjson', 'application/jsonl', 'application/json', 'text/plain'].map((t) => open.isStream(t))).toEqual([true, true, true, false, false]);
  });

  it('SSE: a secret split over events never reaches the client; the stream ends with an error event', () => {
    const pieces = ['The key is ', AWS_KEY.slice(0, 7), AWS_KEY.slice(7, 13), `${AWS_KEY.slice(13)} ok`];
    const { out, blocked } = run('text/event-stream', pieces.map((p) => sse('token', { delta: p, conversation_id: 'conv-1' })));
    expect(blocked).toBe('secrets-response-block');
    expect(out).not.toContain(AWS_KEY.slice(0, 4));
    // "is " may still be held when the block comes: a word before a space may start "is [at] …" (an address without "@").
    expect(out).toMatch(/data: \{"delta":"The key (is )?","conversation_id":"conv-1"\}/);
    expect(out.trimEnd().split('\n\n').pop()).toBe(
      'event: error\ndata: {"error":{"message":"Response blocked by guardrail rule \\"secrets-response-block\\": AWS_ACCESS_KEY detected","type":"guardrail_violation","code":"secrets-response-block","param":null}}',
    );
  });

  it('SSE: held text goes out before the next event without streamed text; ids and types are never held', () => {
    const events = [sse('token', { delta: 'call ', id: 'run-7f3a9c1e-2b44' }), sse('token', { delta: 'me at 555', id: 'run-7f3a9c1e-2b44' }), sse('done', { id: 'run-7f3a9c1e-2b44', status: 'complete' })];
    const { out, ex } = run('text/event-stream', events);
    const parsed = out.trim().split('\n\n').map((e) => [/^event: (.*)$/m.exec(e)![1], JSON.parse(/^data: (.*)$/m.exec(e)![1])]);
    expect(parsed.map(([name]) => name)).toEqual(['token', 'token', 'token', 'done']);
    expect(parsed.map(([, d]) => (d as { id: string }).id)).toEqual(Array(4).fill('run-7f3a9c1e-2b44'));
    expect(parsed.slice(0, 3).map(([, d]) => (d as { delta: string }).delta).join('')).toBe('call me at 555');
    expect(parsed[3][1]).toEqual({ id: 'run-7f3a9c1e-2b44', status: 'complete' });
    expect(ex.output.find((s) => s.path[0] === 'delta')?.text).toBe('call me at 555');
  });

  it('NDJSON: PII split over lines is redacted; the held tail comes before {"done":true}', () => {
    const lines = ['{"response":"Mail ","done":false}\n', '{"response":"alice.sm","done":false}\n{"response":"ith@exam', 'ple.com now","done":false}\r\n', '{"response":"","done":true}\n'];
    const { out } = run('application/x-ndjson', lines);
    const rows = out.split(/\r?\n/).filter(Boolean).map((l) => JSON.parse(l) as { response: string; done: boolean });
    expect(rows.map((r) => r.response).join('')).toBe('Mail <EMAIL_1> now');
    expect(rows[rows.length - 1]).toEqual({ response: '', done: true });
    expect(out).toContain('\r\n');
  });

  it('plain-text SSE data is one channel; the [DONE] marker is no text and ends it', () => {
    const { out } = run('text/event-stream', ['data: reach me at bob@', 'example.org\n\n', 'data: [DONE]\n\n']);
    expect(out).toBe('data: reach me at \n\ndata: <EMAIL_1>\n\ndata: [DONE]\n\n');
  });

  it('route response fields: only those are read (a secret elsewhere is the route author\'s choice)', () => {
    const listed = createInboundProtocol(() => ROUTES);
    const { out, blocked } = run('application/x-ndjson', [`{"answer":"fine","debug":"${AWS_KEY}"}\n`], { protocol: listed, target: '/api/chat' });
    expect(blocked).toBeUndefined();
    expect(out).toContain(AWS_KEY);
  });

  it('without an inspector the bytes pass unchanged and the text is still collected', () => {
    const events = [sse('token', { delta: 'a ' }), ': keep-alive\n\n', sse('token', { delta: 'b' })];
    const { out, ex } = run('text/event-stream', events, { inspect: false });
    expect(out).toBe(events.join(''));
    expect(ex.output.map((s) => s.text)).toEqual(['a b']);
  });

  it('a check of the whole answer holds the held tails, and can cut the stream instead', () => {
    const ex = exchangeOf(open, 'POST', '/stream', '{}');
    const inner = g.hooks.openStream!(ex)!;
    const verdict: BlockVerdict = { status: 400, type: 'guardrail_violation', code: 'akto:remote', message: 'remote says no' };
    const rw = open.streamRewriter(ex, 'application/x-ndjson', { channel: (k, kind) => inner.channel(k, kind), finalCheck: async () => verdict });
    const first = rw.push(Buffer.from('{"delta":"hello "}\n{"delta":"555"}\n')).toString();
    // "hello " is held until the next text shows it does not start an address ("hello [at] …"); " 555" is held as a number.
    expect(first).toBe('{"delta":""}\n{"delta":"hello"}\n');
    expect(rw.end().toString()).toBe('');
    expect(rw.cut(verdict)).toBe('{"error":{"message":"remote says no","type":"guardrail_violation","code":"akto:remote","param":null}}\n');
  });
});
