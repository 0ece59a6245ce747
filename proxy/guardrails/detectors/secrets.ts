/**
 * Secrets: provider token formats (one combined pattern of fixed prefixes, so a single left-to-right pass),
 * JWTs whose header decodes to JSON with "alg", PEM private keys, URLs and connection strings carrying a
 * password, Authorization headers, and a generic `key = value` assignment detector with an entropy floor.
 * Known placeholders and documentation examples are dropped.
 */
import type { NormalizedText } from '../normalize';
import { escapeRegex, finish, isAlnum, isWordChar, wanted } from './context';
import { configContext, documentationContext, EXAMPLE_SCORES, isDocumentedExample, isSampleJwtPayload, isWellKnownPassword } from './secret-examples';
import { hiddenHoldFrom, scanHidden, type Emit, type HiddenHints } from './secret-decode';
import { B, BS, literalPrefix, PROVIDER_RULES, type ProviderRule, VENDOR_SHAPES, VENDOR_WORDS } from './secret-formats';
import { combinedProbe, TailProbe } from './tail-probe';
import type { Detector, Match, ScanOptions } from './types';

const PRIVATE_KEY_BEGIN = /-----BEGIN[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----/g;
const JWT = /(?<![A-Za-z0-9_.-])eyJ[A-Za-z0-9_-]{8,2000}\.eyJ[A-Za-z0-9_-]{4,8000}(?:\.[A-Za-z0-9_-]{0,2000})?(?![A-Za-z0-9_-])|(?<![A-Za-z0-9_.-])eyJ[A-Za-z0-9_-]{8,2000}\.[A-Za-z0-9_-]{4,8000}\.[A-Za-z0-9_-]{0,2000}(?![A-Za-z0-9_-])/g;
/** scheme://user:password@host — databases, brokers, and plain http(s) basic credentials. */
const CREDENTIAL_URL = /(?<![A-Za-z0-9+.-])([a-z][a-z0-9+.-]{1,20}):\/\/([^\s:@/'"`]{1,128}):([^\s@/'"`]{1,128})@[A-Za-z0-9_.-]{1,253}/gi;
const AUTH_HEADER = /\b(?:authorization|proxy-authorization)["']?\s*[:=]\s*["']?(?:bearer|basic|token|bot)\s+([A-Za-z0-9._~+/=-]{8,2000})/gi;
/** `curl -u user:password`; an empty password leaves the user part as the credential (`-u "<api key>:"`). */
const CURL_USER = /(?:^|\s)(?:-u|--user)\s+["']?([^\s:"']{1,128})["']?:["']?([^\s"']{0,128})/dg;
/** `-H "X-Api-Key: value"`: a request header whose name says credential. */
const CURL_HEADER = /(?:^|\s)(?:-H|--header)\s+["']([A-Za-z0-9-]{0,40}(?:token|key|secret|auth|passw)[A-Za-z0-9-]{0,40}):\s*([^\s"']{8,512})["']/gi;
/**
 * Passwords passed positionally or in fixed phrases: psexec-style `-u X -p Y`, .netrc lines, credential
 * constructors (.NET NetworkCredential / DirectoryEntry, Java PasswordAuthentication and friends), XML app
 * settings, `vault operator unseal <key>`, and prose such as `the default password is "…"`.
 */
/** A value that names where the password is kept (a dotted lookup such as `settings.db.password`, or an `ALL_CAPS` variable name) rather than being it. */
const REFERENCE = /^(?:[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)$/;
/** `gate`: a substring the text must hold (cheap); `anchor`: a pattern it must match (when no one substring will do). */
const OTHER_PASSWORD_FORMS: { gate?: string; anchor?: RegExp; re: RegExp; accept?: (value: string) => boolean }[] = [
  { gate: '-p', re: /(?:^|\s)-u\s+\S{1,64}\s+-p\s+([^\s"'$%]{3,128})/dg },
  { gate: 'machine', re: /\bmachine\s+\S{1,253}\s+login\s+\S{1,128}\s+password\s+(\S{3,128})/dg },
  {
    gate: '(',
    anchor: /NetworkCredential|DirectoryEntry|PasswordAuthentication|UsernamePassword|BasicAWSCredentials|PasswordCredential/,
    re: /\b(?:NetworkCredential|DirectoryEntry|PasswordAuthentication|UsernamePasswordCredentials|UsernamePasswordAuthenticationToken|BasicAWSCredentials|PasswordCredential)\(\s*(?:"[^"\n]{0,256}"\s*,\s*){1,2}"([^"\n]{4,128})"/dg,
  },
  { gate: '<add', re: /<add\s+key="[^"\n]{0,64}(?:password|secret|token|apikey)[^"\n]{0,32}"\s+value="([^"\n]{4,256})"/dgi },
  { gate: 'unseal', re: /\bunseal\s+(?:-{1,2}[a-z-]{1,20}\s+){0,3}([A-Za-z0-9+/]{43,44}={0,1})(?![A-Za-z0-9+/=])/dg },
  // ThingsBoard device API: the device access token is a path segment.
  { gate: '/api/v1/', re: /\/api\/v1\/([A-Za-z0-9]{20})\/(?:telemetry|attributes|rpc|claim)\b/dg },
  { gate: 'assword', re: /\bpassword\b[^.\n]{0,48}?\bis\s+["'`]([^"'`\s]{3,64})["'`]/dgi },
  // Unquoted, as people write it in a message ("my password is Tr0ub4dor&3", "wifi passcode: 4711-2024"): only a
  // value no sentence would end with (a digit, a symbol, a capital inside), so "the password is incorrect" stays prose.
  {
    anchor: /pass(?:word|code|phrase|wd)/i,
    re: /\b(?:password|passcode|passphrase|passwd)(?:[ \t]{1,4}(?:is|was|is now|is set to|changed to)[ \t]{0,2}:?[ \t]{1,4}|[ \t]{0,4}[:=][ \t]{0,4})([^\s"'`<>;,]{5,63}[^\s"'`<>.,;:!?)])/dgi,
    accept: (v) => (/[0-9]/.test(v) || /[^A-Za-z0-9-]/.test(v) || /[a-z][A-Z]/.test(v)) && !REFERENCE.test(v),
  },
];

/** Names in an assignment that say the value is a credential. */
const CREDENTIAL_WORDS =
  'api[_.-]?key|apikey|secret|token|passw(?:or)?d|pwd|passphrase|credential|private[_.-]?key|access[_.-]?key|account[_.-]?key|license[_.-]?key|auth[_.-]?key|client[_.-]?secret|_pw\\b|\\bpass\\b|_pass\\b|_pat\\b|[_.-]key\\b';
const CREDENTIAL_NAME = new RegExp(CREDENTIAL_WORDS, 'i');
/** Credential names and service names: one alternation finds every candidate assignment. */
const KEYWORD = new RegExp(CREDENTIAL_WORDS, 'gi');
const OPERATOR_CHAR = /[:=]/g;
/** camelCase `…Key` (`hubspotKey`, `licenseKey`), case-sensitive so `monkey` and `turkey` stay words. */
const CAMEL_KEY = /[a-z0-9]Key$/;
const VENDOR_NAME = new RegExp(VENDOR_WORDS, 'i');
/** Names that carry a service's identifiers and addresses, not its credentials. */
const NOT_CREDENTIAL_SUFFIX = /(?:id|ids|url|uri|host|hostname|endpoint|region|zone|name|user|username|login_name|email|version|sha|hash|digest|checksum|integrity|path|dir|file|domain|port|org|project|image|tag|ref|commit|release|build|revision|rev|app|site|channel|env|mode|plan|type)$/i;
const PASSWORD_KEY = /passw(?:or)?d|pwd|passphrase|_pw$|(?:^|_)pass$/i;

const TEMPLATE = /xxxx|\*\*\*|\.\.\.|<[^>]*>|\{\{|\$\{|%\(|\$\(|#\{/i;
const PLACEHOLDER_WORDS = /example|sample|dummy|placeholder|your[_-]?|changeme|change[_-]me|changeit|redacted|insert|replace|fake|foobar|here$|not[_-]?a[_-]?real/i;
/** A value that names a credential instead of being one ("NEXUS-API-KEY", "notapassword", "sumologic_secret"). */
const CREDENTIAL_WORD = /passw(?:or)?d|secret|token|api[_-]?key/i;
const PLACEHOLDER_VALUES = /^(?:password|passwd|pass|secret|token|key|apikey|api_key|none|null|nil|undefined|true|false|empty|string|value|test|admin|root|user|username|default|required|optional|str|bool|int)$/i;

export const SECRET_ENTITIES = [
  ...new Set([...PROVIDER_RULES.map((r) => r.entity), 'AWS_SECRET_KEY', 'JWT', 'PRIVATE_KEY', 'CONNECTION_STRING', 'AUTH_HEADER', 'GENERIC_SECRET', 'PASSWORD_HASH']),
] as readonly string[];

const PREFIXES = new Map(PROVIDER_RULES.map((r) => [r, literalPrefix(r.re)]));
const COMBINED = new RegExp(PROVIDER_RULES.map((r, i) => `(?<r${i}>${r.re})`).join('|'), 'g');
/**
 * Every provider token is at least 16 characters of this alphabet, so the combined pattern only runs on such
 * runs: prose (short words) is skipped by one cheap character-class pass.
 */
const TOKEN_CHAR = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-./+=~!$:@') TOKEN_CHAR[c.charCodeAt(0)] = 1;
const MIN_TOKEN = 16;
/** Bundler credentials for private gem sources: BUNDLE_<HOST>=user:password. */
const BUNDLER = /\bBUNDLE_[A-Z0-9_]{1,80}__[A-Z]{2,10}[ \t]{0,4}[=:][ \t]{0,4}"?([A-Za-z0-9_-]{4,64}:[A-Za-z0-9_-]{4,64})/g;

const DEFAULT_THRESHOLD = 0.5;

/** Shannon entropy in bits per character. */
export function shannonEntropy(s: string): number {
  if (s.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/** A value that is a placeholder, a template variable or a documentation example rather than a secret. */
export function isPlaceholder(value: string): boolean {
  if (isDocumentedExample(value) || TEMPLATE.test(value) || PLACEHOLDER_WORDS.test(value) || PLACEHOLDER_VALUES.test(value)) return true;
  let distinct = 0;
  const seen = new Set<string>();
  for (const c of value) if (!seen.has(c)) {
    seen.add(c);
    distinct++;
  }
  if (distinct <= 3) return true; // "xxxxxxxx", "00000000", "aaaaend"-style filler
  if (/0123456789|123456789012|abcdefghij/i.test(value) && distinct <= 16) return true;
  return hasInterleavedRun(value);
}

/**
 * Two counting runs interleaved ("a1b2c3d4e5", "Z9y8X7w6"): the hand-made look of a filler value. Random tokens
 * essentially never contain five steps of one in a row at every second character (odds about 1 in 36^4 per position).
 */
export function hasInterleavedRun(value: string): boolean {
  const s = value.toLowerCase();
  for (const dir of [1, -1]) {
    let runA = 1; // progression ending at an even offset
    let runB = 1; // ... at an odd offset
    for (let i = 2; i < s.length; i++) {
      const step = isAlnum(s.charCodeAt(i)) && s.charCodeAt(i) - s.charCodeAt(i - 2) === dir;
      if (i % 2 === 0) runA = step ? runA + 1 : 1;
      else runB = step ? runB + 1 : 1;
      if (runA >= 5 || runB >= 5) return true;
    }
  }
  return false;
}

/** The random part of a token ends in filler ("GR1348941" + "1231231231…"): 16 characters drawn from four or fewer. */
function isFillerTail(body: string): boolean {
  return body.length >= 16 && new Set(body.slice(-16)).size <= 4;
}

function tokenBody(match: string, rule: ProviderRule): string {
  const prefix = PREFIXES.get(rule) ?? '';
  if (prefix.length >= 2 && match.startsWith(prefix)) return match.slice(prefix.length);
  const sep = match.search(/[_.-]/);
  return sep > 0 && sep < 12 ? match.slice(sep + 1) : match;
}

function decodeBase64Url(s: string): string | undefined {
  try {
    return Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8');
  } catch {
    return undefined;
  }
}

/** A JWT (or JWS/JWE) whose first part decodes to a JSON object with an "alg" member. */
export function jwtHeaderValid(token: string): boolean {
  const header = decodeBase64Url(token.slice(0, token.indexOf('.')));
  if (!header) return false;
  try {
    const h = JSON.parse(header) as unknown;
    return typeof h === 'object' && h !== null && typeof (h as Record<string, unknown>).alg === 'string';
  } catch {
    // A header with a damaged byte still reads as a JWT header when its "alg" member survives.
    // A truncated header (no closing brace) is not.
    return /"alg"\s*:\s*"/.test(header) && /\}\s*$/.test(header);
  }
}

/** The claims of a JWT, when its second part decodes to JSON. */
function jwtPayload(token: string): unknown {
  const payload = decodeBase64Url(token.split('.')[1] ?? '');
  try {
    return payload ? JSON.parse(payload) : undefined;
  } catch {
    return undefined;
  }
}

/** Eight space-parted groups of one to three characters in a row: hex bytes or a key spelled out. */
const MIN_GROUPS = 8;

/** Returns what the walk over space-free stretches saw: the hints for encoded forms. */
function scanProviders(t: string, emit: Emit): HiddenHints {
  // Spaces end every token, and indexOf finds them far faster than a character loop: only space-free
  // stretches of at least MIN_TOKEN characters are walked character by character.
  const n = t.length;
  let from = 0;
  const hints: HiddenHints = { longWords: false, groups: false };
  let groups = 0;
  while (from < n) {
    let space = t.indexOf(' ', from);
    if (space === -1) space = n;
    const len = space - from;
    if (len >= MIN_TOKEN) {
      hints.longWords = true;
      scanStretch(t, from, space, emit);
    }
    groups = len >= 1 && len <= 3 ? groups + 1 : 0;
    if (groups >= MIN_GROUPS) hints.groups = true;
    from = space + 1;
  }
  if (t.indexOf('BUNDLE_') === -1) return hints;
  BUNDLER.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = BUNDLER.exec(t)) !== null) {
    const start = m.index + m[0].length - m[1].length;
    emit('CONNECTION_STRING', start, start + m[1].length, 0.85, 'bundler source credentials');
  }
  return hints;
}

function scanStretch(t: string, from: number, to: number, emit: Emit): void {
  let runStart = from;
  for (let i = from; i <= to; i++) {
    const c = i < to ? t.charCodeAt(i) : 32;
    if (c < 128 && TOKEN_CHAR[c] === 1) continue;
    if (i - runStart >= MIN_TOKEN) {
      const token = t.slice(runStart, i);
      scanToken(token, runStart, emit);
      scanReversedToken(token, runStart, emit);
    }
    runStart = i + 1;
  }
}

function scanToken(token: string, offset: number, emit: Emit): void {
  COMBINED.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = COMBINED.exec(token)) !== null) {
    const rule = matchedRule(m);
    const value = m[0];
    if (!rule) continue;
    if (isDocumentedExample(value)) {
      emit(rule.entity, offset + m.index, offset + m.index + value.length, EXAMPLE_SCORES.documented, `${rule.provider} documentation example`);
      continue;
    }
    const body = tokenBody(value, rule);
    if (isPlaceholder(body) || isFillerTail(body)) continue;
    // Formats without a distinctive prefix must look random: digits among the letters, no long runs of one class.
    if (rule.loose && !looksRandom(body)) continue;
    emit(rule.entity, offset + m.index, offset + m.index + value.length, rule.score ?? 0.9, `${rule.provider} token format`);
  }
}

/** A provider token written backwards ("WVUT5SRP4NMLQ3Z7AIKA"): the reversed run is scanned, a finding reported where the run is. */
function scanReversedToken(token: string, offset: number, emit: Emit): void {
  const end = offset + token.length;
  let reversed = '';
  for (let k = token.length - 1; k >= 0; k--) reversed += token[k];
  scanToken(reversed, 0, (entity, s, e, score, reason) => emit(entity, end - e, end - s, score, `reversed: ${reason}`));
}

function looksRandom(body: string): boolean {
  if (!/\d/.test(body) || !/[A-Za-z]/.test(body) || /\d{12}/.test(body)) return false;
  // A long random token has long letter runs by chance; there the character spread alone tells it from words.
  if (body.length >= 40) return shannonEntropy(body) >= 4.2;
  return !/[A-Za-z]{12}/.test(body) && shannonEntropy(body) >= 3;
}

function matchedRule(m: RegExpExecArray): ProviderRule | undefined {
  const groups = m.groups as Record<string, string | undefined>;
  for (let i = 0; i < PROVIDER_RULES.length; i++) if (groups[`r${i}`] !== undefined) return PROVIDER_RULES[i];
  return undefined;
}

function scanPrivateKeys(t: string, emit: Emit): void {
  if (t.indexOf('PRIVATE KEY') === -1) return;
  PRIVATE_KEY_BEGIN.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = PRIVATE_KEY_BEGIN.exec(t)) !== null) {
    const endMarker = t.indexOf('-----END', m.index + m[0].length);
    let end = t.length;
    if (endMarker !== -1) {
      const close = t.indexOf('-----', endMarker + 8);
      end = close === -1 ? t.length : close + 5;
    }
    const body = t.slice(m.index + m[0].length, endMarker === -1 ? end : endMarker).replace(/\s|\\[nr]/g, '');
    // A header with no key material (documentation, code that builds the marker) is not a key; a header that
    // opens a block (a line break follows) with some material is a key even when cut short.
    const opensBlock = /^(?:\r?\n|\\r?\\n)/.test(t.slice(m.index + m[0].length, m.index + m[0].length + 4));
    const material = body.length >= 8 && !isPlaceholder(body.slice(0, 64));
    const score = material && body.length >= 40 ? 0.95 : material && opensBlock ? 0.6 : 0.3;
    emit('PRIVATE_KEY', m.index, end, score, 'PEM private key block');
    PRIVATE_KEY_BEGIN.lastIndex = end;
  }
}

function scanJwts(t: string, emit: Emit): void {
  if (t.indexOf('eyJ') === -1) return;
  JWT.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = JWT.exec(t)) !== null) {
    if (!jwtHeaderValid(m[0])) continue;
    if (isSampleJwtPayload(jwtPayload(m[0]))) emit('JWT', m.index, m.index + m[0].length, EXAMPLE_SCORES.documented, 'the jwt.io sample token');
    else emit('JWT', m.index, m.index + m[0].length, 0.85, 'JWT with a decodable header');
  }
}

function scanCredentialUrls(t: string, emit: Emit): void {
  if (t.indexOf('://') === -1) return;
  CREDENTIAL_URL.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = CREDENTIAL_URL.exec(t)) !== null) {
    const password = m[3];
    // Weak but real passwords ("secret", "password") count in a URL; templates and "xxxx" do not.
    if (TEMPLATE.test(password) || PLACEHOLDER_WORDS.test(password) || /^[$%]/.test(password)) continue;
    const scheme = m[1].toLowerCase();
    const web = scheme === 'http' || scheme === 'https' || scheme === 'ftp';
    emit('CONNECTION_STRING', m.index, m.index + m[0].length, web ? 0.75 : 0.9, `${scheme} URL with a password`);
  }
}

function scanAuthHeaders(t: string, emit: Emit): void {
  if (t.indexOf('uthorization') !== -1 || t.indexOf('UTHORIZATION') !== -1) scanAuthorization(t, emit);
  if (t.indexOf('-u') !== -1) scanCurlUser(t, emit);
  if (t.indexOf('-H') === -1 && t.indexOf('--header') === -1) return;
  CURL_HEADER.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = CURL_HEADER.exec(t)) !== null) {
    const value = m[2];
    if (/^authorization$/i.test(m[1]) || isPlaceholder(value) || /^[$%[{<]|>$/.test(value) || !/\d/.test(value)) continue;
    const start = m.index + m[0].length - value.length - 1;
    emit('AUTH_HEADER', start, start + value.length, 0.75, `credential in a "${m[1].slice(0, 40)}" header`);
  }
}

function scanCurlUser(t: string, emit: Emit): void {
  CURL_USER.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = CURL_USER.exec(t)) !== null) {
    const userSpan = m.indices?.[1];
    const passwordSpan = m.indices?.[2];
    if (!userSpan || !passwordSpan) continue;
    if (m[2] === '') {
      // `-u KEY:` — services that take an API key as the user name; only a random-looking user counts.
      const user = m[1];
      if (user.length < 10 || isPlaceholder(user) || !looksRandom(user)) continue;
      emit('AUTH_HEADER', userSpan[0], userSpan[1], 0.7, 'API key as a curl --user name');
      continue;
    }
    let password = m[2];
    let start = passwordSpan[0];
    // `"{value}"` wraps a literal in braces; `{password}` / `{{ .Values.x }}` stay templates.
    const braced = /^\{([^{}]+)\}$/.exec(password);
    if (braced && /\d/.test(braced[1]) && /[A-Za-z]/.test(braced[1])) {
      password = braced[1];
      start++;
    }
    if (isPlaceholder(password) || /^[$%[{<]|>$/.test(password)) continue;
    emit('AUTH_HEADER', start, start + password.length, 0.7, 'password in a curl --user argument');
  }
}

function scanAuthorization(t: string, emit: Emit): void {
  AUTH_HEADER.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = AUTH_HEADER.exec(t)) !== null) {
    const token = m[1];
    if (isPlaceholder(token) || token.startsWith('$')) continue;
    const start = m.index + m[0].length - token.length;
    emit('AUTH_HEADER', start, start + token.length, 0.8, 'credential in an Authorization header');
  }
}

function scanOtherPasswordForms(t: string, emit: Emit): void {
  for (const { gate, anchor, re, accept } of OTHER_PASSWORD_FORMS) {
    if ((gate !== undefined && t.indexOf(gate) === -1) || (anchor && !anchor.test(t))) continue;
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(t)) !== null) {
      const password = m[1];
      const span = m.indices?.[1];
      if (!span || isPlaceholder(password) || (accept && !accept(password))) continue;
      emit('GENERIC_SECRET', span[0], span[1], 0.7, 'password in a login command, constructor or config');
    }
  }
}

const VALUE_STOP = /[\s"'`,;)}\]<>]/;
const OPERATOR = /^(?::{1,3}=|===?|!==?|=>|\?=|=|:)/;
/** Terraform / HCL: `variable "db_password" { default = "…" }` assigns through the block's default. */
const HCL_DEFAULT = /^\{\s{0,40}default\s{0,8}=/;

/**
 * `name = value` / `name: value` / `"name": "value"` where the name says credential. Keyword hits are found
 * with one literal alternation; the surrounding name and the value are then read a bounded distance. Names
 * that only name a service (`cloudflare: …`) or end in camelCase `…Key` are found from the operators instead,
 * which prose rarely has.
 */
function scanAssignments(t: string, emit: Emit, onOpen?: OpenValue): void {
  // Every assignment form needs one of these operators (or a command-line flag's dash, or a pair's comma).
  if (t.indexOf('=') === -1 && t.indexOf(':') === -1 && t.indexOf('-') === -1 && t.indexOf(',') === -1) return;
  KEYWORD.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = KEYWORD.exec(t)) !== null) {
    let nameStart = m.index;
    while (nameStart > 0 && m.index - nameStart < 64 && isNameChar(t.charCodeAt(nameStart - 1))) nameStart--;
    let nameEnd = m.index + m[0].length;
    while (nameEnd < t.length && nameEnd - m.index < 64 && isNameChar(t.charCodeAt(nameEnd))) nameEnd++;
    KEYWORD.lastIndex = Math.max(KEYWORD.lastIndex, readAssignment(t, nameStart, nameEnd, emit, onOpen));
  }
  scanVendorAssignments(t, emit, onOpen);
}

function scanVendorAssignments(t: string, emit: Emit, onOpen?: OpenValue): void {
  OPERATOR_CHAR.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = OPERATOR_CHAR.exec(t)) !== null) {
    let nameEnd = m.index;
    while (nameEnd > 0 && m.index - nameEnd < 4 && /["'\]\s]/.test(t[nameEnd - 1])) nameEnd--;
    let nameStart = nameEnd;
    while (nameStart > 0 && nameEnd - nameStart < 64 && isNameChar(t.charCodeAt(nameStart - 1))) nameStart--;
    if (nameStart === nameEnd) continue;
    const name = t.slice(nameStart, nameEnd);
    // Names with a credential word were read by the keyword pass.
    if (CREDENTIAL_NAME.test(name) || (!VENDOR_NAME.test(name) && !CAMEL_KEY.test(name))) continue;
    OPERATOR_CHAR.lastIndex = Math.max(OPERATOR_CHAR.lastIndex, readAssignment(t, nameStart, nameEnd, emit, onOpen));
  }
}

/** A credential value that reaches the end of a growing text, starting at `valueStart`: more of it may follow. */
type OpenValue = (valueStart: number) => void;

/** Reads `<op> value` after the name at [nameStart, nameEnd), scores it and emits; returns where to resume. */
function readAssignment(t: string, nameStart: number, nameEnd: number, emit: Emit, onOpen?: OpenValue): number {
  const name = t.slice(nameStart, nameEnd);
  const nameQuoted = nameStart > 0 && /["'`]/.test(t[nameStart - 1]);
  let i = nameEnd;
  // quotes (also backslash-escaped ones) and spaces, then an assignment operator, then spaces and an opening quote
  while (i < t.length && i - nameEnd < 8 && /["'\]\s\\]/.test(t[i]) && t[i] !== '\n') i++;
  // `--password value` / `-Password value`: a command-line flag takes the next word.
  const flag = (t[nameStart] === '-' || (nameStart > 0 && t[nameStart - 1] === '-')) && /\s/.test(t.slice(nameEnd, i));
  const ahead = t.slice(i, i + 48);
  // ("API_KEY", "value"): a quoted name, a comma, a quoted value, as in setters and build-config calls.
  const pair = nameQuoted && /^,\s{0,8}["'`]/.test(ahead);
  const op = flag ? [''] : pair ? [','] : (OPERATOR.exec(ahead) ?? HCL_DEFAULT.exec(ahead));
  if (!op) return i;
  i += op[0].length;
  while (i < t.length && (t[i] === ' ' || t[i] === '\t')) i++;
  if (t[i] === '\\' && /["']/.test(t[i + 1] ?? '')) i++; // \"value\" inside a string literal
  let quote = '';
  if (t[i] === '"' || t[i] === "'" || t[i] === '`') quote = t[i++];
  // A double-quoted literal inside single quotes ('"value"'), as Gradle's buildConfigField takes it.
  if (quote === "'" && t[i] === '"') i++;
  const valueStart = i;
  while (i < t.length && i - valueStart < 256 && (quote ? t[i] !== quote && t[i] !== '\n' : !VALUE_STOP.test(t[i]))) i++;
  if (onOpen) {
    // Probing a stream's tail: only where a value may still be growing matters, not its score.
    if (i === t.length) onOpen(valueStart);
    return i;
  }
  let valueEnd = i;
  while (valueEnd > valueStart && (t[valueEnd - 1] === '\\' || (quote === "'" && t[valueEnd - 1] === '"'))) valueEnd--;
  const value = t.slice(valueStart, valueEnd);
  const score = assignmentScore(name, value, quote !== '');
  if (score > 0) emit(/aws/i.test(name) && /^[A-Za-z0-9/+]{40}$/.test(value) ? 'AWS_SECRET_KEY' : 'GENERIC_SECRET', valueStart, valueEnd, score, `credential assigned to "${name.slice(0, 40)}"`);
  return i;
}

function isNameChar(c: number): boolean {
  return isWordChar(c) || c === 45 || c === 46; // plus - .
}

/** How likely `value` is a real credential given the name it is assigned to; 0 when it clearly is not. */
export function assignmentScore(name: string, value: string, quoted: boolean): number {
  if (isDocumentedExample(value) && (CREDENTIAL_NAME.test(name) || CAMEL_KEY.test(name))) return EXAMPLE_SCORES.documented;
  if (value.length < 6 || value.length > 256 || isPlaceholder(value) || CREDENTIAL_WORD.test(value)) return 0;
  // Version-1 UUIDs are a timestamp and a node id: predictable, so no service issues one as a secret.
  if (isTimeBasedUuid(value)) return 0;
  const vendor = vendorShape(name, value);
  if (vendor > 0) return vendor;
  if (!CREDENTIAL_NAME.test(name) && !CAMEL_KEY.test(name)) return vendorOnlyScore(name, value);
  if (/csrf|xsrf|^no[t_-]|(?:^|[_.-])id$|Id$/i.test(name)) return 0;
  // "…_key" names that are not credentials: database, cache and lookup keys, public keys.
  if (/(?:public|primary|foreign|sort|cache|partition|lookup|hash|idempot|unique|composite|row|map|dict|object|s3|bucket|field|column|index|group|message|i18n|translation)[_.-]?key$/i.test(name)) return 0;
  if (isReference(value, quoted)) return 0;
  if (/^\d+$/.test(value) && value.length < 12) return 0;
  const entropy = shannonEntropy(value);
  const classes = Number(/[a-z]/.test(value)) + Number(/[A-Z]/.test(value)) + Number(/\d/.test(value)) + Number(/[^A-Za-z0-9]/.test(value));
  if (PASSWORD_KEY.test(name)) {
    // Passwords can be plain words; an unquoted ALL_CAPS name is a variable, not a password.
    if (!quoted && /^[A-Z][A-Z0-9_]+$/.test(value)) return 0;
    return entropy >= 2.5 ? 0.7 : 0.5;
  }
  // A bare "secret" (shared secrets, JWT signing secrets) can be a short phrase, as a password can.
  if (/(?:^|[_.-])secret$|[a-z]Secret$/i.test(name) && quoted && value.length >= 8 && entropy >= 2.5) return 0.6;
  if (value.length < 12) return 0;
  // Words run together ("SomeOtherValue", "defaultClientSecret") name something; a key has digits or symbols.
  if (/^[A-Za-z]+$/.test(value) && !/[A-Z]{2}/.test(value)) return 0;
  if (entropy >= 3.5 && classes >= 2) return 0.8;
  if (entropy >= 3.0) return 0.6;
  return 0;
}

/** References, not literals: variables, calls, lookups, dotted names, paths, selectors, host names, spaces. */
function isReference(value: string, quoted: boolean): boolean {
  if (/^[$%@&*/#]|^(?:env|process|os|config|settings|self|this|params|args|request)\b|:\/\/|\s/.test(value)) return true;
  if (!quoted && /[()[\]{}]/.test(value)) return true;
  return /^[A-Za-z_]+\d{0,2}(?:\.[A-Za-z_]+\d{0,2})+$/.test(value) || /^[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}(?::\d+)?$/i.test(value);
}

/** A value in the documented shape of the vendor named in the assignment (`sumologic_access_id = "su…"`). */
function vendorShape(name: string, value: string): number {
  for (const { vendor, shape } of VENDOR_SHAPES) if (vendor.test(name) && shape.test(value) && looksRandom(value)) return 0.8;
  return 0;
}

/**
 * A name that only names a service (`cloudflare:`, `postmark_server:`) is a credential when the value is a
 * random-looking token: hex, base64 or a UUID, at least 16 characters, never an id, host, hash or version.
 */
function vendorOnlyScore(name: string, value: string): number {
  if (!VENDOR_NAME.test(name) || NOT_CREDENTIAL_SUFFIX.test(name)) return 0;
  if (!/^[A-Za-z0-9_+/=-]{16,256}$/.test(value) || !/\d/.test(value) || !/[A-Za-z]/.test(value)) return 0;
  return shannonEntropy(value) >= 3.2 ? 0.7 : 0;
}

/** Version-1 UUIDs encode a timestamp and a node id: identifiers, never generated as secrets. */
function isTimeBasedUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}

/** Every scan of text as it reads; returns the hints for encoded forms its token walk saw. */
function scanPlain(t: string, emit: Emit): HiddenHints {
  const hints = scanProviders(t, emit);
  scanPrivateKeys(t, emit);
  scanJwts(t, emit);
  scanCredentialUrls(t, emit);
  scanAuthHeaders(t, emit);
  scanOtherPasswordForms(t, emit);
  scanAssignments(t, emit);
  return hints;
}

export function createSecretsDetector(defaultThreshold = DEFAULT_THRESHOLD): Detector {
  return {
    id: 'secrets',
    entities: SECRET_ENTITIES,
    scan(nt: NormalizedText, opts?: ScanOptions): Match[] {
      const out: Match[] = [];
      const t = nt.text;
      const emit: Emit = (entity, start, end, score, reason) => {
        if (!wanted(opts, entity)) return;
        const scored = scoreInContext(t, entity, start, end, score, reason);
        out.push({ detector: 'secrets', entity, start: nt.toOriginal(start), end: nt.toOriginalEnd(end), score: scored.score, reason: scored.reason });
      };
      const plain: [number, number][] = [];
      const hints = scanPlain(t, (entity, start, end, score, reason) => {
        plain.push([start, end]);
        emit(entity, start, end, score, reason);
      });
      scanHidden(t, scanPlain, emit, plain, hints);
      return dropContained(finish(out, opts?.threshold ?? defaultThreshold));
    },
    pendingTail: secretsPendingTail,
    // An assignment's name, quotes and operator, or a credential constructor's leading arguments, come first.
    lookback: 640,
  };
}

/**
 * Examples and weak values are scored by where they appear: in documentation or sample code (words such as
 * "for example", "tutorial", "the following snippet" in the 400 characters before) a well-known or low-entropy
 * password, a password hash, a test-mode key or a documented example is sample code; in a config file it is a leak.
 */
function scoreInContext(t: string, entity: string, start: number, end: number, score: number, reason: string): { score: number; reason: string } {
  const value = t.slice(start, end);
  const wellKnown = entity === 'GENERIC_SECRET' && isWellKnownPassword(value);
  const example = score === EXAMPLE_SCORES.documented;
  const weak = wellKnown || example || entity === 'PASSWORD_HASH' || reason.startsWith('stripe-test') || (entity === 'GENERIC_SECRET' && /passw|pwd|passphrase/i.test(reason) && shannonEntropy(value) < 3);
  if (!weak) return { score, reason };
  if (documentationContext(t, start)) {
    return { score: Math.min(score, example ? EXAMPLE_SCORES.documentedInDocs : EXAMPLE_SCORES.inDocs), reason: `${reason} (in documentation or sample code)` };
  }
  if (example && configContext(t, start)) return { score: EXAMPLE_SCORES.documentedInConfig, reason: `${reason} (in a config file)` };
  return { score, reason };
}

/** A generic match inside a provider match (or vice versa) is one finding: keep the longer span. */
function dropContained(ms: Match[]): Match[] {
  const kept: Match[] = [];
  for (const m of ms) {
    const last = kept[kept.length - 1];
    if (last && m.start < last.end) {
      if (m.end - m.start > last.end - last.start) kept[kept.length - 1] = m;
    } else kept.push(m);
  }
  return kept;
}

/**
 * Formats whose value is recognised by its shape or by the words before it, as RE2 probes reporting the span
 * that would be redacted: provider tokens (whole match), JWTs, credential URLs, and the values after
 * Authorization headers, curl credentials, password phrases and bundler settings (context words may be
 * released while the value is still unknown).
 */
let tokenProbe: TailProbe | undefined;
/** Built on first use: only streams need it, and compiling it takes a few hundred milliseconds. */
const TOKEN_PROBE = (): TailProbe =>
  (tokenProbe ??= new TailProbe([
    combinedProbe([...PROVIDER_RULES.map((r) => ({ source: tokenStartAsBoundary(r.re) })), { source: JWT.source }, { source: CREDENTIAL_URL.source, flags: 'i' }]),
  ]));

/**
 * Values recognised by the words before them (Authorization headers, curl credentials, password phrases,
 * bundler settings). Each probe runs from the first occurrence of its anchor in the window, and not at all
 * when the anchor is absent, which is the case for nearly all text.
 */
interface ContextForm {
  anchor: RegExp;
  source: string;
  flags: string;
  group: number;
  probe?: TailProbe;
}
const CONTEXT_FORMS: ContextForm[] = [
  { anchor: /authorization/i, source: AUTH_HEADER.source, flags: 'i', group: 1 },
  { anchor: /-u/, source: CURL_USER.source, flags: '', group: 1 },
  { anchor: /-h/i, source: CURL_HEADER.source, flags: 'i', group: 2 },
  { anchor: /BUNDLE_/, source: BUNDLER.source, flags: '', group: 1 },
  ...OTHER_PASSWORD_FORMS.map(({ gate, anchor, re }) => ({
    anchor: anchor ?? new RegExp(escapeRegex(gate ?? ''), re.flags.includes('i') ? 'i' : ''),
    source: re.source,
    flags: re.flags,
    group: 1,
  })),
];

function contextHold(text: string): number {
  let holdFrom = text.length;
  for (const form of CONTEXT_FORMS) {
    const m = form.anchor.exec(text);
    if (!m) continue;
    form.probe ??= new TailProbe([combinedProbe([{ source: form.source, flags: form.flags, group: form.group }])]);
    holdFrom = Math.min(holdFrom, form.probe.holdFrom(text, 0, Math.max(0, m.index - 1)));
  }
  return holdFrom;
}
/**
 * A token-start lookbehind followed by a word character is a word boundary, which RE2 has: threads then start
 * only where a token can, not at every character of a long word. Where a non-word character may follow, the
 * assertion is dropped instead (the probe then starts more threads, which only holds more).
 */
function tokenStartAsBoundary(re: string): string {
  return re.split(B).join('(?<!WORD)').split(BS).join('(?<!WORD)').replace(/\(\?<!WORD\)(?=\[A-Za-z0-9_~)/g, '').split('(?<!WORD)').join('\\b');
}
const PEM_HOLD_MAX = 16384;
/** An assignment whose value may still be growing: its name, operator and value fit in this many characters. */
const ASSIGNMENT_REACH = 512;

/**
 * What could still become a secret: an opened PEM block (until its END line, bounded), a value still forming
 * in one of the probed formats, and a credential assignment whose value reaches the end of the text.
 */
export function secretsPendingTail(text: string, from = 0): number {
  const n = text.length;
  const begin = text.lastIndexOf('-----BEGIN', n);
  if (begin >= from && n - begin <= PEM_HOLD_MAX && text.indexOf('-----END', begin) === -1) return n - begin;
  let holdFrom = Math.min(TOKEN_PROBE().holdFrom(text, from), contextHold(text), hiddenHoldFrom(text));
  const sliceStart = Math.max(0, n - ASSIGNMENT_REACH);
  scanAssignments(text.slice(sliceStart), () => undefined, (valueStart) => {
    holdFrom = Math.min(holdFrom, sliceStart + valueStart);
  });
  return Math.max(0, n - Math.max(from, holdFrom));
}
