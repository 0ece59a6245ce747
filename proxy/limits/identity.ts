import { createHash } from 'node:crypto';
import type { Exchange } from '../protocols/exchange';
import { headerValue } from '../http/headers';
import type { Env } from '../../common/env';
import { POD_ENV } from '../../common/sidecar-env';
import type { IdentityConfig, IdentitySource } from './policy';

/** The pod this sidecar serves, from the env the webhook sets (Downward API). */
export interface Workload {
  namespace?: string;
  pod?: string;
  serviceAccount?: string;
  /** "namespace/serviceAccount", else "namespace/pod", else "local". */
  name: string;
}

export function workloadFromEnv(env: Env): Workload {
  const namespace = POD_ENV.namespace.read(env);
  const pod = POD_ENV.name.read(env);
  const serviceAccount = POD_ENV.serviceAccount.read(env);
  const who = serviceAccount ?? pod;
  const name = who ? `${namespace ?? 'default'}/${who}` : 'local';
  return { namespace, pod, serviceAccount, name };
}

export type IdentitySourceName = IdentitySource['from'] | 'none';

export interface ResolvedIdentity {
  /** "user:<id>", "key:<sha256 prefix>", "ip:<address>", "workload:<ns/name>" or "anonymous". */
  key: string;
  source: IdentitySourceName;
}

/** A value fit to be an identity: non-empty, bounded, printable ASCII without spaces. */
function usable(v: unknown, maxLength: number): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= maxLength && /^[\x21-\x7e]+$/.test(v);
}

/** The client's API key as sent, or undefined. Only ever hashed, never stored. */
function apiKey(ex: Exchange): string | undefined {
  const auth = headerValue(ex.requestHeaders, 'authorization');
  if (auth) {
    const m = /^\s*(?:bearer|token)\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1] : auth.trim() || undefined;
  }
  return headerValue(ex.requestHeaders, 'x-api-key') || headerValue(ex.requestHeaders, 'api-key') || undefined;
}

/**
 * A claim of the bearer JWT in Authorization, read WITHOUT verifying the signature: whoever sends the request chooses
 * it, so it identifies an end user only behind a gateway that verifies the token (or strips forged ones).
 */
function jwtClaim(ex: Exchange, claim: string): unknown {
  const m = /^\s*bearer\s+([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)\s*$/i.exec(headerValue(ex.requestHeaders, 'authorization') ?? '');
  if (!m) return undefined;
  try {
    const payload: unknown = JSON.parse(Buffer.from(m[2], 'base64url').toString('utf8'));
    return payload !== null && typeof payload === 'object' && !Array.isArray(payload) ? (payload as Record<string, unknown>)[claim] : undefined;
  } catch {
    return undefined;
  }
}

/** First 16 hex chars of SHA-256: stable across replicas, useless for recovering the key. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

function fromSource(ex: Exchange, s: IdentitySource, cfg: IdentityConfig, workload: Workload): string | undefined {
  switch (s.from) {
    case 'header': {
      const v = headerValue(ex.requestHeaders, s.name)?.trim();
      return usable(v, cfg.maxLength) ? `user:${v}` : undefined;
    }
    case 'body': {
      const body = ex.requestJson;
      if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
      const v = (body as Record<string, unknown>)[s.field];
      return usable(v, cfg.maxLength) ? `user:${v}` : undefined;
    }
    case 'jwt': {
      const v = jwtClaim(ex, s.claim);
      const text = typeof v === 'number' && Number.isFinite(v) ? String(v) : v;
      return usable(text, cfg.maxLength) ? `user:${text}` : undefined;
    }
    case 'api_key': {
      const k = apiKey(ex);
      return k ? `key:${hashApiKey(k)}` : undefined;
    }
    case 'client_address':
      return ex.clientAddress ? `ip:${ex.clientAddress}` : undefined;
    case 'workload':
      return workload.name === 'local' ? undefined : `workload:${workload.name}`;
  }
}

/** Who the request belongs to, per the policy's source order. Never returns a raw API key. */
export function resolveIdentity(ex: Exchange, cfg: IdentityConfig, workload: Workload): ResolvedIdentity {
  for (const s of cfg.sources) {
    const key = fromSource(ex, s, cfg, workload);
    if (key !== undefined) return { key, source: s.from };
  }
  return { key: 'anonymous', source: 'none' };
}
