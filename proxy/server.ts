import { randomUUID } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Readable } from 'node:stream';
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
import { headerValue, isEventStream, isUploadType, stripHopByHop } from './http/headers';
import { renderError, VERDICT_HEADER } from './protocols/errors';
import { newExchange, type BlockVerdict, type Exchange, type Outcome, type Stage } from './protocols/exchange';
import { attachRequestBody, isInferenceRoute, serializeRequest, utf8ContentType } from './protocols/request';
import { parseResponse, serializeResponse } from './protocols/response';
import { routeRequest } from './protocols/routes';
import { createJsonStreamRewriter } from './protocols/json-stream';
import { createStreamRewriter, type StreamRewriter } from './protocols/stream';
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
  target: string;
  agent: http.Agent;
}

/** Turns upstream body bytes into the bytes the client gets (an event-stream or large-JSON rewriter). */
interface BodyRewriter {
  push(chunk: Buffer): Buffer | string;
  end(): Buffer | string;
  readonly blocked?: BlockVerdict;
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
  /** Parse and inspect the response too (known inference route, JSON body). */
  inspect: boolean;
  /** The request body was read into ex.requestBody, so it is sent from there rather than piped. */
  bodyRead: boolean;
  /** The body arrived with a Content-Encoding that was undone: the decoded bytes are forwarded. */
  contentDecoded: boolean;
  proxyReq?: http.ClientRequest;
  proxyRes?: IncomingMessage;
  timer?: NodeJS.Timeout;
  timedOut: boolean;
  /** performance.now() when the request went upstream. */
  sentAt: number;
  bytesIn: number;
  /** Uninspected request bodies stream through; this keeps a bounded copy for the trace. */
  requestCapture?: Capture;
  capture?: Capture;
  done: boolean;
}

const FLIGHT = Symbol('akto.flight');
type FlightRequest = IncomingMessage & { [FLIGHT]?: Flight };

