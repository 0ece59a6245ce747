import { parseSelector, selectorMatches } from '../../../webhook/selector';

describe('label selectors (kubectl syntax)', () => {
  const labels = { team: 'platform', tier: 'batch', 'example.com/owner': 'ops' };

  it.each([
    ['team=platform', true],
    ['team==platform', true],
    ['team!=platform', false],
    ['team!=web', true],
    ['missing!=x', true], // != matches an absent key, as in Kubernetes
    ['tier in (batch, maintenance)', true],
    ['tier in (web)', false],
    ['tier notin (web,api)', true],
    ['missing notin (a)', true],
    ['example.com/owner', true],
    ['!example.com/owner', false],
    ['!missing', true],
    ['team=platform,tier in (batch,maintenance),!missing', true],
    ['team=platform,tier=web', false],
    ['team=', false],
  ])('%s → %s', (text, expected) => {
    expect(selectorMatches(parseSelector(text), labels)).toBe(expected);
  });

  it('an empty selector exempts nobody (unlike an empty LabelSelector object)', () => {
    expect(parseSelector('  ')).toEqual([]);
    expect(selectorMatches(parseSelector(''), labels)).toBe(false);
  });

  it.each([
    ['a=b,,c', /empty term/],
    ['bad key=x', /not a label key/],
    ['a=b c', /not a label value/],
    ['a in (b,c d)', /not a label value/],
    ['-a=b', /not a label key/],
  ])('rejects %s naming the bad part', (text, message) => {
    expect(() => parseSelector(text)).toThrow(message);
  });
});
