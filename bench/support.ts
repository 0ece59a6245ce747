import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { freePort } from '../test/support/ports';
import path from 'node:path';

/** Shared plumbing for the benchmarks: child processes for the stub upstream and the proxy, and stats. */

/** The repository root: the first directory above this file with a tsconfig.json (from bench/ under ts-jest, or dist/bench/). */
export const ROOT = ((): string => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'tsconfig.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();
export const DIST = path.join(ROOT, 'dist');

export interface Child {
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Starts a node script and resolves with the first stdout line that `pick` accepts (and the child). */
export function startNode(script: string, args: string[], env: Record<string, string>, pick: (line: string) => string | undefined): Promise<Child & { value: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [script, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    let found = false;
    const onData = (c: Buffer): void => {
      if (found) return;
      buf += c.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const value = pick(line);
        if (value !== undefined) {
          found = true;
          resolve({ proc, value, stop: () => stopChild(proc) });
          return;
        }
      }
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', (code) => {
      if (!found) reject(new Error(`${path.basename(script)} exited with ${code} before it was ready`));
    });
  });
}

export function stopChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
    proc.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

/** `env` takes STUB_DELAY_MS / STUB_CHUNK_DELAY_MS (the stub's default service time and token interval). */
export async function startStub(env: Record<string, string> = {}): Promise<Child & { url: string }> {
  const c = await startNode(path.join(DIST, 'test/fixtures/stub-upstream.js'), ['0'], env, (l) => (l.startsWith('http://') ? l.trim() : undefined));
  return { ...c, url: c.value };
}

/** The command line that runs `argv` on the given CPUs only (`taskset -c`), or unchanged without CPUs. */
export function pinned(cpus: string | undefined, argv: string[]): string[] {
  return cpus === undefined ? argv : ['taskset', '-c', cpus, ...argv];
}

/**
 * Starts dist/proxy/main.js in front of `upstream` with extra env; resolves once /readyz answers.
 * Its log lines go to /dev/null, not through a pipe: reading them would load the load generator.
 */
export async function startProxyProcess(upstream: string, env: Record<string, string> = {}, script = 'proxy/main.js', cpus?: string): Promise<Child & { url: string }> {
  const port = env.AKTO_PROXY_PORT ? Number(env.AKTO_PROXY_PORT) : await freePort();
  const adminPort = await freePort();
  const [cmd, ...args] = pinned(cpus, [process.execPath, path.join(DIST, script)]);
  const proc = spawn(cmd, args, {
    // A short drain: with Akto stalled the proxy would otherwise wait the full 25 s before spooling.
    env: { PATH: process.env.PATH ?? '', APP_URL: upstream, AKTO_PROXY_PORT: String(port), ADMIN_PORT: String(adminPort), ADMIN_HOST: '127.0.0.1', LISTEN_HOST: '127.0.0.1', DRAIN_TIMEOUT: '3', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitUntilReady(proc, 'the proxy', `http://127.0.0.1:${adminPort}/readyz`, { timeoutMs: 15000, isReady: (r) => r.ok });
  return { proc, url: `http://127.0.0.1:${port}`, stop: () => stopChild(proc) };
}

/**
 * Polls `url` until an answer passes `isReady` (default: any answer). Fails as soon as the process exits, and
 * kills it at the deadline; `detail` adds context (e.g. the tail of its log) to either error.
 */
export async function waitUntilReady(
  proc: ChildProcess,
  name: string,
  url: string,
  opts: { timeoutMs: number; isReady?: (res: Response) => boolean; detail?: () => string },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  const detail = (): string => (opts.detail ? `:\n${opts.detail()}` : '');
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${name} exited with ${proc.exitCode} before it was ready${detail()}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`${name} was not ready within ${opts.timeoutMs / 1000} s${detail()}`);
    }
    if (await fetch(url).then(opts.isReady ?? (() => true), () => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** User + system CPU time of a process, in milliseconds, from /proc (Linux); NaN once it is gone. */
export function cpuMs(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}
const CLOCK_TICKS = 100;

/** A process and all its descendants (nginx's workers, a Python server's children), from /proc. */
export function processTree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      parent.set(Number(entry), Number(fs.readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ')[1]));
    } catch {
      // exited while listing
    }
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) for (const [pid, ppid] of parent) if (ppid === tree[i]) tree.push(pid);
  return tree;
}

/** The sum of each process's peak resident set (VmHWM), in MiB. */
export function peakRssMiB(pids: number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      kb += Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // exited
    }
  }
  return kb / 1024;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export interface LatencyStats {
  n: number;
  p50: number;
  p99: number;
  rps: number;
}

export function stats(samples: number[], seconds: number): LatencyStats {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), rps: s.length / seconds };
}

export const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

export function printTable(title: string, header: string[], rows: Array<Array<string | number>>): void {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  console.log(`\n${title}`);
  for (const [k, r] of cells.entries()) {
    console.log(r.map((c, i) => c.padEnd(widths[i])).join('  '));
    if (k === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}
