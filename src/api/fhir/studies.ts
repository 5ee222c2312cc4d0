/**
 * Where ImagingStudy answers come from: one `StudyLookup`, built by `createStudyLookup` (lookup.ts) from
 * the configuration. `live` (liveLookup.ts) asks the PACS and maps with the mapper; the cache
 * (cachedLookup.ts) wraps it; `store` (storeLookup.ts) reads what sync stored and falls back to the
 * cached live lookup for studies it does not hold. All run the same result filter (match.ts), so a
 * study looks the same and matches the same way either way.
 */
import type { Endpoint, ImagingStudy, OperationOutcomeIssue } from 'fhir/r4';
import type { SourceConfig } from '../../config';
import { PacsError, type PacsSource } from '../../dicomweb';
import { endpointFor, endpointId } from '../../mapping';
import type { Logger } from '../../log';
import type { ApiConfig } from '../config';
import type { ResourceRepository } from '../../state';
import type { AnswerCache } from './cache';
import type { Cursor } from './cursor';
import { FhirError } from './outcome';
import type { Criterion } from './params';

export interface ApiSource {
  config: SourceConfig;
  pacs: PacsSource;
}

/** What the API needs of the store: its resources and their search index. */
export type StudyStore = Pick<ResourceRepository, 'get' | 'searchImagingStudies'>;

export interface FoundStudy {
  sourceId: string;
  resource: ImagingStudy;
  /** The stored version (store-mode reads), for ETag and meta.versionId. */
  versionId?: string;
  /** When the store last wrote it (store mode), for `_sort=_lastUpdated`. */
  lastUpdated?: string;
}

export interface StudyPage {
  studies: FoundStudy[];
  next?: Cursor;
  /** Matches of the whole search, when known (store mode; live mode when every source was listed whole). */
  total?: number;
  /** Studies the mapper could not represent, reported in the Bundle as outcome issues. */
  problems: OperationOutcomeIssue[];
}

export interface SearchRequest {
  criteria: Criterion[];
  count: number;
  cursor: Cursor;
}

/** Turns a PACS failure into the client's answer: no address, credential or query in it. */
export function pacsFailure(err: unknown, sourceId: string): FhirError {
  if (err instanceof FhirError) return err;
  if (err instanceof PacsError) {
    if (err.kind === 'timeout') return new FhirError(504, 'timeout', `The PACS "${sourceId}" did not answer in time.`);
    if (err.kind === 'auth')
      return new FhirError(502, 'exception', `The PACS "${sourceId}" refused this server's credentials.`);
    return new FhirError(
      502,
      'transient',
      `The PACS "${sourceId}" could not be queried${err.status ? ` (it answered HTTP ${err.status})` : ''}.`,
    );
  }
  return new FhirError(502, 'exception', `The PACS "${sourceId}" could not be queried.`);
}

export interface RenderedSearch {
  /** UTF-8 bytes, so a hit is not encoded again. */
  body: Buffer;
  /** Parameter names for the audit line. */
  params: string[];
  count: number;
  includeEndpoint: boolean;
}

/**
 * What the routers and metrics need of the study lookup: reads, searches and counts in the configured
 * mode (live, or store with its live fallback), the Endpoints, and the caches. Built once (`serve`).
 */
export interface StudyLookup {
  readonly sourceCount: number;
  /** Live search answers as sent, when kept (live mode with the cache on). */
  readonly rendered?: AnswerCache<RenderedSearch>;
  read(studyUid: string): Promise<FoundStudy | null>;
  search(req: SearchRequest): Promise<StudyPage>;
  count(criteria: Criterion[]): Promise<number>;
  endpoints(): Endpoint[];
  endpoint(id: string): Endpoint | undefined;
  endpointOf(sourceId: string): Endpoint | undefined;
  /** The time zone a source's offset-less times are read in (its defaultTimezone). */
  zoneOf(sourceId: string): string;
  /** The lookup caches by metrics label. */
  caches(): Record<string, AnswerCache<unknown>>;
  close(): void;
}

export interface LookupDeps {
  config: ApiConfig;
  /** Every configured PACS source with its source-layer client. */
  sources: ApiSource[];
  /** The embedded store, needed in store mode. */
  store?: StudyStore;
  logger?: Logger;
}

/** The sources searched (api.searchSources, in that order) and the Endpoints of every source. */
export abstract class SourceDirectory {
  readonly searchSources: ApiSource[];

  constructor(
    readonly allSources: ApiSource[],
    searchSourceIds: string[] | undefined,
  ) {
    const byId = new Map(allSources.map((s) => [s.config.id, s]));
    this.searchSources = (searchSourceIds ?? allSources.map((s) => s.config.id)).map((id) => {
      const s = byId.get(id);
      if (!s) throw new Error(`api.searchSources names "${id}", which is not a configured source`);
      return s;
    });
  }

  get sourceCount(): number {
    return this.searchSources.length;
  }

  endpoints(): Endpoint[] {
    return this.allSources.map((s) => endpointFor(s.config));
  }

  endpoint(id: string): Endpoint | undefined {
    const s = this.allSources.find((src) => endpointId(src.config.id) === id);
    return s && endpointFor(s.config);
  }

  endpointOf(sourceId: string): Endpoint | undefined {
    const s = this.allSources.find((src) => src.config.id === sourceId);
    return s && endpointFor(s.config);
  }

  zoneOf(sourceId: string): string {
    return this.allSources.find((src) => src.config.id === sourceId)?.config.defaultTimezone ?? 'UTC';
  }
}
