import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { StreamInspector } from '../protocols/stream-filter';
import { cancelUpstream, complete, failed, sendHead, upstreamFailed } from './finish';
import { armIdleTimer } from './timeout';
import { finalVerdict, responseInspector } from './verdicts';
import type { BodyRewriter, FinalCheck, Flight } from './types';

/** Uninspected (or unreadable) body: bytes flow through as they come (at the client's pace); a bounded copy goes to the trace. */
export function relayRaw(flight: Flight, source: Readable, status: number, headers: OutgoingHttpHeaders, prefix: Buffer[] = []): void {
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

/** An event stream: sent as it comes through the hooks' stream filters, its terminal events held for a final check. */
export function relayStream(flight: Flight, proxyRes: IncomingMessage, body: Readable, status: number, headers: OutgoingHttpHeaders, contentType: string | undefined): void {
  const { ex, res, ctx } = flight;
  ex.stream = true;
  delete headers['content-length'];
  const inspector = responseInspector(ctx, ex);
  sendHead(flight, status, headers);
  res.flushHeaders();
  const max = ctx.config.maxResponseBytes;
  const rewriter = flight.route.protocol.streamRewriter(ex, contentType, inspector, { maxEventBytes: max, maxKeptChars: max });
  const check = inspector?.finalCheck;
  // Without an inspector nothing can change the bytes: they are sent first and parsed for usage and the trace after.
  relayThrough(flight, proxyRes, body, rewriter, {
    passThrough: !inspector,
    stopOnBlock: true,
    ...(check ? { final: { check: () => check.call(inspector), rewriter } } : {}),
  });
}

/** A JSON body over MAX_RESPONSE_SIZE, scanned through the channel filters in bounded memory as it is relayed. */
export function scanLargeBody(flight: Flight, proxyRes: IncomingMessage, body: Readable, status: number, headers: OutgoingHttpHeaders, inspector: StreamInspector, read: Buffer[]): void {
  delete headers['content-length'];
  sendHead(flight, status, headers);
  const rewriter = flight.route.protocol.largeBodyRewriter(flight.ex, inspector, { maxKeptChars: flight.ctx.config.maxResponseBytes });
  relayThrough(flight, proxyRes, body, rewriter, { stopOnBlock: false, read });
}

interface RelayOptions {
  /** Send the upstream's bytes as they are; the rewriter only reads them (nothing inspects the body). */
  passThrough?: boolean;
  /** Stop reading the upstream at a block (a stream); else read to the end so the client's JSON stays whole. */
  stopOnBlock: boolean;
  /** Body bytes already read before the relay started. */
  read?: Buffer[];
  final?: FinalCheck;
}

/**
 * Sends `body` to the client through `rewriter` as it arrives, at the pace the client reads, ending with what
 * the filters still hold. An event stream that breaks (the upstream resets or stalls, an event over the bound)
 * ends with an in-stream error; the rewriter's own failure ends the exchange as the proxy's error.
 */
export function relayThrough(flight: Flight, proxyRes: IncomingMessage, body: Readable, rewriter: BodyRewriter, opts: RelayOptions): void {
  const send = paced(flight, body);
  const abort = rewriter.abort?.bind(rewriter);
  if (abort) flight.endWith = (verdict) => send(abort(verdict));
  const step = guarded(flight);
  step(() => {
    for (const chunk of opts.read ?? []) send(rewriter.push(chunk));
  });
  body.on('data', (chunk: Buffer) => step(() => relayChunk(flight, rewriter, chunk, send, opts)));
  body.on('end', () => step(() => endRelay(flight, rewriter, send, opts.final)));
}

function relayChunk(flight: Flight, rewriter: BodyRewriter, chunk: Buffer, send: (bytes: Buffer | string) => void, opts: RelayOptions): void {
  if (flight.done) return;
  armIdleTimer(flight);
  if (opts.passThrough) send(chunk);
  const out = rewriter.push(chunk);
  if (!opts.passThrough) send(out);
  if (rewriter.failed) return upstreamFailed(flight, rewriter.failed, 'upstream_error');
  if (opts.stopOnBlock && rewriter.blocked) {
    flight.res.end();
    // Complete before cancelling the upstream: destroying it emits its close at once, read as a failure.
    complete(flight, 'blocked');
    cancelUpstream(flight);
  }
}

/** The upstream's body ended: what the filters hold goes out, after the final check when there is one. */
function endRelay(flight: Flight, rewriter: BodyRewriter, send: (bytes: Buffer | string) => void, final: FinalCheck | undefined): void {
  if (flight.done) return;
  clearTimeout(flight.timer);
  send(rewriter.end());
  const close = (): void => {
    flight.res.end();
    complete(flight, rewriter.blocked ? 'blocked' : 'ok');
  };
  if (!final || rewriter.blocked) return close();
  // A check of the whole answer (Akto): the terminal events wait for it; tokens already sent stay sent.
  const step = guarded(flight);
  void finalVerdict(flight.ctx, final.check).then((verdict) =>
    step(() => {
      if (flight.done) return; // the client left meanwhile
      send(verdict ? final.rewriter.cut(verdict) : final.rewriter.release());
      close();
    }),
  );
}

/** Writes to the client and captures for the trace; when the client reads slower than the upstream writes, the upstream waits. */
function paced(flight: Flight, body: Readable): (bytes: Buffer | string) => void {
  const { res } = flight;
  let waiting = false;
  return (bytes) => {
    if (bytes.length === 0 || res.destroyed) return;
    flight.capture!.add(bytes);
    if (res.write(bytes) || waiting) return;
    waiting = true;
    body.pause();
    res.once('drain', () => {
      waiting = false;
      if (!flight.done) body.resume();
    });
  };
}

/** Runs a relay step; an exception in it ends the exchange as the proxy's own error. */
function guarded(flight: Flight): (fn: () => void) => void {
  return (fn) => {
    try {
      fn();
    } catch (err) {
      failed(flight, err);
    }
  };
}
