/**
 * PII with validation, not bare regex: e-mail, phone, credit card (Luhn + issuer prefixes), US SSN (invalid
 * ranges), IBAN (country length + mod-97), IPv4/IPv6. One linear pass over the normalized text: '@' and ':'
 * are found with indexOf and expanded a bounded distance; digit runs are cut once and classified once.
 * Scores start from the strength of the format and move with context words around the value.
 */
import type { NormalizedText } from '../normalize';
import { clamp01, contextNear, finish, isAlnum, isAlpha, isDigit, isWordChar, wanted, wordsRegex } from './context';
import { namesPendingTail, scanAddresses, scanNames } from './pii-names';
import { combinedProbe, TailProbe } from './tail-probe';
import type { Detector, Match, ScanOptions } from './types';

/** Names and postal addresses are reported only when a rule asks for them by name (`pii.PERSON`). */
export const PII_OPT_IN = ['PERSON', 'STREET_ADDRESS'] as const;
export const PII_ENTITIES = ['EMAIL', 'PHONE', 'CREDIT_CARD', 'US_SSN', 'IBAN', 'IP_ADDRESS', ...PII_OPT_IN] as const;

const DEFAULT_THRESHOLD = 0.5;
const MAX_NUMBER_RUN = 40; // longest formatted number considered (a 19-digit card with separators is 23)

const PHONE_CONTEXT = wordsRegex([
  'phone', 'tel', 'telephone', 'mobile', 'cell', 'cellphone', 'call', 'calling', 'called', 'fax', 'desk', 'office', 'home',
  'contact', 'reach', 'dial', 'whatsapp', 'sms', 'text me', 'ring', 'number', 'answering', 'registered',
]);
const PHONE_NEGATIVE = wordsRegex([
  'order', 'invoice', 'isbn', 'zip', 'postcode', 'postal', 'serial', 'tracking', 'account', 'license', 'licence', 'passport', 'id', 'apt', 'suite',
]);
/** How far after a number its context words are read (contextNear's default). */
const CONTEXT_AFTER = 24;
const CARD_CONTEXT = wordsRegex(['card', 'cards', 'credit', 'debit', 'visa', 'mastercard', 'amex', 'cc', 'payment', 'pay', 'charge', 'expires']);
const SSN_CONTEXT = wordsRegex(['ssn', 'ssns', 'social security', 'social', 'ss#', 'taxpayer', 'tin']);
/**
 * Words that make a dotted number a version, build or section number rather than an address or a phone
 * ("build 4.18.0.240", "Windows 10.0.19045.3803", "section 1.2.3.4"): read just before it, or just after it.
 */
