import { createSecureContext } from 'node:tls';
import type { TlsMaterial } from './server';

/** Whether cert and key parse and belong together (OpenSSL checks the pair). */
export function keyPairMatches(m: TlsMaterial): boolean {
  try {
    createSecureContext({ cert: m.cert, key: m.key });
    return true;
  } catch {
    return false;
  }
}
