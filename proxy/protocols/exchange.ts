import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Which wire API a request speaks. Decided from method, path and body (see routes.ts). */
export type ApiKind =
  | 'tgi.compat' // POST /  {inputs, parameters, stream?}; non-stream answer is an array
  | 'tgi.generate' // POST /generate
  | 'tgi.generate_stream' // POST /generate_stream
  | 'openai.chat' // POST /v1/chat/completions
  | 'openai.completions' // POST /v1/completions
  | 'openai.embeddings' // POST /v1/embeddings
  | 'openai.responses' // POST /v1/responses (OpenAI Responses API)
  | 'anthropic.messages' // POST /v1/messages (vLLM's Anthropic-compatible route)
  | 'tei.embed' // POST /embed (and /rerank, /predict, /similarity on TEI)
  | 'pooling' // vLLM /pooling, /classify, /score, /v1|v2/rerank, /v2/embed
  | 'tokenize' // /tokenize, /detokenize, TGI /chat_tokenize, TEI /decode
  | 'invocations' // SageMaker /invocations whose body matched no known shape (chat, completion, TGI are refined)
  | 'vertex' // TGI /vertex {instances}
  | 'hf.task' // any other POST: toolkit, custom handlers; JSON text fields scanned generically
  | 'inbound' // an end user's call to the agent's own API (the inbound listener): fields per the policy's inbound section
  | 'passthrough'; // everything else: forwarded unparsed, still traced

/** Which listener took the request: the agent's calls out (egress) or end users' calls to the agent's own API (inbound). */
export type Direction = 'egress' | 'inbound';

/** The shape errors must take so the client's SDK shows them well. */
export type ErrorDialect = 'openai' | 'tgi';

/** RFC 6901-style location of a value inside a parsed JSON body. */
export type JsonPath = ReadonlyArray<string | number>;

export type SegmentKind =
  | 'message' // chat message content (string or a text part)
  | 'tool_arguments' // function-call arguments (request history or response)
  | 'tool_result' // role "tool"/"function" message content
  | 'prompt' // /v1/completions prompt
  | 'inputs' // TGI / HF task inputs, TEI inputs, embeddings input, text/form/multipart bodies
  | 'document' // retrieved documents (vLLM `documents`, rerank passages): untrusted
  | 'tool_definition' // tools[] / functions[] descriptions and parameter schemas, tool_choice
  | 'schema' // response_format, guided_*, structured_outputs, TGI grammar, Responses text.format
  | 'template' // chat_template and chat_template_kwargs (vLLM renders them)
  | 'parameter' // other text parameters the model reads (zero-shot candidate_labels, …)
  | 'completion' // generated text in a response
  | 'reasoning' // a response's reasoning text (reasoning_content, reasoning, Responses API reasoning items)
  | 'refusal' // a response's refusal text
  | 'tool_name' // a function name the model chose
  | 'transcript' // the transcript of a response's audio
  | 'error' // the message of an upstream error the client receives
  | 'token_list'; // the tokens of a logprobs / top-tokens list, one segment per rank: nulled when it had a finding

/** One piece of text in a request or response, with the exact place it came from. */
export interface Segment {
  /** Message role ("system", "user", "assistant", "tool", ...); "user" for bare prompts, "assistant" for output. */
  role: string;
  kind: SegmentKind;
  /** False for text the user did not write: tool results and retrieved content (indirect injection). */
  trusted: boolean;
  path: JsonPath;
  /** Choice index for response segments. */
  choice?: number;
  /**
   * Response segments: the JSON location of the choice or item the text belongs to, which a response-stage block
   * empties ([] for the whole body).
   */
  unit?: JsonPath;
  /** Response segments: a blocking rule matched in this text (set by guardrails). */
  blocked?: boolean;
  text: string;
  /** Set by editSegment; tells the server the body must be re-serialized. */
  edited?: boolean;
  /**
   * Text that cannot be written back (object keys, multipart fields, the merged overflow of a huge body):
   * a redaction there blocks instead.
   */
  readonly?: boolean;
}

export interface Usage {
  promptTokens?: number;
  completionTokens?: number;
  totalTokens?: number;
  /** Where the numbers came from. */
  source: 'response' | 'headers' | 'stream' | 'counted';
}

/** How an exchange ended, for logs, metrics and traces. */
export type Outcome =
  | 'ok' // the upstream answered (any status) and the client got it
  | 'blocked' // a hook answered instead of the upstream, or cut a stream
  | 'upstream_error' // upstream unreachable, reset or broken (502, or a stream ended with an error event)
  | 'timeout' // REQUEST_TIMEOUT → 504
  | 'too_large' // request body over MAX_REQUEST_SIZE → 413
  | 'client_timeout' // the client sent its request too slowly (408) or stopped reading the answer
  | 'error' // the proxy itself failed → 500
  | 'aborted'; // the client went away first

export type Stage = 'request' | 'response';
export type Severity = 'low' | 'medium' | 'high' | 'critical';
/** Severities in order, for "at or above" comparisons. */
export const SEVERITY_RANK: Readonly<Record<Severity, number>> = { low: 0, medium: 1, high: 2, critical: 3 };

