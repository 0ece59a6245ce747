/**
 * Ingest micro-benchmarks: the per-record cost on the proxy (buildAktoRecord + JSON.stringify +
 * enqueue into the real Delivery) and the disk spool's write throughput.
 *   node dist/bench/ingest.js [--records N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadIngestConfig } from '../proxy/ingest/config';
import { DeadLetterFile } from '../proxy/ingest/dead-letter';
import { Delivery } from '../proxy/ingest/delivery';
import { IngestMetrics } from '../proxy/ingest/metrics';
import { buildAktoRecord, RecordOptions } from '../proxy/ingest/record';
import { createAktoSender } from '../proxy/ingest/sender';
import { Spool } from '../proxy/ingest/spool';
import type { Exchange } from '../proxy/protocols/exchange';
import { chatExchange } from '../test/support/exchange';
import { startAktoSink } from './akto-sink';
import { createLogger } from '../common/logger';
import { createRegistry } from '../common/metrics';
import { SecretScrubber } from '../common/scrub';

export interface DeliveryCost {
  /** Microseconds spent in build + stringify + enqueue (what onComplete costs). */
  hookUs: number;
  /** Process CPU microseconds (user + system) per record from the first enqueue until all are delivered. */
  cpuUs: number;
}

export interface IngestBenchResult {
  /** Microseconds per record for buildAktoRecord + JSON.stringify. */
  buildUs: number;
  /** The same with four configured secrets to scrub (Akto token, two upstream credentials, hash key). */
  buildScrubbedUs: number;
  /** Per record, memory delivery to a local receiver: time inside the hook, and all CPU until delivered. */
  memory: DeliveryCost;
  /** The same with SPOOL_WRITE_AHEAD=true (every record through the disk spool). */
  writeAhead: DeliveryCost;
  recordBytes: number;
  spool: Array<{ fsyncMs: number; records: number; mbPerSec: number; recordsPerSec: number }>;
}

function sampleExchange(i: number): Exchange {
  const prompt = `Summarise the attached ticket #${i}. `.repeat(20);
  const body = Buffer.from(JSON.stringify({ model: 'tgi', max_tokens: 256, messages: [{ role: 'user', content: prompt }] }));
  const answer = Buffer.from(
    JSON.stringify({ id: '', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'The ticket asks for a refund. '.repeat(20) } }] }),
  );
  return chatExchange({
    id: `bench-${i}`,
    requestHeaders: { host: '127.0.0.1:8080', 'content-type': 'application/json', authorization: 'Bearer hf_x', 'user-agent': 'OpenAI/JS 6' },
    upstream: new URL('https://endpoint.example.cloud/'),
    requestBody: body,
    model: 'tgi',
    response: { status: 200, headers: { 'content-type': 'application/json' }, body: answer },
    outcome: 'ok',
  });
}

