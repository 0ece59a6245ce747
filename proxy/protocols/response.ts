import type { IncomingHttpHeaders } from 'node:http';
import type { Exchange, JsonPath, Segment, Usage } from './exchange';
import { getAtPath, setAtPath } from './json-path';
import { echoedPrompt } from './prompt-echo';

type Obj = Record<string, unknown>;

/** The parsed response body per exchange, so serializeResponse does not parse it twice. */
const parsedBodies = new WeakMap<Exchange, unknown>();
/** For output segments that had the prompt stripped: the prefix to put back when writing. */
const prefixes = new WeakMap<Segment, string>();

function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function num(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  return undefined;
}

function out(path: JsonPath, text: string, choice: number, kind: Segment['kind'] = 'completion'): Segment {
  return { role: 'assistant', kind, trusted: true, path, choice, text };
}

/** `generated_text` (or a pipeline's summary/translation text) at path; strips an echoed prompt. */
function generatedText(ex: Exchange, item: unknown, path: JsonPath, choice: number, output: Segment[]): void {
  if (!isObject(item)) return;
  for (const key of ['generated_text', 'summary_text', 'translation_text']) {
    const text = item[key];
    if (typeof text !== 'string') continue;
    const prefix = key === 'generated_text' ? echoedPrompt(ex, text) : '';
    const s = out([...path, key], text.slice(prefix.length), choice);
    if (prefix) prefixes.set(s, prefix);
    output.push(s);
    return;
  }
}

function chatChoices(choices: unknown, output: Segment[]): number {
  if (!Array.isArray(choices)) return 0;
  let toolCalls = 0;
  choices.forEach((c, i) => {
    if (!isObject(c)) return;
    const choice = num(c.index) ?? i;
    const msg = c.message;
    if (isObject(msg)) {
      if (typeof msg.content === 'string') output.push(out(['choices', i, 'message', 'content'], msg.content, choice));
      else if (Array.isArray(msg.content)) {
        msg.content.forEach((p, j) => {
          if (isObject(p) && typeof p.text === 'string') output.push(out(['choices', i, 'message', 'content', j, 'text'], p.text, choice));
        });
      }
      if (Array.isArray(msg.tool_calls)) {
        msg.tool_calls.forEach((call, j) => {
          toolCalls++;
          const fn = isObject(call) ? call.function : undefined;
          if (isObject(fn) && typeof fn.arguments === 'string') {
            output.push(out(['choices', i, 'message', 'tool_calls', j, 'function', 'arguments'], fn.arguments, choice, 'tool_arguments'));
          }
        });
      }
      const legacy = msg.function_call;
      if (isObject(legacy) && typeof legacy.arguments === 'string') {
        toolCalls++;
        output.push(out(['choices', i, 'message', 'function_call', 'arguments'], legacy.arguments, choice, 'tool_arguments'));
      }
    } else if (typeof c.text === 'string') {
      output.push(out(['choices', i, 'text'], c.text, choice));
    }
  });
  return toolCalls;
}

/** usage object ({prompt_tokens,...}) → Usage. */
export function usageFrom(u: unknown, source: Usage['source']): Usage | undefined {
  if (!isObject(u)) return undefined;
  const usage: Usage = { promptTokens: num(u.prompt_tokens), completionTokens: num(u.completion_tokens), totalTokens: num(u.total_tokens), source };
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

/**
 * Fills ex.output (generated text per choice, tool-call arguments), ex.toolCalls and ex.usage from
 * a complete (non-streamed) response body. Never throws; unknown or malformed bodies leave them empty.
 */
export function parseResponse(ex: Exchange, body: Buffer, headers: IncomingHttpHeaders): void {
  ex.output = [];
  ex.toolCalls = 0;
  const fromHeaders = headerUsage(headers);
  if (fromHeaders) ex.usage = fromHeaders;
  const encoding = headers['content-encoding'];
  if (ex.api === 'passthrough' || body.length === 0 || (encoding !== undefined && encoding !== 'identity')) return;
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return;
  }
  parsedBodies.set(ex, json);
  if (isObject(json) && 'error' in json) return;

  switch (ex.api) {
    case 'openai.chat':
    case 'openai.completions':
    case 'openai.embeddings':
      if (isObject(json)) {
        ex.toolCalls = chatChoices(json.choices, ex.output);
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

/** The bytes for the client: the original ones unless an output segment was edited. */
export function serializeResponse(ex: Exchange, original: Buffer): Buffer {
  const json = parsedBodies.get(ex);
  if (json === undefined || !ex.output.some((s) => s.edited)) return original;
  for (const s of ex.output) {
    if (!s.edited || typeof getAtPath(json, s.path) !== 'string') continue;
    setAtPath(json, s.path, (prefixes.get(s) ?? '') + s.text);
  }
  return Buffer.from(JSON.stringify(json), 'utf8');
}
