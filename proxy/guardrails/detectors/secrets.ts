/**
 * Secrets: provider token formats (one combined pattern of fixed prefixes, so a single left-to-right pass),
 * JWTs whose header decodes to JSON with "alg", PEM private keys, URLs and connection strings carrying a
 * password, Authorization headers, and a generic `key = value` assignment detector with an entropy floor.
 * Known placeholders and documentation examples are dropped.
 */
import type { NormalizedText } from '../normalize';
import { finish, isAlnum, isWordChar, wanted } from './context';
import type { Detector, Match, ScanOptions } from './types';

interface ProviderRule {
  entity: string;
  provider: string;
  /** JS regex source, no capture groups; must start with a fixed literal prefix. */
  re: string;
  score?: number;
}

const B = '(?<![A-Za-z0-9_])'; // token start
const E = '(?![A-Za-z0-9_])'; // token end

const PROVIDER_RULES: ProviderRule[] = [
  { entity: 'AWS_ACCESS_KEY', provider: 'aws', re: `${B}(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z2-7]{16}${E}` },
  { entity: 'HF_TOKEN', provider: 'huggingface', re: `${B}hf_[A-Za-z0-9]{30,40}${E}` },
  { entity: 'HF_TOKEN', provider: 'huggingface-org', re: `${B}api_org_[A-Za-z0-9]{30,40}${E}` },
  { entity: 'ANTHROPIC_KEY', provider: 'anthropic', re: `${B}sk-ant-(?:api|admin|sid)\\d{2}-[A-Za-z0-9_-]{80,120}${E}` },
  { entity: 'OPENAI_KEY', provider: 'openai', re: `${B}sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,200}T3BlbkFJ[A-Za-z0-9_-]{20,200}${E}` },
  { entity: 'OPENAI_KEY', provider: 'openai', re: `${B}sk-(?:proj-|svcacct-|admin-)[A-Za-z0-9_-]{40,200}${E}`, score: 0.85 },
  { entity: 'OPENAI_KEY', provider: 'openai-compatible', re: `${B}sk-[A-Za-z0-9]{32,64}${E}`, score: 0.75 },
  { entity: 'GITHUB_TOKEN', provider: 'github', re: `${B}(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}${E}` },
  { entity: 'GITHUB_TOKEN', provider: 'github', re: `${B}github_pat_[A-Za-z0-9_]{60,255}${E}` },
  {
    entity: 'GITLAB_TOKEN',
    provider: 'gitlab',
    re: `${B}(?:gl(?:pat|rt|dt|soat|ffct|ft)-[A-Za-z0-9_-]{20}|glpat-[A-Za-z0-9_-]{27,300}\\.[0-9a-z]{2}\\.[0-9a-z]{7,9}|glptt-[0-9a-f]{40}|glimt-[A-Za-z0-9_-]{25}|glagent-[A-Za-z0-9_-]{50}|gloas-[A-Za-z0-9_-]{64}|glcbt-[0-9a-fA-F]{1,5}_[A-Za-z0-9_-]{20}|GR1348941[A-Za-z0-9_-]{20})${E}`,
  },
  { entity: 'SLACK_TOKEN', provider: 'slack', re: `${B}xox(?:[abposre]|e\\.xox[bp])-\\d{1,15}-[A-Za-z0-9-]{8,250}${E}` },
  { entity: 'SLACK_TOKEN', provider: 'slack-app', re: `${B}xapp-\\d-[A-Z0-9]{9,12}-\\d{10,14}-[a-f0-9]{60,70}${E}` },
  { entity: 'SLACK_WEBHOOK', provider: 'slack', re: `https?://hooks\\.slack\\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_+-]{20,120}` },
  { entity: 'TEAMS_WEBHOOK', provider: 'microsoft-teams', re: `https://[a-z0-9-]+\\.(?:webhook\\.)?office(?:365)?\\.com/webhook(?:b2)?/[A-Za-z0-9@/_-]{40,300}` },
  { entity: 'STRIPE_KEY', provider: 'stripe', re: `${B}(?:sk|rk)_live_[A-Za-z0-9]{16,255}${E}` },
  { entity: 'STRIPE_KEY', provider: 'stripe-test', re: `${B}(?:sk|rk)_test_[A-Za-z0-9]{16,255}${E}`, score: 0.7 },
  { entity: 'GOOGLE_API_KEY', provider: 'google', re: `${B}AIza[0-9A-Za-z_-]{35}${E}` },
  { entity: 'GOOGLE_OAUTH', provider: 'google', re: `${B}(?:GOCSPX-[A-Za-z0-9_-]{28}|ya29\\.[A-Za-z0-9_-]{30,300})${E}` },
  { entity: 'NPM_TOKEN', provider: 'npm', re: `${B}npm_[A-Za-z0-9]{36}${E}` },
  { entity: 'PYPI_TOKEN', provider: 'pypi', re: `${B}pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,300}${E}` },
  { entity: 'API_TOKEN', provider: 'sendgrid', re: `${B}SG\\.[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{43}${E}` },
  { entity: 'API_TOKEN', provider: 'digitalocean', re: `${B}do[opr]_v1_[a-f0-9]{64}${E}` },
  { entity: 'API_TOKEN', provider: 'shopify', re: `${B}shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}${E}` },
  { entity: 'API_TOKEN', provider: 'hashicorp-vault', re: `${B}hv[sbr]\\.[A-Za-z0-9_-]{24,200}${E}` },
  { entity: 'API_TOKEN', provider: 'terraform-cloud', re: `${B}[A-Za-z0-9]{14}\\.atlasv1\\.[A-Za-z0-9_=-]{60,100}${E}` },
  { entity: 'API_TOKEN', provider: 'doppler', re: `${B}dp\\.(?:pt|st|sa|ct|scim|audit)\\.[A-Za-z0-9]{20,60}${E}` },
  { entity: 'API_TOKEN', provider: 'square', re: `${B}(?:sq0atp-[A-Za-z0-9_-]{22}|sq0csp-[A-Za-z0-9_-]{43}|EAAA[A-Za-z0-9_-]{60})${E}` },
  { entity: 'API_TOKEN', provider: 'atlassian', re: `${B}AT(?:ATT|CTT)3xFfGF0[A-Za-z0-9_=-]{100,300}${E}` },
  { entity: 'API_TOKEN', provider: 'artifactory', re: `${B}AKC[p][A-Za-z0-9]{69,80}${E}` },
  { entity: 'API_TOKEN', provider: 'databricks', re: `${B}dapi[a-f0-9]{32}(?:-\\d)?${E}` },
  { entity: 'API_TOKEN', provider: 'notion', re: `${B}(?:ntn_[A-Za-z0-9]{40,50}|secret_[A-Za-z0-9]{43})${E}` },
  { entity: 'API_TOKEN', provider: 'grafana', re: `${B}(?:glsa_[A-Za-z0-9]{32}_[a-fA-F0-9]{8}|glc_[A-Za-z0-9+/]{32,400}={0,2})${E}` },
  { entity: 'API_TOKEN', provider: 'sentry', re: `${B}sntry[su]_[A-Za-z0-9+/=_-]{40,300}${E}` },
  { entity: 'API_TOKEN', provider: 'linear', re: `${B}lin_api_[A-Za-z0-9]{40}${E}` },
  { entity: 'API_TOKEN', provider: 'groq', re: `${B}gsk_[A-Za-z0-9]{48,56}${E}` },
  { entity: 'API_TOKEN', provider: 'perplexity', re: `${B}pplx-[A-Za-z0-9]{48,56}${E}` },
  { entity: 'API_TOKEN', provider: 'tavily', re: `${B}tvly-(?:dev-|prod-)?[A-Za-z0-9]{32}${E}` },
  { entity: 'API_TOKEN', provider: 'replicate', re: `${B}r8_[A-Za-z0-9]{37}${E}` },
  { entity: 'API_TOKEN', provider: 'jina', re: `${B}jina_[a-f0-9]{32}[A-Za-z0-9_-]{20,40}${E}` },
  { entity: 'API_TOKEN', provider: 'figma', re: `${B}fig[dpu]_[A-Za-z0-9_-]{38,45}${E}` },
  { entity: 'API_TOKEN', provider: 'firecrawl', re: `${B}fc-[a-f0-9]{32}${E}` },
  { entity: 'API_TOKEN', provider: 'dockerhub', re: `${B}dckr_pat_[A-Za-z0-9_-]{27}${E}` },
  { entity: 'API_TOKEN', provider: 'rubygems', re: `${B}rubygems_[a-f0-9]{48}${E}` },
  { entity: 'API_TOKEN', provider: 'nuget', re: `${B}oy2[a-z0-9]{43}${E}` },
  { entity: 'API_TOKEN', provider: 'postman', re: `${B}PMAK-[a-f0-9]{24}-[a-f0-9]{34}${E}` },
  { entity: 'API_TOKEN', provider: 'mailgun', re: `${B}key-[a-z0-9]{32}${E}` },
  { entity: 'API_TOKEN', provider: 'mailchimp', re: `${B}[a-f0-9]{32}-us\\d{1,2}${E}` },
  { entity: 'API_TOKEN', provider: 'twilio', re: `${B}(?:SK|AC)[a-f0-9]{32}${E}` },
  { entity: 'API_TOKEN', provider: 'facebook', re: `${B}EAA[A-Za-z0-9]{90,400}${E}` },
  { entity: 'API_TOKEN', provider: 'sourcegraph', re: `${B}sgp_(?:[a-fA-F0-9]{16}|local)_[a-fA-F0-9]{40}${E}` },
  { entity: 'API_TOKEN', provider: 'fly.io', re: `${B}(?:FlyV1 )?fm[12][ar]?_[A-Za-z0-9+/=_-]{100,}` },
  { entity: 'API_TOKEN', provider: 'pulumi', re: `${B}pul-[a-f0-9]{40}${E}` },
  { entity: 'API_TOKEN', provider: 'heroku', re: `${B}HRKU-AA[A-Za-z0-9_-]{58}${E}` },
  { entity: 'API_TOKEN', provider: 'telegram', re: `${B}\\d{8,10}:AA[A-Za-z0-9_-]{33}${E}` },
  { entity: 'API_TOKEN', provider: 'discord', re: `${B}[MNO][A-Za-z0-9_-]{23,25}\\.[A-Za-z0-9_-]{6}\\.[A-Za-z0-9_-]{27,38}${E}`, score: 0.7 },
  { entity: 'API_TOKEN', provider: 'twitch', re: `${B}live_\\d{6,12}_[A-Za-z0-9]{30}${E}` },
  { entity: 'API_TOKEN', provider: 'dependency-track', re: `${B}odt_[A-Za-z0-9]{32}${E}` },
  { entity: 'API_TOKEN', provider: 'adafruit', re: `${B}aio_[A-Za-z0-9]{28}${E}` },
  { entity: 'API_TOKEN', provider: 'crates.io', re: `${B}cio[A-Za-z0-9]{32}${E}` },
  { entity: 'API_TOKEN', provider: 'newrelic', re: `${B}(?:NRAK-[A-Z0-9]{27}|NRII-[A-Za-z0-9_-]{32}|NRIQ-[A-Za-z0-9_-]{32}|(?:eu01xx[a-f0-9]{30}|[a-f0-9]{36})NRAL|NRJS-[a-f0-9]{19})${E}` },
  { entity: 'API_TOKEN', provider: 'cloudflare-origin-ca', re: `${B}v1\\.0-[a-f0-9]{24}-[a-f0-9]{146}${E}` },
  { entity: 'API_TOKEN', provider: 'hashicorp-vault-legacy', re: `${B}[sb]\\.[A-Za-z0-9]{24}${E}`, score: 0.6 },
  { entity: 'API_TOKEN', provider: 'salesforce', re: `${B}00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{80,120}${E}` },
  { entity: 'API_TOKEN', provider: 'mapbox', re: `${B}[pst]k\\.eyJ[A-Za-z0-9_-]{20,}\\.[A-Za-z0-9_-]{20,}${E}` },
  { entity: 'API_TOKEN', provider: 'fly.io', re: `${B}fo1_[A-Za-z0-9_-]{43}${E}` },
  { entity: 'API_TOKEN', provider: 'intra42', re: `${B}s-s4t2(?:ud|af)-[a-f0-9]{64}${E}` },
  { entity: 'API_TOKEN', provider: 'sourcegraph', re: `${B}sgp_[a-fA-F0-9]{40}${E}` },
  { entity: 'API_TOKEN', provider: '1password', re: `${B}ops_eyJ[A-Za-z0-9+/=_-]{100,}` },
  { entity: 'API_TOKEN', provider: 'azure-ad', re: `${B}[A-Za-z0-9_~.-]{3}\\dQ~[A-Za-z0-9_~.-]{31,34}${E}`, score: 0.8 },
  { entity: 'PASSWORD_HASH', provider: 'crypt', re: `(?:\\$2[abxy]?\\$\\d{2}\\$[./A-Za-z0-9]{53}|\\$[156]\\$(?:rounds=\\d{1,7}\\$)?[./A-Za-z0-9]{1,16}\\$[./A-Za-z0-9]{22,86}|\\$argon2(?:id|i|d)\\$[^\\s$]{1,40}\\$[^\\s$]{1,40}\\$[A-Za-z0-9+/]{16,}\\$[A-Za-z0-9+/]{16,})` },
  { entity: 'PASSWORD_HASH', provider: 'kerberos', re: `\\$krb5(?:asrep|tgs)\\$\\d{2}\\$[^\\s]{20,4000}` },
  { entity: 'PRIVATE_KEY', provider: 'age', re: `${B}AGE-SECRET-KEY-1[0-9A-Z]{58}${E}` },
  { entity: 'PRIVATE_KEY', provider: 'putty', re: `PuTTY-User-Key-File-\\d: ` },
];