export async function runIngestBench(records = 20_000): Promise<IngestBenchResult> {
  const logger = createLogger('silent');
  const cfg = loadIngestConfig({});
  const opts: RecordOptions = { ...cfg.record, version: 'bench' };
  const exchanges = Array.from({ length: 200 }, (_, i) => sampleExchange(i));

  for (let i = 0; i < 2000; i++) JSON.stringify(buildAktoRecord(exchanges[i % 200], opts).record);
  let t0 = process.hrtime.bigint();
  let recordBytes = 0;
  for (let i = 0; i < records; i++) recordBytes = JSON.stringify(buildAktoRecord(exchanges[i % 200], opts).record).length;
  const buildUs = Number(process.hrtime.bigint() - t0) / 1e3 / records;
  const secrets = SecretScrubber.fromEnv({
    AKTO_API_TOKEN: 'eyJhbGciOiJSUzI1NiJ9.bench-token.sig',
    UPSTREAM_AUTHORIZATION: 'Bearer hf_benchUpstreamCredential',
    UPSTREAM_AUTHORIZATION_1: 'Bearer sk-bench-0123456789',
    GUARDRAILS_HASH_KEY: 'bench-hash-key-material',
  });
  const scrubbed: RecordOptions = { ...opts, secrets };
  for (let i = 0; i < 2000; i++) JSON.stringify(buildAktoRecord(exchanges[i % 200], scrubbed).record);
  t0 = process.hrtime.bigint();
  for (let i = 0; i < records; i++) JSON.stringify(buildAktoRecord(exchanges[i % 200], scrubbed).record);
  const buildScrubbedUs = Number(process.hrtime.bigint() - t0) / 1e3 / records;

  const tmp = mkdtempSync(path.join(tmpdir(), 'ingest-bench-'));
  const sink = await startAktoSink();
  try {
    const enqueueCost = async (extra: Record<string, string>, dir: string): Promise<DeliveryCost> => {
      const c = loadIngestConfig({ AKTO_API_BASE_URL: sink.url, SPOOL_DIR: path.join(tmp, dir), ...extra });
      const metrics = new IngestMetrics(createRegistry(false));
      const spool = await Spool.open(c.spool, logger, metrics);
      const dead = await DeadLetterFile.open(c.spool.dir, c.spool.deadLetterMaxBytes, logger, metrics);
      const delivery = new Delivery(createAktoSender(c.baseUrl as URL, undefined, 4, 10_000), spool, dead, c.delivery, logger, metrics);
      // In slices, so the event loop can send batches as the proxy would between requests.
      let busy = 0n;
      const cpu0 = process.cpuUsage();
      for (let done = 0; done < records; ) {
        const s = process.hrtime.bigint();
        for (let k = 0; k < 100 && done < records; k++, done++) delivery.enqueue(JSON.stringify(buildAktoRecord(exchanges[done % 200], opts).record));
        busy += process.hrtime.bigint() - s;
        await new Promise((r) => setImmediate(r));
      }
      await delivery.close(30_000);
      const cpu = process.cpuUsage(cpu0);
      if (!spool.isEmpty) throw new Error('bench: records left undelivered');
      return { hookUs: round(Number(busy) / 1e3 / records), cpuUs: round((cpu.user + cpu.system) / records) };
    };
    const memory = await enqueueCost({}, 'memory');
    const writeAhead = await enqueueCost({ SPOOL_WRITE_AHEAD: 'true', AKTO_BATCH_INTERVAL_MS: '50' }, 'write-ahead');
    const c = loadIngestConfig({ SPOOL_DIR: tmp });
    const metrics = new IngestMetrics(createRegistry(false));

    const spoolResults: IngestBenchResult['spool'] = [];
    const line = JSON.stringify(buildAktoRecord(exchanges[0], opts).record);
    for (const fsyncMs of [1000, 0]) {
      const settings = { ...c.spool, dir: path.join(tmp, `spool-${fsyncMs}`), fsyncIntervalMs: fsyncMs, maxBytes: 1024 * 1024 * 1024 };
      const s = await Spool.open(settings, logger, metrics);
      t0 = process.hrtime.bigint();
      for (let i = 0; i < records; i++) {
        s.append(line);
        if (i % 500 === 499) await new Promise((r) => setImmediate(r));
      }
      await s.close();
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      spoolResults.push({
        fsyncMs,
        records,
        mbPerSec: Math.round(((records * (line.length + 1)) / 1048576 / secs) * 10) / 10,
        recordsPerSec: Math.round(records / secs),
      });
    }
    return {
      buildUs: round(buildUs),
      buildScrubbedUs: round(buildScrubbedUs),
      memory,
      writeAhead,
      recordBytes,
      spool: spoolResults,
    };
  } finally {
    await sink.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

const round = (x: number): number => Math.round(x * 100) / 100;

if (require.main === module) {
  const i = process.argv.indexOf('--records');
  const n = i > 0 ? Number(process.argv[i + 1]) : 20_000;
  runIngestBench(n).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
