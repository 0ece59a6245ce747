/**
 * Decode-and-rescan for the injection detector: finds text that hides an instruction behind an encoding
 * (base64 at any grouping, hex, percent-encoding) or a transformation (rot13, reversed, letters spelled out
 * with separators, words run together) and returns the plain text to scan again. Bounded: at most
 * MAX_CANDIDATES decodes of at most MAX_DECODED characters each, and rot13 / reversal only when the word scan
 * saw one of their tell-tale words (so ordinary text pays nothing).
 */

export type Decoding = 'base64' | 'hex' | 'url' | 'html' | 'qp' | 'markup' | 'joined' | 'split' | 'rot13' | 'reversed' | 'spaced' | 'morse';

export interface Decoded {
  how: Decoding;
  /** Span of the encoded text in the scanned text. */
  start: number;
  end: number;
  text: string;
}

export const MAX_CANDIDATES = 8;
const MAX_DECODED = 8192;
/** Base64 or hex shorter than this cannot hold an instruction worth the decode. */
const MIN_ENCODED = 16;

/** A decoded byte string is text when nearly all of it is printable ASCII or UTF-8. */
function printable(s: string): boolean {
  if (s.length < 6) return false;
  let ok = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 32 && c < 127) || c === 10 || c === 13 || c === 9 || c >= 0xa0) ok++;
  }
  return ok / s.length > 0.9 && /[a-z]{3}/i.test(s);
}

