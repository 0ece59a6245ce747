import type { Detector } from './types';
import { createPiiDetector } from './pii';
import { createSecretsDetector } from './secrets';
import { createInjectionDetector } from './injection';
import { createHarmfulIntentDetector, createToxicityDetector } from './harm';

export type { Detector, Match, ScanOptions } from './types';
export { createPiiDetector, PII_ENTITIES, PII_OPT_IN } from './pii';
export { createSecretsDetector, SECRET_ENTITIES } from './secrets';
export { createInjectionDetector, INJECTION_ENTITIES } from './injection';
export { createToxicityDetector, createHarmfulIntentDetector, TOXICITY_ENTITIES, HARMFUL_INTENT_ENTITIES } from './harm';
export { createRegexDetector, isLinearEngine, type RegexPattern } from './regex';
export { createKeywordDetector, type KeywordList } from './keywords';
export { createSizeDetector, exceededSize, type SizeLimits } from './size';

/** The built-in detectors by id ('pii', 'secrets', 'injection', 'toxicity', 'harmful'). Each call builds fresh instances; they are stateless, so share them. */
export function builtinDetectors(): Record<string, Detector> {
  return {
    pii: createPiiDetector(),
    secrets: createSecretsDetector(),
    injection: createInjectionDetector(),
    toxicity: createToxicityDetector(),
    harmful: createHarmfulIntentDetector(),
  };
}
