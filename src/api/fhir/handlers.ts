/**
 * The FHIR interactions as named handlers: capabilities, ImagingStudy read and search, Endpoint read
 * and search. Access control and the audit line's frame come from middleware.ts; answers from the
 * StudyLookup the router was given.
 */
import type { Request, RequestHandler, Response } from 'express';
import type { ApiConfig } from '../config';
import { searchBundle } from './bundle';
import { capabilityStatement } from './capability';
import { decodeCursor, previousCursor } from './cursor';
import { auditNames, locals, queryPairs, sendFhir } from './http';
import { requireScope } from './middleware';
import { FhirError } from './outcome';
import {
  isRestricted,
  parseEndpointId,
  parseEndpointSearch,
  parseImagingStudySearch,
  parseStudyId,
  wantsStrict,
  type ParseOptions,
} from './params';
import type { StudyLookup } from './studies';

export interface HandlerContext {
  config: ApiConfig;
  lookup: StudyLookup;
  version: string;
}

export interface FhirHandlers {
  capabilities: RequestHandler;
  readImagingStudy: RequestHandler;
  searchImagingStudies: RequestHandler;
  readEndpoint: RequestHandler;
  searchEndpoints: RequestHandler;
}

/** Whether an If-None-Match header names this version (weak comparison, as for GET). */
function ifNoneMatch(header: string | undefined, versionId: string): boolean {
  if (!header) return false;
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag.replace(/^W\//, '') === `"${versionId}"`;
  });
}

/** A search's common start: audit what is asked (parameter names only) and check the scope. */
function auditSearch(res: Response, resourceType: 'ImagingStudy' | 'Endpoint', params: string[]): void {
  Object.assign(locals(res).audit, { interaction: 'search-type', resourceType, params });
  requireScope(res, resourceType, 'search');
}

function startSearch(req: Request, res: Response, resourceType: 'ImagingStudy' | 'Endpoint'): [string, string][] {
  const pairs = queryPairs(req);
  auditSearch(res, resourceType, auditNames(pairs));
  return pairs;
}

/** A read's prologue: named in the audit line, its scope checked, then its id parsed (400 when malformed). */
function startRead(
  req: Request,
  res: Response,
  resourceType: 'ImagingStudy' | 'Endpoint',
  parseId: (raw: string) => string,
): string {
  const a = locals(res).audit;
  Object.assign(a, { interaction: 'read', resourceType });
  requireScope(res, resourceType, 'read');
  const id = parseId(req.params.id as string);
  a.id = id;
  return id;
}

