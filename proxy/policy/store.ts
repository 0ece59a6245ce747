/**
 * The loaded policy, shared by guardrails and limits. The guardrails issue owns loading,
 * validation and reload; consumers only read the current value and hear about changes.
 */
export interface PolicyStore<P = Policy> {
  current(): P;
  /** Called after every successful reload; returns an unsubscribe function. */
  subscribe(listener: (policy: P) => void): () => void;
}

/** Top-level policy document. Sections are typed by their owners (guardrails/, limits/). */
export interface Policy {
  $schema?: string;
  version?: number;
  extends?: string;
  [section: string]: unknown;
}
