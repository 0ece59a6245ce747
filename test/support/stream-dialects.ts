/**
 * The four ways a model's text reaches a client, streamed and whole, byte for byte as the servers write them:
 * OpenAI chat content deltas (vLLM framing, `data: `), completions text (TGI framing, `data:` and `""` finish
 * reasons), tool-call argument deltas, and TGI native token events. Used by the stream parity test, the
 * stream-lag benchmark and the response bypass evaluation.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SseParser } from '../../proxy/protocols/sse';
import { isObject } from '../../common/json';

export type StreamDialect = 'chat' | 'completions' | 'tool' | 'tgi';
export const STREAM_DIALECTS: readonly StreamDialect[] = ['chat', 'completions', 'tool', 'tgi'];

type Obj = Record<string, unknown>;

const CREATED = 1741266005;
const CHAT_HEAD = { id: 'chatcmpl-parity', object: 'chat.completion.chunk', created: CREATED, model: 'stub/model' };
const COMPLETION_HEAD = { object: 'text_completion', id: '', created: CREATED, model: 'stub/model', system_fingerprint: '3.3.6-native' };
const TOOL = { name: 'run_task' };

/** Route and request body a client of this dialect sends. */
export function dialectRequest(d: StreamDialect, stream: boolean): { path: string; body: Obj } {
  switch (d) {
    case 'chat':
      return { path: '/v1/chat/completions', body: { model: 'tgi', stream, messages: [{ role: 'user', content: 'Answer the question.' }] } };
    case 'tool':
      return {
        path: '/v1/chat/completions',
        body: { model: 'tgi', stream, messages: [{ role: 'user', content: 'Run it.' }], tools: [{ type: 'function', function: { name: TOOL.name, parameters: {} } }] },
      };
    case 'completions':
      return { path: '/v1/completions', body: { model: 'tgi', stream, prompt: 'Answer the question.' } };
    case 'tgi':
      return { path: stream ? '/generate_stream' : '/generate', body: { inputs: 'Answer the question.', parameters: { max_new_tokens: 200 } } };
  }
}

