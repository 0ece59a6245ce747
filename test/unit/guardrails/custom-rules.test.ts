import { evaluateStage } from '../../../proxy/guardrails/engine';
import { PolicyError } from '../../../proxy/policy/load';
import { ctx, exchange, policyFrom, segment } from './support';

function timeMs(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

describe('custom rules in a policy', () => {
  it('runs a catastrophic-backtracking regex in linear time', () => {
    const policy = policyFrom('guardrails:\n  rules:\n    - {id: evil, detector: regex, action: block, patterns: [{pattern: "(a+)+$"}]}\n');
    const run = (n: number) => {
      const ex = exchange([segment(`${'a'.repeat(n)}!`)]);
      return timeMs(() => expect(evaluateStage(policy, ex, 'request', ctx()).verdict).toBeUndefined());
    };
    run(1000); // warm up
    const small = run(20_000);
    const large = run(80_000);
    // A backtracking engine would not finish 20k; a linear one scales ~4x (allow a wide margin for noise).
    expect(large).toBeLessThan(Math.max(small, 5) * 16);
    expect(large).toBeLessThan(2000);
    const hit = exchange([segment('a'.repeat(50_000))]);
    expect(evaluateStage(policy, hit, 'request', ctx()).verdict?.code).toBe('evil');
  });

  it('redacts regex matches with the pattern id as the entity', () => {
    const policy = policyFrom(
      'guardrails:\n  rules:\n    - {id: hosts, detector: regex, action: redact, patterns: [{id: INTERNAL_HOST, pattern: "[a-z0-9-]+\\\\.corp\\\\.example\\\\.com", case_insensitive: true}]}\n',
    );
    const ex = exchange([segment('ssh to DB-1.corp.example.com and api.corp.example.com')]);
    evaluateStage(policy, ex, 'request', ctx());
    expect(ex.input[0].text).toBe('ssh to <INTERNAL_HOST_1> and <INTERNAL_HOST_2>');
  });

  it('rejects a pattern RE2 cannot run when the policy loads, naming the rule', () => {
    expect(() => policyFrom('guardrails:\n  rules:\n    - {id: look, detector: regex, action: flag, patterns: [{pattern: "a(?=b)"}]}\n')).toThrow(PolicyError);
    try {
      policyFrom('guardrails:\n  rules:\n    - {id: look, detector: regex, action: flag, patterns: [{pattern: "a(?=b)"}]}\n');
    } catch (err) {
      expect((err as PolicyError).problems[0]).toMatch(/^\/guardrails\/rules\[id=look\]\/patterns: /);
    }
  });

  it('flags banned topics from a keyword list, on word boundaries and ignoring case', () => {
    const policy = policyFrom('guardrails:\n  rules:\n    - {id: topics, detector: keywords, action: flag, keywords: [merger, acquisition target]}\n');
    const hit = evaluateStage(policy, exchange([segment('Is Acme our next Acquisition Target after the MERGER?')]), 'request', ctx());
    expect(hit.record.hits.map((h) => h.entity)).toEqual(['TOPICS', 'TOPICS']);
    const miss = evaluateStage(policy, exchange([segment('mergers and targets')]), 'request', ctx());
    expect(miss.record.rules[0].status).toBe('pass');
  });
});
