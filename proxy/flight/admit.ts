import { BodyTooLargeError, readBody } from '../http/body';
import { decodeContentEncoding } from '../http/content-encoding';
import { isRefusedMethod } from '../http/framing';
import { headerValue } from '../http/headers';
import type { BlockVerdict } from '../protocols/exchange';
import { serializeRequest, utf8ContentType } from '../protocols/request';
import { complete, refuse, rejectTooLarge, respondBlocked } from './finish';
import { forward } from './forward';
import { runVerdictHooks } from './verdicts';
import type { Flight } from './types';

/** Refusals that need nothing read, the body (read whole when inspected), the request verdict, then the upstream. */
export async function admit(flight: Flight): Promise<void> {
  const { ex, req, res, ctx } = flight;
  // A pipelined request whose client left while it waited its turn.
  if (flight.done) return;
  if (ctx.connections.refusesRest(req.socket)) return dropAfterRefusal(flight);
  const refusal = headRefusal(flight);
  if (refusal) {
    if (refusal.code === 'invalid_request_path') ex.notes.proxy = { refused: 'request path', reason: flight.pathRefused };
    return refuse(flight, refusal);
  }
  if (flight.inspect && !(await readRequest(flight))) return;
  const verdict = await runVerdictHooks(flight, 'request');
  if (verdict) return respondBlocked(flight, verdict);
  if (flight.done) return;
  applyEdits(flight);
  if (ctx.connections.refusesRest(req.socket)) return dropAfterRefusal(flight);
  if (flight.expectation === 'continue' && !flight.bodyRead) res.writeContinue();
  forward(flight);
}

/** Why the request is refused from its head alone (method, version, expectation, framing, target), if it is. */
export function headRefusal(flight: Flight): BlockVerdict | undefined {
  const { ex, req, framing } = flight;
  if (isRefusedMethod(ex.method)) {
    return { status: 405, type: 'method_not_allowed', code: 'method_not_allowed', message: `${ex.method.toUpperCase()} is not forwarded by this proxy` };
  }
  // Node also parses a request line without a version (HTTP/0.9, whose servers read no headers) and "HTTP/2.0"
  // in text: readers that disagree on where such a request ends. nginx answers 505 to a major version above 1.
  if (req.httpVersionMajor !== 1) {
    return { status: 505, type: 'invalid_request', code: 'http_version_not_supported', message: `Request refused: HTTP/${req.httpVersion} is not forwarded (HTTP/1.0 and HTTP/1.1 are)` };
  }
  if (flight.expectation === 'unmet') {
    return { status: 417, type: 'invalid_request', code: 'expectation_failed', message: 'Request refused: the only expectation this proxy meets is Expect: 100-continue' };
  }
  if (!framing.ok) return { status: 400, type: 'invalid_request', code: 'invalid_request_framing', message: `Request refused: ${framing.reason}` };
  // A request target with no single meaning for every upstream (routes.ts): refused before anything is read.
  if (flight.pathRefused !== undefined) {
    return { status: 400, type: 'invalid_request_path', code: 'invalid_request_path', message: `Request refused: ${flight.pathRefused}` };
  }
  return undefined;
}

/**
 * Reads an inspected request's body whole (bounded by MAX_REQUEST_SIZE), undoes its Content-Encoding as the upstream
 * would, and parses it into the exchange. False when the request was answered (too large) or ended (client left).
 */
export async function readRequest(flight: Flight): Promise<boolean> {
  const { ex, req, res, framing, ctx } = flight;
  const max = ctx.config.maxRequestBytes;
  if (framing.ok && framing.body === 'length' && framing.length > max) return tooLarge(flight);
  if (flight.expectation === 'continue') res.writeContinue();
  let body: Buffer;
  try {
    body = await readBody(req, max);
  } catch (err) {
    if (err instanceof BodyTooLargeError) return tooLarge(flight);
    complete(flight, 'aborted');
    return false;
  }
  if (flight.done) return false; // a broken or too slow body was answered meanwhile (onClientError)
  flight.bodyRead = true;
  flight.bytesIn = body.length;
  // Decode as the upstream would, never past the bound: the decoded bytes are what is inspected and forwarded.
  const decoded = await decodeContentEncoding(body, headerValue(req.headers, 'content-encoding'), max);
  if (!decoded.ok && decoded.tooLarge) return tooLarge(flight);
  if (decoded.ok && decoded.codings.length > 0) {
    flight.contentDecoded = true;
    ex.notes.body = { decodedFrom: decoded.codings };
  }
  const contentType = headerValue(req.headers, 'content-type');
  flight.route.protocol.attachBody(ex, decoded.ok ? decoded.body : body, contentType, decoded.ok ? undefined : decoded.reason);
  if (ex.api === 'passthrough') flight.inspect = false;
  return true;
}

function tooLarge(flight: Flight): false {
  rejectTooLarge(flight);
  return false;
}

/** The hooks edited the request's input: the body is serialised again, with the path and content type to match. */
export function applyEdits(flight: Flight): void {
  const { ex, req } = flight;
  if (!ex.input.some((s) => s.edited && !s.readonly)) return;
  ex.requestBody = serializeRequest(ex);
  if (flight.route.protocol.editedPath) ex.path = flight.route.protocol.editedPath(ex);
  const ct = utf8ContentType(headerValue(req.headers, 'content-type'));
  if (ct !== undefined) req.headers['content-type'] = ct;
}

/**
 * A request pipelined behind a refused one: never forwarded, and never answered, since the connection closes
 * once the refusal is written (destroying it now could cut that refusal short).
 */
function dropAfterRefusal(flight: Flight): void {
  complete(flight, 'aborted', 'after_refused_request');
}
