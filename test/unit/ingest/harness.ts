import { mkdtempSync, promises as fsp, rmSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadIngestConfig } from '../../../proxy/ingest/config';
import { DeadLetterFile } from '../../../proxy/ingest/dead-letter';
import type { FileOpener } from '../../../proxy/ingest/files';
import { Delivery } from '../../../proxy/ingest/delivery';
import { IngestMetrics } from '../../../proxy/ingest/metrics';
import { createAktoSender } from '../../../proxy/ingest/sender';
import { Spool } from '../../../proxy/ingest/spool';
import { createLogger, Logger } from '../../../common/logger';
import { SecretScrubber } from '../../../common/scrub';
import { createRegistry, Registry } from '../../../common/metrics';

/** A logger whose JSON lines land in an array (and, raw, in `text`), scrubbing `secrets` as the app's logger does. */
export function captureLogger(secrets?: SecretScrubber): { logger: Logger; lines: Array<Record<string, unknown>>; text: string[] } {
  const lines: Array<Record<string, unknown>> = [];
  const text: string[] = [];
  const logger = createLogger('debug', { write: (s: string) => void (text.push(s), lines.push(JSON.parse(s))) }, secrets);
  return { logger, lines, text };
}

/**
 * Real files whose disk fills up: writes go through until `budget.bytes` are used, then one short
 * write (part of what was asked, as write(2) does on a filling disk), then ENOSPC. Raise
 * `budget.bytes` to free space; `budget.readOnly` refuses to open files for writing (EROFS).
 */
export function fillingDisk(budget: { bytes: number; readOnly?: boolean }): FileOpener {
  return {
    async open(file, flags) {
      if (budget.readOnly) throw Object.assign(new Error(`EROFS: read-only file system, open '${file}'`), { code: 'EROFS' });
      const fh = await fsp.open(file, flags);
      const write = fh.write.bind(fh) as (buf: Buffer, offset: number, length: number) => Promise<{ bytesWritten: number; buffer: Buffer }>;
      return Object.assign(Object.create(fh) as FileHandle, {
        write: async (buf: Buffer, offset = 0, length = buf.length - offset) => {
          if (budget.bytes <= 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          const n = Math.min(length, budget.bytes);
          budget.bytes -= n;
          return write(buf, offset, n);
        },
        truncate: (len: number) => fh.truncate(len),
        sync: () => fh.sync(),
        close: () => fh.close(),
        stat: () => fh.stat(),
      });
    },
  };
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
export async function startPipeline(env: Record<string, string>, opts: { files?: FileOpener } = {}): Promise<Pipeline> {
  const cfg = loadIngestConfig(env);
  const { logger, lines } = captureLogger(SecretScrubber.fromEnv(env));
  const registry = createRegistry(false);
  const metrics = new IngestMetrics(registry);
  const spool = await Spool.open(cfg.spool, logger, metrics, opts.files);
  const dead = await DeadLetterFile.open(cfg.spool.dir, cfg.spool.deadLetterMaxBytes, logger, metrics, SecretScrubber.fromEnv(env));
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
