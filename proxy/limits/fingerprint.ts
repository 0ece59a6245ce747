/**
 * A cheap fingerprint of a prompt that ignores what changes between otherwise identical agent
 * calls: letter case, whitespace runs and digit runs (timestamps, counters, ids all become "0").
 * FNV-1a over the first `maxChars` characters, without building an intermediate string.
 */
export function promptFingerprint(text: string, maxChars = 4096): number {
  let h = 0x811c9dc5;
  let prev = 32; // start as if after a space, so leading whitespace is dropped
  const end = Math.min(text.length, maxChars);
  for (let i = 0; i < end; i++) {
    let c = text.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) c = 32;
    else if (c >= 48 && c <= 57) c = 48;
    else if (c >= 65 && c <= 90) c += 32;
    if ((c === 32 || c === 48) && c === prev) continue;
    prev = c;
    h ^= c;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
