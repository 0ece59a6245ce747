import { calibrationBins, formatTiers } from '../../../../scripts/eval-tiers';

describe('eval: risk categories by tier', () => {
  it('bins predictions into a reliability table (mean predicted vs observed rate)', () => {
    const bins = calibrationBins([
      { p: 0.05, y: 0 },
      { p: 0.07, y: 1 },
      { p: 0.95, y: 1 },
      { p: 1, y: 1 },
    ]);
    expect(bins).toHaveLength(10);
    expect(bins[0]).toEqual({ bin: '0.0-0.1', n: 2, meanPredicted: 0.06, observed: 0.5 });
    expect(bins[9]).toEqual({ bin: '0.9-1.0', n: 2, meanPredicted: 0.975, observed: 1 });
    expect(bins[5]).toEqual({ bin: '0.5-0.6', n: 0, meanPredicted: null, observed: null });
  });

  it('says why the model tier was skipped', () => {
    expect(formatTiers('model tier skipped: model.onnx not in /x (run make models)')).toContain('run make models');
  });
});
