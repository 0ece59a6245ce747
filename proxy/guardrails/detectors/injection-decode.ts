/**
 * Decode-and-rescan for the injection detector: finds text that hides an instruction behind an encoding
 * (base64 at any grouping, hex, percent-encoding) or a transformation (rot13, reversed, letters spelled out
 * with separators, words run together) and returns the plain text to scan again. Bounded: at most
 * MAX_CANDIDATES decodes of at most MAX_DECODED characters each, and rot13 / reversal only when the word scan
 * saw one of their tell-tale words (so ordinary text pays nothing).
 */

import { encodedRuns, escapeRuns, hexDigit, MAX_DECODED, MIN_ENCODED, printable, utf8, type Decoded } from './encodings';

export type { Decoded, Decoding } from './encodings';

export const MAX_CANDIDATES = 8;

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
  if (from[n] === -1) return splitOnLetter(run);
  const words: string[] = [];
  for (let end = n; end > 0; end = from[end]) words.push(run.slice(from[end], end));
  return words.length >= 3 ? words.reverse().join(' ') : undefined;
}

/** `run` as three or more RUN_TOGETHER_WORDS parted by one letter used as a separator ("ignorexallxprevious", from "×"), or undefined. */
function splitOnLetter(run: string): string | undefined {
  for (const letter of new Set(run)) {
    const words = run.split(letter);
    if (words.length >= 3 && words.every((w) => RUN_TOGETHER_WORDS.has(w))) return words.join(' ');
  }
  return undefined;
}

/**
 * Three or more words joined by dots or semicolons (spaced or not), by any other one to four characters that are
 * neither letters nor spaces ("Ignore0all0previous", "forget|all|rules", "skip~the~rules", emoji), or a long run of
 * letters (camelCase humps, words run together).
 */
const JOINED_TOKEN = /(?<![A-Za-z])(?:[A-Za-z]+(?:[ \t]*[.;]+[ \t]*[A-Za-z]+){2,}|(?<![0-9])[0-9]{0,2}[A-Za-z]+(?:[^\sA-Za-z]{1,4}[A-Za-z]+){2,}[0-9]{0,2}|[A-Za-z]{12,})/g;
const CAMEL_HUMP = /([a-z])(?=[A-Z])/g;
/**
 * Word breaks inside a joined token: first everything but letters and digits (digits may be leet letters), then
 * digits too. An underscore stays inside its word: snake_case is code, and the emphasis decoding reads it.
 */
const JOIN_SEPARATORS = [/[^A-Za-z0-9_]+/, /[^A-Za-z_]+/];

const LEET: Record<string, string> = { '0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '8': 'b', '@': 'a', $: 's' };

/** Leetspeak undone inside words that hold a letter ("1gn0r3" → "ignore", "54f37y" → "safety"); same length, so indexes line up. */
export function foldLeet(lower: string): string {
  return lower.replace(/[a-z0-9@$]*[a-z][a-z0-9@$]*/g, (w) => w.replace(/[0134578@$]/g, (c) => LEET[c] ?? c));
}

/** `token` as spaced words when at least three words come out and two of them are instruction words, else undefined. */
function spacedToken(token: string): string | undefined {
  const humped = token.replace(CAMEL_HUMP, '$1 ');
  for (const separators of JOIN_SEPARATORS) {
    const words = humped.split(separators).filter(Boolean);
    const spaced = words.map((w) => (w.length >= 12 && /^[a-z]+$/i.test(w) ? (splitRunTogether(w.toLowerCase()) ?? w) : w)).join(' ');
    const all = spaced.split(' ');
    // Abbreviations, names, package paths, identifiers, dates and versions are joined words too: only instruction words make a rescan worth it.
    if (all.length >= 3 && all.filter((w) => RUN_TOGETHER_WORDS.has(foldLeet(w.toLowerCase()))).length >= 2) return spaced;
  }
  return undefined;
}

/**
 * Words a model reads although nothing spaces them: camelCase ("IgnoreAllPreviousInstructions"), joined by dots
 * or semicolons ("ignore.all.previous.instructions", "ignore . all . previous", which the clause lexicon reads as
 * one-word sentences) or by any other non-letter ("Ignore0all0previous", "ignore|all|previous", "ignore🙂all"), or
 * run together ("ignorepreviousinstructions"). One whole-text decoding with every such run of three or more words spaced.
 */
function joinedWords(t: string, out: Decoded[]): void {
  let changed = false;
  const text = t.replace(JOINED_TOKEN, (token) => {
    const spaced = spacedToken(token);
    if (spaced === undefined) return token;
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
  encodedRuns(t, out, MAX_CANDIDATES);
  escapeRuns(t, out, MAX_CANDIDATES);
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
