import { type Guardrails } from '../../proxy/guardrails';
import { openGuardrails } from './guardrails';
import type { Exchange } from '../../proxy/protocols/exchange';
import { startStubUpstream, type StubUpstream } from '../fixtures/stub-upstream';
import { startTestProxy, type TestProxy } from './proxy-harness';

export interface GuardedProxy {
  proxy: TestProxy;
  /** Exchanges as the proxy finished them (outcome, findings, decision record), in completion order. */
  completed: Exchange[];
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** The proxy as main wires it: guardrails first, on the same logger and registry, plus a probe that keeps finished exchanges. */
export async function startGuarded(upstream: string, env: Record<string, string>): Promise<GuardedProxy> {
  const completed: Exchange[] = [];
  const probe = { name: 'probe', onComplete: (ex: Exchange) => void completed.push(ex) };
  let guardrails: Guardrails | undefined;
  const proxy = await startTestProxy(upstream, env, async ({ env: fullEnv, logger, registry }) => {
    guardrails = await openGuardrails(fullEnv, logger, registry);
    return [guardrails.hooks, probe];
  });
  return {
    proxy,
    completed,
    logs: proxy.logs,
    async close() {
      await proxy.close();
      guardrails?.close();
    },
  };
}

/**
 * A stub upstream and a guarded proxy in front of it for the tests of the enclosing describe: started before
 * them, stopped after. Read `stub` and `g` inside the tests.
 */
export function useGuardedStub(env: Record<string, string> = {}): { readonly stub: StubUpstream; readonly g: GuardedProxy } {
  const ctx = {} as { stub: StubUpstream; g: GuardedProxy };
  beforeAll(async () => {
    ctx.stub = await startStubUpstream();
    ctx.g = await startGuarded(ctx.stub.url, env);
  });
  afterAll(async () => {
    await ctx.g.close();
    await ctx.stub.close();
  });
  return ctx;
}
