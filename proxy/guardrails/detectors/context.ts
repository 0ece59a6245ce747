/** Helpers shared by the detectors: context-word windows, character classes, entity filtering. */
import type { Match, ScanOptions } from './types';

/** True when `re` (built from a word list, no global flag) matches within `before` chars before or `after` chars after the span. */
export function contextNear(text: string, start: number, end: number, re: RegExp, before = 48, after = 24): boolean {
  const lo = Math.max(0, start - before);
  const hi = Math.min(text.length, end + after);
  return re.test(text.slice(lo, start)) || re.test(text.slice(end, hi));
}

/** Case-insensitive whole-word alternation of `words`. */
export function wordsRegex(words: readonly string[]): RegExp {
  return new RegExp(`(?:^|[^a-z0-9])(?:${words.map(escapeRegex).join('|')})(?:$|[^a-z0-9])`, 'i');
}

export function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

export function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

export function isAlpha(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

export function isAlnum(c: number): boolean {
  return isDigit(c) || isAlpha(c);
}

/** Word character for boundary checks: ASCII alnum or underscore. */
export function isWordChar(c: number): boolean {
  return isAlnum(c) || c === 95;
}

/**
 * Characters of a stream's recent text that document-scope detectors (injection, toxicity, harmful intent) score
 * a streamed answer over as it grows.
 */
export const DOCUMENT_WINDOW = 2048;

/** The scan options ask for `entity`: by name, or by asking for all (undefined) when it is not an opt-in entity. */
export function wanted(opts: ScanOptions | undefined, entity: string, optIn?: readonly string[]): boolean {
  return opts?.entities ? opts.entities.has(entity) : !optIn?.includes(entity);
}

export function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

/** Keep matches at or above the threshold, sorted by start. */
export function finish(matches: Match[], threshold: number): Match[] {
  const kept = matches.filter((m) => m.score >= threshold);
  kept.sort((a, b) => a.start - b.start || b.end - a.end);
  return kept;
}