function utf8(bytes: Buffer): string {
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
function base64Runs(t: string, out: Decoded[]): void {
  const n = t.length;
  let i = 0;
  while (i < n && out.length < MAX_CANDIDATES) {
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

function hexDigit(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

/**
 * Runs of hex byte pairs, each optionally written \x.. / 0x.. / %.. and followed by one separator (space, comma,
 * colon): at least 16 digits. One loop, no regex, so prose (whose words break a run at once) pays little.
 */
function hexRuns(t: string, out: Decoded[]): void {
  const n = t.length;
  let i = 0;
  while (i < n && out.length < MAX_CANDIDATES) {
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
      if (printable(text)) out.push({ how: url ? 'url' : 'hex', start, end: j, text });
    }
    i = j > start ? j : start + 1;
  }
}

/** A token of URL-safe characters and %XX escapes: what encodeURIComponent or a form encoder writes. */
const URL_TOKEN = /(?:%[0-9A-Fa-f]{2}|[A-Za-z0-9._~!*'()+-])+/g;
const URL_ESCAPE = /%[0-9A-Fa-f]{2}/g;

/**
 * Percent-encoded text whose letters stay literal ("Ignore%20all%20previous%20instructions", form-style "+" for
 * spaces): tokens with at least two escapes, decoded as a URL parser would. Fully escaped runs are hexRuns' own.
 */
function urlTextRuns(t: string, out: Decoded[]): void {
  for (const m of t.matchAll(URL_TOKEN)) {
    if (out.length >= MAX_CANDIDATES) return;
    const token = m[0];
    if (token.length < MIN_ENCODED || (token.match(URL_ESCAPE)?.length ?? 0) < 2) continue;
    const start = m.index ?? 0;
    const end = start + token.length;
    if (out.some((d) => d.start === start && d.end === end)) continue;
    const bytes: number[] = [];
    const raw = token.slice(0, MAX_DECODED * 3).replace(/\+/g, ' ');
    for (let i = 0; i < raw.length; i++) {
      if (raw[i] === '%' && hexDigit(raw.charCodeAt(i + 1)) && hexDigit(raw.charCodeAt(i + 2))) {
        bytes.push(parseInt(raw.slice(i + 1, i + 3), 16));
        i += 2;
      } else bytes.push(raw.charCodeAt(i));
    }
    const text = utf8(Buffer.from(bytes));
    if (printable(text)) out.push({ how: 'url', start, end, text });
  }
}

const HTML_ENTITY = /&#(?:[xX]([0-9A-Fa-f]{1,6})|([0-9]{1,7}));?|&(amp|lt|gt|quot|apos|nbsp);/g;
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };
const QP_ESCAPE = /=([0-9A-F]{2})|=\r?\n/g;
/** A plain character class is far cheaper than INWORD_MARKUP's Unicode lookarounds: text without any mark skips it. */
const MARKUP_MARK = /[*_`~]/;
/** Emphasis or code marks inside a word ("Ig**nore**", "sys_tem_", "in`struc`tions"): a renderer and a model both read the word. */
const INWORD_MARKUP = /([\p{L}\p{N}])[*_`~]+(?=[\p{L}\p{N}])|([\p{L}\p{N}])[*_`~]+(?=[\s.,;:!?]|$)|(^|[\s(])[*_`~]+(?=[\p{L}\p{N}])/gu;

function count(t: string, re: RegExp, atLeast: number): boolean {
  re.lastIndex = 0;
  let n = 0;
  while (re.exec(t) !== null) if (++n >= atLeast) return true;
  return false;
}

/**
 * Whole-text decodings a model reads through: HTML character references, quoted-printable (=20), and emphasis
 * marks splitting words. Each is tried only when the text has several of them.
 */
function markupDecodings(t: string, out: Decoded[]): void {
  if (out.length < MAX_CANDIDATES && t.includes('&') && count(t, HTML_ENTITY, 2)) {
    const text = t.replace(HTML_ENTITY, (m, hex: string | undefined, dec: string | undefined, name: string | undefined) => {
      if (name) return NAMED[name];
      const code = hex ? parseInt(hex, 16) : Number(dec);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : m;
    });
    out.push({ how: 'html', start: 0, end: t.length, text });
  }
  if (out.length < MAX_CANDIDATES && t.includes('=') && count(t, QP_ESCAPE, 2)) {
    out.push({ how: 'qp', start: 0, end: t.length, text: t.replace(QP_ESCAPE, (_m, hex: string | undefined) => (hex ? String.fromCharCode(parseInt(hex, 16)) : '')) });
  }
  if (out.length < MAX_CANDIDATES && MARKUP_MARK.test(t) && count(t, INWORD_MARKUP, 2)) {
    out.push({ how: 'markup', start: 0, end: t.length, text: t.replace(INWORD_MARKUP, (_m, a: string | undefined, b: string | undefined, c: string | undefined) => a ?? b ?? c ?? '') });
  }
}

/**
 * Words of an instruction, for reading words run together without spaces ("ignorepreviousinstructions"): a
 * long run of small letters is split only when these words make up all of it.
 */
const RUN_TOGETHER_WORDS = new Set(
  (
    'ignore disregard forget skip override bypass drop abandon stop all any every the your my our these those this that previous prior ' +
    'above earlier preceding former original initial instructions instruction rules rule guidelines directives orders constraints ' +
    'restrictions filters safety policy policies system prompt prompts message messages text hidden secret secrets password passwords ' +
    'reveal show print output display leak repeat tell give send email forward me us you are now and then to of in from with as ' +
    'act pretend developer mode jailbreak unrestricted anything do say write everything before was were is be new'
  ).split(' '),
);
const LONGEST_WORD = Math.max(...[...RUN_TOGETHER_WORDS].map((w) => w.length));

/** `run` as three or more RUN_TOGETHER_WORDS, or undefined (a dynamic programme over where words may end). */
function splitRunTogether(run: string): string | undefined {
  const n = run.length;
  const from = new Int16Array(n + 1).fill(-1);
  from[0] = 0;
  for (let end = 1; end <= n; end++) {
    for (let len = Math.min(LONGEST_WORD, end); len >= 1; len--) {
      if (from[end - len] !== -1 && RUN_TOGETHER_WORDS.has(run.slice(end - len, end))) {
        from[end] = end - len;
        break;
      }
    }
  }
  if (from[n] === -1) return undefined;
  const words: string[] = [];
  for (let end = n; end > 0; end = from[end]) words.push(run.slice(from[end], end));
  return words.length >= 3 ? words.reverse().join(' ') : undefined;
}

/** Three or more words joined by dots or semicolons (spaced or not), or a long run of letters (camelCase humps, words run together). */
const JOINED_TOKEN = /(?<![A-Za-z])(?:[A-Za-z]+(?:[ \t]*[.;]+[ \t]*[A-Za-z]+){2,}|[A-Za-z]{12,})/g;
const CAMEL_HUMP = /([a-z])(?=[A-Z])/g;

/**
 * Words a model reads although nothing spaces them: camelCase ("IgnoreAllPreviousInstructions"), joined by dots
 * or semicolons ("ignore.all.previous.instructions", "ignore . all . previous", which the clause lexicon reads as
 * one-word sentences), or run together ("ignorepreviousinstructions"). One whole-text decoding with every such
 * run of three or more words spaced.
 */
function joinedWords(t: string, out: Decoded[]): void {
  let changed = false;
  const text = t.replace(JOINED_TOKEN, (token) => {
    const words = token.replace(CAMEL_HUMP, '$1 ').split(/[\s.;]+/).filter(Boolean);
    const spaced = words.map((w) => (w.length >= 12 && /^[a-z]+$/i.test(w) ? (splitRunTogether(w.toLowerCase()) ?? w) : w)).join(' ');
    const all = spaced.split(' ');
    // Abbreviations, names, package paths and identifiers are joined words too: only instruction words make a rescan worth it.
    if (all.length < 3 || all.filter((w) => RUN_TOGETHER_WORDS.has(w.toLowerCase())).length < 2) return token;
    changed = true;
    return spaced;
  });
  if (changed) out.push({ how: 'joined', start: 0, end: t.length, text });
}

/** Characters of the text on each side of a spelled-out run that are rescanned with it. */
const SPACED_CONTEXT = 256;

/**
 * Letters spelled out one by one ("i g n o r e   a l l", "i-g-n-o-r-e a-l-l", "i.g.n.o.r.e / a.l.l"): a run
 * of at least 6 single letters or digits, each followed by one separator, collapses into words. The separator
 * used most between letters joins them; any other gap (two spaces, " / ", a space between dashed words) is
 * a word break.
 */
function spacedRuns(t: string, out: Decoded[]): void {
  const n = t.length;
  const alnum = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57);
  let i = 0;
  while (i < n && out.length < MAX_CANDIDATES) {
    // a single character: alnum with no alnum on either side
    if (!alnum(t.charCodeAt(i)) || alnum(t.charCodeAt(i + 1)) || (i > 0 && alnum(t.charCodeAt(i - 1)))) {
      i++;
      continue;
    }
    const chars: string[] = [];
    const gaps: string[] = [];
    let j = i;
    for (;;) {
      chars.push(t[j]);
      let k = j + 1;
      while (k < n && k - j <= 4 && !alnum(t.charCodeAt(k))) k++;
      if (k >= n || k - j > 4 || alnum(t.charCodeAt(k + 1))) {
        j = j + 1;
        break;
      }
      gaps.push(t.slice(j + 1, k));
      j = k;
    }
    if (chars.length >= 6) {
      const count = new Map<string, number>();
      for (const g of gaps) count.set(g, (count.get(g) ?? 0) + 1);
      const join = [...count.entries()].sort((a, b) => b[1] - a[1])[0][0];
      let text = chars[0];
      gaps.forEach((g, k) => (text += (g === join ? '' : ' ') + chars[k + 1]));
      // Rescanned in its sentence: a spelled-out word ("i g n o r e all previous instructions") needs the words around it.
      if (text.length >= 6) out.push({ how: 'spaced', start: i, end: j, text: t.slice(Math.max(0, i - SPACED_CONTEXT), i) + text + t.slice(j, j + SPACED_CONTEXT) });
    }
    i = j + 1;
  }
}

const MORSE: Record<string, string> = {
  '.-': 'a', '-...': 'b', '-.-.': 'c', '-..': 'd', '.': 'e', '..-.': 'f', '--.': 'g', '....': 'h', '..': 'i', '.---': 'j', '-.-': 'k', '.-..': 'l', '--': 'm',
  '-.': 'n', '---': 'o', '.--.': 'p', '--.-': 'q', '.-.': 'r', '...': 's', '-': 't', '..-': 'u', '...-': 'v', '.--': 'w', '-..-': 'x', '-.--': 'y', '--..': 'z',
  '-----': '0', '.----': '1', '..---': '2', '...--': '3', '....-': '4', '.....': '5', '-....': '6', '--...': '7', '---..': '8', '----.': '9', '.-.-.-': '.', '--..--': ',', '..--..': '?',
};

/** Ten or more Morse letters; one space between letters, two spaces or a slash between words. */
const MORSE_RUN = /(?:[.-]{1,6}(?: {1,3}| ?\/ ?)){9,}[.-]{1,6}/g;

function morseRuns(t: string, out: Decoded[]): void {
  MORSE_RUN.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = MORSE_RUN.exec(t)) !== null && out.length < MAX_CANDIDATES) {
    const text = m[0]
      .split(/ ?\/ ?| {2,}/)
      .map((w) => w.split(' ').map((c) => MORSE[c] ?? '').join(''))
      .join(' ');
    if (/[a-z]{3}/.test(text)) out.push({ how: 'morse', start: m.index, end: m.index + m[0].length, text });
  }
}

function rot13(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 97 && c <= 122) out += String.fromCharCode(((c - 84) % 26) + 97);
    else if (c >= 65 && c <= 90) out += String.fromCharCode(((c - 52) % 26) + 65);
    else out += s[i];
  }
  return out;
}

