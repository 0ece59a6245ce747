/**
 * Secrets a plain scan misses because the answer hides them: base64 / base64url or hex of a text that holds a key
 * or a password assignment, a text or token written backwards, and a value split into string literals joined by
 * an operator ("sk-abc" + "def…") or broken across lines. Each is found behind a cheap hint, decoded or rejoined,
 * and scanned again; a finding is reported on the span the client sees (the whole encoded run, the whole
 * concatenation), so redaction covers it.
 */
import { encodedBlocks, escapeRuns, type Decoded } from './encodings';

/** Where a plain scan reports a finding, in the offsets of the text it was given. */
export type Emit = (entity: string, start: number, end: number, score: number, reason: string) => void;
export type PlainScan = (t: string, emit: Emit) => unknown;

/** What the plain scan's walk over space-free stretches saw. */
export interface HiddenHints {
  /** A stretch long enough for a base64 block, a hex run or a reversed key. */
  longWords: boolean;
  /** Eight or more short groups parted by spaces in a row: hex bytes, or a key spelled out. */
  groups: boolean;
  /** Set by scanHidden: the text has an escape, a quote or a line break. */
  marks?: boolean;
}

const ALL_HINTS: HiddenHints = { longWords: true, groups: true, marks: true };
/** Escapes (%41, \\x41, &#65;), quotes and line breaks: what the escaped, concatenated and line-broken forms need. */
const MARKS = ['\n', '"', "'", '%', '&', '\\', '`'];

/** Encoded runs decoded per text, and how deep a decoded text is decoded again (base64 of hex …). */
const MAX_RUNS = 8;
const MAX_DEPTH = 2;
/** Whole-text reversal is bounded: a reversed secret sits in a short answer or a short line. */
const MAX_REVERSED = 8192;
/**
 * "password" written backwards: the text may be reversed. One literal search, as a regex of every credential word
 * backwards (terces, nekot, yek_ipa, any case) cost 6 % of the default scan on prose; reversed provider tokens are
 * found token by token instead.
 */
const REVERSED_HINT = 'drowssap';

