/**
 * The FHIR interactions as named handlers: capabilities, ImagingStudy read and search, Endpoint read
 * and search. Access control and the audit line's frame come from middleware.ts; answers from the
 * StudyLookup the router was given.
 */
import type { Request, RequestHandler, Response } from 'express';
import type { ApiConfig } from '../config';
import type { OperationOutcomeIssue, Resource } from 'fhir/r4';
import { searchBundle, type PageAt } from './bundle';
import { capabilityStatement } from './capability';
import { decodeCursor, pageAt, previousCursor } from './cursor';
import { subsetElements } from './elements';
import { auditNames, locals, queryPairs, sendFhir } from './http';
import { requireScope } from './middleware';
import { FhirError } from './outcome';
import {
  IMAGING_STUDY_PARAMS,
  isRestricted,
  parseEndpointId,
  parseEndpointSearch,
  parseImagingStudySearch,
  parseStudyId,
  wantsStrict,
  type ParseOptions,
  type ParsedSearch,
} from './params';
import { decodeSortCursor, encodeSortCursor, type SortPosition } from './sort';
import { sortedSearch } from './sortedSearch';
import type { FoundStudy, StudyLookup } from './studies';

/** Matches a live sorted search reads per lookup page (each page is one batched detail fetch, then cached). */
const LIVE_SORT_BATCH = 200;

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

export function createFhirHandlers(ctx: HandlerContext): FhirHandlers {
  return {
    capabilities: (req, res) => capabilities(ctx, req, res),
    readImagingStudy: (req, res) => readImagingStudy(ctx, req, res),
    searchImagingStudies: (req, res) => searchImagingStudies(ctx, req, res),
    readEndpoint: async (req, res) => readEndpoint(ctx, req, res),
    searchEndpoints: async (req, res) => searchEndpoints(ctx, req, res),
  };
}

function parseOptions(cfg: ApiConfig, req: Request): ParseOptions {
  return {
    defaultCount: cfg.defaultCount,
    maxCount: cfg.maxCount,
    maxValueLength: cfg.maxValueLength,
    strict: wantsStrict(req.get('prefer')),
    mode: cfg.mode,
    patientIdRule: cfg.patientIdRule,
  };
}

function baseOf(cfg: ApiConfig, req: Request): string {
  return (cfg.baseUrl ?? `${req.protocol}://${req.get('host')}${req.baseUrl}`).replace(/\/+$/, '');
}

function capabilities({ config, version }: HandlerContext, req: Request, res: Response): void {
  locals(res).audit.interaction = 'capabilities';
  sendFhir(res, 200, capabilityStatement(config, baseOf(config, req), version));
}

async function readImagingStudy({ lookup }: HandlerContext, req: Request, res: Response): Promise<void> {
  const uid = startRead(req, res, 'ImagingStudy', parseStudyId);
  const found = await lookup.read(uid);
  if (!found) throw new FhirError(404, 'not-found', `ImagingStudy/${uid} is not known.`);
  locals(res).audit.count = 1;
  if (found.versionId === undefined) return sendFhir(res, 200, found.resource);
  // StateStore mode: the stored version identifies the content, so a client can revalidate cheaply.
  res.setHeader('ETag', `W/"${found.versionId}"`);
  if (ifNoneMatch(req.get('if-none-match'), found.versionId)) {
    res.status(304).end();
    return;
  }
  sendFhir(res, 200, { ...found.resource, meta: { ...found.resource.meta, versionId: found.versionId } });
}

async function searchImagingStudies(ctx: HandlerContext, req: Request, res: Response): Promise<void> {
  // What the answer depends on besides the data: the URL, the base it links to, strict handling.
  const renderedKey = `${baseOf(ctx.config, req)}|${wantsStrict(req.get('prefer'))}|${req.originalUrl}`;
  if (sendRendered(ctx.lookup, renderedKey, res)) return;
  const parsed = parseRestrictedSearch(ctx.config, req, res);
  if (parsed.summaryCount) return sendStudyCount(ctx, parsed, baseOf(ctx.config, req), res);
  const { body, count } = await studyPage(ctx, parsed, baseOf(ctx.config, req));
  const a = locals(res).audit;
  a.count = count;
  ctx.lookup.rendered?.set(renderedKey, {
    body: Buffer.from(body),
    params: a.params,
    count,
    includeEndpoint: parsed.includeEndpoint,
  });
  sendFhir(res, 200, body);
}

/** Answers from the rendered-page cache when it holds this search; false when it does not. */
function sendRendered(lookup: StudyLookup, renderedKey: string, res: Response): boolean {
  const hit = lookup.rendered?.lookup(renderedKey);
  if (!hit) return false;
  auditSearch(res, 'ImagingStudy', hit.params);
  if (hit.includeEndpoint) requireScope(res, 'Endpoint', 'read');
  locals(res).audit.count = hit.count;
  sendFhir(res, 200, hit.body);
  return true;
}

/** Parses an ImagingStudy search, refusing one that would list the whole PACS unless configured to allow it. */
function parseRestrictedSearch(cfg: ApiConfig, req: Request, res: Response): ParsedSearch {
  const parsed = parseImagingStudySearch(startSearch(req, res, 'ImagingStudy'), parseOptions(cfg, req));
  if (parsed.includeEndpoint) requireScope(res, 'Endpoint', 'read');
  if (!isRestricted(parsed.criteria) && !cfg.allowUnrestrictedSearch) {
    const names = IMAGING_STUDY_PARAMS.filter((p) => p.restricting && (!p.modes || p.modes.includes(cfg.mode)));
    throw new FhirError(
      400,
      'too-costly',
      `A search needs at least one restricting parameter (${names.map((p) => p.name).join(', ')}); this server does not list the whole PACS.`,
    );
  }
  return parsed;
}

