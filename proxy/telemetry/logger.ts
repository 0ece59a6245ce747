import pino, { Logger, LevelWithSilent } from 'pino';

export type { Logger };

/** Header names whose values never reach a log line, a trace or an error. */
export const SECRET_HEADERS: readonly string[] = ['authorization', 'cookie', 'set-cookie', 'x-api-key', 'proxy-authorization'];

/**
 * The one logger of the process: pino JSON to stdout (fd 1). Nothing else writes to stdout.
 * `destination` exists so tests can capture lines; production always passes nothing.
 */
export function createLogger(level: LevelWithSilent = 'info', destination?: pino.DestinationStream): Logger {
  // Header maps may sit at the top of a log object or one level down (req, res, response, ...).
  const redactPaths = SECRET_HEADERS.flatMap((h) => [`headers["${h}"]`, `*.headers["${h}"]`]);
  return pino(
    {
      level,
      base: { svc: 'akto-agent-proxy' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: redactPaths, censor: '<redacted>' },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
