import { mkdtempSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ConfigError } from '../../../common/env';
import { PolicyError } from '../../../proxy/policy/load';
import { openPolicyStore } from '../../../proxy/policy/open';
import { policyMetrics, WatchedPolicyStore } from '../../../proxy/policy/watch';
import type { ResolvedPolicy } from '../../../proxy/policy/types';
import { createLogger } from '../../../common/logger';
import { createRegistry } from '../../../common/metrics';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, logger: createLogger('debug', sink) };
}

const policyText = (action: string) => `version: 1\nguardrails:\n  rules:\n    - {id: r1, detector: pii, action: ${action}}\n`;

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function failures(registry: ReturnType<typeof createRegistry>): Promise<number> {
  const m = await registry.getSingleMetric('policy_reload_failures_total')!.get();
  return m.values[0]?.value ?? 0;
}

describe('policy file reload', () => {
  let dir: string;
  const stores: WatchedPolicyStore[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'policy-'));
  });
  afterEach(() => {
    for (const s of stores.splice(0)) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function open(path: string) {
    const registry = createRegistry(false);
    const { logger, lines } = capture();
    const store = new WatchedPolicyStore(path, logger, policyMetrics(registry), { debounceMs: 20 });
    stores.push(store);
    const seen: ResolvedPolicy[] = [];
    store.subscribe((p) => seen.push(p));
    return { store, registry, lines, seen };
  }

  it('reloads when the file is rewritten in place', async () => {
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, policyText('flag'));
    const { store, seen } = open(file);
    expect(store.current().guardrails.rules[0].action).toBe('flag');
    writeFileSync(file, policyText('block'));
    await until(() => seen.length === 1);
    expect(store.current().guardrails.rules[0].action).toBe('block');
  });

  it('follows a ConfigMap-style ..data symlink swap', async () => {
    // kubelet layout: policy.yaml -> ..data/policy.yaml, ..data -> ..<timestamp>/ ; an update swaps ..data atomically.
    const v1 = join(dir, '..2026_01');
    mkdirSync(v1);
    writeFileSync(join(v1, 'policy.yaml'), policyText('flag'));
    symlinkSync('..2026_01', join(dir, '..data'));
    symlinkSync('..data/policy.yaml', join(dir, 'policy.yaml'));
    const { store, seen } = open(join(dir, 'policy.yaml'));
    expect(store.current().guardrails.rules[0].action).toBe('flag');

    const v2 = join(dir, '..2026_02');
    mkdirSync(v2);
    writeFileSync(join(v2, 'policy.yaml'), policyText('redact'));
    symlinkSync('..2026_02', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    rmSync(v1, { recursive: true });
    await until(() => seen.length === 1);
    expect(store.current().guardrails.rules[0].action).toBe('redact');
  });

  it('keeps the old policy on an invalid reload, logs the problem and counts it', async () => {
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, policyText('flag'));
    const { store, registry, lines, seen } = open(file);
    writeFileSync(file, policyText('explode'));
    await until(() => lines.some((l) => l.msg === 'policy reload failed: keeping the previous policy'));
    expect(store.current().guardrails.rules[0].action).toBe('flag');
    expect(seen).toHaveLength(0);
    expect(await failures(registry)).toBe(1);
    const line = lines.find((l) => l.level === 'error')!;
    expect(JSON.stringify(line.problems)).toContain('/guardrails/rules/0/action');
    // a later valid version takes effect
    writeFileSync(file, policyText('block'));
    await until(() => seen.length === 1);
    expect(store.current().guardrails.rules[0].action).toBe('block');
  });

  it('keeps the old policy when a writer truncates the file and pauses, and takes the new one when it is written', async () => {
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, policyText('flag'));
    const { store, registry, lines, seen } = open(file);
    writeFileSync(file, ''); // O_TRUNC, then nothing for a while
    await until(() => lines.some((l) => l.msg === 'policy reload failed: keeping the previous policy'));
    await new Promise((r) => setTimeout(r, 100));
    expect(store.current().guardrails.rules.map((r) => r.action)).toEqual(['flag']);
    expect(seen).toHaveLength(0);
    expect(await failures(registry)).toBe(1);
    expect(JSON.stringify(lines.find((l) => l.level === 'error')?.problems)).toContain('no guardrail rule');
    writeFileSync(file, 'version: 1\n'); // still no rule: refused too
    await until(() => lines.filter((l) => l.msg === 'policy reload failed: keeping the previous policy').length === 2);
    writeFileSync(file, policyText('block'));
    await until(() => seen.length === 1);
    expect(store.current().guardrails.rules[0].action).toBe('block');
  });

  it('does not apply a half-written file when the writer pauses longer than the debounce', async () => {
    const file = join(dir, 'policy.yaml');
    const full = `version: 1\nguardrails:\n  rules:\n    - {id: r1, detector: pii, action: block}\n    - {id: r2, detector: secrets, action: block}\n`;
    writeFileSync(file, full);
    const registry = createRegistry(false);
    const { logger } = capture();
    const store = new WatchedPolicyStore(file, logger, policyMetrics(registry), { debounceMs: 150 });
    stores.push(store);
    const seen: number[] = [];
    store.subscribe((p) => seen.push(p.guardrails.rules.length));
    const edited = full.replace(/action: block/g, 'action: flag');
    const cut = edited.indexOf('    - {id: r2');
    writeFileSync(file, edited.slice(0, cut)); // a valid prefix with one rule: weaker than the policy in force
    await new Promise((r) => setTimeout(r, 200)); // past the 150 ms debounce, within the second read
    writeFileSync(file, edited);
    await until(() => seen.length === 1);
    await new Promise((r) => setTimeout(r, 400));
    expect(seen).toEqual([2]);
    expect(store.current().guardrails.rules.map((r) => r.action)).toEqual(['flag', 'flag']);
  });

  it('ignores events that do not change the content', async () => {
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, policyText('flag'));
    const { store, seen } = open(file);
    writeFileSync(join(dir, 'unrelated.txt'), 'x');
    writeFileSync(file, policyText('flag'));
    await new Promise((r) => setTimeout(r, 100));
    expect(store.reload()).toBe(false);
    expect(seen).toHaveLength(0);
  });
});

