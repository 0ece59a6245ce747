import { randomUUID } from 'node:crypto';
import http, { STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import httpProxy from 'http-proxy';
import type { Registry } from 'prom-client';
import type { ProxyConfig, Listener } from './config';
import type { Env } from '../common/env';
import type { ExchangeHooks, ResponseInspection } from './hooks';
import type { OversizeAction } from './policy/types';
import { BodyTooLargeError, Capture, decodedBody, readBody } from './http/body';
import { createUpstreamAgent } from './http/agents';
import { createServingServer, type ServingServer } from './http/serving';
import { decodeContentEncoding } from './http/content-encoding';
import { carriesBody, frameUpstream, isRefusedMethod, requestFraming, type Framing } from './http/framing';
import { headerValue, stripHopByHop } from './http/headers';
import { renderError, VERDICT_HEADER } from './protocols/errors';
import { newExchange, type BlockVerdict, type Exchange, type Outcome, type Stage } from './protocols/exchange';
import { createInboundProtocol } from './protocols/inbound';
import { serializeRequest, utf8ContentType } from './protocols/request';
import type { StreamRewriter } from './protocols/stream';
import { egressProtocol, type WireProtocol } from './protocols/wire';
import { chainInspectors, type StreamInspector } from './protocols/stream-filter';
import type { Logger } from '../common/logger';
import { createProxyMetrics } from './telemetry/proxy-metrics';
import { createAdminServer } from './telemetry/admin-server';

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

interface Route {
  listener: Listener;
  /** The inference APIs (egress listeners) or the agent's own API (the inbound listener). */
  protocol: WireProtocol;
  target: string;
  agent: http.Agent;
}

/** Turns upstream body bytes into the bytes the client gets (an event-stream or large-JSON rewriter). */
interface BodyRewriter {
  push(chunk: Buffer): Buffer | string;
  end(): Buffer | string;
  readonly blocked?: BlockVerdict;
  /** Set when the upstream's body broke the proxy's bounds (an event over the size cap): the relay ends with it. */
  readonly failed?: BlockVerdict;
  /** Ends the body now with an error the client reads in it (an in-stream error event); absent when the format has none. */
  abort?(verdict: BlockVerdict): Buffer | string;
}

/** An inspector's check of a stream's whole answer, and the rewriter holding the stream's terminal events for it. */
interface FinalCheck {
  check(): Promise<BlockVerdict | undefined>;
  rewriter: StreamRewriter;
}

/** Everything one request needs between the client side and the upstream side. */
interface Flight {
  ex: Exchange;
  route: Route;
  req: IncomingMessage;
  res: ServerResponse;
  started: bigint;
  /** How the client delimited its body, as Node's parser read it: the upstream request is framed from this. */
  framing: Framing;
  /**
   * The client's Expect header, as Node classified it: `continue` waits for 100 before its body (said once the
   * request is accepted); `unmet` is any other expectation, which no upstream is asked to meet (answered 417).
   */
  expectation?: 'continue' | 'unmet';
  /** Parse and inspect the response too (known inference route, JSON body). */
  inspect: boolean;
  /** The request body was read into ex.requestBody, so it is sent from there rather than piped. */
  bodyRead: boolean;
  /** The body arrived with a Content-Encoding that was undone: the decoded bytes are forwarded. */
  contentDecoded: boolean;
  proxyReq?: http.ClientRequest;
  proxyRes?: IncomingMessage;
  timer?: NodeJS.Timeout;
  /** performance.now() when the request went upstream. */
  sentAt: number;
  bytesIn: number;
  /** Uninspected request bodies stream through; this keeps a bounded copy for the trace. */
  requestCapture?: Capture;
  /** The head the client got (once sent: from then on the status cannot change) and a bounded copy of the body. */
  sent?: { status: number; headers: OutgoingHttpHeaders };
  capture?: Capture;
  /** While a body is relayed: ends it with an error the client can read, instead of cutting the connection. */
  endWith?: (verdict: BlockVerdict) => void;
  /** What went wrong (a refusal or failure code), for the log line and the trace's tag. */
  error?: string;
  done: boolean;
}

const FLIGHT = Symbol('akto.flight');

/** The upstream's connection ended after its head, before its body did. */
const UPSTREAM_RESET: BlockVerdict = { status: 502, type: 'upstream_error', code: 'upstream_reset', message: 'upstream closed the connection before its response ended' };
type FlightRequest = IncomingMessage & { [FLIGHT]?: Flight };

/** Starts the proxy listeners and the admin server. */
export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const { config, hooks, logger, registry } = opts;
  const env = opts.env ?? process.env;
  const metrics = createProxyMetrics(registry);
  const inFlight = new Set<Flight>();
  /** Requests of each client connection not yet finished (pipelined requests share one). */
  const bySocket = new WeakMap<Duplex, Set<Flight>>();
  /** Connections whose parser failed behind requests still answering: closed once those are done. */
  const closing = new WeakSet<Duplex>();
  /**
   * Connections where a request was refused with its body unread (bad framing, too large): whatever the parser
   * read after it is not forwarded, since another parser may draw the boundary elsewhere.
   */
  const refused = new WeakSet<Duplex>();
  /**
   * Pipelined requests waiting for the one ahead of them on their connection: a connection has one request with the
   * upstream at a time, as nginx and Envoy serve pipelining, so one connection cannot fan out.
   */
  const waiting = new WeakMap<Duplex, Array<() => void>>();
  let draining = false;

  // The path is set on the upstream request itself (bodySource): http-proxy's own join would rewrite it.
  const proxy = httpProxy.createProxyServer({ prependPath: false, ignorePath: true });
  proxy.on('proxyRes', (proxyRes, req) => {
    const flight = (req as FlightRequest)[FLIGHT];
    if (flight) onUpstreamResponse(flight, proxyRes);
  });
  proxy.on('proxyReq', (proxyReq, req) => {
    const flight = (req as FlightRequest)[FLIGHT];
    if (!flight) return;
    flight.proxyReq = proxyReq;
  });
  // http-proxy reports resets of sockets the client already closed here, not to the callback.
  proxy.on('econnreset', () => undefined);

  const inboundProtocol = opts.inboundProtocol ?? createInboundProtocol(() => ({}));
  const routes: Route[] = config.listeners.map((listener) => ({
    listener,
    protocol: listener.direction === 'inbound' ? inboundProtocol : egressProtocol,
    target: listener.upstream.href,
    agent: createUpstreamAgent(listener.upstream, env),
  }));

  // Node's own limits on what a client sends: 408 for a head or a request that arrives too slowly, 431 for a head
  // too large. The request timeout stops once the request is complete, so long answers are not cut by it.
  const clientLimits: http.ServerOptions = {
    headersTimeout: config.clientHeaderTimeoutMs,
    requestTimeout: config.clientRequestTimeoutMs,
    maxHeaderSize: config.maxHeaderBytes,
    // How often Node checks those timeouts (30 s by default, which made a 66 s timeout fire after 88 s).
    connectionsCheckingInterval: Math.min(1000, config.clientHeaderTimeoutMs / 4),
  };
  const servers: http.Server[] = [];
  const serving: ServingServer[] = [];
  const sockets = new Set<Socket>();
  for (const route of routes) {
    // Node's own server, not express, on the proxied port: express re-prototypes every req/res,
    // which raised the CPU per proxied request by ~70% in an A/B (see README, Measured figures).
    const listener = createServingServer(config.listenTls, logger, (req, res) => handle(route, req, res), clientLimits);
    serving.push(listener);
    const server = listener.server;
    server.keepAliveTimeout = 65_000;
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    // `Expect: 100-continue` comes here instead of Node answering 100 at once: the proxy says 100 only to a
    // request it accepts, so a refused one (413, 400) is answered before the client sends its body.
    server.on('checkContinue', (req, res) => handle(route, req, res, 'continue'));
    // Any other expectation: 417 as Node would answer, but through the one completion path (logged, traced).
    server.on('checkExpectation', (req, res) => handle(route, req, res, 'unmet'));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => onClientError(err, socket));
    server.on('connect', (_req: IncomingMessage, socket: Duplex) => refuseRaw(socket, 405, 'CONNECT is not forwarded by this proxy'));
    await listen(server, route.listener.port, route.listener.host ?? config.listenHost);
    servers.push(server);
  }

  const admin = await createAdminServer({
    port: config.adminPort,
    host: config.adminHost,
    registry,
    ready: () => !draining,
    detail: opts.readyDetail,
  });

  const urls = servers.map((s, i) => `${serving[i].scheme}://${loopbackHost(routes[i].listener.host ?? config.listenHost)}:${(s.address() as AddressInfo).port}`);
  logger.info(
    {
      listeners: routes.map((r, i) => ({ url: urls[i], direction: r.listener.direction, upstream: redactUrl(r.listener.upstream), authorization: r.listener.authorization ? 'set' : 'not set' })),
      admin: admin.url,
      hooks: hooks.map((h) => h.name),
    },
    'akto-agent-proxy listening',
  );

  /** Every request starts here; whatever happens next, it ends in complete() exactly once. */
  function handle(route: Route, req: IncomingMessage, res: ServerResponse, expectation?: Flight['expectation']): void {
    let opened: ReturnType<typeof open>;
    try {
      opened = open(route, req, res, expectation);
    } catch (err) {
      // Nothing of the request is known yet to answer it in its API's shape.
      logger.error({ err: errorSummary(err) }, 'unexpected error while accepting a request');
      if (!res.headersSent) res.writeHead(500, { connection: 'close', 'content-length': '0' }).end();
      else res.destroy();
      return;
    }
    const { flight, pathRefused } = opened;
    const start = () => {
      admit(flight, pathRefused).catch((err: unknown) => failed(flight, err));
    };
    if ((bySocket.get(req.socket)?.size ?? 0) > 1) {
      let queue = waiting.get(req.socket);
      if (!queue) waiting.set(req.socket, (queue = []));
      queue.push(start);
    } else start();
  }

  /** The request's exchange and flight, counted in flight until complete(). */
  function open(route: Route, req: IncomingMessage, res: ServerResponse, expectation: Flight['expectation']): { flight: Flight; pathRefused?: string } {
    const started = process.hrtime.bigint();
    const method = req.method ?? 'GET';
    const framing = requestFraming(req);
    // A body is inspected whatever the method: an upstream handler that takes any method reads it too.
    // The webhook points apps at the bare listener, so APP_URL may carry "/v1": classify what the endpoint serves.
    const routed = route.protocol.route(method, req.url ?? '/', route.listener.upstream.pathname, req.headers, carriesBody(framing));
    const api = routed.ok ? routed.api : 'passthrough';
    const contentType = headerValue(req.headers, 'content-type');
    const inspect = route.protocol.inspects(api, contentType);
    const ex = newExchange({
      id: requestId(req),
      direction: route.listener.direction,
      method,
      path: routed.ok ? routed.path : pathOnly(req.url ?? '/').slice(0, 256),
      api,
      dialect: routed.dialect,
      clientAddress: req.socket.remoteAddress ?? '',
      requestHeaders: { ...req.headers },
      upstream: route.listener.upstream,
    });
    const flight: Flight = { ex, route, req, res, started, framing, expectation, inspect, bodyRead: false, contentDecoded: false, sentAt: 0, bytesIn: 0, done: false };
    inFlight.add(flight);
    metrics.inFlight.inc({ direction: ex.direction });
    let mine = bySocket.get(req.socket);
    if (!mine) bySocket.set(req.socket, (mine = new Set()));
    mine.add(flight);
    res.once('close', () => onClientClose(flight));
    return { flight, pathRefused: routed.ok ? undefined : routed.reason };
  }

  /** Refusals that need nothing read, the body (read whole when inspected), the request hooks, then the upstream. */
  async function admit(flight: Flight, pathRefused: string | undefined): Promise<void> {
    const { ex, req, res, framing } = flight;
    // A pipelined request whose client left while it waited its turn.
    if (flight.done) return;
    if (refused.has(req.socket)) return dropAfterRefusal(flight);
    if (isRefusedMethod(ex.method)) {
      return refuse(flight, { status: 405, type: 'method_not_allowed', code: 'method_not_allowed', message: `${ex.method.toUpperCase()} is not forwarded by this proxy` });
    }
    // Node also parses a request line without a version (HTTP/0.9, whose servers read no headers) and "HTTP/2.0"
    // in text: readers that disagree on where such a request ends. nginx answers 505 to a major version above 1.
    if (req.httpVersionMajor !== 1) {
      return refuse(flight, { status: 505, type: 'invalid_request', code: 'http_version_not_supported', message: `Request refused: HTTP/${req.httpVersion} is not forwarded (HTTP/1.0 and HTTP/1.1 are)` });
    }
    if (flight.expectation === 'unmet') {
      return refuse(flight, { status: 417, type: 'invalid_request', code: 'expectation_failed', message: 'Request refused: the only expectation this proxy meets is Expect: 100-continue' });
    }
    if (!framing.ok) return refuse(flight, { status: 400, type: 'invalid_request', code: 'invalid_request_framing', message: `Request refused: ${framing.reason}` });
    if (pathRefused !== undefined) return rejectPath(flight, pathRefused);

    const contentType = headerValue(req.headers, 'content-type');
    if (flight.inspect) {
      if (framing.body === 'length' && framing.length > config.maxRequestBytes) return rejectTooLarge(flight);
      if (flight.expectation === 'continue') res.writeContinue();
      let body: Buffer;
      try {
        body = await readBody(req, config.maxRequestBytes);
      } catch (err) {
        if (err instanceof BodyTooLargeError) return rejectTooLarge(flight);
        return complete(flight, 'aborted');
      }
      if (flight.done) return; // a broken or too slow body was answered meanwhile (onClientError)
      flight.bodyRead = true;
      flight.bytesIn = body.length;
      // Decode as the upstream would, never past the bound: the decoded bytes are what is inspected and forwarded.
      const decoded = await decodeContentEncoding(body, headerValue(req.headers, 'content-encoding'), config.maxRequestBytes);
      if (!decoded.ok && decoded.tooLarge) return rejectTooLarge(flight);
      if (decoded.ok && decoded.codings.length > 0) {
        flight.contentDecoded = true;
        ex.notes.body = { decodedFrom: decoded.codings };
      }
      flight.route.protocol.attachBody(ex, decoded.ok ? decoded.body : body, contentType, decoded.ok ? undefined : decoded.reason);
      if (ex.api === 'passthrough') flight.inspect = false;
    }

    const verdict = await runVerdictHooks(flight, 'request');
    if (verdict) return respondBlocked(flight, verdict);
    if (flight.done) return;
    if (ex.input.some((s) => s.edited && !s.readonly)) {
      ex.requestBody = serializeRequest(ex);
      if (flight.route.protocol.editedPath) ex.path = flight.route.protocol.editedPath(ex);
      const ct = utf8ContentType(contentType);
      if (ct !== undefined) req.headers['content-type'] = ct;
    }
    if (refused.has(req.socket)) return dropAfterRefusal(flight);
    if (flight.expectation === 'continue' && !flight.bodyRead) res.writeContinue();
    forward(flight);
  }

  /**
   * A request pipelined behind a refused one: never forwarded, and never answered, since the connection closes
   * once the refusal is written (destroying it now could cut that refusal short).
   */
  function dropAfterRefusal(flight: Flight): void {
    complete(flight, 'aborted', 'after_refused_request');
  }

  /** Runs onRequest or onResponse in order; the first block wins. A hook that throws is skipped. */
  async function runVerdictHooks(flight: Flight, stage: 'request' | 'response'): Promise<BlockVerdict | undefined> {
    for (const hook of hooks) {
      const fn = stage === 'request' ? hook.onRequest : hook.onResponse;
      if (!fn) continue;
      try {
        const result = fn.call(hook, flight.ex);
        // Most hooks answer synchronously: awaiting only promises saves a microtask turn per hook.
        const verdict = result instanceof Promise ? await result : result;
        if (verdict) return verdict;
      } catch (err) {
        hookFailed(hook, stage, err);
      }
      if (flight.done) return undefined;
    }
    return undefined;
  }

  function forward(flight: Flight): void {
    const { req, res, route, ex } = flight;
    const headers = req.headers;
    stripHopByHop(headers);
    // The proxy answered 100-continue itself (nginx and Envoy do too); forwarded, it would also make Node write
    // the upstream head before bodySource sets the path and the framing.
    delete headers.expect;
    if (flight.inspect && config.forceIdentityEncoding) headers['accept-encoding'] = 'identity';
    if (flight.bodyRead) {
      if (flight.contentDecoded) delete headers['content-encoding'];
    } else {
      const capture = new Capture(config.traceBytes);
      flight.requestCapture = capture;
      req.on('data', (chunk: Buffer) => capture.add(chunk));
    }
    if (route.listener.authorization !== undefined) headers.authorization = route.listener.authorization;
    headers['x-request-id'] = ex.id;

    (req as FlightRequest)[FLIGHT] = flight;
    flight.timer = setTimeout(() => onTimeout(flight), config.requestTimeoutMs);
    flight.sentAt = performance.now();
    proxy.web(
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

  /**
   * REQUEST_TIMEOUT passed with nothing from the upstream (no head, or no body bytes since the last). While the
   * relay waits for the client to read what it was sent, it is the client that stalled, not the upstream.
   */
  function onTimeout(flight: Flight): void {
    if (flight.done) return;
    if (flight.proxyRes && flight.res.writableNeedDrain) {
      flight.res.destroy();
      complete(flight, 'client_timeout', 'client_stopped_reading');
      cancelUpstream(flight);
      return;
    }
    const seconds = config.requestTimeoutMs / 1000;
    const message = flight.proxyRes ? `upstream sent nothing for ${seconds}s` : `upstream did not answer within ${seconds}s`;
    upstreamFailed(flight, { status: 504, type: 'upstream_timeout', code: 'upstream_timeout', message }, 'timeout');
  }

  /** http-proxy's report of a failed upstream request: refused, reset or timed out before (or while) the answer came. */
  function onUpstreamError(flight: Flight, err: NodeJS.ErrnoException): void {
    if (flight.proxyRes) return upstreamFailed(flight, UPSTREAM_RESET, 'upstream_error');
    const reason = err.code ?? err.message;
    upstreamFailed(flight, { status: 502, type: 'upstream_unreachable', code: 'upstream_unreachable', message: `upstream ${flight.route.listener.upstream.host} unreachable (${reason})` }, 'upstream_error');
  }

  /**
   * The upstream failed, at whatever phase. Before the client got a head it gets 502/504 in its API's shape at once;
   * an event stream under way ends with an error event in its own dialect; any other body under way is cut, since its
   * status cannot change any more (nginx and Envoy reset the client connection the same way). The log line, the
   * trace and the metrics say the same.
   */
  function upstreamFailed(flight: Flight, verdict: BlockVerdict, outcome: Outcome): void {
    if (flight.done) return;
    answer(flight, verdict, outcome, { retryable: true });
    cancelUpstream(flight);
  }

  /** Stops the upstream exchange; called after complete(), so the resets it causes find the flight done. */
  function cancelUpstream(flight: Flight): void {
    flight.proxyRes?.destroy();
    flight.proxyReq?.destroy();
  }

  function onUpstreamResponse(flight: Flight, proxyRes: IncomingMessage): void {
    const { ex } = flight;
    flight.proxyRes = proxyRes;
    ex.upstreamMs = Math.round((performance.now() - flight.sentAt) * 100) / 100;
    ex.upstreamAddress = proxyRes.socket?.remoteAddress;
    metrics.upstreamDuration.observe({ direction: ex.direction, api: ex.api }, ex.upstreamMs / 1000);
    if (flight.done) {
      proxyRes.destroy();
      return;
    }
    const headers: OutgoingHttpHeaders = { ...proxyRes.headers };
    stripHopByHop(headers);
    Object.assign(headers, ex.responseHeaders);
    headers['x-request-id'] = ex.id;
    const status = proxyRes.statusCode ?? 502;
    const contentType = headerValue(proxyRes.headers, 'content-type');
    proxyRes.on('error', () => undefined); // a reset shows as a close before the body completed
    // One place for a body that stops before its end, whichever relay reads it.
    proxyRes.once('close', () => {
      if (!proxyRes.complete) upstreamFailed(flight, UPSTREAM_RESET, 'upstream_error');
    });
    armIdleTimer(flight);

    if (!flight.inspect) return relayRaw(flight, proxyRes, status, headers);
    const inspection = responseInspection(ex);
    // An inspected route's body is read as the client will read it: decompressed, whatever the upstream chose.
    const body = decodedBody(proxyRes, headers, (err) => bodyFailed(flight, err));
    if (!body) {
      if (!inspection) return relayRaw(flight, proxyRes, status, headers);
      const encoding = headerValue(proxyRes.headers, 'content-encoding');
      return refuseResponse(flight, {
        status: 502,
        type: 'response_unreadable',
        code: 'response_unreadable',
        message: `upstream answered with content-encoding "${encoding}", which the guardrails cannot read`,
      });
    }
    if (flight.route.protocol.isStream(contentType)) return relayStream(flight, proxyRes, body, status, headers, contentType);
    const declared = body === proxyRes ? Number(headerValue(proxyRes.headers, 'content-length') ?? 0) : 0;
    if (declared > config.maxResponseBytes) return oversize(flight, proxyRes, body, status, headers, inspection, []);
    // The headers the body is read with: no content-encoding once it was decoded.
    const read: IncomingHttpHeaders = body === proxyRes ? proxyRes.headers : { ...proxyRes.headers, 'content-encoding': undefined };
    inspectBody(flight, proxyRes, body, status, headers, inspection, read);
  }

  /** The strictest answer of the hooks that inspect this response (block over scan over allow), or undefined. */
  function responseInspection(ex: Exchange): ResponseInspection | undefined {
    const rank: Record<OversizeAction, number> = { allow: 0, scan: 1, block: 2 };
    let found: ResponseInspection | undefined;
    for (const hook of hooks) {
      let r: ResponseInspection | undefined;
      try {
        r = hook.responseInspection?.(ex);
      } catch (err) {
        hookFailed(hook, 'response', err);
      }
      if (r && (!found || rank[r.onOversize] > rank[found.onOversize])) found = r;
    }
    return found;
  }

  /** Sends the response head: from here on the status cannot change, and the body the client gets is captured for the trace. */
  function sendHead(flight: Flight, status: number, headers: OutgoingHttpHeaders): void {
    flight.sent = { status, headers };
    flight.capture = new Capture(config.traceBytes);
    flight.res.writeHead(status, headers);
  }

  /** Uninspected (or unreadable) body: bytes flow through as they come (at the client's pace); a bounded copy goes to the trace. */
  function relayRaw(flight: Flight, source: Readable, status: number, headers: OutgoingHttpHeaders, prefix: Buffer[] = []): void {
    const { res } = flight;
    sendHead(flight, status, headers);
    for (const chunk of prefix) {
      flight.capture!.add(chunk);
      res.write(chunk);
    }
    source.on('data', (chunk: Buffer) => {
      flight.capture!.add(chunk);
      armIdleTimer(flight);
    });
    source.pipe(res);
    res.on('finish', () => complete(flight, 'ok'));
  }

  function inspectBody(
    flight: Flight,
    proxyRes: IncomingMessage,
    body: Readable,
    status: number,
    headers: OutgoingHttpHeaders,
    inspection: ResponseInspection | undefined,
    read: IncomingHttpHeaders,
  ): void {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      armIdleTimer(flight);
      size += chunk.length;
      chunks.push(chunk);
      if (size > config.maxResponseBytes) {
        body.off('data', onData);
        body.off('end', onEnd);
        oversize(flight, proxyRes, body, status, headers, inspection, chunks);
      }
    };
    const onEnd = (): void => {
      clearTimeout(flight.timer);
      completeInspected(flight, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size), status, headers, read).catch((err: unknown) => failed(flight, err));
    };
    body.on('data', onData);
    body.on('end', onEnd);
  }

  /**
   * A response too large to buffer: per the policy's on_oversize, streamed through the channel filters in
   * bounded memory (scan), refused (block), or passed unchecked (allow, also when nothing inspects responses).
   */
  function oversize(flight: Flight, proxyRes: IncomingMessage, body: Readable, status: number, headers: OutgoingHttpHeaders, inspection: ResponseInspection | undefined, read: Buffer[]): void {
    const { ex } = flight;
    const action = inspection?.onOversize ?? 'allow';
    const reason = 'response larger than MAX_RESPONSE_SIZE';
    if (action === 'block') {
      ex.notes.proxy = { responseInspected: false, reason, onOversize: action };
      return refuseResponse(flight, { status: 502, type: 'response_too_large', code: 'response_too_large', message: `upstream response exceeds MAX_RESPONSE_SIZE (${config.maxResponseBytes} bytes)` });
    }
    const inspector = action === 'scan' ? responseInspector(ex) : undefined;
    if (!inspector) {
      ex.notes.proxy = { responseInspected: false, reason };
      return relayRaw(flight, body, status, headers, read);
    }
    ex.notes.proxy = { responseInspected: 'streamed', reason };
    scanLargeBody(flight, proxyRes, body, status, headers, inspector, read);
  }

  function scanLargeBody(flight: Flight, proxyRes: IncomingMessage, body: Readable, status: number, headers: OutgoingHttpHeaders, inspector: StreamInspector, read: Buffer[]): void {
    delete headers['content-length'];
    sendHead(flight, status, headers);
    relayThrough(flight, proxyRes, body, flight.route.protocol.largeBodyRewriter(flight.ex, inspector, { maxKeptChars: config.maxResponseBytes }), { stopOnBlock: false, read });
  }

  /** The upstream's body could not be decoded (a broken gzip stream). */
  function bodyFailed(flight: Flight, err: Error): void {
    flight.ex.notes.proxy = { responseUnreadable: errorSummary(err).message };
    upstreamFailed(flight, { status: 502, type: 'upstream_error', code: 'response_unreadable', message: 'upstream response body could not be decoded' }, 'upstream_error');
  }

  /** Answers instead of the upstream's response (its body is not read), recorded as blocked. */
  function refuseResponse(flight: Flight, verdict: BlockVerdict): void {
    respondBlocked(flight, verdict, 'response');
    cancelUpstream(flight);
  }

  /** The stream filters of the hooks that inspect this exchange's response, chained; undefined when none does. */
  function responseInspector(ex: Exchange): StreamInspector | undefined {
    return chainInspectors(hooks.map((h) => openStream(h, ex)).filter((i): i is StreamInspector => i !== undefined));
  }

  async function completeInspected(flight: Flight, body: Buffer, status: number, headers: OutgoingHttpHeaders, read: IncomingHttpHeaders): Promise<void> {
    const { ex, res } = flight;
    const { protocol } = flight.route;
    protocol.parseResponse(ex, body, read);
    ex.response = { status, headers, body };
    const verdict = await runVerdictHooks(flight, 'response');
    if (flight.done) return;
    // A guard that could not judge the answer (an outage failing closed, 5xx) is no content verdict: the client
    // gets that error, retryable as the verdict says, rather than an answer that looks filtered.
    if (verdict && verdict.status >= 500) return respondBlocked(flight, verdict, 'response');
    let out = body;
    if (verdict) {
      // The model answered; a response-stage block is not the client's fault: the answer comes back with the
      // offending choices withheld (finish_reason content_filter), never as a 4xx the client would blame itself for.
      const filtered = protocol.serializeResponse(ex, body, verdict);
      if (!filtered) return respondBlocked(flight, verdict, 'response');
      out = filtered;
      headers[VERDICT_HEADER] = `content_filter; rule=${verdict.code}`;
    } else if (ex.output.some((s) => s.edited)) {
      out = protocol.serializeResponse(ex, body) ?? body;
      headers[VERDICT_HEADER] = 'redacted';
    }
    headers['content-length'] = String(out.length);
    delete headers['transfer-encoding'];
    sendHead(flight, status, headers);
    flight.capture!.add(out);
    res.end(out);
    complete(flight, verdict ? 'blocked' : 'ok');
  }

  function relayStream(flight: Flight, proxyRes: IncomingMessage, body: Readable, status: number, headers: OutgoingHttpHeaders, contentType: string | undefined): void {
    const { ex, res } = flight;
    ex.stream = true;
    delete headers['content-length'];
    const inspector = responseInspector(ex);
    sendHead(flight, status, headers);
    res.flushHeaders();
    const rewriter = flight.route.protocol.streamRewriter(ex, contentType, inspector, { maxEventBytes: config.maxResponseBytes, maxKeptChars: config.maxResponseBytes });
    const check = inspector?.finalCheck;
    // Without an inspector nothing can change the bytes: they are sent first and parsed for usage and the trace after.
    relayThrough(flight, proxyRes, body, rewriter, {
      passThrough: !inspector,
      stopOnBlock: true,
      ...(check ? { final: { check: () => check.call(inspector), rewriter } } : {}),
    });
  }

  /**
   * Sends `body` to the client through `rewriter` as it arrives, at the pace the client reads, ending with what
   * the filters still hold. A stream stops reading the upstream at a block; a large JSON body is read to its end so
   * the client's JSON stays whole. An event stream that breaks (the upstream resets or stalls, an event over the
   * bound) ends with an in-stream error; the rewriter's own failure ends the exchange as the proxy's error.
   */
  function relayThrough(flight: Flight, proxyRes: IncomingMessage, body: Readable, rewriter: BodyRewriter, opts: { passThrough?: boolean; stopOnBlock: boolean; read?: Buffer[]; final?: FinalCheck }): void {
    const { res } = flight;
    let waiting = false;
    const send = (bytes: Buffer | string): void => {
      if (bytes.length === 0 || res.destroyed) return;
      flight.capture!.add(bytes);
      if (res.write(bytes) || waiting) return;
      // The client reads slower than the upstream writes: stop reading the upstream until it catches up.
      waiting = true;
      body.pause();
      res.once('drain', () => {
        waiting = false;
        if (!flight.done) body.resume();
      });
    };
    const abort = rewriter.abort?.bind(rewriter);
    if (abort) flight.endWith = (verdict) => send(abort(verdict));
    const step = (fn: () => void): void => {
      try {
        fn();
      } catch (err) {
        failed(flight, err);
      }
    };
    step(() => {
      for (const chunk of opts.read ?? []) send(rewriter.push(chunk));
    });
    body.on('data', (chunk: Buffer) =>
      step(() => {
        if (flight.done) return;
        armIdleTimer(flight);
        if (opts.passThrough) send(chunk);
        const out = rewriter.push(chunk);
        if (!opts.passThrough) send(out);
        if (rewriter.failed) return upstreamFailed(flight, rewriter.failed, 'upstream_error');
        if (opts.stopOnBlock && rewriter.blocked) {
          res.end();
          // Complete before cancelling the upstream: destroying it emits its close at once, read as a failure.
          complete(flight, 'blocked');
          cancelUpstream(flight);
        }
      }),
    );
    const close = (): void => {
      res.end();
      complete(flight, rewriter.blocked ? 'blocked' : 'ok');
    };
    body.on('end', () =>
      step(() => {
        if (flight.done) return;
        clearTimeout(flight.timer);
        send(rewriter.end());
        const final = opts.final;
        if (!final || rewriter.blocked) return close();
        // A check of the whole answer (Akto): the terminal events wait for it; tokens already sent stay sent.
        void finalVerdict(final.check).then((verdict) =>
          step(() => {
            if (flight.done) return; // the client left meanwhile
            send(verdict ? final.rewriter.cut(verdict) : final.rewriter.release());
            close();
          }),
        );
      }),
    );
  }

  /** A final check that throws is logged and counted like a failed hook; the stream then ends as it was. */
  async function finalVerdict(check: () => Promise<BlockVerdict | undefined>): Promise<BlockVerdict | undefined> {
    try {
      return await check();
    } catch (err) {
      metrics.hookErrors.inc({ hook: 'stream', phase: 'final_check' });
      logger.error({ phase: 'final_check', err: errorSummary(err) }, 'stream final check failed; the stream ends as it was');
      return undefined;
    }
  }

  function armIdleTimer(flight: Flight): void {
    clearTimeout(flight.timer);
    flight.timer = setTimeout(() => onTimeout(flight), config.requestTimeoutMs);
  }

  function openStream(hook: ExchangeHooks, ex: Exchange): StreamInspector | undefined {
    if (!hook.openStream) return undefined;
    try {
      return hook.openStream(ex);
    } catch (err) {
      hookFailed(hook, 'stream', err);
      return undefined;
    }
  }

  /** What the client got, for the trace: the head sent and the body bytes captured (bounded). */
  function recordResponse(flight: Flight): void {
    const { status, headers } = flight.sent!;
    const capture = flight.capture!;
    const bytes = capture.bytes;
    flight.ex.response = flight.ex.stream
      ? { status, headers, streamText: bytes.toString('utf8'), truncated: capture.truncated }
      : { status, headers, body: bytes, truncated: capture.truncated };
  }

  function respondBlocked(flight: Flight, verdict: BlockVerdict, stage: Stage = 'request'): void {
    // A guardrail's or a limit's verdict: its findings name it.
    answer(flight, verdict, 'blocked', { stage, tagged: false });
  }

  /** The proxy refuses the request itself (method, framing): recorded as blocked, with the code in the log and tag. */
  function refuse(flight: Flight, verdict: BlockVerdict): void {
    answer(flight, verdict, 'blocked');
  }

  /** A request target with no single meaning for every upstream (routes.ts): refused before anything is read. */
  function rejectPath(flight: Flight, reason: string): void {
    flight.ex.notes.proxy = { refused: 'request path', reason };
    refuse(flight, { status: 400, type: 'invalid_request_path', code: 'invalid_request_path', message: `Request refused: ${reason}` });
  }

  function rejectTooLarge(flight: Flight): void {
    const message = `request body exceeds MAX_REQUEST_SIZE (${config.maxRequestBytes} bytes)${flight.bodyRead ? ' once decoded' : ''}`;
    answer(flight, { status: 413, type: 'request_too_large', code: 'request_too_large', message }, 'too_large');
  }

  /**
   * The one way an exchange ends with the proxy's own answer rather than the upstream's: refusals, blocks, limits,
   * fail-closed verdicts, upstream failures, the proxy's own errors. Before the head it is an error in the client's
   * API shape (transient failures stay retryable); after it, the body under way ends as relayThrough can end it.
   * A request whose body was not read whole gets `Connection: close`: its unread rest is not drained.
   */
  function answer(flight: Flight, verdict: BlockVerdict, outcome: Outcome, opts: { retryable?: boolean; stage?: Stage; tagged?: boolean } = {}): void {
    if (flight.done) return;
    const { res, ex } = flight;
    if (res.headersSent) {
      if (flight.endWith) {
        flight.endWith(verdict);
        res.end();
      } else res.destroy();
    } else {
      const rendered = renderError(ex.dialect, verdict, opts.stage ?? 'request');
      const headers: OutgoingHttpHeaders = { ...rendered.headers, ...ex.responseHeaders, 'x-request-id': ex.id };
      if (opts.retryable) delete headers['x-should-retry'];
      if (bodyUnread(flight)) {
        headers.connection = 'close';
        refused.add(flight.req.socket);
      }
      sendHead(flight, rendered.status, headers);
      flight.capture!.add(rendered.body);
      res.end(rendered.body);
    }
    complete(flight, outcome, opts.tagged === false ? undefined : verdict.code);
  }

  /** The client has sent (or may still send) body bytes nobody read: the connection cannot carry another request. */
  function bodyUnread(flight: Flight): boolean {
    if (flight.bodyRead || flight.req.complete) return false;
    return !flight.framing.ok || carriesBody(flight.framing);
  }

  /**
   * The HTTP parser refused a request (malformed head or body framing, a head over MAX_HEADER_SIZE), or the client
   * sent it too slowly (CLIENT_HEADER_TIMEOUT, CLIENT_REQUEST_TIMEOUT). A request already handed over, whose body
   * broke or stalled, is answered and traced as its exchange; one refused in its head gets a bare answer and is
   * counted (there is no request to trace). Its connection closes either way: the framing is lost.
   */
  function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const code = err.code ?? '';
    // A socket error (the client reset or left): its requests end as aborted when their responses close.
    if (!code.startsWith('HPE_') && code !== 'ERR_HTTP_REQUEST_TIMEOUT') {
      socket.destroy();
      return;
    }
    const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const open = [...(bySocket.get(socket) ?? [])];
    const receiving = open.find((f) => !f.req.complete);
    if (receiving) {
      const verdict: BlockVerdict =
        status === 408
          ? { status, type: 'request_timeout', code: 'request_timeout', message: `the request was not received within CLIENT_REQUEST_TIMEOUT (${config.clientRequestTimeoutMs / 1000}s)` }
          : { status: 400, type: 'invalid_request', code: 'invalid_request_framing', message: 'Request refused: its body is not validly framed' };
      answer(receiving, verdict, status === 408 ? 'client_timeout' : 'blocked');
      cancelUpstream(receiving);
      return;
    }
    const reason = status === 408 ? 'request head not received within CLIENT_HEADER_TIMEOUT' : status === 431 ? 'request head over MAX_HEADER_SIZE' : `malformed request (${code})`;
    // Earlier pipelined requests are still answering: a bare answer would corrupt theirs. They finish, then the
    // connection closes (complete()).
    if (open.length > 0) {
      metrics.clientErrors.inc({ status: String(status) });
      logger.warn({ status, reason, client: remoteAddress(socket) }, 'request refused by the HTTP parser');
      closing.add(socket);
      return;
    }
    refuseRaw(socket, status, reason);
  }

  /** A bare answer on a connection that carries no request the proxy accepted, then the connection closes. */
  function refuseRaw(socket: Duplex, status: number, reason: string): void {
    metrics.clientErrors.inc({ status: String(status) });
    logger.warn({ status, reason, client: remoteAddress(socket) }, 'request refused by the HTTP parser');
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
  }

  function onClientClose(flight: Flight): void {
    if (flight.done || flight.res.writableFinished) return;
    // The client went away: cancel the upstream request so the model stops generating.
    complete(flight, 'aborted');
    cancelUpstream(flight);
  }

  /** An exception in the proxy's own code while handling a request: logged, answered 500 (or the relay cut), completed. */
  function failed(flight: Flight, err: unknown): void {
    logger.error({ reqId: flight.ex.id, err: errorSummary(err) }, 'unexpected error while proxying');
    if (flight.done) return;
    answer(flight, { status: 500, type: 'proxy_error', code: 'proxy_error', message: 'the proxy failed while handling this request' }, 'error', { retryable: true });
    cancelUpstream(flight);
  }

  function hookFailed(hook: ExchangeHooks, phase: string, err: unknown): void {
    metrics.hookErrors.inc({ hook: hook.name, phase });
    logger.error({ hook: hook.name, phase, err: errorSummary(err) }, 'hook failed; request continues');
  }

  /** The one end of every exchange: counted out of flight, recorded as the client got it, traced and logged once. */
  function complete(flight: Flight, outcome: Outcome, error?: string): void {
    if (flight.done) return;
    flight.done = true;
    clearTimeout(flight.timer);
    inFlight.delete(flight);
    const socket = flight.req.socket;
    const others = bySocket.get(socket);
    others?.delete(flight);
    if (closing.has(socket) && !others?.size) socket.end();
    // The next pipelined request's turn, once this exchange is recorded.
    const next = waiting.get(socket)?.shift();
    if (next) setImmediate(next);
    const { ex } = flight;
    metrics.inFlight.dec({ direction: ex.direction });
    ex.outcome = outcome;
    if (error !== undefined) {
      flight.error = error;
      (ex.traceTags ??= {})['proxy-error'] = error;
    }
    // The trace says what the client got: nothing when no head was sent (an answer the hooks saw is not one).
    if (flight.sent) recordResponse(flight);
    else ex.response = undefined;
    if (flight.requestCapture) {
      ex.requestBody = flight.requestCapture.bytes;
      flight.bytesIn = flight.requestCapture.total;
    }
    const status = ex.response?.status ?? (outcome === 'aborted' ? 499 : 0);
    const totalMs = Number(process.hrtime.bigint() - flight.started) / 1e6;
    const bytesOut = flight.capture?.total ?? 0;
    for (const hook of hooks) {
      if (!hook.onComplete) continue;
      try {
        hook.onComplete(ex);
      } catch (err) {
        hookFailed(hook, 'complete', err);
      }
    }
    const { direction } = ex;
    metrics.requests.inc({ direction, api: ex.api, status: String(status), outcome });
    metrics.duration.observe({ direction, api: ex.api, stream: String(ex.stream) }, totalMs / 1000);
    metrics.bytes.inc({ direction, flow: 'in' }, flight.bytesIn);
    metrics.bytes.inc({ direction, flow: 'out' }, bytesOut);
    const line = {
      reqId: ex.id,
      direction,
      method: ex.method,
      path: pathOnly(ex.path),
      api: ex.api,
      model: ex.model,
      stream: ex.stream,
      status,
      outcome,
      error: flight.error,
      upstreamMs: ex.upstreamMs,
      totalMs: Math.round(totalMs * 100) / 100,
      bytesIn: flight.bytesIn,
      bytesOut,
      identity: ex.identity,
      findings: ex.findings.length > 0 ? ex.findings.map((f) => `${f.ruleId}:${f.action}`) : undefined,
      // category:tier:score of each guardrail finding that names a risk category (e.g. prompt_injection:model:0.97)
      risks: ex.findings.some((f) => f.category) ? ex.findings.filter((f) => f.category).map((f) => `${f.category}:${f.tier ?? 'heuristic'}:${f.score ?? ''}`) : undefined,
    };
    logger.info(line, 'request');
    if (logger.isLevelEnabled('debug')) {
      logger.debug(
        {
          reqId: ex.id,
          headers: ex.requestHeaders,
          requestBody: ex.requestBody.toString('utf8'),
          response: ex.response && {
            status: ex.response.status,
            headers: ex.response.headers,
            body: ex.response.streamText ?? ex.response.body?.toString('utf8'),
          },
        },
        'request detail',
      );
    }
  }

  async function close(): Promise<void> {
    draining = true;
    for (const s of servers) s.close();
    for (const s of serving) s.stop();
    const deadline = Date.now() + config.drainTimeoutMs;
    while (inFlight.size > 0 && Date.now() < deadline) await sleep(50);
    for (const f of inFlight) f.res.destroy();
    for (const s of sockets) s.destroy();
    for (const r of routes) r.agent.destroy();
    proxy.close();
    await admin.close();
  }

  return { url: urls[0], urls, adminUrl: admin.url, close };
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

function requestId(req: IncomingMessage): string {
  const given = headerValue(req.headers, 'x-request-id');
  return given !== undefined && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
}

function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
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

function errorSummary(err: unknown): { message: string; name?: string } {
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { message: String(err) };
}

function loopbackHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
