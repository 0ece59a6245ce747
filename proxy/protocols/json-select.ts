/**
 * The JSONPath subset the policy's inbound section names fields with: `$`, `.name`, `['name']`, `[index]`
 * (negative counts from the end), `[*]`, `.*` and `..name` / `..*` (any depth). A selected object or array stands
 * for every string under it. Compiling is pure and reports the problem; selecting walks a parsed body once,
 * iteratively and in document order, so the segments it yields read in the order the app reads them.
 */
import type { JsonPath } from './exchange';
import { isObject } from '../../common/json';

type Step = { kind: 'key'; key: string } | { kind: 'index'; index: number } | { kind: 'any' } | { kind: 'deep'; key?: string };

export interface CompiledJsonPath {
  readonly source: string;
  readonly steps: readonly Step[];
}

/** One selected string: where it is and its text. */
export interface SelectedText {
  path: JsonPath;
  text: string;
}

/** Compiles one expression; throws an Error saying what is wrong (the policy loader names the field). */
export function compileJsonPath(source: string): CompiledJsonPath {
  if (!source.startsWith('$')) throw new Error(`"${source}" must start with $`);
  const steps: Step[] = [];
  let i = 1;
  const name = (): string => {
    const m = /^[^.[\]\s'"]+/.exec(source.slice(i));
    if (!m) throw new Error(`"${source}": a name is expected at character ${i + 1}`);
    i += m[0].length;
    return m[0];
  };
  while (i < source.length) {
    if (source.startsWith('..', i)) {
      i += 2;
      if (source[i] === '*') {
        i++;
        steps.push({ kind: 'deep' });
      } else steps.push({ kind: 'deep', key: source[i] === '[' ? bracketKey() : name() });
    } else if (source[i] === '.') {
      i++;
      if (source[i] === '*') {
        i++;
        steps.push({ kind: 'any' });
      } else steps.push({ kind: 'key', key: name() });
    } else if (source[i] === '[') {
      const inner = bracket();
      steps.push(inner);
    } else throw new Error(`"${source}": unexpected "${source[i]}" at character ${i + 1}`);
  }
  return { source, steps };

  function bracket(): Step {
    const rest = source.slice(i);
    const star = /^\[\s*\*\s*\]/.exec(rest);
    if (star) {
      i += star[0].length;
      return { kind: 'any' };
    }
    const index = /^\[\s*(-?\d{1,9})\s*\]/.exec(rest);
    if (index) {
      i += index[0].length;
      return { kind: 'index', index: Number(index[1]) };
    }
    return { kind: 'key', key: bracketKey() };
  }

  /** `['name']` or `["name"]`, with \\ and the quote escaped by a backslash. */
  function bracketKey(): string {
    const quote = source[i + 1];
    if (source[i] !== '[' || (quote !== "'" && quote !== '"')) throw new Error(`"${source}": expected [*], [index] or ['name'] at character ${i + 1}`);
    let key = '';
    let j = i + 2;
    for (; j < source.length && source[j] !== quote; j++) {
      if (source[j] === '\\' && j + 1 < source.length) j++;
      key += source[j];
    }
    if (source[j] !== quote || source[j + 1] !== ']') throw new Error(`"${source}": unterminated ['name'] at character ${i + 1}`);
    i = j + 2;
    return key;
  }
}

type Container = Record<string, unknown> | unknown[];
/** What the expressions picked: whole containers, and single members (by their container and key). */
interface Picks {
  root: boolean;
  whole: Set<Container>;
  members: Map<Container, Set<string | number>>;
}

function isContainer(v: unknown): v is Container {
  return v !== null && typeof v === 'object';
}

function children(v: Container): Array<[string | number, unknown]> {
  return Array.isArray(v) ? v.map((c, i) => [i, c]) : Object.keys(v).map((k) => [k, v[k]]);
}

/** Every (container, key) an expression reaches, added to `picks`. Breadth-first over the steps; iterative. */
function pick(root: unknown, expr: CompiledJsonPath, picks: Picks): void {
  if (expr.steps.length === 0) {
    picks.root = true;
    return;
  }
  // A node is the value reached so far, with the container and key it sits at (none for the root).
  let nodes: Array<{ value: unknown; parent?: Container; key?: string | number }> = [{ value: root }];
  for (const step of expr.steps) {
    const next: typeof nodes = [];
    const seen = new Set<unknown>();
    const walked = new Set<Container>();
    const push = (parent: Container, key: string | number): void => {
      const value = (parent as Record<string | number, unknown>)[key];
      // Recursive descent reaches a container once even when two routes lead to it.
      if (isContainer(value)) {
        if (seen.has(value)) return;
        seen.add(value);
      }
      next.push({ value, parent, key });
    };
    for (const { value } of nodes) {
      if (!isContainer(value)) continue;
      if (step.kind === 'key') {
        if (isObject(value) && Object.prototype.hasOwnProperty.call(value, step.key)) push(value, step.key);
      } else if (step.kind === 'index') {
        if (Array.isArray(value)) {
          const i = step.index < 0 ? value.length + step.index : step.index;
          if (i >= 0 && i < value.length) push(value, i);
        }
      } else if (step.kind === 'any') {
        for (const [k] of children(value)) push(value, k);
      } else {
        // Each container is walked once per step: a start inside an earlier walk's subtree adds nothing new.
        const stack: Container[] = walked.has(value) ? [] : [value];
        while (stack.length > 0) {
          const c = stack.pop()!;
          walked.add(c);
          const kids = children(c);
          for (let j = kids.length - 1; j >= 0; j--) {
            const [k, v] = kids[j];
            if (step.key === undefined || k === step.key) push(c, k);
            if (isContainer(v) && !walked.has(v)) stack.push(v);
          }
        }
      }
    }
    nodes = next;
  }
  for (const n of nodes) {
    if (n.parent === undefined) continue;
    if (isContainer(n.value)) picks.whole.add(n.value);
    else {
      let keys = picks.members.get(n.parent);
      if (!keys) picks.members.set(n.parent, (keys = new Set()));
      keys.add(n.key!);
    }
  }
}

export interface Selection {
  /** Selected strings in document order, each once. */
  texts: SelectedText[];
  /** Object keys under the selection (only when every string is selected), in document order. */
  keys: string[];
  /** The body nests deeper than `maxDepth`: nothing below was read. */
  tooDeep: boolean;
}

/**
 * The strings of `root` the expressions select (every string when `exprs` is undefined, object keys included), in
 * document order, each once however many expressions reach it.
 */
export function selectStrings(root: unknown, exprs: readonly CompiledJsonPath[] | undefined, maxDepth: number): Selection {
  const picks: Picks = { root: exprs === undefined, whole: new Set(), members: new Map() };
  for (const e of exprs ?? []) pick(root, e, picks);
  const out: Selection = { texts: [], keys: [], tooDeep: false };
  const stack: Array<{ value: unknown; loc?: Loc; inside: boolean }> = [{ value: root, inside: picks.root }];
  while (stack.length > 0) {
    const { value, loc, inside } = stack.pop()!;
    if (typeof value === 'string') {
      if (inside) out.texts.push({ path: pathOf(loc), text: value });
      continue;
    }
    if (!isContainer(value)) continue;
    if ((loc?.depth ?? 0) >= maxDepth) {
      out.tooDeep = true;
      continue;
    }
    const all = inside || picks.whole.has(value);
    const members = picks.members.get(value);
    const kids = children(value);
    if (all && exprs === undefined && !Array.isArray(value)) out.keys.push(...kids.map(([k]) => String(k)));
    for (let j = kids.length - 1; j >= 0; j--) {
      const [k, v] = kids[j];
      const picked = all || (members?.has(k) ?? false);
      if (picked || isContainer(v)) stack.push({ value: v, loc: { parent: loc, key: k, depth: (loc?.depth ?? 0) + 1 }, inside: picked });
    }
  }
  return out;
}

/** A place in the body as a linked path: walking a deep body costs O(1) per step; only selected places become a JsonPath. */
interface Loc {
  parent: Loc | undefined;
  key: string | number;
  depth: number;
}

function pathOf(loc: Loc | undefined): JsonPath {
  const out: Array<string | number> = [];
  for (let l = loc; l; l = l.parent) out.push(l.key);
  return out.reverse();
}
