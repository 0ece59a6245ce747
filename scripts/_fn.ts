import { createInjectionDetector } from '../proxy/guardrails/detectors/injection';
import { normalizeText } from '../proxy/guardrails/normalize';
import { isHoldout, readRows } from './eval';
const d = createInjectionDetector();
const [file, cat, u] = process.argv.slice(2);
for (const r of readRows(`../../shared/eval/${file}`).filter((r) => !isHoldout(r.text) && r.category.startsWith(cat))) {
  const all = d.scan(normalizeText(r.text), { untrusted: u === 'u', threshold: 0 })[0];
  const hit = all && all.score >= 0.5;
  if ((r.label === 1) !== hit) console.log(r.label ? 'FN' : 'FP', all?.score, all?.reason ?? '-', '|', r.text.slice(0, 220).replace(/\n/g, ' '));
}