const VERSION_BEFORE = /(?:^|[^a-z0-9])(?:version|versions|ver\.?|v|build|builds|release|released|kernel|firmware|bios|patch|hotfix|update|upgrade|upgraded|downgrade|sdk|api level|windows|win|linux|ubuntu|debian|rhel|centos|macos|os x|ios|ipados|android|chrome|chromium|firefox|edge|safari|node|nodejs|python|java|jdk|dotnet|\.net|office|driver|package|pkg|section|sections|chapter|clause|paragraph|step|figure|fig\.?|table|item|rule|article|art\.?|§)[ \t:#(]*$/i;
const VERSION_AFTER = /^[ \t]*(?:\(?build|released?|update|patch|hotfix|x64|x86|amd64|arm64|beta|alpha|rc\d?|lts|is (?:out|available))(?:$|[^a-z0-9])/i;
/** Barcode and catalogue numbers (EAN-13, UPC, GTIN, ISBN) that a card's checksum can also pass. */
const PRODUCT_CONTEXT = wordsRegex(['barcode', 'bar code', 'ean', 'ean-13', 'ean13', 'upc', 'gtin', 'isbn', 'sku', 'product', 'article', 'item', 'catalog', 'catalogue', 'stock']);

/** IBAN length per ISO 13616 country code. */
const IBAN_LENGTHS: Record<string, number> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, BY: 28, CH: 21, CR: 22, CY: 28,
  CZ: 24, DE: 22, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18,
  GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32,
  LI: 21, LT: 20, LU: 20, LV: 21, MC: 27, MD: 24, ME: 22, MK: 19, MR: 27, MT: 31, MU: 30, NL: 18, NO: 15, PK: 24,
  PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, SA: 24, SC: 31, SE: 24, SI: 19, SK: 24, SM: 27, ST: 25, SV: 28,
  TL: 23, TN: 24, TR: 26, UA: 29, VA: 22, VG: 24, XK: 20,
};

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/** Card networks by prefix and allowed lengths. */
export function cardIssuer(d: string): string | undefined {
  const len = d.length;
  const p2 = Number(d.slice(0, 2));
  const p3 = Number(d.slice(0, 3));
  const p4 = Number(d.slice(0, 4));
  const p6 = Number(d.slice(0, 6));
  if (d[0] === '4' && (len === 13 || len === 16 || len === 19)) return 'visa';
  if (((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) && len === 16) return 'mastercard';
  if ((p2 === 34 || p2 === 37) && len === 15) return 'amex';
  if ((p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649) || (p6 >= 622126 && p6 <= 622925)) && len >= 16 && len <= 19) return 'discover';
  if (p4 >= 3528 && p4 <= 3589 && len >= 16 && len <= 19) return 'jcb';
  if ((p4 === 1800 || p4 === 2131) && len === 15) return 'jcb';
  if (((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38 || p2 === 39) && len >= 14 && len <= 19) return 'diners';
  if (p2 === 62 && len >= 16 && len <= 19) return 'unionpay';
  if ((p2 === 50 || (p2 >= 56 && p2 <= 69)) && len >= 12 && len <= 19) return 'maestro';
  return undefined;
}

export function ssnValid(d: string): boolean {
  if (d.length !== 9) return false;
  const area = Number(d.slice(0, 3));
  return area !== 0 && area !== 666 && area < 900 && d.slice(3, 5) !== '00' && d.slice(5) !== '0000';
}

export function ibanValid(iban: string): boolean {
  const s = iban.toUpperCase();
  const len = IBAN_LENGTHS[s.slice(0, 2)];
  if (len === undefined || s.length !== len) return false;
  const rearranged = s.slice(4) + s.slice(0, 4);
  let rem = 0;
  for (let i = 0; i < rearranged.length; i++) {
    const c = rearranged.charCodeAt(i);
    if (c >= 48 && c <= 57) rem = (rem * 10 + (c - 48)) % 97;
    else if (c >= 65 && c <= 90) rem = (rem * 100 + (c - 55)) % 97;
    else return false;
  }
  return rem === 1;
}

export function ipv4Valid(s: string): boolean {
  const parts = s.split('.');
  if (parts.length !== 4) return false;
  for (const p of parts) {
    if (p.length === 0 || p.length > 3 || !/^\d+$/.test(p) || Number(p) > 255) return false;
  }
  return true;
}

export function ipv6Valid(s: string): boolean {
  let body = s;
  let extra = 0;
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) !== -1) {
    if (!ipv4Valid(s.slice(lastColon + 1))) return false;
    body = s.slice(0, lastColon + 1) + '0';
    extra = 1;
  }
  const halves = body.split('::');
  if (halves.length > 2) return false;
  const groups = (h: string): string[] | undefined => {
    if (h === '') return [];
    const g = h.split(':');
    return g.every((x) => /^[0-9a-fA-F]{1,4}$/.test(x)) ? g : undefined;
  };
  const left = groups(halves[0]);
  const right = halves.length === 2 ? groups(halves[1]) : [];
  if (!left || !right) return false;
  const count = left.length + right.length + extra;
  if (halves.length === 2 ? count > 7 : count !== 8) return false;
  // Short forms like "a::b" are far more often code (Foo::Bar) than addresses; want some substance.
  return count >= 3 || s === '::1';
}

type Emit = (entity: string, start: number, end: number, score: number) => void;