/** A string literal without spaces (a key is one word), in any of the usual quotes. */
const LITERAL = '"[^"\\s]{1,256}"|\'[^\'\\s]{1,256}\'|`[^`\\s]{1,256}`';
/** What joins two literals into one string: +, . (PHP), .. (Lua), || (SQL), & (VB), or nothing but space and one line break (C, Python). */
const JOIN = '[ \\t]*(?:\\\\?\\r?\\n[ \\t]*)?(?:(?:\\+|\\.\\.?|\\|\\||&)[ \\t]*(?:\\r?\\n[ \\t]*)?)?';
const CONCATENATION = new RegExp(`(?:${LITERAL})(?:${JOIN}(?:${LITERAL}))+`, 'g');
const QUOTES = /["'`]/;
/** Literals joined by a call: ["a", "b"].join("") (JavaScript) or "".join(["a", "b"]) (Python). */
const JOIN_CALL = new RegExp(`\\[\\s*(?:${LITERAL})(?:\\s*,\\s*(?:${LITERAL}))+\\s*,?\\s*\\]\\s*\\.join\\(\\s*(?:""|'')?\\s*\\)|(?:""|'')\\.join\\(\\s*[[(]\\s*(?:${LITERAL})(?:\\s*,\\s*(?:${LITERAL}))+\\s*,?\\s*[\\])]\\s*\\)`, 'g');
/** A key spelled out one character at a time ("g h p _ R 7 …", "g-h-p-_-R-7", "g.h.p"): the separators are cuts. */
const SPELLED_OUT = /(?<![^\s])[A-Za-z0-9_+/=-]([ .,:|-])(?:[A-Za-z0-9_+/=-]\1){14,}[A-Za-z0-9_+/=-](?![^\s.,;:!?)])/g;
/** HTML character references (&#103;, &#x67;), which a browser shows as the characters: a run of them is decoded. */
const ENTITY_RUN = /(?:&#(?:[xX][0-9A-Fa-f]{1,6}|[0-9]{1,7});?){8,}/g;
const ENTITY = /&#(?:[xX]([0-9A-Fa-f]{1,6})|([0-9]{1,7}));?/g;
/**
 * Key material ending a line and continued by key material alone on the next (a run of 8 or more that ends the line
 * or is followed by a space, quote or punctuation, so `NAME=value` on the next line of a config is not its
 * continuation): the break, with a `\` continuation and indentation, is a cut.
 */
const LINE_BREAK_IN_TOKEN = /(?<=[A-Za-z0-9_+/=-]{8})[ \t]*\\?\r?\n[ \t]*(?=([A-Za-z0-9_+/-]{8,}={0,2})(?:[\s"'`,;)\]}]|$))/g;
const KEY_LIKE_LINE_END = /[A-Za-z][0-9]|[0-9][A-Za-z]|[a-z][A-Z]/;

/** Reports `scan`'s findings in base64 / hex runs of `t` on the whole run. */
function scanEncoded(t: string, scan: PlainScan, emit: Emit, depth: number, hints: HiddenHints): void {
  const runs: Decoded[] = [];
  // Hex needs no long word when escaped (\x41, %41) or spaced (groups).
  encodedBlocks(t, runs, MAX_RUNS, hints.longWords, hints.longWords || hints.groups || (hints.marks !== false && (t.indexOf('%') !== -1 || t.indexOf('\\x') !== -1)));
  if (hints.marks !== false) escapeRuns(t, runs, MAX_RUNS);
  for (const run of runs) {
    const report: Emit = (entity, _start, _end, score, reason) => emit(entity, run.start, run.end, score, `${run.how}-encoded: ${reason}`);
    scan(run.text, report);
    if (depth + 1 < MAX_DEPTH) scanEncoded(run.text, scan, report, depth + 1, ALL_HINTS);
  }
}

/** Runs of HTML character references, decoded and scanned; a finding is reported on the whole run. */
function scanEntities(t: string, scan: PlainScan, emit: Emit): void {
  if (t.indexOf('&#') === -1) return;
  ENTITY_RUN.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = ENTITY_RUN.exec(t)) !== null) {
    const start = m.index;
    const end = start + m[0].length;
    const text = m[0].replace(ENTITY, (ref, hex: string | undefined, dec: string | undefined) => {
      const code = hex ? parseInt(hex, 16) : Number(dec);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : ref;
    });
    scan(text, (entity, _s, _e, score, reason) => emit(entity, start, end, score, `html-escaped: ${reason}`));
  }
}

/** The whole text read backwards, when it holds a credential word written backwards. */
function scanReversed(t: string, scan: PlainScan, emit: Emit): void {
  if (t.length > MAX_REVERSED || t.indexOf(REVERSED_HINT) === -1) return;
  // Code points reversed, so a surrogate pair stays one; a boundary at r in the reversal is n - r here.
  const reversed = Array.from(t).reverse().join('');
  const n = t.length;
  scan(reversed, (entity, start, end, score, reason) => emit(entity, n - end, n - start, score, `reversed: ${reason}`));
}

/** Spans of `t` to cut so that split pieces join: the quotes and operator between concatenated literals, line breaks inside key material. */
function cuts(t: string, hints: HiddenHints): [number, number][] {
  const out: [number, number][] = [];
  if (QUOTES.test(t)) {
    for (const re of t.indexOf('.join(') === -1 ? [CONCATENATION] : [CONCATENATION, JOIN_CALL]) {
      re.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = re.exec(t)) !== null) {
        const pieces = new RegExp(LITERAL, 'g');
        let last = -1;
        let p: RegExpExecArray | null;
        while ((p = pieces.exec(m[0])) !== null) {
          const at = m.index + p.index;
          if (last !== -1) out.push([last, at + 1]); // closing quote … opening quote
          last = at + p[0].length - 1;
        }
      }
    }
  }
  if (hints.groups || hints.longWords) {
    SPELLED_OUT.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = SPELLED_OUT.exec(t)) !== null) for (let i = m.index + 1; i < m.index + m[0].length; i += 2) out.push([i, i + 1]);
  }
  if (t.indexOf('\n') !== -1) {
    LINE_BREAK_IN_TOKEN.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = LINE_BREAK_IN_TOKEN.exec(t)) !== null) {
      if (KEY_LIKE_LINE_END.test(t.slice(Math.max(0, m.index - 8), m.index)) && KEY_LIKE_LINE_END.test(m[1])) out.push([m.index, m.index + m[0].length]);
    }
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/**
 * Pieces rejoined: `t` without the cut spans is scanned, and a finding that spans a cut (so the plain scan could not
 * see it whole) is reported on the original text from its first to its last character.
 */
