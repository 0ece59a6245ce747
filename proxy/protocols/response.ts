import type { IncomingHttpHeaders } from 'node:http';
import type { BlockVerdict, Exchange, JsonPath, Segment, SegmentKind, Usage } from './exchange';
import { getAtPath, setAtPath } from './json-path';
import { echoedPrompt } from './prompt-echo';
import { isObject } from '../../common/json';

type Obj = Record<string, unknown>;

/** The parsed response body per exchange (JSON, or the text of a body that is not JSON), so it is parsed once. */
const parsedBodies = new WeakMap<Exchange, { json: unknown } | { raw: true }>();
/** For output segments that had the prompt stripped: the prefix to put back when writing. */
const prefixes = new WeakMap<Segment, string>();
/** For token-list segments: what replaces the list when it had a finding or its text was rewritten. */
const clearedValue = new WeakMap<Segment, null | []>();

function num(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  return undefined;
}

function out(path: JsonPath, text: string, choice: number, kind: SegmentKind, unit: JsonPath): Segment {
  return { role: 'assistant', kind, trusted: true, path, choice, text, unit };
}

/** One segment per rank of a token list (rank 0 the chosen tokens, then the alternatives), nulled as one. */
function tokenLists(ranks: string[], path: JsonPath, choice: number, unit: JsonPath, cleared: null | [], output: Segment[]): void {
  ranks.forEach((text) => {
    if (text === '') return;
    const s = out(path, text, choice, 'token_list', unit);
    clearedValue.set(s, cleared);
    output.push(s);
  });
}

/** Texts of a list of token entries by rank: rank 0 the chosen tokens, rank k the k-th alternatives. */
function tokenRanks<T>(entries: readonly T[], token: (e: T) => unknown, alternatives: (e: T) => unknown[]): string[] {
  const ranks: string[] = [];
  for (const e of entries) {
    const t = token(e);
    if (typeof t === 'string') ranks[0] = (ranks[0] ?? '') + t;
    alternatives(e).forEach((alt, k) => {
      if (typeof alt === 'string') ranks[k + 1] = (ranks[k + 1] ?? '') + alt;
    });
  }
  return Array.from(ranks, (r) => r ?? '');
}

/**
 * The token texts a chat, completions or Responses API `logprobs` value shows, per list and rank: chat
 * `content`/`refusal` entries with their `top_logprobs`, completions `tokens` with `top_logprobs` maps, or a
 * Responses API list of entries.
 */
export function logprobTexts(logprobs: unknown): Array<{ list: string; texts: string[] }> {
  const entryAlternatives = (e: Obj): unknown[] => (Array.isArray(e.top_logprobs) ? e.top_logprobs.map((a) => (isObject(a) ? a.token : undefined)) : []);
  const entries = (list: unknown): Obj[] => (Array.isArray(list) ? list.filter(isObject) : []);
  if (Array.isArray(logprobs)) return [{ list: 'content', texts: tokenRanks(entries(logprobs), (e) => e.token, entryAlternatives) }];
  if (!isObject(logprobs)) return [];
  const lists: Array<{ list: string; texts: string[] }> = [];
  for (const list of ['content', 'refusal']) {
    if (Array.isArray(logprobs[list])) lists.push({ list, texts: tokenRanks(entries(logprobs[list]), (e) => e.token, entryAlternatives) });
  }
  if (Array.isArray(logprobs.tokens)) {
    const tops = Array.isArray(logprobs.top_logprobs) ? logprobs.top_logprobs : [];
    const positions = logprobs.tokens.map((t, i) => ({ t, alts: isObject(tops[i]) ? Object.keys(tops[i] as Obj) : [] }));
    lists.push({ list: 'tokens', texts: tokenRanks(positions, (e) => e.t, (e) => e.alts) });
  }
  return lists;
}