function scanEmails(t: string, emit: Emit): void {
  let at = t.indexOf('@');
  while (at !== -1) {
    let l = quotedLocalStart(t, at);
    if (l === -1) {
      l = at;
      while (l > 0 && at - l < 64 && isLocalChar(t.charCodeAt(l - 1))) l--;
      while (l < at && !isLetterOrDigit(t.charCodeAt(l))) l++;
    }
    let r = at + 1;
    while (r < t.length && r - at < 255 && isDomainChar(t.charCodeAt(r))) r++;
    while (r > at + 1 && !isLetterOrDigit(t.charCodeAt(r - 1))) r--;
    if (l < at && domainValid(t, at + 1, r)) emit('EMAIL', l, r, 0.9);
    at = t.indexOf('@', Math.max(at + 1, r));
  }
}

/** "[at]", "(at)", "{at}", "<at>", and the same for "dot" (or a bracketed "."): an address written to dodge scrapers. */
const AT_BRACKETED = String.raw`[\[({<][ \t]{0,2}at[ \t]{0,2}[\])}>]`;
const DOT_BRACKETED = String.raw`[\[({<][ \t]{0,2}(?:dot|\.)[ \t]{0,2}[\])}>]`;
const LABEL = String.raw`[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?`;
const OBFUSCATED_LOCAL = String.raw`[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9])?`;
const TLD = String.raw`[A-Za-z]{2,24}`;
/** "." escaped for a URL or HTML, as an escaped "@" comes with one: "alice%40example%2Ecom". */
const ESCAPED_DOT = String.raw`(?:%2[eE]|&#0{0,4}46;|&#x0{0,4}2[eE];|&period;)`;
const ANY_DOT = String.raw`(?:[ \t]{0,3}${DOT_BRACKETED}[ \t]{0,3}|[ \t]+dot[ \t]+|\.|${ESCAPED_DOT})`;
const WORD_DOT = String.raw`(?:[ \t]{0,3}${DOT_BRACKETED}[ \t]{0,3}|[ \t]+dot[ \t]+)`;
/** "@" escaped for a URL or HTML: "alice%40example.com" (a mailto link, a query string), "alice&#64;example.com". */
const ESCAPED_AT = String.raw`(?:%40|&#0{0,4}64;|&#x0{0,4}40;|&commat;)`;
/** Words that start a phrase, not a domain: "look at the dot com era" is prose. */
const NOT_A_DOMAIN = String.raw`(?!(?:the|a|an|my|your|his|her|our|their|this|that|its|one|some)\s)`;
/**
 * An address a person (and a model, or a browser) reads although it has no "@": "alice [at] example [dot] com",
 * "alice(at)example(dot)com", "alice at example dot com", "alice%40example.com". With a plain "at" the last dot
 * must be a word or bracketed too, so "look at example.com" stays prose.
 */
const OBFUSCATED_EMAIL = new RegExp(
  String.raw`(?<![A-Za-z0-9._%+-])${OBFUSCATED_LOCAL}` +
    String.raw`(?:(?:[ \t]{0,3}${AT_BRACKETED}[ \t]{0,3}|${ESCAPED_AT})(?:${LABEL}${ANY_DOT}){1,4}${TLD}|[ \t]+at[ \t]+${NOT_A_DOMAIN}(?:${LABEL}${ANY_DOT}){0,3}${LABEL}${WORD_DOT}${TLD})(?![A-Za-z0-9])`,
  'gi',
);
/** Text that may hold one: a bracketed or escaped "at", or "dot" as a word (the pattern's own parts). */
const OBFUSCATED_HINT = new RegExp(String.raw`${AT_BRACKETED}|[ \t]dot[ \t]|${ESCAPED_AT}`, 'i');

function scanObfuscatedEmails(t: string, emit: Emit): void {
  OBFUSCATED_EMAIL.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = OBFUSCATED_EMAIL.exec(t)) !== null) emit('EMAIL', m.index, m.index + m[0].length, 0.8);
}

let obfuscatedProbe: TailProbe | undefined;
/** Where an obfuscated address that may still be growing starts (text.length: none). */
function obfuscatedEmailHold(text: string, from: number): number {
  obfuscatedProbe ??= new TailProbe([combinedProbe([{ source: OBFUSCATED_EMAIL.source, flags: 'i' }])]);
  return obfuscatedProbe.holdFrom(text, from);
}

