/**
 * The application logger: JSON lines (pino) in production, readable on a terminal. Log lines go to
 * stderr, so a command's stdout carries only its own output (`--json` stays parseable). Patient data must
 * never reach a log line, so common PHI keys are redacted as a second line of defence; callers still
 * log only UIDs, counts and codes.
 */
import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

const PHI_KEYS = [
  'patientName',
  'patientId',
  'patientID',
  'birthDate',
  'PatientName',
  'PatientID',
  'PatientBirthDate',
  'name',
  'password',
  'token',
  'clientSecret',
  'authorization',
];

export function createLogger(
  options: { level?: string; pretty?: boolean; destination?: pino.DestinationStream } = {},
): Logger {
  const pretty = options.pretty ?? (process.stderr.isTTY && process.env.NODE_ENV !== 'production');
  const base: pino.LoggerOptions = {
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: { paths: [...PHI_KEYS, ...PHI_KEYS.map((k) => `*.${k}`)], censor: '[redacted]' },
    base: { app: 'pacs-fhir-bridge' },
  };
  if (options.destination) return pino(base, options.destination);
  if (pretty)
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:standard', destination: 2 } },
    });
  return pino(base, pino.destination(2));
}

/** A logger that drops everything, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
