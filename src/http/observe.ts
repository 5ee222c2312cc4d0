/**
 * The one metrics hook of every outbound client: each attempt reports its kind, HTTP status (0 for no
 * answer) and duration. The composition root turns it into BridgeMetrics series (src/metrics).
 */

export type RequestObserver = (kind: string, status: number, seconds: number) => void;

/** Times one attempt and reports it, answered or failed, to the observer (none: nothing recorded). */
export async function observed<T>(
  observer: RequestObserver | undefined,
  kind: string,
  attempt: () => Promise<T>,
  statusOf: { answer(value: T): number; failure(error: unknown): number },
): Promise<T> {
  const started = process.hrtime.bigint();
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
  try {
    const value = await attempt();
    observer?.(kind, statusOf.answer(value), seconds());
    return value;
  } catch (e) {
    observer?.(kind, statusOf.failure(e), seconds());
    throw e;
  }
}

/** Where the clients' observers come from: BridgeMetrics (src/metrics), built once and passed in. */
export interface OutboundMetrics {
  /** Requests to one PACS source; kind is the QIDO level or WADO kind. */
  pacsRequests(sourceId: string): RequestObserver;
  /** Requests to one FHIR server; kind is the interaction (transaction, read, metadata, …). */
  fhirRequests(server: string): RequestObserver;
}
