/**
 * The agent's own API behind the inbound listener (end user → proxy → agent app). Agents expose JSON APIs of their
 * own, not an inference wire format, so the policy's `inbound` section says what to read: routes (method + path
 * glob) and the JSON fields that carry the user's text and the agent's answer (JSONPath; default every string).
 * Without routes every request is inspected; with them, a request on no listed route passes through, traced.
 *
 * Paths are matched the way the app might route them: the canonical path, its percent-decoded and lenient views
 * (path.ts), in any letter case, with or without a trailing slash (Express routes case-insensitively and ignores a
 * trailing slash by default). The canonical view's route wins; when only other views match, and they disagree,
 * every string is inspected. Bodies are read as request.ts reads them (content-encoding undone by the server, JSON
 * as Python reads it, form, multipart, text; an unreadable body is refused). Streamed answers (SSE, NDJSON) go
 * through the same channel filters as the inference streams, one channel per event name and JSON location.
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingHttpHeaders } from 'node:http';
import { isUploadType } from '../http/headers';
import { globMatch } from './glob';
import type { BlockVerdict, Exchange, Segment } from './exchange';
import { setAtPath } from './json-path';
import { createJsonStreamRewriter } from './json-stream';
import { compileJsonPath, selectStrings, type CompiledJsonPath } from './json-select';
import { decodedPath, lenientPath, normalizeTarget } from './path';
import { MAX_JSON_DEPTH } from './python-json';
import { attachRequestBody, QUERY } from './request';
import type { RoutedRequest } from './routes';
import { answerSegment, createInboundStreamRewriter, streamFormat } from './inbound-stream';
import type { WireProtocol } from './wire';

/** The policy's `inbound` section as written (policy.schema.json, docs/policy.md). */
export interface InboundSection {
  routes?: InboundRouteSpec[];
  headers?: string[];
  identity?: unknown;
}

export interface InboundRouteSpec {
  path: string;
  methods?: string[];
  request?: string[];
  response?: string[];
}

interface InboundRoute {
  glob: string;
  globLower: string;
  methods?: ReadonlySet<string>;
  /** Undefined: every string of the body (and its object keys, and the query string). */
  request?: readonly CompiledJsonPath[];
  /** Undefined: every string of the answer. */
  response?: readonly CompiledJsonPath[];
}

/** No section, or a path whose views match different routes: every string of the request and the answer. */
const EVERY_STRING: InboundRoute = { glob: '*', globLower: '*' };

interface CompiledInbound {
  /** Undefined: no routes listed, every request is inspected. */
  routes?: readonly InboundRoute[];
  /** Request headers (lower case) the app reads user text from. */
  headers: readonly string[];
}

/** A policy by its sections: the inbound listener reads its `inbound` section (checked by proxy/policy/inbound.ts). */
export type InboundPolicy = { readonly [section: string]: unknown };

const compiled = new WeakMap<InboundPolicy, CompiledInbound>();

/** The inbound section's routes compiled; a JSONPath the selector cannot read adds a problem naming its place. */
function build(section: InboundSection | undefined, problems: string[]): CompiledInbound {
  const paths = (list: string[] | undefined, where: string): CompiledJsonPath[] | undefined =>
    list?.flatMap((p, i) => {
      try {
        return [compileJsonPath(p)];
      } catch (err) {
        problems.push(`${where}/${i}: ${(err as Error).message}`);
        return [];
      }
    });
  const routes = section?.routes?.map((r, i): InboundRoute => ({
    glob: r.path,
    globLower: r.path.toLowerCase(),
    methods: r.methods ? new Set(r.methods.map((m) => m.toUpperCase())) : undefined,
    request: paths(r.request, `/inbound/routes/${i}/request`),
    response: paths(r.response, `/inbound/routes/${i}/response`),
  }));
  const headers = [...new Set((section?.headers ?? []).map((h) => h.toLowerCase()))];
  return routes ? { routes, headers } : { headers };
}

/** Each JSONPath of the inbound section the selector cannot read; with none, the compiled section is kept for the policy. */
export function inboundProblems(policy: InboundPolicy): string[] {
  const problems: string[] = [];
  const out = build(policy.inbound as InboundSection | undefined, problems);
  if (problems.length === 0) compiled.set(policy, out);
  return problems;
}

/** The inbound section compiled, once per policy object (a policy store only holds policies whose check passed). */
function compileInbound(policy: InboundPolicy): CompiledInbound {
  const cached = compiled.get(policy);
  if (cached) return cached;
  const problems = inboundProblems(policy);
  if (problems.length > 0) throw new Error(`inbound: ${problems.join('; ')}`);
  return compiled.get(policy)!;
}

/** Headers frameworks take a request's method from (Express method-override, Rails, Symfony, Laravel …). */
const METHOD_OVERRIDES = ['x-http-method-override', 'x-http-method', 'x-method-override'];
/** The query parameter Rails, Laravel, Symfony and Express method-override take a POST's method from. */
const METHOD_PARAM = '_method';

