import { isUtf8 } from 'node:buffer';
import type { ApiKind, Exchange, JsonPath, Segment, SegmentKind } from './exchange';
import { setAtPath } from './json-path';
import { decodeJsonBytes, decodeUtf8, encodeUtf8, locateStrings, MAX_JSON_DEPTH, parsePythonJson } from './python-json';
import { isObject } from '../../common/json';

/** The location of query-string parameters among a request's segments (written back to the path, not the body). */
export const QUERY = '$query';

/** How a request body was read: the way the upstream would read it, not the way it was declared. */
export type BodyFormat = 'json' | 'text' | 'form' | 'multipart' | 'binary' | 'empty' | 'unreadable';

export interface ParsedRequest {
  api: ApiKind;
  format: BodyFormat;
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
/** Roles kept as they are; anything else (`human`, `model`, `usеr` with a Cyrillic е, …) is read as user input. */
const KNOWN_ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function', 'ipython']);
/** Content-part and Responses-item types that carry tool or retrieval output, whatever the message's role. */
const UNTRUSTED_PARTS = new Set([
  'tool_result',
  'function_call_output',
  'custom_tool_call_output',
  'computer_call_output',
  'local_shell_call_output',
  'mcp_call',
  'mcp_list_tools',
  'web_search_call',
  'file_search_call',
  'search_result',
  'web_search_tool_result',
]);
/** Binary payloads and URLs the server fetches or decodes as media. */
const BINARY_SKIP = new Set(['url', 'image_url', 'input_audio', 'video_url', 'audio_url', 'file_data']);
/** Keys inside messages that are structure or binary payloads, never text the model reads. */
const MESSAGE_SKIP = new Set([
  'role',
  'type',
  'id',
  'tool_call_id',
  'call_id',
  'tool_use_id',
  'status',
  'signature',
  'cache_control',
  'index',
  'encrypted_content',
  'detail',
  'media_type',
  'mime_type',
  'file_id',
  ...BINARY_SKIP,
]);
/** JSON-schema structure in tool definitions and output schemas: type names and lists of property names. */
const SCHEMA_SKIP = new Set(['type', 'required', '$schema', ...BINARY_SKIP]);
/** Keys under which tool-call arguments live (OpenAI tool_calls / function_call, Anthropic tool_use input). */
const ARGUMENT_KEYS = new Set(['tool_calls', 'function_call', 'arguments']);
/** Request kinds that only ever take JSON: anything else on them is unreadable to the upstream as well. */
const JSON_ONLY = new Set<ApiKind>([
  'openai.chat',
  'openai.completions',
  'openai.embeddings',
  'openai.responses',
  'anthropic.messages',
  'tgi.generate',
  'tgi.generate_stream',
  'tei.embed',
  'pooling',
  'tokenize',
  'vertex',
]);
/** Text beyond this many segments, or nested deeper than MAX_SEGMENT_DEPTH, is scanned as one merged, read-only segment. */
const MAX_SEGMENTS = 4096;
const MAX_SEGMENT_DEPTH = 64;

/** A known inference route: its body is inspected, and one that cannot be read is refused (fail closed). */
export function isInferenceRoute(api: ApiKind): boolean {
  return api !== 'hf.task' && api !== 'passthrough';
}

/** Format characters (zero-width, bidi controls, tags, BOM, soft hyphen), combining marks and Hangul fillers. */
const INVISIBLE = /\p{Cf}|\p{M}|[\u115f\u1160\u3164\uffa0]/gu;

/** Canonical role: NFKC, invisible characters removed, trimmed, lower case; unknown roles count as user input. */
export function canonicalRole(raw: unknown): string {
  if (typeof raw !== 'string') return 'user';
  const r = raw
    .normalize('NFKC')
    .replace(INVISIBLE, '')
    .trim()
    .toLowerCase();
  return KNOWN_ROLES.has(r) ? r : 'user';
}

/**
 * A place in the body as a linked path: walking a deep body costs O(1) per step, and only the places that become
 * segments are turned into a JsonPath.
 */
interface Loc {
  parent: Loc | undefined;
  key: string | number;
  depth: number;
}

function at(parent: Loc | undefined, key: string | number): Loc {
  return { parent, key, depth: (parent?.depth ?? 0) + 1 };
}

function pathOf(loc: Loc | undefined): JsonPath {
  const out: Array<string | number> = [];
  for (let l = loc; l; l = l.parent) out.push(l.key);
  return out.reverse();
}

/**
 * Collects segments in body order. Past MAX_SEGMENTS, or deeper than MAX_SEGMENT_DEPTH, text is merged into one
 * read-only segment: still scanned, never lost, and a redaction there blocks.
 */
class Segments {
  readonly list: Segment[] = [];
  private overflow: string[] = [];
  /** The body nests deeper than Python reads (MAX_JSON_DEPTH). */
  tooDeep = false;

