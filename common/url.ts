/**
 * How upstream URLs are judged, by the proxy at start and by the webhook at admission, so the
 * webhook never hands the sidecar a URL the sidecar refuses. Parsing is WHATWG's (what Node's
 * HTTP client connects to): it already folds `127.1`, `0x7f.1`, `2130706433`, `0177.0.0.1`,
 * percent-encoded and uppercase hosts into one canonical form, which the local-address test reads.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type ParsedUrl = { url: URL; problem?: undefined } | { url?: undefined; problem: string };

/** WHATWG silently drops tabs and newlines inside a URL; another parser (the app's) may not. */
function hasSpaceOrControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || (c >= 0x7f && c <= 0xa0) || c === 0xfeff || (c >= 0x200b && c <= 0x200f)) return true;
  }
  return /\s/u.test(s);
}

/** An http(s) URL, or the problem in words. The problem never repeats the text (it may hold credentials). */
export function parseHttpUrlText(text: string): ParsedUrl {
  const value = text.trim();
  if (value === '') return { problem: 'is empty' };
  if (hasSpaceOrControl(value)) return { problem: 'contains spaces or control characters' };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { problem: 'is not a valid URL (expected http://host[:port][/path] or https://...)' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { problem: `must use http or https, got "${url.protocol.replace(':', '')}"` };
  }
  if (url.hostname === '') return { problem: 'has no host' };
  return { url };
}

/** The port a URL connects to, with the scheme's default. */
export function urlPort(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

/** Names that resolve to loopback on Linux without DNS (RFC 6761 `localhost`, Debian's /etc/hosts). */
const LOOPBACK_NAMES = new Set(['localhost', 'localhost.localdomain', 'ip6-localhost', 'ip6-loopback']);

/**
 * A URL host (URL.hostname: lower case, IPv6 in brackets) that reaches this machine whatever the
 * network: loopback (127/8, ::1), the unspecified address (0.0.0.0 and 0/8, ::, which Linux
 * connects to locally), `localhost` and its subdomains with or without the trailing dot, and IPv4
 * loopback written inside IPv6 (mapped `::ffff:`, translated `::ffff:0:`, compatible `::`).
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (LOOPBACK_NAMES.has(host) || host.endsWith('.localhost')) return true;
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIPv4(bare)) return isLocalIPv4(bare.split('.').map(Number));
  if (isIPv6(bare)) return isLocalIPv6(ipv6Bytes(bare));
  return false;
}

/** An address (as os.networkInterfaces or dns.lookup give it) in the canonical form URL.hostname uses. */
export function canonicalHost(address: string): string {
  const bare = address.replace(/%.*$/, ''); // zone id of a link-local address
  if (isIPv6(bare)) return new URL(`http://[${bare}]/`).hostname;
  return bare.toLowerCase();
}

function isLocalIPv4(octets: number[]): boolean {
  return octets[0] === 127 || octets[0] === 0;
}

function isLocalIPv6(b: number[]): boolean {
  const zeroUpTo = (n: number): boolean => b.slice(0, n).every((x) => x === 0);
  if (zeroUpTo(15) && (b[15] === 1 || b[15] === 0)) return true; // ::1 and ::
  const v4 = b.slice(12);
  const mapped = zeroUpTo(10) && b[10] === 0xff && b[11] === 0xff;
  const translated = zeroUpTo(8) && b[8] === 0xff && b[9] === 0xff && b[10] === 0 && b[11] === 0;
  // The deprecated compatible form (::a.b.c.d) overlaps :: and small addresses like ::2: only 127/8 counts.
  const compatible = zeroUpTo(12) && v4[0] === 127;
  return ((mapped || translated) && isLocalIPv4(v4)) || compatible;
}

/** The 16 bytes of a valid IPv6 text; WHATWG first rewrites a dotted IPv4 tail as hex groups. */
function ipv6Bytes(text: string): number[] {
  const hex = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const [left, right] = hex.includes('::') ? hex.split('::') : [hex, undefined];
  const l = groups(left);
  const r = right === undefined ? [] : groups(right);
  const words = [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  return words.flatMap((w) => [w >> 8, w & 0xff]);
}
