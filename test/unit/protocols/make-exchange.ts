import { newExchange, type Exchange } from '../../../proxy/protocols/exchange';
import { classifyRoute } from '../../../proxy/protocols/routes';
import { parseRequest } from '../../../proxy/protocols/request';

/** An Exchange built the way the server builds one: classify, parse the body once. */
export function makeExchange(method: string, path: string, body: unknown, contentType = 'application/json'): Exchange {
  const { api, dialect } = classifyRoute(method, path);
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const parsed = parseRequest(api, bytes, contentType);
  return newExchange({
    id: 'test',
    startedAt: 0,
    method,
    path,
    api: parsed.api,
    dialect,
    clientAddress: '127.0.0.1',
    upstream: new URL('http://127.0.0.1:1'),
    requestBody: bytes,
    requestJson: parsed.json,
    parseError: parsed.parseError,
    model: parsed.model,
    stream: parsed.stream,
    maxTokens: parsed.maxTokens,
    input: parsed.input,
  });
}
