/**
 * `node dist/bench/detectors.js [--mb N]`: scan speed of the built-in detectors on ordinary prose (synthetic,
 * deterministic: words, punctuation, colons, hyphens and numbers), per detector and for the whole default
 * scan, on one core (CPU time, so a busy machine does not skew it). Also times a pathological input (digits and separators, and no spaces at all) to show
 * the scan stays linear.
 */
import { builtinDetectors } from '../proxy/guardrails/detectors';
import { normalizeText } from '../proxy/guardrails/normalize';

const WORDS = (
  'the a of to and in that is was for on with as it by at from this be are have not or which an but were one all ' +
  'their there been has more its would when who will what about some into than them these other time could only ' +
  'system model request response service customer order delivery report meeting weather garden history river ' +
  'because although however therefore please thanks today tomorrow yesterday morning evening project budget'
).split(' ');

/** Deterministic pseudo-random prose of about `bytes` bytes, in paragraphs of ~4 KB (a typical chat message). */
export function prose(bytes: number, seed = 7): string[] {
  let x = seed;
  const rnd = (n: number): number => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x % n;
  };
  const paragraphs: string[] = [];
  let total = 0;
  while (total < bytes) {
    let p = '';
    while (p.length < 4096) {
      const len = 6 + rnd(14);
      const words: string[] = [];
      for (let i = 0; i < len; i++) words.push(WORDS[rnd(WORDS.length)]);
      if (rnd(8) === 0) words.push(String(rnd(5000)));
      if (rnd(40) === 0) words.push('in 2024');
      if (rnd(30) === 0) words.unshift('Note:');
      if (rnd(25) === 0) words.push('well-known');
      let sentence = words.join(' ');
      sentence = sentence[0].toUpperCase() + sentence.slice(1) + (rnd(6) === 0 ? '? ' : rnd(5) === 0 ? ', ' : '. ');
      p += sentence;
    }
    // Flatten the concatenated string, as JSON.parse hands the proxy flat strings.
    paragraphs.push(JSON.parse(JSON.stringify(p)) as string);
    total += p.length;
  }
  return paragraphs;
}

/** CPU seconds of this process (user + system): a busy shared machine inflates wall time, not this. */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function mbPerSecond(texts: string[], scan: (t: string) => void): number {
  const bytes = texts.reduce((n, t) => n + t.length, 0);
  for (const t of texts.slice(0, 50)) scan(t); // warm up the JIT
  const t0 = cpuSeconds();
  for (const t of texts) scan(t);
  return bytes / 1048576 / (cpuSeconds() - t0);
}

function main(): void {
  const mbArg = process.argv.indexOf('--mb');
  const mb = mbArg > 0 ? Number(process.argv[mbArg + 1]) : 4;
  const texts = prose(mb * 1048576);
  const detectors = builtinDetectors();
  const results: Record<string, number> = {};
  results.normalize = mbPerSecond(texts, (t) => normalizeText(t));
  for (const [id, d] of Object.entries(detectors)) results[id] = mbPerSecond(texts, (t) => d.scan(normalizeText(t)));
  const all = Object.values(detectors);
  results['default scan (normalize + all)'] = mbPerSecond(texts, (t) => {
    const n = normalizeText(t);
    for (const d of all) d.scan(n);
  });
  console.log(`prose, ${mb} MB in ~4 KB messages, one core:`);
  for (const [k, v] of Object.entries(results)) console.log(`  ${k.padEnd(32)} ${v.toFixed(1)} MB/s`);

  const patho: Record<string, string> = {
    'digits+separators': '1 2-3.4 (5) '.repeat(87382),
    'no spaces': 'aB3xY9_zQ'.repeat(116508),
    'at-signs and dots': 'a@b.'.repeat(262144),
  };
  console.log('pathological 1 MB inputs (whole default scan):');
  for (const [k, v] of Object.entries(patho)) {
    const t0 = cpuSeconds();
    const n = normalizeText(v);
    for (const d of all) d.scan(n);
    console.log(`  ${k.padEnd(32)} ${((cpuSeconds() - t0) * 1000).toFixed(1)} ms CPU`);
  }
}

if (require.main === module) main();
