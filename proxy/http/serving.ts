import http from 'node:http';
import https from 'node:https';
import type { Logger } from '../../common/logger';
import { readTlsFiles, TlsFileWatcher } from '../../common/tls-files';

/** LISTEN_TLS_CERT_FILE / LISTEN_TLS_KEY_FILE: the proxied port speaks HTTPS (gateway mode). */
export interface ListenerTls {
  certFile: string;
  keyFile: string;
  /** How often the files are checked for a rotated certificate. */
  reloadMs: number;
}

export interface ServingServer {
  server: http.Server;
  scheme: 'http' | 'https';
  /** Stops watching the certificate files. */
  stop(): void;
}

/**
 * The server of one proxied port: plain HTTP (the sidecar on loopback), or HTTPS when a certificate is
 * configured; `options` carry the client-side limits (timeouts, header size). A rotated certificate (cert-manager renewing the Secret) is picked up without a restart;
 * connections already open keep theirs.
 */
export function createServingServer(tlsFiles: ListenerTls | undefined, logger: Logger, handler: http.RequestListener, options: http.ServerOptions = {}): ServingServer {
  if (!tlsFiles) return { server: http.createServer(options, handler), scheme: 'http', stop: () => undefined };
  const material = readTlsFiles(tlsFiles.certFile, tlsFiles.keyFile, { cert: 'LISTEN_TLS_CERT_FILE', key: 'LISTEN_TLS_KEY_FILE' });
  const server = https.createServer({ ...options, ...material, minVersion: 'TLSv1.2' }, handler);
  const watcher = new TlsFileWatcher(tlsFiles.certFile, tlsFiles.keyFile, tlsFiles.reloadMs, logger, material);
  watcher.start((next) => {
    server.setSecureContext({ ...next, minVersion: 'TLSv1.2' });
    logger.info({ certFile: tlsFiles.certFile }, 'listener certificate reloaded');
  });
  return { server, scheme: 'https', stop: () => watcher.stop() };
}
