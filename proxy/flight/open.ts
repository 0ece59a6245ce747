import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { carriesBody, requestFraming } from '../http/framing';
import { headerValue } from '../http/headers';
import { newExchange } from '../protocols/exchange';
import { pathOnly } from '../telemetry/request-log';
import { onClientClose } from './finish';
import type { Flight, FlightContext, Route } from './types';

/** The request's exchange and flight from its head alone, counted in flight until complete(). */
export function openFlight(ctx: FlightContext, route: Route, req: IncomingMessage, res: ServerResponse, expectation?: Flight['expectation']): Flight {
  const started = process.hrtime.bigint();
  const method = req.method ?? 'GET';
  const framing = requestFraming(req);
  // A body is inspected whatever the method: an upstream handler that takes any method reads it too.
  // The webhook points apps at the bare listener, so APP_URL may carry "/v1": classify what the endpoint serves.
  const routed = route.protocol.route(method, req.url ?? '/', route.listener.upstream.pathname, req.headers, carriesBody(framing));
  const api = routed.ok ? routed.api : 'passthrough';
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
  const flight: Flight = {
    ctx,
    ex,
    route,
    req,
    res,
    started,
    framing,
    expectation,
    pathRefused: routed.ok ? undefined : routed.reason,
    inspect: route.protocol.inspects(api, headerValue(req.headers, 'content-type')),
    bodyRead: false,
    contentDecoded: false,
    sentAt: 0,
    bytesIn: 0,
    done: false,
  };
  ctx.connections.add(flight);
  ctx.metrics.inFlight.inc({ direction: ex.direction });
  res.once('close', () => onClientClose(flight));
  return flight;
}

/** The client's X-Request-Id when it is a plain token, else a fresh one. */
export function requestId(req: IncomingMessage): string {
  const given = headerValue(req.headers, 'x-request-id');
  return given !== undefined && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
}
