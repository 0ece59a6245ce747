/** Size limits: characters and an estimated token count (tokensForChars). */
import { tokensForChars } from '../../protocols/tokens';
import type { NormalizedText } from '../normalize';
import { wanted } from './context';
import type { Detector, Match, ScanOptions } from './types';

export interface SizeLimits {
  maxChars?: number;
  maxTokens?: number;
}

/** Flags text longer than the limits (entities SIZE_CHARS, SIZE_TOKENS); the match spans the whole text, score 1. */
export function createSizeDetector(limits: SizeLimits, id = 'size'): Detector {
  for (const [k, v] of Object.entries(limits)) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new Error(`size limit ${k} must be a non-negative integer, got ${String(v)}`);
  }
  return {
    id,
    entities: ['SIZE_CHARS', 'SIZE_TOKENS'],
    scan(nt: NormalizedText, opts?: ScanOptions): Match[] {
      const text = nt.original;
      const out: Match[] = [];
      if (limits.maxChars !== undefined && text.length > limits.maxChars && wanted(opts, 'SIZE_CHARS')) {
        out.push({ detector: id, entity: 'SIZE_CHARS', start: 0, end: text.length, score: 1, reason: `${text.length} characters > ${limits.maxChars}` });
      }
      const tokens = tokensForChars(text.length);
      if (limits.maxTokens !== undefined && tokens > limits.maxTokens && wanted(opts, 'SIZE_TOKENS')) {
        out.push({ detector: id, entity: 'SIZE_TOKENS', start: 0, end: text.length, score: 1, reason: `~${tokens} tokens > ${limits.maxTokens}` });
      }
      return out;
    },
    pendingTail: () => 0,
    lookback: 0,
  };
}
