/**
 * Serving cert and key from files (the webhook's provided / cert-manager modes, the proxy's
 * LISTEN_TLS_* listener), re-read when they change.
 * Kubernetes updates mounted Secrets by swapping a symlink, so the files are polled by content
 * (fs.watch misses symlink swaps); a half-updated pair is skipped until both halves match.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ConfigError } from './env';
import type { Logger } from './logger';

/** PEM certificate chain and private key. */
export interface TlsMaterial {
  cert: string;
  key: string;
}

/** Whether cert and key parse and belong together (OpenSSL checks the pair). */
export function keyPairMatches(m: TlsMaterial): boolean {
  try {
    createSecureContext({ cert: m.cert, key: m.key });
    return true;
  } catch {
    return false;
  }
}

/** Reads and checks the pair; problems are ConfigErrors naming the variable that holds the path. */
export function readTlsFiles(certFile: string, keyFile: string, vars = { cert: 'TLS_CERT_FILE', key: 'TLS_KEY_FILE' }): TlsMaterial {
  const read = (path: string, env: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(env, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const material = { cert: read(certFile, vars.cert), key: read(keyFile, vars.key) };
  if (!keyPairMatches(material)) throw new ConfigError(vars.key, `${keyFile} is not a valid PEM key for the certificate in ${certFile}`);
  return material;
}

export class TlsFileWatcher {
  private timer?: NodeJS.Timeout;
  private current: TlsMaterial;

  constructor(
    private readonly certFile: string,
    private readonly keyFile: string,
    private readonly intervalMs: number,
    private readonly logger: Logger,
    initial: TlsMaterial,
  ) {
    this.current = initial;
  }

  /** Calls onChange with each new valid pair; returns immediately. */
  start(onChange: (m: TlsMaterial) => void): void {
    this.timer = setInterval(() => {
      let next: TlsMaterial;
      try {
        next = { cert: readFileSync(this.certFile, 'utf8'), key: readFileSync(this.keyFile, 'utf8') };
      } catch (err) {
        this.logger.warn({ err: (err as NodeJS.ErrnoException).code }, 'cannot read the TLS files; keeping the current certificate');
        return;
      }
      if (next.cert === this.current.cert && next.key === this.current.key) return;
      if (!keyPairMatches(next)) return; // mid-update: wait for the other half
      this.current = next;
      onChange(next);
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
