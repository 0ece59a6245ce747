import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { waitFor } from './wait';

/** The built entry point (`npm run build` first; `make test` does). */
export const PROXY_MAIN = path.resolve(__dirname, '../../dist/proxy/main.js');

export interface ProxyProcess {
  child: ChildProcess;
  /** Every JSON log line written to stdout so far. */
  lines: Array<Record<string, unknown>>;
  /** Every byte written to stdout so far, as text. */
  stdout(): string;
  url: string;
  adminUrl: string;
  exit: Promise<number | null>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/** Runs `node dist/proxy/main.js` (or another build of it, e.g. the image's bundle) with `env` on loopback ports and waits until it listens. */
export async function startProxyProcess(env: Record<string, string>, main = PROXY_MAIN): Promise<ProxyProcess> {
  const child = spawn(process.execPath, [main], {
    env: { PATH: process.env.PATH ?? '', AKTO_PROXY_PORT: '0', ADMIN_PORT: '0', ADMIN_HOST: '127.0.0.1', LISTEN_HOST: '127.0.0.1', TRACE_FILE: '/dev/null', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Array<Record<string, unknown>> = [];
  let buf = '';
  let all = '';
  child.stdout!.on('data', (c: Buffer) => {
    all += c.toString();
    buf += c.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    for (const p of parts) if (p.trim()) lines.push(JSON.parse(p));
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const listening = (): Record<string, unknown> | undefined => lines.find((l) => l.msg === 'akto-agent-proxy listening');
  await waitFor(() => listening() !== undefined || child.exitCode !== null, 15_000, 'proxy process listening');
  if (!listening()) throw new Error(`proxy process exited: ${JSON.stringify(lines)}`);
  const { listeners, admin } = listening() as { listeners: Array<{ url: string }>; admin: string };
  return {
    child,
    lines,
    stdout: () => all,
    url: listeners[0].url,
    adminUrl: admin,
    exit,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exit;
    },
  };
}
