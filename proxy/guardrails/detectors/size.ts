/** Size limits: characters and an estimated token count (tokensForChars). */
import { tokensForChars } from '../../protocols/tokens';
import type { NormalizedText } from '../normalize';
import { wanted } from './context';
import type { Detector, Match, ScanOptions } from './types';

export interface SizeLimits {
  maxChars?: number;
  maxTokens?: number;
}

/** What a size limit found: the entity and why. Characters are judged first, then estimated tokens. */
export interface SizeExcess {
  entity: 'SIZE_CHARS' | 'SIZE_TOKENS';
  reason: string;
}

/**
 * The one size judgement, for size rules over a whole stage (engine, stream holdback) and for the detector below:
 * the limits that `chars` characters, or `tokens` estimated tokens, exceed.
 */
export function exceededSize(limits: SizeLimits, chars: number, tokens: number): SizeExcess[] {
  const out: SizeExcess[] = [];
  if (limits.maxChars !== undefined && chars > limits.maxChars) out.push({ entity: 'SIZE_CHARS', reason: `${chars} characters > max_chars ${limits.maxChars}` });
  if (limits.maxTokens !== undefined && tokens > limits.maxTokens) out.push({ entity: 'SIZE_TOKENS', reason: `~${tokens} tokens > max_tokens ${limits.maxTokens}` });
  return out;
}

/**
 * A detector over one text (entities SIZE_CHARS, SIZE_TOKENS; the match spans the whole text, score 1), for library
 * use. Policy size rules do not compile to it: they measure everything a stage carries, summed over its texts.
 */
export function createSizeDetector(limits: SizeLimits, id = 'size'): Detector {
  for (const [k, v] of Object.entries(limits)) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new Error(`size limit ${k} must be a non-negative integer, got ${String(v)}`);
  }
  return {
    id,
    entities: ['SIZE_CHARS', 'SIZE_TOKENS'],
    scan(nt: NormalizedText, opts?: ScanOptions): Match[] {
      const text = nt.original;
      return exceededSize(limits, text.length, tokensForChars(text.length))
        .filter((e) => wanted(opts, e.entity))
        .map((e) => ({ detector: id, entity: e.entity, start: 0, end: text.length, score: 1, reason: e.reason }));
    },
    pendingTail: () => 0,
    lookback: 0,
  };
}
