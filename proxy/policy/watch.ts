import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { loadPolicyText, PolicyError, type PolicyCheck } from './load';
import { MemoryPolicyStore } from './store';
import type { ResolvedPolicy } from './types';

export interface PolicyMetrics {
  reloads: Counter;
  reloadFailures: Counter;
}

export function policyMetrics(registry: Registry): PolicyMetrics {
  return {
    reloads: new Counter({ name: 'policy_reloads_total', help: 'Policy file reloads that took effect.', registers: [registry] }),
    reloadFailures: new Counter({
      name: 'policy_reload_failures_total',
      help: 'Policy file reloads rejected (unreadable or invalid); the previous policy stays in force.',
      registers: [registry],
    }),
  };
}

export interface WatchOptions {
  checks?: readonly PolicyCheck[];
  /** Quiet time after the last change event before re-reading (a ConfigMap swap fires several events). */
  debounceMs?: number;
  /** Re-read this often even without events (file systems where watch events get lost); 0 = never. */
  pollMs?: number;
}

/**
 * Loads POLICY_FILE and follows it. Watches the DIRECTORY, not the file: Kubernetes updates a mounted ConfigMap by
 * swapping the `..data` symlink, which replaces the file without any event on the old inode. Every event (and every
 * poll tick) re-reads the file; identical content is ignored; invalid content keeps the old policy.
 * The constructor (first load) throws PolicyError.
 */
export class WatchedPolicyStore extends MemoryPolicyStore<ResolvedPolicy> {
  private lastText: string;
  /** Read once by settle(), waiting for a second identical read. */
  private pendingText: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly watcher: FSWatcher | undefined;
  private readonly poll: NodeJS.Timeout | undefined;
  private readonly checks: readonly PolicyCheck[];

  constructor(
    readonly path: string,
    private readonly logger: Logger,
    private readonly metrics: PolicyMetrics,
    private readonly opts: WatchOptions = {},
  ) {
    const text = readText(path);
    super(loadPolicyText(text, path, opts.checks ?? []));
    this.lastText = text;
    this.checks = opts.checks ?? [];
    try {
      this.watcher = watch(dirname(path), { persistent: false }, () => this.schedule());
      this.watcher.on('error', (err) => logger.warn({ policyFile: path, err: err.message }, 'policy directory watch failed; relying on polling'));
    } catch (err) {
      logger.warn({ policyFile: path, err: (err as Error).message }, 'cannot watch the policy directory; relying on polling');
    }
    if (opts.pollMs) {
      this.poll = setInterval(() => this.settle(), opts.pollMs);
      this.poll.unref();
    }
  }

  /** Re-read now; true when a new policy took effect. */
  reload(): boolean {
    const text = this.read();
    return text !== undefined && this.apply(text);
  }

  close(): void {
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
    if (this.poll) clearInterval(this.poll);
  }

  private read(): string | undefined {
    try {
      return readText(this.path);
    } catch (err) {
      // Mid-swap the file can be missing for an instant; the next event or poll retries.
      this.fail((err as PolicyError).problems);
      return undefined;
    }
  }

  /**
   * Events and polls apply a change only once two reads a debounce apart agree: a writer that
   * truncates and then writes (not an atomic rename) is caught between the two and waited for.
   * A file that stays empty or rule-less is refused by validation, keeping the old policy.
   */
  private settle(): void {
    const text = this.read();
    if (text === undefined || text === this.lastText) {
      this.pendingText = undefined;
      return;
    }
    if (text !== this.pendingText) {
      this.pendingText = text;
      this.schedule();
      return;
    }
    this.pendingText = undefined;
    this.apply(text);
  }

  private apply(text: string): boolean {
    if (text === this.lastText) return false;
    this.lastText = text; // a bad version is reported once, not on every poll
    let policy: ResolvedPolicy;
    try {
      policy = loadPolicyText(text, this.path, this.checks);
    } catch (err) {
      this.fail(err instanceof PolicyError ? err.problems : [String(err)]);
      return false;
    }
    const errors = this.set(policy);
    this.metrics.reloads.inc();
    this.logger.info({ policyFile: this.path, policy: policy.name, rules: policy.guardrails.rules.length }, 'policy reloaded');
    for (const err of errors) this.logger.error({ err: err.message }, 'policy subscriber failed on reload');
    return true;
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.settle();
    }, this.opts.debounceMs ?? 250);
    this.timer.unref();
  }

  private fail(problems: readonly string[]): void {
    this.logger.error({ policyFile: this.path, problems }, 'policy reload failed: keeping the previous policy');
    this.metrics.reloadFailures.inc();
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new PolicyError(path, [`cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
}
