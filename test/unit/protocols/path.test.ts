import { decodedPath, lenientPath, normalizeTarget } from '../../../proxy/protocols/path';
import { classifyRoute, routeRequest } from '../../../proxy/protocols/routes';

describe('normalizeTarget', () => {
  test.each([
    ['/v1//chat/completions', '/v1/chat/completions', ''],
    ['/v1/chat/completions#frag', '/v1/chat/completions', ''],
    ['/v1/chat/completions?a=b#frag', '/v1/chat/completions', '?a=b'],
    ['/v1/%63hat/%43ompletions', '/v1/chat/Completions', ''],
    ['/v1/./chat/x/../completions', '/v1/chat/completions', ''],
    ['/v1/%2e%2E/v1/chat/completions', '/v1/chat/completions', ''],
    ['/../../v1/chat/completions', '/v1/chat/completions', ''],
    ['/v1/chat%2fcompletions', '/v1/chat%2Fcompletions', ''],
    ['/a%7eb/%41', '/a~b/A', ''],
    ['/a{b}|c', '/a%7Bb%7D%7Cc', ''],
    ['/caf\u00e9', '/caf%E9', ''],
    ['http://other.example:8080/v1/completions?x=1', '/v1/completions', '?x=1'],
    ['HTTPS://h', '/', ''],
    ['/', '/', ''],
  ])('%s → %s %s', (raw, path, query) => {
    const r = normalizeTarget(raw);
    expect(r).toEqual({ ok: true, target: expect.objectContaining({ path, query }) });
  });

  test.each(['*', 'v1/chat/completions', '/v1\\chat/completions', '/v1/chat%zzcompletions', '/v1/chat%2', '/v1/\u0001'])('refuses %j', (raw) => {
    expect(normalizeTarget(raw).ok).toBe(false);
  });

  test('remembers a trailing slash', () => {
    expect(normalizeTarget('/x/y/')).toMatchObject({ target: { path: '/x/y', trailingSlash: true } });
    expect(normalizeTarget('/x/y')).toMatchObject({ target: { trailingSlash: false } });
  });

  test('decoded (uvicorn) and lenient views', () => {
    expect(decodedPath('/v1/chat%2Fcompletions')).toBe('/v1/chat/completions');
    expect(decodedPath('/a%00b')).toBeUndefined();
    expect(lenientPath('/v1/chat%252Fcompletions')).toBe('/v1/chat/completions');
    expect(lenientPath('/v1/chat%5Ccompletions')).toBe('/v1/chat/completions');
    expect(lenientPath('/v1/chat/completions;jsessionid=1')).toBe('/v1/chat/completions');
    expect(lenientPath('/v1/chat/completions%3Fx=1')).toBe('/v1/chat/completions');
  });
});

describe('routeRequest: classify what the upstream routes on, forward exactly that', () => {
  test.each([
    ['/v1//chat/completions', 'openai.chat', '/v1/chat/completions'],
    ['/v1/chat/completions#x', 'openai.chat', '/v1/chat/completions'],
    ['/v1/%63hat/completions', 'openai.chat', '/v1/chat/completions'],
    ['/v1/chat/completions/', 'openai.chat', '/v1/chat/completions'],
    ['/v1/chat/completions//', 'openai.chat', '/v1/chat/completions'],
    ['/v1/embeddings/../chat/completions', 'openai.chat', '/v1/chat/completions'],
    ['/v1/chat/completions?api-version=1', 'openai.chat', '/v1/chat/completions?api-version=1'],
    ['http://evil.example/v1/chat/completions', 'openai.chat', '/v1/chat/completions'],
    ['/generate_stream/', 'tgi.generate_stream', '/generate_stream'],
    ['/custom/handler/', 'hf.task', '/custom/handler/'],
    ['/V1/Chat/Completions', 'hf.task', '/V1/Chat/Completions'],
    ['/v1/chat/completions%20', 'hf.task', '/v1/chat/completions%20'],
    ['/org%2Fmodel/infer', 'hf.task', '/org%2Fmodel/infer'],
  ])('POST %s → %s, forwarded as %s', (raw, api, path) => {
    expect(routeRequest('POST', raw, '/')).toEqual({ ok: true, api, dialect: expect.any(String), path });
  });

  test.each([
    '/v1/chat%2Fcompletions',
    '/v1%2Fchat%2Fcompletions',
    '/v1/chat/completions%2F',
    '/v1/chat%252Fcompletions',
    '/v1/chat%5Ccompletions',
    '/v1/chat/completions;x=1',
    '/v1/chat/completions%3Fx=1',
    '/v1/chat/completions%23x',
    '/v1/chat/completions%00',
    '/generate%2F',
    '/v1\\chat/completions',
    '*',
  ])('POST %j is refused: escapes or shapes that mean different routes to different servers', (raw) => {
    expect(routeRequest('POST', raw, '/')).toMatchObject({ ok: false, reason: expect.any(String) });
  });

  test('GET requests pass with the canonical path (nothing to inspect, every view agrees)', () => {
    expect(routeRequest('GET', '/v1/models/org%2Fname', '/')).toEqual({ ok: true, api: 'passthrough', dialect: 'openai', path: '/v1/models/org%2Fname' });
  });

  test("APP_URL's path is a prefix of the forwarded path; POST / behind it is still TGI's compat route", () => {
    expect(routeRequest('POST', '/chat/completions', '/v1')).toMatchObject({ ok: true, api: 'openai.chat', path: '/v1/chat/completions' });
    expect(routeRequest('POST', '/', '/tgi/')).toMatchObject({ ok: true, api: 'tgi.compat', path: '/tgi/' });
    expect(routeRequest('POST', '/generate', '/tgi')).toMatchObject({ ok: true, api: 'tgi.generate', path: '/tgi/generate' });
  });
});

describe('classifyRoute: every text-carrying route', () => {
  test.each([
    ['/v1/responses', 'openai.responses', 'openai'],
    ['/v1/messages', 'anthropic.messages', 'openai'],
    ['/v1/messages/count_tokens', 'anthropic.messages', 'openai'],
    ['/v1/chat/completions/render', 'openai.chat', 'openai'],
    ['/v1/completions/render', 'openai.completions', 'openai'],
    ['/openai/deployments/gpt/chat/completions', 'openai.chat', 'openai'],
    ['/invocations', 'invocations', 'tgi'],
    ['/vertex', 'vertex', 'tgi'],
    ['/tokenize', 'tokenize', 'tgi'],
    ['/detokenize', 'tokenize', 'openai'],
    ['/chat_tokenize', 'tokenize', 'tgi'],
    ['/pooling', 'pooling', 'openai'],
    ['/classify', 'pooling', 'openai'],
    ['/score', 'pooling', 'openai'],
    ['/v1/score', 'pooling', 'openai'],
    ['/rerank', 'tei.embed', 'tgi'],
    ['/v1/rerank', 'pooling', 'openai'],
    ['/v2/rerank', 'pooling', 'openai'],
    ['/v2/embed', 'pooling', 'openai'],
    ['/similarity', 'tei.embed', 'tgi'],
    ['/embed_all', 'tei.embed', 'tgi'],
  ])('POST %s → %s (%s)', (path, api, dialect) => {
    expect(classifyRoute('POST', path)).toEqual({ api, dialect });
  });
});
