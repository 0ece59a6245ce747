import type { EnvVar } from '../common/env';
import { POD_ENV } from '../common/sidecar-env';
import { AKTO_GUARDRAILS_ENV } from './akto/config';
import { ALERTS_ENV } from './alerts/config';
import { CORE_ENV, INBOUND_ENV } from './config';
import { GUARDRAILS_ENV } from './guardrails';
import { MODEL_TIER_ENV } from './guardrails/model-tier';
import { CA_ENV } from './http/agents';
import { INGEST_ENV } from './ingest/config';
import { LIMITS_ENV } from './limits';
import { LIMITS_REDIS_ENV } from './limits/store';
import { POLICY_ENV } from './policy/open';

/**
 * Every variable the sidecar reads, in the order README.md's table lists them. Each module declares (and
 * reads) its own slice; this list only collects them, so the README table is generated from what the code reads.
 */
export const PROXY_ENV: readonly EnvVar[] = [
  CORE_ENV,
  INBOUND_ENV,
  CA_ENV,
  POLICY_ENV,
  GUARDRAILS_ENV,
  MODEL_TIER_ENV,
  LIMITS_ENV,
  LIMITS_REDIS_ENV,
  INGEST_ENV,
  AKTO_GUARDRAILS_ENV,
  ALERTS_ENV,
  POD_ENV,
].flatMap((slice) => Object.values(slice));
