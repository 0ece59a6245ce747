import type { AddressInfo, Server } from 'node:net';

/** Binds `server` to host:port; resolves once listening, rejects with the bind error (EADDRINUSE, EACCES, …). */
export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Where a client on this machine reaches a listener bound to `host` (an unspecified address is reached on loopback). */
export function localUrl(server: Server, host: string, scheme = 'http'): string {
  const { port } = server.address() as AddressInfo;
  const name = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `${scheme}://${name}:${port}`;
}
