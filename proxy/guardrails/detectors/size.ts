import type { Detector } from './types';

export interface SizeLimits {
  maxChars?: number;
  maxTokens?: number;
}

/** Rough token estimate used by size limits: characters / 4, rounded up. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Flags text longer than the limits (entities SIZE_CHARS, SIZE_TOKENS; the match spans the whole text). */
export function createSizeDetector(limits: SizeLimits, id = 'size'): Detector {
  return { id, entities: ['SIZE_CHARS', 'SIZE_TOKENS'], scan: () => [], pendingTail: () => 0 };
}