function scanRejoined(t: string, scan: PlainScan, emit: Emit, hints: HiddenHints): void {
  const spans = cuts(t, hints);
  if (spans.length === 0) return;
  let text = '';
  let from = 0;
  const at: number[] = []; // where each cut falls in the rejoined text
  const removedBefore: number[] = []; // characters cut up to and including each cut
  let removed = 0;
  for (const [s, e] of spans) {
    if (s < from) continue;
    text += t.slice(from, s);
    removed += e - s;
    at.push(text.length);
    removedBefore.push(removed);
    from = e;
  }
  text += t.slice(from);
  const toOriginal = (i: number, exclusiveEnd: boolean): number => {
    let shift = 0;
    for (let k = 0; k < at.length && (exclusiveEnd ? at[k] < i : at[k] <= i); k++) shift = removedBefore[k];
    return i + shift;
  };
  scan(text, (entity, start, end, score, reason) => {
    if (!at.some((a) => a > start && a < end)) return;
    emit(entity, toOriginal(start, false), toOriginal(end, true), score, `split: ${reason}`);
  });
}

/**
 * Findings of `scan` that only decoding or rejoining reveals. `plain` are the spans the plain scan already found;
 * `hints` say which encoded forms the plain scan's token walk saw a trace of.
 * a rejoined finding inside one adds nothing; one that reaches past it (the rest of a key on the next line) is kept.
 */
export function scanHidden(t: string, scan: PlainScan, emit: Emit, plain: readonly [number, number][], hints: HiddenHints): void {
  // Whether any escape, quote or line break is there at all (prose often has none): single-character searches are
  // several times faster than one character-class regex.
  let marks = false;
  for (const c of MARKS) if (t.indexOf(c) !== -1) {
    marks = true;
    break;
  }
  hints.marks = marks;
  scanEncoded(t, scan, emit, 0, hints);
  if (marks) scanEntities(t, scan, emit);
  scanReversed(t, scan, emit);
  if (!marks && !hints.groups && !hints.longWords) return;
  scanRejoined(
    t,
    scan,
    (entity, start, end, score, reason) => {
      if (!plain.some(([s, e]) => s <= start && end <= e)) emit(entity, start, end, score, reason);
    },
    hints,
  );
}

/** Characters of an encoded run held at most in a stream before it is judged as far as it goes. */
const ENCODED_HOLD_MAX = 8192;
/** A run that spells a key out with dashes ("g-h-p-_-R-7…"): no two key characters side by side, yet it is one. */
const SPELLED_WITH_DASHES = /^(?:[A-Za-z0-9_+/=]-){8,}/;
/** How far back a run of groups is followed: a hex-encoded line, or a long key spelled out. */
const GROUPS_REACH = 2048;
/** A trailing run shorter than this is held whatever it looks like: its first characters may start base64 (ZXhwb…). */
const PLAIN_RUN_HELD = 64;
/** Between the groups of bytes or characters written one at a time: spaces, commas, colons and escapes (\\x, %, &#…;). */
const GROUP_SEPARATOR = new Uint8Array(128);
for (const c of ' ,:;.|\\%&#') GROUP_SEPARATOR[c.charCodeAt(0)] = 1;
const MAX_GROUP = 8;
const MAX_GROUP_GAP = 3;

/**
 * Where a trailing run of short groups starts (hex pairs with separators, \\x41, %41, &#65;, a key spelled out),
 * or n: each such group may be one byte of a secret still being written.
 */
function groupsStart(text: string, floor: number): number {
  const n = text.length;
  let k = n;
  let e = n;
  while (e > floor && n - e < MAX_GROUP_GAP && isGroupSeparator(text.charCodeAt(e - 1))) e--;
  for (;;) {
    let b = e;
    while (b > floor && e - b < MAX_GROUP && isRunChar(text.charCodeAt(b - 1))) b--;
    if (b === e || (b > floor && isRunChar(text.charCodeAt(b - 1))) || !isGroup(text.slice(b, e))) break; // not a group, or a longer word
    k = b;
    e = b;
    while (e > floor && b - e < MAX_GROUP_GAP && isGroupSeparator(text.charCodeAt(e - 1))) e--;
    if (e === b) break;
  }
  // The escape before the first group (\\, %, &#), or one still alone at the end, goes with it.
  for (let gap = 0; gap < MAX_GROUP_GAP && k > floor && isEscape(text.charCodeAt(k - 1)); gap++) k--;
  return k;
}