describe('openPolicyStore', () => {
  const registry = () => createRegistry(false);
  const logger = capture().logger;

  it('uses the default pack when nothing is set', () => {
    const o = openPolicyStore({}, logger, registry());
    expect(o.source).toBe('pack:default');
    expect(o.store.current().name).toBe('pack:default');
  });

  it('selects a pack by POLICY_PACK', () => {
    expect(openPolicyStore({ POLICY_PACK: 'strict' }, logger, registry()).store.current().name).toBe('pack:strict');
  });

  it('rejects an unknown POLICY_PACK with a ConfigError naming it', () => {
    expect(() => openPolicyStore({ POLICY_PACK: 'lax' }, logger, registry())).toThrow(ConfigError);
    expect(() => openPolicyStore({ POLICY_PACK: 'lax' }, logger, registry())).toThrow(/^POLICY_PACK: must be one of default, monitor, strict, off/);
  });

  it('turns an invalid POLICY_FILE into a ConfigError naming the variable, file, path and problem', () => {
    const dir = mkdtempSync(join(tmpdir(), 'policy-'));
    try {
      const file = join(dir, 'p.yaml');
      writeFileSync(file, 'guardrails:\n  rules:\n    - {id: a, detector: pii, action: nuke}\n');
      let error: unknown;
      try {
        openPolicyStore({ POLICY_FILE: file }, logger, registry());
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).key).toBe('POLICY_FILE');
      expect((error as Error).message).toContain(`${file}: /guardrails/rules/0/action: must be one of`);
      expect(() => openPolicyStore({ POLICY_FILE: join(dir, 'missing.yaml') }, logger, registry())).toThrow(/POLICY_FILE: .*cannot read: ENOENT/);
      for (const text of ['', 'version: 1\n']) {
        writeFileSync(file, text);
        expect(() => openPolicyStore({ POLICY_FILE: file }, logger, registry())).toThrow(/^POLICY_FILE: .*no guardrail rule/);
      }
      writeFileSync(file, 'version: 1\nextends: off\n');
      expect(openPolicyStore({ POLICY_FILE: file }, logger, registry()).store.current().guardrails.rules).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs consumer checks at start; a failing check is a ConfigError', () => {
    const check = jest.fn();
    openPolicyStore({ POLICY_PACK: 'default' }, logger, registry(), [check]).close();
    expect(check).toHaveBeenCalledTimes(1);
    const reject = (_p: ResolvedPolicy, source: string) => {
      throw new PolicyError(source, ['/guardrails/rules[id=x]/patterns: bad regex']);
    };
    expect(() => openPolicyStore({ POLICY_PACK: 'strict' }, logger, registry(), [reject])).toThrow(/^POLICY_PACK: strict: .*bad regex/);
  });
});
