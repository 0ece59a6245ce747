import type { NormalizedText } from '../normalize';

export type { NormalizedText };

/** One finding of a detector. Offsets are UTF-16 indexes into the ORIGINAL (un-normalized) text. */
export interface Match {
  /** 'pii' | 'secrets' | 'injection' | 'regex' | 'keywords' | 'size' | a custom detector id. */
  detector: string;
  /** EMAIL, PHONE, CREDIT_CARD, US_SSN, IBAN, IP_ADDRESS, AWS_ACCESS_KEY, HF_TOKEN, ..., PROMPT_INJECTION, JAILBREAK. */
  entity: string;
  start: number;
  end: number;
  /** Confidence 0..1. */
  score: number;
  /** Why it fired (for injection: which signals); never the matched secret itself. */
  reason?: string;
}

export interface ScanOptions {
  /** Only report these entities (default: all the detector knows). */
  entities?: ReadonlySet<string>;
  /** Drop matches scoring below this (default: the detector's own default). */
  threshold?: number;
  /** The text is third-party content (tool results, retrieved documents): weigh indirect-injection signals. */
  untrusted?: boolean;
}

export interface Detector {
  readonly id: string;
  readonly entities: readonly string[];
  scan(text: NormalizedText, opts?: ScanOptions): Match[];
  /**
   * How many trailing UTF-16 units of `text` could still be (part of) a match if more text were appended.
   * 0 for ordinary prose; e.g. a partial "AKIA12", an unfinished run of digits/separators, a word that could
   * still grow "@domain", an opened "-----BEGIN" block. Used by stream holdback.
   */
  pendingTail(text: string): number;
}
