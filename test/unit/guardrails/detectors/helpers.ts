import { normalizeText } from '../../../../proxy/guardrails/normalize';
import type { Detector, Match, ScanOptions } from '../../../../proxy/guardrails/detectors';

/** Scan `text` and return [entity, matched original substring] pairs. */
export function found(d: Detector, text: string, opts?: ScanOptions): [string, string][] {
  return d.scan(normalizeText(text), opts).map((m: Match) => [m.entity, text.slice(m.start, m.end)]);
}

/**
 * Deterministic pseudo-random token of `n` characters, so tests carry no real-looking credential literals
 * in the repository while still exercising entropy and format checks.
 */
export function token(n: number, alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', seed = 42): string {
  let x = seed;
  let out = '';
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out += alphabet[(x >> 8) % alphabet.length];
  }
  return out;
}
