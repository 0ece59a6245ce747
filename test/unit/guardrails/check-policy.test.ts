import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPolicies } from '../../../proxy/guardrails/check-policy';

describe('check-policy', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'check-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('lists the effective rules of a valid policy and exits 0', () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, 'name: mine\nextends: default\nguardrails:\n  remove: [pii-redact]\n  override: [{id: prompt-injection, mode: monitor}]\n');
    let out = '';
    expect(checkPolicies([file], (s) => (out += s))).toBe(0);
    expect(out).toContain('ok, policy "mine", 7 rules');
    expect(out).toContain('prompt-injection (prompt_injection, request, block, monitor)');
    expect(out).not.toContain('pii-redact');
  });

  it('reports every problem with its path and exits 2', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'guardrails:\n  rules:\n    - {id: a, detector: pii, action: flag, entities: [EMAIL, SHOE]}\n');
    let out = '';
    expect(checkPolicies([file, join(dir, 'missing.yaml')], (s) => (out += s))).toBe(2);
    expect(out).toContain('/guardrails/rules[id=a]/entities: "SHOE" is not an entity of detector pii');
    expect(out).toContain('missing.yaml: invalid\n  cannot read: ENOENT');
  });
});
