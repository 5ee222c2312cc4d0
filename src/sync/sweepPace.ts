/**
 * The sweep's request budget. A sweep runs inside `runPaced`, and the PACS source's `beforeRequest` hook
 * (`pacedRequest`) makes every request started in that async context wait its turn; polls and API
 * lookups on the same source run outside it and are never held back.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { SourceLogger } from '../dicomweb';
import { offsetAtInstant } from '../time';
import type { SweepSettings } from './config';

/** Spaces request starts at 60 000 / rate ms (the rate read at each request, so it can change by the hour). */
export class RequestPacer {
  private nextAt = 0;

  constructor(
    private readonly ratePerMinute: (now: Date) => number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Resolves when the next request may start. */
  async acquire(): Promise<void> {
    const now = this.clock();
    const at = Math.max(now, this.nextAt);
    this.nextAt = at + 60_000 / this.ratePerMinute(new Date(now));
    if (at > now) await new Promise((resolve) => setTimeout(resolve, at - now));
  }
}

/** Minutes past local midnight in a zone (IANA name or "+HHMM"). */
function localMinutes(timezone: string, at: Date): number {
  const offset = offsetAtInstant(timezone, at.getTime()) ?? 0;
  const local = new Date(at.getTime() + offset * 60_000);
  return local.getUTCHours() * 60 + local.getUTCMinutes();
}

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** The sweep's budget at an instant: the clinical-hours rate inside them (windows may wrap midnight). */
export function sweepRate(sweep: SweepSettings, timezone: string): (now: Date) => number {
  const hours = sweep.clinicalHours;
  if (!hours) return () => sweep.maxRequestsPerMinute;
  const from = minutesOf(hours.from);
  const to = minutesOf(hours.to);
  return (now) => {
    const t = localMinutes(timezone, now);
    const inside = from <= to ? t >= from && t < to : t >= from || t < to;
    return inside ? hours.maxRequestsPerMinute : sweep.maxRequestsPerMinute;
  };
}

const paced = new AsyncLocalStorage<RequestPacer>();

/** The PACS source's `beforeRequest` hook: waits for the budget when called from inside a sweep. */
export function pacedRequest(): Promise<void> | void {
  return paced.getStore()?.acquire();
}

/** Runs `fn` (and everything it starts) under `pacer`. */
export function runPaced<T>(pacer: RequestPacer, fn: () => Promise<T>): Promise<T> {
  return paced.run(pacer, fn);
}

/**
 * A source logger that says each distinct warning once until `reset()` (each sweep), at debug level
 * afterwards: the same unreadable study must not fill the log every poll.
 */
export function warnOnce(log: SourceLogger): SourceLogger & { reset(): void } {
  const said = new Set<string>();
  return {
    warn(obj, msg) {
      const key = `${msg}\u0000${JSON.stringify(obj)}`;
      if (said.has(key)) return log.debug?.(obj, msg);
      said.add(key);
      log.warn(obj, msg);
    },
    debug: (obj, msg) => log.debug?.(obj, msg),
    reset: () => said.clear(),
  };
}