/** The methods an app may dispatch this request as: its own, and any a method-override header or `?_method=` names. */
function methodsOf(method: string, headers: IncomingHttpHeaders, query: string): string[] {
  const named: string[] = [];
  for (const h of METHOD_OVERRIDES) {
    const v = headers[h];
    named.push(...(Array.isArray(v) ? v : v === undefined ? [] : [v]).flatMap((x) => x.split(',')));
  }
  if (query !== '') named.push(...new URLSearchParams(query).getAll(METHOD_PARAM));
  return [...new Set([method, ...named].map((m) => m.trim().toUpperCase()).filter(Boolean))];
}

function methodMatches(route: InboundRoute, method: string): boolean {
  if (!route.methods) return true;
  // Frameworks answer HEAD with the GET handler.
  return route.methods.has(method) || (method === 'HEAD' && route.methods.has('GET'));
}

function firstRoute(routes: readonly InboundRoute[], method: string, view: string): InboundRoute | undefined {
  const lower = view.toLowerCase();
  return routes.find((r) => methodMatches(r, method) && (globMatch(r.glob, view) || globMatch(r.globLower, lower)));
}

/** The ways an app may read `path`: decoded, leniently decoded, any letter case, with or without a trailing slash. */
function pathViews(path: string): string[] {
  const views = new Set<string>();
  for (const v of [path, decodedPath(path), lenientPath(path)]) {
    if (v === undefined) continue;
    for (const c of [v, v.toLowerCase()]) {
      views.add(c);
      if (c.length > 1 && c.endsWith('/')) views.add(c.slice(0, -1));
      else if (c !== '/') views.add(`${c}/`);
    }
  }
  views.delete(path);
  return [...views];
}

/** The one route every listed reading names, EVERY_STRING when they disagree, undefined when none is listed. */
function agreed(found: ReadonlySet<InboundRoute>): InboundRoute | undefined {
  if (found.size === 0) return undefined;
  return found.size === 1 ? [...found][0] : EVERY_STRING;
}

/** The route `path` (no query) is on for one method: the canonical path's own route, else what its other views agree on. */
function routeForMethod(routes: readonly InboundRoute[], method: string, path: string): InboundRoute | undefined {
  const direct = firstRoute(routes, method, path);
  if (direct) return direct;
  const others = new Set<InboundRoute>();
  for (const view of pathViews(path)) {
    const r = firstRoute(routes, method, view);
    if (r) others.add(r);
  }
  return agreed(others);
}

/**
 * The route a request is on: undefined when routes are listed and none matches. The app may dispatch it under its own
 * method or an overriding one; when those land on different routes, every string is read (more, never less).
 */
function routeFor(inbound: CompiledInbound, methods: readonly string[], path: string): InboundRoute | undefined {
  if (!inbound.routes) return EVERY_STRING;
  const found = new Set<InboundRoute>();
  for (const m of methods) {
    const r = routeForMethod(inbound.routes, m, path);
    if (r) found.add(r);
  }
  return agreed(found);
}

/** The path without its query, and the query (no '?'). */
function splitTarget(path: string): [string, string] {
  const q = path.indexOf('?');
  return q === -1 ? [path, ''] : [path.slice(0, q), path.slice(q + 1)];
}

/** What was parsed of a complete answer, to write edits back. */
type ParsedAnswer = { json: unknown } | { raw: true };

/** Segment paths of request headers. */
const HEADERS = '$headers';

/** Where a withheld text stood, the client reads why. */
function withheldText(verdict: BlockVerdict): string {
  return `[withheld by guardrail rule "${verdict.code}"]`;
}

/** The query string's parameters as the app reads them ('+' a space, UTF-8 escapes); a redaction is written back. */
function querySegments(path: string): Segment[] {
  const q = path.indexOf('?');
  if (q === -1 || q === path.length - 1) return [];
  const params = [...new URLSearchParams(path.slice(q + 1))];
  const out: Segment[] = params.map(([, value], i) => ({ role: 'user', kind: 'inputs', trusted: true, path: [QUERY, i], text: value }));
  const keys = params.map(([k]) => k).join('\n');
  if (keys !== '') out.push({ role: 'user', kind: 'inputs', trusted: true, path: [QUERY, '$keys'], text: keys, readonly: true });
  return out.filter((s) => s.text !== '');
}

/** Headers the policy names as carrying user text; never rewritten, so a redaction there blocks. */
function headerSegments(headers: IncomingHttpHeaders, names: readonly string[]): Segment[] {
  return names.flatMap((name) => {
    const v = headers[name];
    return (Array.isArray(v) ? v : v === undefined ? [] : [v])
      .filter((text) => text !== '')
      .map((text, i): Segment => ({ role: 'user', kind: 'inputs', trusted: true, path: [HEADERS, name, i], text, readonly: true }));
  });
}

