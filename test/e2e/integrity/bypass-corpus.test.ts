/**
 * The request bypass corpus (test/data/bypass/request*.jsonl, also `npm run eval`'s bypass section) as a
 * regression test: through the built proxy (dist/proxy/main.js, default pack) to the differential upstream,
 * no attack gets through and no benign control is refused.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { encodeBody, loadCorpus, runBypass } from '../../../scripts/eval-bypass';
import { differentialPython } from '../../fixtures/differential-upstream';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const built = existsSync(path.join(ROOT, 'dist', 'proxy', 'main.js'));
if (!built) console.warn('!!! dist/proxy/main.js missing (npm run build): the bypass corpus test is SKIPPED !!!');

describe('request bypass corpus', () => {
  test('at least 150 cases over the request-side families, each well formed', () => {
    const { cases } = loadCorpus(path.join(ROOT, 'test', 'data', 'bypass'));
    expect(cases.length).toBeGreaterThanOrEqual(150);
    expect(new Set(cases.map((c) => c.family))).toEqual(new Set(['path', 'route', 'encoding', 'content-type', 'field', 'role', 'split']));
    expect(new Set(cases.map((c) => c.id)).size).toBe(cases.length);
    for (const c of cases) {
      expect(c.markers.length).toBeGreaterThan(0);
      expect(encodeBody(c).length).toBeGreaterThan(0);
    }
  });

  (built && differentialPython() ? test : test.skip)(
    'nothing gets through the real proxy, no benign control is refused',
    async () => {
      const report = (await runBypass(ROOT))!;
      expect(report.gotThrough).toEqual([]);
      expect(report.benignRefused).toEqual([]);
      expect(report.total.attacks).toBeGreaterThanOrEqual(150);
    },
    120000,
  );
});
