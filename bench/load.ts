import http from 'node:http';

export interface PacedResult {
  /** Milliseconds from sending each request to the last byte of its answer, for 2xx answers. */
  latencies: number[];
  errors: number;
  /** Requests the generator could not start on time (it fell behind the rate). */
  late: number;
}

/**
 * An open-loop load generator that spaces requests evenly at `rate` per second. autocannon's
 * `overallRate` sends in bursts per connection, which measures its own queueing more than the
 * server; even pacing makes a fixed-rate latency comparison meaningful on a small machine.
 */
export async function pacedLoad(opts: { url: string; body: string; headers: Record<string, string>; rate: number; seconds: number }): Promise<PacedResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const url = new URL(opts.url);
  const body = Buffer.from(opts.body);
  const headers = { ...opts.headers, 'content-length': String(body.length) };
  const latencies: number[] = [];
  let errors = 0;
  let late = 0;
  let pending = 0;
  const total = Math.round(opts.rate * opts.seconds);
  const intervalNs = 1e9 / opts.rate;
  const start = process.hrtime.bigint();

  const send = (): void => {
    pending++;
    const t0 = process.hrtime.bigint();
    const req = http.request(url, { method: 'POST', headers, agent }, (res) => {
      res.resume();
      res.on('end', () => {
        pending--;
        if (res.statusCode !== undefined && res.statusCode < 300) latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        else errors++;
      });
    });
    req.on('error', () => {
      pending--;
      errors++;
    });
    req.end(body);
  };

  for (let i = 0; i < total; i++) {
    const due = start + BigInt(Math.round(i * intervalNs));
    if (process.hrtime.bigint() - due > BigInt(Math.round(intervalNs))) late++;
    for (let now = process.hrtime.bigint(); now < due; now = process.hrtime.bigint()) await sleepNs(due - now);
    send();
  }
  while (pending > 0) await new Promise((r) => setTimeout(r, 5));
  agent.destroy();
  return { latencies, errors, late };
}

function sleepNs(ns: bigint): Promise<void> {
  // Timers have millisecond resolution: sleep most of the gap, then yield until the due time.
  const ms = Number(ns / 1_000_000n);
  return ms >= 2 ? new Promise((r) => setTimeout(r, ms - 1)) : new Promise((r) => setImmediate(r));
}
