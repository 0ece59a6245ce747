/**
 * Upstream credentials, bound to the app env var that holds the upstream's URL: `VAR=secret/key`
 * says "the proxy listener that forwards to the URL in VAR sends the value of key `key` of Secret
 * `secret` as Authorization". The env var is the one handle on an upstream known at admission
 * (its URL may come from a Secret). A listener gets at most one credential; two different ones
 * for the same listener have no single owner and are refused.
 */
export interface CredentialRef {
  /** App env var holding the upstream URL. */
  envVar: string;
  secretName: string;
  key: string;
}

/** `ENV_VAR=secret-name/key`: env names are printable ASCII without `=`, Secret keys never contain `/`. */
export const CREDENTIAL_REF = /^([\x21-\x3c\x3e-\x7e]+)=([a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?)\/([-._a-zA-Z0-9]{1,253})$/;

export const CREDENTIAL_REF_FORMAT = 'ENV_VAR=secret-name/key';

/** One `ENV_VAR=secret/key` entry; throws an Error naming the expected form. */
export function parseCredentialRef(text: string): CredentialRef {
  const m = CREDENTIAL_REF.exec(text.trim());
  if (!m) throw new Error(`"${text.trim()}" must look like ${CREDENTIAL_REF_FORMAT} (the Secret is in the pod's namespace)`);
  return { envVar: m[1], secretName: m[2], key: m[3] };
}

/** Settings entries first, then the pod's: a pod entry replaces a settings entry for the same env var. */
export function credentialsByVar(fromSettings: readonly string[], fromPod: readonly CredentialRef[] = []): Map<string, CredentialRef> {
  const out = new Map<string, CredentialRef>();
  for (const ref of [...fromSettings.map(parseCredentialRef), ...fromPod]) out.set(ref.envVar, ref);
  return out;
}

export type CredentialChoice = { ref?: CredentialRef; conflict?: undefined } | { ref?: undefined; conflict: string };

/** The credential of a listener serving `vars` (all with the same URL). */
export function chooseCredential(vars: readonly string[], refs: ReadonlyMap<string, CredentialRef>): CredentialChoice {
  const found = new Map<string, CredentialRef>();
  for (const v of vars) {
    const ref = refs.get(v);
    if (ref) found.set(`${ref.secretName}/${ref.key}`, ref);
  }
  if (found.size <= 1) return { ref: [...found.values()][0] };
  const named = vars.filter((v) => refs.has(v)).map((v) => `${v}=${refs.get(v)!.secretName}/${refs.get(v)!.key}`);
  return { conflict: `${named.join(', ')} hold the same URL but name different credentials; one upstream has one credential` };
}
