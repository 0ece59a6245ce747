import type http from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Listener, ProxyConfig } from '../config';
import type { ExchangeHooks } from '../hooks';
import type { Capture } from '../http/body';
import type { Framing } from '../http/framing';
import type { BlockVerdict, Exchange } from '../protocols/exchange';
import type { StreamRewriter } from '../protocols/stream';
import type { WireProtocol } from '../protocols/wire';
import type { Logger } from '../../common/logger';
import type { createProxyMetrics } from '../telemetry/proxy-metrics';
import type { Connections } from './connections';
import type { UpstreamTarget } from './forward';
import type { FinishObserver } from '../telemetry/request-log';

export type ProxyMetrics = ReturnType<typeof createProxyMetrics>;

/** One listener and where its requests go. */
export interface Route {
  listener: Listener;
  /** The inference APIs (egress listeners) or the agent's own API (the inbound listener). */
  protocol: WireProtocol;
  upstream: UpstreamTarget;
  agent: http.Agent;
}

/** What every flight shares: settings, the hooks in order, telemetry, connection state. */
export interface FlightContext {
  config: ProxyConfig;
  hooks: readonly ExchangeHooks[];
  logger: Logger;
  metrics: ProxyMetrics;
  connections: Connections<Flight>;
  onFinish: readonly FinishObserver[];
}

/** Turns upstream body bytes into the bytes the client gets (an event-stream or large-JSON rewriter). */
export interface BodyRewriter {
  push(chunk: Buffer): Buffer | string;
  end(): Buffer | string;
  readonly blocked?: BlockVerdict;
  /** Set when the upstream's body broke the proxy's bounds (an event over the size cap): the relay ends with it. */
  readonly failed?: BlockVerdict;
  /** Ends the body now with an error the client reads in it (an in-stream error event); absent when the format has none. */
  abort?(verdict: BlockVerdict): Buffer | string;
}

/** An inspector's check of a stream's whole answer, and the rewriter holding the stream's terminal events for it. */
export interface FinalCheck {
  check(): Promise<BlockVerdict | undefined>;
  rewriter: StreamRewriter;
}

/** Everything one request needs between the client side and the upstream side. */
export interface Flight {
  ctx: FlightContext;
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
  /** Why the request target is refused (routes.ts), when it is. */
  pathRefused?: string;
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