function event(data: Obj | string, space: boolean): string {
  return `data:${space ? ' ' : ''}${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

/** The SSE events an upstream of this dialect sends for `pieces` (one text piece per event, then the end). */
export function dialectEvents(d: StreamDialect, pieces: readonly string[]): string[] {
  const out: string[] = [];
  switch (d) {
    case 'chat':
      out.push(event({ ...CHAT_HEAD, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] }, true));
      for (const content of pieces) out.push(event({ ...CHAT_HEAD, choices: [{ index: 0, delta: { content }, logprobs: null, finish_reason: null }] }, true));
      out.push(event({ ...CHAT_HEAD, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] }, true), event('[DONE]', true));
      return out;
    case 'tool':
      pieces.forEach((args, i) =>
        out.push(
          event(
            {
              ...CHAT_HEAD,
              choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: i === 0 ? TOOL.name : null, arguments: args } }] }, logprobs: null, finish_reason: null }],
            },
            true,
          ),
        ),
      );
      out.push(event({ ...CHAT_HEAD, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'tool_calls' }] }, true), event('[DONE]', true));
      return out;
    case 'completions':
      for (const text of pieces) out.push(event({ ...COMPLETION_HEAD, choices: [{ index: 0, text, logprobs: null, finish_reason: '' }] }, false));
      out.push(event({ ...COMPLETION_HEAD, choices: [{ index: 0, text: '', logprobs: null, finish_reason: 'eos_token' }] }, false), event('[DONE]', false));
      return out;
    case 'tgi':
      pieces.forEach((text, i) => out.push(event({ index: i + 1, token: { id: 1000 + i, text, logprob: -0.25, special: false }, generated_text: null, details: null }, false)));
      out.push(
        event(
          { index: pieces.length + 1, token: { id: 2, text: '</s>', logprob: 0, special: true }, generated_text: pieces.join(''), details: { finish_reason: 'eos_token', generated_tokens: pieces.length + 1, seed: null, input_length: 3 } },
          false,
        ),
      );
      return out;
  }
}

/** The complete (non-streamed) response body of this dialect carrying `text`. */
export function dialectBody(d: StreamDialect, text: string): Buffer {
  const head = { id: 'chatcmpl-parity', object: 'chat.completion', created: CREATED, model: 'stub/model' };
  let body: unknown;
  switch (d) {
    case 'chat':
      body = { ...head, choices: [{ index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: 'stop' }] };
      break;
    case 'tool':
      body = {
        ...head,
        choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: TOOL.name, arguments: text } }] }, logprobs: null, finish_reason: 'tool_calls' }],
      };
      break;
    case 'completions':
      body = { ...COMPLETION_HEAD, choices: [{ index: 0, text, logprobs: null, finish_reason: 'stop' }] };
      break;
    case 'tgi':
      body = { generated_text: text };
      break;
  }
  return Buffer.from(JSON.stringify(body));
}

/** The text of one parsed event or body of this dialect, and whether a guardrail ended it. */
function textOf(d: StreamDialect, obj: Obj, streamed: boolean): { text: string; filtered: boolean } {
  if ('error' in obj) return { text: '', filtered: true };
  if (d === 'tgi') {
    if (!streamed) return { text: typeof obj.generated_text === 'string' ? obj.generated_text : '', filtered: false };
    const token = isObject(obj.token) ? obj.token : undefined;
    const details = isObject(obj.details) ? obj.details : undefined;
    return { text: token && token.special !== true && typeof token.text === 'string' ? token.text : '', filtered: details?.finish_reason === 'content_filter' };
  }
  let text = '';
  let filtered = false;
  for (const c of Array.isArray(obj.choices) ? obj.choices : []) {
    if (!isObject(c)) continue;
    if (c.finish_reason === 'content_filter') filtered = true;
    const m = isObject(c.delta) ? c.delta : isObject(c.message) ? c.message : undefined;
    if (d === 'completions') text += typeof c.text === 'string' ? c.text : '';
    else if (d === 'chat') text += typeof m?.content === 'string' ? m.content : '';
    else for (const t of Array.isArray(m?.tool_calls) ? m.tool_calls : []) if (isObject(t) && isObject(t.function) && typeof t.function.arguments === 'string') text += t.function.arguments;
  }
  return { text, filtered };
}

/** What a client reads from a streamed response of this dialect: the text, and whether a guardrail cut it. */
export function readStream(d: StreamDialect, sse: string | Buffer): { text: string; filtered: boolean } {
  let text = '';
  let filtered = false;
  const parser = new SseParser({
    event: (ev) => {
      if (!ev.hasData || ev.data === '[DONE]') return;
      const r = textOf(d, JSON.parse(ev.data) as Obj, true);
      text += r.text;
      filtered ||= r.filtered;
    },
    comment: () => undefined,
  });
  parser.push(Buffer.isBuffer(sse) ? sse : Buffer.from(sse));
  parser.end();
  return { text, filtered };
}

/** What a client reads from a complete response of this dialect. */
export function readBody(d: StreamDialect, body: Buffer): { text: string; filtered: boolean } {
  const json = JSON.parse(body.toString('utf8')) as unknown;
  return textOf(d, (Array.isArray(json) ? json[0] : json) as Obj, false);
}

/** Splits `text` at the given offsets (sorted, deduplicated, inside the text). */
export function splitAt(text: string, cuts: readonly number[]): string[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < text.length))].sort((a, b) => a - b);
  const out: string[] = [];
  let last = 0;
  for (const p of [...points, text.length]) {
    out.push(text.slice(last, p));
    last = p;
  }
  return out.filter((p) => p !== '');
}

/** Deterministic pseudo-random pieces of 1–12 characters, so a failure can be reproduced from its seed. */
export function randomPieces(text: string, seed: number): string[] {
  let x = seed;
  const cuts: number[] = [];
  for (let at = 0; at < text.length; ) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    at += 1 + (x % 12);
    cuts.push(at);
  }
  return splitAt(text, cuts);
}

/** A file under test/data, from the sources (ts-jest) or from dist (node). */
export function dataFile(name: string): string {
  return [join(__dirname, '../data', name), join(__dirname, '../../../test/data', name)].find((f) => existsSync(f)) ?? join(__dirname, '../data', name);
}

/** One answer of the stream corpus (test/data/stream-corpus.jsonl). */
export interface CorpusAnswer {
  id: string;
  family: string;
  text: string;
}

export function loadStreamCorpus(): CorpusAnswer[] {
  return readFileSync(dataFile('stream-corpus.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as CorpusAnswer);
}

/**
 * Custom response rules the stream tests and the bypass evaluation share (YAML list items under
 * guardrails.rules): a regex rule with project codes, codenames (a context word in the match) and employee
 * numbers, and a keyword rule with multi-word phrases.
 */
export const CUSTOM_RESPONSE_RULES = `
    - id: codes
      detector: regex
      stage: response
      action: redact
      patterns:
        - {id: PROJECT_CODE, pattern: 'PROJ-[0-9]{4}'}
        - {id: CODENAME, pattern: 'codename\\s+[a-z]+', case_insensitive: true}
        - {id: EMPLOYEE, pattern: '\\bEMP[0-9]{6}\\b'}
    - {id: topics, detector: keywords, stage: response, action: redact, keywords: ['insider trading', 'project falcon', 'blue harvest']}
`;
