/**
 * A complete response too large to buffer (over MAX_RESPONSE_SIZE), inspected as it streams through in bounded
 * memory: an incremental JSON lexer copies the body to the client byte for byte, except the string values the
 * client reads as text (the same fields parseResponse reads), whose decoded characters go through the stream
 * channel filters and come out re-encoded as what the filters release. Token lists (logprobs, top tokens) cannot
 * be checked against a text that is already on its way, so they are replaced by null (or []). After a block, every
 * later text value is emptied and finish reasons say "content_filter"; what was sent before stays sent. A body
 * that is not JSON, or stops being JSON, is read as plain text from there on.
 */
import { StringDecoder } from 'node:string_decoder';
import type { ChannelFilter, ChannelKind, StreamInspector } from './stream-filter';
import type { ApiKind, BlockVerdict, Exchange, JsonPath, Segment, SegmentKind } from './exchange';
import { KeptText, OutputBudget } from './kept-text';
import { echoedPrompt } from './prompt-echo';
import { usageFrom } from './response';

type Pattern = ReadonlyArray<string>;

/** Text fields by API, as path patterns ('*' = any array index or key), with the channel kind of each. */
const OPENAI_TEXT: Array<[Pattern, ChannelKind]> = [
  [['choices', '*', 'message', 'content'], 'content'],
  [['choices', '*', 'message', 'content', '*', 'text'], 'content'],
  [['choices', '*', 'message', 'reasoning_content'], 'reasoning'],
  [['choices', '*', 'message', 'reasoning'], 'reasoning'],
  [['choices', '*', 'message', 'refusal'], 'refusal'],
  [['choices', '*', 'message', 'audio', 'transcript'], 'transcript'],
  [['choices', '*', 'message', 'tool_calls', '*', 'function', 'arguments'], 'tool_arguments'],
  [['choices', '*', 'message', 'tool_calls', '*', 'function', 'name'], 'tool_name'],
  [['choices', '*', 'message', 'function_call', 'arguments'], 'tool_arguments'],
  [['choices', '*', 'message', 'function_call', 'name'], 'tool_name'],
  [['choices', '*', 'text'], 'content'],
];
const RESPONSES_TEXT: Array<[Pattern, ChannelKind]> = [
  [['output', '*', 'content', '*', 'text'], 'content'],
  [['output', '*', 'content', '*', 'refusal'], 'refusal'],
  [['output', '*', 'summary', '*', 'text'], 'reasoning'],
  [['output', '*', 'arguments'], 'tool_arguments'],
  [['output', '*', 'input'], 'tool_arguments'],
  [['output', '*', 'name'], 'tool_name'],
  [['output_text'], 'content'],
];
const TGI_KEYS = ['generated_text', 'summary_text', 'translation_text'];
const ERROR_TEXT: Array<[Pattern, ChannelKind]> = [
  [['error'], 'error'],
  [['error', 'message'], 'error'],
  [['message'], 'error'],
  [['detail'], 'error'],
];
/** Values the client would read tokens from, replaced as a whole. */
const TOKEN_LISTS: Array<[Pattern, 'null' | '[]']> = [
  [['choices', '*', 'logprobs'], 'null'],
  [['choices', '*', 'prompt_logprobs'], 'null'],
  [['prompt_logprobs'], 'null'],
  [['output', '*', 'content', '*', 'logprobs'], '[]'],
];
const TGI_TOKEN_LISTS = ['tokens', 'top_tokens', 'prefill'];

function matches(pattern: Pattern, path: JsonPath): boolean {
  if (pattern.length !== path.length) return false;
  for (let i = 0; i < pattern.length; i++) if (pattern[i] !== '*' && pattern[i] !== String(path[i])) return false;
  return true;
}

