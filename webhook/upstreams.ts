/**
 * Finds the inference URLs an app container sets and works out how the sidecar gets the same
 * value: a literal, the same valueFrom, a keyRef into the same envFrom source, and `$(VAR)`
 * references carried over under names of our own so they resolve in the sidecar too.
 */
import { isLoopbackHost, parseHttpUrlText, urlPort } from '../common/url';
import { JsonObject, JsonValue, isJsonObject as isObject } from './patch';

export interface EnvEntry extends JsonObject {
  name: string;
}

/** How the sidecar obtains one upstream URL: its env entries (refs first), the last one holds the URL. */
export interface UpstreamSource {
  /** Entries the URL entry references, renamed; placed before it in the sidecar. */
  refs: JsonObject[];
  /** The URL entry without its name ({value} or {valueFrom}). */
  entry: JsonObject;
  /** Canonical text: two vars with an equal key share one listener. */
  key: string;
  /** The app-side fix: replace env entry `index`, or insert a new one when the var came from envFrom. */
  app: { kind: 'replace'; index: number; original: JsonObject } | { kind: 'insert' };
}

export type Discovery =
  | { kind: 'none' }
  | { kind: 'found'; source: UpstreamSource; warning?: string }
  | { kind: 'ignored'; warning: string; loopbackPort?: number };

const REF = /\$\$|\$\(([^)]*)\)/g;
const MAX_REF_DEPTH = 8;

/** The value has a `$(NAME)` Kubernetes expands (`$$` is an escaped `$`). */
function hasRef(value: string): boolean {
  for (const m of value.matchAll(REF)) if (m[1] !== undefined) return true;
  return false;
}

function envList(container: JsonObject): JsonValue[] {
  return Array.isArray(container.env) ? container.env : [];
}

function lastIndexOf(env: JsonValue[], name: string, before = env.length): number {
  for (let i = Math.min(before, env.length) - 1; i >= 0; i--) {
    const e = env[i];
    if (isObject(e) && e.name === name) return i;
  }
  return -1;
}

/** Stable JSON (sorted keys) for keys and comparisons. */
export function canonical(v: JsonValue | undefined): string {
  if (v === undefined) return 'undefined';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']';
  return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canonical(v[k])).join(',') + '}';
}

/**
 * envFrom sources that may define `name` (prefix matches); Kubernetes lets the last one win.
 * `forceOptional` marks the keyRef optional (for `$(VAR)` copies, where a missing key must not
 * stop the sidecar).
 */
function envFromSource(container: JsonObject, name: string, forceOptional = false): { valueFrom: JsonObject; candidates: number } | undefined {
  if (!Array.isArray(container.envFrom)) return undefined;
  const matches: JsonObject[] = [];
  for (const src of container.envFrom) {
    if (!isObject(src)) continue;
    const prefix = typeof src.prefix === 'string' ? src.prefix : '';
    if (!name.startsWith(prefix) || name.length === prefix.length) continue;
    const key = name.slice(prefix.length);
    const ref = isObject(src.configMapRef) ? { kind: 'configMapKeyRef', ref: src.configMapRef } : isObject(src.secretRef) ? { kind: 'secretKeyRef', ref: src.secretRef } : undefined;
    if (!ref || typeof ref.ref.name !== 'string') continue;
    const keyRef: JsonObject = { name: ref.ref.name, key };
    if (ref.ref.optional === true || forceOptional) keyRef.optional = true;
    matches.push({ [ref.kind]: keyRef });
  }
  if (matches.length === 0) return undefined;
  return { valueFrom: matches[matches.length - 1], candidates: matches.length };
}

class RefResolver {
  readonly refs: JsonObject[] = [];
  private readonly renamed = new Map<string, string>();
  constructor(private readonly container: JsonObject, private readonly refPrefix: string) {}

  /** Rewrites the `$(NAME)` references of `value` (an entry at `index`) so they resolve in the sidecar. */
  value(value: string, index: number, depth: number): string {
    return value.replace(REF, (match, name: string | undefined) => {
      if (name === undefined) return match; // `$$` stays an escaped `$`
      const resolved = depth < MAX_REF_DEPTH ? this.ref(name, index, depth) : undefined;
      return resolved === undefined ? '$' + match : `$(${resolved})`; // unresolvable refs stay literal, as in the app
    });
  }

