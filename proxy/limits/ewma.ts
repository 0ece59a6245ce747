/**
 * Exponentially weighted mean and variance, O(1) per sample (West's incremental form).
 * `n` counts samples so detectors can wait out a warm-up.
 */
export interface Ewma {
  mean: number;
  variance: number;
  n: number;
}

export const newEwma = (): Ewma => ({ mean: 0, variance: 0, n: 0 });

export function observe(e: Ewma, x: number, alpha: number): void {
  if (e.n === 0) {
    e.mean = x;
    e.variance = 0;
  } else {
    const diff = x - e.mean;
    const incr = alpha * diff;
    e.mean += incr;
    e.variance = (1 - alpha) * (e.variance + diff * incr);
  }
  e.n++;
}

/**
 * How many standard deviations x lies above the mean. The deviation is floored at
 * `minStddevRatio * mean` and at `absFloor`, so a perfectly steady series (variance 0) does not
 * turn every small wobble into an infinite z-score.
 */
export function zScore(e: Ewma, x: number, minStddevRatio: number, absFloor: number): number {
  const sd = Math.max(Math.sqrt(e.variance), minStddevRatio * Math.abs(e.mean), absFloor);
  return (x - e.mean) / sd;
}
