/**
 * `npm run bench:footprint`: the sidecar's footprint as a pod sees it. For the bundled program the image runs
 * (dist/bundle/proxy/main.js, built by `npm run bundle` first) and, as the baseline in the same run, a bare Node
 * HTTP server that answers /readyz: the time from spawning the process to /readyz answering 200, the CPU time the
 * process had used by then (steadier than the wall time on a shared machine), and the resident set (VmRSS) after it
 * has been idle for a while. Median of FOOTPRINT_ROUNDS (default 5) starts each. Also prints
 * the image size the last `make e2e` recorded, when that cache is present.
 *
 *   FOOTPRINT_ROUNDS   starts per target (default 5)
 *   FOOTPRINT_IDLE_MS  idle time before RSS is read (default 3000)
 *   FOOTPRINT_JSON     path to also write the numbers as JSON
 *   FOOTPRINT_BEFORE   another build's dist/bundle/proxy/main.js (e.g. of main), measured in the same rounds
 * Targets: idle RSS ≤ 50 MB, start→readyz ≤ 300 ms.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../test/support/ports';
import { DIST, fmt, percentile, printTable, startStub, stopChild } from './support';

const ROUNDS = Number(process.env.FOOTPRINT_ROUNDS ?? 5);
const IDLE_MS = Number(process.env.FOOTPRINT_IDLE_MS ?? 3000);
const MiB = 1024 * 1024;

/** The floor: node itself with an HTTP server answering /readyz, nothing else loaded. */
const BARE_NODE = `require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.ADMIN_PORT), '127.0.0.1')`;

interface Target {
  name: string;
  argv: string[];
  env: (upstream: string) => Record<string, string>;
}

interface Sample {
  readyMs: number;
  /** user + system CPU of the process up to /readyz answering. */
  cpuMs: number;
  rssMiB: number;
}

const proxyEnv = (extra: Record<string, string>) => (upstream: string): Record<string, string> => ({
  APP_URL: upstream,
  LISTEN_HOST: '127.0.0.1',
  ADMIN_HOST: '127.0.0.1',
  TRACE_FILE: '/dev/null',
  LOG_LEVEL: 'warn',
  ...extra,
});

const BUNDLE = path.join(DIST, 'bundle', 'proxy', 'main.js');
const TARGETS: Target[] = [
  { name: 'bare node http server (baseline)', argv: ['-e', BARE_NODE], env: () => ({}) },
  { name: 'sidecar bundle, pack default', argv: [BUNDLE], env: proxyEnv({ POLICY_PACK: 'default' }) },
  { name: 'sidecar bundle, pack off', argv: [BUNDLE], env: proxyEnv({ POLICY_PACK: 'off' }) },
  ...(process.env.FOOTPRINT_BEFORE ? [{ name: 'FOOTPRINT_BEFORE bundle, pack default', argv: [process.env.FOOTPRINT_BEFORE], env: proxyEnv({ POLICY_PACK: 'default' }) }] : []),
];

/** utime + stime from /proc/<pid>/stat, in ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rssMiB(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

/** Polls /readyz every 2 ms; resolves with the ms since `started` at the first 200. */
async function readyAfter(proc: ChildProcess, url: string, started: number): Promise<number> {
  const deadline = started + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`exited with ${proc.exitCode} before /readyz answered`);
    if (performance.now() > deadline) throw new Error('/readyz did not answer 200 within 15 s');
    const ok = await fetch(url).then((r) => r.status === 200, () => false);
    if (ok) return performance.now() - started;
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function measure(target: Target, upstream: string): Promise<Sample> {
  const port = await freePort();
  const adminPort = await freePort();
  const env = { PATH: process.env.PATH ?? '', AKTO_PROXY_PORT: String(port), ADMIN_PORT: String(adminPort), SPOOL_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'footprint-')), ...target.env(upstream) };
  const started = performance.now();
  const proc = spawn(process.execPath, target.argv, { env, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    const readyMs = await readyAfter(proc, `http://127.0.0.1:${adminPort}/readyz`, started);
    const startCpuMs = cpuMs(proc.pid!);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    return { readyMs, cpuMs: startCpuMs, rssMiB: rssMiB(proc.pid!) };
  } finally {
    await stopChild(proc);
    fs.rmSync(env.SPOOL_DIR, { recursive: true, force: true });
  }
}

/** The image size `make e2e` noted beside its image tarball (test/cluster/images.sh), newest first. */
function imageNote(): string {
  const dir = path.join(process.env.AKTO_K8S_TOOLS_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'akto-agent-proxy'), 'e2e', 'images');
  if (!fs.existsSync(dir)) return 'image size: no `make e2e` image on this machine';
  const notes = fs.readdirSync(dir).filter((f) => /^akto-agent-proxy-.*\.tar\.size$/.test(f));
  const newest = notes.map((f) => ({ f, t: fs.statSync(path.join(dir, f)).mtimeMs })).sort((a, b) => b.t - a.t)[0];
  if (!newest) return 'image size: no `make e2e` image on this machine';
  const size = Number(fs.readFileSync(path.join(dir, newest.f), 'utf8'));
  const baseFile = path.join(dir, newest.f.replace(/\.size$/, '.base-size'));
  const base = fs.existsSync(baseFile) ? Number(fs.readFileSync(baseFile, 'utf8')) : NaN;
  const when = new Date(newest.t).toISOString();
  return `image size (last make e2e, ${when}): ${fmt(size / MiB, 0)} MiB, of which the runtime base ${fmt(base / MiB, 0)} MiB (the rest: bundles, ONNX Runtime, the model tier's files)`;
}

async function main(): Promise<void> {
  if (!fs.existsSync(BUNDLE)) throw new Error(`${path.relative(process.cwd(), BUNDLE)} is missing: run npm run bundle first`);
  const stub = await startStub();
  const results: Array<{ target: string } & Sample> = [];
  try {
    // Round-robin: on a shared machine the load drifts, and each round gives every target the same moment.
    const samples = TARGETS.map((): Sample[] => []);
    for (let i = 0; i < ROUNDS; i++) {
      for (const [t, target] of TARGETS.entries()) samples[t].push(await measure(target, stub.url));
    }
    const median = (xs: number[]): number => percentile([...xs].sort((a, b) => a - b), 50);
    for (const [t, target] of TARGETS.entries()) {
      const of = (key: keyof Sample): number => median(samples[t].map((s) => s[key]));
      results.push({ target: target.name, readyMs: of('readyMs'), cpuMs: of('cpuMs'), rssMiB: of('rssMiB') });
    }
  } finally {
    await stub.stop();
  }
  const base = results[0];
  printTable(
    `Footprint: median of ${ROUNDS} starts, RSS after ${IDLE_MS} ms idle (targets: start→readyz ≤ 300 ms, idle RSS ≤ 50 MB)`,
    ['process', 'start→readyz ms', 'ratio', 'CPU ms to readyz', 'ratio', 'idle RSS MiB', 'ratio'],
    results.map((r) => [r.target, fmt(r.readyMs, 0), fmt(r.readyMs / base.readyMs, 2), fmt(r.cpuMs, 0), fmt(r.cpuMs / base.cpuMs, 2), fmt(r.rssMiB, 1), fmt(r.rssMiB / base.rssMiB, 2)]),
  );
  console.log(imageNote());
  if (process.env.FOOTPRINT_JSON) fs.writeFileSync(process.env.FOOTPRINT_JSON, JSON.stringify({ rounds: ROUNDS, idleMs: IDLE_MS, results }, null, 2));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
