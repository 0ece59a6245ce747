// The naming rule both programs share: the webhook writes these variables into the sidecar, the proxy reads them.

/** URL variables of listeners: APP_URL, or APP_URL_<suffix> with UPSTREAMS. */
export const URL_VAR = /^APP_URL(?:_([A-Za-z0-9_]+))?$/;
/** Every variable that may hold an upstream credential (typos included); each must belong to exactly one listener. */
export const AUTHORIZATION_PREFIX = 'UPSTREAM_AUTHORIZATION';

/** The one credential variable of a URL variable: APP_URL -> UPSTREAM_AUTHORIZATION, APP_URL_1 -> UPSTREAM_AUTHORIZATION_1. */
export function authorizationVarFor(urlVar: string): string {
  const m = URL_VAR.exec(urlVar);
  if (!m) throw new Error(`${urlVar} is not a listener URL variable`);
  return m[1] === undefined ? AUTHORIZATION_PREFIX : `${AUTHORIZATION_PREFIX}_${m[1]}`;
}
