import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../test/support/ports';
import path from 'node:path';

/** Shared plumbing for the benchmarks: child processes for the stub upstream and the proxy, and stats. */

export const ROOT = path.resolve(__dirname, '../..');
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

export async function startStub(): Promise<Child & { url: string }> {
  const c = await startNode(path.join(DIST, 'test/fixtures/stub-upstream.js'), ['0'], {}, (l) => (l.startsWith('http://') ? l.trim() : undefined));
  return { ...c, url: c.value };
}

/**
 * Starts dist/proxy/main.js in front of `upstream` with extra env; resolves once /readyz answers.
 * Its log lines go to /dev/null, not through a pipe: reading them would load the load generator.
 */
export async function startProxyProcess(upstream: string, env: Record<string, string> = {}, script = 'proxy/main.js'): Promise<Child & { url: string }> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const proc = spawn(process.execPath, [path.join(DIST, script)], {
    // A short drain: with Akto stalled the proxy would otherwise wait the full 25 s before spooling.
    env: { PATH: process.env.PATH ?? '', APP_URL: upstream, AKTO_PROXY_PORT: String(port), ADMIN_PORT: String(adminPort), ADMIN_HOST: '127.0.0.1', LISTEN_HOST: '127.0.0.1', DRAIN_TIMEOUT: '3', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + 15000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`the proxy exited with ${proc.exitCode} before it was ready`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error('the proxy did not become ready within 15 s');
    }
    const ready = await fetch(`http://127.0.0.1:${adminPort}/readyz`).then((r) => r.ok, () => false);
    if (ready) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, url: `http://127.0.0.1:${port}`, stop: () => stopChild(proc) };
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
