/**
 * Kubernetes label selectors in kubectl syntax (`a=b,c!=d,e in (f,g),h notin (i),j,!k`), the form the
 * webhook's settings carry an exemption selector in. Parsed once at start; matching is pure.
 * An empty selector matches nothing here (an exemption list that is empty exempts no pod).
 */
export type Requirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'doesnotexist' };

const NAME = '[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const KEY = new RegExp(`^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?${NAME}$`);
const VALUE = new RegExp(`^(${NAME})?$`);

function key(text: string, whole: string): string {
  const k = text.trim();
  if (!KEY.test(k)) throw new Error(`label selector "${whole}": "${k}" is not a label key`);
  return k;
}

function value(text: string, whole: string): string {
  const v = text.trim();
  if (!VALUE.test(v)) throw new Error(`label selector "${whole}": "${v}" is not a label value`);
  return v;
}

/** Splits on commas outside parentheses. */
function terms(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')') depth--;
    else if (text[i] === ',' && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out.map((t) => t.trim());
}

/** Throws an Error naming the bad part. */
export function parseSelector(text: string): Requirement[] {
  const whole = text.trim();
  if (whole === '') return [];
  return terms(whole).map((term): Requirement => {
    if (term === '') throw new Error(`label selector "${whole}" has an empty term`);
    const set = /^(.+?)\s+(in|notin)\s*\((.*)\)$/.exec(term);
    if (set) {
      const values = set[3].split(',').map((v) => value(v, whole));
      return { key: key(set[1], whole), op: set[2] as 'in' | 'notin', values };
    }
    if (term.startsWith('!')) return { key: key(term.slice(1), whole), op: 'doesnotexist' };
    const eq = /^([^!=]+)(==|=|!=)(.*)$/.exec(term);
    if (eq) return { key: key(eq[1], whole), op: eq[2] === '!=' ? 'notin' : 'in', values: [value(eq[3], whole)] };
    return { key: key(term, whole), op: 'exists' };
  });
}

/** Whether labels satisfy every requirement; an empty selector matches nothing. */
export function selectorMatches(requirements: readonly Requirement[], labels: Readonly<Record<string, string>>): boolean {
  if (requirements.length === 0) return false;
  return requirements.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    switch (r.op) {
      case 'exists': return has;
      case 'doesnotexist': return !has;
      case 'in': return has && r.values.includes(labels[r.key]);
      case 'notin': return !has || !r.values.includes(labels[r.key]);
    }
  });
}
