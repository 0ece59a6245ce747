import type { ClientRequest, IncomingMessage } from 'node:http';
import { connectionTokens } from './headers';

/**
 * How a client request's body is delimited, as Node's parser read it: the body the proxy receives is exactly
 * the body it forwards, so the upstream request is framed from this, never from the client's framing headers.
 */
export type Framing =
  | { ok: true; body: 'none' }
  | { ok: true; body: 'length'; length: number }
  | { ok: true; body: 'chunked' }
  | { ok: false; reason: string };

/**
 * Headers a client may not ask the proxy to drop by naming them in `Connection`: the message's framing and
 * representation (what the guardrails read the body as), its target, and what the proxy itself asserts about the
 * client. Envoy refuses such nominations of X-Forwarded-* in the same way; RFC 9110 §7.6.1 lets a proxy keep them.
 */
const PROTECTED = new Set([
  'content-length',
  'transfer-encoding',
  'content-type',
  'content-encoding',
  'host',
  'expect',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-request-id',
]);

/** Methods a proxy does not forward (nginx answers both with 405): a TRACE echo would reflect the upstream credential. */
const REFUSED_METHODS = new Set(['TRACE', 'CONNECT']);

export function isRefusedMethod(method: string): boolean {
  return REFUSED_METHODS.has(method.toUpperCase());
}

/** Every value of a header as the client sent it (Node joins or drops repeats depending on the name). */
function rawValues(req: IncomingMessage, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i].toLowerCase() === name) out.push(req.rawHeaders[i + 1]);
  return out;
}

/**
 * The framing of a request the parser accepted, or why it is refused. Node's parser already refuses most
 * ambiguous framing (Content-Length with Transfer-Encoding, repeated or malformed lengths, obs-fold, codings
 * that do not end in chunked); this also refuses what it lets through: a coding besides chunked
 * (`gzip, chunked`), Transfer-Encoding on HTTP/1.0 (RFC 9112 §6.1: faulty framing), and a Connection header
 * naming a protected header.
 */
export function requestFraming(req: IncomingMessage): Framing {
  const nominated = connectionTokens(req.headers.connection).find((t) => PROTECTED.has(t));
  if (nominated !== undefined) return { ok: false, reason: `the Connection header names ${nominated}, which a proxy must forward as it is` };
  const te = rawValues(req, 'transfer-encoding');
  const cl = rawValues(req, 'content-length');
  if (te.length > 0) {
    if (req.httpVersion === '1.0') return { ok: false, reason: 'Transfer-Encoding in an HTTP/1.0 request' };
    if (cl.length > 0) return { ok: false, reason: 'both Content-Length and Transfer-Encoding' };
    const codings = te.flatMap((v) => v.split(',')).map((c) => c.trim().toLowerCase());
    if (codings.length !== 1 || codings[0] !== 'chunked') return { ok: false, reason: `Transfer-Encoding "${te.join(', ')}": only chunked is accepted` };
    return { ok: true, body: 'chunked' };
  }
  if (cl.length > 1) return { ok: false, reason: 'more than one Content-Length' };
  if (cl.length === 1) {
    if (!/^\d{1,15}$/.test(cl[0].trim())) return { ok: false, reason: 'a Content-Length that is not a decimal number' };
    return { ok: true, body: 'length', length: Number(cl[0].trim()) };
  }
  return { ok: true, body: 'none' };
}

/** Whether the request carries a body (an empty chunked body counts: the client declared one). */
export function carriesBody(framing: Framing): boolean {
  return framing.ok && (framing.body === 'chunked' || (framing.body === 'length' && framing.length > 0));
}

/**
 * Frames the upstream request for the body that follows, before its head is written: exactly `bufferedLength`
 * bytes for a body read whole, else the client's own delimitation (a length, or chunked for any method, since
 * Node only chunks POST-like methods by default). Node then refuses to send more or fewer bytes than declared.
 */
export function frameUpstream(dest: ClientRequest, framing: Framing, bufferedLength?: number): void {
  dest.removeHeader('content-length');
  dest.removeHeader('transfer-encoding');
  // Node's OutgoingMessage has it on requests too; the typings only declare it for responses.
  (dest as ClientRequest & { strictContentLength: boolean }).strictContentLength = true;
  if (bufferedLength !== undefined) {
    if (bufferedLength > 0 || (framing.ok && framing.body !== 'none')) dest.setHeader('content-length', String(bufferedLength));
    return;
  }
  if (!framing.ok) return;
  if (framing.body === 'length') dest.setHeader('content-length', String(framing.length));
  else if (framing.body === 'chunked') dest.setHeader('transfer-encoding', 'chunked');
}
