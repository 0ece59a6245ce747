import { decodeJsonBytes, detectJsonEncoding, encodeUtf8, locateStrings, MAX_JSON_DEPTH, parsePythonJson } from '../../../proxy/protocols/python-json';

const le16 = (s: string): Buffer => Buffer.from(s, 'utf16le');
const be16 = (s: string): Buffer => le16(s).swap16();

describe("detectJsonEncoding: Python's json.detect_encoding", () => {
  test.each<[string, Buffer, string]>([
    ['plain UTF-8', Buffer.from('{"a":1}'), 'utf-8'],
    ['UTF-8 BOM', Buffer.from('\ufeff{}'), 'utf-8-sig'],
    ['UTF-16LE BOM', le16('\ufeff{}'), 'utf-16'],
    ['UTF-16BE BOM', be16('\ufeff{}'), 'utf-16'],
    ['UTF-16LE', le16('{}'), 'utf-16-le'],
    ['UTF-16BE', be16('{}'), 'utf-16-be'],
    ['UTF-32LE BOM', Buffer.from([0xff, 0xfe, 0, 0, 0x7b, 0, 0, 0]), 'utf-32'],
    ['UTF-32BE', Buffer.from([0, 0, 0, 0x7b, 0, 0, 0, 0x7d]), 'utf-32-be'],
    ['UTF-32LE', Buffer.from([0x7b, 0, 0, 0, 0x7d, 0, 0, 0]), 'utf-32-le'],
    ['two bytes, UTF-16LE', Buffer.from([0x31, 0]), 'utf-16-le'],
  ])('%s', (_name, bytes, encoding) => {
    expect(detectJsonEncoding(bytes)).toBe(encoding);
  });

  test('decodes each to the same text; surrogatepass keeps a lone surrogate; bad bytes throw', () => {
    expect(decodeJsonBytes(be16('\ufeff{"a":"é"}')).text).toBe('{"a":"é"}');
    expect(decodeJsonBytes(Buffer.from([0xef, 0xbb, 0xbf, 0x31])).text).toBe('1');
    expect(decodeJsonBytes(Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22])).text).toBe('"\ud800"');
    expect(() => decodeJsonBytes(Buffer.from([0x22, 0xc3, 0x28, 0x22]))).toThrow('invalid UTF-8');
    expect(() => decodeJsonBytes(Buffer.from([0xff, 0xfe, 0x7b]))).toThrow('truncated UTF-16');
  });

  test('encodeUtf8 writes lone surrogates as surrogatepass reads them back', () => {
    const bytes = encodeUtf8('a\ud800b\ud83d\ude00');
    expect(decodeJsonBytes(bytes).text).toBe('a\ud800b\ud83d\ude00');
    expect(encodeUtf8('plain')).toEqual(Buffer.from('plain'));
  });
});

describe('parsePythonJson', () => {
  test('NaN, Infinity and -Infinity as Python reads them; everything else as JSON.parse', () => {
    expect(parsePythonJson('[NaN, Infinity, -Infinity, 1e2, -0, "x"]')).toEqual([NaN, Infinity, -Infinity, 100, -0, 'x']);
  });

  test('duplicate keys keep the last value; __proto__ is an own key', () => {
    expect(parsePythonJson('{"a":1,"a":{"b":2}}')).toEqual({ a: { b: 2 } });
    const o = parsePythonJson('{"__proto__":{"polluted":1}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
    expect(Object.keys(o)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test.each(['', '{', '{"a" 1}', '[1,]', '{"a":1,}', '01', '1.', '"\\x"', '"a\nb"', 'nan', '-NaN', '[1] 2', "{'a':1}"])('rejects %j as Python does', (text) => {
    expect(() => parsePythonJson(text)).toThrow();
  });

  test('nesting is parsed iteratively up to MAX_JSON_DEPTH (beyond anything Python reads) and refused past it', () => {
    const nested = (depth: number): string => '['.repeat(depth) + '"deep"' + ']'.repeat(depth);
    let node = parsePythonJson(nested(MAX_JSON_DEPTH));
    for (let i = 0; i < MAX_JSON_DEPTH; i++) node = (node as unknown[])[0];
    expect(node).toBe('deep');
    expect(() => parsePythonJson(nested(MAX_JSON_DEPTH + 1))).toThrow('nesting deeper');
    expect(() => parsePythonJson(nested(2_000_000))).toThrow('nesting deeper');
  });

  test('agrees with JSON.parse on random JSON', () => {
    let seed = 7;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const value = (d: number): unknown => {
      switch (d > 4 ? rnd(4) : rnd(7)) {
        case 0:
          return rnd(2) === 0;
        case 1:
          return null;
        case 2:
          return (rnd(2000) - 1000) / (rnd(9) + 1);
        case 3:
          return String.fromCharCode(...Array.from({ length: rnd(6) }, () => [0x22, 0x5c, 0x0a, 0x41, 0xe9, 0xd800, 0x1f600 % 0xffff][rnd(7)]));
        case 4:
          return Array.from({ length: rnd(4) }, () => value(d + 1));
        default:
          return Object.fromEntries(Array.from({ length: rnd(4) }, (_, i) => [`k${rnd(3)}${i}`, value(d + 1)]));
      }
    };
    for (let i = 0; i < 500; i++) {
      const text = JSON.stringify(value(0), null, rnd(2) === 0 ? 0 : 2);
      expect(parsePythonJson(text)).toEqual(JSON.parse(text));
    }
  });

  test('locateStrings finds where each wanted string of the final tree sits, last duplicate winning', () => {
    const text = '{"a":"x","b":[1,"yy",{"c":"z"}],"a":"w","__proto__":"p"}';
    const spans = locateStrings(text, [['a'], ['b', 1], ['b', 2, 'c'], ['b', 0], ['missing'], ['__proto__']]);
    expect(spans.map((s) => (s ? text.slice(s[0], s[1]) : undefined))).toEqual(['"w"', '"yy"', '"z"', undefined, undefined, '"p"']);
  });
});
