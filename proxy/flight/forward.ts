import type http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import httpProxy from 'http-proxy';
import { Capture } from '../http/body';
import { frameUpstream, type Framing } from '../http/framing';
import { stripHopByHop } from '../http/headers';
import { upstreamFailed, UPSTREAM_RESET } from './finish';
import { onUpstreamResponse } from './response';
import { onTimeout } from './timeout';
import type { Flight } from './types';

const FLIGHT = Symbol('akto.flight');
type FlightRequest = IncomingMessage & { [FLIGHT]?: Flight };

/** http-proxy, wired to hand each upstream request and response head to the flight that sent it. */
export function createForwarder(): httpProxy {
  // The path is set on the upstream request itself (bodySource): http-proxy's own join would rewrite it.
  const forwarder = httpProxy.createProxyServer({ prependPath: false, ignorePath: true });
  forwarder.on('proxyRes', (proxyRes, req) => {
    const flight = (req as FlightRequest)[FLIGHT];
    if (flight) onUpstreamResponse(flight, proxyRes);
  });
  forwarder.on('proxyReq', (proxyReq, req) => {
    const flight = (req as FlightRequest)[FLIGHT];
    if (flight) flight.proxyReq = proxyReq;
  });
  // http-proxy reports resets of sockets the client already closed here, not to the callback.
  forwarder.on('econnreset', () => undefined);
  return forwarder;
}

/** Sends the accepted request upstream: its headers as the upstream gets them, its body read or streaming through. */
export function forward(flight: Flight): void {
  const { req, res, route, ex, ctx } = flight;
  upstreamHeaders(flight);
  if (!flight.bodyRead) {
    const capture = new Capture(ctx.config.traceBytes);
    flight.requestCapture = capture;
    req.on('data', (chunk: Buffer) => capture.add(chunk));
  }
  (req as FlightRequest)[FLIGHT] = flight;
  flight.timer = setTimeout(() => onTimeout(flight), ctx.config.requestTimeoutMs);
  flight.sentAt = performance.now();
  ctx.forwarder.web(
    req,
    res,
    {
      target: route.target,
      agent: route.agent,
      // The agent's own API keeps the Host the end user called (its redirects and absolute links use it).
      changeOrigin: route.listener.direction === 'egress',
      xfwd: true,
      selfHandleResponse: true,
      buffer: bodySource(ex.path, flight.bodyRead ? ex.requestBody : req, flight.framing),
    },
    (err) => onUpstreamError(flight, err as NodeJS.ErrnoException),
  );
}

/** Rewrites the client's headers in place into the upstream's: no hop-by-hop, the listener's credential, the request id. */
export function upstreamHeaders(flight: Flight): void {
  const headers = flight.req.headers;
  stripHopByHop(headers);
  // The proxy answered 100-continue itself (nginx and Envoy do too); forwarded, it would also make Node write
  // the upstream head before bodySource sets the path and the framing.
  delete headers.expect;
  if (flight.inspect && flight.ctx.config.forceIdentityEncoding) headers['accept-encoding'] = 'identity';
  if (flight.contentDecoded) delete headers['content-encoding'];
  const { authorization } = flight.route.listener;
  if (authorization !== undefined) headers.authorization = authorization;
  headers['x-request-id'] = flight.ex.id;
}

/** http-proxy's report of a failed upstream request: refused, reset or timed out before (or while) the answer came. */
function onUpstreamError(flight: Flight, err: NodeJS.ErrnoException): void {
  if (flight.proxyRes) return upstreamFailed(flight, UPSTREAM_RESET, 'upstream_error');
  const reason = err.code ?? err.message;
  const message = `upstream ${flight.route.listener.upstream.host} unreachable (${reason})`;
  upstreamFailed(flight, { status: 502, type: 'upstream_unreachable', code: 'upstream_unreachable', message }, 'upstream_error');
}

/**
 * http-proxy sends the body by calling `buffer.pipe(proxyReq)` right after creating the upstream request, before
 * its head is written: the one place to set the path to exactly the classified one (http-proxy's own join of
 * target and req.url collapses and rewrites) and the framing to exactly the body that follows (http-proxy would
 * copy the client's, or give a DELETE `Content-Length: 0` ahead of a chunked body). A pre-read body ends the
 * request with the bytes directly, head and body in one syscall; an uninspected one streams from the client.
 */
function bodySource(path: string, body: Buffer | IncomingMessage, framing: Framing): Readable {
  const pipe = <T extends NodeJS.WritableStream>(dest: T): T => {
    const request = dest as unknown as http.ClientRequest;
    request.path = path;
    frameUpstream(request, framing, Buffer.isBuffer(body) ? body.length : undefined);
    if (Buffer.isBuffer(body)) dest.end(body);
    else body.pipe(dest);
    return dest;
  };
  return { pipe } as unknown as Readable;
}
