/**
 * JSON bodies as Python's `json.loads(bytes)` reads them, because that is what vLLM, the HF toolkit and most
 * custom handlers run (FastAPI/Starlette: `json.loads(await request.body())`). It accepts more than JSON.parse:
 * a UTF-8 BOM, UTF-16 and UTF-32 with or without a BOM (detected from the zero bytes), lone surrogates
 * (`surrogatepass`), and the literals NaN, Infinity and -Infinity. Duplicate keys keep the last value, as in
 * Python and JSON.parse. The parser is iterative, so hostile nesting cannot overflow the stack.
 */
import { isUtf8 } from 'node:buffer';
import type { JsonPath } from './exchange';

export class JsonSyntaxError extends Error {
  constructor(message: string, readonly position: number) {
    super(`${message} at character ${position}`);
    this.name = 'JsonSyntaxError';
  }
}

/** Python's json.detect_encoding: BOMs first, then the pattern of zero bytes in the first four. */
export function detectJsonEncoding(b: Buffer): string {
  if (b.length >= 4 && ((b[0] === 0 && b[1] === 0 && b[2] === 0xfe && b[3] === 0xff) || (b[0] === 0xff && b[1] === 0xfe && b[2] === 0 && b[3] === 0))) return 'utf-32';
  if (b.length >= 2 && ((b[0] === 0xfe && b[1] === 0xff) || (b[0] === 0xff && b[1] === 0xfe))) return 'utf-16';
  if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return 'utf-8-sig';
  if (b.length >= 4) {
    if (b[0] === 0) return b[1] ? 'utf-16-be' : 'utf-32-be';
    if (b[1] === 0) return b[2] || b[3] ? 'utf-16-le' : 'utf-32-le';
  } else if (b.length === 2) {
    if (b[0] === 0) return 'utf-16-be';
    if (b[1] === 0) return 'utf-16-le';
  }
  return 'utf-8';
}

/** Decodes body bytes the way json.loads does (detect_encoding, errors='surrogatepass'); throws on bytes Python rejects. */
export function decodeJsonBytes(b: Buffer): { text: string; encoding: string } {
  const encoding = detectJsonEncoding(b);
  switch (encoding) {
    case 'utf-8':
      return { text: decodeUtf8(b), encoding };
    case 'utf-8-sig':
      return { text: decodeUtf8(b.subarray(3)), encoding };
    case 'utf-16':
      return { text: decodeUtf16(b.subarray(2), b[0] === 0xfe), encoding };
    case 'utf-16-be':
    case 'utf-16-le':
      return { text: decodeUtf16(b, encoding === 'utf-16-be'), encoding };
    case 'utf-32':
      return { text: decodeUtf32(b.subarray(4), b[0] === 0), encoding };
    default:
      return { text: decodeUtf32(b, encoding === 'utf-32-be'), encoding };
  }
}

/** UTF-8 with Python's surrogatepass: encoded surrogates (ED A0..BF xx) decode to lone surrogates; other bad bytes throw. */
export function decodeUtf8(b: Buffer): string {
  if (isUtf8(b)) return b.toString('utf8');
  let out = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    let cp: number;
    let n: number;
    if (c < 0x80) [cp, n] = [c, 1];
    else if (c >= 0xc2 && c <= 0xdf) [cp, n] = [c & 0x1f, 2];
    else if (c >= 0xe0 && c <= 0xef) [cp, n] = [c & 0x0f, 3];
    else if (c >= 0xf0 && c <= 0xf4) [cp, n] = [c & 0x07, 4];
    else throw new JsonSyntaxError('invalid UTF-8', i);
    if (i + n > b.length) throw new JsonSyntaxError('invalid UTF-8', i);
    for (let k = 1; k < n; k++) {
      const cc = b[i + k];
      if ((cc & 0xc0) !== 0x80) throw new JsonSyntaxError('invalid UTF-8', i);
      cp = (cp << 6) | (cc & 0x3f);
    }
    const min = n === 2 ? 0x80 : n === 3 ? 0x800 : n === 4 ? 0x10000 : 0;
    if (cp < min || cp > 0x10ffff) throw new JsonSyntaxError('invalid UTF-8', i);
    out += String.fromCodePoint(cp);
    i += n;
  }
  return out;
}

