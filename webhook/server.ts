/**
 * The HTTPS server: POST /mutate and /mutate/enforced (AdmissionReview v1 or v1beta1; the second is the
 * webhook entry for namespaces labelled injection=enforced), /healthz, /readyz, /metrics. Bounded body,
 * certificate swap without restart (setSecureContext), and a drain window after SIGTERM during
 * which it keeps answering while /readyz says 503.
 */
import { createServer, Server } from 'node:https';
import { createSecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import express, { NextFunction, Request, Response } from 'express';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../common/logger';
import { ADMISSION_API_VERSION, BadReviewError, InjectFn, answerVersion, review } from './admission';
import type { AdmissionEvent } from './events';
import { ClusterInfo, inject } from './inject';
import type { Settings } from './settings';

import type { TlsMaterial } from '../common/tls-files';
export type { TlsMaterial };

export interface WebhookServerOptions {
  settings: Settings;
  logger: Logger;
  registry: Registry;
  tls: TlsMaterial;
  /** Current cluster facts (native sidecar support), refreshed by main. */
  cluster: () => ClusterInfo;
  /** Extra readiness condition (self-managed: caBundle matches the served cert): true, or why not. */
  ready?: () => boolean | string;
  /** Why admissions cannot be answered yet (start-up, e.g. waiting for the API server); undefined once serving. */
  starting?: () => string | undefined;
  /** Replaceable for the benchmark's baseline; the product always uses inject. */
  injectFn?: InjectFn;
  /** Where admission Events go (an EventRecorder); never awaited. */
  events?: { record(event: AdmissionEvent): void };
}

export const MUTATE_PATH = '/mutate';
/** The MutatingWebhookConfiguration entry for enforced namespaces calls this path. */
export const MUTATE_ENFORCED_PATH = '/mutate/enforced';

export interface WebhookServer {
  server: Server;
  listen(port: number, host?: string): Promise<number>;
  /** Validates and installs a new certificate; existing connections keep their session. */
  setTls(material: TlsMaterial): void;
  /** Not ready from now on; keep serving `seconds`, then close. Resolves when closed. */
  drain(seconds: number): Promise<void>;
  close(): Promise<void>;
}

export function createWebhookServer(opts: WebhookServerOptions): WebhookServer {
  const { settings, logger, registry } = opts;
  let draining = false;
  const admissions = new Counter({
    name: 'akto_webhook_admissions_total',
    help: 'AdmissionReviews answered, by result (injected, unchanged, skipped, denied, allowed, error) and reason',
    labelNames: ['result', 'reason'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'akto_webhook_admission_duration_seconds',
    help: 'Time to answer an AdmissionReview (body read to response written)',
    labelNames: ['result'],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [registry],
  });
  const reloads = new Counter({
    name: 'akto_webhook_tls_reloads_total',
    help: 'Serving certificate swaps, by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  });

  const expiry = new Gauge({
    name: 'akto_webhook_certificate_expiry_timestamp_seconds',
    help: 'notAfter of the serving certificate being served (alert well before it)',
    registers: [registry],
  });
  const recordExpiry = (pem: string) => {
    try {
      expiry.set(Date.parse(new X509Certificate(pem).validTo) / 1000);
    } catch {
      expiry.set(0);
    }
  };
  recordExpiry(opts.tls.cert);

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((_req, res, next) => {
    if (draining) res.setHeader('Connection', 'close'); // move the API server's pooled connections to other replicas
    next();
  });
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok');
  });
  app.get('/readyz', (_req, res) => {
    const extra = draining ? 'draining' : (opts.starting?.() ?? (opts.ready ? opts.ready() : true));
    if (extra === true) return void res.type('text/plain').send('ready');
    res.status(503).type('text/plain').send(typeof extra === 'string' ? `not ready: ${extra}` : 'not ready');
  });
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  app.post([MUTATE_PATH, MUTATE_ENFORCED_PATH], express.raw({ type: () => true, limit: settings.server.maxBodyBytes }), (req: Request, res: Response) => {
    const enforced = req.path === MUTATE_ENFORCED_PATH;
    const started = process.hrtime.bigint();
    const done = (result: string, reason: string) => {
      admissions.inc({ result, reason });
      latency.observe({ result }, Number(process.hrtime.bigint() - started) / 1e9);
    };
    const starting = opts.starting?.();
    if (starting !== undefined) {
      done('error', 'starting');
      res.status(503).json({ error: `webhook starting: ${starting}` });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse((req.body as Buffer).toString('utf8'));
    } catch {
      done('error', 'unreadable-body');
      res.status(400).json({ error: 'body is not JSON' });
      return;
    }
    try {
      const out = review(body, settings, opts.cluster(), opts.injectFn ?? inject, { enforced });
      done(out.result, out.reason);
      if (out.result !== 'allowed') {
        logger.info({ result: out.result, reason: out.reason, pod: out.pod, namespace: out.namespace, uid: out.uid, enforced }, 'admission');
      }
      if (out.event) opts.events?.record(out.event);
      res.json(out.review);
    } catch (err) {
      if (err instanceof BadReviewError) {
        done('error', 'bad-review');
        res.status(400).json({ error: err.message });
        return;
      }
      // A bug must not block pod creation: answer allowed-unchanged when the uid is known.
      logger.error({ err: (err as Error).message }, 'admission failed; allowing the pod unchanged');
      done('error', 'internal');
      const uid = (body as { request?: { uid?: unknown } })?.request?.uid;
      if (typeof uid !== 'string') {
        res.status(500).json({ error: 'internal error' });
        return;
      }
      const apiVersion = answerVersion(body) ?? ADMISSION_API_VERSION;
      res.json({ apiVersion, kind: 'AdmissionReview', response: { uid, allowed: true, warnings: ['agent-proxy.akto.io: injection failed; pod admitted without the proxy'] } });
    }
  });
  app.use((err: Error & { status?: number; type?: string }, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const status = err.type === 'entity.too.large' ? 413 : err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
    admissions.inc({ result: 'error', reason: status === 413 ? 'body-too-large' : 'request-error' });
    res.status(status).json({ error: status === 413 ? `body larger than ${settings.server.maxBodyBytes} bytes` : 'bad request' });
  });

  const server = createServer({ cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }, app);
  // Above the API server's 90 s idle timeout, so it closes idle connections first.
  server.keepAliveTimeout = 95_000;
  server.headersTimeout = 100_000;
  server.requestTimeout = 30_000;

  return {
    server,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    setTls(material) {
      try {
        createSecureContext({ cert: material.cert, key: material.key }); // throws on a mismatched or broken pair
        server.setSecureContext({ cert: material.cert, key: material.key, minVersion: 'TLSv1.2' });
        reloads.inc({ outcome: 'ok' });
        recordExpiry(material.cert);
        logger.info('serving certificate reloaded');
      } catch (err) {
        reloads.inc({ outcome: 'rejected' });
        logger.error({ err: (err as Error).message }, 'new certificate rejected; still serving the previous one');
      }
    },
    async drain(seconds) {
      draining = true;
      logger.info({ seconds }, 'draining: not ready, still serving');
      await new Promise((r) => setTimeout(r, seconds * 1000));
      await this.close();
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    },
  };
}