/** What a string value at `path` is to the client: text of some kind, or nothing to inspect. */
function textKind(api: ApiKind, path: JsonPath): ChannelKind | undefined {
  // The agent's own API (inbound listener): every string may be text the user reads.
  if (api === 'inbound') return 'content';
  for (const [p, kind] of ERROR_TEXT) if (matches(p, path)) return kind;
  const table = api === 'openai.responses' ? RESPONSES_TEXT : api.startsWith('openai.') ? OPENAI_TEXT : undefined;
  if (table) {
    for (const [p, kind] of table) if (matches(p, path)) return kind;
    return undefined;
  }
  const last = String(path[path.length - 1]);
  return TGI_KEYS.includes(last) && path.filter((k) => typeof k === 'string').length <= 3 ? 'content' : undefined;
}

/** The literal that replaces a token-list value at `path`, or undefined when it is no token list. */
function tokenList(api: ApiKind, path: JsonPath): string | undefined {
  if (api === 'inbound') return undefined;
  if (api.startsWith('openai.')) {
    for (const [p, literal] of TOKEN_LISTS) if (matches(p, path)) return literal;
    return undefined;
  }
  return path.length >= 2 && path[path.length - 2] === 'details' && TGI_TOKEN_LISTS.includes(String(path[path.length - 1])) ? '[]' : undefined;
}

function isFinishReason(path: JsonPath): boolean {
  const last = path[path.length - 1];
  return last === 'finish_reason' && (path.length === 3 || path[path.length - 2] === 'details');
}

const SEGMENT_KIND: Partial<Record<ChannelKind, SegmentKind>> = { content: 'completion', reasoning: 'reasoning', refusal: 'refusal', transcript: 'transcript', tool_arguments: 'tool_arguments', tool_name: 'tool_name', error: 'error' };

interface Frame {
  array: boolean;
  /** Current key (object) or index (array). */
  at: string | number;
  /** Object: a key is expected next. */
  expectKey: boolean;
}

/** The text value being decoded: its channel, escape state, and an echoed prompt it may start with. */
interface TextValue {
  key: string;
  kind: ChannelKind;
  path: JsonPath;
  filter?: ChannelFilter;
  escape: '' | '\\' | 'u';
  hex: string;
  highSurrogate: string;
  /** Characters still compared with the echoed prompt (TGI return_full_text), or undefined once past it. */
  prompt?: string;
  promptSeen: string;
  released: KeptText;
}

export interface JsonStreamRewriter {
  /** Bytes for the client now. */
  push(chunk: Buffer): string;
  /** The body ended: what the filters still held, and the rest. */
  end(): string;
  readonly blocked?: BlockVerdict;
}

/** Keeps ex.output within this many characters per text value (the trace does not need more). */
const OUTPUT_KEEP = 64 * 1024;
/**
 * Nesting tracked: deeper values hold no text any client reads (every text field is a few levels down), so they
 * are copied through uncounted; an endless `[[[[` never grows memory.
 */
const MAX_DEPTH = 64;
/** Longest key remembered: longer ones match no text field. */
const MAX_KEY = 256;
/** Largest `usage` object read for token counts. */
const MAX_USAGE = 64 * 1024;

export interface JsonStreamBounds {
  /** Characters of released text kept for ex.output, over all text values. */
  maxKeptChars: number;
}

class Rewriter implements JsonStreamRewriter {
  private readonly decoder = new StringDecoder('utf8');
  private readonly stack: Frame[] = [];
  private out = '';
  private verdict?: BlockVerdict;
  /** Lexer state between chunks. */
  private state: 'value' | 'key' | 'colon' | 'after' | 'string' | 'literal' | 'skip' | 'text' | 'raw' = 'value';
  private keyBuf = '';
  private stringEscape = false;
  private inKey = false;
  /** Passing a plain string: whether it is a finish reason to rewrite after a block. */
  private finishReason = false;
  private skipDepth = 0;
  private skipInString = false;
  private skipEscape = false;
  /** Skipping copies the value through (too deep to track) rather than replacing it (a token list). */
  private skipCopies = false;
  private readonly budget: OutputBudget;
  private text?: TextValue;
  private raw?: TextValue;
  private started = false;
  private readonly output: Segment[] = [];
  private usageJson = '';
  private capturingUsage = false;
  private count = 0;

