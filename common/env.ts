import { parseHttpUrlText } from './url';

/**
 * Helpers every subsystem uses to read its own environment variables. A bad value throws a
 * ConfigError naming the variable; main turns it into one log line and exit code 2.
 */
export class ConfigError extends Error {
  constructor(readonly key: string, readonly problem: string) {
    super(`${key}: ${problem}`);
    this.name = 'ConfigError';
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

function present(env: Env, key: string): string | undefined {
  const v = env[key];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

export function envString(env: Env, key: string, fallback: string): string;
export function envString(env: Env, key: string): string | undefined;
export function envString(env: Env, key: string, fallback?: string): string | undefined {
  return present(env, key) ?? fallback;
}

export function envRequired(env: Env, key: string): string {
  const v = present(env, key);
  if (v === undefined) throw new ConfigError(key, 'is required but not set');
  return v;
}

export function envInt(env: Env, key: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = present(env, key);
  if (v === undefined) return fallback;
  if (!/^-?\d+$/.test(v)) throw new ConfigError(key, `must be an integer, got "${v}"`);
  const n = Number(v);
  if (n < min || n > max) throw new ConfigError(key, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function envNumber(env: Env, key: string, fallback: number, min = 0, max = Number.MAX_VALUE): number {
  const v = present(env, key);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new ConfigError(key, `must be a number, got "${v}"`);
  if (n < min || n > max) throw new ConfigError(key, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function envPort(env: Env, key: string, fallback: number): number {
  return envInt(env, key, fallback, 0, 65535);
}

export function envEnum<T extends string>(env: Env, key: string, allowed: readonly T[], fallback: T): T {
  const v = present(env, key);
  if (v === undefined) return fallback;
  const lower = v.toLowerCase() as T;
  if (!allowed.includes(lower)) throw new ConfigError(key, `must be one of ${allowed.join(', ')}, got "${v}"`);
  return lower;
}

export function envBool(env: Env, key: string, fallback: boolean): boolean {
  const v = present(env, key);
  if (v === undefined) return fallback;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new ConfigError(key, `must be true or false, got "${v}"`);
}

/** An http(s) URL; the problem message never echoes credentials that may sit in the URL. */
export function envUrl(env: Env, key: string, required: true): URL;
export function envUrl(env: Env, key: string, required?: false): URL | undefined;
export function envUrl(env: Env, key: string, required = false): URL | undefined {
  const v = required ? envRequired(env, key) : present(env, key);
  if (v === undefined) return undefined;
  return parseHttpUrl(key, v);
}

export function parseHttpUrl(key: string, value: string): URL {
  const parsed = parseHttpUrlText(value);
  if (parsed.problem !== undefined) throw new ConfigError(key, parsed.problem);
  return parsed.url;
}

/** A comma-separated list, trimmed, empty entries dropped. */
export function envList(env: Env, key: string, fallback: readonly string[] = []): string[] {
  const v = present(env, key);
  if (v === undefined) return [...fallback];
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}
