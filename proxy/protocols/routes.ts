import type { ApiKind, ErrorDialect } from './exchange';

/** OpenAI-compatible routes, also behind a path prefix (agents may call /openai/v1/...). */
const OPENAI_ROUTE = /\/v1\/(chat\/completions|completions|embeddings|responses)$/;
const TEI_ROUTES = new Set(['/embed', '/embed_all', '/embed_sparse', '/rerank', '/predict']);

const OPENAI_KIND: Record<string, ApiKind> = {
  'chat/completions': 'openai.chat',
  completions: 'openai.completions',
  embeddings: 'openai.embeddings',
  responses: 'openai.responses',
};

/** Strips the query string and one trailing slash (except the root). */
function routePath(path: string): string {
  const q = path.indexOf('?');
  const p = q === -1 ? path : path.slice(0, q);
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p || '/';
}

/**
 * Decides the wire API from method and path alone; parseRequest refines 'hf.task' from the body.
 * Errors take the OpenAI shape on /v1/* and TGI's everywhere else.
 */
export function classifyRoute(method: string, path: string): { api: ApiKind; dialect: ErrorDialect } {
  const p = routePath(path);
  const dialect: ErrorDialect = p.includes('/v1/') || p.endsWith('/v1') ? 'openai' : 'tgi';
  if (method.toUpperCase() !== 'POST') return { api: 'passthrough', dialect };
  const openai = OPENAI_ROUTE.exec(p);
  if (openai) return { api: OPENAI_KIND[openai[1]], dialect: 'openai' };
  if (p === '/') return { api: 'tgi.compat', dialect };
  if (p === '/generate') return { api: 'tgi.generate', dialect };
  if (p === '/generate_stream') return { api: 'tgi.generate_stream', dialect };
  if (TEI_ROUTES.has(p)) return { api: 'tei.embed', dialect };
  if (p === '/embeddings') return { api: 'openai.embeddings', dialect: 'openai' };
  return { api: 'hf.task', dialect };
}
