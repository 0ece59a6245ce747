/**
 * Example credentials and the context that makes a credential an example. A documented example (the AWS
 * documentation's key pair, the jwt.io sample token, Stripe's documentation test keys) never works anywhere; a
 * well-known password (`hunter2`) or a password hash in a tutorial is sample code, while the same value in a config
 * file being sent out is a leak. Neither is dropped: both are scored (EXAMPLE_SCORES) by their context, and a pack's
 * threshold decides: the default pack's 0.5 reports a documented example only inside a config file and a weak
 * password everywhere but in documentation; `strict`'s 0.3 also reports a documented example on its own.
 */

export const EXAMPLE_SCORES = {
  /** A documented example value on its own: it cannot work, but a strict pack may still want to know. */
  documented: 0.45,
  /** The same among a config file's settings: someone is shipping it. */
  documentedInConfig: 0.6,
  /** The same inside documentation or sample code. */
  documentedInDocs: 0.15,
  /** The most anything weak (well-known or low-entropy passwords, hashes, test-mode keys) scores in documentation. */
  inDocs: 0.25,
} as const;

/** Values published in providers' documentation as examples. */
const DOCUMENTED_VALUES = new Set([
  // AWS documentation's access key pairs
  'AKIAIOSFODNN7EXAMPLE',
  'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  'AKIAI44QH8DHBEXAMPLE',
  'je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY',
  // Stripe documentation's test keys
  'sk_test_4eC39HqLyjWDarjtT1zdp7dc',
  'sk_test_BQokikJOvBiI2HlWgH4olfQ2',
  'pk_test_TYooMQauvdEDq54NiTphI7jx',
]);

/** Passwords known from jokes, comics and every "top passwords" list: in sample code they are samples. */
const WELL_KNOWN_PASSWORDS = new Set(
  [
    'hunter2', 'correcthorsebatterystaple', 'tr0ub4dor&3', 'p@ssw0rd', 'p@$$w0rd', 'passw0rd', 'password1', 'password12',
    'password123', 'password123!', 'pa55word', 'letmein', 'letmein123', 'qwerty', 'qwerty123', 'qwertyuiop', 'abc123', 'abcd1234',
    'iloveyou', 'admin123', 'administrator', 'secret123', 'welcome', 'welcome1', 'welcome123', 'monkey', 'dragon', 'trustno1',
    'sunshine', 'football', 'baseball', 'superman', 'batman', 'starwars', 'princess', 'shadow', 'master', 'michael', 'mustang',
    '123456', '1234567', '12345678', '123456789', '1234567890', '111111', '000000', '654321', 'test123', 'test1234', 'demo123',
    'mysecretpassword', 'supersecret', 'supersecretpassword', 's3cr3t', 'toor', 'guest', 'pass123', 'pass1234', 'foobar123',
  ].map(compact),
);

function compact(s: string): string {
  return s.toLowerCase().replace(/[\s_-]+/g, '');
}

export function isDocumentedExample(value: string): boolean {
  return DOCUMENTED_VALUES.has(value);
}

export function isWellKnownPassword(value: string): boolean {
  return WELL_KNOWN_PASSWORDS.has(compact(value));
}

/** The jwt.io debugger's sample claims ({"sub": "1234567890", "name": "John Doe", …}), whatever the algorithm and signature. */
export function isSampleJwtPayload(payload: unknown): boolean {
  if (typeof payload !== 'object' || payload === null) return false;
  const p = payload as Record<string, unknown>;
  return p.sub === '1234567890' && p.name === 'John Doe';
}

/**
 * Words of documentation and sample code before a value: a tutorial, a README, an answer explaining code. Read over
 * the 400 characters before it only, so a long chat with one "for example" far away does not turn a pasted config
 * file into documentation, and a streamed value is decided by text already seen (within the detector's lookback).
 */
const DOCS_WORDS =
  /(?:^|[^a-z0-9_])(?:for example|for instance|e\.g\.|example(?![.@\w-])|examples|sample(?![.@\w-])|samples|tutorial|walkthrough|demo(?![.@\w-])|how to|here's how|here is how|step \d|in this (?:guide|tutorial|example|post|article|section)|the following (?:code|snippet|example)|snippet|documentation|readme|replace (?:it|this|them|the value|with)|your own|dummy|illustrat\w+|placeholder)(?:$|[^a-z0-9_])/i;
const DOCS_REACH = 400;

export function documentationContext(t: string, start: number): boolean {
  return DOCS_WORDS.test(t.slice(Math.max(0, start - DOCS_REACH), start));
}

/** Settings lines (`name = value`, `name: value`, `export NAME=`) before a value: it sits in a config file or an env file. */
const SETTING_LINE = /^[ \t]*(?:export[ \t]+)?["']?[A-Za-z_][\w.-]{0,63}["']?[ \t]*(?:=|:(?!\/\/))/gm;
/** Below the secrets detector's stream lookback (640), so a streamed value sees the same lines. */
const CONFIG_REACH = 560;

export function configContext(t: string, start: number): boolean {
  const lineStart = t.lastIndexOf('\n', start - 1) + 1;
  const before = t.slice(Math.max(0, start - CONFIG_REACH), Math.max(lineStart, start - CONFIG_REACH));
  return (before.match(SETTING_LINE)?.length ?? 0) >= 2;
}