  private ref(name: string, before: number, depth: number): string | undefined {
    const memo = `${name}@${before}`;
    const known = this.renamed.get(memo);
    if (known) return known;
    const env = envList(this.container);
    const i = lastIndexOf(env, name, before);
    let entry: JsonObject | undefined;
    if (i >= 0) {
      const e = env[i] as JsonObject;
      if (typeof e.value === 'string') entry = { value: this.value(e.value, i, depth + 1) };
      else if (isObject(e.valueFrom) && !e.valueFrom.resourceFieldRef) entry = { valueFrom: e.valueFrom };
      else if (e.value === undefined && e.valueFrom === undefined) entry = { value: '' };
    } else {
      const src = envFromSource(this.container, name, true);
      if (src) entry = { valueFrom: src.valueFrom };
    }
    if (!entry) return undefined;
    const newName = `${this.refPrefix}${this.refs.length}`;
    this.renamed.set(memo, newName);
    this.refs.push({ name: newName, ...entry });
    return newName;
  }
}

/** Names copies of referenced vars during discovery; renamed per listener by `renameRefs`. */
const REF_PLACEHOLDER = 'AKTO_PROXY_REF_PLACEHOLDER_';

/** Gives the copied `$(VAR)` references names unique to one listener. */
export function renameRefs(source: UpstreamSource, prefix: string): JsonObject[] {
  const rename = (s: string) => s.split(`$(${REF_PLACEHOLDER}`).join(`$(${prefix}`);
  const fix = (e: JsonObject): JsonObject => {
    const out = { ...e };
    if (typeof out.name === 'string') out.name = out.name.replace(REF_PLACEHOLDER, prefix);
    if (typeof out.value === 'string') out.value = rename(out.value);
    return out;
  };
  return [...source.refs.map(fix), fix(source.entry)];
}

/**
 * Where a container gets env var `name` from. A var that only envFrom could provide is taken
 * only when `allowEnvFrom` (the pod named it in its env-vars annotation): the source's keys are
 * invisible at admission, and guessing would point unset SDK variables at a proxy listener.
 */
export function discover(container: JsonObject, name: string, allowEnvFrom: boolean): Discovery {
  const refPrefix = REF_PLACEHOLDER;
  const env = envList(container);
  const i = lastIndexOf(env, name);
  const cname = typeof container.name === 'string' ? container.name : '?';
  if (i < 0) {
    const src = allowEnvFrom ? envFromSource(container, name) : undefined;
    if (!src) return { kind: 'none' };
    const entry = { valueFrom: src.valueFrom };
    const warning = src.candidates > 1
      ? `container "${cname}": ${name} may come from ${src.candidates} envFrom sources; the proxy reads it from the last one (${canonical(src.valueFrom)})`
      : undefined;
    return { kind: 'found', source: { refs: [], entry, key: canonical(entry), app: { kind: 'insert' } }, warning };
  }
  const e = env[i] as JsonObject;
  const original = e; // never mutated: the patch builder copies on write
  if (typeof e.value === 'string') {
    const value = e.value.trim();
    if (value === '') return { kind: 'ignored', warning: `container "${cname}": ${name} is empty; not rewritten` };
    const resolver = new RefResolver(container, refPrefix);
    // A value built from `$(VAR)` references is judged once the sidecar starts; a literal is judged here,
    // with the parser the proxy uses, so the sidecar is never handed a URL it refuses.
    if (!hasRef(e.value)) {
      const parsed = parseHttpUrlText(value);
      if (parsed.problem !== undefined) {
        return { kind: 'ignored', warning: `container "${cname}": ${name} ${parsed.problem}; it cannot be proxied and is left unchanged` };
      }
      if (isLoopbackHost(parsed.url.hostname)) {
        const where = `${parsed.url.protocol}//${parsed.url.host}`;
        return { kind: 'ignored', loopbackPort: urlPort(parsed.url), warning: `container "${cname}": ${name} already points at ${where} (loopback: this pod itself); left as is` };
      }
    }
    const rewritten = resolver.value(e.value, i, 0);
    const entry = { value: rewritten };
    const key = canonical({ refs: resolver.refs, entry });
    return { kind: 'found', source: { refs: resolver.refs, entry, key, app: { kind: 'replace', index: i, original } } };
  }
  if (isObject(e.valueFrom)) {
    const vf = e.valueFrom;
    if (!vf.secretKeyRef && !vf.configMapKeyRef && !vf.fieldRef) {
      return { kind: 'ignored', warning: `container "${cname}": ${name} uses an unsupported valueFrom; not rewritten` };
    }
    const entry = { valueFrom: vf };
    return { kind: 'found', source: { refs: [], entry, key: canonical(entry), app: { kind: 'replace', index: i, original } } };
  }
  return { kind: 'ignored', warning: `container "${cname}": ${name} has no value; not rewritten` };
}