/** The longest quoted local part ("john doe"@example.com, RFC 5321), quotes included. */
const QUOTED_LOCAL_MAX = 66;

/** Where a quoted local part ending just before the '@' at `at` opens, or -1. */
function quotedLocalStart(t: string, at: number): number {
  if (at < 3 || t.charCodeAt(at - 1) !== 34 || t.charCodeAt(at - 2) === 32) return -1;
  const open = t.lastIndexOf('"', at - 2);
  if (open === -1 || at - open > QUOTED_LOCAL_MAX || !opensQuotedLocal(t, open)) return -1;
  for (let i = open + 1; i < at - 1; i++) if (t.charCodeAt(i) === 10 || t.charCodeAt(i) === 92) return -1;
  return open;
}

/** A quote that can open a quoted local part: at a word start, a letter or digit after it. */
function opensQuotedLocal(t: string, q: number): boolean {
  return (q === 0 || !isLetterOrDigit(t.charCodeAt(q - 1))) && (q + 1 === t.length || isLetterOrDigit(t.charCodeAt(q + 1)));
}

/** ASCII letters and digits, and letters and digits of any script (internationalised addresses, RFC 6531). */
function isLetterOrDigit(c: number): boolean {
  return isAlnum(c) || (c >= 0xaa && UNICODE_ALNUM.test(String.fromCharCode(c)));
}
const UNICODE_ALNUM = /[\p{L}\p{N}\p{M}]/u;

function isLocalChar(c: number): boolean {
  return isLetterOrDigit(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45; // . _ % + -
}

function isDomainChar(c: number): boolean {
  return isLetterOrDigit(c) || c === 46 || c === 45;
}

function domainValid(t: string, start: number, end: number): boolean {
  const lastDot = t.lastIndexOf('.', end - 1);
  if (lastDot <= start || end - lastDot - 1 < 2) return false;
  // A top-level domain is letters (any script: ".广告"), or an A-label ("xn--fiqs8s").
  const tld = t.slice(lastDot + 1, end);
  if (!/^xn--[a-z0-9-]+$/i.test(tld)) for (let i = lastDot + 1; i < end; i++) if (isDigit(t.charCodeAt(i)) || !isLetterOrDigit(t.charCodeAt(i))) return false;
  for (let i = start + 1; i < end; i++) if (t.charCodeAt(i) === 46 && t.charCodeAt(i - 1) === 46) return false;
  return true;
}

function scanIpv6(t: string, emit: Emit): void {
  let c = t.indexOf(':');
  while (c !== -1) {
    let l = c;
    while (l > 0 && c - l < 45 && isIpv6Char(t.charCodeAt(l - 1))) l--;
    let r = c;
    while (r < t.length && r - l < 45 && isIpv6Char(t.charCodeAt(r))) r++;
    while (r > c && t.charCodeAt(r - 1) === 46) r--; // a sentence-ending dot
    const before = l > 0 ? t.charCodeAt(l - 1) : 32;
    const after = r < t.length ? t.charCodeAt(r) : 32;
    if (!isWordChar(before) && !isWordChar(after) && ipv6Valid(t.slice(l, r))) emit('IP_ADDRESS', l, r, 0.8);
    c = t.indexOf(':', Math.max(c + 1, r));
  }
}

function isIpv6Char(c: number): boolean {
  return isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) || c === 58 || c === 46;
}

/** An IBAN starting at `i` (two letters already checked, digits follow): country length, groups of four, mod-97. Returns its end or -1. */
function tryIban(t: string, i: number, emit: Emit): number {
  if (!isDigit(t.charCodeAt(i + 3))) return -1;
  const len = IBAN_LENGTHS[t.slice(i, i + 2).toUpperCase()];
  if (len === undefined) return -1;
  let compact = '';
  let j = i;
  while (j < t.length && compact.length < len) {
    const c = t.charCodeAt(j);
    if (isAlnum(c)) compact += t[j];
    // Groups of four may be split by a space, a dash or a dot ("DE89-3704-…", "DE89.3704.…").
    else if (!((c === 32 || c === 45 || c === 46) && compact.length % 4 === 0 && j + 1 < t.length && isAlnum(t.charCodeAt(j + 1)))) break;
    j++;
  }
  if (compact.length !== len || (j < t.length && isAlnum(t.charCodeAt(j))) || !ibanValid(compact)) return -1;
  emit('IBAN', i, j, 0.9);
  return j;
}

