/**
 * An endless token stream through the built proxy process keeps its memory flat: the relay follows the client's
 * pace, the text kept for the record and the trace is bounded. The bounded version of the 10-minute soak
 * (`npm run bench:soak`): 20 s, RSS sampled every second, its slope after warm-up asserted.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startMisbehavingUpstream, type MisbehavingUpstream } from '../../fixtures/misbehaving-upstream';
import { startProxyProcess, type ProxyProcess } from '../../support/proxy-process';
import { rssBytes, slope } from '../../support/rss';
import { waitFor } from '../../support/wait';

const MiB = 1024 * 1024;
const RUN_MS = 20_000;
const WARMUP_MS = 6_000;

describe('an endless stream', () => {
  let up: MisbehavingUpstream;
  let proc: ProxyProcess;
  let dir: string;
  beforeAll(async () => {
    up = await startMisbehavingUpstream();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-memory-'));
    proc = await startProxyProcess({ APP_URL: up.url, TRACE_FILE: path.join(dir, 'traces.jsonl'), AKTO_MAX_PAYLOAD_BYTES: String(64 * 1024), MAX_RESPONSE_SIZE: String(MiB) });
  });
  afterAll(async () => {
    await proc.stop();
    await up.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('keeps RSS flat for 20 s (slope after warm-up under 1 MiB/s) and traces a bounded, truncated record', async () => {
    const url = new URL(proc.url);
    let received = 0;
    const req = http.request({ host: url.hostname, port: url.port, path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json', 'x-misbehave': 'endless-stream', 'x-request-id': 'endless' } });
    req.on('response', (res) => res.on('data', (c: Buffer) => (received += c.length)).on('error', () => undefined));
    req.on('error', () => undefined);
    req.end(JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'go on forever' }] }));

    const samples: Array<[number, number]> = [];
    const t0 = Date.now();
    while (Date.now() - t0 < RUN_MS) {
      await new Promise((r) => setTimeout(r, 1000));
      expect(proc.child.exitCode).toBeNull();
      samples.push([(Date.now() - t0) / 1000, rssBytes(proc.child.pid!) / MiB]);
    }
    req.destroy();
    const steady = samples.filter(([t]) => t * 1000 >= WARMUP_MS);
    const mibPerSecond = slope(steady);
    const peak = Math.max(...samples.map(([, m]) => m));
    // Printed for the record: the curve, and how much went through.
    console.log(`endless stream: ${(received / MiB).toFixed(0)} MiB relayed in ${RUN_MS / 1000}s; RSS MiB ${samples.map(([, m]) => m.toFixed(0)).join(' ')}; slope ${mibPerSecond.toFixed(2)} MiB/s`);
    expect(received).toBeGreaterThan(20 * MiB);
    expect(mibPerSecond).toBeLessThan(1);
    expect(peak).toBeLessThan(400);

    await waitFor(() => proc.lines.some((l) => l.msg === 'request' && l.reqId === 'endless'), 5000);
    expect(proc.lines.find((l) => l.msg === 'request' && l.reqId === 'endless')).toMatchObject({ outcome: 'aborted', stream: true });
    const traced = (): Record<string, string> | undefined => {
      const file = path.join(dir, 'traces.jsonl');
      if (!fs.existsSync(file)) return undefined;
      const records = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>);
      return records.find((r) => JSON.parse(r.tag)['exchange-id'] === 'endless');
    };
    await waitFor(() => traced() !== undefined, 5000, 'the trace record');
    const record = traced()!;
    expect(Buffer.byteLength(record.responsePayload)).toBeLessThanOrEqual(64 * 1024);
    expect(JSON.parse(record.tag).truncated).toContain('responsePayload');
  });
});
