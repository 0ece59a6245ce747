import type { Exchange } from '../../../proxy/protocols/exchange';
import { parsedExchange } from '../../support/exchange';

/** An Exchange built the way the server builds one: classify, parse the body once. */
export function makeExchange(method: string, path: string, body: unknown, contentType = 'application/json'): Exchange {
  return parsedExchange(method, path, body, {}, contentType);
}
