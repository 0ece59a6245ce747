import { readFileSync } from 'node:fs';
import { createInjectionDetector } from '../proxy/guardrails/detectors/injection';
import { normalizeText } from '../proxy/guardrails/normalize';
import { isHoldout, readRows } from './eval';
const d = createInjectionDetector();
const verbose = process.argv.includes('-v');
const hit = (t: string, u = false) => d.scan(normalizeText(t), { untrusted: u })[0];
const every = readFileSync('test/fixtures/detection/everyday-prompts.txt', 'utf8').split('\n').filter(Boolean);
let fp = 0; for (const l of every) { const m = hit(l); if (m) { fp++; if (verbose) console.log('FP every', m.reason, '|', l); } }
console.log(`everyday FPR ${fp}/${every.length}`);
const obf = readFileSync('test/fixtures/detection/obfuscated.jsonl', 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const byCat: Record<string, [number, number]> = {}; let tp = 0;
for (const r of obf) { const m = hit(r.text, r.untrusted); const c = r.category.split(':')[0] + ':' + (r.category.split(':')[1] ?? ''); byCat[c] ??= [0, 0]; byCat[c][1]++; if (m) { tp++; byCat[c][0]++; } else if (verbose) console.log('MISS obf', r.category, '|', r.text.slice(0, 150)); }
console.log(`obfuscated recall ${tp}/${obf.length}`, Object.entries(byCat).filter(([, v]) => v[0] < v[1]).map(([k, v]) => `${k} ${v[0]}/${v[1]}`).join('  '));
for (const [file, u] of [['injection.jsonl', false], ['indirect-injection.jsonl', true]] as const) {
  const rows = readRows(`../../shared/eval/${file}`).filter((r) => !isHoldout(r.text));
  const c: Record<string, [number, number]> = {};
  for (const r of rows) {
    const m = hit(r.text, u); const k = r.label === 1 ? 'pos' : r.category === 'notinject' ? 'notinject' : 'benign';
    c[k] ??= [0, 0]; c[k][1]++; if (m) c[k][0]++;
    if (verbose && process.argv.includes(file) && ((r.label === 1 && !m) || (r.label === 0 && m))) console.log(r.label ? 'FN' : 'FP', r.category, m?.reason ?? '', '|', r.text.slice(0, 160).replace(/\n/g, ' '));
  }
  console.log(file, 'tune', Object.entries(c).map(([k, v]) => `${k} ${v[0]}/${v[1]}=${(v[0] / v[1]).toFixed(3)}`).join('  '));
}
