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

/** A store whose value is replaced by its owner (the file watcher, or a test). */
export class MemoryPolicyStore<P = Policy> implements PolicyStore<P> {
  private readonly listeners = new Set<(policy: P) => void>();

  constructor(private value: P) {}

  current(): P {
    return this.value;
  }

  subscribe(listener: (policy: P) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Replace the policy and tell every subscriber; a listener that throws does not stop the others. */
  set(policy: P): Error[] {
    this.value = policy;
    const errors: Error[] = [];
    for (const listener of this.listeners) {
      try {
        listener(policy);
      } catch (err) {
        errors.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
    return errors;
  }
}
