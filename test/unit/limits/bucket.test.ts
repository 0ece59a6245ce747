import { canTake, msUntil, msUntilFull, newBucket, refill } from '../../../proxy/limits/bucket';

describe('token bucket', () => {
  const limit = { limit: 5, windowMs: 60_000 };

  test('refills exactly one unit per window/limit and never above the limit', () => {
    const b = newBucket(limit, 0);
    for (let i = 0; i < 5; i++) {
      expect(canTake(b, limit, 1)).toBe(true);
      b.level -= 1;
    }
    expect(canTake(b, limit, 1)).toBe(false);
    expect(msUntil(b, limit, 1)).toBe(12_000);
    refill(b, limit, 11_999);
    expect(canTake(b, limit, 1)).toBe(false);
    refill(b, limit, 12_000);
    expect(b.level).toBe(1);
    expect(canTake(b, limit, 1)).toBe(true);
    refill(b, limit, 12_000 + 48_000);
    expect(b.level).toBe(5);
    refill(b, limit, 10 * 60_000);
    expect(b.level).toBe(5);
  });

  test('exact over many steps: 1000 one-unit refills land on whole numbers', () => {
    const l = { limit: 1000, windowMs: 1000 };
    const b = newBucket(l, 0);
    b.level = 0;
    for (let t = 1; t <= 1000; t++) {
      refill(b, l, t);
      expect(b.level).toBe(t);
    }
  });

  test('debt (usage above the admitted estimate) delays the next admission', () => {
    const l = { limit: 1000, windowMs: 60_000 };
    const b = newBucket(l, 0);
    b.level = -500; // charged 1500 tokens more than were available
    expect(canTake(b, l, 100)).toBe(false);
    expect(msUntil(b, l, 100)).toBe(36_000);
    expect(msUntilFull(b, l)).toBe(90_000);
  });

  test('a cost above the whole limit passes only when the bucket is full', () => {
    const l = { limit: 100, windowMs: 1000 };
    const b = newBucket(l, 0);
    expect(canTake(b, l, 250)).toBe(true);
    b.level = 99;
    expect(canTake(b, l, 250)).toBe(false);
    expect(msUntil(b, l, 250)).toBe(10);
  });

  test('a lowered limit clamps the stored level', () => {
    const b = newBucket({ limit: 10, windowMs: 1000 }, 0);
    refill(b, { limit: 3, windowMs: 1000 }, 0);
    expect(b.level).toBe(3);
  });
});
