import { createKeywordDetector, createRegexDetector, createSizeDetector, isLinearEngine, builtinDetectors } from '../../../../proxy/guardrails/detectors';
import { normalizeText } from '../../../../proxy/guardrails/normalize';
import { found } from './helpers';

describe('createRegexDetector', () => {
  it('finds every match with the pattern id as entity, with flags', () => {
    const d = createRegexDetector([
      { id: 'TICKET', pattern: 'JIRA-\\d+' },
      { id: 'CODENAME', pattern: 'project\\s+(?:falcon|osprey)', flags: 'i' },
    ]);
    expect(found(d, 'see JIRA-12 and jira-13, Project  Falcon and JIRA-7')).toEqual([
      ['TICKET', 'JIRA-12'],
      ['CODENAME', 'Project  Falcon'],
      ['TICKET', 'JIRA-7'],
    ]);
  });
  it('maps offsets back to the original text', () => {
    const d = createRegexDetector([{ id: 'X', pattern: 'secret' }]);
    const text = 'a ｓｅｃｒｅｔ b';
    const [m] = d.scan(normalizeText(text));
    expect(text.slice(m.start, m.end)).toBe('ｓｅｃｒｅｔ');
  });
  it('rejects bad patterns and flags with the pattern id in the message', () => {
    expect(() => createRegexDetector([{ id: 'bad', pattern: '(unclosed' }])).toThrow(/regex "bad"/);
    expect(() => createRegexDetector([{ id: 'backref', pattern: '(a)\\1' }])).toThrow(/regex "backref"/);
    expect(() => createRegexDetector([{ id: 'f', pattern: 'a', flags: 'g' }])).toThrow(/unsupported flag/);
    expect(() => createRegexDetector([{ id: 'd', pattern: 'a' }, { id: 'd', pattern: 'b' }])).toThrow(/duplicate/);
  });
  it('compiles on the linear-time engine, so catastrophic patterns stay fast', () => {
    const d = createRegexDetector([{ id: 'evil', pattern: '(a+)+$' }, { id: 'evil2', pattern: '(x|x)*y' }]);
    expect(d.compiled.every(isLinearEngine)).toBe(true);
    const started = Date.now();
    expect(found(d, 'a'.repeat(50_000) + '!' + 'x'.repeat(50_000))).toEqual([]);
    expect(Date.now() - started).toBeLessThan(5000); // a backtracking engine would not finish
  });
});

describe('createKeywordDetector', () => {
  const d = createKeywordDetector([
    { id: 'COMPETITOR', words: ['Acme', 'Globex Corp'] },
    { id: 'TOPIC', words: ['insider trading'] },
  ]);
  it('matches whole words and phrases case-insensitively', () => {
    expect(found(d, 'ACME and globex  corp discussed Insider-Trading; acmeish is fine')).toEqual([
      ['COMPETITOR', 'ACME'],
      ['COMPETITOR', 'globex  corp'],
      ['TOPIC', 'Insider-Trading'],
    ]);
  });
  it('is not fooled by homoglyphs or zero-width characters', () => {
    expect(found(d, 'we met \u0410cme and Ac\u200bme')).toEqual([
      ['COMPETITOR', '\u0410cme'],
      ['COMPETITOR', 'Ac\u200bme'],
    ]);
  });
  it('holds trailing words only while they can still become a listed phrase', () => {
    expect(d.pendingTail('talking about insider')).toBe('insider'.length);
    expect(d.pendingTail('talking about insider tr')).toBe('insider tr'.length);
    expect(d.pendingTail('we met Glo')).toBe('Glo'.length);
    expect(d.pendingTail('talking about the weather ')).toBe(0);
    expect(d.pendingTail('insider information ')).toBe(0);
    expect(d.pendingTail(normalizeText('see \u0410c').text)).toBe(2); // streams pass normalized text: a homoglyph does not hide "acme"
  });
  it('rejects entries without word characters', () => {
    expect(() => createKeywordDetector([{ id: 'X', words: ['!!!'] }])).toThrow(/no word characters/);
  });
});

describe('createSizeDetector', () => {
  it('flags characters and estimated tokens over the limits', () => {
    const d = createSizeDetector({ maxChars: 10, maxTokens: 2 });
    expect(found(d, 'short').map(([e]) => e)).toEqual([]);
    expect(found(d, 'twelve chars').map(([e]) => e)).toEqual(['SIZE_CHARS', 'SIZE_TOKENS']);
    expect(found(createSizeDetector({ maxTokens: 2 }), 'abcdefgh')).toEqual([]);
    expect(found(createSizeDetector({ maxTokens: 2 }), 'abcdefghi').map(([e]) => e)).toEqual(['SIZE_TOKENS']);
    expect(() => createSizeDetector({ maxChars: -1 })).toThrow(/maxChars/);
  });
});

describe('builtinDetectors', () => {
  it('registers pii, secrets, injection, toxicity and harmful with their entities', () => {
    const r = builtinDetectors();
    expect(Object.keys(r).sort()).toEqual(['harmful', 'injection', 'pii', 'secrets', 'toxicity']);
    expect(r.pii.entities).toContain('CREDIT_CARD');
    expect(r.secrets.entities).toContain('AWS_ACCESS_KEY');
    expect(r.injection.entities).toEqual(['PROMPT_INJECTION', 'JAILBREAK', 'INDIRECT_INJECTION']);
  });
});