  constructor(
    private readonly ex: Exchange,
    private readonly inspector: StreamInspector,
    bounds: JsonStreamBounds,
  ) {
    this.budget = new OutputBudget(bounds.maxKeptChars);
  }

  get blocked(): BlockVerdict | undefined {
    return this.verdict;
  }

  push(chunk: Buffer): string {
    this.consume(this.decoder.write(chunk));
    return this.take();
  }

  end(): string {
    this.consume(this.decoder.end());
    if (this.raw) this.closeText(this.raw);
    if (this.text) this.closeText(this.text);
    this.finishOutput();
    return this.take();
  }

  private take(): string {
    const o = this.out;
    this.out = '';
    return o;
  }

  private path(): JsonPath {
    return this.stack.map((f) => f.at);
  }

  private consume(s: string): void {
    let i = 0;
    while (i < s.length) {
      if (this.state === 'raw') {
        this.feedText(this.raw!, s.slice(i));
        return;
      }
      if (this.state === 'text') {
        i = this.textChars(s, i);
        continue;
      }
      if (this.state === 'skip') {
        i = this.skipChars(s, i);
        continue;
      }
      const c = s[i];
      if (this.state === 'string') {
        // A plain string (or key): copied through, or collected when it is a key.
        if (this.capturingUsage) this.captureUsage(c);
        if (this.stringEscape) this.stringEscape = false;
        else if (c === '\\') this.stringEscape = true;
        else if (c === '"') {
          this.state = this.inKey ? 'colon' : 'after';
          if (this.inKey) this.stack[this.stack.length - 1].at = this.keyBuf;
          if (!this.inKey && this.finishReason) {
            this.out += 'content_filter"';
            this.finishReason = false;
            i++;
            continue;
          }
        } else if (this.inKey && this.keyBuf.length <= MAX_KEY) this.keyBuf += c;
        if (!this.finishReason || c === '"') this.out += c;
        i++;
        continue;
      }
      if (c === ' ' || c === '\n' || c === '\r' || c === '\t') {
        if (this.state === 'literal') this.state = 'after';
        this.emit(c);
        i++;
        continue;
      }
      if (!this.started) {
        this.started = true;
        if (c !== '{' && c !== '[') return this.toRaw(s.slice(i));
      }
      switch (this.state) {
        case 'value':
          if (!this.value(c)) return this.toRaw(s.slice(i));
          break;
        case 'key':
          if (c === '"') {
            this.state = 'string';
            this.inKey = true;
            this.keyBuf = '';
            this.emit(c);
          } else if (c === '}') this.close(c);
          else return this.toRaw(s.slice(i));
          break;
        case 'colon':
          if (c !== ':') return this.toRaw(s.slice(i));
          this.emit(c);
          this.state = 'value';
          break;
        case 'literal':
        case 'after':
          if (this.state === 'literal' && /[-+.0-9a-zA-Z]/.test(c)) {
            this.emit(c);
            break;
          }
          if (!this.afterValue(c)) return this.toRaw(s.slice(i));
          break;
      }
      i++;
    }
  }

  private emit(c: string): void {
    this.out += c;
    if (this.capturingUsage) this.captureUsage(c);
  }

  private captureUsage(c: string): void {
    if (this.usageJson.length < MAX_USAGE) this.usageJson += c;
    else this.capturingUsage = false;
  }

