import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ConfigError } from '../../../common/env';
import { type GuardrailDecision } from '../../../proxy/guardrails';
import { openGuardrails } from '../../support/guardrails';
import { createLogger } from '../../../common/logger';
import { createRegistry } from '../../../common/metrics';
import type { WatchedPolicyStore } from '../../../proxy/policy/watch';
import { exchange, segment } from './support';

const quiet = () => createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
const EMAIL = 'alice.smith@example.com';

describe('createGuardrails', () => {
  it('redacts on request, records the decision and findings, counts hits', async () => {
    const registry = createRegistry(false);
    const g = await openGuardrails({}, quiet(), registry);
    const ex = exchange([segment(`mail ${EMAIL}`)]);
    expect(await g.hooks.onRequest!(ex)).toBeUndefined();
    expect(ex.input[0].text).toBe('mail <EMAIL_1>');
    const d = ex.notes.guardrails as GuardrailDecision;
    expect(d.policy).toBe('pack:default');
    expect(d.request?.action).toBe('redact');
    expect(ex.findings).toEqual([expect.objectContaining({ source: 'guardrail', ruleId: 'pii-redact', entity: 'EMAIL', action: 'redact' })]);
    expect(await registry.metrics()).toMatch(/guardrail_rule_hits_total\{rule="pii-redact",action="redact",stage="request"\} 1/);
    g.close();
  });

  it('keeps placeholders stable between the request and the response of one exchange', async () => {
    const g = await openGuardrails({}, quiet(), createRegistry(false));
    const ex = exchange([segment(`I am ${EMAIL}`)]);
    await g.hooks.onRequest!(ex);
    ex.output = [segment(`Hello ${EMAIL}, and bob@example.org`, 'assistant')];
    await g.hooks.onResponse!(ex);
    expect(ex.output[0].text).toBe('Hello <EMAIL_1>, and <EMAIL_2>');
    g.close();
  });

  it('records a stream decision as it happens and reports each finding once', async () => {
    const registry = createRegistry(false);
    const g = await openGuardrails({}, quiet(), registry);
    const ex = exchange([segment('hi')], { stream: true });
    const filter = g.hooks.openStream!(ex)!.channel('0', 'content');
    // A word before a space is held: it may be the local part of "or [at] example [dot] org".
    expect(filter.push('Mail jane@example.org or ').text).toBe('Mail <EMAIL_1> ');
    expect(filter.push('jane@example.org, key AKIAZ7Q3LMN4').text).toMatch(/^or <EMAIL_1>, (key ?)?$/); // "key" may be held as a possible e-mail or assignment
    const cut = filter.push('PRS5TUVW now');
    expect(cut).toEqual({ text: '', block: expect.objectContaining({ code: 'secrets-response-block', status: 400 }) });
    g.hooks.onComplete!(ex);
    const record = (ex.notes.guardrails as GuardrailDecision).response!;
    expect(record).toMatchObject({ streamed: true, action: 'block', blockedBy: 'secrets-response-block' });
    expect(record.rules.find((r) => r.id === 'pii-redact')).toMatchObject({ status: 'hit', hits: 2, action: 'redact' });
    expect(record.hits.map((h) => [h.entity, h.segment])).toEqual([
      ['EMAIL', '0'],
      ['EMAIL', '0'],
      ['AWS_ACCESS_KEY', '0'],
    ]);
    expect(ex.findings.map((f) => [f.ruleId, f.entity])).toEqual([
      ['pii-redact', 'EMAIL'],
      ['secrets-response-block', 'AWS_ACCESS_KEY'],
    ]);
    expect(await registry.metrics()).toMatch(/guardrail_evaluation_seconds_count\{stage="response"\} 1/);
    g.close();
  });

  it('uses the pack limits escalated this exchange to', async () => {
    const g = await openGuardrails({}, quiet(), createRegistry(false));
    const ex = exchange([segment(`mail ${EMAIL}`)], { notes: { limits: { identity: 'user:a', identitySource: 'header', workload: 'ns/p', escalatedPack: 'strict' } } });
    expect(await g.hooks.onRequest!(ex)).toMatchObject({ code: 'pii-block' });
    g.close();
  });

  it('with the off pack touches nothing and opens no stream filter', async () => {
    const g = await openGuardrails({ POLICY_PACK: 'off' }, quiet(), createRegistry(false));
    const ex = exchange([segment(`mail ${EMAIL}`)], { stream: true });
    expect(await g.hooks.onRequest!(ex)).toBeUndefined();
    expect(ex.notes.guardrails).toBeUndefined();
    expect(g.hooks.openStream!(ex)).toBeUndefined();
    g.close();
  });

  describe('with POLICY_FILE', () => {
    let dir: string;
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'guard-'))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('rejects a policy the detectors cannot run with a ConfigError naming the rule', async () => {
      const file = join(dir, 'p.yaml');
      writeFileSync(file, 'guardrails:\n  rules:\n    - {id: x, detector: pii, action: flag, entities: [EMAIL, SHOE_SIZE]}\n');
      const err = await openGuardrails({ POLICY_FILE: file }, quiet(), createRegistry(false)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/^POLICY_FILE: .*\/guardrails\/rules\[id=x\]\/entities: "SHOE_SIZE" is not an entity of detector pii/);
    });

    it('applies a reloaded policy to the next exchange', async () => {
      const file = join(dir, 'p.yaml');
      writeFileSync(file, 'guardrails:\n  rules:\n    - {id: x, detector: pii, action: flag}\n');
      const g = await openGuardrails({ POLICY_FILE: file, POLICY_RELOAD_POLL_MS: '0' }, quiet(), createRegistry(false));
      const first = exchange([segment(`mail ${EMAIL}`)]);
      await g.hooks.onRequest!(first);
      expect(first.input[0].text).toBe(`mail ${EMAIL}`);
      writeFileSync(file, 'guardrails:\n  rules:\n    - {id: x, detector: pii, action: redact, redaction: mask}\n');
      expect((g.store as WatchedPolicyStore).reload()).toBe(true);
      // an exchange already under way keeps the policy it started with
      first.output = [segment(`reply to ${EMAIL}`, 'assistant')];
      await g.hooks.onResponse!(first);
      expect(first.output[0].text).toBe(`reply to ${EMAIL}`);
      const second = exchange([segment(`mail ${EMAIL}`)]);
      await g.hooks.onRequest!(second);
      expect(second.input[0].text).toBe('mail alic*.*****@******e.com');
      g.close();
    });
  });
});
