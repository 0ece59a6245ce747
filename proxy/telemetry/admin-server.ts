import http from 'node:http';
import type { Registry } from 'prom-client';
import { listen, localUrl } from '../../common/listen';

const TEXT = 'text/plain; charset=utf-8';

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
  const routes: Record<string, () => Promise<{ status: number; type: string; body: string }>> = {
    '/healthz': async () => ({ status: 200, type: TEXT, body: 'ok\n' }),
    '/readyz': async () => {
      const detail = opts.detail?.() ?? [];
      return opts.ready() ? { status: 200, type: TEXT, body: ['ready', ...detail].join('\n') + '\n' } : { status: 503, type: TEXT, body: 'draining\n' };
    },
    '/metrics': async () => ({ status: 200, type: opts.registry.contentType, body: await opts.registry.metrics() }),
  };
  // Plain node:http, not a framework: three GET routes do not justify a web framework in the sidecar's start time and memory.
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const route = Object.hasOwn(routes, path) && (req.method === 'GET' || req.method === 'HEAD') ? routes[path] : undefined;
    const answer = route ? route() : Promise.resolve({ status: 404, type: TEXT, body: `Cannot ${req.method} ${path}\n` });
    answer.then(
      (a) => {
        res.writeHead(a.status, { 'content-type': a.type, 'content-length': Buffer.byteLength(a.body) });
        res.end(req.method === 'HEAD' ? undefined : a.body);
      },
      () => {
        res.writeHead(500, { 'content-type': TEXT });
        res.end('metrics unavailable\n');
      },
    );
  });
  await listen(server, opts.port, opts.host);
  return {
    url: localUrl(server, opts.host),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
