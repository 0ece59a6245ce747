import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { AktoReceiver, startAktoReceiver } from '../../fixtures/akto-receiver';
import { fillingDisk, markers, metricValue, recordLine, sleep, startPipeline, tempDir, waitUntil } from './harness';

const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.test-token.sig';

describe('Delivery to a strict Akto receiver', () => {
  let akto: AktoReceiver;
  let tmp: ReturnType<typeof tempDir>;
  const env = (over: Record<string, string> = {}): Record<string, string> => ({
    AKTO_API_BASE_URL: akto.url,
    AKTO_API_TOKEN: TOKEN,
    SPOOL_DIR: tmp.dir,
    AKTO_BATCH_INTERVAL_MS: '30',
    AKTO_RETRY_BASE_MS: '20',
    AKTO_RETRY_MAX_MS: '200',
    SPOOL_FSYNC_MS: '0',
    ...over,
  });

  beforeEach(async () => {
    akto = await startAktoReceiver({ token: TOKEN });
    tmp = tempDir();
  });
  afterEach(async () => {
    await akto.close();
    tmp.cleanup();
  });

  it('batches by count and by time, with the raw token and exactly once', async () => {
    const p = await startPipeline(env({ AKTO_BATCH_SIZE: '10' }));
    for (let i = 0; i < 35; i++) p.delivery.enqueue(recordLine(i));
    await akto.waitForRecords(35);
    expect(akto.errors).toEqual([]);
    expect(akto.stats.maxBatch).toBe(10);
    expect(akto.stats.posts).toBe(4);
    expect(markers(akto.records).sort((a, b) => a - b)).toEqual(Array.from({ length: 35 }, (_, i) => i));
    await waitUntil(async () => (await metricValue(p.registry, 'akto_ingest_records_sent_total')) === 35);
    expect(await metricValue(p.registry, 'akto_ingest_last_success_timestamp_seconds')).toBeGreaterThan(0);
    await p.delivery.close(1000);
  });

  it('keeps every POST under AKTO_MAX_BATCH_BYTES', async () => {
    const p = await startPipeline(env({ AKTO_MAX_BATCH_BYTES: String(64 * 1024), AKTO_BATCH_SIZE: '1000' }));
    for (let i = 0; i < 20; i++) p.delivery.enqueue(recordLine(i, 20_000));
    await akto.waitForRecords(20);
    expect(akto.stats.maxBodyBytes).toBeLessThanOrEqual(64 * 1024);
    expect(akto.stats.maxBatch).toBe(3);
    await p.delivery.close(1000);
  });

  it('bounds the POSTs in flight', async () => {
    akto.behave({ delayMs: 100 });
    const p = await startPipeline(env({ AKTO_BATCH_SIZE: '2', AKTO_MAX_IN_FLIGHT: '2' }));
    for (let i = 0; i < 20; i++) p.delivery.enqueue(recordLine(i));
    await akto.waitForRecords(20);
    expect(akto.stats.maxOpen).toBe(2);
    await p.delivery.close(1000);
  });

  it('retries 5xx and 429 (honouring Retry-After) and delivers each record once', async () => {
    const times: number[] = [];
    akto.behave((n) => {
      times.push(Date.now());
      if (n <= 2) return { status: 503 };
      if (n === 3) return { status: 429, retryAfter: '1' };
      return {};
    });
    const p = await startPipeline(env({ AKTO_BATCH_SIZE: '20', AKTO_MAX_IN_FLIGHT: '1' }));
    for (let i = 0; i < 20; i++) p.delivery.enqueue(recordLine(i));
    await akto.waitForRecords(20, 15_000);
    const got = markers(akto.records);
    expect(new Set(got).size).toBe(20);
    expect(got.length).toBe(20);
    expect(times).toHaveLength(4);
    expect(times[3] - times[2]).toBeGreaterThanOrEqual(950);
    expect(await metricValue(p.registry, 'akto_ingest_records_retried_total')).toBeGreaterThan(0);
    expect(await metricValue(p.registry, 'akto_ingest_batch_failures_total', { reason: 'http_5xx' })).toBe(2);
    expect(await metricValue(p.registry, 'akto_ingest_batch_failures_total', { reason: 'http_429' })).toBe(1);
    // Retried from memory: the disk was never needed.
    expect(await metricValue(p.registry, 'akto_ingest_records_spooled_total')).toBe(0);
    await p.delivery.close(1000);
  });

  it('counts delivered and acknowledged records apart: a 200 {"success":false} is delivery, not proof of storage', async () => {
    const p = await startPipeline(env({ AKTO_BATCH_SIZE: '5' }));
    for (let i = 0; i < 10; i++) p.delivery.enqueue(recordLine(i));
    await akto.waitForRecords(10);
    await waitUntil(async () => (await metricValue(p.registry, 'akto_ingest_records_sent_total')) === 10);
    expect(await metricValue(p.registry, 'akto_ingest_records_acknowledged_total')).toBe(0);
    akto.behave({ body: '{"success":true}' });
    for (let i = 10; i < 15; i++) p.delivery.enqueue(recordLine(i));
    await waitUntil(async () => (await metricValue(p.registry, 'akto_ingest_records_acknowledged_total')) === 5);
    expect(await metricValue(p.registry, 'akto_ingest_records_sent_total')).toBe(15);
    await p.delivery.close(1000);
  });

  it('an Akto that answers 200 and never ends the body cannot hold the delivery slots: the exchange times out and the slot is reused', async () => {
    akto.behave((n) => (n <= 3 ? { hang: true } : {}));
    const p = await startPipeline(env({ AKTO_BATCH_SIZE: '5', AKTO_MAX_IN_FLIGHT: '1', AKTO_TIMEOUT_MS: '300' }));
    const t0 = Date.now();
    for (let i = 0; i < 10; i++) p.delivery.enqueue(recordLine(i));
    await akto.waitForRecords(10, 10_000);
    expect(Date.now() - t0).toBeLessThan(6000);
    expect(new Set(markers(akto.records)).size).toBe(10);
    expect(await metricValue(p.registry, 'akto_ingest_batch_failures_total', { reason: 'timeout' })).toBe(3);
    await waitUntil(() => akto.stats.open === 0);
    await p.delivery.close(1000);
  });

  it('on 401 logs one line naming AKTO_API_TOKEN, keeps the records, and delivers them after a restart with the right token', async () => {
    const bad = await startPipeline(env({ AKTO_API_TOKEN: 'wrong-token', AKTO_BATCH_SIZE: '5', AKTO_AUTH_RETRY_MS: '50' }));
    for (let i = 0; i < 30; i++) {
      bad.delivery.enqueue(recordLine(i));
      await sleep(5);
    }
    await sleep(400);
    expect(akto.records).toHaveLength(0);
    expect(akto.stats.unauthorized).toBeGreaterThan(3);
    const authLines = bad.lines.filter((l) => String(l.msg).includes('AKTO_API_TOKEN'));
    expect(authLines).toHaveLength(1);
    expect(authLines[0].level).toBe('error');
    expect(JSON.stringify(bad.lines)).not.toContain('wrong-token');
    await bad.delivery.close(200);
    expect(bad.spool.bytes).toBeGreaterThan(0);

    const good = await startPipeline(env());
    await akto.waitForRecords(30);
    expect(markers(akto.records).sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    await good.delivery.close(1000);
  });

  it('moves a batch refused with another 4xx to the dead-letter file and logs the answer', async () => {
    akto.behave((n) => (n === 1 ? { status: 400, body: '{"actionErrors":["bad record"]}' } : {}));
    const p = await startPipeline(env({ AKTO_BATCH_SIZE: '3' }));
    for (let i = 0; i < 6; i++) p.delivery.enqueue(recordLine(i));
    await akto.waitForRecords(3);
    await p.delivery.close(1000);
    const dead = (await fsp.readFile(path.join(tmp.dir, 'dead-letter.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(dead).toHaveLength(3);
    expect(dead[0]).toMatchObject({ status: 400, error: '{"actionErrors":["bad record"]}' });
    expect(dead.map((d) => JSON.parse(d.record.requestPayload).inputs)).toEqual(['r0', 'r1', 'r2']);
    expect(await metricValue(p.registry, 'akto_ingest_records_dead_lettered_total')).toBe(3);
    const line = p.lines.find((l) => String(l.msg).includes('HTTP 400'));
    expect(line?.body).toContain('bad record');
  });

  it.each([500, 422])('a batch Akto keeps answering %i is split: only the record it cannot take is dead-lettered', async (status) => {
    // The real service answers 500 to a body it cannot parse and 422 to one without batchData.
    akto.behave((_n, body) => (body.includes('\\"r3\\"') ? { status, body: '{"actionErrors":["cannot read record"]}' } : {}));
    const p = await startPipeline(env({ AKTO_BATCH_SIZE: '8', AKTO_ERROR_ATTEMPTS: '2' }));
    for (let i = 0; i < 8; i++) p.delivery.enqueue(recordLine(i));
    await akto.waitForRecords(7);
    await waitUntil(async () => (await metricValue(p.registry, 'akto_ingest_records_dead_lettered_total')) === 1);
    await p.delivery.close(1000);
    expect(markers(akto.records).sort((a, b) => a - b)).toEqual([0, 1, 2, 4, 5, 6, 7]);
    const dead = (await fsp.readFile(path.join(tmp.dir, 'dead-letter.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(dead.map((d) => [d.status, JSON.parse(d.record.requestPayload).inputs])).toEqual([[status, 'r3']]);
    expect(await metricValue(p.registry, 'akto_ingest_batch_failures_total', { reason: `http_${status}` })).toBeGreaterThanOrEqual(2);
  });

  it('a 500 or 422 that passes (Kafka briefly broken) is retried, not dead-lettered', async () => {
    akto.behave((n) => (n === 1 ? { status: 422, body: '{"actionErrors":["kafka insert failed"]}' } : n === 2 ? { status: 500 } : {}));
    const p = await startPipeline(env({ AKTO_BATCH_SIZE: '4', AKTO_ERROR_ATTEMPTS: '3', AKTO_MAX_IN_FLIGHT: '1' }));
    for (let i = 0; i < 4; i++) p.delivery.enqueue(recordLine(i));
    await akto.waitForRecords(4);
    expect(akto.stats.posts).toBe(3);
    expect(await metricValue(p.registry, 'akto_ingest_records_dead_lettered_total')).toBe(0);
    await p.delivery.close(1000);
  });

  it('the fake answers envelope errors as the real service does: 500 for malformed JSON, 422 for a missing batchData', async () => {
    const post = (body: string) => fetch(`${akto.url}/api/ingestData`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: TOKEN }, body });
    expect((await post('{"batchData":[')).status).toBe(500);
    const missing = await post('{"records":[]}');
    expect(missing.status).toBe(422);
    expect(await missing.json()).toMatchObject({ actionErrors: [expect.any(String)] });
    const ok = await post(`{"batchData":[${recordLine(1)}]}`);
    expect([ok.status, await ok.text()]).toEqual([200, '{"success":false}']);
    akto.errors.length = 0;
  });

  it('an error body that reflects the request headers never puts AKTO_API_TOKEN in a log line or the dead-letter file', async () => {
    akto.behave({ status: 400, reflectHeaders: true });
    const p = await startPipeline(env({ AKTO_BATCH_SIZE: '2' }));
    for (let i = 0; i < 2; i++) p.delivery.enqueue(recordLine(i));
    await waitUntil(async () => (await metricValue(p.registry, 'akto_ingest_records_dead_lettered_total')) === 2);
    await p.delivery.close(1000);
    const dead = await fsp.readFile(path.join(tmp.dir, 'dead-letter.jsonl'), 'utf8');
    expect(dead).toContain('<redacted>');
    expect(dead).not.toContain(TOKEN);
    expect(JSON.stringify(p.lines)).toContain('actionErrors');
    expect(JSON.stringify(p.lines)).not.toContain(TOKEN);
  });

  it('keeps records in memory while Akto is down and delivers everything when it is back, without the disk', async () => {
    const p = await startPipeline(env({ AKTO_BATCH_SIZE: '10' }));
    await akto.stop();
    for (let i = 0; i < 200; i++) {
      p.delivery.enqueue(recordLine(i));
      if (i % 20 === 0) await sleep(10);
    }
    await sleep(100);
    expect(await metricValue(p.registry, 'akto_ingest_records_spooled_total')).toBe(0);
    expect(await metricValue(p.registry, 'akto_ingest_memory_queue_bytes')).toBeGreaterThan(0);
    await akto.start();
    await akto.waitForRecords(200, 15_000);
    await sleep(100);
    const got = markers(akto.records);
    expect(new Set(got).size).toBe(200);
    expect(got.length - 200).toBe(0);
    expect(p.spool.isEmpty).toBe(true);
    await p.delivery.close(1000);
  });

  it('a read-only spool while Akto is down drops nothing that fits in memory', async () => {
    const disk = { bytes: Infinity, readOnly: true };
    const p = await startPipeline(env({ AKTO_BATCH_SIZE: '10', AKTO_MEMORY_QUEUE_BYTES: String(64 * 1024) }), { files: fillingDisk(disk) });
    await akto.stop();
    // About 40 KiB of records: within the memory bound.
    for (let i = 0; i < 60; i++) p.delivery.enqueue(recordLine(i, 300));
    await sleep(200);
    expect(await metricValue(p.registry, 'akto_ingest_records_dropped_total', { reason: 'spool_write' })).toBe(0);
    // Past the bound the overflow has nowhere to go: counted and logged, never silent.
    for (let i = 60; i < 400; i++) p.delivery.enqueue(recordLine(i, 300));
    await waitUntil(async () => (await metricValue(p.registry, 'akto_ingest_records_dropped_total', { reason: 'spool_write' })) > 0);
    expect(p.lines.some((l) => String(l.msg).includes('trace records dropped'))).toBe(true);
    await akto.start();
    await waitUntil(async () => {
      const delivered = await metricValue(p.registry, 'akto_ingest_records_sent_total');
      const dropped = await metricValue(p.registry, 'akto_ingest_records_dropped_total', { reason: 'spool_write' });
      return delivered + dropped === 400;
    }, 15_000);
    const got = new Set(markers(akto.records));
    for (let i = 0; i < 60; i++) expect(got.has(i)).toBe(true);
    await p.delivery.close(1000);
  });

  it('a disk that fills mid-write: whole lines stay on disk, the rest is taken back into memory and delivered, none is lost or uncounted', async () => {
    const disk = { bytes: 20_000 };
    const p = await startPipeline(env({ AKTO_BATCH_SIZE: '50', AKTO_MEMORY_QUEUE_BYTES: String(64 * 1024) }), { files: fillingDisk(disk) });
    await akto.stop();
    const total = 300;
    for (let i = 0; i < total; i++) p.delivery.enqueue(recordLine(i, 300));
    await sleep(300);
    const spooled = await metricValue(p.registry, 'akto_ingest_records_spooled_total');
    expect(spooled).toBeGreaterThan(0);
    expect(spooled).toBeLessThan(total);
    // Every segment file holds whole records only: the torn line was cut off.
    for (const name of (await fsp.readdir(tmp.dir)).filter((n) => n.startsWith('seg-'))) {
      const text = await fsp.readFile(path.join(tmp.dir, name), 'utf8');
      expect(text === '' || text.endsWith('\n')).toBe(true);
      for (const line of text.split('\n').filter(Boolean)) expect(() => JSON.parse(line)).not.toThrow();
    }
    disk.bytes = Infinity;
    await akto.start();
    const dropped = async () => metricValue(p.registry, 'akto_ingest_records_dropped_total', { reason: 'spool_write' });
    await waitUntil(async () => new Set(markers(akto.records)).size + (await dropped()) === total, 20_000);
    expect(await metricValue(p.registry, 'akto_ingest_records_dropped_total', { reason: 'corrupt' })).toBe(0);
    expect(akto.records.length).toBe(new Set(markers(akto.records)).size);
    await p.delivery.close(1000);
  });

  it('close() flushes what is pending at once, and spools it when Akto is down', async () => {
    const p = await startPipeline(env({ AKTO_BATCH_INTERVAL_MS: '60000' }));
    for (let i = 0; i < 7; i++) p.delivery.enqueue(recordLine(i));
    const t0 = Date.now();
    await p.delivery.close(2000);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(akto.records).toHaveLength(7);

    const q = await startPipeline(env({ AKTO_BATCH_INTERVAL_MS: '60000', AKTO_RETRY_BASE_MS: '5000', AKTO_RETRY_MAX_MS: '5000' }));
    await akto.stop();
    for (let i = 100; i < 110; i++) q.delivery.enqueue(recordLine(i));
    const t1 = Date.now();
    await q.delivery.close(1500);
    expect(Date.now() - t1).toBeLessThan(1700);
    expect(q.spool.bytes).toBeGreaterThan(0);
    await akto.start();
    const r = await startPipeline(env());
    await akto.waitForRecords(17);
    expect(markers(akto.records).slice(7).sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => 100 + i));
    await r.delivery.close(1000);
  });

  it('with SPOOL_WRITE_AHEAD every record is on disk before it is sent, and survives an abandoned process', async () => {
    akto.behave({ delayMs: 3000 });
    const first = await startPipeline(env({ SPOOL_WRITE_AHEAD: 'true', AKTO_BATCH_INTERVAL_MS: '20' }));
    for (let i = 0; i < 40; i++) first.delivery.enqueue(recordLine(i));
    await waitUntil(async () => (await fsp.readdir(tmp.dir)).some((n) => n.startsWith('seg-')));
    await first.spool.flush();
    expect(await metricValue(first.registry, 'akto_ingest_records_spooled_total')).toBe(40);
    // A new pipeline on the same directory, as after SIGKILL: the records are replayed from disk.
    akto.behave({});
    const second = await startPipeline(env({ SPOOL_WRITE_AHEAD: 'true' }));
    await waitUntil(() => new Set(markers(akto.records)).size === 40, 10_000);
    await first.delivery.close(0);
    await second.delivery.close(2000);
    const extra = akto.records.length - 40;
    expect(extra).toBeLessThanOrEqual(40);
    expect(second.lines.some((l) => String(l.msg).includes('falling behind'))).toBe(false);
  });

  it('with SPOOL_WRITE_AHEAD delivers in batches and leaves the spool empty', async () => {
    const p = await startPipeline(env({ SPOOL_WRITE_AHEAD: 'true', AKTO_BATCH_INTERVAL_MS: '30', AKTO_BATCH_SIZE: '50' }));
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 20; i++) p.delivery.enqueue(recordLine(round * 20 + i));
      await sleep(15);
    }
    await akto.waitForRecords(100);
    expect(markers(akto.records).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(akto.stats.posts).toBeLessThan(20);
    await waitUntil(() => p.spool.isEmpty);
    await p.delivery.close(1000);
    expect((await fsp.readdir(tmp.dir)).filter((n) => n.startsWith('seg-'))).toEqual([]);
  });

  it('keeps memory bounded when Akto is slow: the overflow goes to the spool and is delivered later', async () => {
    akto.behave({ delayMs: 300 });
    const p = await startPipeline(env({ AKTO_BATCH_SIZE: '20', AKTO_MAX_IN_FLIGHT: '2', AKTO_MEMORY_QUEUE_BYTES: String(64 * 1024) }));
    let maxMemory = 0;
    for (let i = 0; i < 400; i++) {
      p.delivery.enqueue(recordLine(i, 500));
      maxMemory = Math.max(maxMemory, await metricValue(p.registry, 'akto_ingest_memory_queue_bytes'));
      if (i % 50 === 0) await sleep(5);
    }
    expect(maxMemory).toBeLessThanOrEqual(64 * 1024);
    expect(await metricValue(p.registry, 'akto_ingest_records_spooled_total')).toBeGreaterThan(0);
    akto.behave({});
    await akto.waitForRecords(400, 20_000);
    expect(new Set(markers(akto.records)).size).toBe(400);
    await p.delivery.close(1000);
  });
});

describe('Delivery behind a smaller body limit', () => {
  it('splits batches refused with 413 and sends smaller ones from then on, losing nothing', async () => {
    const akto = await startAktoReceiver({ token: TOKEN, bodyLimit: 40_000 });
    const tmp = tempDir();
    const p = await startPipeline({ AKTO_API_BASE_URL: akto.url, AKTO_API_TOKEN: TOKEN, SPOOL_DIR: tmp.dir, AKTO_BATCH_SIZE: '50', AKTO_BATCH_INTERVAL_MS: '20' });
    for (let i = 0; i < 100; i++) p.delivery.enqueue(recordLine(i, 2000));
    await akto.waitForRecords(100);
    expect(markers(akto.records).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(akto.stats.maxBodyBytes).toBeLessThanOrEqual(40_000);
    expect(p.lines.filter((l) => String(l.msg).includes('413')).length).toBeGreaterThan(0);
    expect(await metricValue(p.registry, 'akto_ingest_records_dead_lettered_total')).toBe(0);
    await p.delivery.close(1000);
    await akto.close();
    tmp.cleanup();
  });
});
