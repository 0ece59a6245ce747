/** Characters hashed from each end of a long prompt: agent loops differ, if at all, in the middle. */
const EDGE = 1024;

/**
 * A cheap fingerprint of a prompt that ignores what changes between otherwise identical agent
 * calls: letter case, whitespace runs and digit runs (timestamps, counters, ids all become "0").
 * FNV-1a over at most the first and last 1 KB, so cost is bounded whatever the prompt size.
 */
export function promptFingerprint(text: string): number {
  const n = text.length;
  if (n <= 2 * EDGE) return fnv(text, 0, n, 0x811c9dc5) >>> 0;
  return fnv(text, n - EDGE, n, fnv(text, 0, EDGE, 0x811c9dc5)) >>> 0;
}

function fnv(text: string, from: number, to: number, h: number): number {
  let prev = 32; // as if after a space, so leading whitespace is dropped
  for (let i = from; i < to; i++) {
    let c = text.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) c = 32;
    else if (c >= 48 && c <= 57) c = 48;
    else if (c >= 65 && c <= 90) c += 32;
    if ((c === 32 || c === 48) && c === prev) continue;
    prev = c;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return h;
}
