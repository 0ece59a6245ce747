/**
 * Text normalization before detection: NFKC, zero-width and bidi controls stripped, accents folded on Latin
 * and Greek letters, Unicode TR39 look-alikes folded to ASCII. Keeps a map from every normalized index back to
 * the original so matches can be reported (and redacted) on the text the client actually sent.
 *
 * NFKC is applied per code point (not across combining sequences) so every output character has exactly
 * one source character; standalone combining marks are dropped, which also undoes "zalgo" decoration.
 *
 * Look-alikes are folded per word: a word whose every letter is ASCII or has an ASCII prototype ("іgnоrе",
 * "ᴘʀᴏᴍᴘᴛ") becomes that ASCII word, while a word with one letter of its own script ("игнорируй") keeps all
 * of its letters, so real Russian or Greek text is not turned into half-Latin noise.
 */
import { CONFUSABLE_PAIRS } from './confusables';

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

/** Typographic punctuation folded to ASCII. */
const PUNCTUATION: Record<string, string> = {
  '\u2018': "'", '\u2019': "'", '\u201a': "'", '\u201b': "'", '\u2032': "'",
  '\u201c': '"', '\u201d': '"', '\u201e': '"', '\u201f': '"', '\u2033': '"', '\u00ab': '"', '\u00bb': '"',
  '\u2010': '-', '\u2011': '-', '\u2012': '-', '\u2013': '-', '\u2014': '-', '\u2015': '-', '\u2212': '-',
};

/** Latin letters with a stroke or other mark that NFD does not take apart. */
const LATIN_EXTRA: Record<string, string> = {
  ł: 'l', Ł: 'L', ø: 'o', Ø: 'O', đ: 'd', Đ: 'D', ħ: 'h', Ħ: 'H', ŀ: 'l', Ŀ: 'L', ŧ: 't', Ŧ: 'T', ƀ: 'b', ɨ: 'i', ʉ: 'u',
};

const CONFUSABLE = new Map<string, string>();
{
  const chars = Array.from(CONFUSABLE_PAIRS);
  for (let k = 0; k + 1 < chars.length; k += 2) CONFUSABLE.set(chars[k], chars[k + 1]);
}

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

/** Latin (Latin-1 to Latin Extended-B, Latin Extended Additional) and Greek letters: their accents are folded. */
function foldsAccents(cp: number): boolean {
  return (cp >= 0xc0 && cp <= 0x24f) || (cp >= 0x1e00 && cp <= 0x1eff) || (cp >= 0x370 && cp <= 0x3ff) || (cp >= 0x1f00 && cp <= 0x1fff);
}

const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;
const ASCII_ONLY = /^[\t-~]*$/;

/** What one non-ASCII code point becomes. */
interface Folded {
  /** NFKC, accents folded; look-alikes kept. */
  plain: string;
  /** plain with TR39 look-alikes folded to ASCII. */
  ascii: string;
  /** Part of a word (a letter or digit). */
  word: boolean;
  /** A letter of another script with no ASCII look-alike: its word keeps its look-alikes. */
  foreign: boolean;
}

const foldCache = new Map<number, Folded>();
const FOLD_CACHE_MAX = 4096;

function foldAccents(c: string): string {
  const extra = LATIN_EXTRA[c];
  if (extra !== undefined) return extra;
  const cp = c.codePointAt(0) as number;
  if (!foldsAccents(cp)) return c;
  let out = '';
  for (const d of c.normalize('NFD')) if (!isCombiningMark(d.codePointAt(0) as number)) out += d;
  return out;
}

function foldCodePoint(cp: number, ch: string): Folded {
  const cached = foldCache.get(cp);
  if (cached !== undefined) return cached;
  let plain = '';
  let ascii = '';
  for (const c of ch.normalize('NFKC')) {
    const code = c.codePointAt(0) as number;
    if (isInvisible(code) || isCombiningMark(code)) continue;
    const p = PUNCTUATION[c] ?? foldAccents(c);
    plain += p;
    ascii += CONFUSABLE.get(p) ?? p;
  }
  // Some look-alikes are listed under their own form, not their NFKC form (ϲ is "c", its NFKC ς is not).
  const direct = CONFUSABLE.get(ch);
  if (direct !== undefined) ascii = direct;
  const word = LETTER_OR_DIGIT.test(plain);
  const folded: Folded = { plain, ascii, word, foreign: word && !ASCII_ONLY.test(ascii) };
  if (foldCache.size >= FOLD_CACHE_MAX) foldCache.clear();
  foldCache.set(cp, folded);
  return folded;
}

function isAsciiWordChar(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95;
}

const identityMap = (i: number): number => i;

