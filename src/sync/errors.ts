/** How the sync classifies failures: the PACS or a sink being unreachable is not any one study's fault. */
import { isPacsOutage, PacsError } from '../dicomweb';
import { isFhirOutage } from '../sinks';

/** Raised inside a run when the PACS cannot be reached: the run stops, studies in hand are kept for retry. */
export class SourceUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`PACS unavailable: ${describeError(cause)}`, { cause });
    this.name = 'SourceUnavailableError';
  }
}

/**
 * Raised inside a run when a sink (the FHIR server) is down after its own retries: 5xx, 429 or no answer.
 * The run ends as failed with "sink unavailable"; the studies in hand are kept, no attempt charged.
 */
export class SinkUnavailableError extends Error {
  constructor(
    readonly sink: string,
    detail: string,
  ) {
    super(`sink unavailable: ${sink}: ${detail}`);
    this.name = 'SinkUnavailableError';
  }
}

/** The run ended because the PACS or a sink is down, not because of a bug or a bad study. */
export function isRunOutage(err: unknown): boolean {
  return err instanceof SourceUnavailableError || err instanceof SinkUnavailableError;
}

/** Raised when a run of a source is requested while another run of it is going. */
export class SourceBusyError extends Error {
  constructor(
    readonly sourceId: string,
    /** The process holding the source, when it is another one ('<host>:<pid>'). */
    readonly holder?: string,
  ) {
    super(`a run of source "${sourceId}" is already in progress${holder ? ` (in ${holder})` : ''}`);
    this.name = 'SourceBusyError';
  }
}

/**
 * The PACS is down: a PacsError that says so (src/dicomweb's isPacsOutage), or a connection error from a
 * source that is not the DICOMweb one.
 */
export function isSourceOutage(err: unknown): boolean {
  if (err instanceof PacsError) return isPacsOutage(err);
  if (!err || typeof err !== 'object') return false;
  const code = (err as { code?: string }).code;
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ETIMEDOUT';
}

/** A sink that threw (instead of returning outcomes) because its server is down. */
export function isSinkOutage(err: unknown): boolean {
  return isFhirOutage(err);
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