/** vLLM `prompt_logprobs`: per prompt position null or {token id: {decoded_token, rank}}; the candidates by rank. */
function promptLogprobTexts(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  const positions = list.filter(isObject).map((pos) =>
    Object.values(pos)
      .filter(isObject)
      .sort((a, b) => (num(a.rank) ?? 0) - (num(b.rank) ?? 0))
      .map((c) => c.decoded_token),
  );
  return tokenRanks(positions, (p) => p[0], (p) => p.slice(1));
}

/** TGI `details`: the generated tokens (special ones skipped) and the top tokens per position, by rank. */
function tgiTokenLists(details: Obj, base: JsonPath, choice: number, unit: JsonPath, output: Segment[]): void {
  const tokens = Array.isArray(details.tokens) ? details.tokens.filter((t): t is Obj => isObject(t) && t.special !== true) : [];
  tokenLists(tokenRanks(tokens, (t) => t.text, () => []), [...base, 'tokens'], choice, unit, [], output);
  const tops = Array.isArray(details.top_tokens) ? details.top_tokens.filter(Array.isArray) : [];
  const ranks = tokenRanks(tops as unknown[][], () => undefined, (p) => p.map((t) => (isObject(t) && t.special !== true ? t.text : undefined)));
  tokenLists(ranks.slice(1), [...base, 'top_tokens'], choice, unit, [], output);
}

/** `generated_text` (or a pipeline's summary/translation text) of a TGI / HF task item; strips an echoed prompt. */
function generatedText(ex: Exchange, item: unknown, path: JsonPath, choice: number, output: Segment[]): void {
  if (!isObject(item)) return;
  for (const key of ['generated_text', 'summary_text', 'translation_text']) {
    const text = item[key];
    if (typeof text !== 'string') continue;
    const prefix = key === 'generated_text' ? echoedPrompt(ex, text) : '';
    const s = out([...path, key], text.slice(prefix.length), choice, 'completion', path);
    if (prefix) prefixes.set(s, prefix);
    output.push(s);
    break;
  }
  const details = isObject(item.details) ? item.details : undefined;
  if (!details) return;
  tgiTokenLists(details, [...path, 'details'], choice, path, output);
  (Array.isArray(details.best_of_sequences) ? details.best_of_sequences : []).forEach((seq, j) => {
    if (!isObject(seq) || typeof seq.generated_text !== 'string') return;
    const unit = [...path, 'details', 'best_of_sequences', j];
    const prefix = echoedPrompt(ex, seq.generated_text);
    const s = out([...unit, 'generated_text'], seq.generated_text.slice(prefix.length), choice, 'completion', unit);
    if (prefix) prefixes.set(s, prefix);
    output.push(s);
    tgiTokenLists(seq, unit, choice, unit, output);
  });
}

/** Every text of chat and completions choices: content, reasoning, refusal, tool calls, audio transcript, logprobs. */
function chatChoices(ex: Exchange, choices: unknown, output: Segment[]): number {
  if (!Array.isArray(choices)) return 0;
  let toolCalls = 0;
  choices.forEach((c, i) => {
    if (!isObject(c)) return;
    const choice = num(c.index) ?? i;
    const unit: JsonPath = ['choices', i];
    const text = (path: JsonPath, value: unknown, kind: SegmentKind): void => {
      if (typeof value === 'string') output.push(out([...unit, ...path], value, choice, kind, unit));
    };
    const msg = c.message;
    if (isObject(msg)) {
      if (Array.isArray(msg.content)) {
        msg.content.forEach((p, j) => isObject(p) && text(['message', 'content', j, 'text'], p.text, 'completion'));
      } else text(['message', 'content'], msg.content, 'completion');
      text(['message', 'reasoning_content'], msg.reasoning_content, 'reasoning');
      text(['message', 'reasoning'], msg.reasoning, 'reasoning');
      text(['message', 'refusal'], msg.refusal, 'refusal');
      if (isObject(msg.audio)) text(['message', 'audio', 'transcript'], msg.audio.transcript, 'transcript');
      if (Array.isArray(msg.tool_calls)) {
        msg.tool_calls.forEach((call, j) => {
          toolCalls++;
          const fn = isObject(call) ? call.function : undefined;
          if (!isObject(fn)) return;
          text(['message', 'tool_calls', j, 'function', 'name'], fn.name, 'tool_name');
          text(['message', 'tool_calls', j, 'function', 'arguments'], fn.arguments, 'tool_arguments');
        });
      }
      const legacy = msg.function_call;
      if (isObject(legacy)) {
        toolCalls++;
        text(['message', 'function_call', 'name'], legacy.name, 'tool_name');
        text(['message', 'function_call', 'arguments'], legacy.arguments, 'tool_arguments');
      }
    } else if (typeof c.text === 'string') {
      const prefix = echoedPrompt(ex, c.text, choice);
      const s = out([...unit, 'text'], c.text.slice(prefix.length), choice, 'completion', unit);
      if (prefix) prefixes.set(s, prefix);
      output.push(s);
    }
    for (const { texts } of logprobTexts(c.logprobs)) tokenLists(texts, [...unit, 'logprobs'], choice, unit, null, output);
    tokenLists(promptLogprobTexts(c.prompt_logprobs), [...unit, 'prompt_logprobs'], choice, unit, null, output);
  });
  return toolCalls;
}