function isRunSeparator(c: number): boolean {
  return c === 32 || c === 45 || c === 46 || c === 40 || c === 41 || c === 47; // space - . ( ) /
}

/** Separators between two digits of one number: "123 - 45 - 6789" has three. */
const MAX_SEPARATORS = 3;

/**
 * Cut digit runs ("+41 (0)85 806 98 67", "4111-1111-1111-1111", "10.0.0.1") and classify each once. Digits glued
 * to a word are skipped, except the body of an IBAN (two letters at a word start, then digits).
 */
function scanNumberRuns(t: string, emit: Emit, onRun: (start: number, end: number) => void = (start, end) => classifyRun(t, start, end, emit)): void {
  const n = t.length;
  // test() and lastIndex, not exec(): no match array for each of the many digits in ordinary text.
  const digit = /[0-9]/g;
  while (digit.test(t)) {
    const first = digit.lastIndex - 1;
    let i = first;
    const prev = i > 0 ? t.charCodeAt(i - 1) : 32;
    if (isWordChar(prev)) {
      if (i >= 2 && isAlpha(prev) && isAlpha(t.charCodeAt(i - 2)) && (i === 2 || !isAlnum(t.charCodeAt(i - 3)))) {
        const end = tryIban(t, i - 2, emit);
        if (end > 0) {
          digit.lastIndex = end;
          continue;
        }
      }
      let k = i;
      while (k < n && isWordChar(t.charCodeAt(k))) k++;
      digit.lastIndex = k;
      continue;
    }
    if ((prev === 43 || prev === 40) && (i < 2 || !isWordChar(t.charCodeAt(i - 2)))) i--; // "+41 ...", "(579)..."
    if (prev === 43 && i > 0 && t.charCodeAt(i - 1) === 40) i--; // "(+34) 612 …"
    let j = first + 1;
    let seps = 0;
    while (j < n) {
      const d = t.charCodeAt(j);
      if (isDigit(d)) seps = 0;
      else if (isRunSeparator(d) && seps < MAX_SEPARATORS) seps++;
      else break;
      j++;
    }
    digit.lastIndex = j;
    let end = j;
    while (end > i && !isDigit(t.charCodeAt(end - 1)) && t.charCodeAt(end - 1) !== 41) end--;
    if (end > i && t.charCodeAt(end - 1) === 41 && !isDigit(t.charCodeAt(end - 2))) end--;
    // Phone extensions: "345-899-3560x4587", "555 1234 ext 12"
    const ext = isExtensionStart(t.charCodeAt(end)) ? EXTENSION.exec(t.slice(end, end + 12)) : null;
    if (ext) {
      end += ext[0].length;
      digit.lastIndex = Math.max(j, end);
    }
    if (end - i <= MAX_NUMBER_RUN && !(end < n && isWordChar(t.charCodeAt(end)))) onRun(i, end);
  }
}

const EXTENSION = /^(?: ?x| ?ext\.? ?)\d{1,5}(?![A-Za-z0-9_])/;
/** The characters EXTENSION can start with (space, x, e), so most runs skip the slice and the regex. */
function isExtensionStart(c: number): boolean {
  return c === 32 || c === 120 || c === 101;
}
/** 123-45-6789, 123.45.6789, 123 - 45 - 6789 (spaces around the marks are dropped first). */
const SSN_MARKED = /^\d{3}([-.])\d{2}\1\d{4}$/;
const SSN_SPACED = /^\d{3} \d{2} \d{4}$/;
const DATE_LIKE = /^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./](?:\d{4}|\d{2}$))(?!\d)/;
/** Groups of four (Amex 4-6-5) with one kind of separator: space, dash, dot or slash. */
const CARD_GROUPED = /^\d{4}([ ./-])(?:\d{4}\1){1,3}\d{1,4}$|^\d{4}([ ./-])\d{6}\2\d{4,5}$/;
/** Any other grouping of a card's digits ("41111 11111 111111"): groups of 2–8 digits, one kind of separator. */
const CARD_REGROUPED = /^\d{2,8}([ ./-])(?:\d{2,8}\1){0,6}\d{2,8}$/;
const CIDR = /^([\d.]+)\/\d{1,2}$/;

