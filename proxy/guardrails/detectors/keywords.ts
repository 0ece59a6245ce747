/**
 * Keyword and banned-phrase lists: case-insensitive, on word boundaries, matched on the normalized text (so
 * homoglyph and zero-width tricks do not hide a word). One pass over the words of the text: each word is
 * looked up in a map of first words; multi-word phrases then check the following words in place.
 */
import { normalizeText, type NormalizedText } from '../normalize';
import { escapeRegex, finish, wanted } from './context';
import type { Detector, Match, ScanOptions } from './types';

export interface KeywordList {
  /** Becomes the match's entity (e.g. a banned topic name). */
  id: string;
  /** Words or phrases, matched case-insensitively on word boundaries. */
  words: readonly string[];
  /** Score of a hit (default 1). */
  score?: number;
}

interface Phrase {
  list: KeywordList;
  /** Sticky check for the words after the first (undefined for one-word entries). */
  rest?: RegExp;
}

const WORD = /[\p{L}\p{N}_]+/gu;
const WORD_CHAR = /[\p{L}\p{N}_]/u;
const NON_WORD_RUN = /[^\p{L}\p{N}_]+/gu;
const SEP = '[^\\p{L}\\p{N}_]{1,3}';

export function createKeywordDetector(lists: readonly KeywordList[], id = 'keywords'): Detector {
  const byFirst = new Map<string, Phrase[]>();
  /** Every prefix of every entry, lower-cased with separators collapsed to one space: what a stream tail may still complete. */
  const prefixes = new Set<string>();
  let longest = 0;
  for (const list of lists) {
    for (const raw of list.words) {
      const words = normalizeText(raw).text.toLowerCase().match(WORD);
      if (!words) throw new Error(`keyword list "${list.id}": entry "${raw}" has no word characters`);
      longest = Math.max(longest, raw.length);
      const joined = words.join(' ');
      for (let k = 1; k <= joined.length; k++) prefixes.add(joined.slice(0, k));
      prefixes.add(joined + ' ');
      const rest = words.length > 1 ? new RegExp(words.slice(1).map((w) => SEP + escapeRegex(w)).join('') + '(?![\\p{L}\\p{N}_])', 'yiu') : undefined;
      const entry = byFirst.get(words[0]) ?? [];
      entry.push({ list, rest });
      byFirst.set(words[0], entry);
    }
  }
  return {
    id,
    entities: lists.map((l) => l.id),
    scan(nt: NormalizedText, opts?: ScanOptions): Match[] {
      const t = nt.text;
      const out: Match[] = [];
      const re = new RegExp(WORD.source, 'gu');
      let m: RegExpExecArray | null;
      while ((m = re.exec(t)) !== null) {
        const phrases = byFirst.get(m[0].toLowerCase());
        if (!phrases) continue;
        const wordEnd = m.index + m[0].length;
        for (const { list, rest } of phrases) {
          if (!wanted(opts, list.id)) continue;
          let end = wordEnd;
          if (rest) {
            rest.lastIndex = wordEnd;
            const r = rest.exec(t);
            if (!r) continue;
            end = wordEnd + r[0].length;
          }
          out.push({ detector: id, entity: list.id, start: nt.toOriginal(m.index), end: nt.toOriginalEnd(end), score: list.score ?? 1 });
        }
      }
      return finish(out, opts?.threshold ?? 0);
    },
    /** Hold the trailing words only while they are the start of some listed entry ("insider tr" for "insider trading"). */
    pendingTail(t: string, from = 0): number {
      if (longest === 0 || t.length === 0) return 0;
      const start = Math.max(from, t.length - 2 * longest - 8);
      for (let k = start; k < t.length; k++) {
        if (!WORD_CHAR.test(t[k]) || (k > 0 && WORD_CHAR.test(t[k - 1]))) continue;
        const candidate = t.slice(k).toLowerCase().replace(NON_WORD_RUN, ' ');
        if (prefixes.has(candidate)) return t.length - k;
      }
      return 0;
    },
    lookback: 1,
  };
}
