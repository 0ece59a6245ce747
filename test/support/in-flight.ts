import type { Registry } from 'prom-client';

/**
 * Every in-process proxy a test starts is tracked here, and the shared afterEach (test/support/jest-setup.ts)
 * fails the test when one still counts a request in flight: every exchange, whatever ended it (an answer, a
 * block, a refusal, a failure, the client leaving), must reach the proxy's one completion path.
 */
interface Tracked {
  registry: Registry;
  /** Requests still in flight when the test closed the proxy (after a short grace). */
  leftAtClose?: number;
  closed: boolean;
}

const tracked = new Set<Tracked>();
/** Time an exchange may take to finish after the client saw its end (logs and traces land asynchronously). */
const GRACE_MS = 2000;

async function inFlight(registry: Registry): Promise<number> {
  const gauge = registry.getSingleMetric('akto_proxy_in_flight_requests');
  if (!gauge) return 0;
  return (await gauge.get()).values[0]?.value ?? 0;
}

async function settled(registry: Registry): Promise<number> {
  const end = Date.now() + GRACE_MS;
  for (;;) {
    const n = await inFlight(registry);
    if (n === 0 || Date.now() > end) return n;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Tracks a running proxy (its close() is wrapped to note what was still in flight when the test closed it). */
export function trackInFlight<T extends { close(): Promise<void> }>(proxy: T, registry: Registry): T {
  const t: Tracked = { registry, closed: false };
  tracked.add(t);
  const close = proxy.close.bind(proxy);
  proxy.close = async () => {
    if (!t.closed) {
      t.closed = true;
      t.leftAtClose = await settled(registry);
    }
    await close();
  };
  return proxy;
}

/** Throws when a proxy of the test leaked a request; forgets the proxies the test closed. */
export async function expectNoneInFlight(): Promise<void> {
  const leaks: number[] = [];
  for (const t of [...tracked]) {
    const left = t.closed ? (t.leftAtClose ?? 0) : await settled(t.registry);
    if (t.closed) tracked.delete(t);
    if (left > 0) leaks.push(left);
  }
  if (leaks.length > 0) throw new Error(`requests still in flight after the test: ${leaks.join(', ')} (every exchange must complete)`);
}