export function normalizeText(s: string): NormalizedText {
  // Hot path: pure ASCII needs no work and no offset map.
  if (!NON_ASCII.test(s)) return { original: s, text: s, toOriginal: identityMap, toOriginalEnd: identityMap, invisibleCount: 0 };
  const parts: string[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  let invisible = 0;
  const emit = (at: number, width: number, out: string): void => {
    if (out.length === 0) return;
    parts.push(out);
    for (let k = 0; k < out.length; k++) {
      starts.push(at);
      ends.push(at + width);
    }
  };
  // The current word, held back from its first look-alike on until we know whether it has a foreign letter.
  const held: { at: number; width: number; plain: string; ascii: string }[] = [];
  let foreignWord = false;
  const endWord = (): void => {
    for (const h of held) emit(h.at, h.width, foreignWord ? h.plain : h.ascii);
    held.length = 0;
    foreignWord = false;
  };
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
      if (held.length > 0) {
        if (isAsciiWordChar(code)) held.push({ at: i, width: 1, plain: s[i], ascii: s[i] });
        else {
          endWord();
          runStart = i;
          i++;
          continue;
        }
        runStart = i + 1;
      } else if (!isAsciiWordChar(code)) foreignWord = false;
      i++;
      continue;
    }
    flushRun(i);
    const cp = s.codePointAt(i) as number;
    const width = cp > 0xffff ? 2 : 1;
    if (isInvisible(cp)) invisible++;
    else if (!isCombiningMark(cp)) {
      const f = foldCodePoint(cp, s.slice(i, i + width));
      if (!f.word) {
        endWord();
        emit(i, width, f.ascii);
      } else {
        if (f.foreign) foreignWord = true;
        if (held.length > 0 || (f.ascii !== f.plain && !foreignWord)) held.push({ at: i, width, plain: f.plain, ascii: f.ascii });
        else emit(i, width, f.plain);
      }
    }
    i += width;
    runStart = i;
  }
  endWord();
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

/**
 * Letters of other scripts that read as a Latin letter but that TR39 does not list as its look-alike (or lists only
 * in the other case): shapes a reader takes for the Latin letter in running Latin text.
 */
const MIXED_SCRIPT_LOOKALIKES: Record<string, string> = {
  // Greek
  ε: 'e', ϵ: 'e', η: 'n', κ: 'k', ϰ: 'k', τ: 't', ω: 'w', ϖ: 'w', μ: 'u', π: 'n', ς: 'c', χ: 'x', β: 'b', ϐ: 'b', δ: 'd', θ: 'o', λ: 'a', ξ: 'e', ζ: 'z',
  // Cyrillic
  в: 'b', д: 'g', и: 'u', й: 'u', к: 'k', л: 'n', м: 'm', н: 'h', п: 'n', т: 't', ц: 'u', ш: 'w', щ: 'w', ъ: 'b', ь: 'b', ы: 'b', э: 'e', є: 'e', я: 'r', ђ: 'h', ћ: 'h', ґ: 'r', ў: 'y', џ: 'u', љ: 'n', њ: 'h', ԛ: 'q',
  И: 'N', Й: 'N', Л: 'N', П: 'N', Я: 'R', Ц: 'U', Ш: 'W', Щ: 'W', Є: 'E', Э: 'E', Ђ: 'T', Ћ: 'T', Џ: 'U', Д: 'A',
  // Armenian
  լ: 'l', յ: 'j', ր: 'n', ի: 'h', ն: 'u', ղ: 'n', ճ: 'd', ւ: 'i', Լ: 'L', Ո: 'N', Ա: 'U', Ց: 'G', Ձ: 'Q',
};

type Script = 'latin' | 'greek' | 'cyrillic' | 'armenian' | 'cherokee' | 'other' | 'none';

/** The script of a letter (none: not a letter, or a digit or mark shared by all scripts). */
function scriptOf(cp: number, ch: string): Script {
  if ((cp >= 65 && cp <= 90) || (cp >= 97 && cp <= 122) || (cp >= 0xc0 && cp <= 0x2af && cp !== 0xd7 && cp !== 0xf7) || (cp >= 0x1d00 && cp <= 0x1eff)) return 'latin';
  if (cp < 0x370) return 'none';
  if (cp <= 0x3ff || (cp >= 0x1f00 && cp <= 0x1fff)) return 'greek';
  if (cp <= 0x52f || (cp >= 0x1c80 && cp <= 0x1c8f) || (cp >= 0xa640 && cp <= 0xa69f)) return 'cyrillic';
  if (cp <= 0x58f) return 'armenian';
  if ((cp >= 0x13a0 && cp <= 0x13ff) || (cp >= 0xab70 && cp <= 0xabbf)) return 'cherokee';
  return LETTER.test(ch) ? 'other' : 'none';
}

