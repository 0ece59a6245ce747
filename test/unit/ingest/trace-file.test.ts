import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { IngestMetrics } from '../../../proxy/ingest/metrics';
import { TraceFileSink } from '../../../proxy/ingest/trace-file';
import { createRegistry } from '../../../common/metrics';
import { captureLogger, fillingDisk, markers, metricValue, recordLine, tempDir, waitUntil } from './harness';

describe('TraceFileSink on a disk that fills up', () => {
  it('counts only whole lines as written, cuts a torn one off, and writes the rest when space comes back', async () => {
    const tmp = tempDir();
    const registry = createRegistry(false);
    const { logger, lines } = captureLogger();
    const file = path.join(tmp.dir, 'traces.jsonl');
    const disk = { bytes: 30_000 };
    const sink = await TraceFileSink.open(file, logger, new IngestMetrics(registry), { maxPendingBytes: 1 << 20, files: fillingDisk(disk) });
    const total = 300;
    for (let i = 0; i < total; i++) sink.enqueue(recordLine(i, 100));
    await waitUntil(() => lines.some((l) => String(l.msg).includes('cannot write trace records to TRACE_FILE')));
    const sent = await metricValue(registry, 'akto_ingest_records_sent_total');
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(total);
    const partial = await fsp.readFile(file, 'utf8');
    expect(partial.endsWith('\n')).toBe(true);
    expect(partial.split('\n').filter(Boolean)).toHaveLength(sent);

    disk.bytes = Infinity;
    await waitUntil(async () => (await metricValue(registry, 'akto_ingest_records_sent_total')) === total, 5000);
    await sink.close();
    const records = (await fsp.readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(markers(records)).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(await metricValue(registry, 'akto_ingest_records_dropped_total', { reason: 'trace_file' })).toBe(0);
    tmp.cleanup();
  });

  it('past the memory bound, and at exit, what cannot be written is counted as dropped and logged', async () => {
    const tmp = tempDir();
    const registry = createRegistry(false);
    const { logger, lines } = captureLogger();
    const file = path.join(tmp.dir, 'traces.jsonl');
    const sink = await TraceFileSink.open(file, logger, new IngestMetrics(registry), { maxPendingBytes: 64 * 1024, files: fillingDisk({ bytes: 0 }) });
    for (let i = 0; i < 400; i++) sink.enqueue(recordLine(i, 300));
    await sink.close();
    expect(await metricValue(registry, 'akto_ingest_records_dropped_total', { reason: 'trace_file' })).toBe(400);
    expect(await metricValue(registry, 'akto_ingest_records_sent_total')).toBe(0);
    expect(lines.some((l) => l.level === 'error')).toBe(true);
    tmp.cleanup();
  });
});