  add(role: string, kind: SegmentKind, loc: Loc | undefined, text: string, trusted = true, readonly = false): void {
    if (text === '') return;
    if (this.list.length < MAX_SEGMENTS - 1 && (loc?.depth ?? 0) <= MAX_SEGMENT_DEPTH) {
      this.list.push({ role, kind, trusted, path: pathOf(loc), text, ...(readonly ? { readonly } : {}) });
    } else this.overflow.push(text);
  }

  /** False (and the body marked too deep) past MAX_JSON_DEPTH: nothing below is walked. */
  within(loc: Loc | undefined): boolean {
    if ((loc?.depth ?? 0) <= MAX_JSON_DEPTH) return true;
    this.tooDeep = true;
    return false;
  }

  done(): Segment[] {
    if (this.overflow.length > 0) {
      this.list.push({ role: 'user', kind: 'parameter', trusted: false, path: ['$overflow'], text: this.overflow.join('\n'), readonly: true });
      this.overflow = [];
    }
    return this.list;
  }
}

interface Walk {
  role: string;
  kind: SegmentKind;
  trusted: boolean;
  /** Also scan object keys (schemas: property names are text a constrained decoder makes the model write). */
  keys?: boolean;
  /** Keys not descended into. */
  skip?: ReadonlySet<string>;
}

/** A data: URL of a non-text media type: an image or audio payload the server decodes, not text the model reads. */
function isMediaDataUrl(s: string): boolean {
  return s.startsWith('data:') && !s.startsWith('data:text/') && /^data:[\w.+-]+\/[\w.+-]+[;,]/.test(s);
}

/** Every string leaf under `value` (iteratively, in document order), each with its path. */
function walkStrings(value: unknown, loc: Loc | undefined, w: Walk, out: Segments): void {
  const keys: string[] = [];
  const stack: Array<[unknown, Loc | undefined]> = [[value, loc]];
  while (stack.length > 0) {
    const [v, l] = stack.pop()!;
    if (typeof v === 'string') {
      if (!isMediaDataUrl(v)) out.add(w.role, w.kind, l, v, w.trusted);
    } else if (!out.within(l)) continue;
    else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], at(l, i)]);
    } else if (isObject(v)) {
      // An Anthropic base64 source carries an image or PDF, not text.
      if (v.type === 'base64' && typeof v.data === 'string') continue;
      const ks = Object.keys(v);
      if (w.keys) keys.push(...ks);
      for (let i = ks.length - 1; i >= 0; i--) if (!w.skip?.has(ks[i])) stack.push([v[ks[i]], at(l, ks[i])]);
    }
  }
  if (keys.length > 0) out.add(w.role, w.kind, at(loc, '$keys'), keys.join('\n'), w.trusted, true);
}

/**
 * Chat messages, Responses items, Anthropic content blocks, and batches of them (arrays of arrays). Every string
 * of a message is text the model reads (content in any shape, name, reasoning, tool-call arguments), except
 * structure and binary payloads. The role decides trust; parts that carry tool output are untrusted whatever
 * the role.
 */
