import { applyRedactions, evidence, maskValue, RedactionContext } from '../../../proxy/guardrails/redact';
import { globMatch } from '../../../proxy/protocols/glob';

describe('redaction', () => {
  it('numbers placeholders per entity, stable for a repeated value', () => {
    const c = new RedactionContext(Buffer.from('k'));
    expect(c.replacement('EMAIL', 'a@x.io', 'placeholder')).toBe('<EMAIL_1>');
    expect(c.replacement('EMAIL', 'b@x.io', 'placeholder')).toBe('<EMAIL_2>');
    expect(c.replacement('CREDIT_CARD', '4111111111111111', 'placeholder')).toBe('<CREDIT_CARD_1>');
    expect(c.replacement('EMAIL', 'a@x.io', 'placeholder')).toBe('<EMAIL_1>');
  });

  it('masks keeping separators and the edges of long values', () => {
    expect(maskValue('4111111111111111')).toBe('4111********1111');
    expect(maskValue('4111 1111 1111 1111')).toBe('4111 **** **** 1111');
    expect(maskValue('123-45-6789')).toBe('***-**-6789');
    expect(maskValue('abc')).toBe('***');
  });

  it('hashes with a keyed HMAC: same value same tag, different key different tag, never the value', () => {
    const a = new RedactionContext(Buffer.from('k1'));
    const b = new RedactionContext(Buffer.from('k2'));
    const t = a.replacement('EMAIL', 'alice@example.com', 'hash');
    expect(t).toMatch(/^<EMAIL#[0-9a-f]{12}>$/);
    expect(a.replacement('EMAIL', 'alice@example.com', 'hash')).toBe(t);
    expect(b.replacement('EMAIL', 'alice@example.com', 'hash')).not.toBe(t);
  });

  it('applies spans at their offsets in the original text and merges overlaps into one replacement', () => {
    const c = new RedactionContext(Buffer.from('k'));
    const text = 'mail a@x.io or card 4111111111111111 now';
    const out = applyRedactions(
      text,
      [
        { start: 20, end: 36, entity: 'CREDIT_CARD', style: 'placeholder' },
        { start: 5, end: 11, entity: 'EMAIL', style: 'placeholder' },
        { start: 18, end: 24, entity: 'PHONE', style: 'placeholder' },
      ],
      c,
    );
    expect(out).toBe('mail <EMAIL_1> or car<PHONE_1> now');
  });

  it('keeps evidence masked and bounded', () => {
    expect(evidence('AKIA1234567890ABCDEF')).toBe('AKIA************CDEF');
    const long = evidence('x'.repeat(500));
    expect(long.length).toBeLessThan(70);
    expect(long).not.toContain('xxxxxxxxx');
  });
});

describe('glob', () => {
  it.each([
    ['/v1/*', '/v1/chat/completions', true],
    ['/v1/*', '/v2/chat', false],
    ['meta-llama/*', 'meta-llama/Llama-3.1-8B', true],
    ['*-8B', 'meta-llama/Llama-3.1-8B', true],
    ['gpt-?', 'gpt-4', true],
    ['gpt-?', 'gpt-40', false],
    ['exact', 'exact', true],
    ['', '', true],
    ['*a*b', 'xaxxb', true],
    ['*a*b', 'xaxxbc', false],
  ])('%s ~ %s = %s', (pattern, value, expected) => {
    expect(globMatch(pattern, value)).toBe(expected);
  });

  it('stays fast on a hostile pattern', () => {
    const t = process.hrtime.bigint();
    expect(globMatch('*a*a*a*a*a*a*a*a*b', 'a'.repeat(5000))).toBe(false);
    expect(Number(process.hrtime.bigint() - t) / 1e6).toBeLessThan(500);
  });
});
