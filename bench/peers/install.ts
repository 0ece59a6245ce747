import { spawnSync } from 'node:child_process';
import path from 'node:path';

/** What bench/peers/install.sh said about a peer: where its entry point is, or why it is not there. */
export type PeerStatus = { status: 'ready'; path: string } | { status: 'unavailable'; reason: string };

/** install.sh's stdout: `ready PEER PATH` or `unavailable PEER: reason`, one line per peer. */
export function parseInstallOutput(stdout: string, peers: readonly string[]): Record<string, PeerStatus> {
  const out: Record<string, PeerStatus> = {};
  for (const line of stdout.split('\n')) {
    const ready = /^ready (\S+) (.+)$/.exec(line.trim());
    const missing = /^unavailable ([^:]+): (.*)$/.exec(line.trim());
    if (ready) out[ready[1]] = { status: 'ready', path: ready[2] };
    else if (missing) out[missing[1]] = { status: 'unavailable', reason: missing[2] };
  }
  for (const p of peers) out[p] ??= { status: 'unavailable', reason: 'the installer printed no line for it' };
  return out;
}

/** Installs (or finds in the cache) each peer; the installer's progress goes to our stderr. */
export function installPeers(root: string, peers: readonly string[]): Record<string, PeerStatus> {
  const run = spawnSync('bash', [path.join(root, 'bench', 'peers', 'install.sh'), ...peers], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return parseInstallOutput(run.stdout ?? '', peers);
}
