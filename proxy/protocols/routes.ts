import type { ApiKind, ErrorDialect } from './exchange';
import { decodedPath, lenientPath, normalizeTarget } from './path';

interface RouteSpec {
  /** Matches the path's last segments, so the route is found behind any prefix (APP_URL path, gateways, Azure). */
  suffix: string;
  api: ApiKind;
  /** Error shape when the route fixes one; otherwise OpenAI on /v1/* and TGI's elsewhere. */
  dialect?: ErrorDialect;
}

/**
 * Every text-carrying inference route of TGI, vLLM, TEI, SGLang and the OpenAI/Anthropic-compatible servers
 * (docs/protocols.md lists them). Longer suffixes first: `/chat/completions` before `/completions`.
 */
const ROUTES: readonly RouteSpec[] = [
  { suffix: '/chat/completions/render', api: 'openai.chat', dialect: 'openai' },
  { suffix: '/chat/completions/batch', api: 'openai.chat', dialect: 'openai' },
  { suffix: '/chat/completions', api: 'openai.chat', dialect: 'openai' },
  { suffix: '/completions/render', api: 'openai.completions', dialect: 'openai' },
  { suffix: '/completions', api: 'openai.completions', dialect: 'openai' },
  { suffix: '/embeddings', api: 'openai.embeddings', dialect: 'openai' },
  { suffix: '/responses', api: 'openai.responses', dialect: 'openai' },
  { suffix: '/v1/messages/count_tokens', api: 'anthropic.messages', dialect: 'openai' },
  { suffix: '/v1/messages', api: 'anthropic.messages', dialect: 'openai' },
  { suffix: '/generate_stream', api: 'tgi.generate_stream' },
  { suffix: '/generate', api: 'tgi.generate' },
  { suffix: '/chat_tokenize', api: 'tokenize' },
  { suffix: '/detokenize', api: 'tokenize', dialect: 'openai' },
  { suffix: '/tokenize', api: 'tokenize' },
  { suffix: '/decode', api: 'tokenize' },
  { suffix: '/invocations', api: 'invocations' },
  { suffix: '/vertex', api: 'vertex' },
  { suffix: '/v1/rerank', api: 'pooling', dialect: 'openai' },
  { suffix: '/v2/rerank', api: 'pooling', dialect: 'openai' },
  { suffix: '/v1/score', api: 'pooling', dialect: 'openai' },
  { suffix: '/score', api: 'pooling', dialect: 'openai' },
  { suffix: '/generative_scoring', api: 'pooling', dialect: 'openai' },
  { suffix: '/classify', api: 'pooling', dialect: 'openai' },
  { suffix: '/pooling', api: 'pooling', dialect: 'openai' },
  { suffix: '/v2/embed', api: 'pooling', dialect: 'openai' },
  { suffix: '/encode', api: 'pooling' },
  { suffix: '/rerank', api: 'tei.embed' },
  { suffix: '/embed_sparse', api: 'tei.embed' },
  { suffix: '/embed_all', api: 'tei.embed' },
  { suffix: '/embed', api: 'tei.embed' },
  { suffix: '/predict', api: 'tei.embed' },
  { suffix: '/similarity', api: 'tei.embed' },
];

/** Strips the query string and one trailing slash (except the root). */
function routePath(path: string): string {
  const q = path.indexOf('?');
  const p = q === -1 ? path : path.slice(0, q);
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p || '/';
}

/**
 * Decides the wire API from method and path alone; parseRequest refines 'invocations', 'vertex' and 'hf.task'
 * from the body. `requestPath` (the path the client asked for, without APP_URL's prefix) makes `POST /` TGI's
 * compat route behind a prefix too. Errors take the OpenAI shape on /v1/* and TGI's everywhere else. A request of
 * another method that carries a body (`hasBody`) is routed as a POST would be: a handler that takes any method
 * reads that body too, so it is inspected the same way.
 */
export function classifyRoute(method: string, path: string, requestPath = path, hasBody = false): { api: ApiKind; dialect: ErrorDialect } {
  const p = routePath(path);
  const defaultDialect: ErrorDialect = p.includes('/v1/') || p.endsWith('/v1') ? 'openai' : 'tgi';
  if (method.toUpperCase() !== 'POST' && !hasBody) return { api: 'passthrough', dialect: defaultDialect };
  if (p === '/' || routePath(requestPath) === '/') return { api: 'tgi.compat', dialect: defaultDialect };
  for (const r of ROUTES) if (p.endsWith(r.suffix)) return { api: r.api, dialect: r.dialect ?? defaultDialect };
  return { api: 'hf.task', dialect: defaultDialect };
}

/** A request routed: what to classify and forward, or why it is refused. */
export type RoutedRequest =
  | { ok: true; api: ApiKind; dialect: ErrorDialect; /** Upstream path with query: exactly what is forwarded. */ path: string }
  | { ok: false; dialect: ErrorDialect; reason: string };

/**
 * Turns a raw request target into the upstream path and its route. The path is canonical (see path.ts) and
 * prefixed with APP_URL's path; known routes are forwarded without a trailing slash, so an upstream that
 * redirects `/x/` to `/x` never sends the client around the proxy. If decoding the remaining escapes (as
 * uvicorn does) or decoding them leniently (as some intermediaries do) would reach another route, the request
 * is refused: there is no single path that every upstream would route the same way.
 */
export function routeRequest(method: string, rawTarget: string, basePath: string, hasBody = false): RoutedRequest {
  const normalized = normalizeTarget(rawTarget);
  const base = basePath.endsWith('/') ? basePath.slice(0, -1) : basePath;
  if (!normalized.ok) return { ok: false, dialect: classifyRoute('GET', rawTarget).dialect, reason: normalized.reason };
  const { target } = normalized;
  const full = base + target.path;
  const route = classifyRoute(method, full, target.path, hasBody);
  for (const view of [decodedPath(full), lenientPath(full)]) {
    const other = view === undefined ? undefined : classifyRoute(method, view, view.slice(base.length) || '/', hasBody).api;
    if (other !== route.api) {
      return { ok: false, dialect: route.dialect, reason: 'percent-escapes in the path would reach a different route depending on who decodes them' };
    }
  }
  const keepSlash = target.trailingSlash && (route.api === 'hf.task' || route.api === 'passthrough') && target.path !== '/';
  return { ok: true, ...route, path: `${full}${keepSlash ? '/' : ''}${target.query}` };
}
