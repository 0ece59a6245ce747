/**
 * npm run bench:soak -- [--seconds 600] [--rate-mib 2] [--dialect openai|tgi]
 *
 * An endless token stream through the built proxy (default policy: the stream is inspected) for `--seconds`,
 * read by a client as fast as it comes. Prints the proxy's RSS curve and its drift against the RSS measured
 * after the first 30 s of the same run (the baseline). The upstream is throttled to `--rate-mib` MiB/s (0 =
 * unthrottled) so a 10-minute run leaves the machine to others; that is still tens of thousands of tokens/s.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startMisbehavingUpstream } from '../test/fixtures/misbehaving-upstream';
import { rssBytes, slope } from '../test/support/rss';
import { printTable, startProxyProcess } from './support';

const MiB = 1024 * 1024;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const seconds = Number(arg('seconds', '600'));
  const rateMiB = Number(arg('rate-mib', '2'));
  const dialect = arg('dialect', 'openai');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'akto-soak-'));
  const up = await startMisbehavingUpstream();
  const proxy = await startProxyProcess(up.url, { TRACE_FILE: path.join(dir, 'traces.jsonl'), SPOOL_DIR: dir, POLICY_PACK: 'default' });
  const pid = proxy.proc.pid!;
  let received = 0;
  let ended = '';
  const route = dialect === 'tgi' ? '/generate_stream' : '/v1/chat/completions';
  const body = dialect === 'tgi' ? JSON.stringify({ inputs: 'go on forever', stream: true }) : JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'go on forever' }] });
  const url = new URL(proxy.url);
  const req = http.request({
    host: url.hostname,
    port: url.port,
    path: route,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-misbehave': 'endless-stream', 'x-misbehave-dialect': dialect, ...(rateMiB > 0 ? { 'x-misbehave-rate': String(rateMiB * MiB) } : {}) },
  });
  req.on('response', (res) => {
    res.on('data', (c: Buffer) => (received += c.length));
    res.on('end', () => (ended ||= 'the stream ended'));
    res.on('error', (e) => (ended ||= e.message));
  });
  req.on('error', (e) => (ended ||= e.message));
  req.end(body);

  const samples: Array<[number, number]> = [];
  const rows: Array<Array<string | number>> = [];
  const t0 = Date.now();
  let next = 0;
  while ((Date.now() - t0) / 1000 < seconds && !ended && proxy.proc.exitCode === null) {
    await new Promise((r) => setTimeout(r, 5000));
    const t = (Date.now() - t0) / 1000;
    const rss = rssBytes(pid) / MiB;
    samples.push([t, rss]);
    if (t >= next) {
      rows.push([Math.round(t), rss.toFixed(1), (received / MiB).toFixed(0)]);
      process.stderr.write(`t=${Math.round(t)}s rss=${rss.toFixed(1)} MiB relayed=${(received / MiB).toFixed(0)} MiB\n`);
      next += 30;
    }
  }
  const alive = proxy.proc.exitCode === null;
  const endedEarly = ended;
  req.destroy();
  await proxy.stop();
  await up.close();
  fs.rmSync(dir, { recursive: true, force: true });

  printTable(`bench:soak — endless ${dialect} stream, ${seconds} s, upstream ${rateMiB > 0 ? `${rateMiB} MiB/s` : 'unthrottled'}`, ['t (s)', 'RSS (MiB)', 'relayed (MiB)'], rows);
  const baseline = samples.find(([t]) => t >= 30)?.[1] ?? samples[0]?.[1] ?? NaN;
  const final = samples[samples.length - 1]?.[1] ?? NaN;
  const peak = Math.max(...samples.map(([, m]) => m));
  const late = samples.filter(([t]) => t >= 60);
  console.log(
    `proxy alive: ${alive}${endedEarly ? ` (client: ${endedEarly})` : ''}; relayed ${(received / MiB).toFixed(0)} MiB; RSS at 30 s ${baseline.toFixed(1)} MiB, final ${final.toFixed(1)} MiB ` +
      `(x${(final / baseline).toFixed(3)} of the 30 s baseline), peak ${peak.toFixed(1)} MiB, slope after 60 s ${(slope(late) * 60).toFixed(2)} MiB/min`,
  );
  if (!alive || endedEarly) process.exitCode = 1;
}

void main();