function decodeUtf16(b: Buffer, bigEndian: boolean): string {
  if (b.length % 2 !== 0) throw new JsonSyntaxError('truncated UTF-16', b.length);
  if (!bigEndian) return b.toString('utf16le');
  const swapped = Buffer.from(b);
  swapped.swap16();
  return swapped.toString('utf16le');
}

function decodeUtf32(b: Buffer, bigEndian: boolean): string {
  if (b.length % 4 !== 0) throw new JsonSyntaxError('truncated UTF-32', b.length);
  let out = '';
  for (let i = 0; i < b.length; i += 4) {
    const cp = bigEndian ? b.readUInt32BE(i) : b.readUInt32LE(i);
    if (cp > 0x10ffff) throw new JsonSyntaxError('invalid UTF-32', i);
    out += cp >= 0xd800 && cp <= 0xdfff ? String.fromCharCode(cp) : String.fromCodePoint(cp);
  }
  return out;
}

/** In unicode mode a paired surrogate is one code point, so this matches lone ones only. */
const LONE_SURROGATE = /\p{Cs}/u;

/** UTF-8 bytes of a string; lone surrogates are written as Python's surrogatepass reads them back (not as U+FFFD). */
export function encodeUtf8(text: string): Buffer {
  if (!LONE_SURROGATE.test(text)) return Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    const next = text.charCodeAt(i + 1);
    if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      i++;
      continue;
    }
    parts.push(Buffer.from(text.slice(start, i), 'utf8'), Buffer.from([0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]));
    start = i + 1;
  }
  parts.push(Buffer.from(text.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/**
 * Deepest nesting read. Python's json gives up far earlier (its recursion limit, about 1000), so a deeper body is
 * unreadable to the upstream too; the bound keeps every walk over the tree linear.
 */
export const MAX_JSON_DEPTH = 10000;

/** A trie of the paths whose string values an edit must find in the text. */
interface PathNode {
  children: Map<string | number, PathNode>;
  /** Index of the path that ends here. */
  target?: number;
}

function pathTrie(paths: readonly JsonPath[]): PathNode {
  const root: PathNode = { children: new Map() };
  paths.forEach((path, i) => {
    let node = root;
    for (const key of path) {
      let next = node.children.get(key);
      if (!next) node.children.set(key, (next = { children: new Map() }));
      node = next;
    }
    node.target = i;
  });
  return root;
}

interface Frame {
  container: Record<string, unknown> | unknown[];
  /** The key whose value is being parsed (objects). */
  key?: string;
  /** Where this container sits in the trie of wanted paths, if on one. */
  node?: PathNode;
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?/y;

/** Parses JSON text as Python's json module does (see the file comment). Throws JsonSyntaxError. */
export function parsePythonJson(text: string): unknown {
  return parse(text, undefined).value;
}

/**
 * Where the string values at `paths` sit in `text`: [start, end) of each quoted token, by index into `paths`
 * (undefined where the path holds no string). Duplicate keys: the last one wins, as for the value.
 */
export function locateStrings(text: string, paths: readonly JsonPath[]): Array<[number, number] | undefined> {
  const found = new Array<[number, number] | undefined>(paths.length);
  parse(text, { trie: pathTrie(paths), found });
  return found;
}

function parse(text: string, locate: { trie: PathNode; found: Array<[number, number] | undefined> } | undefined): { value: unknown } {
  let i = 0;
  const stack: Frame[] = [];
  let root: unknown;
  let done = false;

  const skipWs = (): void => {
    while (i < text.length && WS.has(text.charCodeAt(i))) i++;
  };
  const fail = (message: string): never => {
    throw new JsonSyntaxError(message, i);
  };
  const place = (value: unknown): void => {
    const top = stack[stack.length - 1];
    if (!top) {
      root = value;
      done = true;
    } else if (Array.isArray(top.container)) top.container.push(value);
    else {
      const key = top.key!;
      if (key === '__proto__') Object.defineProperty(top.container, key, { value, writable: true, enumerable: true, configurable: true });
      else top.container[key] = value;
    }
  };
  /** The trie node of the value about to be parsed. */
  const childNode = (): PathNode | undefined => {
    if (!locate) return undefined;
    const top = stack[stack.length - 1];
    if (!top) return locate.trie;
    return top.node?.children.get(Array.isArray(top.container) ? top.container.length : top.key!);
  };
  const readString = (): string => {
    i++; // opening quote
    let out = '';
    let start = i;
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('invalid control character in string');
      if (c === 0x5c) {
        out += text.slice(start, i);
        const e = text[i + 1];
        if (e === 'u') {
          const hex = text.slice(i + 2, i + 6);
          if (!/^[0-9A-Fa-f]{4}$/.test(hex)) fail('invalid \\u escape');
          out += String.fromCharCode(parseInt(hex, 16));
          i += 6;
        } else if (e !== undefined && ESCAPES[e] !== undefined) {
          out += ESCAPES[e];
          i += 2;
        } else fail('invalid escape');
        start = i;
        continue;
      }
      i++;
    }
  };
  const readKey = (frame: Frame): void => {
    skipWs();
    if (text[i] !== '"') fail('expecting property name enclosed in double quotes');
    frame.key = readString();
    skipWs();
    if (text[i] !== ':') fail("expecting ':' delimiter");
    i++;
  };

  // After a value: close containers or expect a separator.
  const afterValue = (): void => {
    for (;;) {
      const top = stack[stack.length - 1];
      if (!top) return;
      skipWs();
      const c = text[i];
      if (c === ',') {
        i++;
        if (!Array.isArray(top.container)) readKey(top);
        return;
      }
      if (c === (Array.isArray(top.container) ? ']' : '}')) {
        i++;
        stack.pop();
        place(top.container);
        if (done) return;
        continue;
      }
      fail("expecting ',' delimiter");
    }
  };

  while (!done) {
    skipWs();
    const c = text[i];
    if (c === '{' || c === '[') {
      if (stack.length >= MAX_JSON_DEPTH) fail(`nesting deeper than ${MAX_JSON_DEPTH} levels`);
      const node = childNode();
      i++;
      skipWs();
      const container: Frame['container'] = c === '{' ? {} : [];
      if (text[i] === (c === '{' ? '}' : ']')) {
        i++;
        place(container);
        afterValue();
        continue;
      }
      const frame: Frame = { container, node };
      if (c === '{') readKey(frame);
      stack.push(frame);
      continue;
    }
    if (c === '"') {
      const start = i;
      const target = childNode()?.target;
      const s = readString();
      if (target !== undefined) locate!.found[target] = [start, i];
      place(s);
    } else if (text.startsWith('null', i)) {
      i += 4;
      place(null);
    } else if (text.startsWith('true', i)) {
      i += 4;
      place(true);
    } else if (text.startsWith('false', i)) {
      i += 5;
      place(false);
    } else if (text.startsWith('NaN', i)) {
      i += 3;
      place(NaN);
    } else if (text.startsWith('Infinity', i)) {
      i += 8;
      place(Infinity);
    } else if (text.startsWith('-Infinity', i)) {
      i += 9;
      place(-Infinity);
    } else {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (!m) fail('expecting value');
      i += m![0].length;
      place(Number(m![0]));
    }
    afterValue();
  }
  skipWs();
  if (i !== text.length) fail('extra data');
  return { value: root };
}
