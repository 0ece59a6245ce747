import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findRepoRoot, parseArgs } from '../../../../scripts/eval';
import type { Row } from '../../../../scripts/eval';
import {
  formatTable,
  parseRunnerOutput,
  piiTarget,
  presidioEntity,
  presidioSpans,
  scorePii,
  scoreSecrets,
  secretsTarget,
  sourceRepo,
} from '../../../../scripts/eval-peers';
import type { DetectSecretsResult, PresidioResult } from '../../../../scripts/eval-peers';
import { parseInstallOutput } from '../../../../bench/peers/install';

// Everything here is pure: no ../shared data and no installed peer.
const text = 'Mail a@example.com or call 212-555-0100, card 4111 1111 1111 1111.';
const piiRows: Row[] = [
  {
    text,
    label: 1,
    category: 'pii',
    spans: [
      { type: 'EMAIL_ADDRESS', start: 5, end: 18 },
      { type: 'PHONE_NUMBER', start: 27, end: 39 },
      { type: 'CREDIT_CARD', start: 46, end: 65 },
      { type: 'PERSON', start: 0, end: 4 },
    ],
  },
  { text: 'Nothing here.', label: 0, category: 'none', spans: [] },
];

describe('eval-peers: Presidio entity mapping', () => {
  it('maps Presidio names to ours and leaves types the gold set cannot score unmapped', () => {
    expect(presidioEntity('EMAIL_ADDRESS')).toBe('EMAIL');
    expect(presidioEntity('PHONE_NUMBER')).toBe('PHONE');
    expect(presidioEntity('CREDIT_CARD')).toBe('CREDIT_CARD');
    expect(presidioEntity('IBAN_CODE')).toBe('IBAN');
    expect(presidioEntity('US_SSN')).toBe('US_SSN');
    expect(presidioEntity('IP_ADDRESS')).toBe('IP_ADDRESS');
    expect(presidioEntity('URL')).toBeUndefined();
    expect(presidioEntity('US_DRIVER_LICENSE')).toBeUndefined();
  });

  it('drops unmapped spans and renames the rest', () => {
    const r: PresidioResult = {
      spans: [
        { entity: 'EMAIL_ADDRESS', start: 5, end: 18, score: 1 },
        { entity: 'URL', start: 7, end: 18, score: 0.5 },
      ],
      cpuMicros: 10,
    };
    expect(presidioSpans(r)).toEqual([{ entity: 'EMAIL', start: 5, end: 18 }]);
  });
});

describe('eval-peers: scoring peer output with the eval rules', () => {
  it('scores spans per entity and micro-averaged, charging unmapped types to no system', () => {
    const presidio: PresidioResult[] = [
      {
        spans: [
          { entity: 'EMAIL_ADDRESS', start: 5, end: 18, score: 1 },
          { entity: 'PHONE_NUMBER', start: 31, end: 39, score: 0.4 }, // covers 8 of 12 gold chars: a hit
          { entity: 'URL', start: 7, end: 18, score: 0.5 },
        ],
        cpuMicros: 600,
      },
      { spans: [{ entity: 'PHONE_NUMBER', start: 0, end: 7, score: 0.4 }], cpuMicros: 400 },
    ];
    const rep = scorePii('presidio', piiRows, presidio.map(presidioSpans), 1000);
    expect(rep.entities.EMAIL).toMatchObject({ tp: 1, fp: 0, fn: 0, f1: 1 });
    expect(rep.entities.PHONE).toMatchObject({ tp: 1, fp: 1, fn: 0, precision: 0.5 });
    expect(rep.entities.CREDIT_CARD).toMatchObject({ tp: 0, fp: 0, fn: 1, recall: 0 });
    expect(rep.entities.IBAN).toMatchObject({ tp: 0, fp: 0, fn: 0 });
    expect(rep.overall).toMatchObject({ tp: 2, fp: 1, fn: 1, fpr: null });
    expect(Object.keys(rep.entities)).not.toContain('URL');
    expect(rep.msPerMB).toBeGreaterThan(0);
  });

  it('applies the same entity filter to our own predictions', () => {
    const ours = scorePii('ours', piiRows, [[{ entity: 'EMAIL', start: 5, end: 18 }, { entity: 'SOMETHING_ELSE', start: 0, end: 4 }], []], 1);
    expect(ours.overall).toMatchObject({ tp: 1, fp: 0, fn: 2 });
  });

  it('compares F1 per entity and tells a tie from a win', () => {
    const ours = scorePii('ours', piiRows, [[{ entity: 'EMAIL', start: 5, end: 18 }, { entity: 'CREDIT_CARD', start: 46, end: 65 }], []], 1);
    const peer = scorePii('presidio', piiRows, [[{ entity: 'EMAIL', start: 5, end: 18 }], []], 1);
    const t = piiTarget(ours, peer);
    expect(t.entities.EMAIL.verdict).toBe('tie');
    expect(t.entities.CREDIT_CARD).toEqual({ ours: 1, peer: 0, verdict: 'higher' });
    expect(t.entities.PHONE.verdict).toBe('tie'); // both missed it: 0 vs 0
    expect(t.met).toBe(false);
  });

  it('scores secrets per row, per source repository and per kind', () => {
    const rows: Row[] = [
      { text: 'AKIA...', label: 1, category: 'aws/np.aws.1', source: 'praetorian-inc/noseyparker@2e6e7f36:rules/aws.yml' },
      { text: 'ghp_...', label: 1, category: 'github/github-pat', source: 'gitleaks/gitleaks@b58d3f10:github.go' },
      { text: 'AKIAIOSFODNN7EXAMPLE', label: 0, category: 'aws/aws-access-token', source: 'gitleaks/gitleaks@b58d3f10:aws.go' },
      { text: 'hello', label: 0, category: 'generic/x', source: 'gitleaks/gitleaks@b58d3f10:generic.go' },
    ];
    const peer: DetectSecretsResult[] = [
      { found: true, types: ['AWS Access Key'], cpuMicros: 5 },
      { found: false, types: [], cpuMicros: 5 },
      { found: true, types: ['AWS Access Key'], cpuMicros: 5 },
      { found: false, types: [], cpuMicros: 5 },
    ];
    const ds = scoreSecrets('detect-secrets', rows, peer.map((r) => r.found), 20);
    expect(ds.overall).toMatchObject({ tp: 1, fn: 1, fp: 1, tn: 1, recall: 0.5, fpr: 0.5 });
    expect(ds.sources['gitleaks/gitleaks']).toMatchObject({ fn: 1, fp: 1, tn: 1 });
    expect(ds.kinds.aws).toMatchObject({ tp: 1, fp: 1 });
    const ours = scoreSecrets('ours', rows, [true, true, false, false], 20);
    expect(secretsTarget(ours, ds)).toEqual({ met: true, recall: { ours: 1, peer: 0.5 }, fpr: { ours: 0, peer: 0.5 } });
    // Higher recall bought with a higher false-positive rate does not meet the target.
    const noisy = scoreSecrets('ours', rows, [true, true, true, true], 20);
    expect(secretsTarget(noisy, ds).met).toBe(false);
    expect(sourceRepo(rows[0])).toBe('praetorian-inc/noseyparker');
  });
});