/** OpenAI Responses API output items: message parts, reasoning, function calls; and `output_text`. */
function responsesOutput(json: Obj, output: Segment[]): number {
  let toolCalls = 0;
  (Array.isArray(json.output) ? json.output : []).forEach((item, i) => {
    if (!isObject(item)) return;
    const unit: JsonPath = ['output', i];
    const text = (path: JsonPath, value: unknown, kind: SegmentKind): void => {
      if (typeof value === 'string') output.push(out([...unit, ...path], value, i, kind, unit));
    };
    (Array.isArray(item.content) ? item.content : []).forEach((part, j) => {
      if (!isObject(part)) return;
      text(['content', j, 'text'], part.text, item.type === 'reasoning' ? 'reasoning' : 'completion');
      text(['content', j, 'refusal'], part.refusal, 'refusal');
      for (const { texts } of logprobTexts(part.logprobs)) tokenLists(texts, [...unit, 'content', j, 'logprobs'], i, unit, [], output);
    });
    (Array.isArray(item.summary) ? item.summary : []).forEach((part, j) => isObject(part) && text(['summary', j, 'text'], part.text, 'reasoning'));
    if (item.type === 'function_call' || item.type === 'custom_tool_call') toolCalls++;
    text(['name'], item.name, 'tool_name');
    text(['arguments'], item.arguments, 'tool_arguments');
    text(['input'], item.input, 'tool_arguments');
  });
  if (typeof json.output_text === 'string') output.push(out(['output_text'], json.output_text, 0, 'completion', ['output_text']));
  return toolCalls;
}

/** The message of an error body, in the shapes the servers use (OpenAI, TGI, FastAPI, older vLLM). */
function errorMessage(json: Obj, output: Segment[]): void {
  const at = (path: JsonPath, value: unknown): void => {
    if (typeof value === 'string') output.push(out(path, value, 0, 'error', path));
  };
  if (isObject(json.error)) at(['error', 'message'], json.error.message);
  else at(['error'], json.error);
  if (!('error' in json)) {
    at(['message'], json.message);
    at(['detail'], json.detail);
  }
}

/** usage object ({prompt_tokens,...}) → Usage. */
export function usageFrom(u: unknown, source: Usage['source']): Usage | undefined {
  if (!isObject(u)) return undefined;
  const usage: Usage = {
    promptTokens: num(u.prompt_tokens ?? u.input_tokens),
    completionTokens: num(u.completion_tokens ?? u.output_tokens),
    totalTokens: num(u.total_tokens),
    source,
  };
  return usage.promptTokens === undefined && usage.completionTokens === undefined && usage.totalTokens === undefined ? undefined : usage;
}

function headerUsage(headers: IncomingHttpHeaders): Usage | undefined {
  const prompt = num(headers['x-prompt-tokens']);
  const generated = num(headers['x-generated-tokens']);
  if (prompt === undefined && generated === undefined) return undefined;
  return { promptTokens: prompt, completionTokens: generated, totalTokens: prompt !== undefined && generated !== undefined ? prompt + generated : undefined, source: 'headers' };
}

