/**
 * The classifier's HTTP API (one port; it is its own Deployment, never on a sidecar's proxied port):
 *
 *   POST /v1/classify   {"inputs": [{"text": "...", "untrusted": false}, ...], "categories": ["prompt_injection", ...]}
 *                    →  {"results": [{"prompt_injection": {"model": 0.1, "combined": 0.2, "threshold": 0.6}, ...}], "ms": 12.3}
 *   GET  /healthz, /readyz (ready once the model is loaded; 503 "loading" before, "draining" after SIGTERM), /metrics
 *
 * Errors: 400 for a body that is not that shape, 413 over MAX_BODY, 429 when the queue is full (the caller's
 * on_error decides; it is never worth waiting), 500 when inference fails.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { BodyTooLargeError, readBody } from '../proxy/http/body';
import { isObject } from '../common/json';
import { CATEGORIES, type Category } from './heads';
import { OverloadedError, type Classifier, type ClassifyInput } from './service';
import { listen, localUrl } from '../common/listen';

/** Largest request body: 64 inputs of a few KB each. */
const MAX_BODY = 1024 * 1024;
const MAX_INPUTS = 64;

export interface ClassifierServer {
  url: string;
  close(): Promise<void>;
}

export class BadRequest extends Error {}

/** The body of POST /v1/classify, checked. */
export function parseClassifyRequest(body: unknown): { inputs: ClassifyInput[]; categories: Category[] } {
  if (!isObject(body) || !Array.isArray(body.inputs)) throw new BadRequest('body must be {"inputs": [{"text": "..."}], "categories"?: [...]}');
  if (body.inputs.length === 0 || body.inputs.length > MAX_INPUTS) throw new BadRequest(`inputs must hold 1 to ${MAX_INPUTS} items`);
  const inputs = body.inputs.map((i, k): ClassifyInput => {
    if (typeof i === 'string') return { text: i };
    if (isObject(i) && typeof i.text === 'string') return { text: i.text, untrusted: i.untrusted === true };
    throw new BadRequest(`inputs[${k}] must be a string or {"text": string, "untrusted"?: boolean}`);
  });
  let categories: Category[] = [...CATEGORIES];
  if (body.categories !== undefined) {
    if (!Array.isArray(body.categories) || body.categories.some((c) => !(CATEGORIES as readonly unknown[]).includes(c))) {
      throw new BadRequest(`categories must be a list of ${CATEGORIES.join(', ')}`);
    }
    categories = body.categories as Category[];
  }
  return { inputs, categories };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json', ...headers });
  res.end(text);
}

export async function startClassifierServer(opts: {
  port: number;
  host: string;
  classifier: () => Classifier | undefined;
  registry: Registry;
  logger: Logger;
}): Promise<ClassifierServer & { drain(): void }> {
  const requests = new Counter({ name: 'classifier_requests_total', help: 'Classify requests by HTTP status.', labelNames: ['status'], registers: [opts.registry] });
  const seconds = new Histogram({
    name: 'classifier_request_seconds',
    help: 'Time from request to answer, queueing included.',
    buckets: [0.005, 0.01, 0.015, 0.025, 0.04, 0.06, 0.1, 0.25, 0.5, 1],
    registers: [opts.registry],
  });
  let draining = false;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && url === '/healthz') return send(res, 200, 'ok\n');
    if (req.method === 'GET' && url === '/readyz') {
      if (draining) return send(res, 503, 'draining\n');
      return opts.classifier() ? send(res, 200, 'ready\n') : send(res, 503, 'loading model\n');
    }
    if (req.method === 'GET' && url === '/metrics') {
      res.writeHead(200, { 'content-type': opts.registry.contentType });
      res.end(await opts.registry.metrics());
      return;
    }
    if (url !== '/v1/classify') return send(res, 404, { error: 'not found' });
    if (req.method !== 'POST') return send(res, 405, { error: 'use POST' }, { allow: 'POST' });
    const end = seconds.startTimer();
    const started = performance.now();
    const reply = (status: number, body: unknown, headers?: Record<string, string>): void => {
      requests.inc({ status: String(status) });
      end();
      send(res, status, body, headers);
    };
    const classifier = opts.classifier();
    if (!classifier) return reply(503, { error: 'model is loading' }, { 'retry-after': '1' });
    let parsed;
    try {
      const body = await readBody(req, MAX_BODY);
      parsed = parseClassifyRequest(JSON.parse(body.toString('utf8')) as unknown);
    } catch (err) {
      if (err instanceof BodyTooLargeError) return reply(413, { error: `body over ${MAX_BODY} bytes` });
      return reply(400, { error: err instanceof BadRequest ? err.message : 'body is not JSON' });
    }
    try {
      const results = await classifier.classify(parsed.inputs, parsed.categories);
      reply(200, { results, ms: Math.round((performance.now() - started) * 100) / 100 });
    } catch (err) {
      if (err instanceof OverloadedError) return reply(429, { error: err.message }, { 'retry-after': '1' });
      opts.logger.error({ err }, 'classification failed');
      reply(500, { error: 'classification failed' });
    }
  };
  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.logger.error({ err }, 'classifier request failed');
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;
  await listen(server, opts.port, opts.host);
  return {
    url: localUrl(server, opts.host),
    drain: () => {
      draining = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