  /** A value starts with `c`. False when `c` cannot start one (not JSON after all). */
  private value(c: string): boolean {
    const path = this.path();
    const api = this.ex.api;
    const list = tokenList(api, path);
    const tooDeep = this.stack.length >= MAX_DEPTH;
    if ((list !== undefined || tooDeep) && (c === '{' || c === '[')) {
      if (list !== undefined) this.out += list;
      this.state = 'skip';
      this.skipDepth = 0;
      this.skipInString = false;
      this.skipEscape = false;
      this.skipCopies = list === undefined;
      return this.skipChars(c, 0) >= 0;
    }
    if (path.length === 1 && path[0] === 'usage' && c === '{') this.capturingUsage = true;
    if (c === '{') {
      this.emit(c);
      this.stack.push({ array: false, at: '', expectKey: true });
      this.state = 'key';
      return true;
    }
    if (c === '[') {
      this.emit(c);
      this.stack.push({ array: true, at: 0, expectKey: false });
      this.state = 'value';
      return true;
    }
    if (c === ']') {
      this.close(c);
      return true;
    }
    if (c === '"') {
      const kind = textKind(api, path);
      this.emit(c);
      if (kind) {
        this.text = this.openText(kind, path);
        this.state = 'text';
        return true;
      }
      this.state = 'string';
      this.inKey = false;
      this.finishReason = this.verdict !== undefined && isFinishReason(path);
      return true;
    }
    if (/[-0-9tfn]/.test(c)) {
      this.emit(c);
      this.state = 'literal';
      return true;
    }
    return false;
  }

  private afterValue(c: string): boolean {
    const top = this.stack[this.stack.length - 1];
    if (!top) return false;
    if (c === ',') {
      this.emit(c);
      if (top.array) {
        top.at = (top.at as number) + 1;
        this.state = 'value';
      } else this.state = 'key';
      return true;
    }
    if (c === '}' || c === ']') {
      this.close(c);
      return true;
    }
    return false;
  }

  private close(c: string): void {
    this.emit(c);
    this.stack.pop();
    if (this.capturingUsage && this.stack.length === 1) {
      this.capturingUsage = false;
      try {
        this.ex.usage = usageFrom(JSON.parse(this.usageJson), 'response') ?? this.ex.usage;
      } catch {
        // a usage object that does not parse is not counted
      }
    }
    this.state = 'after';
  }

  /** Skips a token-list value (its replacement was written) or copies a too-deep one; returns the index after what it consumed. */
  private skipChars(s: string, i: number): number {
    const from = i;
    const done = (end: number): number => {
      if (this.skipCopies) this.out += s.slice(from, end);
      return end;
    };
    for (; i < s.length; i++) {
      const c = s[i];
      if (this.skipInString) {
        if (this.skipEscape) this.skipEscape = false;
        else if (c === '\\') this.skipEscape = true;
        else if (c === '"') this.skipInString = false;
        continue;
      }
      if (c === '"') this.skipInString = true;
      else if (c === '{' || c === '[') this.skipDepth++;
      else if (c === '}' || c === ']') {
        if (--this.skipDepth === 0) {
          this.state = 'after';
          return done(i + 1);
        }
      }
    }
    return done(i);
  }

  private openText(kind: ChannelKind, path: JsonPath): TextValue {
    const key = `json:${path.join('.')}`;
    const prompt = kind === 'content' && !this.ex.api.startsWith('openai.') ? echoedPromptOf(this.ex) : undefined;
    return { key, kind, path, escape: '', hex: '', highSurrogate: '', prompt: prompt || undefined, promptSeen: '', released: new KeptText(this.budget, OUTPUT_KEEP) };
  }

