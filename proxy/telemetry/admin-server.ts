import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Registry } from 'prom-client';

export interface AdminServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Health and metrics on their own port, never on the proxied one: the agent's traffic cannot
 * reach them and probes do not show up as inference traffic.
 */
/**
 * `detail` adds lines to the /readyz body (e.g. "model tier (remote): unreachable …"): facts an operator
 * wants to see, none of which makes the sidecar unready — it still proxies and guards with the heuristic tier.
 */
export async function createAdminServer(opts: { port: number; host: string; registry: Registry; ready: () => boolean; detail?: () => string[] }): Promise<AdminServer> {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/readyz', (_req, res) => {
    const detail = opts.detail?.() ?? [];
    if (opts.ready()) res.type('text/plain').send(['ready', ...detail].join('\n') + '\n');
    else res.status(503).type('text/plain').send('draining\n');
  });
  app.get('/metrics', async (_req, res) => {
    res.type(opts.registry.contentType).send(await opts.registry.metrics());
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
