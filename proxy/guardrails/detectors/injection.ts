import type { Detector } from './types';

export const INJECTION_ENTITIES = ['PROMPT_INJECTION', 'JAILBREAK'] as const;

export function createInjectionDetector(): Detector {
  return { id: 'injection', entities: INJECTION_ENTITIES, scan: () => [], pendingTail: () => 0 };
}
