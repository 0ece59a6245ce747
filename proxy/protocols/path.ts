/**
 * The request path as the upstream server will route on it. Python servers (uvicorn) percent-decode the whole
 * path before routing, axum (TGI) routes on the raw path, and intermediaries differ again (backslashes, `;`
 * parameters, double decoding). The proxy classifies one canonical path and forwards exactly that path, so
 * every upstream routes on what was inspected; a path whose escapes would change the route depending on who
 * decodes it is refused.
 */

/** A request target turned into the one path that is classified and forwarded. */
export interface RequestTarget {
  /** Canonical path: starts with '/', no empty or dot segments, only escapes that must stay escaped. */
  path: string;
  /** The query as received, with its leading '?', or ''. */
  query: string;
  /** The path ended with '/' (kept when forwarding to unknown routes, dropped for known ones). */
  trailingSlash: boolean;
}

export type TargetResult = { ok: true; target: RequestTarget } | { ok: false; reason: string };

const HEX = /^[0-9A-Fa-f]{2}$/;
/** RFC 3986 unreserved: percent-escapes of these mean the same character, whoever decodes them. */
const UNRESERVED = /[A-Za-z0-9\-._~]/;
/** Characters a path segment may carry raw (RFC 3986 pchar minus unreserved and '%'). */
const RAW_OK = new Set([..."!$&'()*+,;=:@"]);

/**
 * Canonicalises a raw request target (origin-form or absolute-form). Never throws; refuses targets that are
 * not a path, carry control characters or backslashes, or have malformed percent-escapes.
 */
export function normalizeTarget(raw: string): TargetResult {
  let rest = raw;
  if (!rest.startsWith('/')) {
    const abs = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(rest);
    if (!abs) return { ok: false, reason: 'the request target is not a path' };
    rest = rest.slice(abs[0].length) || '/';
    if (!rest.startsWith('/')) rest = `/${rest}`;
  }
  const hash = rest.indexOf('#');
  if (hash !== -1) rest = rest.slice(0, hash);
  const q = rest.indexOf('?');
  const rawPath = q === -1 ? rest : rest.slice(0, q);
  const query = q === -1 ? '' : rest.slice(q);

  const segments: string[] = [];
  for (const part of rawPath.split('/')) {
    const seg = canonicalSegment(part);
    if (seg === undefined) return { ok: false, reason: 'the path has control characters, backslashes or malformed percent-escapes' };
    segments.push(seg);
  }
  const trailingSlash = rawPath.length > 1 && rawPath.endsWith('/');
  return { ok: true, target: { path: joinSegments(resolveDots(segments.filter((s) => s !== ''))), query, trailingSlash } };
}

/** One raw segment with unreserved escapes decoded, other escapes upper-cased, and unsafe characters escaped. */
function canonicalSegment(part: string): string | undefined {
  let out = '';
  for (let i = 0; i < part.length; i++) {
    const c = part[i];
    const code = part.charCodeAt(i);
    if (c === '%') {
      const hex = part.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return undefined;
      const ch = String.fromCharCode(parseInt(hex, 16));
      out += UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
      i += 2;
    } else if (code < 0x21 || code === 0x7f || c === '\\') {
      return undefined;
    } else if (UNRESERVED.test(c) || RAW_OK.has(c)) {
      out += c;
    } else {
      // Node hands non-ASCII request bytes over as latin1 characters: escape the byte they stand for.
      out += code < 0x100 ? `%${code.toString(16).toUpperCase().padStart(2, '0')}` : encodeURIComponent(c);
    }
  }
  return out;
}

/** RFC 3986 §5.2.4 over segments: '.' goes, '..' removes the one before (never above the root). */
function resolveDots(segments: string[]): string[] {
  const out: string[] = [];
  for (const s of segments) {
    if (s === '.') continue;
    if (s === '..') out.pop();
    else out.push(s);
  }
  return out;
}

function joinSegments(segments: string[]): string {
  return `/${segments.join('/')}`;
}

/**
 * The path as a Python server routes on it: every escape decoded once (uvicorn's unquote), as UTF-8.
 * Undefined when decoding yields control characters, which no server routes on.
 */
export function decodedPath(path: string): string | undefined {
  const decoded = percentDecode(path);
  return decoded !== undefined && !hasControl(decoded) ? decoded : undefined;
}

/**
 * The path as the most lenient intermediary might see it: decoded until stable, backslashes as slashes,
 * `;` parameters and anything after a decoded '?' or '#' dropped, empty and dot segments resolved.
 */
export function lenientPath(path: string): string | undefined {
  let p = path;
  for (let i = 0; i < 4; i++) {
    const next = percentDecode(p);
    if (next === undefined) return undefined;
    if (next === p) break;
    p = next;
  }
  if (hasControl(p)) return undefined;
  p = p.replace(/\\/g, '/').replace(/[?#].*$/s, '');
  const segments = p
    .split('/')
    .map((s) => s.replace(/;.*$/s, ''))
    .filter((s) => s !== '');
  return joinSegments(resolveDots(segments));
}

function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function percentDecode(s: string): string | undefined {
  if (!s.includes('%')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && HEX.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) bytes.push(c);
    else bytes.push(...Buffer.from(s[i], 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}
