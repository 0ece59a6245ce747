import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { IngestMetrics } from '../../../proxy/ingest/metrics';
import { Spool } from '../../../proxy/ingest/spool';
import { createRegistry } from '../../../common/metrics';
import { captureLogger, fillingDisk, markers, metricValue, recordLine, tempDir } from './harness';

function setup(over: { maxBytes?: number; segmentBytes?: number } = {}) {
  const tmp = tempDir();
  const registry = createRegistry(false);
  const metrics = new IngestMetrics(registry);
  const { logger, lines } = captureLogger();
  const settings = { dir: tmp.dir, maxBytes: over.maxBytes ?? 1 << 20, segmentBytes: over.segmentBytes ?? 64 * 1024, fsyncIntervalMs: 0, deadLetterMaxBytes: 1 << 20 };
  const open = () => Spool.open(settings, logger, metrics);
  return { tmp, registry, metrics, lines, open, settings };
}

async function drain(spool: Spool): Promise<string[]> {
  const out: string[] = [];
  for (let seg = await spool.takeOldest(); seg; seg = await spool.takeOldest()) {
    out.push(...(await spool.read(seg)));
    await spool.remove(seg);
  }
  return out;
}

describe('Spool', () => {
  it('replays appended records oldest-first across segments and empties itself', async () => {
    const s = setup({ segmentBytes: 4096 });
    const spool = await s.open();
    const written = Array.from({ length: 60 }, (_, i) => recordLine(i));
    for (const l of written) spool.append(l);
    await spool.flush();
    expect(spool.segments).toBeGreaterThan(3);
    expect(await metricValue(s.registry, 'akto_ingest_spool_bytes')).toBe(spool.bytes);
    expect(await drain(spool)).toEqual(written);
    expect(spool.isEmpty).toBe(true);
    expect((await fsp.readdir(s.tmp.dir)).filter((n) => n.startsWith('seg-'))).toEqual([]);
    await spool.close();
    s.tmp.cleanup();
  });

  it('keeps records across a restart (a new Spool on the same directory)', async () => {
    const s = setup();
    const first = await s.open();
    const written = Array.from({ length: 10 }, (_, i) => recordLine(i));
    for (const l of written) first.append(l);
    await first.flush(); // written, not closed: as after SIGKILL
    const second = await s.open();
    expect(second.isEmpty).toBe(false);
    const got = await drain(second);
    expect(got).toEqual(written);
    await first.close();
    s.tmp.cleanup();
  });

  it('drops the oldest segment past maxBytes, counting and logging the records', async () => {
    const s = setup({ maxBytes: 64 * 1024, segmentBytes: 8 * 1024 });
    const spool = await s.open();
    const total = 200;
    for (let i = 0; i < total; i++) {
      spool.append(recordLine(i, 500));
      if (i % 10 === 9) await spool.flush();
    }
    await spool.flush();
    expect(spool.bytes).toBeLessThanOrEqual(64 * 1024);
    const dropped = await metricValue(s.registry, 'akto_ingest_records_dropped_total', { reason: 'spool_full' });
    const kept = await drain(spool);
    expect(dropped).toBeGreaterThan(0);
    expect(kept.length + dropped).toBe(total);
    // What is kept is the newest, in order.
    expect(markers(kept.map((l) => JSON.parse(l)))).toEqual(Array.from({ length: kept.length }, (_, i) => total - kept.length + i));
    expect(s.lines.some((l) => String(l.msg).includes('SPOOL_MAX_BYTES') && l.level === 'error')).toBe(true);
    await spool.close();
    s.tmp.cleanup();
  });

  it('a write that fails part-way (disk full) keeps whole lines only and hands the unwritten ones back', async () => {
    const s = setup();
    const disk = { bytes: 5000 };
    const spool = await Spool.open(s.settings, captureLogger().logger, s.metrics, fillingDisk(disk));
    const back: string[] = [];
    spool.onUnwritten = (lines) => back.push(...lines);
    const written = Array.from({ length: 50 }, (_, i) => recordLine(i));
    for (const l of written) spool.append(l);
    await spool.flush();
    const onDisk = await metricValue(s.registry, 'akto_ingest_records_spooled_total');
    expect(onDisk).toBeGreaterThan(0);
    expect(onDisk + back.length).toBe(50);
    expect(back).toEqual(written.slice(onDisk));
    const files = (await fsp.readdir(s.tmp.dir)).filter((n) => n.startsWith('seg-'));
    const text = (await Promise.all(files.map((f) => fsp.readFile(path.join(s.tmp.dir, f), 'utf8')))).join('');
    expect(text).toBe(written.slice(0, onDisk).join('\n') + '\n');
    expect(spool.bytes).toBe(Buffer.byteLength(text));
    disk.bytes = Infinity;
    expect(await drain(spool)).toEqual(written.slice(0, onDisk));
    expect(await metricValue(s.registry, 'akto_ingest_records_dropped_total', { reason: 'corrupt' })).toBe(0);
    await spool.close();
    s.tmp.cleanup();
  });

  it('without a taker, lines a failed write left are counted as lost, never silently', async () => {
    const s = setup();
    const spool = await Spool.open(s.settings, captureLogger().logger, s.metrics, fillingDisk({ bytes: 0, readOnly: true }));
    for (let i = 0; i < 5; i++) spool.append(recordLine(i));
    await spool.flush();
    expect(await metricValue(s.registry, 'akto_ingest_records_dropped_total', { reason: 'spool_write' })).toBe(5);
    expect(await metricValue(s.registry, 'akto_ingest_records_spooled_total')).toBe(0);
    expect(spool.isEmpty).toBe(true);
    await spool.close();
    s.tmp.cleanup();
  });

  it('skips and counts a torn last line left by a crash', async () => {
    const s = setup();
    await fsp.mkdir(s.tmp.dir, { recursive: true });
    await fsp.writeFile(path.join(s.tmp.dir, 'seg-000000000007.jsonl'), `${recordLine(1)}\n${recordLine(2)}\n${recordLine(3).slice(0, 40)}`);
    const spool = await s.open();
    expect(await drain(spool)).toEqual([recordLine(1), recordLine(2)]);
    expect(await metricValue(s.registry, 'akto_ingest_records_dropped_total', { reason: 'corrupt' })).toBe(1);
    // New segments continue the numbering, so replay order holds.
    spool.append(recordLine(9));
    await spool.close();
    expect((await fsp.readdir(s.tmp.dir)).filter((n) => n.startsWith('seg-'))).toEqual(['seg-000000000008.jsonl']);
    s.tmp.cleanup();
  });

  it('rewrites a partly delivered segment with only the rest', async () => {
    const s = setup();
    const spool = await s.open();
    for (let i = 0; i < 5; i++) spool.append(recordLine(i));
    const seg = await spool.takeOldest();
    if (!seg) throw new Error('no segment');
    const lines = await spool.read(seg);
    await spool.rewrite(seg, lines.slice(3));
    expect(spool.bytes).toBe(Buffer.byteLength(lines.slice(3).join('\n') + '\n'));
    expect(await drain(spool)).toEqual(lines.slice(3));
    await spool.close();
    s.tmp.cleanup();
  });
});