const LETTER = /\p{L}/u;

/** The ASCII letter a letter of another script passes for, or undefined. */
function lookalikeOf(ch: string): string | undefined {
  const base = ch.normalize('NFD')[0]; // ё, ї, ӧ: the letter under the mark
  for (const c of base === ch ? [ch] : [ch, base]) {
    const direct = MIXED_SCRIPT_LOOKALIKES[c] ?? CONFUSABLE.get(c);
    if (direct !== undefined) return direct;
    // Listed in the other case only (κ as Κ, т as Т, Cherokee small letters as capitals): the same shape in this case.
    const upper = c.toUpperCase();
    const lower = c.toLowerCase();
    const partner = c === lower ? CONFUSABLE.get(upper)?.toLowerCase() : CONFUSABLE.get(lower)?.toUpperCase();
    if (partner !== undefined && /^[A-Za-z]$/.test(partner)) return partner;
  }
  return undefined;
}

const lookalikeCache = new Map<number, { script: Script; ascii: string | undefined }>();

function letterInfo(cp: number, ch: string): { script: Script; ascii: string | undefined } {
  let info = lookalikeCache.get(cp);
  if (info === undefined) {
    const script = scriptOf(cp, ch);
    info = { script, ascii: script !== 'none' ? lookalikeOf(ch) : undefined }; // Latin small capitals (ᴦ, ʀ) too
    if (lookalikeCache.size >= FOLD_CACHE_MAX) lookalikeCache.clear();
    lookalikeCache.set(cp, info);
  }
  return info;
}

/** A letter of a script other than Latin, or a high surrogate (letters beyond the BMP). */
const OTHER_SCRIPT = /[\u0370-\u058f\u13a0-\u13ff\u1c80-\u1c8f\u1f00-\u1fff\ua640-\ua69f\uab70-\uabbf\ud800-\udbff]/;

/**
 * For the injection scan: words that mix scripts ("ignorε", "prεvιουs", "igпore") have their letters of other
 * scripts folded to the Latin letters they pass for, including look-alikes TR39 does not list. Real Greek,
 * Russian or Armenian words use one script and are left as they are; so is text without such letters (returned
 * as is). Indexes map back through `nt` to the original text.
 */
export function foldMixedScriptWords(nt: NormalizedText): NormalizedText {
  const s = nt.text;
  if (!OTHER_SCRIPT.test(s)) return nt;
  let out = '';
  let from = 0; // start of s not yet copied to out
  const shifts: number[] = []; // out indexes where a two-unit letter became one: positions after it map one further
  let i = 0;
  while (i < s.length) {
    // One word: letters, digits and marks; note its scripts.
    let j = i;
    let scripts = 0;
    let first: Script | undefined;
    let foldable = false;
    while (j < s.length) {
      const cp = s.codePointAt(j) as number;
      const w = cp > 0xffff ? 2 : 1;
      if (cp < 0x80) {
        if ((cp | 32) >= 97 && (cp | 32) <= 122) {
          if (first === undefined) first = 'latin';
          else if (first !== 'latin') scripts |= 2;
        } else if (!(cp >= 48 && cp <= 57)) break;
      } else {
        const info = letterInfo(cp, s.slice(j, j + w));
        if (info.script === 'none') {
          if (!isCombiningMark(cp)) break;
        } else {
          if (first === undefined) first = info.script;
          else if (first !== info.script) scripts |= 2;
          if (info.ascii !== undefined) foldable = true;
        }
      }
      j += w;
    }
    if (j === i) {
      i += (s.codePointAt(i) as number) > 0xffff ? 2 : 1;
      continue;
    }
    if (scripts !== 0 && foldable) {
      out += s.slice(from, i);
      for (let k = i; k < j; ) {
        const cp = s.codePointAt(k) as number;
        const w = cp > 0xffff ? 2 : 1;
        const ascii = cp >= 0x80 ? letterInfo(cp, s.slice(k, k + w)).ascii : undefined;
        if (ascii === undefined) out += s.slice(k, k + w);
        else {
          out += ascii;
          if (w === 2) shifts.push(out.length);
        }
        k += w;
      }
      from = j;
    }
    i = j;
  }
  if (from === 0) return nt;
  out += s.slice(from);
  // Same length (every folded letter was one unit): indexes are the normalized text's own.
  if (shifts.length === 0) return { ...nt, text: out };
  const toNormalized = (n: number): number => {
    let shift = 0;
    for (const at of shifts) if (at <= n) shift++;
    return n + shift;
  };
  return { ...nt, text: out, toOriginal: (n) => nt.toOriginal(toNormalized(n)), toOriginalEnd: (n) => nt.toOriginalEnd(toNormalized(n)) };
}
