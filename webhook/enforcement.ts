/**
 * The enforced posture (namespace label `agent-proxy.akto.io/injection=enforced`): a pod there either runs
 * with the sidecar in front of every inference URL, or is exempt by the platform team's settings
 * (service account, pod label selector). Pure: the pod, the posture the webhook was called for, settings.
 * Whatever would merely skip injection in an `enabled` namespace refuses the pod here, with a message that
 * says who may exempt a pod and how.
 */
import { INJECT_LABEL, NAMESPACE_LABEL, PREFIX, WARNING_PREFIX, parseAnnotations } from './annotations';
import type { InjectResult } from './inject';
import { JsonObject, isJsonObject } from './patch';
import { Requirement, parseSelector, selectorMatches } from './selector';
import type { Settings } from './settings';

export interface Posture {
  /** The namespace is labelled injection=enforced. */
  enforced: boolean;
  /** Why the pod is exempt (enforced namespaces only); undefined = not exempt. */
  exemptBy?: string;
}

/** Skip reasons that are not a gap in an enforced namespace: not a pod, not ours to inject. */
const NOT_A_GAP = new Set(['invalid-pod', 'excluded-namespace', 'not-opted-in']);

let parsedSelector: { text: string; requirements: Requirement[] } | undefined;

function exemptSelector(settings: Settings): Requirement[] {
  const text = settings.enforcement.exemptPodSelector;
  if (parsedSelector?.text !== text) parsedSelector = { text, requirements: parseSelector(text) };
  return parsedSelector.requirements;
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isJsonObject(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

/** The service account a pod runs as: spec.serviceAccountName, or `default` when unset (as the API server sets it). */
export function serviceAccountOf(pod: JsonObject): string {
  const spec = isJsonObject(pod.spec) ? pod.spec : {};
  const name = typeof spec.serviceAccountName === 'string' && spec.serviceAccountName ? spec.serviceAccountName
    : typeof spec.serviceAccount === 'string' && spec.serviceAccount ? spec.serviceAccount : 'default';
  return name;
}

export function postureOf(pod: JsonObject, namespace: { name: string; enforced?: boolean }, settings: Settings): Posture {
  if (!namespace.enforced) return { enforced: false };
  const sa = `${namespace.name}/${serviceAccountOf(pod)}`;
  if (settings.enforcement.exemptServiceAccounts.includes(sa)) return { enforced: true, exemptBy: `service account ${sa}` };
  const labels = stringMap(isJsonObject(pod.metadata) ? pod.metadata.labels : undefined);
  if (selectorMatches(exemptSelector(settings), labels)) return { enforced: true, exemptBy: `labels matching "${settings.enforcement.exemptPodSelector}"` };
  return { enforced: true };
}

/**
 * Who may exempt a pod and how: the end of every refusal. The exemptions in force are not listed: they would tell a
 * pod author which service account or labels to claim.
 */
export function exemptionHint(settings: Settings): string {
  return `Only ${settings.enforcement.exemptionContact} can exempt a pod, by service account or pod labels in the chart values `
    + 'enforcement.exemptions; a pod cannot exempt itself.';
}

function refused(namespace: string, reason: string, problem: string, warnings: string[], settings: Settings): InjectResult {
  return {
    status: 'denied',
    reason: `enforced-${reason}`,
    code: 403,
    patch: [],
    warnings,
    message: `${WARNING_PREFIX}namespace "${namespace}" is enforced (${NAMESPACE_LABEL}=enforced): ${problem}. ${exemptionHint(settings)}`,
  };
}

/**
 * The verdict in an enforced namespace for a pod that is not exempt: a skip or a URL left around the
 * sidecar refuses the pod; so does a per-pod policy pack that blocks nothing. Exempt pods and other
 * postures keep the outcome, with a warning naming the exemption when the pod goes unguarded.
 */
export function enforce(result: InjectResult, pod: JsonObject, namespace: string, posture: Posture, settings: Settings): InjectResult {
  if (!posture.enforced || result.status === 'denied' || NOT_A_GAP.has(result.reason)) return result;
  if (posture.exemptBy) {
    if (result.status !== 'skipped') return result;
    return { ...result, warnings: [...result.warnings, `${WARNING_PREFIX}exempt from enforcement by ${posture.exemptBy}: runs without the guardrail proxy`] };
  }
  if (result.reason === 'opted-out') {
    return refused(namespace, 'opt-out', `pods cannot opt out of the guardrail proxy (pod label ${INJECT_LABEL}="false")`, result.warnings, settings);
  }
  if (result.status === 'skipped') return refused(namespace, result.reason, `${result.skipped ?? result.reason}; every pod here must run with the akto-proxy sidecar`, result.warnings, settings);
  if (result.bypasses && result.bypasses.length > 0) {
    return refused(namespace, 'bypass', `${result.bypasses.join('; ')}; every inference call here must go through the akto-proxy sidecar`, result.warnings, settings);
  }
  const pack = parseAnnotations(isJsonObject(pod.metadata) ? pod.metadata.annotations : undefined).overrides.policyPack;
  if (pack !== undefined && settings.enforcement.refusedPolicyPacks.includes(pack)) {
    return refused(namespace, 'policy-pack', `annotation ${PREFIX}policy-pack: "${pack}" blocks nothing and is refused here`, result.warnings, settings);
  }
  return result;
}
