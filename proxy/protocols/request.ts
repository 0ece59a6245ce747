import type { ApiKind, Exchange, JsonPath, Segment, SegmentKind } from './exchange';
import { describeParseError, setAtPath } from './json-path';

export interface ParsedRequest {
  api: ApiKind;
  json?: unknown;
  parseError?: string;
  model?: string;
  stream: boolean;
  maxTokens?: number;
  input: Segment[];
}

type Obj = Record<string, unknown>;

/** Roles whose content comes from tools or retrieval, not from the user: indirect-injection carriers. */
const UNTRUSTED_ROLES = new Set(['tool', 'function', 'ipython']);
/** Deepest nesting of `inputs` we walk for text (question-answering, sentence pairs, batches). */
const MAX_INPUT_DEPTH = 4;

function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Binary payloads (audio, images) are never JSON; everything else is tried. */
function mayBeJson(contentType: string | undefined): boolean {
  if (!contentType) return true;
  const ct = contentType.toLowerCase();
  return !(ct.startsWith('image/') || ct.startsWith('audio/') || ct.startsWith('video/') || ct.startsWith('multipart/') || ct.startsWith('application/octet-stream'));
}

function seg(role: string, kind: SegmentKind, path: JsonPath, text: string, trusted = true): Segment {
  return { role, kind, trusted, path, text };
}

function chatSegments(messages: unknown, out: Segment[]): void {
  if (!Array.isArray(messages)) return;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (!isObject(m)) continue;
    const role = typeof m.role === 'string' ? m.role : 'unknown';
    const untrusted = UNTRUSTED_ROLES.has(role);
    const kind: SegmentKind = untrusted ? 'tool_result' : 'message';
    if (typeof m.content === 'string') out.push(seg(role, kind, ['messages', i, 'content'], m.content, !untrusted));
    else if (Array.isArray(m.content)) {
      m.content.forEach((part, j) => {
        if (isObject(part) && typeof part.text === 'string') out.push(seg(role, kind, ['messages', i, 'content', j, 'text'], part.text, !untrusted));
      });
    }
    if (Array.isArray(m.tool_calls)) {
      m.tool_calls.forEach((call, j) => {
        const fn = isObject(call) ? call.function : undefined;
        if (isObject(fn) && typeof fn.arguments === 'string') out.push(seg(role, 'tool_arguments', ['messages', i, 'tool_calls', j, 'function', 'arguments'], fn.arguments));
      });
    }
    const legacy = m.function_call;
    if (isObject(legacy) && typeof legacy.arguments === 'string') out.push(seg(role, 'tool_arguments', ['messages', i, 'function_call', 'arguments'], legacy.arguments));
  }
}

/** Every string under `value` (strings, arrays of strings, nested objects), each with its path. */
function textSegments(value: unknown, path: JsonPath, kind: SegmentKind, out: Segment[], depth = 0): void {
  if (typeof value === 'string') out.push(seg('user', kind, path, value));
  else if (depth >= MAX_INPUT_DEPTH) return;
  else if (Array.isArray(value)) value.forEach((v, i) => textSegments(v, [...path, i], kind, out, depth + 1));
  else if (isObject(value)) for (const k of Object.keys(value)) textSegments(value[k], [...path, k], kind, out, depth + 1);
}

function positiveNumber(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

/**
 * Parses an inference request body once into the neutral form. Never throws: malformed JSON sets
 * parseError; an 'hf.task' candidate without `inputs` becomes 'passthrough'.
 */
export function parseRequest(api: ApiKind, body: Buffer, contentType: string | undefined): ParsedRequest {
  const input: Segment[] = [];
  if (api === 'passthrough' || !mayBeJson(contentType)) return { api: api === 'hf.task' ? 'passthrough' : api, stream: false, input };
  if (body.length === 0) return { api: api === 'hf.task' ? 'passthrough' : api, parseError: 'empty body', stream: false, input };

  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return { api: api === 'hf.task' ? 'passthrough' : api, parseError: describeParseError(err), stream: false, input };
  }
  if (!isObject(json)) {
    if (api === 'hf.task') return { api: 'passthrough', json, stream: false, input };
    return { api, json, parseError: 'expected a JSON object', stream: false, input };
  }
  if (api === 'hf.task' && !('inputs' in json)) return { api: 'passthrough', json, stream: false, input };

  const params = isObject(json.parameters) ? json.parameters : undefined;
  const model = typeof json.model === 'string' ? json.model : undefined;
  switch (api) {
    case 'openai.chat':
      chatSegments(json.messages, input);
      return { api, json, model, stream: json.stream === true, maxTokens: positiveNumber(json.max_tokens ?? json.max_completion_tokens), input };
    case 'openai.completions':
      textSegments(json.prompt, ['prompt'], 'prompt', input, MAX_INPUT_DEPTH - 1);
      return { api, json, model, stream: json.stream === true, maxTokens: positiveNumber(json.max_tokens), input };
    case 'openai.responses':
      // Minimal: every string of `input` and `instructions` (the request-side work owns the full parse).
      textSegments(json.input, ['input'], 'message', input);
      if (typeof json.instructions === 'string') input.push(seg('system', 'message', ['instructions'], json.instructions));
      return { api, json, model, stream: json.stream === true, maxTokens: positiveNumber(json.max_output_tokens), input };
    case 'openai.embeddings':
      textSegments(json.input, ['input'], 'inputs', input, MAX_INPUT_DEPTH - 1);
      return { api, json, model, stream: false, input };
    case 'tei.embed':
      textSegments(json.inputs, ['inputs'], 'inputs', input, MAX_INPUT_DEPTH - 2);
      if (typeof json.query === 'string') input.push(seg('user', 'inputs', ['query'], json.query));
      textSegments(json.texts, ['texts'], 'inputs', input, MAX_INPUT_DEPTH - 1);
      return { api, json, model, stream: false, input };
    case 'tgi.compat':
    case 'tgi.generate':
    case 'tgi.generate_stream':
    case 'hf.task':
      textSegments(json.inputs, ['inputs'], 'inputs', input);
      return {
        api,
        json,
        model,
        stream: api === 'tgi.generate_stream' || (api !== 'tgi.generate' && json.stream === true),
        maxTokens: positiveNumber(params?.max_new_tokens),
        input,
      };
  }
}

/** The bytes to forward: the original ones unless a segment was edited, then the JSON with each edit in place. */
export function serializeRequest(ex: Exchange): Buffer {
  if (ex.requestJson === undefined || !ex.input.some((s) => s.edited)) return ex.requestBody;
  for (const s of ex.input) if (s.edited) setAtPath(ex.requestJson, s.path, s.text);
  return Buffer.from(JSON.stringify(ex.requestJson), 'utf8');
}

/** Puts the request body into the exchange, parsed once. The server and the tests fill an Exchange this way. */
export function attachRequestBody(ex: Exchange, body: Buffer, contentType: string | undefined): void {
  const parsed = parseRequest(ex.api, body, contentType);
  ex.requestBody = body;
  ex.api = parsed.api;
  ex.requestJson = parsed.json;
  ex.parseError = parsed.parseError;
  ex.model = parsed.model;
  ex.stream = parsed.stream;
  ex.maxTokens = parsed.maxTokens;
  ex.input = parsed.input;
}