function messageSegments(messages: unknown, loc: Loc | undefined, out: Segments, textKind: SegmentKind = 'message'): void {
  if (typeof messages === 'string') return out.add('user', textKind, loc, messages);
  if (isObject(messages)) return messageObject(messages, loc, out);
  const stack: Array<[unknown, Loc | undefined]> = [[messages, loc]];
  while (stack.length > 0) {
    const [m, l] = stack.pop()!;
    if (typeof m === 'string') out.add('user', textKind, l, m);
    else if (!out.within(l)) continue;
    else if (Array.isArray(m)) for (let i = m.length - 1; i >= 0; i--) stack.push([m[i], at(l, i)]);
    else if (isObject(m)) messageObject(m, l, out);
  }
}

function messageObject(m: Obj, loc: Loc | undefined, out: Segments): void {
  const type = typeof m.type === 'string' ? m.type : '';
  let role = 'role' in m ? canonicalRole(m.role) : type === 'function_call' || type === 'reasoning' || type === 'custom_tool_call' ? 'assistant' : 'user';
  if (UNTRUSTED_PARTS.has(type)) role = 'tool';
  const untrusted = UNTRUSTED_ROLES.has(role);
  for (const key of Object.keys(m)) {
    if (MESSAGE_SKIP.has(key)) continue;
    const value = m[key];
    const l = at(loc, key);
    if (key === 'content' && Array.isArray(value)) contentParts(value, l, role, out);
    else if (ARGUMENT_KEYS.has(key) || (key === 'input' && type === 'tool_use')) {
      walkStrings(value, l, { role, kind: 'tool_arguments', trusted: !untrusted, skip: MESSAGE_SKIP }, out);
    } else walkStrings(value, l, { role, kind: untrusted ? 'tool_result' : 'message', trusted: !untrusted, skip: MESSAGE_SKIP }, out);
  }
}

/** Content parts nest (a tool result holding parts) this deep before the rest is walked as plain text. */
const MAX_PART_NESTING = 16;

/** Content parts: bare strings, {type: text | input_text | output_text | refusal | thinking | reasoning …}, tool results. */
function contentParts(parts: unknown[], loc: Loc, role: string, out: Segments, nesting = 0): void {
  parts.forEach((part, j) => {
    const l = at(loc, j);
    const type = isObject(part) && typeof part.type === 'string' ? part.type : '';
    const partRole = UNTRUSTED_PARTS.has(type) ? 'tool' : role;
    const untrusted = UNTRUSTED_ROLES.has(partRole);
    const text: Walk = { role: partRole, kind: untrusted ? 'tool_result' : 'message', trusted: !untrusted, skip: MESSAGE_SKIP };
    if (isObject(part) && (type === 'tool_use' || type === 'function_call')) {
      walkStrings(part, l, { role: partRole, kind: 'tool_arguments', trusted: true, skip: MESSAGE_SKIP }, out);
    } else if (isObject(part) && Array.isArray(part.content) && nesting < MAX_PART_NESTING) {
      for (const key of Object.keys(part)) {
        if (MESSAGE_SKIP.has(key)) continue;
        if (key === 'content') contentParts(part.content as unknown[], at(l, key), partRole, out, nesting + 1);
        else walkStrings(part[key], at(l, key), text, out);
      }
    } else walkStrings(part, l, text, out);
  });
}

type FieldHandler = (value: unknown, loc: Loc, api: ApiKind, out: Segments) => void;

const userText =
  (kind: SegmentKind): FieldHandler =>
  (v, l, _api, out) =>
    walkStrings(v, l, { role: 'user', kind, trusted: true, skip: BINARY_SKIP }, out);
const systemText: FieldHandler = (v, l, _api, out) => walkStrings(v, l, { role: 'system', kind: 'message', trusted: true, skip: MESSAGE_SKIP }, out);
const toolDefinitions: FieldHandler = (v, l, _api, out) => walkStrings(v, l, { role: 'tool', kind: 'tool_definition', trusted: true, keys: true, skip: SCHEMA_SKIP }, out);
const schema: FieldHandler = (v, l, _api, out) => walkStrings(v, l, { role: 'tool', kind: 'schema', trusted: true, keys: true, skip: SCHEMA_SKIP }, out);
const template: FieldHandler = (v, l, _api, out) => walkStrings(v, l, { role: 'system', kind: 'template', trusted: true, keys: true }, out);
/** Models that score or embed text rather than follow it: what they read is input, not context to obey. */
const SCORING = new Set<ApiKind>(['openai.embeddings', 'tei.embed', 'pooling', 'tokenize']);
/** Retrieved documents: untrusted context for a generating model (indirect injection), plain input to a reranker. */
const documents: FieldHandler = (v, l, api, out) =>
  walkStrings(v, l, SCORING.has(api) ? { role: 'user', kind: 'document', trusted: true, skip: MESSAGE_SKIP } : { role: 'tool', kind: 'document', trusted: false, skip: MESSAGE_SKIP }, out);

