import type { WindowLimit } from './policy';

/**
 * A token bucket holding `limit` units that refills `limit` units per window, continuously.
 * Refill is computed as elapsed * limit / window (multiply first) so whole-number steps are
 * exact. The level may go below zero when real usage turns out larger than admitted: that
 * debt is paid back by refill before the next admission.
 */
export interface Bucket {
  level: number;
  at: number;
}

export function newBucket(limit: WindowLimit, now: number): Bucket {
  return { level: limit.limit, at: now };
}

/** Brings the bucket up to `now`. */
export function refill(b: Bucket, limit: WindowLimit, now: number): void {
  if (now > b.at) {
    b.level = Math.min(limit.limit, b.level + ((now - b.at) * limit.limit) / limit.windowMs);
    b.at = now;
  } else if (b.level > limit.limit) {
    b.level = limit.limit; // the policy lowered the limit
  }
}

/**
 * Can `cost` units be taken now (after refill)? A cost larger than the whole bucket is let
 * through when the bucket is full, so one big request is never starved forever.
 */
export function canTake(b: Bucket, limit: WindowLimit, cost: number): boolean {
  return b.level >= cost || (cost > limit.limit && b.level >= limit.limit);
}

/** Milliseconds until canTake(cost) becomes true (after refill). */
export function msUntil(b: Bucket, limit: WindowLimit, cost: number): number {
  const need = Math.min(cost, limit.limit) - b.level;
  // The epsilon keeps float noise (7000.000001) from adding a whole millisecond, then a second.
  return need <= 0 ? 0 : Math.ceil((need * limit.windowMs) / limit.limit - 1e-6);
}

/** Milliseconds until the bucket is full again (the x-ratelimit-reset-* value). */
export function msUntilFull(b: Bucket, limit: WindowLimit): number {
  return msUntil(b, limit, limit.limit);
}
