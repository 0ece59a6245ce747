import { applyPatch } from 'fast-json-patch';
import { PatchBuilder, escapePointer, jsonEqual, pointer } from '../../../webhook/patch';

describe('JSON Patch builder', () => {
  it('escapes ~ before / (RFC 6901)', () => {
    expect(escapePointer('a~1b/c')).toBe('a~01b~1c');
    expect(pointer('metadata', 'annotations', 'example.com/a~b')).toBe('/metadata/annotations/example.com~1a~0b');
  });

  it('records ops that fast-json-patch applies to the same result', () => {
    const original = { metadata: { labels: { 'x/y': '1' } }, spec: { containers: [{ name: 'a' }] } };
    const b = new PatchBuilder(original);
    b.setKey(['metadata', 'annotations'], 'k~/1', 'v1');
    b.setKey(['metadata', 'annotations'], 'k~/1', 'v2');
    b.setKey(['metadata', 'labels'], 'x/y', '2');
    b.insert(['spec', 'containers'], 0, { name: 'first' });
    b.insert(['spec', 'volumes'], '-', { name: 'v' });
    b.insert(['spec', 'volumes'], '-', { name: 'w' });
    b.remove(pointer('spec', 'containers', 1));
    const applied = applyPatch(structuredClone(original), structuredClone(b.ops), true, false).newDocument;
    expect(applied).toEqual(b.doc);
    expect(b.doc).toEqual({
      metadata: { labels: { 'x/y': '2' }, annotations: { 'k~/1': 'v2' } },
      spec: { containers: [{ name: 'first' }], volumes: [{ name: 'v' }, { name: 'w' }] },
    });
    expect(original.spec.containers).toEqual([{ name: 'a' }]);
  });

  it('keeps recorded values independent of later edits', () => {
    const b = new PatchBuilder({ spec: {} });
    b.insert(['spec', 'volumes'], '-', { name: 'a' });
    b.insert(['spec', 'volumes'], '-', { name: 'b' });
    expect(b.ops[0]).toEqual({ op: 'add', path: '/spec/volumes', value: [{ name: 'a' }] });
  });

  it('compares JSON structurally, ignoring key order', () => {
    expect(jsonEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 })).toBe(true);
    expect(jsonEqual({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(jsonEqual([1, 2], [2, 1])).toBe(false);
  });
});
