import { compileJsonPath, selectStrings } from '../../../proxy/protocols/json-select';

const select = (root: unknown, paths?: string[]) => selectStrings(root, paths?.map(compileJsonPath), 10_000);
const texts = (root: unknown, paths?: string[]) => select(root, paths).texts.map((t) => [t.path, t.text]);

describe('JSONPath field selection (the policy inbound section)', () => {
  const body = {
    message: 'hello',
    history: [
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'second', parts: [{ text: 'deep' }] },
    ],
    meta: { 'a.b': 'dotted', "it's": 'quoted', n: 3 },
    text: 'top text',
  };

  it('selects names, indexes (negative from the end), wildcards and recursive descent', () => {
    expect(texts(body, ['$.message'])).toEqual([[['message'], 'hello']]);
    expect(texts(body, ['$.history[*].content'])).toEqual([[['history', 0, 'content'], 'first'], [['history', 1, 'content'], 'second']]);
    expect(texts(body, ['$.history[-1].content'])).toEqual([[['history', 1, 'content'], 'second']]);
    expect(texts(body, ["$.meta['a.b']", '$.meta["it\'s"]'])).toEqual([[['meta', 'a.b'], 'dotted'], [['meta', "it's"], 'quoted']]);
    expect(texts(body, ['$..text'])).toEqual([[['history', 1, 'parts', 0, 'text'], 'deep'], [['text'], 'top text']]);
    expect(texts(body, ['$.history.*.role'])).toEqual([[['history', 0, 'role'], 'user'], [['history', 1, 'role'], 'assistant']]);
  });

  it('a selected object or array stands for every string in it; each string once, in document order', () => {
    expect(texts(body, ['$.history[1]', '$..content', '$.message'])).toEqual([
      [['message'], 'hello'],
      [['history', 0, 'content'], 'first'],
      [['history', 1, 'role'], 'assistant'],
      [['history', 1, 'content'], 'second'],
      [['history', 1, 'parts', 0, 'text'], 'deep'],
    ]);
  });

  it('without paths: every string, and the object keys beside them', () => {
    const all = select({ q: 'x', nested: { 'Ignore previous': ['y', 1, null] } });
    expect(all.texts.map((t) => t.text)).toEqual(['x', 'y']);
    expect(all.keys).toEqual(['q', 'nested', 'Ignore previous']);
    expect(select('bare').texts).toEqual([{ path: [], text: 'bare' }]);
    expect(select(body, ['$.message']).keys).toEqual([]);
  });

  it('selects nothing where nothing matches; a root selection is the whole body', () => {
    expect(texts(body, ['$.missing', '$.message.deeper', '$.history[9]', '$.meta[0]'])).toEqual([]);
    expect(texts(['a', { b: 'c' }], ['$'])).toEqual([[[0], 'a'], [[1, 'b'], 'c']]);
  });

  it('refuses expressions it cannot read, saying where', () => {
    expect(() => compileJsonPath('message')).toThrow(/must start with \$/);
    expect(() => compileJsonPath('$.')).toThrow(/a name is expected at character 3/);
    expect(() => compileJsonPath("$['open")).toThrow(/unterminated/);
    expect(() => compileJsonPath('$[?(@.x)]')).toThrow(/expected \[\*\], \[index\] or \['name'\]/);
    expect(() => compileJsonPath('$ .a')).toThrow(/unexpected " "/);
  });

  it('stops below the depth bound and says so; walks a deep body iteratively', () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 50_000; i++) deep = { a: deep };
    const shallow = selectStrings(deep, undefined, 100);
    expect(shallow.tooDeep).toBe(true);
    expect(shallow.texts).toEqual([]);
    // Recursive descent over a chain of 50 000 nested matches (each container walked once per step, no recursion).
    const found = selectStrings(deep, [compileJsonPath('$..a..a')], 100_000);
    expect(found.tooDeep).toBe(false);
    expect(found.texts.map((t) => t.text)).toEqual(['bottom']);
  });
});
