import { isObject } from '../common/json';
/**
 * Targeted RFC 6902 JSON Patch ops over raw JSON. The builder applies every op to its working
 * document as it records it, so later ops see the indexes earlier ops produced, and the final
 * document is known without a second pass. Updates are copy-on-write: each op copies only the
 * objects on its path, so the input is never mutated, nothing is deep-cloned, and a value
 * recorded in an op is never changed by a later op.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };
export type JsonObject = { [k: string]: JsonValue };

export type PatchOp =
  | { op: 'add'; path: string; value: JsonValue }
  | { op: 'replace'; path: string; value: JsonValue }
  | { op: 'remove'; path: string };

/** The one object guard (common/json), typed for patch documents. */
export const isJsonObject = isObject as (v: unknown) => v is JsonObject;

/** RFC 6901: `~` becomes `~0` first, then `/` becomes `~1`. */
export function escapePointer(segment: string | number): string {
  return String(segment).replace(/~/g, '~0').replace(/\//g, '~1');
}

export function pointer(...segments: Array<string | number>): string {
  return segments.map((s) => '/' + escapePointer(s)).join('');
}

function unescapeSegment(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

export class PatchBuilder {
  readonly ops: PatchOp[] = [];
  private root: JsonObject;

  constructor(original: JsonObject) {
    this.root = original;
  }

  /** The document with every recorded op applied (a snapshot: later ops make a new one). */
  get doc(): JsonObject {
    return this.root;
  }

  add(path: string, value: JsonValue): void {
    this.apply({ op: 'add', path, value });
  }

  replace(path: string, value: JsonValue): void {
    this.apply({ op: 'replace', path, value });
  }

  remove(path: string): void {
    this.apply({ op: 'remove', path });
  }

  /** Sets `key` in the object at `parent` (an array of segments), creating the object if absent. */
  setKey(parent: Array<string | number>, key: string, value: JsonValue): void {
    const obj = this.get(parent);
    if (obj === undefined || obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      this.add(pointer(...parent), { [key]: value });
    } else if (key in obj) {
      this.replace(pointer(...parent, key), value);
    } else {
      this.add(pointer(...parent, key), value);
    }
  }

  /** Inserts into the array at `parent` at `index` (or appends with '-'), creating the array if absent. */
  insert(parent: Array<string | number>, index: number | '-', value: JsonValue): void {
    const arr = this.get(parent);
    if (!Array.isArray(arr)) this.add(pointer(...parent), [value]);
    else this.add(pointer(...parent) + '/' + (index === '-' ? '-' : String(index)), value);
  }

  get(segments: Array<string | number>): JsonValue | undefined {
    let cur: JsonValue | undefined = this.doc;
    for (const s of segments) {
      if (cur === null || typeof cur !== 'object') return undefined;
      cur = Array.isArray(cur) ? cur[Number(s)] : cur[String(s)];
    }
    return cur;
  }

  private apply(op: PatchOp): void {
    this.root = applyOp(this.root, op);
    this.ops.push(op);
  }
}

/** Returns `doc` with one op applied, copying only the path to it; throws on a path that does not exist. */
export function applyOp(doc: JsonObject, op: PatchOp): JsonObject {
  const parts = op.path.split('/').slice(1).map(unescapeSegment);
  if (parts.length === 0) throw new Error('root replacement is not supported');
  const last = parts.pop()!;
  const root: JsonObject = { ...doc };
  let parent: JsonValue = root;
  for (const p of parts) {
    const container = parent as JsonObject | JsonValue[];
    const key = Array.isArray(container) ? Number(p) : p;
    const next: JsonValue | undefined = Array.isArray(container) ? container[key as number] : container[key as string];
    if (next === undefined || next === null || typeof next !== 'object') throw new Error(`path ${op.path} does not exist`);
    const copy: JsonValue = Array.isArray(next) ? next.slice() : { ...next };
    if (Array.isArray(container)) container[key as number] = copy;
    else container[key as string] = copy;
    parent = copy;
  }
  if (Array.isArray(parent)) {
    const i = last === '-' ? parent.length : Number(last);
    if (!Number.isInteger(i) || i < 0 || i > parent.length || (op.op !== 'add' && i === parent.length)) throw new Error(`bad index in ${op.path}`);
    if (op.op === 'add') parent.splice(i, 0, op.value);
    else if (op.op === 'replace') parent[i] = op.value;
    else parent.splice(i, 1);
    return root;
  }
  const obj = parent as JsonObject;
  if (op.op !== 'add' && !(last in obj)) throw new Error(`path ${op.path} does not exist`);
  if (op.op === 'remove') delete obj[last];
  else obj[last] = op.value;
  return root;
}

/** Structural equality of two JSON values (key order ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => jsonEqual(v, bb[i]));
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