describe('eval-peers: command line', () => {
  const cli = { usage: 'eval:peers', peers: true };
  it('takes --peers only where allowed', () => {
    expect(parseArgs(['--peers', 'presidio,detect-secrets', '--format', 'json'], cli)).toEqual({ format: 'json', peers: ['presidio', 'detect-secrets'] });
    expect(() => parseArgs(['--peers', ''], cli)).toThrow(/comma-separated/);
    expect(() => parseArgs(['--peers', 'presidio'])).toThrow(/unknown argument "--peers"/);
  });

  it('finds the repository root from dist/scripts although tsc copies package.json into dist', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'eval-peers-root-'));
    try {
      mkdirSync(path.join(root, 'dist', 'scripts'), { recursive: true });
      for (const f of ['package.json', 'tsconfig.json']) writeFileSync(path.join(root, f), '{}');
      writeFileSync(path.join(root, 'dist', 'package.json'), '{}');
      expect(findRepoRoot(path.join(root, 'dist', 'scripts'))).toBe(root);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('eval-peers: talking to the installer and the runners', () => {
  it('reads ready/unavailable lines and notes a peer the installer never mentioned', () => {
    const st = parseInstallOutput('ready presidio /cache/presidio/bin/python\nunavailable detect-secrets: pip install failed (see log)\n', [
      'presidio',
      'detect-secrets',
      'other',
    ]);
    expect(st.presidio).toEqual({ status: 'ready', path: '/cache/presidio/bin/python' });
    expect(st['detect-secrets']).toEqual({ status: 'unavailable', reason: 'pip install failed (see log)' });
    expect(st.other.status).toBe('unavailable');
  });

  it('parses a runner meta line and one result per row, and rejects a short output', () => {
    const out = '{"meta":{"peer":"detect-secrets","version":"1.5.0"}}\n{"found":true,"types":["x"],"cpuMicros":3}\n{"found":false,"types":[],"cpuMicros":2}\n';
    const parsed = parseRunnerOutput<DetectSecretsResult>(out, 2);
    expect(parsed.meta.version).toBe('1.5.0');
    expect(parsed.results.map((r) => r.found)).toEqual([true, false]);
    expect(() => parseRunnerOutput(out, 3)).toThrow(/2 results for 3 rows/);
    expect(() => parseRunnerOutput('', 0)).toThrow(/no meta line/);
  });

  it('prints one line for a skipped peer and the table for ours alone', () => {
    const ours = scorePii('ours', piiRows, [[{ entity: 'EMAIL', start: 5, end: 18 }], []], 1);
    const table = formatTable({
      data: '/data',
      peers: { presidio: { status: 'unavailable', reason: 'pip install failed' }, 'detect-secrets': { status: 'skipped' } },
      pii: { file: 'pii.jsonl', rows: 2, bytes: 80, entities: Object.keys(ours.entities), systems: [ours] },
    });
    expect(table).toContain('presidio: unavailable, skipped (pip install failed)');
    expect(table).toContain('detect-secrets: not requested');
    expect(table).toMatch(/EMAIL\s+1 \|/);
    expect(table).not.toContain('Target');
  });
});
