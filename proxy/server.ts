import http, { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import type { ProxyConfig } from './config';
import type { Env } from '../common/env';
import { answer, cancelUpstream, Connections, handleRequest, upstreamTarget, type Flight, type FlightContext, type Route } from './flight';
import type { ExchangeHooks } from './hooks';
import { createUpstreamAgent } from './http/agents';
import { createServingServer, type ServingServer } from './http/serving';
import type { BlockVerdict } from './protocols/exchange';
import { createInboundProtocol } from './protocols/inbound';
import { egressProtocol, type WireProtocol } from './protocols/wire';
import type { Logger } from '../common/logger';
import { createProxyMetrics } from './telemetry/proxy-metrics';
import { createAdminServer } from './telemetry/admin-server';
import { requestTelemetry } from './telemetry/request-log';
import { listen, localUrl } from '../common/listen';

export interface ProxyOptions {
  config: ProxyConfig;
  hooks: readonly ExchangeHooks[];
  logger: Logger;
  registry: Registry;
  /** Environment for CA lookup; defaults to process.env. */
  env?: Env;
  /** Extra lines for the /readyz body. */
  readyDetail?: () => string[];
  /** What the inbound listener reads (protocols/inbound.ts over the policy store); default: every string. */
  inboundProtocol?: WireProtocol;
}

export interface RunningProxy {
  /** Base URL of the first listener, e.g. http://127.0.0.1:8080 */
  url: string;
  /** One URL per listener, in config order. */
  urls: string[];
  adminUrl: string;
  /** Stops accepting, lets in-flight requests finish within the drain timeout, then closes. */
  close(): Promise<void>;
}

/** Starts the proxy listeners and the admin server; each request's flight is proxy/flight's. */
export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const { config, hooks, logger, registry } = opts;
  const env = opts.env ?? process.env;
  const metrics = createProxyMetrics(registry);
  const ctx: FlightContext = {
    config,
    hooks,
    logger,
    metrics,
    connections: new Connections<Flight>(),
    onFinish: [requestTelemetry(logger, metrics)],
  };
  const inboundProtocol = opts.inboundProtocol ?? createInboundProtocol(() => ({}));
  const routes: Route[] = config.listeners.map((listener) => ({
    listener,
    protocol: listener.direction === 'inbound' ? inboundProtocol : egressProtocol,
    upstream: upstreamTarget(listener.upstream),
    agent: createUpstreamAgent(listener.upstream, env),
  }));
  const sockets = new Set<Socket>();
  const serving: ServingServer[] = [];
  for (const route of routes) serving.push(await startListener(ctx, route, sockets));
  let draining = false;
  const admin = await createAdminServer({ port: config.adminPort, host: config.adminHost, registry, ready: () => !draining, detail: opts.readyDetail });

  const urls = serving.map((s, i) => localUrl(s.server, routes[i].listener.host ?? config.listenHost, s.scheme));
  logger.info(
    {
      listeners: routes.map((r, i) => ({ url: urls[i], direction: r.listener.direction, upstream: redactUrl(r.listener.upstream), authorization: r.listener.authorization ? 'set' : 'not set' })),
      admin: admin.url,
      hooks: hooks.map((h) => h.name),
    },
    'akto-agent-proxy listening',
  );

  async function close(): Promise<void> {
    draining = true;
    for (const s of serving) {
      s.server.close();
      s.stop();
    }
    const { inFlight } = ctx.connections;
    const deadline = Date.now() + config.drainTimeoutMs;
    while (inFlight.size > 0 && Date.now() < deadline) await sleep(50);
    for (const f of inFlight) f.res.destroy();
    for (const s of sockets) s.destroy();
    for (const r of routes) r.agent.destroy();
    await admin.close();
  }

  return { url: urls[0], urls, adminUrl: admin.url, close };
}

