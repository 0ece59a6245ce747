import { cancelUpstream, complete, upstreamFailed } from './finish';
import type { Flight } from './types';

/** (Re)starts REQUEST_TIMEOUT: the upstream must answer, or send more of its body, within it. */
export function armIdleTimer(flight: Flight): void {
  clearTimeout(flight.timer);
  flight.timer = setTimeout(() => onTimeout(flight), flight.ctx.config.requestTimeoutMs);
}

/**
 * REQUEST_TIMEOUT passed with nothing from the upstream (no head, or no body bytes since the last). While the
 * relay waits for the client to read what it was sent, it is the client that stalled, not the upstream.
 */
export function onTimeout(flight: Flight): void {
  if (flight.done) return;
  if (flight.proxyRes && flight.res.writableNeedDrain) {
    flight.res.destroy();
    complete(flight, 'client_timeout', 'client_stopped_reading');
    cancelUpstream(flight);
    return;
  }
  const seconds = flight.ctx.config.requestTimeoutMs / 1000;
  const message = flight.proxyRes ? `upstream sent nothing for ${seconds}s` : `upstream did not answer within ${seconds}s`;
  upstreamFailed(flight, { status: 504, type: 'upstream_timeout', code: 'upstream_timeout', message }, 'timeout');
}
