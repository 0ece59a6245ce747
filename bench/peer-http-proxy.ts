/**
 * The benchmark's floor: http-proxy forwarding with a keep-alive agent and nothing else (no body
 * reading, parsing, hooks, logs or metrics). Speaks the same env and /readyz as the real proxy so
 * the harness starts both alike. Not part of the product.
 */
import http from 'node:http';
import httpProxy from 'http-proxy';

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const proxy = httpProxy.createProxyServer({ target: process.env.APP_URL, agent });
proxy.on('error', (_err, _req, res) => {
  if (res instanceof http.ServerResponse && !res.headersSent) res.writeHead(502).end();
});
const host = process.env.LISTEN_HOST ?? '127.0.0.1';
http.createServer((req, res) => proxy.web(req, res)).listen(Number(process.env.AKTO_PROXY_PORT), host);
http.createServer((_req, res) => res.end('ready\n')).listen(Number(process.env.ADMIN_PORT), process.env.ADMIN_HOST ?? host);
process.on('SIGTERM', () => process.exit(0));