export function createFhirHandlers({ config: cfg, lookup: service, version }: HandlerContext): FhirHandlers {
  const parseOptions = (req: Request): ParseOptions => ({
    defaultCount: cfg.defaultCount,
    maxCount: cfg.maxCount,
    maxValueLength: cfg.maxValueLength,
    strict: wantsStrict(req.get('prefer')),
    patientIdRule: cfg.patientIdRule,
  });
  const baseOf = (req: Request) =>
    (cfg.baseUrl ?? `${req.protocol}://${req.get('host')}${req.baseUrl}`).replace(/\/+$/, '');

  const capabilities: RequestHandler = (req, res) => {
    locals(res).audit.interaction = 'capabilities';
    sendFhir(res, 200, capabilityStatement(cfg, baseOf(req), version));
  };

  const readImagingStudy: RequestHandler = async (req, res) => {
    const uid = startRead(req, res, 'ImagingStudy', parseStudyId);
    const a = locals(res).audit;
    const found = await service.read(uid);
    if (!found) throw new FhirError(404, 'not-found', `ImagingStudy/${uid} is not known.`);
    a.count = 1;
    if (found.versionId === undefined) return sendFhir(res, 200, found.resource);
    // StateStore mode: the stored version identifies the content, so a client can revalidate cheaply.
    const etag = `W/"${found.versionId}"`;
    res.setHeader('ETag', etag);
    if (ifNoneMatch(req.get('if-none-match'), found.versionId)) {
      res.status(304).end();
      return;
    }
    sendFhir(res, 200, { ...found.resource, meta: { ...found.resource.meta, versionId: found.versionId } });
  };

  const searchImagingStudies: RequestHandler = async (req, res) => {
    const a = locals(res).audit;
    // What the answer depends on besides the data: the URL, the base it links to, strict handling.
    const renderedKey = `${baseOf(req)}|${wantsStrict(req.get('prefer'))}|${req.originalUrl}`;
    const hit = service.rendered?.lookup(renderedKey);
    if (hit) {
      auditSearch(res, 'ImagingStudy', hit.params);
      if (hit.includeEndpoint) requireScope(res, 'Endpoint', 'read');
      a.count = hit.count;
      sendFhir(res, 200, hit.body);
      return;
    }
    const parsed = parseImagingStudySearch(startSearch(req, res, 'ImagingStudy'), parseOptions(req));
    if (parsed.includeEndpoint) requireScope(res, 'Endpoint', 'read');
    const restricted = isRestricted(parsed.criteria);
    if (!restricted && !cfg.allowUnrestrictedSearch) {
      throw new FhirError(
        400,
        'too-costly',
        'A search needs at least one restricting parameter (_id, identifier, patient, subject, started or series); this server does not list the whole PACS.',
      );
    }
    const base = baseOf(req);
    if (parsed.summaryCount) {
      const total = await service.count(parsed.criteria);
      a.count = total;
      sendFhir(
        res,
        200,
        searchBundle({
          base,
          resourceType: 'ImagingStudy',
          used: parsed.used,
          count: parsed.count,
          matches: [],
          total,
        }),
      );
      return;
    }
    const cursor = decodeCursor(parsed.cursor, service.sourceCount);
    const page = await service.search({ criteria: parsed.criteria, count: parsed.count, cursor });
    const includes = parsed.includeEndpoint
      ? [...new Set(page.studies.map((s) => s.sourceId))].flatMap((id) => service.endpointOf(id) ?? [])
      : [];
    a.count = page.studies.length;
    const body = JSON.stringify(
      searchBundle({
        base,
        resourceType: 'ImagingStudy',
        used: parsed.used,
        count: parsed.count,
        cursor,
        next: page.next,
        previous: previousCursor(cursor, parsed.count),
        matches: page.studies.map((s) => s.resource),
        total: page.total,
        includes,
        problems: page.problems,
      }),
    );
    service.rendered?.set(renderedKey, {
      body: Buffer.from(body),
      params: a.params,
      count: a.count,
      includeEndpoint: parsed.includeEndpoint,
    });
    sendFhir(res, 200, body);
  };

  const readEndpoint: RequestHandler = async (req, res) => {
    const id = startRead(req, res, 'Endpoint', parseEndpointId);
    const a = locals(res).audit;
    const endpoint = service.endpoint(id);
    if (!endpoint) throw new FhirError(404, 'not-found', `Endpoint/${id} is not known.`);
    a.count = 1;
    sendFhir(res, 200, endpoint);
  };

  const searchEndpoints: RequestHandler = async (req, res) => {
    const a = locals(res).audit;
    const parsed = parseEndpointSearch(startSearch(req, res, 'Endpoint'), parseOptions(req));
    const all = service.endpoints().filter((e) => !parsed.ids || parsed.ids.includes(e.id!));
    a.count = all.length;
    // Endpoints are one per source: a page always holds them all unless _count is smaller; a count holds none.
    sendFhir(
      res,
      200,
      searchBundle({
        base: baseOf(req),
        resourceType: 'Endpoint',
        used: parsed.used,
        count: parsed.count,
        matches: parsed.summaryCount ? [] : all.slice(0, parsed.count),
        total: all.length,
      }),
    );
  };

  return { capabilities, readImagingStudy, searchImagingStudies, readEndpoint, searchEndpoints };
}