/**
 * Top-level (or nested, see bodySegments) request fields that carry text the model reads, across TGI, vLLM,
 * TEI, SGLang, the OpenAI Chat/Completions/Responses/Embeddings APIs, Anthropic Messages and HF task payloads.
 */
const FIELDS: Readonly<Record<string, FieldHandler>> = {
  messages: (v, l, _api, out) => messageSegments(v, l, out),
  chat_history: (v, l, _api, out) => messageSegments(v, l, out),
  conversation: (v, l, _api, out) => messageSegments(v, l, out),
  input: (v, l, api, out) => messageSegments(v, l, out, api === 'openai.responses' ? 'message' : 'inputs'),
  inputs: userText('inputs'),
  prompt: userText('prompt'),
  prompts: userText('prompt'),
  suffix: userText('prompt'),
  message: userText('message'),
  text: (v, l, api, out) => (isObject(v) ? schema(v, l, api, out) : userText('inputs')(v, l, api, out)),
  texts: userText('inputs'),
  text_1: userText('inputs'),
  text_2: userText('inputs'),
  data_1: userText('inputs'),
  data_2: userText('inputs'),
  query: userText('inputs'),
  queries: userText('inputs'),
  question: userText('inputs'),
  context: userText('inputs'),
  sentences: userText('inputs'),
  source_sentence: userText('inputs'),
  content: userText('message'),
  instructions: systemText,
  system: systemText,
  system_prompt: systemText,
  preamble: systemText,
  documents,
  tools: toolDefinitions,
  functions: toolDefinitions,
  tool_choice: toolDefinitions,
  tool_prompt: toolDefinitions,
  response_format: schema,
  guided_json: schema,
  guided_regex: schema,
  guided_choice: schema,
  guided_grammar: schema,
  structured_outputs: schema,
  grammar: schema,
  json_schema: schema,
  chat_template: template,
  chat_template_kwargs: template,
  candidate_labels: userText('parameter'),
  hypothesis_template: userText('parameter'),
};

/** The handler of a text field; names compare case-insensitively (a lenient handler may read `Messages`). */
function fieldHandler(key: string): FieldHandler | undefined {
  if (Object.prototype.hasOwnProperty.call(FIELDS, key)) return FIELDS[key];
  const lower = key.toLowerCase();
  return lower !== key && Object.prototype.hasOwnProperty.call(FIELDS, lower) ? FIELDS[lower] : undefined;
}

/**
 * Text fields found at any depth: a known field's whole value is taken by its handler; any other object or
 * array is searched for known fields below it (custom wrappers, Vertex `instances`, batches). Iterative.
 */
function bodySegments(root: unknown, api: ApiKind, out: Segments): void {
  const stack: Array<[unknown, Loc | undefined]> = [[root, undefined]];
  while (stack.length > 0) {
    const [v, l] = stack.pop()!;
    if (!out.within(l)) continue;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) if (v[i] !== null && typeof v[i] === 'object') stack.push([v[i], at(l, i)]);
    } else if (isObject(v)) {
      const later: Array<[unknown, Loc]> = [];
      for (const k of Object.keys(v)) {
        const handler = fieldHandler(k);
        if (handler) handler(v[k], at(l, k), api, out);
        else if (v[k] !== null && typeof v[k] === 'object') later.push([v[k], at(l, k)]);
      }
      for (let i = later.length - 1; i >= 0; i--) stack.push(later[i]);
    }
  }
}

