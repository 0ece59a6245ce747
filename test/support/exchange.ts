import { newExchange, type Exchange } from '../../proxy/protocols/exchange';
import { attachRequestBody } from '../../proxy/protocols/request';
import { classifyRoute } from '../../proxy/protocols/routes';

/** A POST /v1/chat/completions exchange with neutral identity fields; callers override what they are about. */
export function chatExchange(over: Partial<Exchange> = {}): Exchange {
  return newExchange({
    id: 'ex-1',
    method: 'POST',
    path: '/v1/chat/completions',
    api: 'openai.chat',
    dialect: 'openai',
    clientAddress: '127.0.0.1',
    upstream: new URL('http://127.0.0.1:1'),
    ...over,
  });
}

/** An exchange the way the server fills one: route classified, body parsed once by the real protocols code. */
export function parsedExchange(method: string, path: string, body: unknown, over: Partial<Exchange> = {}, contentType = 'application/json'): Exchange {
  const { api, dialect } = classifyRoute(method, path);
  const ex = newExchange({ id: 'test', startedAt: 0, method, path, api, dialect, clientAddress: '127.0.0.1', upstream: new URL('http://127.0.0.1:1'), ...over });
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  attachRequestBody(ex, bytes, contentType);
  return ex;
}
