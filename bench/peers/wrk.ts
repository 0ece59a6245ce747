import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pinned } from '../support';

/** One wrk run: every system is driven by the same generator, so their numbers differ only by the system. */
export interface WrkRun {
  url: string;
  headers: Record<string, string>;
  body: string;
  connections: number;
  seconds: number;
  /** Requests per second to pace at; absent = as fast as the connections allow (saturation). */
  rate?: number;
  /** CPUs the generator runs on (taskset list). */
  cpus?: string;
}

export interface WrkResult {
  requests: number;
  /** Connect/read/write errors, timeouts and non-2xx answers. */
  errors: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  /** Requests sent more than one interval after their slot: the system (or generator) fell behind the rate. */
  late: number;
}

/** Where a body template takes the request's number (bench/peers.ts: every prompt is new). */
export const REQUEST_NUMBER = '{{request-number}}';

/**
 * A request's number in letters (1 → "b", 26 → "ba"). Digits would not make prompts new: the anomaly detector's
 * prompt fingerprint reads every digit run as "0", so numbered prompts all looked like one agent loop.
 */
export function requestLabel(n: number): string {
  let out = '';
  do {
    out = String.fromCharCode(97 + (n % 26)) + out;
    n = Math.floor(n / 26);
  } while (n > 0);
  return out;
}

/**
 * wrk's Lua hooks, generated per run. Pacing: one thread owns a schedule of evenly spaced slots and each
 * connection, when its answer is in, waits for the next free slot (`delay`). Latency is timed by wrk from
 * the write of each request, in microseconds. LuaJIT's ffi gives a monotonic clock; wrk has none in Lua.
 */
export function wrkScript(run: Pick<WrkRun, 'headers' | 'body' | 'rate'>): string {
  const long = (s: string): string => {
    let eq = '';
    while (s.includes(`]${eq}]`)) eq += '=';
    return `[${eq}[${s}]${eq}]`;
  };
  const headers = Object.entries(run.headers)
    .map(([k, v]) => `wrk.headers[ ${long(k)} ] = ${long(v)}`)
    .join('\n');
  const pacing =
    run.rate === undefined
      ? ''
      : `
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } akto_ts; int clock_gettime(int clk, akto_ts *tp); ]]
local ts = ffi.new("akto_ts")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local interval = 1000 / ${run.rate}
local next_slot = nil
late = 0
function delay()
  local now = now_ms()
  if next_slot == nil then next_slot = now end
  local slot = next_slot
  next_slot = next_slot + interval
  if now - slot > interval then late = late + 1 end
  if slot <= now then return 0 end
  return math.floor(slot - now + 0.5)
end
`;
  const [head, ...rest] = run.body.split(REQUEST_NUMBER);
  // Each request's body gets its own number (requestLabel, in Lua) where the template has REQUEST_NUMBER.
  const numbering =
    rest.length === 0
      ? ''
      : `
local body_parts = { ${[head, ...rest].map(long).join(', ')} }
local sent = 0
local function label(n)
  local out = ""
  repeat
    out = string.char(97 + n % 26) .. out
    n = math.floor(n / 26)
  until n == 0
  return out
end
function request()
  sent = sent + 1
  return wrk.format(nil, nil, nil, table.concat(body_parts, label(sent)))
end
`;
  return `wrk.method = "POST"
wrk.body = ${long(run.body)}
${headers}
${pacing}
${numbering}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local late_total = 0
  for _, t in ipairs(threads) do late_total = late_total + (tonumber(t:get("late")) or 0) end
  local e = summary.errors
  io.write(string.format('\\nWRK_RESULT {"requests":%d,"errors":%d,"micros":%d,"p50":%d,"p90":%d,"p99":%d,"late":%d}\\n',
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), late_total))
end
`;
}

export function parseWrkOutput(stdout: string): WrkResult {
  const line = stdout.split('\n').find((l) => l.startsWith('WRK_RESULT '));
  if (!line) throw new Error(`wrk printed no result:\n${stdout.slice(-2000)}`);
  const r = JSON.parse(line.slice('WRK_RESULT '.length)) as { requests: number; errors: number; micros: number; p50: number; p90: number; p99: number; late: number };
  return { requests: r.requests, errors: r.errors, rps: r.requests / (r.micros / 1e6), p50: r.p50 / 1000, p90: r.p90 / 1000, p99: r.p99 / 1000, late: r.late };
}

export async function runWrk(wrkBin: string, run: WrkRun): Promise<WrkResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'akto-wrk-'));
  const script = path.join(dir, 'run.lua');
  fs.writeFileSync(script, wrkScript(run));
  const [cmd, ...args] = pinned(run.cpus, [wrkBin, '-t1', `-c${run.connections}`, `-d${run.seconds}s`, '--timeout', '5s', '-s', script, run.url]);
  try {
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(cmd, args, { timeout: (run.seconds + 30) * 1000 }, (err, out, errOut) => (err ? reject(new Error(`wrk failed: ${err.message}\n${errOut}`)) : resolve(out))),
    );
    return parseWrkOutput(stdout);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
