import type { OutgoingHttpHeaders } from 'node:http';
import { Capture } from '../http/body';
import { carriesBody } from '../http/framing';
import { renderError } from '../protocols/errors';
import type { BlockVerdict, Outcome, Stage } from '../protocols/exchange';
import { errorSummary, hookFailed } from './verdicts';
import type { FlightRecord } from '../telemetry/request-log';
import type { Flight } from './types';

/** The upstream's connection ended after its head, before its body did. */
export const UPSTREAM_RESET: BlockVerdict = { status: 502, type: 'upstream_error', code: 'upstream_reset', message: 'upstream closed the connection before its response ended' };

/** Sends the response head: from here on the status cannot change, and the body the client gets is captured for the trace. */
export function sendHead(flight: Flight, status: number, headers: OutgoingHttpHeaders): void {
  flight.sent = { status, headers };
  flight.capture = new Capture(flight.ctx.config.traceBytes);
  flight.res.writeHead(status, headers);
}

/**
 * The one way an exchange ends with the proxy's own answer rather than the upstream's: refusals, blocks, limits,
 * fail-closed verdicts, upstream failures, the proxy's own errors. Before the head it is an error in the client's
 * API shape (transient failures stay retryable); after it, the body under way ends as the relay can end it.
 * A request whose body was not read whole gets `Connection: close`: its unread rest is not drained.
 */
export function answer(flight: Flight, verdict: BlockVerdict, outcome: Outcome, opts: { retryable?: boolean; stage?: Stage; tagged?: boolean } = {}): void {
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
      flight.ctx.connections.refuseRest(flight.req.socket);
    }
    sendHead(flight, rendered.status, headers);
    flight.capture!.add(rendered.body);
    res.end(rendered.body);
  }
  complete(flight, outcome, opts.tagged === false ? undefined : verdict.code);
}

/** The client has sent (or may still send) body bytes nobody read: the connection cannot carry another request. */
export function bodyUnread(flight: Flight): boolean {
  if (flight.bodyRead || flight.req.complete) return false;
  return !flight.framing.ok || carriesBody(flight.framing);
}

/** A guardrail's or a limit's verdict: its findings name it, so the trace carries no proxy-error tag. */
export function respondBlocked(flight: Flight, verdict: BlockVerdict, stage: Stage = 'request'): void {
  answer(flight, verdict, 'blocked', { stage, tagged: false });
}

/** The proxy refuses the request itself (method, framing): recorded as blocked, with the code in the log and tag. */
export function refuse(flight: Flight, verdict: BlockVerdict): void {
  answer(flight, verdict, 'blocked');
}

export function rejectTooLarge(flight: Flight): void {
  const max = flight.ctx.config.maxRequestBytes;
  const message = `request body exceeds MAX_REQUEST_SIZE (${max} bytes)${flight.bodyRead ? ' once decoded' : ''}`;
  answer(flight, { status: 413, type: 'request_too_large', code: 'request_too_large', message }, 'too_large');
}

/**
 * The upstream failed, at whatever phase. Before the client got a head it gets 502/504 in its API's shape at once;
 * an event stream under way ends with an error event in its own dialect; any other body under way is cut, since its
 * status cannot change any more (nginx and Envoy reset the client connection the same way). The log line, the
 * trace and the metrics say the same.
 */
export function upstreamFailed(flight: Flight, verdict: BlockVerdict, outcome: Outcome): void {
  if (flight.done) return;
  answer(flight, verdict, outcome, { retryable: true });
  cancelUpstream(flight);
}

/** Stops the upstream exchange; called after complete(), so the resets it causes find the flight done. */
export function cancelUpstream(flight: Flight): void {
  flight.proxyRes?.destroy();
  flight.proxyReq?.destroy();
}

/** An exception in the proxy's own code while handling a request: logged, answered 500 (or the relay cut), completed. */
export function failed(flight: Flight, err: unknown): void {
  flight.ctx.logger.error({ reqId: flight.ex.id, err: errorSummary(err) }, 'unexpected error while proxying');
  if (flight.done) return;
  answer(flight, { status: 500, type: 'proxy_error', code: 'proxy_error', message: 'the proxy failed while handling this request' }, 'error', { retryable: true });
  cancelUpstream(flight);
}

/** The client went away before its answer was sent: the upstream request is cancelled so the model stops generating. */
export function onClientClose(flight: Flight): void {
  if (flight.done || flight.res.writableFinished) return;
  complete(flight, 'aborted');
  cancelUpstream(flight);
}

/** The one end of every exchange: counted out of flight, recorded as the client got it, then the hooks and telemetry. */
export function complete(flight: Flight, outcome: Outcome, error?: string): void {
  if (flight.done) return;
  flight.done = true;
  clearTimeout(flight.timer);
  const { ctx, ex } = flight;
  // The next pipelined request's turn comes once this exchange is recorded (remove() defers it).
  ctx.connections.remove(flight);
  ctx.metrics.inFlight.dec({ direction: ex.direction });
  const record = recordExchange(flight, outcome, error);
  for (const hook of ctx.hooks) {
    if (!hook.onComplete) continue;
    try {
      hook.onComplete(ex);
    } catch (err) {
      hookFailed(ctx, hook, 'complete', err);
    }
  }
  for (const observe of ctx.onFinish) observe(record);
}

/** Writes the exchange's end into it (outcome, error tag, what the client got) and sums it up for telemetry. */
export function recordExchange(flight: Flight, outcome: Outcome, error?: string): FlightRecord {
  const { ex } = flight;
  ex.outcome = outcome;
  if (error !== undefined) {
    flight.error = error;
    (ex.traceTags ??= {})['proxy-error'] = error;
  }
  // The trace says what the client got: nothing when no head was sent (an answer the hooks saw is not one).
  if (flight.sent) {
    const { status, headers } = flight.sent;
    const capture = flight.capture!;
    ex.response = ex.stream
      ? { status, headers, streamText: capture.bytes.toString('utf8'), truncated: capture.truncated }
      : { status, headers, body: capture.bytes, truncated: capture.truncated };
  } else ex.response = undefined;
  if (flight.requestCapture) {
    ex.requestBody = flight.requestCapture.bytes;
    flight.bytesIn = flight.requestCapture.total;
  }
  return {
    ex,
    outcome,
    status: ex.response?.status ?? (outcome === 'aborted' ? 499 : 0),
    error: flight.error,
    totalMs: Number(process.hrtime.bigint() - flight.started) / 1e6,
    bytesIn: flight.bytesIn,
    bytesOut: flight.capture?.total ?? 0,
  };
}
