/**
 * Encodings that hide text from a plain scan and that both the injection and the secrets detectors undo before
 * rescanning: base64 (any grouping, base64url) and hex byte runs (\x.., 0x.., %.., separated or not). Each is
 * found behind a cheap gate, so prose pays two regex tests; decodes that do not come out as text are dropped.
 */

export type Decoding = 'base64' | 'hex' | 'url' | 'html' | 'qp' | 'markup' | 'joined' | 'split' | 'rot13' | 'reversed' | 'spaced' | 'morse' | 'escaped';

export interface Decoded {
  how: Decoding;
  /** Span of the encoded text in the scanned text. */
  start: number;
  end: number;
  text: string;
}

export const MAX_DECODED = 8192;
/** Base64 or hex shorter than this cannot hold an instruction worth the decode. */
export const MIN_ENCODED = 16;

/** A decoded byte string is text when nearly all of it is printable ASCII or UTF-8. */
export function printable(s: string): boolean {
  if (s.length < 6) return false;
  let ok = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 32 && c < 127) || c === 10 || c === 13 || c === 9 || c >= 0xa0) ok++;
  }
  return ok / s.length > 0.9 && /[a-z]{3}/i.test(s);
}

export function utf8(bytes: Buffer): string {
  const s = bytes.toString('utf8');
  return s.includes('\ufffd') ? bytes.toString('latin1') : s;
}

function isB64(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47 || c === 61 || c === 45 || c === 95;
}

/**
 * Runs of base64 groups: tokens of the base64 alphabet separated by single spaces, line breaks or tabs, that
 * do not read as words (a capital or digit after the first character, or `+ / =`). Their concatenation is
 * decoded whatever the grouping (4, 5, 76 per line …).
 */