const PRIVATE_KEY_BEGIN = /-----BEGIN[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----/g;
const JWT = /(?<![A-Za-z0-9_.-])eyJ[A-Za-z0-9_-]{8,2000}\.eyJ[A-Za-z0-9_-]{4,8000}(?:\.[A-Za-z0-9_-]{0,2000})?(?![A-Za-z0-9_-])|(?<![A-Za-z0-9_.-])eyJ[A-Za-z0-9_-]{8,2000}\.[A-Za-z0-9_-]{4,8000}\.[A-Za-z0-9_-]{0,2000}(?![A-Za-z0-9_-])/g;
/** scheme://user:password@host — databases, brokers, and plain http(s) basic credentials. */
const CREDENTIAL_URL = /(?<![A-Za-z0-9+.-])([a-z][a-z0-9+.-]{1,20}):\/\/([^\s:@/'"`]{1,128}):([^\s@/'"`]{1,128})@[A-Za-z0-9_.-]{1,253}/gi;
const AUTH_HEADER = /\b(?:authorization|proxy-authorization)["']?\s*[:=]\s*["']?(?:bearer|basic|token|bot)\s+([A-Za-z0-9._~+/=-]{8,2000})/gi;
const CURL_USER = /(?:^|\s)(?:-u|--user)\s+["']?([^\s:"']{1,128})["']?:["']?([^\s"']{1,128})/g;
/** Passwords passed positionally or as flags: psexec-style `-u X -p Y`, .netrc lines, .NET NetworkCredential, XML app settings. */
const OTHER_PASSWORD_FORMS: { gate: string; re: RegExp }[] = [
  { gate: ' -p', re: /(?:^|\s)-u\s+\S{1,64}\s+-p\s+([^\s"'$%]{3,128})/g },
  { gate: 'machine', re: /\bmachine\s+\S{1,253}\s+login\s+\S{1,128}\s+password\s+(\S{3,128})/g },
  { gate: 'NetworkCredential', re: /NetworkCredential\(\s*"[^"\n]{0,128}"\s*,\s*"([^"\n]{4,128})"/g },
  { gate: '<add', re: /<add\s+key="[^"\n]{0,64}(?:password|secret|token|apikey)[^"\n]{0,32}"\s+value="([^"\n]{4,256})"/gi },
];

/** Names in an assignment that say the value is a credential. */
const KEYWORD = /api[_.-]?key|apikey|secret|token|passw(?:or)?d|pwd|passphrase|credential|private[_.-]?key|access[_.-]?key|account[_.-]?key|license[_.-]?key|auth[_.-]?key|client[_.-]?secret|_pw\b|\bpass\b|_pass\b|_pat\b|[_.-]key\b/gi;
const PASSWORD_KEY = /passw(?:or)?d|pwd|passphrase|_pw$|(?:^|_)pass$/i;

const TEMPLATE = /xxxx|\*\*\*|\.\.\.|<[^>]*>|\{\{|\$\{|%\(|\$\(|#\{/i;
const PLACEHOLDER_WORDS = /example|sample|dummy|placeholder|your[_-]?|changeme|change[_-]me|changeit|redacted|insert|replace|fake|foobar|here$|not[_-]?a[_-]?real/i;
/** A value that names a credential instead of being one ("NEXUS-API-KEY", "notapassword", "sumologic_secret"). */
const CREDENTIAL_WORD = /passw(?:or)?d|secret|token|api[_-]?key/i;
const PLACEHOLDER_VALUES = /^(?:password|passwd|pass|secret|token|key|apikey|api_key|none|null|nil|undefined|true|false|empty|string|value|test|admin|root|user|username|default|required|optional|str|bool|int)$/i;
const KNOWN_EXAMPLES = new Set(['AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY']);

export const SECRET_ENTITIES = [
  ...new Set([...PROVIDER_RULES.map((r) => r.entity), 'AWS_SECRET_KEY', 'JWT', 'PRIVATE_KEY', 'CONNECTION_STRING', 'AUTH_HEADER', 'GENERIC_SECRET', 'PASSWORD_HASH']),
] as readonly string[];

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
  if (KNOWN_EXAMPLES.has(value) || TEMPLATE.test(value) || PLACEHOLDER_WORDS.test(value) || PLACEHOLDER_VALUES.test(value)) return true;
  let distinct = 0;
  const seen = new Set<string>();
  for (const c of value) if (!seen.has(c)) {
    seen.add(c);
    distinct++;
  }
  if (distinct <= 3) return true; // "xxxxxxxx", "00000000", "aaaaend"-style filler
  return /0123456789|123456789012|abcdefghij/i.test(value) && distinct <= 16;
}

function tokenBody(match: string): string {
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
    return /"alg"\s*:\s*"/.test(header);
  }
}

type Emit = (entity: string, start: number, end: number, score: number, reason: string) => void;

function scanProviders(t: string, emit: Emit): void {
  // Spaces end every token, and indexOf finds them far faster than a character loop: only space-free
  // stretches of at least MIN_TOKEN characters are walked character by character.
  const n = t.length;
  let from = 0;
  while (from < n) {
    let space = t.indexOf(' ', from);
    if (space === -1) space = n;
    if (space - from >= MIN_TOKEN) scanStretch(t, from, space, emit);
    from = space + 1;
  }
  if (t.indexOf('BUNDLE_') === -1) return;
  BUNDLER.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = BUNDLER.exec(t)) !== null) {
    const start = m.index + m[0].length - m[1].length;
    emit('CONNECTION_STRING', start, start + m[1].length, 0.85, 'bundler source credentials');
  }
}

function scanStretch(t: string, from: number, to: number, emit: Emit): void {
  let runStart = from;
  for (let i = from; i <= to; i++) {
    const c = i < to ? t.charCodeAt(i) : 32;
    if (c < 128 && TOKEN_CHAR[c] === 1) continue;
    if (i - runStart >= MIN_TOKEN) scanToken(t.slice(runStart, i), runStart, emit);
    runStart = i + 1;
  }
}

function scanToken(token: string, offset: number, emit: Emit): void {
  COMBINED.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = COMBINED.exec(token)) !== null) {
    const rule = matchedRule(m);
    const value = m[0];
    if (!rule || isPlaceholder(tokenBody(value)) || KNOWN_EXAMPLES.has(value)) continue;
    // Formats without a distinctive prefix must look random: digits among the letters, no long runs of one class.
    if ((rule.score ?? 0.9) < 0.9 && !looksRandom(tokenBody(value))) continue;
    emit(rule.entity, offset + m.index, offset + m.index + value.length, rule.score ?? 0.9, `${rule.provider} token format`);
  }
}

function looksRandom(body: string): boolean {
  return /\d/.test(body) && /[A-Za-z]/.test(body) && !/[A-Za-z]{12}|\d{12}/.test(body) && shannonEntropy(body) >= 3;
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
    const body = t.slice(m.index + m[0].length, endMarker === -1 ? end : endMarker).replace(/\s|\\n/g, '');
    // A header with no key material (documentation, code that builds the marker) is not a key.
    const score = body.length >= 40 && !isPlaceholder(body.slice(0, 64)) ? 0.95 : 0.3;
    emit('PRIVATE_KEY', m.index, end, score, 'PEM private key block');
    PRIVATE_KEY_BEGIN.lastIndex = end;
  }
}

function scanJwts(t: string, emit: Emit): void {
  if (t.indexOf('eyJ') === -1) return;
  JWT.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = JWT.exec(t)) !== null) {
    if (jwtHeaderValid(m[0])) emit('JWT', m.index, m.index + m[0].length, 0.85, 'JWT with a decodable header');
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
  if (t.indexOf('-u') === -1) return;
  CURL_USER.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = CURL_USER.exec(t)) !== null) {
    const password = m[2];
    if (isPlaceholder(password) || /^[$%[{<]|>$/.test(password)) continue;
    const start = m.index + m[0].length - password.length;
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
  for (const { gate, re } of OTHER_PASSWORD_FORMS) {
    if (t.indexOf(gate) === -1) continue;
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(t)) !== null) {
      const password = m[1];
      if (isPlaceholder(password)) continue;
      const start = m.index + m[0].length - password.length - (m[0].endsWith('"') ? 1 : 0);
      emit('GENERIC_SECRET', start, start + password.length, 0.7, 'password in a login command or config');
    }
  }
}

const VALUE_STOP = /[\s"'`,;)}\]<>]/;

/**
 * `name = value` / `name: value` / `"name": "value"` where the name says credential. Keyword hits are found
 * with one literal alternation; the surrounding name and the value are then read a bounded distance.
 */
function scanAssignments(t: string, emit: Emit): void {
  // Every assignment form needs one of these operators (or a command-line flag's dash).
  if (t.indexOf('=') === -1 && t.indexOf(':') === -1 && t.indexOf('-') === -1) return;
  KEYWORD.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = KEYWORD.exec(t)) !== null) {
    let nameStart = m.index;
    while (nameStart > 0 && m.index - nameStart < 64 && isNameChar(t.charCodeAt(nameStart - 1))) nameStart--;
    let i = m.index + m[0].length;
    while (i < t.length && i - m.index < 64 && isNameChar(t.charCodeAt(i))) i++;
    const name = t.slice(nameStart, i);
    // quotes and spaces, then an assignment operator, then spaces and an opening quote
    const opStart = i;
    while (i < t.length && i - opStart < 8 && /["'\]\s]/.test(t[i]) && t[i] !== '\n') i++;
    // `--password value` / `-Password value`: a command-line flag takes the next word.
    const flag = (t[nameStart] === '-' || (nameStart > 0 && t[nameStart - 1] === '-')) && i > opStart && /\s/.test(t[i - 1]);
    const op = flag ? [''] : /^(?:::?=|:=|===?|!==?|=>|\?=|=|:)/.exec(t.slice(i, i + 3));
    if (!op) {
      KEYWORD.lastIndex = Math.max(KEYWORD.lastIndex, i);
      continue;
    }
    i += op[0].length;
    while (i < t.length && (t[i] === ' ' || t[i] === '\t')) i++;
    let quote = '';
    if (t[i] === '"' || t[i] === "'" || t[i] === '`') quote = t[i++];
    const valueStart = i;
    while (i < t.length && i - valueStart < 256 && (quote ? t[i] !== quote && t[i] !== '\n' : !VALUE_STOP.test(t[i]))) i++;
    const value = t.slice(valueStart, i);
    KEYWORD.lastIndex = Math.max(KEYWORD.lastIndex, i);
    const score = assignmentScore(name, value, quote !== '');
    if (score > 0) emit(/aws/i.test(name) && /^[A-Za-z0-9/+]{40}$/.test(value) ? 'AWS_SECRET_KEY' : 'GENERIC_SECRET', valueStart, i, score, `credential assigned to "${name.slice(0, 40)}"`);
  }
}

function isNameChar(c: number): boolean {
  return isWordChar(c) || c === 45 || c === 46; // plus - .
}

/** How likely `value` is a real credential given the name it is assigned to; 0 when it clearly is not. */
export function assignmentScore(name: string, value: string, quoted: boolean): number {
  if (value.length < 6 || value.length > 256 || isPlaceholder(value) || CREDENTIAL_WORD.test(value)) return 0;
  if (/csrf|xsrf|^no[t_-]|(?:^|[_.-])id$|Id$/i.test(name)) return 0;
  // "…_key" names that are not credentials: database, cache and lookup keys, public keys.
  if (/(?:public|primary|foreign|sort|cache|partition|lookup|hash|idempot|unique|composite|row|map|dict|object|s3|bucket|field|column|index|group|message|i18n|translation)[_.-]?key$/i.test(name)) return 0;
  // References, not literals: variables, calls, lookups, dotted names, paths, selectors, host names, spaces.
  if (/^[$%@&*/#]|^(?:env|process|os|config|settings|self|this|params|args|request)\b|:\/\/|\s/.test(value)) return 0;
  if (!quoted && /[()[\]{}]/.test(value)) return 0;
  if (/^[A-Za-z_]+\d{0,2}(?:\.[A-Za-z_]+\d{0,2})+$/.test(value) || /^[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}(?::\d+)?$/i.test(value)) return 0;
  if (/^\d+$/.test(value) && value.length < 12) return 0;
  const entropy = shannonEntropy(value);
  const classes = Number(/[a-z]/.test(value)) + Number(/[A-Z]/.test(value)) + Number(/\d/.test(value)) + Number(/[^A-Za-z0-9]/.test(value));
  if (PASSWORD_KEY.test(name)) {
    // Passwords can be plain words; an unquoted ALL_CAPS name is a variable, not a password.
    if (!quoted && /^[A-Z][A-Z0-9_]+$/.test(value)) return 0;
    return entropy >= 2.5 ? 0.7 : 0.5;
  }
  if (value.length < 12) return 0;
  if (entropy >= 3.5 && classes >= 2) return 0.8;
  if (entropy >= 3.0) return 0.6;
  return 0;
}

export function createSecretsDetector(defaultThreshold = DEFAULT_THRESHOLD): Detector {
  return {
    id: 'secrets',
    entities: SECRET_ENTITIES,
    scan(nt: NormalizedText, opts?: ScanOptions): Match[] {
      const out: Match[] = [];
      const emit: Emit = (entity, start, end, score, reason) => {
        if (!wanted(opts, entity)) return;
        out.push({ detector: 'secrets', entity, start: nt.toOriginal(start), end: nt.toOriginalEnd(end), score, reason });
      };
      const t = nt.text;
      scanProviders(t, emit);
      scanPrivateKeys(t, emit);
      scanJwts(t, emit);
      scanCredentialUrls(t, emit);
      scanAuthHeaders(t, emit);
      scanOtherPasswordForms(t, emit);
      scanAssignments(t, emit);
      return dropContained(finish(out, opts?.threshold ?? defaultThreshold));
    },
    pendingTail: secretsPendingTail,
  };
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

/** Literal prefixes a token can start with; a trailing fragment that is a prefix of one of them is held. */
const TOKEN_PREFIXES = [
  'AKIA', 'ASIA', 'hf_', 'api_org_', 'sk-', 'sk_live_', 'rk_live_', 'sk_test_', 'ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_',
  'glpat-', 'xox', 'xapp-', 'AIza', 'GOCSPX-', 'ya29.', 'npm_', 'pypi-', 'SG.', 'dop_v1_', 'shpat_', 'hvs.', 'dp.', 'eyJ', 'AGE-SECRET-KEY-',
  'https://hooks.slack.com/', '-----BEGIN',
];
const TAIL_MAX = 512;
const PEM_HOLD_MAX = 16384;

/**
 * What could still become a secret: an opened PEM block (until its END line, bounded), the last token when it
 * starts like a known token or could still grow into one, a URL that could still gain "user:pass@", and a
 * credential assignment whose value is still being written.
 */
export function secretsPendingTail(text: string): number {
  const n = text.length;
  const begin = text.lastIndexOf('-----BEGIN', n);
  if (begin !== -1 && n - begin <= PEM_HOLD_MAX && text.indexOf('-----END', begin) === -1) return n - begin;
  let k = n;
  while (k > 0 && n - k < TAIL_MAX && !/[\s"'`,;<>()[\]{}]/.test(text[k - 1])) k--;
  const token = text.slice(k);
  if (token.length === 0) return assignmentTail(text);
  for (const p of TOKEN_PREFIXES) {
    if (token.startsWith(p) || p.startsWith(token)) return Math.max(n - k, assignmentTail(text));
  }
  if (token.includes('://') || /[A-Za-z]/.test(token) && /\d/.test(token) && token.length >= 8) return Math.max(n - k, assignmentTail(text));
  return assignmentTail(text);
}

const ASSIGNMENT_TAIL = /(?:key|secret|token|passw(?:or)?d|pwd|authorization|bearer)[\w.-]{0,40}["']?\s{0,4}(?:[:=]|=>)?\s{0,4}["']?[^\s"']{0,256}$/i;

function assignmentTail(text: string): number {
  const window = text.slice(-320);
  const m = ASSIGNMENT_TAIL.exec(window);
  if (!m) return 0;
  // Only hold when the value part may be unfinished (no closing quote / whitespace after it).
  return isAlnum(window.charCodeAt(window.length - 1)) || /[:=\s"']$/.test(window) ? m[0].length : 0;
}