/** `_summary=count`: the total alone. */
async function sendStudyCount(
  { lookup }: HandlerContext,
  parsed: ParsedSearch,
  base: string,
  res: Response,
): Promise<void> {
  const total = await lookup.count(parsed.criteria);
  locals(res).audit.count = total;
  const bundle = searchBundle({
    base,
    resourceType: 'ImagingStudy',
    used: parsed.used,
    count: parsed.count,
    matches: [],
    total,
  });
  sendFhir(res, 200, render(bundle, parsed.pretty));
}

/** JSON as sent: indented for `_pretty=true`. */
const render = (body: Resource, pretty: boolean): string => JSON.stringify(body, null, pretty ? 2 : undefined);

/** One page of a search, whichever order it is in, with the links to itself and its neighbours. */
interface PageView {
  studies: FoundStudy[];
  total?: number;
  problems: OperationOutcomeIssue[];
  self?: PageAt;
  next?: PageAt;
  previous?: PageAt;
}

/** One page of matches (with their sources' Endpoints for _include), rendered as a searchset Bundle. */
async function studyPage(
  ctx: HandlerContext,
  parsed: ParsedSearch,
  base: string,
): Promise<{ body: string; count: number }> {
  const { lookup } = ctx;
  const page = parsed.sort.length ? await sortedPage(ctx, parsed) : await lookupPage(lookup, parsed);
  // Every Endpoint the page's studies reference: a study several sources hold names each of theirs.
  const referenced = page.studies.flatMap((s) => (s.resource.endpoint ?? []).map((r) => r.reference?.split('/')[1]));
  const includes = parsed.includeEndpoint
    ? [...new Set(referenced)].flatMap((id) => (id && lookup.endpoint(id)) || [])
    : [];
  const elements = parsed.elements;
  const bundle = searchBundle({
    base,
    resourceType: 'ImagingStudy',
    used: parsed.used,
    count: parsed.count,
    self: page.self,
    next: page.next,
    previous: page.previous,
    matches: page.studies.map((s) => (elements ? subsetElements(s.resource, elements) : s.resource)),
    total: page.total,
    includes,
    problems: page.problems,
  });
  return { body: render(bundle, parsed.pretty), count: page.studies.length };
}

/** A page in the lookup's own order (source by source, id order), at an offset cursor. */
async function lookupPage(lookup: StudyLookup, parsed: ParsedSearch): Promise<PageView> {
  const cursor = decodeCursor(parsed.cursor, lookup.sourceCount);
  const page = await lookup.search({ criteria: parsed.criteria, count: parsed.count, cursor });
  return {
    ...page,
    self: pageAt(cursor),
    next: pageAt(page.next),
    previous: pageAt(previousCursor(cursor, parsed.count)),
  };
}

/** A `_sort` page: keyset positions in its links (sort.ts). */
async function sortedPage({ config, lookup }: HandlerContext, parsed: ParsedSearch): Promise<PageView> {
  const after = parsed.cursor === undefined ? undefined : decodeSortCursor(parsed.cursor, parsed.sort);
  // The store reads every match in one pass anyway; a live page is a batched detail fetch, so smaller.
  const batch = config.mode === 'store' ? config.maxCountScan + 1 : LIVE_SORT_BATCH;
  const page = await sortedSearch(
    lookup,
    { criteria: parsed.criteria, count: parsed.count, sort: parsed.sort, after },
    { batch, cap: config.maxCountScan },
  );
  const at = (p: SortPosition | undefined): PageAt => (p ? { cursor: encodeSortCursor(p) } : {});
  return {
    ...page,
    self: at(after),
    next: page.next && at(page.next),
    previous: page.previous && at(page.previous.after),
  };
}

function readEndpoint({ lookup }: HandlerContext, req: Request, res: Response): void {
  const id = startRead(req, res, 'Endpoint', parseEndpointId);
  const endpoint = lookup.endpoint(id);
  if (!endpoint) throw new FhirError(404, 'not-found', `Endpoint/${id} is not known.`);
  locals(res).audit.count = 1;
  sendFhir(res, 200, endpoint);
}

function searchEndpoints({ config, lookup }: HandlerContext, req: Request, res: Response): void {
  const parsed = parseEndpointSearch(startSearch(req, res, 'Endpoint'), parseOptions(config, req));
  const all = lookup.endpoints().filter((e) => !parsed.ids || parsed.ids.includes(e.id!));
  locals(res).audit.count = all.length;
  // Endpoints are one per source: a page always holds them all unless _count is smaller; a count holds none.
  const page = parsed.summaryCount ? [] : all.slice(0, parsed.count);
  const bundle = searchBundle({
    base: baseOf(config, req),
    resourceType: 'Endpoint',
    used: parsed.used,
    count: parsed.count,
    matches: parsed.elements ? page.map((e) => subsetElements(e, parsed.elements!)) : page,
    total: all.length,
  });
  sendFhir(res, 200, render(bundle, parsed.pretty));
}
