import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports';

/** redis-server from the Debian package (`make test` installs it through bench/peers/install.sh redis). */
export function findRedisServer(): string | undefined {
  for (const p of [process.env.REDIS_SERVER, '/usr/bin/redis-server', '/usr/local/bin/redis-server']) {
    if (p && spawnSync(p, ['--version']).status === 0) return p;
  }
  return undefined;
}

/** `describe`, or `describe.skip` with one loud line saying how to get redis-server. */
export function describeWithRedis(name: string, fn: () => void): void {
  if (findRedisServer()) return describe(name, fn);
  console.warn(`SKIPPED "${name}": redis-server not found; run \`bash bench/peers/install.sh redis\` (make test does)`);
  describe.skip(name, fn);
}

export interface TestRedis {
  port: number;
  url: string;
  /** One command on a fresh connection; the reply's first line (enough for PING, DEBUG SLEEP, EXISTS). */
  command(...args: string[]): Promise<string>;
  /** SIGKILL: the server is gone at once, as when its node dies. */
  kill(): Promise<void>;
  /** Starts the server again on the same port (empty: it saves nothing). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A redis-server on a free loopback port, nothing persisted, stopped by stop(). With `tls`, TLS only (rediss://). */
export async function startRedis(opts: { password?: string; tls?: { cert: string; key: string; ca: string } } = {}): Promise<TestRedis> {
  const bin = findRedisServer();
  if (!bin) throw new Error('redis-server not found');
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'aap-redis-'));
  let proc: ChildProcess | undefined;

  const listen = opts.tls ? ['--port', '0', '--tls-port', String(port), ...tlsArgs(dir, opts.tls)] : ['--port', String(port)];
  const args = [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--enable-debug-command', 'local', '--loglevel', 'warning'];
  if (opts.password) args.push('--requirepass', opts.password);

  const command = (...cmd: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = opts.tls ? tls.connect({ port, host: '127.0.0.1', ca: opts.tls.ca, servername: 'localhost' }) : net.connect(port, '127.0.0.1');
      let out = '';
      const pre = opts.password ? [['AUTH', opts.password]] : [];
      s.on(opts.tls ? 'secureConnect' : 'connect', () => {
        for (const c of [...pre, cmd]) s.write(`*${c.length}\r\n${c.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
      });
      s.on('data', (d) => {
        out += d.toString();
        const lines = out.split('\r\n');
        if (lines.length > pre.length + 1) {
          s.destroy();
          resolve(lines[pre.length]);
        }
      });
      s.on('error', reject);
    });

  const start = async (): Promise<void> => {
    proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const p = proc;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (p.exitCode !== null) throw new Error(`redis-server exited with ${p.exitCode}`);
      try {
        if ((await command('PING')) === '+PONG') return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error('redis-server did not answer PING within 10 s');
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(sig);
    await exited;
  };

  await start();
  return {
    port,
    url: opts.tls ? `rediss://localhost:${port}` : `redis://127.0.0.1:${port}`,
    command,
    kill: () => signal('SIGKILL'),
    restart: start,
    async stop() {
      await signal('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function tlsArgs(dir: string, pem: { cert: string; key: string; ca: string }): string[] {
  for (const [name, text] of Object.entries(pem)) writeFileSync(path.join(dir, `${name}.pem`), text);
  return ['--tls-cert-file', path.join(dir, 'cert.pem'), '--tls-key-file', path.join(dir, 'key.pem'), '--tls-ca-cert-file', path.join(dir, 'ca.pem'), '--tls-auth-clients', 'no'];
}
