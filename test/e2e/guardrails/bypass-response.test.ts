import { evalResponseBypass } from '../../../scripts/eval-bypass-response';

/** The response and stream families of the bypass corpus: every case goes through the real proxy; none may get through. */
describe('response and stream bypass corpus (test/data/bypass/response.jsonl)', () => {
  it('has at least 50 cases and lets none through', async () => {
    const families = await evalResponseBypass();
    expect(families.reduce((n, f) => n + f.total, 0)).toBeGreaterThanOrEqual(50);
    expect(families.filter((f) => f.gotThrough > 0)).toEqual([]);
  });
});
