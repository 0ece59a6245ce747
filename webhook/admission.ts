/**
 * AdmissionReview in, AdmissionReview out in the same apiVersion (v1 or v1beta1, same uid). Pure:
 * the server hands it parsed JSON and the cluster facts; anything that is not a pod CREATE is
 * allowed unchanged. Both versions share the request and response fields this webhook uses.
 */
import { AdmissionEvent, eventFor } from './events';
import { ClusterInfo, InjectResult, inject, podName } from './inject';
import { JsonObject } from './patch';
import { Settings } from './settings';
import { isObject } from '../common/json';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
export const ADMISSION_API_VERSIONS: readonly string[] = [ADMISSION_API_VERSION, 'admission.k8s.io/v1beta1'];

export interface AdmissionOutcome {
  /** The AdmissionReview to send back. */
  review: Record<string, unknown>;
  /** For metrics and the log line. */
  result: InjectResult['status'] | 'allowed';
  reason: string;
  pod?: string;
  namespace?: string;
  /** request.uid, to match the API server's audit log. */
  uid?: string;
  /** The Event to record (never for dry-run requests: the webhook declares sideEffects NoneOnDryRun). */
  event?: AdmissionEvent;
}

export interface ReviewOptions {
  /** Called through the entry for namespaces labelled injection=enforced. */
  enforced?: boolean;
}

export class BadReviewError extends Error {}

export type InjectFn = typeof inject;

/** Throws BadReviewError when no answer can be formed (no AdmissionReview or no uid): the server sends 400. */
export function review(body: unknown, settings: Settings, cluster: ClusterInfo, injectFn: InjectFn = inject, options: ReviewOptions = {}): AdmissionOutcome {
  if (!isObject(body) || body.kind !== 'AdmissionReview' || !isObject(body.request)) {
    throw new BadReviewError('expected an AdmissionReview with a request');
  }
  const apiVersion = answerVersion(body);
  if (apiVersion === undefined) {
    throw new BadReviewError(`AdmissionReview apiVersion ${JSON.stringify(body.apiVersion ?? null)} is not supported; this webhook answers ${ADMISSION_API_VERSIONS.join(' and ')}`);
  }
  const req = body.request;
  if (typeof req.uid !== 'string' || req.uid === '') throw new BadReviewError('request.uid is missing');
  const answer = (response: Record<string, unknown>) => ({ apiVersion, kind: 'AdmissionReview', response: { uid: req.uid, ...response } });

  const kind = isObject(req.kind) ? req.kind : {};
  const isPod = kind.kind === 'Pod' && (kind.group ?? '') === '' && (req.subResource === undefined || req.subResource === '');
  if (!isPod || req.operation !== 'CREATE' || !isObject(req.object)) {
    return { review: answer({ allowed: true }), result: 'allowed', reason: isPod ? 'not-create' : 'not-a-pod' };
  }
  const namespace = typeof req.namespace === 'string' && req.namespace
    ? req.namespace
    : isObject(req.object.metadata) && typeof req.object.metadata.namespace === 'string' ? req.object.metadata.namespace : 'default';
  const r = injectFn(req.object, { name: namespace, enforced: options.enforced === true }, settings, cluster);
  const event = req.dryRun === true ? undefined : eventFor(r, req.object as JsonObject, namespace);
  const base = { result: r.status, reason: r.reason, pod: podName(req.object as JsonObject), namespace, uid: req.uid, ...(event ? { event } : {}) };
  const warnings = r.warnings.length > 0 ? { warnings: r.warnings } : {};
  if (r.status === 'denied') {
    const code = r.code ?? 400;
    const status = { code, reason: code === 403 ? 'Forbidden' : 'BadRequest', message: r.message ?? 'invalid annotations' };
    return { ...base, review: answer({ allowed: false, status, ...warnings }) };
  }
  if (r.patch.length === 0) return { ...base, review: answer({ allowed: true, ...warnings }) };
  const patch = Buffer.from(JSON.stringify(r.patch)).toString('base64');
  return { ...base, review: answer({ allowed: true, patchType: 'JSONPatch', patch, ...warnings }) };
}

/** The apiVersion to answer in: the one the review was sent in, when this webhook speaks it. */
export function answerVersion(body: unknown): string | undefined {
  const v = isObject(body) ? body.apiVersion : undefined;
  return typeof v === 'string' && ADMISSION_API_VERSIONS.includes(v) ? v : undefined;
}