function positiveNumber(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

/** SageMaker /invocations and bare objects: TGI and vLLM pick the handler by the body's shape. */
function refineByShape(api: ApiKind, json: Obj): ApiKind {
  if (api !== 'invocations') return api;
  if ('messages' in json) return 'openai.chat';
  if ('prompt' in json) return 'openai.completions';
  if ('inputs' in json) return 'tgi.compat';
  if ('input' in json) return 'openai.embeddings';
  return api;
}

/** What one read of the body found; kept beside the exchange for writing edits back. */
interface BodyRecord {
  format: BodyFormat;
  /** Decoded text for json (when not plain UTF-8 or parsed leniently), text and form bodies. */
  text?: string;
  /** Python-style encoding the JSON text was decoded from. */
  encoding?: string;
  form?: Array<[string, string]>;
}

const records = new WeakMap<Exchange, BodyRecord>();

const MEDIA_TYPE = /^(?:image|audio|video)\/|^application\/(?:octet-stream|pdf|zip|gzip|x-tar|x-protobuf|vnd\.)/;
/** Magic numbers of media a model endpoint takes as raw bytes (images, audio, video, PDF, archives). */
const MAGIC: ReadonlyArray<readonly number[]> = [
  [0x89, 0x50, 0x4e, 0x47], // PNG
  [0xff, 0xd8, 0xff], // JPEG
  [0x47, 0x49, 0x46, 0x38], // GIF
  [0x52, 0x49, 0x46, 0x46], // RIFF (WAV, WEBP, AVI)
  [0x49, 0x44, 0x33], // ID3 (MP3)
  [0xff, 0xfb],
  [0x66, 0x4c, 0x61, 0x43], // FLAC
  [0x4f, 0x67, 0x67, 0x53], // OGG
  [0x1a, 0x45, 0xdf, 0xa3], // Matroska / WebM
  [0x25, 0x50, 0x44, 0x46], // PDF
  [0x50, 0x4b, 0x03, 0x04], // ZIP
  [0x42, 0x4d], // BMP
  [0x49, 0x49, 0x2a, 0x00], // TIFF
  [0x4d, 0x4d, 0x00, 0x2a],
];

function isMedia(body: Buffer, mediaType: string): boolean {
  if (MEDIA_TYPE.test(mediaType) && mediaType !== 'application/octet-stream') return true;
  if (body.length >= 12 && body.toString('latin1', 4, 8) === 'ftyp') return true; // MP4 / MOV / HEIC
  return MAGIC.some((m) => m.every((b, i) => body[i] === b));
}

function mediaTypeOf(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

/** First non-whitespace byte (skipping BOMs and the zero bytes of UTF-16/32) opens a JSON array or object. */
function looksLikeJson(body: Buffer): boolean {
  for (let i = 0; i < Math.min(body.length, 64); i++) {
    const c = body[i];
    if (c === 0x7b || c === 0x5b) return true;
    if (!(c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0 || c === 0xef || c === 0xbb || c === 0xbf || c === 0xfe || c === 0xff)) return false;
  }
  return false;
}

/** `application/x-www-form-urlencoded` as WHATWG/Starlette parse it: '+' is a space, escapes are UTF-8. */
function parseForm(text: string): Array<[string, string]> {
  return [...new URLSearchParams(text)];
}

interface MultipartField {
  name: string;
  filename?: string;
  type: string;
  text?: string;
}

/** The fields of a multipart/form-data body; file parts keep their text only when they are text. */
function parseMultipart(body: Buffer, contentType: string): MultipartField[] | undefined {
  // Exactly one boundary parameter: with two, parsers that take the first and parsers that take the last read
  // different parts.
  const params = [...contentType.matchAll(/(?:^|;)\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/gi)];
  if (params.length !== 1) return undefined;
  const boundary = params[0][1] ?? params[0][2];
  const delimiter = Buffer.from(`--${boundary}`);
  const fields: MultipartField[] = [];
  let at = body.indexOf(delimiter);
  if (at === -1) return undefined;
  for (;;) {
    at += delimiter.length;
    if (body[at] === 0x2d && body[at + 1] === 0x2d) break; // closing delimiter
    const headEnd = body.indexOf('\r\n\r\n', at);
    if (headEnd === -1) return undefined;
    const next = body.indexOf(delimiter, headEnd + 4);
    if (next === -1) return undefined;
    const head = body.toString('latin1', at, headEnd);
    const content = body.subarray(headEnd + 4, body[next - 2] === 0x0d ? next - 2 : next);
    const disposition = /content-disposition:[^\r\n]*/i.exec(head)?.[0] ?? '';
    const name = /\bname="([^"]*)"/i.exec(disposition)?.[1] ?? '';
    const filename = /\bfilename="([^"]*)"/i.exec(disposition)?.[1];
    const type = (/content-type:\s*([^\r\n;]+)/i.exec(head)?.[1] ?? (filename === undefined ? 'text/plain' : 'application/octet-stream')).trim().toLowerCase();
    // Text is text whatever the part declares: frameworks hand a part without a filename to the app as a string, and
    // an agent reads the text of an uploaded file. Media (by magic number) has no text; a part that says it is text
    // but is no UTF-8 cannot be read.
    // A transfer encoding (base64, quoted-printable) some parsers undo and the guardrails would not.
    const transfer = /content-transfer-encoding:\s*([^\r\n;\s]+)/i.exec(head)?.[1].toLowerCase();
    if (transfer !== undefined && !['7bit', '8bit', 'binary'].includes(transfer)) return undefined;
    const declaredText = type.startsWith('text/') || type.includes('json') || (filename === undefined && !MEDIA_TYPE.test(type));
    if (isMedia(content, '')) fields.push({ name, filename, type });
    else if (isUtf8(content)) fields.push({ name, filename, type, text: content.toString('utf8') });
    else if (declaredText) return undefined;
    else fields.push({ name, filename, type });
    at = next;
  }
  return fields;
}

