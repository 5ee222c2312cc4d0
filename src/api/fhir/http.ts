/**
 * What the FHIR middleware and handlers share about one exchange: the per-request locals (who asks,
 * what the audit line will say), FHIR JSON answers, and the query string read strictly.
 */
import type { Request, Response } from 'express';
import type { Resource } from 'fhir/r4';
import type { AuditRecord } from '../audit';
import type { Principal } from '../auth';
import { badRequest } from './outcome';
import { ENDPOINT_PARAMS, IMAGING_STUDY_PARAMS, RESULT_PARAMS } from './params';

const FHIR_JSON = 'application/fhir+json; charset=utf-8';

export interface Locals {
  principal?: Principal;
  audit: Omit<AuditRecord, 'status' | 'ms' | 'client' | 'address' | 'method'>;
}

export const locals = (res: Response) => res.locals as Locals;

export function sendFhir(res: Response, status: number, body: Resource | string | Buffer): void {
  res
    .status(status)
    .type(FHIR_JSON)
    .send(typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
}

const KNOWN_NAMES = new Set([
  ...[...IMAGING_STUDY_PARAMS, ...RESULT_PARAMS, ...ENDPOINT_PARAMS].flatMap((p) => [
    p.name,
    ...(p.modifiers ?? []).map((m) => `${p.name}:${m}`),
    ...(p.chains ?? []).map((c) => `${p.name}.${c}`),
  ]),
  '_include',
]);

/** Parameter names for the audit line: a client could put anything in a name, so unknown ones are not written. */
export function auditNames(pairs: [string, string][]): string[] {
  return [...new Set(pairs.map(([n]) => (KNOWN_NAMES.has(n) ? n : '(unknown)')))];
}

/**
 * One form-encoded query component, strictly: invalid UTF-8 or a broken percent-escape is a 400
 * (URLSearchParams would turn it into U+FFFD, which then reaches the PACS as something else).
 */
function decodeComponent(raw: string, name: string | undefined): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    throw badRequest(
      `${name === undefined ? 'A parameter name' : `Parameter "${name}"`} is not valid percent-encoded UTF-8.`,
      name,
    );
  }
}

/** Query pairs exactly as sent (order kept, repeats kept), from the raw URL. */
export function queryPairs(req: Request): [string, string][] {
  const q = req.originalUrl.indexOf('?');
  if (q < 0) return [];
  return req.originalUrl
    .slice(q + 1)
    .split('&')
    .filter((part) => part !== '')
    .map((part) => {
      const eq = part.indexOf('=');
      const name = decodeComponent(eq < 0 ? part : part.slice(0, eq), undefined);
      return [name, eq < 0 ? '' : decodeComponent(part.slice(eq + 1), name)];
    });
}
