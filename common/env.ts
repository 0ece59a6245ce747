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

/**
 * One declared environment variable: its name, the default as the docs show it, a one-line doc, and how it is
 * read (parser, validation and default in one place). Each module declares its slice; the program collects the
 * slices into one table that drives the README's variable table (kept in step by a test).
 */
export interface EnvVar<T = unknown> {
  readonly name: string;
  /** The default as the docs show it; '' when unset means "off" or "none". */
  readonly shown: string;
  readonly doc: string;
  read(env: Env): T;
}

/** An integer variable; `read` may take a default or upper bound that depends on another variable. */
export interface IntVar extends EnvVar<number> {
  read(env: Env, bounds?: { fallback?: number; max?: number }): number;
}

const shownInt = (n: number): string => `\`${n}\``;

export const declare = {
  /** Unset is undefined; `shown` says what the reader does then, if anything. */
  string(name: string, doc: string, shown = ''): EnvVar<string | undefined> {
    return { name, shown, doc, read: (env) => envString(env, name) };
  },
  stringOr(name: string, fallback: string, doc: string): EnvVar<string> {
    return { name, shown: `\`${fallback}\``, doc, read: (env) => envString(env, name, fallback) };
  },
  int(name: string, fallback: number, min: number, max: number, doc: string, shown = shownInt(fallback)): IntVar {
    return { name, shown, doc, read: (env, b) => envInt(env, name, b?.fallback ?? fallback, min, b?.max ?? max) };
  },
  port(name: string, fallback: number, doc: string): EnvVar<number> {
    return { name, shown: shownInt(fallback), doc, read: (env) => envPort(env, name, fallback) };
  },
  /** A port that turns a feature on: unset is undefined (off). */
  optionalPort(name: string, doc: string, shown = 'off'): EnvVar<number | undefined> {
    return { name, shown, doc, read: (env) => (present(env, name) === undefined ? undefined : envPort(env, name, 0)) };
  },
  bool(name: string, fallback: boolean, doc: string): EnvVar<boolean> {
    return { name, shown: `\`${fallback}\``, doc, read: (env) => envBool(env, name, fallback) };
  },
  /** `read` may take a default that depends on another variable (`shown` then says which). */
  enum<T extends string>(name: string, values: readonly T[], fallback: T, doc: string, shown = `\`${fallback}\``): EnvVar<T> & { read(env: Env, fallback?: T): T } {
    return { name, shown, doc, read: (env: Env, override?: T) => envEnum(env, name, values, override ?? fallback) };
  },
  url(name: string, doc: string): EnvVar<URL | undefined> {
    return { name, shown: '', doc, read: (env) => envUrl(env, name) };
  },
  list(name: string, doc: string): EnvVar<string[]> {
    return { name, shown: '', doc, read: (env) => envList(env, name) };
  },
  /** A family of variables named by a rule (`APP_URL_<suffix>`); its reader checks the name it is given. */
  family(name: string, rule: RegExp, shown: string, doc: string): EnvVar<undefined> & { readAs(env: Env, key: string): string | undefined } {
    return {
      name,
      shown,
      doc,
      read: () => undefined,
      readAs(env, key) {
        if (!rule.test(key)) throw new Error(`${key} is not a ${name} variable`);
        return envString(env, key);
      },
    };
  },
};

/** Markdown rows of a variable table (`| variable | default | meaning |`), in declaration order. */
export function envTableMarkdown(vars: readonly EnvVar[]): string {
  const rows = vars.map((v) => `| \`${v.name}\` | ${v.shown} | ${v.doc} |`);
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
