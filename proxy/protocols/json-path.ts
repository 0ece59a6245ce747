import type { JsonPath } from './exchange';

/** The value at path, or undefined when any step is missing. */
export function getAtPath(root: unknown, path: JsonPath): unknown {
  let node = root;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}

/** Replaces the value at an existing path; returns false (and changes nothing) when the path is gone. */
export function setAtPath(root: unknown, path: JsonPath, value: unknown): boolean {
  if (path.length === 0) return false;
  const parent = getAtPath(root, path.slice(0, -1));
  const key = path[path.length - 1];
  if (parent === null || typeof parent !== 'object' || !(key in parent)) return false;
  (parent as Record<string | number, unknown>)[key] = value;
  return true;
}

/** A JSON.parse failure message that never quotes the body (it may hold secrets). */
export function describeParseError(err: unknown): string {
  const m = /position (\d+)/.exec(err instanceof Error ? err.message : '');
  return m ? `malformed JSON at character ${m[1]}` : 'malformed JSON';
}

/** A parsed JSON object (not null, not an array). */
