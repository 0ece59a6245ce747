import { builtinDetectors } from '../../../../proxy/guardrails/detectors';
import { normalizeText } from '../../../../proxy/guardrails/normalize';

/** CPU milliseconds of a full default scan (normalize + every built-in detector) of `text`. */
function scanCpuMs(text: string): number {
  const detectors = Object.values(builtinDetectors());
  const t0 = process.cpuUsage();
  const n = normalizeText(text);
  for (const d of detectors) d.scan(n);
  const used = process.cpuUsage(t0);
  return (used.user + used.system) / 1000;
}

// Inputs that trip backtracking or per-position re-scanning: digit runs with separators, one huge token,
// and dense '@' / ':' / '=' that start e-mail, IPv6 and assignment candidates everywhere.
const PATTERNS: Record<string, string> = {
  'digits and separators': '1 2-3.4 (5) ',
  'no spaces': 'aB3xY9_zQ',
  'at-signs and dots': 'a@b.',
  'colons and hex': 'fe80:a:',
  'assignments': 'token=abc;',
  'words without end': 'ignore ',
};

describe('default scan stays linear on pathological input', () => {
  it.each(Object.entries(PATTERNS))('%s: 1 MB scans in bounded time and 4x input costs < 10x', (_name, unit) => {
    const quarter = unit.repeat(Math.ceil(262144 / unit.length));
    const full = unit.repeat(Math.ceil(1048576 / unit.length));
    scanCpuMs(quarter.slice(0, 4096)); // warm up
    const small = scanCpuMs(quarter);
    const big = scanCpuMs(full);
    // Quadratic behaviour would be ~16x; allow noise on a shared machine with a floor.
    expect(big).toBeLessThan(Math.max(10 * small, 400));
    expect(big).toBeLessThan(5000);
  });
});