/** The path with the query's edited parameters written back (every parameter re-encoded the way URLSearchParams does). */
function withEditedQuery(ex: Exchange): string {
  const edited = ex.input.filter((s) => s.edited && !s.readonly && s.path[0] === QUERY);
  const q = ex.path.indexOf('?');
  if (edited.length === 0 || q === -1) return ex.path;
  const params = [...new URLSearchParams(ex.path.slice(q + 1))];
  for (const s of edited) params[s.path[1] as number][1] = s.text;
  return `${ex.path.slice(0, q)}?${new URLSearchParams(params).toString()}`;
}

/**
 * The inbound listener's protocol over the current policy (`current` is the policy store's read): see the file
 * comment. One route is resolved per exchange and kept for its answer, so a reload mid-exchange changes nothing.
 */
export function createInboundProtocol(current: () => InboundPolicy): WireProtocol {
  const routes = new WeakMap<Exchange, InboundRoute>();
  const answers = new WeakMap<Exchange, ParsedAnswer>();
  const inbound = (): CompiledInbound => compileInbound(current());

  /** The exchange's route; one that is no longer listed after a reload is read whole (more, never less). */
  const routeOf = (ex: Exchange): InboundRoute => {
    let r = routes.get(ex);
    if (!r) {
      const [path, query] = splitTarget(ex.path);
      r = routeFor(inbound(), methodsOf(ex.method, ex.requestHeaders, query), path) ?? EVERY_STRING;
      routes.set(ex, r);
    }
    return r;
  };

  return {
    route(method: string, rawTarget: string, basePath: string, headers: IncomingHttpHeaders = {}): RoutedRequest {
      const normalized = normalizeTarget(rawTarget);
      if (!normalized.ok) return { ok: false, dialect: 'openai', reason: normalized.reason };
      const { target } = normalized;
      const base = basePath.endsWith('/') ? basePath.slice(0, -1) : basePath;
      const path = `${base}${target.path}${target.trailingSlash ? '/' : ''}`;
      const listed = routeFor(inbound(), methodsOf(method, headers, target.query.slice(1)), path) !== undefined;
      return { ok: true, api: listed ? 'inbound' : 'passthrough', dialect: 'openai', path: `${path}${target.query}` };
    },
    // Every body of an inspected route is read (up to MAX_REQUEST_SIZE), whatever its declared type: an app may parse
    // JSON sent as image/png. Media and bytes declared as bytes have no text; an upload too large needs an unlisted route.
    inspects: (api) => api !== 'passthrough',
    editedPath: withEditedQuery,
    attachBody(ex, body, contentType, unreadable) {
      const route = routeOf(ex);
      attachRequestBody(ex, body, contentType, unreadable, (json) => selectStrings(json, route.request, MAX_JSON_DEPTH));
      // The query is read on every inspected route: frameworks hand query parameters to handlers as readily as body
      // fields (FastAPI's scalar parameters, Flask's request.values, Rails' params).
      ex.input.push(...querySegments(ex.path), ...headerSegments(ex.requestHeaders, inbound().headers));
    },
    parseResponse(ex: Exchange, body: Buffer, headers: IncomingHttpHeaders) {
      ex.output = [];
      answers.delete(ex);
      const encoding = headers['content-encoding'];
      if (body.length === 0 || (encoding !== undefined && encoding !== 'identity') || isUploadType(headers['content-type'])) return;
      const text = body.toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        // Text the user reads whole; bytes that are not UTF-8 text are no text (and are never rewritten).
        if (!isUtf8(body)) return;
        answers.set(ex, { raw: true });
        ex.output.push(answerSegment([], text));
        return;
      }
      answers.set(ex, { json });
      for (const t of selectStrings(json, routeOf(ex).response, MAX_JSON_DEPTH).texts) ex.output.push(answerSegment(t.path, t.text));
    },
    serializeResponse(ex, body, verdict) {
      if (!verdict && !ex.output.some((s) => s.edited)) return body;
      const parsed = answers.get(ex);
      if (!parsed) return verdict ? undefined : body;
      const flagged = verdict ? ex.output.filter((s) => s.blocked) : [];
      const withheld = new Set(verdict ? (flagged.length > 0 ? flagged : ex.output) : []);
      if (verdict && withheld.size === 0) return undefined;
      if ('raw' in parsed) return Buffer.from(verdict ? withheldText(verdict) : (ex.output[0]?.text ?? ''), 'utf8');
      let json = parsed.json;
      for (const s of ex.output) {
        if (!withheld.has(s) && !s.edited) continue;
        const value = withheld.has(s) ? withheldText(verdict!) : s.text;
        if (s.path.length === 0) json = value;
        else setAtPath(json, s.path, value);
      }
      return Buffer.from(JSON.stringify(json), 'utf8');
    },
    isStream: (contentType) => streamFormat(contentType) !== undefined,
    streamRewriter: (ex, contentType, inspector, bounds) => createInboundStreamRewriter(ex, streamFormat(contentType) ?? 'ndjson', routeOf(ex).response, inspector, bounds),
    // Too large to buffer: every string value is read as text (more than a route's fields, never less).
    largeBodyRewriter: createJsonStreamRewriter,
  };
}
