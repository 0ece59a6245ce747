/**
 * The proxy never forwards to itself: an upstream that is one of this process's own ports on an
 * address of this machine would loop, each hop adding a request and a trace, until sockets run
 * out. Checked once at start (exit 2 naming the URL variable); the decision is a pure function,
 * the addresses it compares come from the OS, the environment and DNS.
 */
import { lookup } from 'node:dns/promises';
import { networkInterfaces, hostname } from 'node:os';
import { isIP } from 'node:net';
import type { Listener, ProxyConfig } from './config';
import { ConfigError, type Env } from '../common/env';
import { POD_ENV } from '../common/sidecar-env';
import { canonicalHost, isLoopbackHost, urlPort } from '../common/url';

export interface OwnEndpoints {
  /** Ports this process listens on, with what each is for. */
  ports: ReadonlyMap<number, string>;
  /** Addresses and names of this machine (pod), in URL.hostname form, without a trailing dot. */
  hosts: ReadonlySet<string>;
}

const bare = (host: string): string => canonicalHost(host).replace(/\.$/, '');

/** The first listener whose upstream is this proxy, with why; `resolved` holds DNS answers per hostname. */
export function findSelfTarget(
  listeners: readonly Listener[],
  own: OwnEndpoints,
  resolved: ReadonlyMap<string, readonly string[]> = new Map(),
): { listener: Listener; reason: string } | undefined {
  for (const listener of listeners) {
    const port = urlPort(listener.upstream);
    const role = own.ports.get(port);
    if (role === undefined) continue;
    const host = listener.upstream.hostname;
    const local = (h: string): boolean => isLoopbackHost(h) || own.hosts.has(bare(h));
    const via = local(host) ? undefined : (resolved.get(host) ?? []).find((a) => local(canonicalHost(a)));
    if (local(host) || via !== undefined) {
      const how = via === undefined ? '' : ` (${host} resolves to ${via})`;
      return { listener, reason: `points at this proxy itself: port ${port} is its own ${role} on this machine${how}; forwarding would loop` };
    }
  }
  return undefined;
}

/** This process's ports (known before listening; port 0 is picked by the OS and cannot be a target). */
export function ownPorts(config: ProxyConfig): Map<number, string> {
  const ports = new Map<number, string>();
  for (const l of config.listeners) if (l.port !== 0) ports.set(l.port, `proxy listener (${l.urlVar})`);
  if (config.adminPort !== 0) ports.set(config.adminPort, 'admin port (ADMIN_PORT)');
  return ports;
}

const LOOKUP_TIMEOUT_MS = 1000;

/**
 * Refuses a configuration that forwards to this proxy: throws ConfigError naming the URL variable.
 * Names that resolve to this machine count too (DNS answers within a second; an unanswered lookup
 * is not an error, since the upstream's DNS may come up after the sidecar).
 */
export async function refuseSelfTarget(config: ProxyConfig, env: Env): Promise<void> {
  const ports = ownPorts(config);
  const bound = config.listeners.map((l) => l.host ?? '');
  const hosts = new Set<string>([hostname(), POD_ENV.ip.read(env) ?? '', POD_ENV.name.read(env) ?? '', config.listenHost, config.adminHost, ...bound].filter(Boolean).map(bare));
  for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) hosts.add(bare(a.address));
  const own: OwnEndpoints = { ports, hosts };
  const names = config.listeners
    .filter((l) => ports.has(urlPort(l.upstream)) && isIP(l.upstream.hostname.replace(/^\[|\]$/g, '')) === 0)
    .map((l) => l.upstream.hostname);
  const resolved = new Map<string, string[]>();
  await Promise.all([...new Set(names)].map(async (name) => resolved.set(name, await resolveQuietly(name))));
  const found = findSelfTarget(config.listeners, own, resolved);
  if (found) throw new ConfigError(found.listener.urlVar, found.reason);
}

async function resolveQuietly(name: string): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string[]>((resolve) => {
    timer = setTimeout(() => resolve([]), LOOKUP_TIMEOUT_MS);
  });
  const answer = lookup(name, { all: true }).then((as) => as.map((a) => a.address), () => []);
  try {
    return await Promise.race([answer, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