function empty(api: ApiKind, format: BodyFormat, parseError?: string): ParsedRequest {
  return { api, format, stream: false, input: [], ...(parseError ? { parseError } : {}) };
}

/**
 * Parses an inference request body once into the neutral form, deciding by what the upstream would parse rather
 * than by the declared type: JSON first (as Python reads it: BOM, UTF-16/32, NaN), then form, multipart and plain
 * text, which are scanned as text. Never throws. On a known inference route a body that cannot be read gets
 * parseError (the guardrails refuse it, fail closed); on other routes it passes unparsed ('passthrough').
 */
export function parseRequest(api: ApiKind, body: Buffer, contentType: string | undefined): ParsedRequest {
  return readRequest(api, body, contentType).parsed;
}

/**
 * The text of a JSON body on a route that is no inference API (the agent's own API behind the inbound listener):
 * which strings it selects. Such a route reads its body the same way (JSON as Python reads it, form, multipart,
 * text; unreadable bodies are refused), but an empty or media body is no error there: it has no text.
 */
export type JsonTextSelector = (json: unknown) => { texts: ReadonlyArray<{ path: JsonPath; text: string }>; keys: readonly string[]; tooDeep: boolean };

function readRequest(api: ApiKind, body: Buffer, contentType: string | undefined, select?: JsonTextSelector): { parsed: ParsedRequest; record: BodyRecord } {
  const other = isInferenceRoute(api) ? api : 'passthrough';
  if (api === 'passthrough') return { parsed: empty(api, 'binary'), record: { format: 'binary' } };
  if (body.length === 0) return { parsed: empty(select ? api : other, 'empty', isInferenceRoute(api) && !select ? 'empty body' : undefined), record: { format: 'empty' } };
  const mediaType = mediaTypeOf(contentType);

  let json: unknown;
  let record: BodyRecord | undefined;
  let jsonError: string | undefined;
  if (isUtf8(body)) {
    try {
      json = JSON.parse(body.toString('utf8'));
      record = { format: 'json', encoding: 'utf-8' };
    } catch {
      // Python may still read it (NaN, Infinity): the lenient parser below decides.
    }
  }
  if (!record) {
    try {
      const decoded = decodeJsonBytes(body);
      json = parsePythonJson(decoded.text);
      record = { format: 'json', text: decoded.text, encoding: decoded.encoding };
    } catch (err) {
      jsonError = err instanceof Error ? err.message : 'malformed JSON';
    }
  }
  if (record) return { parsed: select ? fromSelection(api, json, record, select) : fromJson(api, json, record), record };

  if (select && isMedia(body, mediaType)) return { parsed: empty(api, 'binary'), record: { format: 'binary' } };
  if (isMedia(body, mediaType)) {
    const error = JSON_ONLY.has(api) ? `a ${mediaType || 'binary'} body on a JSON route` : undefined;
    return { parsed: empty(error ? api : 'passthrough', 'binary', error), record: { format: 'binary' } };
  }
  const declaredJson = mediaType === 'application/json' || mediaType.endsWith('+json');
  if (declaredJson || (looksLikeJson(body) && !mediaType.startsWith('text/') && mediaType !== 'application/x-www-form-urlencoded')) {
    return { parsed: empty(other, 'unreadable', jsonError), record: { format: 'unreadable' } };
  }
  const out = new Segments();
  if (mediaType === 'multipart/form-data') {
    const fields = parseMultipart(body, contentType ?? '');
    if (!fields) return { parsed: empty(other, 'unreadable', 'malformed multipart body'), record: { format: 'unreadable' } };
    fields.forEach((f, i) => {
      if (f.text !== undefined) out.add('user', 'inputs', at(at(undefined, '$multipart'), i), f.text, true, true);
    });
    return { parsed: textRequest(api, 'multipart', out), record: { format: 'multipart' } };
  }
  let text: string;
  try {
    text = decodeUtf8(body);
  } catch {
    // Bytes declared as bytes (an upload to the agent's own API) are read as bytes, as the app reads them.
    if (select && mediaType === 'application/octet-stream') return { parsed: empty(api, 'binary'), record: { format: 'binary' } };
    return { parsed: empty(other, 'unreadable', 'body is neither JSON nor UTF-8 text'), record: { format: 'unreadable' } };
  }
  if (mediaType === 'application/x-www-form-urlencoded') {
    const form = parseForm(text);
    form.forEach(([, value], i) => out.add('user', 'inputs', at(at(undefined, '$form'), i), value));
    return { parsed: textRequest(api, 'form', out), record: { format: 'form', text, form } };
  }
  out.add('user', 'inputs', at(undefined, '$text'), text);
  return { parsed: textRequest(api, 'text', out), record: { format: 'text', text } };
}

