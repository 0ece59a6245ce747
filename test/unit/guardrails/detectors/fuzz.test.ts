import { builtinDetectors } from '../../../../proxy/guardrails/detectors';
import { normalizeText } from '../../../../proxy/guardrails/normalize';

/** Deterministic mix of ASCII, separators, look-alikes, invisible and astral characters. */
function randomText(seed: number, length: number): string {
  const pieces = [
    'a', 'Z', '0', '7', ' ', '\n', '@', '.', ':', '-', '=', '"', '/', '+', '_', '(', ')', '\u200b', '\u202e', '\u0430',
    '\u0456', 'ｓ', 'ﬁ', '𝐢', '\u{E0041}', 'é', 'e\u0301', 'İ', '😀', 'ignore ', 'AKIA', 'sk-', 'eyJ', '4111 ', '-----BEGIN ',
  ];
  let x = seed;
  let out = '';
  while (out.length < length) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out += pieces[(x >> 8) % pieces.length];
  }
  return out;
}

describe('detectors on arbitrary input', () => {
  const detectors = Object.values(builtinDetectors());
  it('never throw and always return in-range spans on the original text', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const text = randomText(seed, 50 + (seed % 7) * 60);
      const n = normalizeText(text);
      for (const d of detectors) {
        for (const m of d.scan(n, { threshold: 0, untrusted: seed % 2 === 0 })) {
          expect(m.start).toBeGreaterThanOrEqual(0);
          expect(m.end).toBeLessThanOrEqual(text.length);
          expect(m.start).toBeLessThan(m.end);
          expect(m.score).toBeGreaterThanOrEqual(0);
          expect(m.score).toBeLessThanOrEqual(1);
        }
        const tail = d.pendingTail(text);
        expect(tail).toBeGreaterThanOrEqual(0);
        expect(tail).toBeLessThanOrEqual(text.length);
      }
    }
  });
});