/** Starts the proxy listeners and the admin server. */
export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const { config, hooks, logger, registry } = opts;
  const env = opts.env ?? process.env;
  const metrics = createProxyMetrics(registry);
  const inFlight = new Set<Flight>();
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

  const routes: Route[] = config.listeners.map((listener) => ({
    listener,
    target: listener.upstream.href,
    agent: createUpstreamAgent(listener.upstream, env),
  }));

  const servers: http.Server[] = [];
  const serving: ServingServer[] = [];
  const sockets = new Set<Socket>();
  for (const route of routes) {
    // Node's own server, not express, on the proxied port: express re-prototypes every req/res,
    // which raised the CPU per proxied request by ~70% in an A/B (see README, Measured figures).
    const listener = createServingServer(config.listenTls, logger, (req, res) => {
      handle(route, req, res).catch((err: unknown) => {
        logger.error({ err }, 'unexpected error while proxying');
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    });
    serving.push(listener);
    const server = listener.server;
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    server.requestTimeout = 0; // streams may run for minutes; REQUEST_TIMEOUT covers the upstream side
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    await listen(server, route.listener.port, config.listenHost);
    servers.push(server);
  }

  const admin = await createAdminServer({
    port: config.adminPort,
    host: config.adminHost,
    registry,
    ready: () => !draining,
    detail: opts.readyDetail,
  });

  const urls = servers.map((s, i) => `${serving[i].scheme}://${loopbackHost(config.listenHost)}:${(s.address() as AddressInfo).port}`);
  logger.info(
    {
      listeners: routes.map((r, i) => ({ url: urls[i], upstream: redactUrl(r.listener.upstream), authorization: r.listener.authorization ? 'set' : 'not set' })),
      admin: admin.url,
      hooks: hooks.map((h) => h.name),
    },
    'akto-agent-proxy listening',
  );

  async function handle(route: Route, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const method = req.method ?? 'GET';
    // The webhook points apps at the bare listener, so APP_URL may carry "/v1": classify what the endpoint serves.
    const routed = routeRequest(method, req.url ?? '/', route.listener.upstream.pathname);
    const api = routed.ok ? routed.api : 'passthrough';
    const contentType = headerValue(req.headers, 'content-type');
    const inspect = api !== 'passthrough' && (isInferenceRoute(api) || !isUploadType(contentType));
    const ex = newExchange({
      id: requestId(req),
      method,
      path: routed.ok ? routed.path : pathOnly(req.url ?? '/').slice(0, 256),
      api,
      dialect: routed.dialect,
      clientAddress: req.socket.remoteAddress ?? '',
      requestHeaders: { ...req.headers },
      upstream: route.listener.upstream,
    });
    const flight: Flight = { ex, route, req, res, started, inspect, bodyRead: false, contentDecoded: false, timedOut: false, sentAt: 0, bytesIn: 0, done: false };
    inFlight.add(flight);
    metrics.inFlight.inc();
    res.once('close', () => onClientClose(flight));
    if (!routed.ok) return rejectPath(flight, routed.reason);

    if (inspect) {
      const declared = Number(headerValue(req.headers, 'content-length') ?? 0);
      if (declared > config.maxRequestBytes) return rejectTooLarge(flight);
      let body: Buffer;
      try {
        body = await readBody(req, config.maxRequestBytes);
      } catch (err) {
        if (err instanceof BodyTooLargeError) return rejectTooLarge(flight);
        return finish(flight, 'aborted');
      }
      flight.bodyRead = true;
      flight.bytesIn = body.length;
      // Decode as the upstream would, never past the bound: the decoded bytes are what is inspected and forwarded.
      const decoded = await decodeContentEncoding(body, headerValue(req.headers, 'content-encoding'), config.maxRequestBytes);
      if (!decoded.ok && decoded.tooLarge) return rejectTooLarge(flight);
      if (decoded.ok && decoded.codings.length > 0) {
        flight.contentDecoded = true;
        ex.notes.body = { decodedFrom: decoded.codings };
      }
      attachRequestBody(ex, decoded.ok ? decoded.body : body, contentType, decoded.ok ? undefined : decoded.reason);
      if (ex.api === 'passthrough') flight.inspect = false;
    }

    const verdict = await runVerdictHooks(flight, 'request');
    if (verdict) return respondBlocked(flight, verdict);
    if (flight.done) return;
    if (ex.input.some((s) => s.edited && !s.readonly)) {
      ex.requestBody = serializeRequest(ex);
      const ct = utf8ContentType(contentType);
      if (ct !== undefined) req.headers['content-type'] = ct;
    }

    forward(flight);
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
    if (flight.inspect && config.forceIdentityEncoding) headers['accept-encoding'] = 'identity';
    if (flight.bodyRead) {
      headers['content-length'] = String(ex.requestBody.length);
      if (flight.contentDecoded) delete headers['content-encoding'];
    } else {
      const capture = new Capture(config.maxRequestBytes);
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
        changeOrigin: true,
        xfwd: true,
        selfHandleResponse: true,
        buffer: bodySource(ex.path, flight.bodyRead ? ex.requestBody : req),
      },
      (err) => onUpstreamError(flight, err as NodeJS.ErrnoException),
    );
  }

  function onTimeout(flight: Flight): void {
    flight.timedOut = true;
    if (flight.proxyRes) {
      // The head arrived but the body stalled: end what the client has, there is no status to change.
      flight.proxyRes.destroy();
      flight.res.end();
      finish(flight, 'timeout');
      return;
    }
    if (flight.proxyReq) {
      flight.proxyReq.destroy(new Error('upstream timeout')); // answered as 504 by onUpstreamError
      return;
    }
    // Still queued for a connection: answer now; a late response is discarded (flight.done).
    onUpstreamError(flight, Object.assign(new Error('upstream timeout'), { code: 'ETIMEDOUT' }));
  }

  function onUpstreamError(flight: Flight, err: NodeJS.ErrnoException): void {
    clearTimeout(flight.timer);
    if (flight.done) return;
    if (flight.res.headersSent) {
      flight.res.destroy();
      return finish(flight, flight.timedOut ? 'timeout' : 'upstream_error');
    }
    const timedOut = flight.timedOut;
    const verdict: BlockVerdict = timedOut
      ? { status: 504, type: 'upstream_timeout', code: 'upstream_timeout', message: `upstream did not answer within ${config.requestTimeoutMs / 1000}s` }
      : { status: 502, type: 'upstream_unreachable', code: 'upstream_unreachable', message: `upstream ${flight.route.listener.upstream.host} unreachable (${err.code ?? err.message})` };
    sendError(flight, verdict, true);
    finish(flight, timedOut ? 'timeout' : 'upstream_error');
  }

  function onUpstreamResponse(flight: Flight, proxyRes: IncomingMessage): void {
    const { ex } = flight;
    flight.proxyRes = proxyRes;
    ex.upstreamMs = Math.round((performance.now() - flight.sentAt) * 100) / 100;
    ex.upstreamAddress = proxyRes.socket?.remoteAddress;
    metrics.upstreamDuration.observe({ api: ex.api }, ex.upstreamMs / 1000);
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
    flight.capture = new Capture(config.maxResponseBytes);
    proxyRes.on('error', () => undefined); // reported through 'aborted' / close below

    if (!flight.inspect) return relayRaw(flight, proxyRes, status, headers);
    const inspection = responseInspection(ex);
    // An inspected route's body is read as the client will read it: decompressed, whatever the upstream chose.
    const body = decodedBody(proxyRes, headers, (err) => bodyFailed(flight, proxyRes, err));
    if (!body) {
      if (!inspection) return relayRaw(flight, proxyRes, status, headers);
      const encoding = headerValue(proxyRes.headers, 'content-encoding');
      return refuseResponse(flight, proxyRes, {
        status: 502,
        type: 'response_unreadable',
        code: 'response_unreadable',
        message: `upstream answered with content-encoding "${encoding}", which the guardrails cannot read`,
      });
    }
    if (isEventStream(contentType)) return relayStream(flight, proxyRes, body, status, headers);
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

  /** Uninspected (or unreadable) body: bytes flow through as they come; a copy within the bound goes to the trace. */
  function relayRaw(flight: Flight, source: Readable, status: number, headers: OutgoingHttpHeaders, prefix: Buffer[] = []): void {
    const { res } = flight;
    clearTimeout(flight.timer);
    res.writeHead(status, headers);
    for (const chunk of prefix) {
      flight.capture!.add(chunk);
      res.write(chunk);
    }
    source.on('data', (chunk: Buffer) => flight.capture!.add(chunk));
    source.on('end', () => recordResponse(flight, status, headers));
    source.pipe(res);
    res.on('finish', () => finish(flight, 'ok'));
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
      void completeInspected(flight, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size), status, headers, read);
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
      return refuseResponse(flight, proxyRes, { status: 502, type: 'response_too_large', code: 'response_too_large', message: `upstream response exceeds MAX_RESPONSE_SIZE (${config.maxResponseBytes} bytes)` });
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
    flight.res.writeHead(status, headers);
    relayThrough(flight, proxyRes, body, status, headers, createJsonStreamRewriter(flight.ex, inspector), { stopOnBlock: false, read });
  }

  /** The upstream died mid-body (or its body would not decode): release what filters still hold, end the response. */
  function upstreamDied(flight: Flight, status: number, headers: OutgoingHttpHeaders, flush: () => void): void {
    if (flight.done) return;
    // Also fires when we cancelled the upstream because the client left.
    if (flight.req.socket.destroyed) return onClientClose(flight);
    flush();
    flight.res.end();
    recordResponse(flight, status, headers);
    finish(flight, 'upstream_error');
  }

  function bodyFailed(flight: Flight, proxyRes: IncomingMessage, err: Error): void {
    if (flight.done) return;
    logger.warn({ reqId: flight.ex.id, err: errorSummary(err) }, 'upstream response body could not be decoded');
    if (!flight.res.headersSent) {
      sendError(flight, { status: 502, type: 'upstream_unreachable', code: 'response_unreadable', message: 'upstream response body could not be decoded' }, false);
      finish(flight, 'upstream_error');
    } else {
      flight.res.end();
      finish(flight, 'upstream_error');
    }
    proxyRes.destroy();
  }

  /** Answers instead of the upstream's response (its body is not read), recorded as blocked. */
  function refuseResponse(flight: Flight, proxyRes: IncomingMessage, verdict: BlockVerdict): void {
    clearTimeout(flight.timer);
    respondBlocked(flight, verdict, 'response');
    proxyRes.destroy();
  }

  /** The stream filters of the hooks that inspect this exchange's response, chained; undefined when none does. */
  function responseInspector(ex: Exchange): StreamInspector | undefined {
    return chainInspectors(hooks.map((h) => openStream(h, ex)).filter((i): i is StreamInspector => i !== undefined));
  }

  async function completeInspected(flight: Flight, body: Buffer, status: number, headers: OutgoingHttpHeaders, read: IncomingHttpHeaders): Promise<void> {
    const { ex, res } = flight;
    parseResponse(ex, body, read);
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
      const filtered = serializeResponse(ex, body, verdict);
      if (!filtered) return respondBlocked(flight, verdict, 'response');
      out = filtered;
      headers[VERDICT_HEADER] = `content_filter; rule=${verdict.code}`;
    } else if (ex.output.some((s) => s.edited)) {
      out = serializeResponse(ex, body);
      headers[VERDICT_HEADER] = 'redacted';
    }
    headers['content-length'] = String(out.length);
    delete headers['transfer-encoding'];
    flight.capture!.add(out);
    res.writeHead(status, headers);
    res.end(out);
    recordResponse(flight, status, headers);
    finish(flight, verdict ? 'blocked' : 'ok');
  }

  function relayStream(flight: Flight, proxyRes: IncomingMessage, body: Readable, status: number, headers: OutgoingHttpHeaders): void {
    const { ex, res } = flight;
    ex.stream = true;
    delete headers['content-length'];
    const inspector = responseInspector(ex);
    res.writeHead(status, headers);
    res.flushHeaders();
    const rewriter = createStreamRewriter(ex, inspector);
    const check = inspector?.finalCheck;
    // Without an inspector nothing can change the bytes: they are sent first and parsed for usage and the trace after.
    relayThrough(flight, proxyRes, body, status, headers, rewriter, {
      passThrough: !inspector,
      stopOnBlock: true,
      ...(check ? { final: { check: () => check.call(inspector), rewriter } } : {}),
    });
  }

  /**
   * Sends `body` to the client through `rewriter` as it arrives, ending with what the filters still hold. A
   * stream stops reading the upstream at a block; a large JSON body is read to its end so the client's JSON stays whole.
   */
  function relayThrough(
    flight: Flight,
    proxyRes: IncomingMessage,
    body: Readable,
    status: number,
    headers: OutgoingHttpHeaders,
    rewriter: BodyRewriter,
    opts: { passThrough?: boolean; stopOnBlock: boolean; read?: Buffer[]; final?: FinalCheck },
  ): void {
    const { res } = flight;
    const send = (bytes: Buffer | string): void => {
      if (bytes.length === 0) return;
      flight.capture!.add(bytes);
      res.write(bytes);
    };
    for (const chunk of opts.read ?? []) send(rewriter.push(chunk));
    body.on('data', (chunk: Buffer) => {
      if (flight.done) return;
      armIdleTimer(flight);
      if (opts.passThrough) {
        send(chunk);
        rewriter.push(chunk);
        return;
      }
      send(rewriter.push(chunk));
      if (opts.stopOnBlock && rewriter.blocked) {
        clearTimeout(flight.timer);
        res.end();
        recordResponse(flight, status, headers);
        // Finish before cancelling the upstream: destroying it emits 'aborted' at once, read as an upstream failure.
        finish(flight, 'blocked');
        proxyRes.destroy();
      }
    });
    const close = (): void => {
      res.end();
      recordResponse(flight, status, headers);
      finish(flight, rewriter.blocked ? 'blocked' : 'ok');
    };
    body.on('end', () => {
      if (flight.done) return;
      clearTimeout(flight.timer);
      send(rewriter.end());
      const final = opts.final;
      if (!final || rewriter.blocked) return close();
      // A check of the whole answer (Akto): the terminal events wait for it; tokens already sent stay sent.
      void finalVerdict(final.check).then((verdict) => {
        if (flight.done) return; // the client left meanwhile
        send(verdict ? final.rewriter.cut(verdict) : final.rewriter.release());
        close();
      });
    });
    // The upstream died mid-body: release what filters still hold, and the terminal events a final check held.
    proxyRes.on('aborted', () =>
      upstreamDied(flight, status, headers, () => {
        send(rewriter.end());
        if (opts.final) send(opts.final.rewriter.release());
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

  function recordResponse(flight: Flight, status: number, headers: OutgoingHttpHeaders): void {
    const capture = flight.capture!;
    const bytes = capture.bytes;
    flight.ex.response = flight.ex.stream
      ? { status, headers, streamText: bytes.toString('utf8'), truncated: capture.truncated }
      : { status, headers, body: bytes, truncated: capture.truncated };
  }

  function respondBlocked(flight: Flight, verdict: BlockVerdict, stage: Stage = 'request'): void {
    sendError(flight, verdict, false, stage);
    finish(flight, 'blocked');
  }

  /** A request target with no single meaning for every upstream (routes.ts): refused before anything is read. */
  function rejectPath(flight: Flight, reason: string): void {
    flight.ex.notes.proxy = { refused: 'request path', reason };
    sendError(flight, { status: 400, type: 'invalid_request_path', code: 'invalid_request_path', message: `Request refused: ${reason}` }, false);
    finish(flight, 'blocked');
  }

  function rejectTooLarge(flight: Flight): void {
    // The rest of the body is not read: close the connection rather than drain it (set before the head is written).
    const message = `request body exceeds MAX_REQUEST_SIZE (${config.maxRequestBytes} bytes)${flight.bodyRead ? ' once decoded' : ''}`;
    sendError(flight, { status: 413, type: 'request_too_large', code: 'request_too_large', message, headers: { connection: 'close' } }, false);
    finish(flight, 'too_large');
  }

  /** Answers with an error in the client's API shape. Transient upstream failures stay retryable. */
  function sendError(flight: Flight, verdict: BlockVerdict, retryable: boolean, stage: Stage = 'request'): void {
    const { res, ex } = flight;
    if (res.headersSent) {
      res.end();
      return;
    }
    const rendered = renderError(ex.dialect, verdict, stage);
    const headers: OutgoingHttpHeaders = { ...rendered.headers, ...ex.responseHeaders, 'x-request-id': ex.id };
    if (retryable) delete headers['x-should-retry'];
    headers['content-length'] = String(rendered.body.length);
    res.writeHead(rendered.status, headers);
    res.end(rendered.body);
    ex.response = { status: rendered.status, headers, body: rendered.body };
  }

  function onClientClose(flight: Flight): void {
    if (flight.done) return;
    if (!flight.res.writableFinished) {
      // The client went away: cancel the upstream request so the model stops generating.
      flight.proxyRes?.destroy();
      flight.proxyReq?.destroy();
      if (flight.capture && !flight.ex.response) recordResponse(flight, flight.proxyRes?.statusCode ?? 499, {});
      finish(flight, 'aborted');
    }
  }

  function hookFailed(hook: ExchangeHooks, phase: string, err: unknown): void {
    metrics.hookErrors.inc({ hook: hook.name, phase });
    logger.error({ hook: hook.name, phase, err: errorSummary(err) }, 'hook failed; request continues');
  }

  function finish(flight: Flight, outcome: Outcome): void {
    if (flight.done) return;
    flight.done = true;
    clearTimeout(flight.timer);
    inFlight.delete(flight);
    metrics.inFlight.dec();
    const { ex } = flight;
    ex.outcome = outcome;
    if (flight.requestCapture) {
      ex.requestBody = flight.requestCapture.bytes;
      flight.bytesIn = flight.requestCapture.total;
    }
    const status = ex.response?.status ?? (outcome === 'aborted' ? 499 : 0);
    const totalMs = Number(process.hrtime.bigint() - flight.started) / 1e6;
    const bytesOut = flight.capture?.total ?? ex.response?.body?.length ?? 0;
    for (const hook of hooks) {
      if (!hook.onComplete) continue;
      try {
        hook.onComplete(ex);
      } catch (err) {
        hookFailed(hook, 'complete', err);
      }
    }
    metrics.requests.inc({ api: ex.api, status: String(status), outcome });
    metrics.duration.observe({ api: ex.api, stream: String(ex.stream) }, totalMs / 1000);
    metrics.bytes.inc({ direction: 'in' }, flight.bytesIn);
    metrics.bytes.inc({ direction: 'out' }, bytesOut);
    const line = {
      reqId: ex.id,
      method: ex.method,
      path: pathOnly(ex.path),
      api: ex.api,
      model: ex.model,
      stream: ex.stream,
      status,
      outcome,
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
 * target and req.url collapses and rewrites). A pre-read body ends the request with the bytes directly, head and
 * body in one syscall; an uninspected one streams from the client.
 */
function bodySource(path: string, body: Buffer | IncomingMessage): Readable {
  const pipe = <T extends NodeJS.WritableStream>(dest: T): T => {
    (dest as unknown as http.ClientRequest).path = path;
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
