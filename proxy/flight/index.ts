import type { IncomingMessage, ServerResponse } from 'node:http';
import { admit } from './admit';
import { failed } from './finish';
import { openFlight } from './open';
import { errorSummary } from './verdicts';
import type { Flight, FlightContext, Route } from './types';
export type { FinishObserver, FlightRecord } from '../telemetry/request-log';

export { Connections } from './connections';
export { upstreamTarget } from './forward';
export { answer, cancelUpstream } from './finish';
export type { Flight, FlightContext, ProxyMetrics, Route } from './types';

/**
 * One request's flight: opened from its head, it waits its turn behind the requests pipelined ahead of it on its
 * connection, then is admitted (refusals, body, request verdict), forwarded, relayed or streamed back (response
 * verdict), and finished. Whatever happens, it ends in complete() exactly once.
 */
export function handleRequest(ctx: FlightContext, route: Route, req: IncomingMessage, res: ServerResponse, expectation?: Flight['expectation']): void {
  let flight: Flight;
  try {
    flight = openFlight(ctx, route, req, res, expectation);
  } catch (err) {
    // Nothing of the request is known yet to answer it in its API's shape.
    ctx.logger.error({ err: errorSummary(err) }, 'unexpected error while accepting a request');
    if (!res.headersSent) res.writeHead(500, { connection: 'close', 'content-length': '0' }).end();
    else res.destroy();
    return;
  }
  ctx.connections.takeTurn(flight, () => {
    admit(flight).catch((err: unknown) => failed(flight, err));
  });
}