/** A JSON body read through a selector: every selected string is user input; object keys are read-only text. */
function fromSelection(api: ApiKind, json: unknown, record: BodyRecord, select: JsonTextSelector): ParsedRequest {
  const out = new Segments();
  const selected = select(json);
  for (const t of selected.texts) out.add('user', 'inputs', locOf(t.path), t.text);
  if (selected.keys.length > 0) out.add('user', 'inputs', at(undefined, '$keys'), selected.keys.join('\n'), true, true);
  const input = out.done();
  const parseError = selected.tooDeep ? `nesting deeper than ${MAX_JSON_DEPTH} levels` : undefined;
  return { api, format: record.format, json, stream: false, input, ...(parseError ? { parseError } : {}) };
}

function locOf(path: JsonPath): Loc | undefined {
  let loc: Loc | undefined;
  for (const key of path) loc = at(loc, key);
  return loc;
}

function textRequest(api: ApiKind, format: BodyFormat, out: Segments): ParsedRequest {
  return { api, format, stream: false, input: out.done() };
}

function fromJson(api: ApiKind, json: unknown, record: BodyRecord): ParsedRequest {
  const out = new Segments();
  const refined = isObject(json) ? refineByShape(api, json) : api;
  if (typeof json === 'string') out.add('user', 'inputs', undefined, json);
  else bodySegments(json, refined, out);
  const input = out.done();
  if (out.tooDeep) return { api: isInferenceRoute(api) ? api : 'passthrough', format: record.format, json, stream: false, input, parseError: `nesting deeper than ${MAX_JSON_DEPTH} levels` };
  if (!isObject(json)) {
    if (!isInferenceRoute(api)) return { api: input.length > 0 ? api : 'passthrough', format: record.format, json, stream: false, input };
    return { api, format: record.format, json, stream: false, input, parseError: 'expected a JSON object' };
  }
  if (api === 'hf.task' && input.length === 0) return { api: 'passthrough', format: record.format, json, stream: false, input };
  const params = isObject(json.parameters) ? json.parameters : undefined;
  const model = typeof json.model === 'string' ? json.model : undefined;
  const streamable = refined !== 'tgi.generate' && refined !== 'openai.embeddings' && refined !== 'tei.embed' && refined !== 'pooling' && refined !== 'tokenize';
  return {
    api: refined,
    format: record.format,
    json,
    model,
    stream: refined === 'tgi.generate_stream' || (streamable && json.stream === true),
    maxTokens: positiveNumber(json.max_tokens ?? json.max_completion_tokens ?? json.max_output_tokens ?? params?.max_new_tokens),
    input,
  };
}

