import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadProxyConfig } from '../../proxy/config';
import { Connections, upstreamTarget, type Flight, type FlightContext, type FlightRecord, type Route } from '../../proxy/flight';
import { openFlight } from '../../proxy/flight/open';
import type { ExchangeHooks } from '../../proxy/hooks';
import { createUpstreamAgent } from '../../proxy/http/agents';
import { egressProtocol } from '../../proxy/protocols/wire';
import { createLogger } from '../../common/logger';
import { createRegistry } from '../../common/metrics';
import { createProxyMetrics } from '../../proxy/telemetry/proxy-metrics';
import { logSink } from './proxy-harness';

export interface FlightHarness {
  /** Where a client sends the request whose flight `step` runs. */
  url: string;
  ctx: FlightContext;
  /** What complete() handed to telemetry, one per finished flight. */
  records: FlightRecord[];
  /** The flights opened, in arrival order. */
  flights: Flight[];
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/**
 * A real HTTP listener whose every request is opened as a flight (openFlight) and handed to `step`, so one step of
 * the flight can be driven on its own by a real client, in front of a real upstream.
 */
export async function startFlightHarness(opts: { upstream: string; env?: Record<string, string>; hooks?: ExchangeHooks[]; step: (flight: Flight) => void | Promise<void> }): Promise<FlightHarness> {
  const env = { APP_URL: opts.upstream, LOG_LEVEL: 'info', ...opts.env };
  const config = loadProxyConfig(env);
  const sink = logSink();
  const records: FlightRecord[] = [];
  const flights: Flight[] = [];
  const ctx: FlightContext = {
    config,
    hooks: opts.hooks ?? [],
    logger: createLogger(config.logLevel, sink.stream),
    metrics: createProxyMetrics(createRegistry(false)),
    connections: new Connections<Flight>(),
    onFinish: [(record) => records.push(record)],
  };
  const listener = config.listeners[0];
  const route: Route = { listener, protocol: egressProtocol, upstream: upstreamTarget(listener.upstream), agent: createUpstreamAgent(listener.upstream, env) };
  const server = http.createServer((req, res) => {
    const flight = openFlight(ctx, route, req, res);
    flights.push(flight);
    void opts.step(flight);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    ctx,
    records,
    flights,
    logs: sink.lines,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      route.agent.destroy();
    },
  };
}
