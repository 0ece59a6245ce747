/**
 * Text normalization before detection: NFKC, zero-width and bidi controls stripped, common homoglyphs
 * folded to ASCII. Keeps a map from every normalized index back to the original so matches can be
 * reported (and redacted) on the text the client actually sent.
 *
 * NFKC is applied per code point (not across combining sequences) so every output character has exactly
 * one source character; standalone combining marks are dropped, which also undoes "zalgo" decoration.
 */
export interface NormalizedText {
  original: string;
  text: string;
  /** Map a normalized index to the original index where that character's source starts; text.length maps to original.length. */
  toOriginal(i: number): number;
  /** Map an exclusive normalized end to the exclusive original end (covers the whole source character). */
  toOriginalEnd(i: number): number;
  /** Invisible format characters (zero-width, bidi, tags, soft hyphens) removed from the original; counted before stripping. */
  readonly invisibleCount: number;
}

const NON_ASCII = /[\u0080-\uffff]/;

/** Latin lookalikes from Cyrillic, Greek and a few IPA/Latin-extended letters, plus typographic punctuation. */
const HOMOGLYPHS: Record<string, string> = {
  а: 'a', в: 'b', е: 'e', ё: 'e', һ: 'h', і: 'i', ї: 'i', ј: 'j', к: 'k', м: 'm', н: 'h', о: 'o', п: 'n', р: 'p',
  с: 'c', т: 't', у: 'y', х: 'x', ѕ: 's', ԁ: 'd', ԛ: 'q', ԝ: 'w', ӏ: 'l', ь: 'b',
  А: 'A', В: 'B', Е: 'E', Ё: 'E', З: '3', І: 'I', Ї: 'I', Ј: 'J', К: 'K', М: 'M', Н: 'H', О: 'O', Р: 'P', С: 'C',
  Т: 'T', У: 'Y', Х: 'X', Ѕ: 'S', Ԁ: 'D', Ԛ: 'Q', Ԝ: 'W', Ӏ: 'I',
  α: 'a', β: 'b', γ: 'y', ε: 'e', ι: 'i', κ: 'k', ν: 'v', ο: 'o', ρ: 'p', τ: 't', υ: 'u', χ: 'x', ω: 'w',
  Α: 'A', Β: 'B', Ε: 'E', Ζ: 'Z', Η: 'H', Ι: 'I', Κ: 'K', Μ: 'M', Ν: 'N', Ο: 'O', Ρ: 'P', Τ: 'T', Υ: 'Y', Χ: 'X',
  ı: 'i', ɑ: 'a', ɡ: 'g', ɩ: 'i', ʟ: 'L', ǀ: 'l', ꓲ: 'I',
  '\u2018': "'", '\u2019': "'", '\u201a': "'", '\u201b': "'", '\u2032': "'",
  '\u201c': '"', '\u201d': '"', '\u201e': '"', '\u201f': '"', '\u2033': '"', '\u00ab': '"', '\u00bb': '"',
  '\u2010': '-', '\u2011': '-', '\u2012': '-', '\u2013': '-', '\u2014': '-', '\u2015': '-', '\u2212': '-',
};

/** Zero-width, bidi, invisible operators, BOM, soft hyphen, Mongolian vowel separator, variation selectors, tags. */
function isInvisible(cp: number): boolean {
  return (
    (cp >= 0x200b && cp <= 0x200f) ||
    (cp >= 0x202a && cp <= 0x202e) ||
    (cp >= 0x2060 && cp <= 0x2064) ||
    (cp >= 0x2066 && cp <= 0x206f) ||
    cp === 0xfeff ||
    cp === 0x00ad ||
    cp === 0x180e ||
    cp === 0x034f ||
    cp === 0x061c ||
    (cp >= 0xfe00 && cp <= 0xfe0f) ||
    (cp >= 0xe0000 && cp <= 0xe007f) ||
    (cp >= 0xe0100 && cp <= 0xe01ef)
  );
}

function isCombiningMark(cp: number): boolean {
  return (cp >= 0x0300 && cp <= 0x036f) || (cp >= 0x1ab0 && cp <= 0x1aff) || (cp >= 0x1dc0 && cp <= 0x1dff) || (cp >= 0x20d0 && cp <= 0x20ff);
}

const foldCache = new Map<number, string>();
const FOLD_CACHE_MAX = 4096;

/** NFKC of one code point followed by homoglyph folding of each resulting character. */
function fold(cp: number, ch: string): string {
  const cached = foldCache.get(cp);
  if (cached !== undefined) return cached;
  let out = '';
  for (const c of ch.normalize('NFKC')) {
    const code = c.codePointAt(0) as number;
    if (isInvisible(code) || isCombiningMark(code)) continue;
    out += HOMOGLYPHS[c] ?? c;
  }
  if (foldCache.size >= FOLD_CACHE_MAX) foldCache.clear();
  foldCache.set(cp, out);
  return out;
}

const identityMap = (i: number): number => i;

export function normalizeText(s: string): NormalizedText {
  // Hot path: pure ASCII needs no work and no offset map.
  if (!NON_ASCII.test(s)) return { original: s, text: s, toOriginal: identityMap, toOriginalEnd: identityMap, invisibleCount: 0 };
  const parts: string[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  let invisible = 0;
  let runStart = 0; // start of the pending run of ASCII copied as one slice
  const flushRun = (upTo: number): void => {
    if (upTo <= runStart) return;
    parts.push(s.slice(runStart, upTo));
    for (let k = runStart; k < upTo; k++) {
      starts.push(k);
      ends.push(k + 1);
    }
  };
  let i = 0;
  while (i < s.length) {
    const code = s.charCodeAt(i);
    if (code < 0x80) {
      i++;
      continue;
    }
    flushRun(i);
    const cp = s.codePointAt(i) as number;
    const width = cp > 0xffff ? 2 : 1;
    if (isInvisible(cp)) {
      invisible++;
    } else if (!isCombiningMark(cp)) {
      const out = fold(cp, s.slice(i, i + width));
      if (out.length > 0) {
        parts.push(out);
        for (let k = 0; k < out.length; k++) {
          starts.push(i);
          ends.push(i + width);
        }
      }
    }
    i += width;
    runStart = i;
  }
  flushRun(s.length);
  const text = parts.join('');
  const len = s.length;
  return {
    original: s,
    text,
    toOriginal: (n) => (n >= starts.length ? len : n <= 0 ? (starts.length ? starts[0] : len) : starts[n]),
    toOriginalEnd: (n) => (n <= 0 ? (starts.length ? starts[0] : 0) : n > ends.length ? len : ends[n - 1]),
    invisibleCount: invisible,
  };
}