/** The JSON text of a body, decoded the way it was parsed. */
function jsonText(ex: Exchange, record: BodyRecord): string {
  return record.text ?? ex.requestBody.toString('utf8');
}

/**
 * The bytes to forward: the original ones unless a segment was edited. Edits are spliced into the body text at
 * the exact place each string was read from, so every other byte (numbers, NaN, key order, duplicate keys,
 * formatting) stays as the upstream would have read it; the result is UTF-8.
 */
export function serializeRequest(ex: Exchange): Buffer {
  const record = records.get(ex);
  const edited = ex.input.filter((s) => s.edited && !s.readonly && s.path[0] !== QUERY);
  if (!record || edited.length === 0) return ex.requestBody;
  switch (record.format) {
    case 'json': {
      const text = jsonText(ex, record);
      const spans = locateStrings(text, edited.map((s) => s.path));
      const edits = edited
        .map((s, i) => {
          const span = spans[i];
          // Every editable segment is a string of the parsed tree; a missing one is a bug, never a silent skip.
          if (!span) throw new Error(`edited request segment has no place in the body (${s.path.length} steps)`);
          return { s, span };
        })
        .sort((a, b) => b.span[0] - a.span[0]);
      let out = text;
      for (const { s, span } of edits) {
        out = out.slice(0, span[0]) + JSON.stringify(s.text) + out.slice(span[1]);
        if (ex.requestJson !== undefined) setAtPath(ex.requestJson, s.path, s.text);
      }
      return encodeUtf8(out);
    }
    case 'text':
      return encodeUtf8(edited[0].text);
    case 'form': {
      const form = record.form!.map(([k, v]) => [k, v] as [string, string]);
      for (const s of edited) form[s.path[1] as number][1] = s.text;
      return Buffer.from(new URLSearchParams(form).toString(), 'utf8');
    }
    default:
      return ex.requestBody;
  }
}

/** Content-Type for a re-serialized body: an explicit non-UTF-8 charset would now be wrong. */
export function utf8ContentType(contentType: string | undefined): string | undefined {
  if (contentType === undefined || !/;\s*charset=/i.test(contentType)) return contentType;
  return contentType.replace(/(;\s*charset=)("?)[^;"]*\2/i, '$1utf-8');
}

/**
 * Puts the request body into the exchange, parsed once. The server and the tests fill an Exchange this way.
 * `unreadable` says why the bytes could not even be decoded (an unknown or corrupt Content-Encoding).
 */
export function attachRequestBody(ex: Exchange, body: Buffer, contentType: string | undefined, unreadable?: string, select?: JsonTextSelector): void {
  const { parsed, record } =
    unreadable === undefined
      ? readRequest(ex.api, body, contentType, select)
      : { parsed: empty(isInferenceRoute(ex.api) ? ex.api : 'passthrough', 'unreadable', unreadable), record: { format: 'unreadable' as const } };
  records.set(ex, record);
  ex.requestBody = body;
  ex.api = parsed.api;
  ex.requestJson = parsed.json;
  ex.parseError = parsed.parseError;
  ex.model = parsed.model;
  ex.stream = parsed.stream;
  ex.maxTokens = parsed.maxTokens;
  ex.input = parsed.input;
  ex.notes.body = { ...ex.notes.body, format: parsed.format, ...(record.encoding && record.encoding !== 'utf-8' ? { encoding: record.encoding } : {}) };
}