  /** Decodes the characters of a text value from `i`; returns where it stopped (past the closing quote, or the end). */
  private textChars(s: string, i: number): number {
    const t = this.text!;
    let decoded = '';
    for (; i < s.length; i++) {
      const c = s[i];
      if (t.escape === 'u') {
        t.hex += c;
        if (t.hex.length < 4) continue;
        const unit = String.fromCharCode(parseInt(t.hex, 16) || 0);
        t.hex = '';
        t.escape = '';
        const code = unit.charCodeAt(0);
        if (code >= 0xd800 && code <= 0xdbff) t.highSurrogate = unit;
        else {
          decoded += t.highSurrogate + unit;
          t.highSurrogate = '';
        }
        continue;
      }
      if (t.escape === '\\') {
        t.escape = c === 'u' ? 'u' : '';
        if (c !== 'u') decoded += ESCAPES[c] ?? c;
        continue;
      }
      if (c === '\\') {
        t.escape = '\\';
        continue;
      }
      if (c === '"') {
        this.feedText(t, decoded);
        this.closeText(t);
        this.out += '"';
        this.text = undefined;
        this.state = 'after';
        return i + 1;
      }
      decoded += c;
    }
    this.feedText(t, decoded);
    return i;
  }

  private feedText(t: TextValue, text: string): void {
    if (text === '') return;
    if (t.prompt !== undefined) {
      // An echoed prompt is the client's own text: passed on unscanned once it is certain to be the prompt.
      t.promptSeen += text;
      if (t.prompt.startsWith(t.promptSeen)) return;
      const echoed = t.promptSeen.startsWith(t.prompt);
      const rest = echoed ? t.promptSeen.slice(t.prompt.length) : t.promptSeen;
      if (echoed) this.out += jsonEscape(t.prompt);
      t.prompt = undefined;
      t.promptSeen = '';
      return this.feedText(t, rest);
    }
    if (this.verdict) return;
    t.filter ??= this.inspector.channel(t.key, t.kind);
    const r = t.filter.push(text);
    this.release(t, r.text);
    if (r.block) this.verdict = r.block;
  }

  private closeText(t: TextValue): void {
    if (t.prompt !== undefined) {
      // The value ended while it still looked like the prompt: it was the prompt or a prefix of it.
      this.out += jsonEscape(t.promptSeen);
      t.prompt = undefined;
    }
    if (t.filter && !this.verdict) {
      const r = t.filter.end();
      this.release(t, r.text);
      if (r.block) this.verdict = r.block;
    }
    if (SEGMENT_KIND[t.kind] && this.budget.admit()) {
      this.output.push({ role: 'assistant', kind: SEGMENT_KIND[t.kind]!, trusted: true, path: t.path, choice: choiceOf(t.path), text: t.released.toString() });
    }
  }

  private release(t: TextValue, text: string): void {
    if (text === '') return;
    this.out += t === this.raw ? text : jsonEscape(text);
    t.released.add(text);
  }

  /** Not JSON (any more): the rest is plain text for the client, scanned as such. */
  private toRaw(rest: string): void {
    this.state = 'raw';
    this.raw = { key: `raw:${this.count++}`, kind: 'content', path: [], escape: '', hex: '', highSurrogate: '', promptSeen: '', released: new KeptText(this.budget, OUTPUT_KEEP) };
    this.feedText(this.raw, rest);
  }

  private finishOutput(): void {
    this.ex.output = this.output;
    if (this.budget.truncated) this.ex.notes.outputTruncated = 'more texts or characters than are kept for the record';
  }
}

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/** JSON string content (without the quotes) for `s`. */
function jsonEscape(s: string): string {
  const quoted = JSON.stringify(s);
  return quoted.slice(1, -1);
}

function choiceOf(path: JsonPath): number {
  const i = path.findIndex((k) => typeof k === 'number');
  return i >= 0 ? (path[i] as number) : 0;
}

/** The prompt a TGI/pipeline answer may start with (return_full_text), or ''. */
function echoedPromptOf(ex: Exchange): string {
  const json = ex.requestJson as { inputs?: unknown } | undefined;
  return typeof json?.inputs === 'string' ? echoedPrompt(ex, json.inputs) : '';
}

export function createJsonStreamRewriter(ex: Exchange, inspector: StreamInspector, bounds: JsonStreamBounds = { maxKeptChars: Infinity }): JsonStreamRewriter {
  return new Rewriter(ex, inspector, bounds);
}