/** Words whose rot13 or reversal is a common instruction word: the word scan reports them as hints. */
const HINT_WORDS = ['ignore', 'instructions', 'instruction', 'prompt', 'system', 'previous', 'reveal', 'password', 'disregard', 'forget', 'rules', 'secret', 'output', 'print', 'above', 'bypass', 'policy', 'hidden', 'conversation', 'credentials', 'everything', 'guidelines', 'directives', 'developer', 'override', 'confidential'];
export const ROT13_HINTS: readonly string[] = HINT_WORDS.map(rot13);
export const REVERSED_HINTS: readonly string[] = HINT_WORDS.map((w) => [...w].reverse().join(''));

/**
 * Candidates to rescan in `t` (case-preserving normalized text). `hints` says which whole-text
 * transformations the word scan found tell-tale words (or, for `joined`, long or dot-joined words) for.
 */
export function decodeCandidates(t: string, hints: { rot13: boolean; reversed: boolean; spaced: boolean; joined: boolean }): Decoded[] {
  const out: Decoded[] = [];
  // Cheap gates: base64 shows a capital after a small letter (or a digit between letters, + or / inside); hex of text has a digit 2-7 leading
  // every byte. Prose passes neither, so it pays two regex tests, not the run loops.
  if (BASE64_HINT.test(t)) base64Runs(t, out);
  if (out.length < MAX_CANDIDATES && HEX_HINT.test(t)) hexRuns(t, out);
  if (out.length < MAX_CANDIDATES && t.includes('%')) urlTextRuns(t, out);
  if (hints.spaced && out.length < MAX_CANDIDATES) spacedRuns(t, out);
  if (out.length < MAX_CANDIDATES && t.includes('.-')) morseRuns(t, out);
  const whole = t.length > MAX_DECODED ? t.slice(0, MAX_DECODED) : t;
  markupDecodings(whole, out);
  if (hints.joined && out.length < MAX_CANDIDATES) joinedWords(whole, out);
  if (hints.rot13 && out.length < MAX_CANDIDATES) out.push({ how: 'rot13', start: 0, end: whole.length, text: rot13(whole) });
  if (hints.reversed && out.length < MAX_CANDIDATES) out.push({ how: 'reversed', start: 0, end: whole.length, text: [...whole].reverse().join('') });
  return out;
}