/** Something a guardrail, limit or anomaly rule found. Ingest turns these into Akto's tag and _guardrail. */
export interface Finding {
  source: 'guardrail' | 'limit' | 'anomaly';
  ruleId: string;
  action: 'block' | 'redact' | 'flag' | 'limit' | 'alert';
  severity: Severity;
  stage: Stage;
  /** Human explanation; never contains the matched secret. */
  reason: string;
  detector?: string;
  entity?: string;
  /** Risk category (prompt_injection, jailbreak, indirect_injection, toxicity, harmful_intent, pii.EMAIL, secrets.AWS_ACCESS_KEY, …). */
  category?: string;
  /** The score that decided, 0..1. */
  score?: number;
  /** heuristic (the detectors) or model (the classifier's combined score). */
  tier?: 'heuristic' | 'model';
}

/** A hook's answer that stops the exchange: the client gets this instead of (the rest of) the upstream's answer. */
export interface BlockVerdict {
  /** A non-retryable 4xx for policy blocks (never 503); 429 for limits. */
  status: number;
  /** OpenAI `error.type` / TGI `error_type`, e.g. "guardrail_violation", "rate_limit_exceeded". */
  type: string;
  /** OpenAI `error.code`, usually the rule id. */
  code: string;
  message: string;
  headers?: Record<string, string>;
}

export interface ResponseRecord {
  status: number;
  headers: OutgoingHttpHeaders;
  /** Body bytes the client received (non-stream), within MAX_RESPONSE_SIZE. */
  body?: Buffer;
  /** For streams: the event-stream text the client received. */
  streamText?: string;
  /** True when body/streamText were cut at the capture bound. */
  truncated?: boolean;
}

/**
 * One proxied call in a neutral form. Protocols fill it, hooks read and edit it, ingest and
 * telemetry record it. Plain data: hooks mutate it in place, in the order they are registered.
 */
export interface Exchange {
  readonly id: string;
  readonly direction: Direction;
  /** Epoch milliseconds when the request arrived. */
  readonly startedAt: number;
  readonly method: string;
  /**
   * Path the endpoint serves (APP_URL's path + the request path), with the query string. The inbound listener
   * rewrites the query when a guardrail redacted one of its parameters.
   */
  path: string;
  /** From the route; parsing the body may refine it once (attachRequestBody). */
  api: ApiKind;
  readonly dialect: ErrorDialect;
  readonly clientAddress: string;
  readonly requestHeaders: IncomingHttpHeaders;
  /** Upstream base this exchange goes to (one per listener). */
  readonly upstream: URL;
  /** Bytes forwarded upstream: the original bytes unless a hook edited a segment. */
  requestBody: Buffer;
  /** The body parsed once; undefined when it is not JSON or not inspected. */
  requestJson?: unknown;
  /** Why the body could not be parsed, when it could not. */
  parseError?: string;
  model?: string;
  stream: boolean;
  /** max_tokens / max_new_tokens asked for, when present. */
  maxTokens?: number;
  input: Segment[];
  output: Segment[];
  /** Tool calls the model made in its answer. */
  toolCalls: number;
  usage?: Usage;
  response?: ResponseRecord;
  outcome?: Outcome;
  /** Milliseconds from sending upstream to the response head. */
  upstreamMs?: number;
  /** IP address of the upstream connection that answered (the resolved endpoint). */
  upstreamAddress?: string;
  findings: Finding[];
  /** Who the request belongs to (set by limits); recorded in logs and traces. */
  identity?: string;
  /** Extra headers a hook wants on the client's response (rate-limit headers). */
  responseHeaders: Record<string, string>;
  /** What each stage recorded about this exchange, typed per field (ExchangeNotes). */
  notes: ExchangeNotes;
  /** String values hooks add to the trace's `tag` (incident ids, Akto verdicts), so Akto can group by them. */
  traceTags?: Record<string, string>;
}

/**
 * What each stage recorded about an exchange, for the stages after it, debugging and tests. Logs and traces do
 * not carry these records: they carry the outcome, findings, identity and usage. A feature adds its own field
 * next to the type it records (`declare module` on this interface: guardrails, limits, akto), so this layer
 * imports none of them.
 */
export interface ExchangeNotes {
  /** How the request body was read: its format, a text encoding other than UTF-8, Content-Encodings undone. */
  body?: { format?: string; encoding?: string; decodedFrom?: string[] };
  /** The proxy's own calls: a response it did not inspect (and why, and the policy's `on_oversize`), a refused path. */
  proxy?: { responseInspected?: false | 'streamed'; reason?: string; onOversize?: string; refused?: string; responseUnreadable?: string };
  /** The message of an in-stream error event. */
  streamError?: string;
  /** Why ex.output holds less than the client got (a stream's or streamed body's kept-text bound). */
  outputTruncated?: string;
}

export type ExchangeInit = Pick<Exchange, 'id' | 'method' | 'path' | 'api' | 'dialect' | 'upstream'> & Partial<Exchange>;

/** The one way to make an Exchange: empty collections and neutral defaults under what the caller knows. */
export function newExchange(init: ExchangeInit): Exchange {
  return {
    direction: 'egress',
    startedAt: Date.now(),
    clientAddress: '',
    requestHeaders: {},
    requestBody: EMPTY_BODY,
    stream: false,
    input: [],
    output: [],
    toolCalls: 0,
    findings: [],
    responseHeaders: {},
    notes: {},
    ...init,
  };
}

const EMPTY_BODY = Buffer.alloc(0);

/** Change a segment's text; the server writes it back to its JSON location before forwarding. */
export function editSegment(segment: Segment, text: string): void {
  if (segment.text === text) return;
  segment.text = text;
  segment.edited = true;
}
