/**
 * "Could this tail still start a match?" for stream holdback, answered exactly for RE2 patterns: a Pike VM
 * over the pattern's compiled program runs through the growing text, starting a thread at every position
 * from the first unreleased character, and reports where the earliest thread still alive at the end (one that
 * needs more input to match or fail) has started its reported span. Text before that point can be released:
 * no later input can make a match cover it.
 *
 * The reported span is the whole match, or one capture group when a pattern reports a value after context
 * words (`Authorization: Bearer <token>`): context may be released while its value is still unknown, because
 * only the value would ever be redacted.
 */
import { RE2JS } from 're2js';

// Instruction opcodes and empty-width flags of re2js's compiled programs (stable RE2 numbering).
const ALT = 1;
const ALT_MATCH = 2;
const CAPTURE = 3;
const EMPTY_WIDTH = 4;
const FAIL = 5;
const MATCH = 6;
const NOP = 7;
const RUNE = 8;
const RUNE1 = 9;
const RUNE_ANY = 10;
const RUNE_ANY_NOT_NL = 11;
const LB_WRITE = 12;
const LB_CHECK = 13;
const BEGIN_LINE = 1;
const END_LINE = 2;
const BEGIN_TEXT = 4;
const END_TEXT = 8;
const WORD_BOUNDARY = 16;
const NO_WORD_BOUNDARY = 32;

interface Inst {
  op: number;
  out: number;
  arg: number;
  matchRune(r: number): boolean;
}

interface Prog {
  inst: Inst[];
  start: number;
}

/** The compiled program of an RE2JS pattern (re2js keeps it on the instance; checked so an upgrade fails loudly). */
function progOf(re: RE2JS): Prog {
  const prog = (re as unknown as { re2Input?: { prog?: Prog } }).re2Input?.prog;
  if (!prog || !Array.isArray(prog.inst) || typeof prog.start !== 'number') throw new Error('re2js internals changed: no compiled program on RE2JS');
  return prog;
}

function isWordRune(r: number): boolean {
  return (r >= 48 && r <= 57) || (r >= 65 && r <= 90) || (r >= 97 && r <= 122) || r === 95;
}

/** Empty-width conditions that hold between runes `before` and `after` (-1 = text edge). */
function emptyFlags(before: number, after: number): number {
  let f = 0;
  if (before < 0) f |= BEGIN_TEXT | BEGIN_LINE;
  else if (before === 10) f |= BEGIN_LINE;
  if (after < 0) f |= END_TEXT | END_LINE;
  else if (after === 10) f |= END_LINE;
  f |= isWordRune(before) !== isWordRune(after) ? WORD_BOUNDARY : NO_WORD_BOUNDARY;
  return f;
}

/**
 * One pattern for the probe: the span its matches report is the whole match (group 0), one capture group, or
 * (for a combined pattern, see combinedProbe) whichever capture group a thread enters first.
 */
export interface ProbePattern {
  re: RE2JS;
  group?: number | 'any';
}

/** capStart of a probe whose span starts at the first capture group a thread enters. */
const ANY_GROUP = -3;
/** Span start of a cached first step: the position where that thread began. */
const STARTS_HERE = -2;

/** A list of threads without duplicates by state: program counters and span starts in parallel arrays. */
class ThreadList {
  readonly pc: Int32Array;
  readonly span: Int32Array;
  size = 0;
  constructor(capacity: number) {
    this.pc = new Int32Array(capacity);
    this.span = new Int32Array(capacity);
  }
}

class Vm {
  private readonly seen: Int32Array;
  private stamp = 0;
  private readonly capStart: number;
  private clist: ThreadList;
  private nlist: ThreadList;
  private readonly stackPc: Int32Array;
  private readonly stackSpan: Int32Array;
  /** The threads after the last text probed (from `memoFrom`), so a text that only grew is not walked again. */
  private memoText = '';
  private memoFrom = -1;
  private memoBefore = -1;
  private readonly memo: ThreadList;
  /** startStep results by empty-width context and ASCII rune. */
  private readonly starts = new Map<number, ThreadList>();

