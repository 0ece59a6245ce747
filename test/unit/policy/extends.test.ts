import { loadPolicyText, PolicyError } from '../../../proxy/policy/load';
import { PACKS } from '../../../proxy/policy/packs';

const ids = (yaml: string): string[] => loadPolicyText(yaml, 't.yaml').guardrails.rules.map((r) => r.id);

describe('extends', () => {
  const defaultIds = PACKS.default.guardrails.rules.map((r) => r.id);

  it('inherits the pack rules in order', () => {
    expect(ids('extends: default\n')).toEqual(defaultIds);
    expect(defaultIds).toEqual(['pii-redact', 'secrets-request-redact', 'secrets-response-block', 'prompt-injection', 'jailbreak', 'indirect-injection', 'toxicity', 'harmful-intent']);
  });

  it('adds new rules after the inherited ones', () => {
    expect(ids('extends: default\nguardrails:\n  rules:\n    - {id: topics, detector: keywords, action: flag, keywords: [merger]}\n')).toEqual([
      ...defaultIds,
      'topics',
    ]);
  });

  it('replaces an inherited rule with a rule of the same id, in place', () => {
    const p = loadPolicyText('extends: default\nguardrails:\n  rules:\n    - {id: pii-redact, detector: pii, action: block, entities: [CREDIT_CARD]}\n', 't');
    expect(p.guardrails.rules.map((r) => r.id)).toEqual(defaultIds);
    expect(p.guardrails.rules[0]).toEqual({ id: 'pii-redact', detector: 'pii', action: 'block', entities: ['CREDIT_CARD'] });
  });

  it('overrides single fields of an inherited rule and keeps the rest', () => {
    const p = loadPolicyText('extends: default\nguardrails:\n  override:\n    - {id: prompt-injection, threshold: 0.2, mode: monitor}\n', 't');
    const rule = p.guardrails.rules.find((r) => r.id === 'prompt-injection')!;
    expect(rule).toMatchObject({ category: 'prompt_injection', action: 'block', stage: 'request', threshold: 0.2, mode: 'monitor' });
    expect(rule.match).toEqual(PACKS.default.guardrails.rules[3].match);
  });

  it('removes inherited rules by id', () => {
    expect(ids('extends: default\nguardrails:\n  remove: [pii-redact, prompt-injection]\n')).toEqual(['secrets-request-redact', 'secrets-response-block', 'jailbreak', 'indirect-injection', 'toxicity', 'harmful-intent']);
  });

  it('does not let overrides leak into the pack itself', () => {
    loadPolicyText('extends: default\nguardrails:\n  override:\n    - {id: pii-redact, action: flag}\n', 't');
    expect(PACKS.default.guardrails.rules[0].action).toBe('redact');
  });

  it('monitor pack keeps default rules in shadow mode; a child can turn enforcement back on', () => {
    expect(loadPolicyText('extends: monitor\n', 't').guardrails.mode).toBe('monitor');
    expect(loadPolicyText('extends: monitor\nguardrails:\n  mode: enforce\n', 't').guardrails.mode).toBe('enforce');
  });

  it.each([
    ['override of an unknown id', 'extends: default\nguardrails:\n  override:\n    - {id: nope, action: flag}\n', '/guardrails/override/0/id: no inherited rule "nope"'],
    ['remove of an unknown id', 'extends: default\nguardrails:\n  remove: [nope]\n', '/guardrails/remove/0: no inherited rule "nope"'],
    ['override without extends', 'guardrails:\n  override:\n    - {id: a, action: flag}\n', '/guardrails: override and remove need "extends"'],
    ['an override that changes the detector', 'extends: default\nguardrails:\n  override:\n    - {id: pii-redact, detector: secrets}\n', '/guardrails/override/0: unknown field "detector"'],
  ])('rejects %s', (_n, text, expected) => {
    let problems: readonly string[] = [];
    try {
      loadPolicyText(text, 't');
    } catch (err) {
      problems = (err as PolicyError).problems;
    }
    expect(problems.some((p) => p.startsWith(expected))).toBe(true);
  });
});
