import type { IncomingHttpHeaders } from 'node:http';
import type { StreamInspector } from './stream-filter';
import { isEventStream, isUploadType } from '../http/headers';
import type { ApiKind, BlockVerdict, Exchange } from './exchange';
import { createJsonStreamRewriter, type JsonStreamBounds, type JsonStreamRewriter } from './json-stream';
import { attachRequestBody, isInferenceRoute } from './request';
import { parseResponse, serializeResponse } from './response';
import { routeRequest, type RoutedRequest } from './routes';
import { createStreamRewriter, type StreamBounds, type StreamRewriter } from './stream';

/**
 * What one listener speaks: how a request is routed and read, and how the answer is parsed, written back and
 * streamed. The server's flight code is the same for every listener; the egress listeners speak the inference
 * APIs (routes.ts, request.ts, response.ts, stream.ts), the inbound listener the agent's own API (inbound.ts).
 */
export interface WireProtocol {
  /** `hasBody`: the request carries a body (framing says so), whatever its method. */
  route(method: string, rawTarget: string, basePath: string, headers?: IncomingHttpHeaders, hasBody?: boolean): RoutedRequest;
  /** Read the request body and the answer (else both are forwarded as they come, and traced). */
  inspects(api: ApiKind, contentType: string | undefined): boolean;
  /** The path to forward once guardrails edited the request (the inbound listener writes redacted query parameters back). */
  editedPath?(ex: Exchange): string;
  /** Puts the (decoded) request body into the exchange; `unreadable` says why the bytes could not be decoded. */
  attachBody(ex: Exchange, body: Buffer, contentType: string | undefined, unreadable?: string): void;
  parseResponse(ex: Exchange, body: Buffer, headers: IncomingHttpHeaders): void;
  /** The bytes the client gets for a complete answer (see response.ts); undefined when a verdict leaves nothing to show. */
  serializeResponse(ex: Exchange, body: Buffer, verdict?: BlockVerdict): Buffer | undefined;
  /** An answer of this content type is a stream: relayed as it comes, through streamRewriter. */
  isStream(contentType: string | undefined): boolean;
  streamRewriter(ex: Exchange, contentType: string | undefined, inspector?: StreamInspector, bounds?: StreamBounds): StreamRewriter;
  /** Inspects a complete answer too large to buffer as it passes (over MAX_RESPONSE_SIZE, on_oversize scan). */
  largeBodyRewriter(ex: Exchange, inspector: StreamInspector, bounds?: JsonStreamBounds): JsonStreamRewriter;
}

/** The inference APIs the agent calls (the egress listeners). */
export const egressProtocol: WireProtocol = {
  route: (method, rawTarget, basePath, _headers, hasBody) => routeRequest(method, rawTarget, basePath, hasBody),
  inspects: (api, contentType) => api !== 'passthrough' && (isInferenceRoute(api) || !isUploadType(contentType)),
  attachBody: (ex, body, contentType, unreadable) => attachRequestBody(ex, body, contentType, unreadable),
  parseResponse,
  serializeResponse: (ex, body, verdict) => serializeResponse(ex, body, verdict),
  isStream: isEventStream,
  streamRewriter: (ex, _contentType, inspector, bounds) => createStreamRewriter(ex, inspector, bounds),
  largeBodyRewriter: createJsonStreamRewriter,
};