/** EAN-13 / UPC-A / GTIN check digit (weights 3 and 1 from the right). */
export function gtinValid(digits: string): boolean {
  let sum = 0;
  for (let i = digits.length - 2, w = 3; i >= 0; i--, w = 4 - w) sum += (digits.charCodeAt(i) - 48) * w;
  return (10 - (sum % 10)) % 10 === digits.charCodeAt(digits.length - 1) - 48;
}

/** A dotted number read as a version, build or section number by the words around it. */
function versionContext(t: string, start: number, end: number): boolean {
  const lineStart = t.lastIndexOf('\n', start - 1) + 1;
  return VERSION_BEFORE.test(t.slice(Math.max(lineStart, start - 24), start)) || VERSION_AFTER.test(t.slice(end, end + 16));
}

function classifyRun(t: string, start: number, end: number, emit: Emit): void {
  // The shortest run anything below accepts is an address ("1.2.3.4"); every other type needs seven digits.
  if (end - start < 7) return;
  let s = t.slice(start, end);
  // An address with a prefix length ("10.0.0.0/24") is the address.
  const cidr = s.indexOf('/') !== -1 ? CIDR.exec(s) : null;
  if (cidr && ipv4Valid(cidr[1])) {
    end = start + cidr[1].length;
    s = cidr[1];
  }
  // Most runs are plain numbers: only three dots can make an address.
  if (s.length >= 7 && s.length <= 15 && s.split('.', 5).length === 4 && /^[\d.]+$/.test(s) && ipv4Valid(s)) {
    // Four small numbers are an address unless a version, build or section word says otherwise.
    emit('IP_ADDRESS', start, end, versionContext(t, start, end) ? 0.3 : 0.85);
    return;
  }
  const digits = s.replace(/x.*$|\D/g, '');
  const nd = digits.length;
  if (nd < 7) return;
  const dotted = /^[\d.]+$/.test(s) && s.includes('.');
  if (dotted && versionContext(t, start, end)) return;

  const marked = s.replace(/ *([-.]) */g, '$1');
  if (nd === 9 && (SSN_MARKED.test(marked) || SSN_SPACED.test(s) || s === digits)) {
    if (!ssnValid(digits)) return;
    const dashed = marked[3] === '-';
    const base = dashed ? (s === marked ? 0.8 : 0.7) : marked[3] === '.' ? 0.6 : s[3] === ' ' ? 0.45 : 0.3;
    const score = base + (contextNear(t, start, end, SSN_CONTEXT) ? 0.35 : 0);
    if (score >= DEFAULT_THRESHOLD || dashed) {
      emit('US_SSN', start, end, clamp01(score));
      return;
    }
  }

  if (nd >= 12 && nd <= 19 && luhnValid(digits)) {
    const score = cardScore(t, start, end, s, digits);
    if (score >= DEFAULT_THRESHOLD) {
      emit('CREDIT_CARD', start, end, clamp01(score));
      return;
    }
  }

  // One slash may part an area code ("030/1234567"); more are dates, fractions or paths.
  if (nd > 15 || DATE_LIKE.test(s) || s.indexOf('/') !== s.lastIndexOf('/')) return;
  // A decimal ("3.14159265"), or a dotted number with a one-digit group inside ("10.0.19045.3803"), is not a phone.
  if (dotted && (/\.\d\./.test(s) || s.indexOf('.') === s.lastIndexOf('.'))) return;
  const plus = s[0] === '+';
  const paren = /\(\d{1,4}\)/.test(s);
  const groups = s.split(/[ .\-()]+/).filter((g) => g.length > 0).length;
  let score: number;
  if (plus || paren) score = 0.6;
  else if (groups >= 2) score = nd >= 10 ? 0.5 : 0.3;
  else score = nd >= 10 && nd <= 11 ? 0.35 : 0.2;
  if (nd > 12 && !plus) score -= 0.2;
  if (contextNear(t, start, end, PHONE_CONTEXT)) score += 0.35;
  // Negative words count only on the same line ("Apt. 237\n655 437 108 office" is still a phone).
  const lineStart = t.lastIndexOf('\n', start - 1) + 1;
  if (PHONE_NEGATIVE.test(t.slice(Math.max(lineStart, start - 32), start))) score -= 0.3;
  emit('PHONE', start, end, clamp01(score));
}

