/**
 * Custom regular expressions from policies, on RE2 semantics (re2js: pure TypeScript, linear time in the
 * input, no backreferences or lookaround), so a policy author cannot make the proxy hang with a pattern
 * like (a+)+$. re2js was chosen over re2-wasm: re2-wasm copies the whole input into wasm memory on every
 * exec, so finding all matches is quadratic in practice (see docs/detectors.md for the numbers).
 */
import { RE2JS } from 're2js';
import type { NormalizedText } from '../normalize';
import { finish, wanted } from './context';
import { TailProbe } from './tail-probe';
import type { Detector, Match, ScanOptions } from './types';

export interface RegexPattern {
  /** Becomes the match's entity. */
  id: string;
  /** RE2 syntax (no backreferences or lookaround). */
  pattern: string;
  /** Subset of 'i' (case-insensitive), 'm' (multi-line ^ $), 's' (dot matches newline). */
  flags?: string;
  /** Score of a match (default 1). */
  score?: number;
}

/** Bound on matches reported per pattern and text: enough to redact, bounded for hostile input. */
const MAX_MATCHES = 1000;

function compile(p: RegexPattern): RE2JS {
  let flags = 0;
  for (const f of p.flags ?? '') {
    if (f === 'i') flags |= RE2JS.CASE_INSENSITIVE;
    else if (f === 'm') flags |= RE2JS.MULTILINE;
    else if (f === 's') flags |= RE2JS.DOTALL;
    else throw new Error(`regex "${p.id}": unsupported flag "${f}" (use i, m, s)`);
  }
  try {
    return RE2JS.compile(p.pattern, flags);
  } catch (err) {
    throw new Error(`regex "${p.id}": invalid RE2 pattern: ${(err as Error).message}`);
  }
}

/** The compiled form is RE2 (linear time); exported so tests and callers can assert the engine. */
export function isLinearEngine(re: unknown): boolean {
  return re instanceof RE2JS;
}

/** Custom patterns on a linear-time engine (RE2); a bad pattern throws an Error naming its id. */
export function createRegexDetector(patterns: readonly RegexPattern[], id = 'regex'): Detector & { readonly compiled: readonly RE2JS[] } {
  const ids = new Set<string>();
  for (const p of patterns) {
    if (!p.id) throw new Error('regex pattern without an id');
    if (ids.has(p.id)) throw new Error(`regex "${p.id}": duplicate id`);
    ids.add(p.id);
  }
  const compiled = patterns.map(compile);
  const probe = new TailProbe(compiled.map((re) => ({ re })));
  return {
    id,
    entities: patterns.map((p) => p.id),
    compiled,
    scan(nt: NormalizedText, opts?: ScanOptions): Match[] {
      const out: Match[] = [];
      patterns.forEach((p, k) => {
        if (!wanted(opts, p.id)) return;
        const m = compiled[k].matcher(nt.text);
        let count = 0;
        // Matching is leftmost and non-overlapping: a stream resumes the search where the released text ends.
        let from = opts?.from ?? 0;
        while (count < MAX_MATCHES && from <= nt.text.length && m.find(from)) {
          const start = m.start();
          const end = m.end();
          if (end > start) out.push({ detector: id, entity: p.id, start: nt.toOriginal(start), end: nt.toOriginalEnd(end), score: p.score ?? 1 });
          from = end > start ? end : end + 1;
          count++;
        }
      });
      return finish(out, opts?.threshold ?? 0);
    },
    // Exact for any RE2 pattern: hold from where a partial match still alive at the end begins.
    pendingTail: (text: string, from = 0) => text.length - probe.holdFrom(text, from),
    lookback: 1,
  };
}
