// The naming rule both programs share: the webhook writes these variables into the sidecar, the proxy reads them.
import { declare } from './env';

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

/** The pod's own identity, from the downward API (the webhook sets these on every sidecar). */
export const POD_ENV = {
  name: declare.string('POD_NAME', 'the pod: trace tag, alert detail, workload identity, a spelling of this machine the proxy must not forward to'),
  namespace: declare.string('POD_NAMESPACE', 'trace tag, alert detail, workload identity'),
  ip: declare.string('POD_IP', "the record's `ip`; a spelling of this machine the proxy must not forward to"),
  serviceAccount: declare.string('POD_SERVICE_ACCOUNT', 'workload identity for limits'),
};
