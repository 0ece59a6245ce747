/**
 * The one scrubber of configured secret values. Header redaction (SECRET_HEADERS) catches secrets
 * where they are expected; this catches them anywhere else text leaves the process: an Akto error
 * body that reflects our Authorization header, an upstream that echoes its token into a response,
 * an exception message. Used by the logger (every line), the trace record builder (Akto, spool,
 * trace file) and the dead-letter file.
 */
import type { Env } from './env';

export const SCRUBBED = '<redacted>';

/** Shorter values are not scrubbed: replacing every "abc" would wreck every line, and protect nothing. */
export const MIN_SECRET_LENGTH = 6;

/** Variables whose whole value is a secret (UPSTREAM_AUTHORIZATION* by prefix: every upstream's credential). */
// A Slack-style ALERT_WEBHOOK_URL is itself the credential.
const SECRET_VARS = ['AKTO_API_TOKEN', 'GUARDRAILS_HASH_KEY', 'ALERT_AUTHORIZATION', 'ALERT_WEBHOOK_URL', 'LIMITS_REDIS_PASSWORD'];
const SECRET_PREFIXES = ['UPSTREAM_AUTHORIZATION'];
/** Variables holding URLs whose userinfo password is a secret. */
const URL_PREFIXES = ['APP_URL', 'AKTO_API_BASE_URL', 'INBOUND_APP_URL', 'LIMITS_REDIS_URL'];

export class SecretScrubber {
  /** Longest first, so a value that contains another is replaced whole. */
  private readonly needles: readonly string[];

  constructor(secrets: Iterable<string>) {
    const forms = new Set<string>();
    for (const secret of secrets) {
      for (const form of variants(secret)) if (form.length >= MIN_SECRET_LENGTH) forms.add(form);
    }
    this.needles = [...forms].sort((a, b) => b.length - a.length);
  }

  /** The configured secrets of this process's environment. */
  static fromEnv(env: Env): SecretScrubber {
    const values: string[] = [];
    for (const [key, raw] of Object.entries(env)) {
      const value = raw?.trim();
      if (!value) continue;
      if (SECRET_VARS.includes(key) || SECRET_PREFIXES.some((p) => key.startsWith(p))) values.push(value);
      else if (URL_PREFIXES.some((p) => key.startsWith(p))) values.push(...urlSecrets(value));
    }
    return new SecretScrubber(values);
  }

  get empty(): boolean {
    return this.needles.length === 0;
  }

  /** The text with every configured secret (raw, or JSON-escaped once or twice) replaced by SCRUBBED. */
  scrub(text: string): string {
    let out = text;
    for (const needle of this.needles) if (out.includes(needle)) out = out.split(needle).join(SCRUBBED);
    return out;
  }
}

/**
 * The spellings a secret takes in our output: as is, its credential without the auth scheme
 * ("Bearer x" -> "x"), and each JSON-escaped once (a log line, a record field) and twice (a header
 * map serialized inside a record string).
 */
function variants(secret: string): string[] {
  const raw = [secret];
  const scheme = /^[A-Za-z][A-Za-z0-9._~+/-]*\s+(\S.*)$/.exec(secret);
  if (scheme) raw.push(scheme[1]);
  const out: string[] = [];
  for (const r of raw) {
    const once = JSON.stringify(r).slice(1, -1);
    out.push(r, once, JSON.stringify(once).slice(1, -1));
  }
  return out;
}

function urlSecrets(value: string): string[] {
  try {
    const url = new URL(value);
    const password = decodeURIComponent(url.password);
    return password ? [password, url.password] : [];
  } catch {
    return [];
  }
}
