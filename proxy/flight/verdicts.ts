import type { ExchangeHooks, ResponseInspection } from '../hooks';
import type { OversizeAction } from '../policy/types';
import type { BlockVerdict, Exchange } from '../protocols/exchange';
import { chainInspectors, type StreamInspector } from '../protocols/stream-filter';
import type { Flight, FlightContext } from './types';

/** Runs onRequest or onResponse in order; the first block wins. A hook that throws is skipped. */
export async function runVerdictHooks(flight: Flight, stage: 'request' | 'response'): Promise<BlockVerdict | undefined> {
  for (const hook of flight.ctx.hooks) {
    const fn = stage === 'request' ? hook.onRequest : hook.onResponse;
    if (!fn) continue;
    try {
      const result = fn.call(hook, flight.ex);
      // Most hooks answer synchronously: awaiting only promises saves a microtask turn per hook.
      const verdict = result instanceof Promise ? await result : result;
      if (verdict) return verdict;
    } catch (err) {
      hookFailed(flight.ctx, hook, stage, err);
    }
    if (flight.done) return undefined;
  }
  return undefined;
}

const OVERSIZE_RANK: Record<OversizeAction, number> = { allow: 0, scan: 1, block: 2 };

/** The strictest answer of the hooks that inspect this response (block over scan over allow), or undefined. */
export function responseInspection(ctx: FlightContext, ex: Exchange): ResponseInspection | undefined {
  let found: ResponseInspection | undefined;
  for (const hook of ctx.hooks) {
    let r: ResponseInspection | undefined;
    try {
      r = hook.responseInspection?.(ex);
    } catch (err) {
      hookFailed(ctx, hook, 'response', err);
    }
    if (r && (!found || OVERSIZE_RANK[r.onOversize] > OVERSIZE_RANK[found.onOversize])) found = r;
  }
  return found;
}

/** The stream filters of the hooks that inspect this exchange's response, chained; undefined when none does. */
export function responseInspector(ctx: FlightContext, ex: Exchange): StreamInspector | undefined {
  return chainInspectors(ctx.hooks.map((h) => openStream(ctx, h, ex)).filter((i): i is StreamInspector => i !== undefined));
}

function openStream(ctx: FlightContext, hook: ExchangeHooks, ex: Exchange): StreamInspector | undefined {
  if (!hook.openStream) return undefined;
  try {
    return hook.openStream(ex);
  } catch (err) {
    hookFailed(ctx, hook, 'stream', err);
    return undefined;
  }
}

/** A final check that throws is logged and counted like a failed hook; the stream then ends as it was. */
export async function finalVerdict(ctx: FlightContext, check: () => Promise<BlockVerdict | undefined>): Promise<BlockVerdict | undefined> {
  try {
    return await check();
  } catch (err) {
    ctx.metrics.hookErrors.inc({ hook: 'stream', phase: 'final_check' });
    ctx.logger.error({ phase: 'final_check', err: errorSummary(err) }, 'stream final check failed; the stream ends as it was');
    return undefined;
  }
}

export function hookFailed(ctx: FlightContext, hook: ExchangeHooks, phase: string, err: unknown): void {
  ctx.metrics.hookErrors.inc({ hook: hook.name, phase });
  ctx.logger.error({ hook: hook.name, phase, err: errorSummary(err) }, 'hook failed; request continues');
}

export function errorSummary(err: unknown): { message: string; name?: string } {
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { message: String(err) };
}