function detailsUsage(item: unknown): Usage | undefined {
  const details = isObject(item) ? item.details : undefined;
  if (!isObject(details)) return undefined;
  const generated = num(details.generated_tokens);
  return generated === undefined ? undefined : { completionTokens: generated, source: 'response' };
}

/** Routes whose answers carry vectors or scores, not text a model wrote. */
const NO_TEXT = new Set(['passthrough', 'openai.embeddings', 'tei.embed']);

/**
 * Fills ex.output with every text the client will read (generated text per choice, reasoning, refusals,
 * tool-call names and arguments, audio transcripts, token lists, error messages, or the whole body when it is
 * not JSON), ex.toolCalls and ex.usage, from a complete (non-streamed) response body. Never throws.
 */
export function parseResponse(ex: Exchange, body: Buffer, headers: IncomingHttpHeaders): void {
  ex.output = [];
  ex.toolCalls = 0;
  const fromHeaders = headerUsage(headers);
  if (fromHeaders) ex.usage = fromHeaders;
  const encoding = headers['content-encoding'];
  if (ex.api === 'passthrough' || body.length === 0 || (encoding !== undefined && encoding !== 'identity')) return;
  const text = body.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // A broken or unusual upstream answering in plain text: the client reads it all.
    if (NO_TEXT.has(ex.api)) return;
    parsedBodies.set(ex, { raw: true });
    ex.output.push(out([], text, 0, 'completion', []));
    return;
  }
  parsedBodies.set(ex, { json });
  if (isObject(json) && ('error' in json || json.object === 'error' || (typeof json.detail === 'string' && !('choices' in json)))) {
    errorMessage(json, ex.output);
    return;
  }
  switch (ex.api) {
    case 'openai.chat':
    case 'openai.completions':
    case 'openai.embeddings':
      if (isObject(json)) {
        ex.toolCalls = chatChoices(ex, json.choices, ex.output);
        tokenLists(promptLogprobTexts(json.prompt_logprobs), ['prompt_logprobs'], 0, ['prompt_logprobs'], null, ex.output);
        ex.usage = usageFrom(json.usage, 'response') ?? ex.usage;
      }
      return;
    case 'openai.responses':
      if (isObject(json)) {
        ex.toolCalls = responsesOutput(json, ex.output);
        ex.usage = usageFrom(json.usage, 'response') ?? ex.usage;
      }
      return;
    case 'tgi.compat':
    case 'tgi.generate':
    case 'tgi.generate_stream':
    case 'hf.task':
      if (Array.isArray(json)) json.forEach((item, i) => generatedText(ex, item, [i], i, ex.output));
      else generatedText(ex, json, [], 0, ex.output);
      ex.usage ??= detailsUsage(Array.isArray(json) ? json[0] : json);
      return;
    case 'tei.embed':
      return;
  }
}

const unitKey = (unit: JsonPath | undefined): string => JSON.stringify(unit ?? []);

/**
 * A choice or item withheld by a response-stage block, in the client's shape: OpenAI choices keep their role
 * with empty content and finish_reason "content_filter" (the Azure OpenAI convention); Responses API items
 * lose their text (function calls are dropped) and the response becomes "incomplete" with reason
 * content_filter; TGI items keep only the echoed prompt, with details.finish_reason "content_filter".
 */