function base64Runs(t: string, out: Decoded[], limit: number): void {
  const n = t.length;
  let i = 0;
  while (i < n && out.length < limit) {
    if (!isB64(t.charCodeAt(i)) || (i > 0 && isB64(t.charCodeAt(i - 1)))) {
      i++;
      continue;
    }
    // groups: [start, end, odd]; a group that reads as a word is kept only inside a run and when its length is a multiple of 4
    const groups: [number, number, boolean][] = [];
    let j = i;
    for (;;) {
      let k = j;
      let odd = false;
      while (k < n && isB64(t.charCodeAt(k))) {
        const c = t.charCodeAt(k);
        // "q=SWdu…", "key=SWdu…": an '=' that is not padding ends a name, and the run starts after it.
        if (c === 61 && groups.length === 0 && isB64(t.charCodeAt(k + 1)) && t.charCodeAt(k + 1) !== 61) {
          j = k + 1;
          odd = false;
          k++;
          continue;
        }
        if ((k > j && c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 43 || c === 47 || c === 61) odd = true;
        k++;
      }
      const len = k - j;
      if (!(odd && len >= 2) && !(len >= 24) && len % 4 !== 0) break;
      groups.push([j, k, odd || len >= 24]);
      const sep = t.charCodeAt(k);
      if ((sep === 32 || sep === 10 || sep === 9) && k + 1 < n && isB64(t.charCodeAt(k + 1))) j = k + 1;
      else if (sep === 13 && t.charCodeAt(k + 1) === 10 && isB64(t.charCodeAt(k + 2))) j = k + 2;
      else break;
    }
    // a run that fails is not retried from each of its words: that would be quadratic in a run of prose words
    const scanned = groups.length > 0 ? groups[groups.length - 1][1] : i + 1;
    while (groups.length > 0 && !groups[groups.length - 1][2]) groups.pop();
    const odd = groups.filter((g) => g[2]).length;
    const end = groups.length > 0 ? groups[groups.length - 1][1] : scanned;
    if (groups.length > 0 && odd * 2 >= groups.length) {
      const raw = t.slice(groups[0][0], end).replace(/\s+/g, '');
      if (raw.length >= MIN_ENCODED) {
        const text = utf8(Buffer.from(raw.replace(/-/g, '+').replace(/_/g, '/').slice(0, (MAX_DECODED * 4) / 3), 'base64'));
        if (printable(text)) out.push({ how: 'base64', start: groups[0][0], end, text });
      }
    }
    i = Math.max(end, scanned) + 1;
  }
}

const BASE64_HINT = /[a-z][A-Z]|[0-9][A-Za-z][0-9]|[A-Za-z0-9][+/][A-Za-z0-9]/;
const HEX_HINT = /[2-7][0-9a-f][\s,:]?(?:\\x|0x|%)?[2-7][0-9a-f][\s,:]?(?:\\x|0x|%)?[2-7][0-9a-f]/i;

export function hexDigit(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

/**
 * Runs of hex byte pairs, each optionally written \x.. / 0x.. / %.. and followed by one separator (space, comma,
 * colon): at least 16 digits. One loop, no regex, so prose (whose words break a run at once) pays little.
 */
function hexRuns(t: string, out: Decoded[], limit: number): void {
  const n = t.length;
  let i = 0;
  while (i < n && out.length < limit) {
    // a run starts at a word boundary: skip the inside of words cheaply
    if (i > 0 && hexDigit(t.charCodeAt(i - 1))) {
      i++;
      continue;
    }
    const start = i;
    let digits = '';
    let url = false;
    let j = i;
    for (;;) {
      let k = j;
      if (t[k] === '\\' && (t[k + 1] === 'x' || t[k + 1] === 'X')) k += 2;
      else if (t[k] === '0' && (t[k + 1] === 'x' || t[k + 1] === 'X') && hexDigit(t.charCodeAt(k + 2))) k += 2;
      else if (t[k] === '%') {
        k += 1;
        url = true;
      }
      if (!hexDigit(t.charCodeAt(k)) || !hexDigit(t.charCodeAt(k + 1))) break;
      digits += t.slice(k, k + 2);
      j = k + 2;
      const sep = t.charCodeAt(j);
      if (sep === 32 || sep === 44 || sep === 58) j++;
    }
    if (digits.length >= MIN_ENCODED && !/^\d+$/.test(digits)) {
      const text = utf8(Buffer.from(digits.slice(0, MAX_DECODED * 2), 'hex'));
      // The span ends at the last digit, not at the separator after it.
      const end = hexDigit(t.charCodeAt(j - 1)) ? j : j - 1;
      if (printable(text)) out.push({ how: url ? 'url' : 'hex', start, end, text });
    }
    i = j > start ? j : start + 1;
  }
}

/** Base64 and hex runs in `t` that decode to text, appended to `out` while it holds fewer than `limit`. */
export function encodedRuns(t: string, out: Decoded[], limit: number): void {
  // Cheap gates: base64 shows a capital after a small letter (or a digit between letters, + or / inside); hex of text has a digit 2-7 leading
  // every byte. Prose passes neither, so it pays two regex tests, not the run loops.
  if (BASE64_HINT.test(t)) base64Runs(t, out, limit);
  if (out.length < limit && HEX_HINT.test(t)) hexRuns(t, out, limit);
}

/**
 * One base64 / base64url word of at least 20 characters, or such words wrapped over lines (76 columns, PEM-style).
 * Unlike base64Runs, words next to it on the same line are never part of it: the span is the encoded text exactly.
 * It may follow '=' (`key=…`, `?t=…`): a block ends at its padding, so one starting after an '=' cuts no other in two.
 */
const BASE64_BLOCK = /(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{20,}={0,2}(?:\r?\n[A-Za-z0-9+/_-]{4,}={0,2})*(?![A-Za-z0-9+/=_-])/g;

/**
 * Base64 blocks and hex runs in `t` that decode to text: what a secret in an answer may be encoded as. `longWords`:
 * the text has a space-free stretch long enough to hold a base64 block (the caller's token walk saw one); `hexHinted`:
 * it may hold hex (such a stretch, escapes, or bytes parted by spaces).
 */
export function encodedBlocks(t: string, out: Decoded[], limit: number, longWords: boolean, hexHinted: boolean): void {
  if (longWords && BASE64_HINT.test(t)) {
    BASE64_BLOCK.lastIndex = 0;
    let m: RegExpExecArray | null;
    while (out.length < limit && (m = BASE64_BLOCK.exec(t)) !== null) {
      const raw = m[0].replace(/\s+/g, '');
      // Random tokens are base64-like too: only a decode that reads as text is a candidate.
      const text = utf8(Buffer.from(raw.replace(/-/g, '+').replace(/_/g, '/').slice(0, (MAX_DECODED * 4) / 3), 'base64'));
      if (printable(text)) out.push({ how: 'base64', start: m.index, end: m.index + m[0].length, text });
    }
  }
  if (out.length < limit && hexHinted && HEX_HINT.test(t)) hexRuns(t, out, limit);
}

/** A JavaScript / JSON / C escape: \\u0067, \\u{67}, octal \\147 (hex \\x67 is hexRuns'). */
const ESCAPE = /\\u([0-9A-Fa-f]{4})|\\u\{([0-9A-Fa-f]{1,6})\}|\\([0-7]{2,3})/g;
const ESCAPE_SOURCE = '(?:\\\\u[0-9A-Fa-f]{4}|\\\\u\\{[0-9A-Fa-f]{1,6}\\}|\\\\[0-7]{2,3})';
/** Four or more escapes, with up to three literal characters between them. */
const ESCAPE_RUN = new RegExp(`${ESCAPE_SOURCE}(?:[^\\\\\\s"'\`]{0,3}${ESCAPE_SOURCE}){3,}`, 'g');

/** `t` with its escapes decoded. */
export function unescape(t: string): string {
  return t.replace(ESCAPE, (m, u: string | undefined, braced: string | undefined, octal: string | undefined) => {
    const code = u !== undefined ? parseInt(u, 16) : braced !== undefined ? parseInt(braced, 16) : parseInt(octal as string, 8);
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : m;
  });
}

/** Runs of four or more escapes (\\u0067\\u0068…, \\147\\150…) that decode to text. */
export function escapeRuns(t: string, out: Decoded[], limit: number): void {
  if (t.indexOf('\\') === -1) return;
  ESCAPE_RUN.lastIndex = 0;
  let m: RegExpExecArray | null;
  while (out.length < limit && (m = ESCAPE_RUN.exec(t)) !== null) {
    const text = unescape(m[0].slice(0, MAX_DECODED * 6));
    if (printable(text)) out.push({ how: 'escaped', start: m.index, end: m.index + m[0].length, text });
  }
}
