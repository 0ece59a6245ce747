import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Headers that describe one connection, not the message; a proxy never forwards them (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** The lower-case tokens of a Connection header (repeats joined). */
export function connectionTokens(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const joined = Array.isArray(value) ? value.join(',') : value;
  return joined.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean);
}

/** Removes hop-by-hop headers, including any the Connection header names, in place. */
export function stripHopByHop(headers: IncomingHttpHeaders | OutgoingHttpHeaders): void {
  for (const token of connectionTokens(headers.connection as string | string[] | undefined)) delete headers[token];
  for (const name of HOP_BY_HOP) delete headers[name];
}

/**
 * The value of a header as one string. A repeated header gives its first value, or with `joined` all of them
 * joined by ", " (RFC 9110's combined form: a policy rule matching a header sees every value the client sent).
 */
export function headerValue(headers: IncomingHttpHeaders | OutgoingHttpHeaders, name: string, repeated: 'first' | 'joined' = 'first'): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return repeated === 'first' ? v[0] : v.join(', ');
  return String(v);
}

export function isEventStream(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.toLowerCase().startsWith('text/event-stream');
}

/**
 * Declared types whose bodies stream through on routes that are not known inference routes: media, archives and
 * multipart uploads (an audio file for a transcription route may be far larger than MAX_REQUEST_SIZE). Known
 * inference routes read every body whatever its declared type, because the upstream may parse it anyway.
 */
export function isUploadType(contentType: string | undefined): boolean {
  const t = (contentType ?? '').toLowerCase();
  return /^\s*(?:image|audio|video|multipart)\//.test(t) || /^\s*application\/(?:octet-stream|pdf|zip|gzip|x-tar)/.test(t);
}
