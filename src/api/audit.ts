/**
 * The audit trail: one line per API request — who (client and address), what (interaction, resource type,
 * parameter NAMES), how it ended (status, result count). Kept in its own pino destination, apart from
 * the application log; it never holds parameter values, so no patient names, ids or birth dates.
 */
import pino, { type Logger } from 'pino';

export interface AuditRecord {
  client: string;
  /** The client's network address (Express req.ip: the proxy's view when trustProxy is set). */
  address: string;
  method: string;
  interaction: 'read' | 'search-type' | 'capabilities' | 'other';
  resourceType?: string;
  /** Resource id of a read (a Study Instance UID or an Endpoint id). */
  id?: string;
  params: string[];
  count?: number;
  status: number;
  ms: number;
}

/** An audit logger writing to a file (created with its folder), "stdout", "stderr", or a stream. */
export function createAuditLogger(destination: string | pino.DestinationStream): Logger {
  const dest =
    typeof destination !== 'string'
      ? destination
      : destination === 'stdout'
        ? pino.destination(1)
        : destination === 'stderr'
          ? pino.destination(2)
          : pino.destination({ dest: destination, mkdir: true, sync: false });
  return pino({ base: { log: 'audit' }, timestamp: pino.stdTimeFunctions.isoTime, messageKey: 'event' }, dest);
}

export function writeAudit(logger: Logger, r: AuditRecord): void {
  logger.info(r, 'fhir-request');
}
