import { createHmac, randomBytes } from 'node:crypto';
import type { RedactionStyle } from '../policy/types';

/** A span of original text to replace, with the entity that names its placeholder. */
export interface RedactionSpan {
  start: number;
  end: number;
  entity: string;
  style: RedactionStyle;
}

/**
 * Per-exchange redaction state: the same value gets the same placeholder (`<EMAIL_1>`) everywhere in one
 * exchange — request, response and stream — so the model can still tell two people apart.
 */
export class RedactionContext {
  private readonly numbers = new Map<string, Map<string, number>>();

  constructor(private readonly hashKey: Buffer) {}

  replacement(entity: string, value: string, style: RedactionStyle): string {
    if (style === 'mask') return maskValue(value);
    if (style === 'hash') return `<${entity}#${createHmac('sha256', this.hashKey).update(value).digest('hex').slice(0, 12)}>`;
    let byValue = this.numbers.get(entity);
    if (!byValue) {
      byValue = new Map();
      this.numbers.set(entity, byValue);
    }
    let n = byValue.get(value);
    if (n === undefined) {
      n = byValue.size + 1;
      byValue.set(value, n);
    }
    return `<${entity}_${n}>`;
  }
}

/** Key for `hash` redaction: GUARDRAILS_HASH_KEY when set (stable across restarts), else random per process. */
export function hashKeyFrom(value: string | undefined): Buffer {
  return value ? Buffer.from(value, 'utf8') : randomBytes(32);
}

function isAlnumCode(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/**
 * Mask letters and digits, keeping separators and a few edge characters so a human can recognise the value:
 * `4111 1111 1111 1111` → `4111 **** **** 1111`, `123-45-6789` → `***-**-6789`. Short values are fully masked.
 */
export function maskValue(value: string): string {
  let alnum = 0;
  for (let i = 0; i < value.length; i++) if (isAlnumCode(value.charCodeAt(i))) alnum++;
  const keepEnd = alnum >= 8 ? 4 : 0;
  const keepStart = alnum >= 12 ? 4 : 0;
  let seen = 0;
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (!isAlnumCode(c)) {
      out += value[i];
      continue;
    }
    out += seen < keepStart || seen >= alnum - keepEnd ? value[i] : '*';
    seen++;
  }
  return out;
}

const MAX_EVIDENCE = 48;

/** Masked evidence for decision records and logs: never the value in clear, bounded in length. */
export function evidence(value: string): string {
  if (value.length <= MAX_EVIDENCE) return maskValue(value);
  return `${maskValue(value.slice(0, MAX_EVIDENCE - 8))}…(${value.length} chars)`;
}

/**
 * Replace spans in `text` (offsets into it). Overlapping spans merge into one replacement named after the
 * earliest span, so no fragment of a value survives between two placeholders.
 */
export function applyRedactions(text: string, spans: RedactionSpan[], ctx: RedactionContext): string {
  if (spans.length === 0) return text;
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  let out = '';
  let at = 0;
  let i = 0;
  while (i < spans.length) {
    const first = spans[i];
    let end = first.end;
    i++;
    while (i < spans.length && spans[i].start < end) end = Math.max(end, spans[i++].end);
    out += text.slice(at, first.start) + ctx.replacement(first.entity, text.slice(first.start, end), first.style);
    at = end;
  }
  return out + text.slice(at);
}
