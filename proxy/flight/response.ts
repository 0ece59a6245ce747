import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { ResponseInspection } from '../hooks';
import { decodedBody } from '../http/body';
import { headerValue, stripHopByHop } from '../http/headers';
import { VERDICT_HEADER } from '../protocols/errors';
import type { BlockVerdict } from '../protocols/exchange';
import { cancelUpstream, complete, failed, respondBlocked, sendHead, upstreamFailed, UPSTREAM_RESET } from './finish';
import { relayRaw, relayStream, scanLargeBody } from './relay';
import { armIdleTimer } from './timeout';
import { errorSummary, responseInspection, responseInspector, runVerdictHooks } from './verdicts';
import type { Flight } from './types';

/** The upstream's response head arrived: relayed raw, streamed through the filters, or read whole and judged. */
export function onUpstreamResponse(flight: Flight, proxyRes: IncomingMessage): void {
  const { ex, ctx } = flight;
  flight.proxyRes = proxyRes;
  ex.upstreamMs = Math.round((performance.now() - flight.sentAt) * 100) / 100;
  ex.upstreamAddress = proxyRes.socket?.remoteAddress;
  ctx.metrics.upstreamDuration.observe({ direction: ex.direction, api: ex.api }, ex.upstreamMs / 1000);
  if (flight.done) {
    proxyRes.destroy();
    return;
  }
  const headers = clientHeaders(flight, proxyRes);
  const status = proxyRes.statusCode ?? 502;
  proxyRes.on('error', () => undefined); // a reset shows as a close before the body completed
  // One place for a body that stops before its end, whichever relay reads it.
  proxyRes.once('close', () => {
    if (!proxyRes.complete) upstreamFailed(flight, UPSTREAM_RESET, 'upstream_error');
  });
  armIdleTimer(flight);

  if (!flight.inspect) return relayRaw(flight, proxyRes, status, headers);
  const inspection = responseInspection(ctx, ex);
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
  const contentType = headerValue(proxyRes.headers, 'content-type');
  if (flight.route.protocol.isStream(contentType)) return relayStream(flight, proxyRes, body, status, headers, contentType);
  const declared = body === proxyRes ? Number(headerValue(proxyRes.headers, 'content-length') ?? 0) : 0;
  if (declared > ctx.config.maxResponseBytes) return oversize(flight, proxyRes, body, status, headers, inspection, []);
  // The headers the body is read with: no content-encoding once it was decoded.
  const read: IncomingHttpHeaders = body === proxyRes ? proxyRes.headers : { ...proxyRes.headers, 'content-encoding': undefined };
  inspectBody(flight, proxyRes, body, status, headers, inspection, read);
}

/** The upstream's headers as the client gets them: hop-by-hop ones dropped, the hooks' own added, the request id. */
export function clientHeaders(flight: Flight, proxyRes: IncomingMessage): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = { ...proxyRes.headers };
  stripHopByHop(headers);
  Object.assign(headers, flight.ex.responseHeaders);
  headers['x-request-id'] = flight.ex.id;
  return headers;
}

/** Reads an inspected JSON body whole (up to MAX_RESPONSE_SIZE), then judges it. */
function inspectBody(
  flight: Flight,
  proxyRes: IncomingMessage,
  body: Readable,
  status: number,
  headers: OutgoingHttpHeaders,
  inspection: ResponseInspection | undefined,
  read: IncomingHttpHeaders,
): void {
  const max = flight.ctx.config.maxResponseBytes;
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer): void => {
    armIdleTimer(flight);
    size += chunk.length;
    chunks.push(chunk);
    if (size > max) {
      body.off('data', onData);
      body.off('end', onEnd);
      oversize(flight, proxyRes, body, status, headers, inspection, chunks);
    }
  };
  const onEnd = (): void => {
    clearTimeout(flight.timer);
    const whole = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
    judgeResponse(flight, whole, status, headers, read).catch((err: unknown) => failed(flight, err));
  };
  body.on('data', onData);
  body.on('end', onEnd);
}

/**
 * A response too large to buffer: per the policy's on_oversize, streamed through the channel filters in
 * bounded memory (scan), refused (block), or passed unchecked (allow, also when nothing inspects responses).
 */
function oversize(flight: Flight, proxyRes: IncomingMessage, body: Readable, status: number, headers: OutgoingHttpHeaders, inspection: ResponseInspection | undefined, read: Buffer[]): void {
  const { ex, ctx } = flight;
  const action = inspection?.onOversize ?? 'allow';
  const reason = 'response larger than MAX_RESPONSE_SIZE';
  if (action === 'block') {
    ex.notes.proxy = { responseInspected: false, reason, onOversize: action };
    const message = `upstream response exceeds MAX_RESPONSE_SIZE (${ctx.config.maxResponseBytes} bytes)`;
    return refuseResponse(flight, { status: 502, type: 'response_too_large', code: 'response_too_large', message });
  }
  const inspector = action === 'scan' ? responseInspector(ctx, ex) : undefined;
  if (!inspector) {
    ex.notes.proxy = { responseInspected: false, reason };
    return relayRaw(flight, body, status, headers, read);
  }
  ex.notes.proxy = { responseInspected: 'streamed', reason };
  scanLargeBody(flight, proxyRes, body, status, headers, inspector, read);
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

/** The response verdict on a whole JSON body: sent as it came, redacted, filtered, or replaced by an error. */
export async function judgeResponse(flight: Flight, body: Buffer, status: number, headers: OutgoingHttpHeaders, read: IncomingHttpHeaders): Promise<void> {
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
