import { readVerdict } from '../../../proxy/akto/verdict';

const answer = (guardrailsResult: unknown): string => JSON.stringify({ success: true, message: 'Request processed successfully', data: { success: true, message: 'ok', guardrailsResult } });

describe('readVerdict: data.guardrailsResult of /api/http-proxy', () => {
  test('a block with policy metadata', () => {
    const r = readVerdict(
      answer({ Allowed: false, Modified: false, ModifiedPayload: '', Reason: 'Denied topic', behaviour: 'block', Metadata: { policy_name: 'finance', rule_violated: 'deniedTopics', severity: 'HIGH' } }),
      'request',
    );
    expect(r).toEqual({
      ok: true,
      verdict: { allowed: false, modified: false, modifiedPayload: undefined, reason: 'Denied topic', behaviour: 'block', policy: 'finance', rule: 'deniedTopics', severity: 'high', failOpen: false },
    });
  });

  test('either key casing, string flags, camelCase metadata (the gateway writes policyName / ruleViolated)', () => {
    const r = readVerdict(answer({ allowed: 'false', modified: 'FALSE', reason: 'x', Behaviour: 'Warn', metadata: { policyName: 'brand', ruleViolated: 'r1' } }), 'request');
    expect(r).toMatchObject({ ok: true, verdict: { allowed: false, modified: false, behaviour: 'warn', policy: 'brand', rule: 'r1' } });
  });

  test.each([
    ['alert', 'alert'],
    ['monitor', 'alert'],
    ['Human Approval', 'approval'],
    ['approval', 'approval'],
    ['mask', 'block'],
    ['', 'block'],
    ['something-new', 'block'],
  ])('behaviour %p reads as %p (an unknown word never weakens Allowed:false)', (word, expected) => {
    const r = readVerdict(answer({ Allowed: false, behaviour: word }), 'request');
    expect(r.ok && r.verdict.behaviour).toBe(expected);
  });

  test('merged phases: each phase reads its own side', () => {
    const body = answer({
      Allowed: false,
      Reason: 'request side',
      requestResult: { Allowed: true, Reason: '' },
      responseResult: { Allowed: false, Reason: 'leak', behaviour: 'block', Metadata: { policy_name: 'dlp' } },
    });
    expect(readVerdict(body, 'request')).toMatchObject({ ok: true, verdict: { allowed: true } });
    expect(readVerdict(body, 'response')).toMatchObject({ ok: true, verdict: { allowed: false, reason: 'leak', policy: 'dlp' } });
  });

  test('ModifiedPayload as a string or as an object; empty means none', () => {
    expect(readVerdict(answer({ Allowed: true, Modified: true, ModifiedPayload: '{"a":1}' }), 'request')).toMatchObject({ verdict: { modified: true, modifiedPayload: '{"a":1}' } });
    expect(readVerdict(answer({ Allowed: true, Modified: true, ModifiedPayload: { a: 1 } }), 'request')).toMatchObject({ verdict: { modifiedPayload: '{"a":1}' } });
    expect(readVerdict(answer({ Allowed: true, Modified: true, ModifiedPayload: '' }), 'request')).toMatchObject({ verdict: { modified: true, modifiedPayload: undefined } });
  });

  test("Akto's fail-open answer is flagged, not taken as an allow", () => {
    const r = readVerdict(answer({ Allowed: true, allowed: true, Modified: false, ModifiedPayload: '', Reason: '', failOpen: true, error: 'timeout' }), 'request');
    expect(r).toMatchObject({ ok: true, verdict: { allowed: true, failOpen: true } });
  });

  test('reasons are one bounded line', () => {
    const r = readVerdict(answer({ Allowed: false, Reason: `line one\nline two\u0000${'x'.repeat(2000)}` }), 'request');
    expect(r.ok && r.verdict.reason.startsWith('line one line two x')).toBe(true);
    expect(r.ok && r.verdict.reason.length).toBeLessThanOrEqual(501);
  });

  test.each([
    ['not JSON', 'upstream connect error'],
    ['an array', '[]'],
    ['success:false', '{"success":false,"message":"Unexpected error: NPE"}'],
    ['no guardrailsResult', '{"success":true,"data":{"success":true}}'],
    ['no Allowed flag', answer({ Reason: 'x', behaviour: 'block' })],
    ['Allowed not a flag', answer({ Allowed: 'maybe' })],
  ])('unreadable: %s', (_what, body) => {
    expect(readVerdict(body, 'request')).toMatchObject({ ok: false, problem: expect.any(String) });
  });
});
