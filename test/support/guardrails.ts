import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Env } from '../../common/env';
import { checkGuardrailsPolicy, createGuardrails, type Guardrails } from '../../proxy/guardrails';
import { openPolicyStore, type OpenedPolicyStore } from '../../proxy/policy/open';

/** Guardrails alone, as app.ts wires them: over a policy store opened from `env`; close() closes both. */
export async function openGuardrails(env: Env, logger: Logger, registry: Registry): Promise<Guardrails & { store: OpenedPolicyStore['store'] }> {
  const policy = openPolicyStore(env, logger, registry, [checkGuardrailsPolicy]);
  const guardrails = await createGuardrails(policy, env, logger, registry);
  return {
    ...guardrails,
    store: policy.store,
    close() {
      guardrails.close();
      policy.close();
    },
  };
}
