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
  /**
   * Streaming: only matches starting at or after this index count (the text before it was released). Detectors
   * whose matches depend on where the search starts (leftmost, non-overlapping regex matching) start there.
   */
  from?: number;
}

export interface Detector {
  readonly id: string;
  readonly entities: readonly string[];
  /**
   * Entities reported only when asked for by name (`entities` in the scan options), never by "all entities":
   * PII's PERSON and STREET_ADDRESS, which a pack enables on purpose.
   */
  readonly optIn?: readonly string[];
  scan(text: NormalizedText, opts?: ScanOptions): Match[];
  /**
   * Streaming. `text` is NORMALIZED text that may still grow: already-released context followed by the held tail;
   * `from` is the index of its first unreleased character. Returns how many trailing characters must still be
   * held because more input could make a match cover them, or change a match that covers them (grow it, or
   * change its entity or score through context that follows it). 0 when nothing is pending, e.g. for ordinary
   * prose; a partial "AKIA12", an unfinished run of digits, a word that could still grow "@domain", an opened
   * "-----BEGIN" block, a credential assignment whose value is still being written. `entities` are the ones the
   * stream's rules want (undefined = all but the opt-in ones), so a detector holds nothing for entities nobody asked for.
   */
  pendingTail(text: string, from?: number, entities?: ReadonlySet<string>): number;
  /**
   * Streaming: how many characters of already-released text before the held tail the detector must see to
   * decide a match the same way as on the whole text (context words, the name of an assignment).
   */
  readonly lookback: number;
  /**
   * 'document' detectors score the text as a whole (injection) rather than find spans that a later token could
   * complete: a stream decides them over its bounded window as the text arrives, without holding text back.
   */
  readonly scope?: 'document';
}