  /** The reported span is the whole match, so it starts where its thread does. */
  readonly wholeMatch: boolean;

  constructor(private readonly prog: Prog, group: number | 'any') {
    this.wholeMatch = group === 0;
    const n = prog.inst.length;
    this.seen = new Int32Array(n);
    this.capStart = group === 'any' ? ANY_GROUP : 2 * group;
    this.clist = new ThreadList(n);
    this.nlist = new ThreadList(n);
    this.memo = new ThreadList(n);
    this.stackPc = new Int32Array(2 * n + 2);
    this.stackSpan = new Int32Array(2 * n + 2);
  }

  /**
   * Earliest start of a reported span that a thread alive at the end of `text` would produce, scanning
   * threads that start at `from` or later; text.length when no thread survives.
   */
  holdFrom(text: string, from: number): number {
    const clist = this.clist;
    const nlist = this.nlist;
    let i: number;
    let before: number;
    if (from >= this.memoFrom && from <= this.memoText.length && text.length >= this.memoText.length && text.startsWith(this.memoText)) {
      // The same text grown at the end (a held tail getting longer): resume where the last run stopped. Threads
      // the last run started before `from` are dead, or clamped to `from` below (both only hold more).
      clist.pc.set(this.memo.pc.subarray(0, this.memo.size));
      clist.span.set(this.memo.span.subarray(0, this.memo.size));
      clist.size = this.memo.size;
      i = this.memoText.length;
      before = this.memoBefore;
    } else {
      clist.size = 0;
      i = from;
      before = from > 0 ? (text.codePointAt(from - 1 - (isLowSurrogateAt(text, from - 1) ? 1 : 0)) ?? -1) : -1;
    }
    while (i < text.length) {
      const r = text.codePointAt(i) as number;
      const width = r > 0xffff ? 2 : 1;
      // Expand the waiting threads at this position, then a new thread; older (leftmost) starts win shared states.
      const flags = emptyFlags(before, r);
      this.stamp++;
      nlist.size = 0;
      for (let k = 0; k < clist.size; k++) this.add(nlist, clist.pc[k], clist.span[k], i, flags, false);
      const cached = r < 128 ? this.startStep(flags, r) : undefined;
      if (!cached) this.add(nlist, this.prog.start, this.capStart === 0 ? i : -1, i, flags, false);
      clist.size = 0;
      this.step(nlist, r, clist);
      if (cached) {
        // A new thread's first step, precomputed: its states after `r`, with the span starting here if it has begun.
        for (let k = 0; k < cached.size; k++) {
          clist.pc[clist.size] = cached.pc[k];
          clist.span[clist.size++] = cached.span[k] === STARTS_HERE ? i : cached.span[k];
        }
      }
      before = r;
      i += width;
    }
    this.memoText = text;
    this.memoFrom = from;
    this.memoBefore = before;
    this.memo.pc.set(clist.pc.subarray(0, clist.size));
    this.memo.span.set(clist.span.subarray(0, clist.size));
    this.memo.size = clist.size;
    // At the end the next character is unknown: every thread that can still consume or test it is alive.
    this.stamp++;
    nlist.size = 0;
    for (let k = 0; k < clist.size; k++) this.add(nlist, clist.pc[k], clist.span[k], text.length, 0, true);
    let earliest = text.length;
    for (let k = 0; k < nlist.size; k++) {
      const span = nlist.span[k];
      if (span >= 0 && span < earliest) earliest = span;
    }
    return earliest;
  }

  /** The threads of `from` that consume rune `r`, appended to `to` at their next state. */
  private step(from: ThreadList, r: number, to: ThreadList): void {
    const { inst } = this.prog;
    for (let k = 0; k < from.size; k++) {
      const ins = inst[from.pc[k]];
      const op = ins.op;
      const ok = op === RUNE_ANY || (op === RUNE_ANY_NOT_NL ? r !== 10 : (op === RUNE || op === RUNE1) && ins.matchRune(r));
      if (ok) {
        to.pc[to.size] = ins.out;
        to.span[to.size++] = from.span[k];
      }
    }
  }