function withhold(ex: Exchange, json: unknown, unit: JsonPath, verdict: BlockVerdict, dropped: Set<unknown>): void {
  const target = getAtPath(json, unit);
  if (typeof target === 'string') {
    setAtPath(json, unit, unit[unit.length - 1] === 'message' || unit[0] === 'error' || unit[0] === 'detail' ? withheldMessage(verdict) : '');
    return;
  }
  if (!isObject(target)) return;
  switch (ex.api) {
    case 'openai.chat':
    case 'openai.completions':
      if (isObject(target.message)) target.message = { role: typeof target.message.role === 'string' ? target.message.role : 'assistant', content: '' };
      if (typeof target.text === 'string') target.text = '';
      if ('logprobs' in target) target.logprobs = null;
      if ('prompt_logprobs' in target) target.prompt_logprobs = null;
      target.finish_reason = 'content_filter';
      return;
    case 'openai.responses':
      if (target.type === 'function_call' || target.type === 'custom_tool_call') dropped.add(target);
      for (const part of Array.isArray(target.content) ? target.content : []) {
        if (!isObject(part)) continue;
        if (typeof part.text === 'string') part.text = '';
        if (typeof part.refusal === 'string') part.refusal = '';
        if (Array.isArray(part.logprobs)) part.logprobs = [];
      }
      if (Array.isArray(target.summary)) target.summary = [];
      return;
    default:
      if (typeof target.generated_text === 'string') target.generated_text = echoedPrompt(ex, target.generated_text);
      if (typeof target.summary_text === 'string') target.summary_text = '';
      if (typeof target.translation_text === 'string') target.translation_text = '';
      for (const holder of [target, isObject(target.details) ? target.details : undefined]) {
        if (!holder) continue;
        for (const list of ['tokens', 'top_tokens', 'best_of_sequences']) if (Array.isArray(holder[list])) holder[list] = [];
      }
      if (isObject(target.details)) target.details.finish_reason = 'content_filter';
  }
}

function withheldMessage(verdict: BlockVerdict): string {
  return `withheld by guardrail rule "${verdict.code}"`;
}

/**
 * The bytes for the client. Without a verdict: the original bytes unless an output segment was edited, then
 * the JSON with each edit in place, and every token list nulled that had a finding or whose text was
 * rewritten. With a response-stage verdict: the same, and each choice or item a blocking rule matched in (all
 * of them when the verdict names none) withheld (see withhold). Undefined when there is nothing to withhold
 * (the caller answers with an error instead).
 */
export function serializeResponse(ex: Exchange, original: Buffer): Buffer;
export function serializeResponse(ex: Exchange, original: Buffer, verdict: BlockVerdict | undefined): Buffer | undefined;
export function serializeResponse(ex: Exchange, original: Buffer, verdict?: BlockVerdict): Buffer | undefined {
  const edited = ex.output.some((s) => s.edited);
  if (!verdict && !edited) return original;
  const parsed = parsedBodies.get(ex);
  if (!parsed) return verdict ? undefined : original;
  if ('raw' in parsed) {
    const raw = ex.output[0];
    if (!raw) return verdict ? undefined : original;
    return Buffer.from(verdict ? '' : raw.text, 'utf8');
  }
  const json = parsed.json;
  const withheld = new Set<string>();
  if (verdict) {
    const flagged = ex.output.filter((s) => s.blocked);
    for (const s of flagged.length > 0 ? flagged : ex.output) withheld.add(unitKey(s.unit));
    if (withheld.size === 0) return undefined;
  }
  const changedUnits = new Set<string>();
  for (const s of ex.output) if (s.edited) changedUnits.add(unitKey(s.unit));
  for (const s of ex.output) {
    if (withheld.has(unitKey(s.unit))) continue;
    if (s.kind === 'token_list') {
      if (s.edited || changedUnits.has(unitKey(s.unit))) setAtPath(json, s.path, clearedValue.get(s) ?? null);
      continue;
    }
    if (!s.edited || typeof getAtPath(json, s.path) !== 'string') continue;
    setAtPath(json, s.path, (prefixes.get(s) ?? '') + s.text);
  }
  if (verdict) {
    const dropped = new Set<unknown>();
    for (const key of withheld) withhold(ex, json, JSON.parse(key) as JsonPath, verdict, dropped);
    if (ex.api === 'openai.responses' && isObject(json)) {
      json.status = 'incomplete';
      json.incomplete_details = { reason: 'content_filter' };
      if (Array.isArray(json.output)) json.output = json.output.filter((item) => !dropped.has(item));
    }
  }
  return Buffer.from(JSON.stringify(json), 'utf8');
}