/** One listener: its requests go to their flights; what Node's parser refuses is answered here. */
async function startListener(ctx: FlightContext, route: Route, sockets: Set<Socket>): Promise<ServingServer> {
  const { config, logger } = ctx;
  // Node's own limits on what a client sends: 408 for a head or a request that arrives too slowly, 431 for a head
  // too large. The request timeout stops once the request is complete, so long answers are not cut by it.
  const clientLimits: http.ServerOptions = {
    headersTimeout: config.clientHeaderTimeoutMs,
    requestTimeout: config.clientRequestTimeoutMs,
    maxHeaderSize: config.maxHeaderBytes,
    // How often Node checks those timeouts (30 s by default, which made a 66 s timeout fire after 88 s).
    connectionsCheckingInterval: Math.min(1000, config.clientHeaderTimeoutMs / 4),
  };
  // Node's own server, not express, on the proxied port: express re-prototypes every req/res,
  // which raised the CPU per proxied request by ~70% in an A/B (see README, Measured figures).
  const listener = createServingServer(config.listenTls, logger, (req, res) => handleRequest(ctx, route, req, res), clientLimits);
  const server = listener.server;
  server.keepAliveTimeout = 65_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  // `Expect: 100-continue` comes here instead of Node answering 100 at once: the proxy says 100 only to a
  // request it accepts, so a refused one (413, 400) is answered before the client sends its body.
  server.on('checkContinue', (req, res) => handleRequest(ctx, route, req, res, 'continue'));
  // Any other expectation: 417 as Node would answer, but through the one completion path (logged, traced).
  server.on('checkExpectation', (req, res) => handleRequest(ctx, route, req, res, 'unmet'));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => onClientError(ctx, err, socket));
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => refuseRaw(ctx, socket, 405, 'CONNECT is not forwarded by this proxy'));
  await listen(server, route.listener.port, route.listener.host ?? config.listenHost);
  return listener;
}

/**
 * The HTTP parser refused a request (malformed head or body framing, a head over MAX_HEADER_SIZE), or the client
 * sent it too slowly (CLIENT_HEADER_TIMEOUT, CLIENT_REQUEST_TIMEOUT). A request already handed over, whose body
 * broke or stalled, is answered and traced as its exchange; one refused in its head gets a bare answer and is
 * counted (there is no request to trace). Its connection closes either way: the framing is lost.
 */
function onClientError(ctx: FlightContext, err: NodeJS.ErrnoException, socket: Duplex): void {
  const code = err.code ?? '';
  // A socket error (the client reset or left): its requests end as aborted when their responses close.
  if (!code.startsWith('HPE_') && code !== 'ERR_HTTP_REQUEST_TIMEOUT') {
    socket.destroy();
    return;
  }
  const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const open = ctx.connections.on(socket);
  const receiving = open.find((f) => !f.req.complete);
  if (receiving) {
    const verdict: BlockVerdict =
      status === 408
        ? { status, type: 'request_timeout', code: 'request_timeout', message: `the request was not received within CLIENT_REQUEST_TIMEOUT (${ctx.config.clientRequestTimeoutMs / 1000}s)` }
        : { status: 400, type: 'invalid_request', code: 'invalid_request_framing', message: 'Request refused: its body is not validly framed' };
    answer(receiving, verdict, status === 408 ? 'client_timeout' : 'blocked');
    cancelUpstream(receiving);
    return;
  }
  const reason = status === 408 ? 'request head not received within CLIENT_HEADER_TIMEOUT' : status === 431 ? 'request head over MAX_HEADER_SIZE' : `malformed request (${code})`;
  // Earlier pipelined requests are still answering: a bare answer would corrupt theirs. They finish, then the
  // connection closes (complete()).
  if (open.length > 0) {
    ctx.metrics.clientErrors.inc({ status: String(status) });
    ctx.logger.warn({ status, reason, client: remoteAddress(socket) }, 'request refused by the HTTP parser');
    ctx.connections.closeWhenIdle(socket);
    return;
  }
  refuseRaw(ctx, socket, status, reason);
}

/** A bare answer on a connection that carries no request the proxy accepted, then the connection closes. */
function refuseRaw(ctx: FlightContext, socket: Duplex, status: number, reason: string): void {
  ctx.metrics.clientErrors.inc({ status: String(status) });
  ctx.logger.warn({ status, reason, client: remoteAddress(socket) }, 'request refused by the HTTP parser');
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
}

/** Logs show where traffic goes, never credentials embedded in the URL. */
export function redactUrl(url: URL): string {
  if (!url.username && !url.password) return url.href;
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy.href;
}

function remoteAddress(socket: Duplex): string | undefined {
  return (socket as Socket).remoteAddress;
}


function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
