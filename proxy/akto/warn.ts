import { createHash } from 'node:crypto';
import type { Exchange, Stage } from '../protocols/exchange';
import { Lru } from '../limits/lru';

/**
 * Akto's `warn` behaviour as its reference clients apply it: the first request is refused with the warning;
 * the identical request sent again (same identity, route and forwarded body) within the window goes through,
 * once. Fingerprints live in a bounded LRU: under a flood of distinct warned requests the oldest are forgotten,
 * and their resubmission is warned again (never let through unwarned).
 */
export class WarnMemory {
  private readonly warned: Lru<{ until: number }>;

  constructor(cap: number, private readonly windowMs: number, private readonly now: () => number = Date.now) {
    this.warned = new Lru(cap);
  }

  /** True (and the warning is used up) when this exact request was warned within the window. */
  acknowledge(fingerprint: string): boolean {
    const entry = this.warned.peek(fingerprint);
    if (!entry || entry.until < this.now()) return false;
    entry.until = 0;
    return true;
  }

  /** Remembers a request that was just refused with a warning. */
  warn(fingerprint: string): void {
    const until = this.now() + this.windowMs;
    const entry = this.warned.get(fingerprint);
    if (entry) entry.until = until;
    else this.warned.add(fingerprint, { until });
  }

  get size(): number {
    return this.warned.size;
  }
}

/** Who sent what where: the phase, identity, route and the body as forwarded (after local redaction). */
export function warnFingerprint(ex: Exchange, phase: Stage, forwardedBody: Buffer): string {
  return createHash('sha256')
    .update(`${phase}\u0000${ex.identity ?? ex.clientAddress}\u0000${ex.method} ${ex.path}\u0000`)
    .update(forwardedBody)
    .digest('base64');
}