function isEscape(c: number): boolean {
  return c === 92 || c === 37 || c === 38 || c === 35;
}

const GROUP = /^(?:[^\s]|x?[0-9A-Fa-f]{2}|[0-9]{3}|u[0-9A-Fa-f]{0,4}|u\{[0-9A-Fa-f]{0,6}\}?)$/;

/** One spelled-out character, a hex pair (x41 after a backslash), a decimal reference's number, or a \\u escape's (u0067, u{67}). */
function isGroup(s: string): boolean {
  return GROUP.test(s);
}

function isGroupSeparator(c: number): boolean {
  return c < 128 && GROUP_SEPARATOR[c] === 1;
}

/** A closing quote this far from the end may still be followed by a join and another literal (a literal is at most 256 characters). */
const LITERAL_REACH = 300;
/** Literals, each followed by what may join it to the next, up to the end: the last may still be open. */
const TRAILING_LITERALS = new RegExp(`(?:(?:${LITERAL})${JOIN})+(?:["'\`][^"'\`\\s]{0,256})?$`);
/** A list of literals up to the end, which `.join("")` may still follow: `["ghp_a", "bc"]` and any prefix of `].join("")`. */
const TRAILING_LIST = new RegExp(
  `\\[\\s*(?:${LITERAL})(?:\\s*,\\s*(?:${LITERAL}))*\\s*,?\\s*(?:["'\`][^"'\`\\s]{0,256}|[\\])]\\s*(?:\\)|\\.(?:j(?:o(?:i(?:n(?:\\(\\s*(?:""?|''?)?)?)?)?)?)?)?)?$`,
);
const RUN_CHAR = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-') RUN_CHAR[c.charCodeAt(0)] = 1;

function isRunChar(c: number): boolean {
  return c < 128 && RUN_CHAR[c] === 1;
}

/**
 * Where a stream must hold from for a hidden secret still forming, or text.length: a trailing run of base64 / hex /
 * key characters (base64 wrapped over lines included) that is not a plain word, string literals that another
 * `+ "…"` may continue, and key material ending a line that the next line may continue.
 */
export function hiddenHoldFrom(text: string): number {
  // Each form is read from where it starts, released or not: only what is not yet released can still be held.
  const n = text.length;
  const floor = Math.max(0, n - ENCODED_HOLD_MAX);
  let hold = n;
  // Trailing run, across line breaks between runs (base64 wrapped at 64 or 76 columns, a key broken over two lines).
  let k = n;
  while (k > floor && (isRunChar(text.charCodeAt(k - 1)) || ((text.charCodeAt(k - 1) === 10 || text.charCodeAt(k - 1) === 13) && k - 1 > floor && isRunChar(text.charCodeAt(k - 2))))) k--;
  while (k < n && !isRunChar(text.charCodeAt(k))) k++;
  // Beyond its first characters, a run is held only while it looks like key material (a digit by a letter, a capital inside).
  if (k < n && (n - k < PLAIN_RUN_HELD || KEY_LIKE_LINE_END.test(text.slice(k, n)) || SPELLED_WITH_DASHES.test(text.slice(k, n)))) hold = k;
  // Bytes or characters written one group at a time may still be going on.
  hold = Math.min(hold, groupsStart(text, Math.max(0, n - GROUPS_REACH)));
  // Literals that may be continued: `"Zx9kQ2" + `, `"Zx9kQ2"` and a line break, or a second literal still open.
  const tailStart = Math.max(0, n - 1024);
  const lastQuote = Math.max(text.lastIndexOf('"'), text.lastIndexOf("'"), text.lastIndexOf('`'));
  if (lastQuote >= tailStart && n - lastQuote <= LITERAL_REACH) {
    const tail = text.slice(tailStart);
    for (const re of [TRAILING_LITERALS, TRAILING_LIST]) {
      const m = re.exec(tail);
      if (m) hold = Math.min(hold, tailStart + m.index);
    }
  }
  return hold;
}
