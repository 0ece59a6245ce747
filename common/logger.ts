import pino, { Logger, LevelWithSilent } from 'pino';
import type { SecretScrubber } from './scrub';
import { isObject } from './json';

export type { Logger };

/** Header names whose values never reach a log line, a trace or an error. */
export const SECRET_HEADERS: readonly string[] = ['authorization', 'cookie', 'set-cookie', 'x-api-key', 'proxy-authorization'];

const CENSOR = '<redacted>';
const SECRET = new Set(SECRET_HEADERS);

type Obj = Record<string, unknown>;

/** A copy of a header map with secret values censored, or the map itself when it holds none. */
function censorHeaders(headers: Obj): Obj {
  let out: Obj | undefined;
  for (const name of SECRET) {
    if (headers[name] === undefined) continue;
    out ??= { ...headers };
    out[name] = CENSOR;
  }
  return out ?? headers;
}

/** A shallow copy with other headers; an Error keeps its message and stack (own, not enumerable) for pino's err serializer. */
function withHeaders(value: Obj, headers: Obj): Obj {
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) return { ...value, headers };
  const copy = Object.create(proto as object, Object.getOwnPropertyDescriptors(value)) as Obj;
  Object.defineProperty(copy, 'headers', { value: headers, enumerable: true, writable: true, configurable: true });
  return copy;
}

/**
 * Secret headers censored in a header map at the top of a log object or one level down (req, res,
 * response, ...). Copies what it changes: the caller's objects are left alone.
 */
export function redactLogObject(obj: Obj): Obj {
  let out: Obj | undefined;
  for (const key of Object.keys(obj)) {
    const value = obj[key];
    if (!isObject(value)) continue;
    let next = value;
    if (key === 'headers') next = censorHeaders(value);
    else if (isObject(value.headers)) {
      const headers = censorHeaders(value.headers);
      if (headers !== value.headers) next = withHeaders(value, headers);
    }
    if (next === value) continue;
    out ??= { ...obj };
    out[key] = next;
  }
  return out ?? obj;
}

/**
 * The one logger of the process: pino JSON to stdout (fd 1). Nothing else writes to stdout.
 * `destination` exists so tests can capture lines; production always passes nothing. Every line
 * passes the process's secret scrubber last, whatever field or message carries the value.
 */
export function createLogger(level: LevelWithSilent = 'info', destination?: pino.DestinationStream, secrets?: SecretScrubber): Logger {
  const scrubber = secrets && !secrets.empty ? secrets : undefined;
  return pino(
    {
      level,
      base: { svc: 'akto-agent-proxy' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // One pass over the log object's keys, not pino's `redact` with a `*.headers` wildcard: that runs
      // its redactor over every field of every line and cost ~10% of a proxied request's CPU.
      formatters: { level: (label) => ({ level: label }), log: redactLogObject },
      ...(scrubber ? { hooks: { streamWrite: (line: string) => scrubber.scrub(line) } } : {}),
    },
    destination ?? bufferedStdout(),
  );
}

/** Lines wait until this much is pending, or at most LOG_FLUSH_MS, and go out in one write. */
const LOG_BUFFER_BYTES = 4096;
const LOG_FLUSH_MS = 100;

/**
 * stdout written asynchronously in batches: a write per line meant a thread-pool round trip per proxied
 * request, ~10% of its time in a --cpu-prof of the bench load. The timer keeps a quiet proxy's lines prompt.
 */
function bufferedStdout(): pino.DestinationStream {
  const dest = pino.destination({ fd: 1, sync: false, minLength: LOG_BUFFER_BYTES });
  setInterval(() => {
    try {
      dest.flush();
    } catch {
      // destroyed at exit: nothing left to write
    }
  }, LOG_FLUSH_MS).unref();
  return dest;
}