  /** A thread started before an ASCII rune `r` in empty-width context `flags`, after consuming it (cached). */
  private startStep(flags: number, r: number): ThreadList {
    const key = flags * 128 + r;
    let cached = this.starts.get(key);
    if (cached) return cached;
    const stamp = this.stamp;
    this.stamp = -1 - this.starts.size; // a stamp of its own, so the current step's visits are untouched
    const expanded = new ThreadList(this.prog.inst.length);
    this.add(expanded, this.prog.start, this.capStart === 0 ? STARTS_HERE : -1, STARTS_HERE, flags, false);
    this.stamp = stamp;
    const stepped = new ThreadList(this.prog.inst.length);
    this.step(expanded, r, stepped);
    cached = new ThreadList(stepped.size);
    cached.pc.set(stepped.pc.subarray(0, stepped.size));
    cached.span.set(stepped.span.subarray(0, stepped.size));
    cached.size = stepped.size;
    this.starts.set(key, cached);
    return cached;
  }

  /**
   * Follows the empty transitions from `pc` and appends the states that wait on a rune (or, at the open end,
   * on an empty-width test the next character decides). Each state is visited once per step.
   */
  private add(out: ThreadList, pc0: number, span0: number, pos: number, flags: number, openEnd: boolean): void {
    const { stackPc, stackSpan, seen, stamp } = this;
    const { inst } = this.prog;
    let sp = 0;
    stackPc[sp] = pc0;
    stackSpan[sp++] = span0;
    while (sp > 0) {
      const pc = stackPc[--sp];
      const span = stackSpan[sp];
      if (seen[pc] === stamp) continue;
      seen[pc] = stamp;
      const ins = inst[pc];
      switch (ins.op) {
        case ALT:
        case ALT_MATCH:
          // The lower-priority branch goes on the stack first, so the preferred one is expanded first.
          stackPc[sp] = ins.arg;
          stackSpan[sp++] = span;
          stackPc[sp] = ins.out;
          stackSpan[sp++] = span;
          break;
        case CAPTURE:
          stackPc[sp] = ins.out;
          stackSpan[sp++] = span === -1 && (ins.arg === this.capStart || (this.capStart === ANY_GROUP && ins.arg >= 2 && ins.arg % 2 === 0)) ? pos : span;
          break;
        case EMPTY_WIDTH:
          if (openEnd) {
            out.pc[out.size] = pc;
            out.span[out.size++] = span;
          } else if ((ins.arg & ~flags) === 0) {
            stackPc[sp] = ins.out;
            stackSpan[sp++] = span;
          }
          break;
        case NOP:
        case LB_WRITE:
        case LB_CHECK:
          // Lookbehind checks are assumed to pass: holding too much is safe, releasing too early is not.
          stackPc[sp] = ins.out;
          stackSpan[sp++] = span;
          break;
        case MATCH:
        case FAIL:
          break;
        default:
          out.pc[out.size] = pc;
          out.span[out.size++] = span;
      }
    }
  }
}

function isLowSurrogateAt(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 0xdc00 && c <= 0xdfff && i > 0 && s.charCodeAt(i - 1) >= 0xd800 && s.charCodeAt(i - 1) <= 0xdbff;
}

/** Holds for a set of RE2 patterns: where the earliest span still forming at the end of a text starts. */
export class TailProbe {
  private readonly vms: Vm[];

  constructor(patterns: readonly ProbePattern[]) {
    this.vms = patterns.map((p) => new Vm(progOf(p.re), p.group ?? 0));
  }

