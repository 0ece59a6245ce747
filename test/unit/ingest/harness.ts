import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadIngestConfig } from '../../../proxy/ingest/config';
import { DeadLetterFile } from '../../../proxy/ingest/dead-letter';
import { Delivery } from '../../../proxy/ingest/delivery';
import { IngestMetrics } from '../../../proxy/ingest/metrics';
import { createAktoSender } from '../../../proxy/ingest/sender';
import { Spool } from '../../../proxy/ingest/spool';
import { createLogger, Logger } from '../../../proxy/telemetry/logger';
import { createRegistry, Registry } from '../../../proxy/telemetry/metrics';

/** A logger whose JSON lines land in an array. */
export function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger('debug', { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { logger, lines };
}

export function tempDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'akto-ingest-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Pipeline {
  delivery: Delivery;
  spool: Spool;
  metrics: IngestMetrics;
  registry: Registry;
  lines: Array<Record<string, unknown>>;
}

/** A real Delivery (real sender, real spool on disk) configured from env like createIngest does. */
export async function startPipeline(env: Record<string, string>): Promise<Pipeline> {
  const cfg = loadIngestConfig(env);
  const { logger, lines } = captureLogger();
  const registry = createRegistry(false);
  const metrics = new IngestMetrics(registry);
  const spool = await Spool.open(cfg.spool, logger, metrics);
  const dead = await DeadLetterFile.open(cfg.spool.dir, cfg.spool.deadLetterMaxBytes, logger, metrics);
  const sender = createAktoSender(cfg.baseUrl as URL, cfg.token, cfg.delivery.maxInFlight, cfg.delivery.requestTimeoutMs);
  const delivery = new Delivery(sender, spool, dead, cfg.delivery, logger, metrics);
  return { delivery, spool, metrics, registry, lines };
}

export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A minimal valid record line with a unique marker in requestPayload. */
export function recordLine(n: number, payloadBytes = 0): string {
  return JSON.stringify({
    path: '/generate',
    requestHeaders: JSON.stringify({ host: 'tgi.local', 'content-type': 'application/json' }),
    responseHeaders: '{}',
    method: 'POST',
    requestPayload: JSON.stringify({ inputs: `r${n}`, pad: 'x'.repeat(payloadBytes) }),
    responsePayload: '',
    ip: '10.0.0.1',
    time: String(Math.floor(Date.now() / 1000)),
    statusCode: '200',
    type: 'HTTP/1.1',
    status: 'OK',
    akto_account_id: '1000000',
    akto_vxlan_id: '0',
    is_pending: 'false',
    source: 'MIRRORING',
    tag: JSON.stringify({ 'gen-ai': 'Gen AI' }),
  });
}

/** The marker numbers the receiver got, for exactly-once checks. */
export function markers(records: Array<Record<string, string>>): number[] {
  return records.map((r) => Number((JSON.parse(r.requestPayload) as { inputs: string }).inputs.slice(1)));
}

/** Polls until cond() holds; throws after timeoutMs. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}