/** How likely a Luhn-valid run of 12–19 digits is a card: issuer, grouping, barcodes, context words. */
function cardScore(t: string, start: number, end: number, s: string, digits: string): number {
  const issuer = cardIssuer(digits);
  const context = contextNear(t, start, end, CARD_CONTEXT) ? 0.3 : 0;
  if (s === digits) {
    // A barcode's check digit can pass Luhn too; its own words, or its check digit without card words, decide.
    if ((digits.length === 12 || digits.length === 13) && gtinValid(digits)) {
      if (contextNear(t, start, end, PRODUCT_CONTEXT)) return 0;
      return (issuer ? 0.45 : 0.3) + context;
    }
    return (issuer ? 0.8 : 0.4) + context;
  }
  // Spaces around a mark, and runs of spaces, are one separator ("4111 - 1111 - …", "4111  1111  …").
  const grouped = s.replace(/ *([-./]) */g, '$1').replace(/ {2,}/g, ' ');
  if (CARD_GROUPED.test(grouped)) return (issuer ? 0.8 : 0.4) + context;
  // Unusual grouping: only with a known issuer, and never a "+" or "(" phone number.
  if (CARD_REGROUPED.test(grouped) && issuer) return 0.55 + context;
  return 0;
}

export function createPiiDetector(defaultThreshold = DEFAULT_THRESHOLD): Detector {
  return {
    id: 'pii',
    entities: PII_ENTITIES,
    optIn: PII_OPT_IN,
    scan(nt: NormalizedText, opts?: ScanOptions): Match[] {
      const out: Match[] = [];
      const emit: Emit = (entity, start, end, score) => {
        if (!wanted(opts, entity, PII_OPT_IN)) return;
        out.push({ detector: 'pii', entity, start: nt.toOriginal(start), end: nt.toOriginalEnd(end), score });
      };
      const t = nt.text;
      if (t.indexOf('@') !== -1) scanEmails(t, emit);
      if (OBFUSCATED_HINT.test(t)) scanObfuscatedEmails(t, emit);
      if (t.indexOf(':') !== -1) scanIpv6(t, emit);
      scanNumberRuns(t, emit);
      if (opts?.entities?.has('PERSON')) scanNames(t, emit);
      if (opts?.entities?.has('STREET_ADDRESS')) scanAddresses(t, emit);
      return dropOverlaps(finish(out, opts?.threshold ?? defaultThreshold));
    },
    pendingTail: (text, from = 0, entities) => {
      const names = entities?.has('PERSON') === true;
      const addresses = entities?.has('STREET_ADDRESS') === true;
      const tail = piiPendingTail(text, from);
      return names || addresses ? Math.max(tail, namesPendingTail(text, from, addresses)) : tail;
    },
    // Context words are read up to 48 characters before a number; an e-mail's local part is at most 64.
    lookback: 64,
  };
}

/** Overlapping matches keep the higher-scoring (then longer) one; input is sorted by start. */
function dropOverlaps(ms: Match[]): Match[] {
  if (ms.length < 2) return ms;
  const kept: Match[] = [];
  for (const m of ms) {
    const last = kept[kept.length - 1];
    if (last && m.start < last.end) {
      if (m.score > last.score || (m.score === last.score && m.end - m.start > last.end - last.start)) kept[kept.length - 1] = m;
    } else kept.push(m);
  }
  return kept;
}

/** Longest e-mail local part, and the most of a token without '@' that could still become one. */
const LOCAL_MAX = 64;
const DOMAIN_MAX = 255;

