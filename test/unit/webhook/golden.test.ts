/**
 * Golden AdmissionReviews: each input under test/fixtures/webhook/inputs goes through the real
 * review() path; the returned JSON Patch is applied with fast-json-patch and the result compared
 * with expected/<case>.json. A missing or stale golden fails; UPDATE_GOLDEN=1 rewrites them.
 * Every case runs twice: the second call on the patched pod must change nothing. `enforced: true` sends the
 * review through the entry of namespaces labelled injection=enforced; `event` is the Kubernetes Event the
 * admission leaves (on the pod's owner).
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyPatch, Operation } from 'fast-json-patch';
import { review } from '../../../webhook/admission';
import { inject } from '../../../webhook/inject';
import { loadSettings } from '../../../webhook/settings';

const root = join(__dirname, '../../fixtures/webhook');
const update = process.env.UPDATE_GOLDEN === '1';
const BASE_ENV = { SIDECAR_IMAGE: 'akto-agent-proxy:test' };

interface Input {
  description: string;
  env?: Record<string, string>;
  cluster?: { nativeSidecars: boolean };
  enforced?: boolean;
  /** Strings that must appear nowhere in the resulting pod (credentials custody removed). */
  absent?: string[];
  review?: Record<string, unknown>;
  fromExpected?: string;
  thenPatch?: Operation[];
}

interface Golden {
  description: string;
  result: string;
  reason: string;
  allowed: boolean;
  status?: unknown;
  warnings: string[];
  event?: unknown;
  patch: Operation[];
  pod: unknown;
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

const names = readdirSync(join(root, 'inputs')).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, '')).sort();

function reviewFor(input: Input): Record<string, unknown> {
  if (input.review) return structuredClone(input.review);
  const base = readJson<{ review: Record<string, unknown> }>(join(root, 'inputs', `${input.fromExpected}.json`)).review;
  const golden = readJson<Golden>(join(root, 'expected', `${input.fromExpected}.json`));
  let pod = structuredClone(golden.pod);
  if (input.thenPatch) pod = applyPatch(pod, input.thenPatch, true, true).newDocument;
  const r = structuredClone(base);
  (r.request as Record<string, unknown>).object = pod;
  (r.request as Record<string, unknown>).uid = 'b7f3c6a2-2222-4c4c-8d8d-abcdefabcdef';
  return r;
}

function run(input: Input, rev: Record<string, unknown>): Golden {
  const settings = loadSettings({ ...BASE_ENV, ...input.env });
  const out = review(rev, settings, input.cluster ?? { nativeSidecars: false }, inject, { enforced: input.enforced });
  const response = out.review.response as Record<string, unknown>;
  expect(response.uid).toBe((rev.request as Record<string, unknown>).uid);
  const ops: Operation[] = typeof response.patch === 'string' ? JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) : [];
  if (ops.length > 0) expect(response.patchType).toBe('JSONPatch');
  const original = (rev.request as Record<string, unknown>).object;
  const pod = ops.length > 0 ? applyPatch(structuredClone(original), ops, true, true).newDocument : original;
  const golden: Golden = {
    description: input.description,
    result: out.result,
    reason: out.reason,
    allowed: response.allowed as boolean,
    warnings: (response.warnings as string[] | undefined) ?? [],
    patch: ops,
    pod,
  };
  if (response.status !== undefined) golden.status = response.status;
  if (out.event !== undefined) golden.event = out.event;
  return golden;
}

describe('golden AdmissionReviews', () => {
  it('has a golden for every input and no orphan goldens', () => {
    const expected = readdirSync(join(root, 'expected')).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, ''));
    if (!update) expect(expected.sort()).toEqual(names);
    expect(names.length).toBeGreaterThanOrEqual(20);
  });

  // Derived cases read the goldens of their base case, so base cases run first.
  const ordered = [...names].sort((a, b) => Number(!!readJson<Input>(join(root, 'inputs', `${a}.json`)).fromExpected) - Number(!!readJson<Input>(join(root, 'inputs', `${b}.json`)).fromExpected));
  it.each(ordered)('%s', (name) => {
    const input = readJson<Input>(join(root, 'inputs', `${name}.json`));
    const rev = reviewFor(input);
    const actual = run(input, rev);
    const goldenPath = join(root, 'expected', `${name}.json`);
    if (update) writeFileSync(goldenPath, JSON.stringify(actual, null, 2) + '\n');
    expect(existsSync(goldenPath)).toBe(true);
    expect(actual).toEqual(readJson<Golden>(goldenPath));
    for (const text of input.absent ?? []) expect(JSON.stringify(actual.pod)).not.toContain(text);

    // Idempotency: the same review on the resulting pod changes nothing.
    const again = structuredClone(rev);
    (again.request as Record<string, unknown>).object = actual.pod;
    const second = run(input, again);
    expect(second.patch).toEqual([]);
    expect(second.pod).toEqual(actual.pod);
    if (actual.result === 'injected') expect(second.result).toBe('unchanged');
    else expect(second.result).toBe(actual.result);
  });
});
