import { classifyRoute } from '../../../proxy/protocols/routes';

describe('classifyRoute', () => {
  test.each([
    ['POST', '/', 'tgi.compat', 'tgi'],
    ['POST', '/generate', 'tgi.generate', 'tgi'],
    ['POST', '/generate_stream', 'tgi.generate_stream', 'tgi'],
    ['POST', '/generate_stream?x=1', 'tgi.generate_stream', 'tgi'],
    ['POST', '/v1/chat/completions', 'openai.chat', 'openai'],
    ['POST', '/v1/chat/completions/', 'openai.chat', 'openai'],
    ['POST', '/openai/v1/chat/completions', 'openai.chat', 'openai'],
    ['POST', '/v1/completions', 'openai.completions', 'openai'],
    ['POST', '/v1/embeddings?api-version=1', 'openai.embeddings', 'openai'],
    ['POST', '/embeddings', 'openai.embeddings', 'openai'],
    ['POST', '/embed', 'tei.embed', 'tgi'],
    ['POST', '/rerank', 'tei.embed', 'tgi'],
    ['POST', '/predict', 'tei.embed', 'tgi'],
    ['POST', '/my/handler', 'hf.task', 'tgi'],
    ['POST', '/v1/other', 'hf.task', 'openai'],
    ['post', '/generate', 'tgi.generate', 'tgi'],
    ['GET', '/', 'passthrough', 'tgi'],
    ['GET', '/health', 'passthrough', 'tgi'],
    ['GET', '/v1/models', 'passthrough', 'openai'],
    ['PUT', '/v1/chat/completions', 'passthrough', 'openai'],
  ])('%s %s → %s (%s)', (method, path, api, dialect) => {
    expect(classifyRoute(method, path)).toEqual({ api, dialect });
  });
});

describe('a body on any method is routed as a POST would be', () => {
  test.each([
    ['GET', '/v1/chat/completions', 'openai.chat'],
    ['PUT', '/v1/chat/completions', 'openai.chat'],
    ['DELETE', '/generate', 'tgi.generate'],
    ['OPTIONS', '/', 'tgi.compat'],
    ['GET', '/v1/models', 'hf.task'],
  ])('%s %s with a body → %s', (method, path, api) => {
    expect(classifyRoute(method, path, path, true).api).toBe(api);
    expect(classifyRoute(method, path).api).toBe('passthrough');
  });
});