/**
 * The tail that could still become PII, or change it: the last unbroken token (it could grow "@domain", more
 * IPv6 groups, or more IBAN characters), a trailing run of digits and separators (phones, cards, IBAN groups),
 * and a complete number whose type and score still depend on the context words that follow it.
 */
export function piiPendingTail(text: string, from = 0): number {
  const n = text.length;
  let k = n;
  while (k > from && n - k < LOCAL_MAX + 1 + DOMAIN_MAX && isTokenChar(text.charCodeAt(k - 1))) k--;
  const at = text.lastIndexOf('@', n - 1);
  let hold = at >= k && n - at <= DOMAIN_MAX + 1 ? n - Math.max(k, at - LOCAL_MAX) : Math.min(n - k, LOCAL_MAX);
  const floor = Math.max(from, n - LOCAL_MAX);
  let r = n;
  let sawDigit = false;
  while (r > floor) {
    const c = text.charCodeAt(r - 1);
    if (isDigit(c)) sawDigit = true;
    else if (!isRunSeparator(c) && c !== 43 && !(isAlpha(c) && r - 1 >= k)) break;
    r--;
  }
  // A spaced IBAN still being written: its country code starts the run ("DE89 3704 …").
  if (sawDigit && r >= floor + 2 && isAlpha(text.charCodeAt(r - 1)) && isAlpha(text.charCodeAt(r - 2)) && (r === 2 || !isAlnum(text.charCodeAt(r - 3)))) r -= 2;
  if (sawDigit) hold = Math.max(hold, n - r);
  hold = Math.max(hold, quotedLocalHold(text, from));
  // A word followed by " at", "[at]" or an escaped "@" (still to come) may start an obfuscated address.
  hold = Math.max(hold, n - obfuscatedEmailHold(text, from));
  // "+" and "(" start a number ("+41 …", "(415) …") before its first digit arrives.
  const last = text.charCodeAt(n - 1);
  if (last === 43 || last === 40) hold = Math.max(hold, last === 43 && n >= 2 && text.charCodeAt(n - 2) === 40 ? 2 : 1); // "(+34) …"
  const sliceStart = Math.max(0, n - MAX_NUMBER_RUN - CONTEXT_AFTER - 32);
  const tail = text.slice(sliceStart);
  scanNumberRuns(tail, () => undefined, (start, end) => {
    if (sliceStart + end <= n - CONTEXT_AFTER) return;
    let digits = 0;
    for (let i = start; i < end; i++) if (isDigit(tail.charCodeAt(i))) digits++;
    if (digits >= 7) hold = Math.max(hold, n - (sliceStart + start));
  });
  return Math.min(hold, n - from);
}

/**
 * An opened quote may start a quoted local part ("john doe"@…): hold from it while its closing quote has not
 * arrived, is the last character, or is followed by '@' and a domain still being written.
 */
function quotedLocalHold(text: string, from: number): number {
  const n = text.length;
  // A quote as the last character may open one.
  const trailing = n > from && text.charCodeAt(n - 1) === 34 && opensQuotedLocal(text, n - 1) ? 1 : 0;
  let closing = -1;
  for (let q = n - 1; q >= Math.max(from, n - DOMAIN_MAX - QUOTED_LOCAL_MAX); q--) {
    const c = text.charCodeAt(q);
    if (c === 10 || c === 92) break;
    if (c !== 34) continue;
    if (closing === -1 && (q === n - 1 || (text.charCodeAt(q + 1) === 64 && allDomain(text, q + 2, n)))) {
      closing = q;
      continue;
    }
    const within = closing === -1 ? n - q <= QUOTED_LOCAL_MAX : closing - q < QUOTED_LOCAL_MAX;
    return within && opensQuotedLocal(text, q) ? n - q : trailing;
  }
  return trailing;
}

function allDomain(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (!isDomainChar(text.charCodeAt(i))) return false;
  return true;
}

function isTokenChar(c: number): boolean {
  return isLocalChar(c) || c === 64 || c === 58; // plus '@' and ':' (IPv6)
}
