import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { Capture } from '../http/body';
import { frameUpstream, type Framing } from '../http/framing';
import { stripHopByHop } from '../http/headers';
import { upstreamFailed, UPSTREAM_RESET } from './finish';
import { onUpstreamResponse } from './response';
import { onTimeout } from './timeout';
import type { Flight } from './types';

/** Where a listener's requests go, worked out once rather than per request. */
export interface UpstreamTarget {
  request: typeof http.request;
  hostname: string;
  port: number;
  /** The Host header an egress request gets: the upstream's, port included unless it is the scheme's default. */
  host: string;
  tls: boolean;
}

export function upstreamTarget(upstream: URL): UpstreamTarget {
  const tls = upstream.protocol === 'https:';
  return {
    request: tls ? https.request : http.request,
    hostname: upstream.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: upstream.port ? Number(upstream.port) : tls ? 443 : 80,
    host: upstream.host,
    tls,
  };
}

/** Sends the accepted request upstream: its headers as the upstream gets them, its body read or streaming through. */
export function forward(flight: Flight): void {
  const { req, route, ex, ctx } = flight;
  upstreamHeaders(flight);
  if (!flight.bodyRead) {
    const capture = new Capture(ctx.config.traceBytes);
    flight.requestCapture = capture;
    req.on('data', (chunk: Buffer) => capture.add(chunk));
  }
  flight.timer = setTimeout(() => onTimeout(flight), ctx.config.requestTimeoutMs);
  flight.sentAt = performance.now();
  const { upstream } = route;
  const headers = { ...req.headers };
  // The agent's own API keeps the Host the end user called (its redirects and absolute links use it).
  if (route.listener.direction === 'egress') headers.host = upstream.host;
  const proxyReq = upstream.request({
    hostname: upstream.hostname,
    port: upstream.port,
    method: req.method,
    // The path is set below, unchecked by Node's request-target validation, exactly as classified.
    path: '/',
    headers,
    agent: route.agent,
    ...(upstream.tls ? { rejectUnauthorized: true } : {}),
  });
  proxyReq.on('socket', () => (flight.proxyReq = proxyReq));
  proxyReq.on('response', (proxyRes: IncomingMessage) => onUpstreamResponse(flight, proxyRes));
  const onError = (err: NodeJS.ErrnoException): void => {
    // A reset of a client that already left: its flight ended when its response closed.
    if (req.socket.destroyed && err.code === 'ECONNRESET') return void proxyReq.destroy();
    onUpstreamError(flight, err);
  };
  req.on('error', onError);
  proxyReq.on('error', onError);
  req.on('aborted', () => proxyReq.destroy());
  sendBody(proxyReq, ex.path, flight.bodyRead ? ex.requestBody : req, flight.framing);
}

/** The client's address, port and scheme appended to X-Forwarded-For/-Port/-Proto, and X-Forwarded-Host kept or set. */
function forwardedHeaders(req: IncomingMessage): void {
  const headers = req.headers;
  const tls = Boolean((req.socket as TLSSocket).encrypted);
  const port = headers.host?.match(/:(\d+)/)?.[1] ?? (tls ? '443' : '80');
  const values = { 'x-forwarded-for': req.socket.remoteAddress, 'x-forwarded-port': port, 'x-forwarded-proto': tls ? 'https' : 'http' };
  for (const [name, value] of Object.entries(values)) {
    const given = headers[name];
    headers[name] = `${given || ''}${given ? ',' : ''}${value}`;
  }
  headers['x-forwarded-host'] = headers['x-forwarded-host'] || headers.host || '';
}

/** Rewrites the client's headers in place into the upstream's: no hop-by-hop, the listener's credential, the request id. */
export function upstreamHeaders(flight: Flight): void {
  const headers = flight.req.headers;
  stripHopByHop(headers);
  // The proxy answered 100-continue itself (nginx and Envoy do too); forwarded, it would also make Node write
  // the upstream head before sendBody sets the path and the framing.
  delete headers.expect;
  if (flight.inspect && flight.ctx.config.forceIdentityEncoding) headers['accept-encoding'] = 'identity';
  if (flight.contentDecoded) delete headers['content-encoding'];
  const { authorization } = flight.route.listener;
  if (authorization !== undefined) headers.authorization = authorization;
  headers['x-request-id'] = flight.ex.id;
  forwardedHeaders(flight.req);
}

/** The upstream request failed: refused, reset or timed out before (or while) the answer came. */
function onUpstreamError(flight: Flight, err: NodeJS.ErrnoException): void {
  if (flight.proxyRes) return upstreamFailed(flight, UPSTREAM_RESET, 'upstream_error');
  const reason = err.code ?? err.message;
  const message = `upstream ${flight.route.listener.upstream.host} unreachable (${reason})`;
  upstreamFailed(flight, { status: 502, type: 'upstream_unreachable', code: 'upstream_unreachable', message }, 'upstream_error');
}

/**
 * Sets the path to exactly the classified one and the framing to exactly the body that follows (the client's own
 * framing headers are not trusted), then sends the body: a pre-read one ends the request with the bytes directly,
 * head and body in one syscall; an uninspected one streams from the client.
 */
function sendBody(proxyReq: http.ClientRequest, path: string, body: Buffer | IncomingMessage, framing: Framing): void {
  proxyReq.path = path;
  frameUpstream(proxyReq, framing, Buffer.isBuffer(body) ? body.length : undefined);
  if (Buffer.isBuffer(body)) proxyReq.end(body);
  else body.pipe(proxyReq);
}