  /**
   * Index into `text` from which it must be held (text.length: nothing pending); `from` is the first unreleased
   * index. A whole-match pattern only needs threads starting there; a pattern that reports a group after context
   * words starts threads from `contextFrom` (the whole text by default), since its context may have been released.
   */
  holdFrom(text: string, from = 0, contextFrom = 0): number {
    let earliest = text.length;
    for (const vm of this.vms) earliest = Math.min(earliest, vm.holdFrom(text, vm.wholeMatch ? from : Math.min(contextFrom, from)));
    return Math.max(earliest, Math.min(from, text.length));
  }
}

/**
 * A JavaScript regex source turned into the RE2 source the probe runs: lookaround assertions dropped (the
 * pattern then matches more, which only holds more), named groups made plain, capture groups other than
 * `keep` made non-capturing (so `keep` becomes group 1, or the whole match when keep is 0), and repeat
 * bounds over RE2's limit of 1000 opened up.
 */
export function probeSource(js: string, keep = 0): string {
  let out = '';
  let group = 0;
  let i = 0;
  const skipGroup = (): void => {
    let depth = 0;
    while (i < js.length) {
      const c = js[i];
      if (c === '\\') i += 2;
      else if (c === '[') i = classEnd(js, i);
      else {
        if (c === '(') depth++;
        else if (c === ')' && --depth === 0) {
          i++;
          return;
        }
        i++;
      }
    }
  };
  while (i < js.length) {
    const c = js[i];
    if (c === '\\') {
      out += js.slice(i, i + 2);
      i += 2;
    } else if (c === '[') {
      const end = classEnd(js, i);
      out += js.slice(i, end);
      i = end;
    } else if (c === '(') {
      if (js.startsWith('(?=', i) || js.startsWith('(?!', i) || js.startsWith('(?<=', i) || js.startsWith('(?<!', i)) {
        skipGroup();
        continue;
      }
      if (js.startsWith('(?<', i)) {
        // named group: a capture group in numbering
        group++;
        out += group === keep ? '(' : '(?:';
        i = js.indexOf('>', i) + 1;
        continue;
      }
      if (js.startsWith('(?', i)) {
        out += '(?';
        i += 2;
        continue;
      }
      group++;
      out += group === keep ? '(' : '(?:';
      i++;
    } else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(js.slice(i));
      if (!m) {
        out += c;
        i++;
        continue;
      }
      const min = Math.min(Number(m[1]), 1000);
      const max = m[2] === undefined ? Number(m[1]) : m[3] === '' ? Infinity : Number(m[3]);
      out += max > 1000 || Number(m[1]) > 1000 ? `{${min},}` : m[0];
      i += m[0].length;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Index just past the character class that opens at `i`. */
function classEnd(s: string, i: number): number {
  let j = i + 1;
  if (s[j] === '^') j++;
  if (s[j] === ']') j++;
  while (j < s.length && s[j] !== ']') j += s[j] === '\\' ? 2 : 1;
  return j + 1;
}

/** A JavaScript regex for combinedProbe: its source and flags, and the capture group its matches report (0: all). */
export interface ProbeSource {
  source: string;
  flags?: string;
  group?: number;
}

/**
 * One RE2 program for several JavaScript regexes (see probeSource), so the probe walks the text once: each
 * alternative wraps the span it reports in its only capture group.
 */
export function combinedProbe(sources: readonly ProbeSource[]): ProbePattern {
  if (sources.every((s) => !s.group)) {
    // Whole matches only: one plain alternation, so threads start only where the text is still unreleased.
    const alternatives = sources.map(({ source, flags = '' }) => (flags.includes('i') ? '(?i:' : '(?:') + probeSource(source) + ')');
    return { re: RE2JS.compile(alternatives.join('|')) };
  }
  const alternatives = sources.map(({ source, flags = '', group = 0 }) => {
    const body = probeSource(source, group);
    const inner = group === 0 ? `(${body})` : body;
    return flags.includes('i') ? `(?i:${inner})` : `(?:${inner})`;
  });
  return { re: RE2JS.compile(alternatives.join('|')), group: 'any' };
}
