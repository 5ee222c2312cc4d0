/**
 * A strictly conforming QIDO-RS responder for tests: a real PACS (the test Orthanc) behind a conformance filter.
 * Orthanc returns more than it is asked for (0008,0005, RetrieveURL, any tag it indexes) and never returns
 * sequences, so tests against it alone cannot tell whether the bridge asks for what it reads. This server
 * answers each QIDO-RS search with exactly what PS3.18 says a server returns: the required attributes of the
 * level (Tables 10.6.3-3/-4/-5, formerly 6.7.1-2/-2a), the matching keys, and the `includefield` attributes,
 * nothing else. Which rows match, paging, counts and truncation signals are Orthanc's (its QIDO answer is
 * forwarded); the values come from the same DICOM files through Orthanc's WADO-RS metadata, so requested
 * sequences are there when the files hold them. Every other request (WADO-RS metadata, rendered) is forwarded.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DicomDataset } from '../../src/dicom/dicomJson';
import { Tag } from '../../src/dicom/tags';
import type { OrthancServer } from './orthanc';

// Keywords the required tables name that the bridge's tag list does not.
const EXTRA = {
  PerformedProcedureStepStartDate: '00400244',
  PerformedProcedureStepStartTime: '00400245',
  RequestAttributesSequence: '00400275',
  Rows: '00280010',
  Columns: '00280011',
  BitsAllocated: '00280100',
  NumberOfFrames: '00280008',
};

type Level = 'study' | 'series' | 'instance';

/** PS3.18 Table 10.6.3-3: Study's Attributes. */
const STUDY_REQUIRED = [
  Tag.StudyDate,
  Tag.StudyTime,
  Tag.AccessionNumber,
  Tag.InstanceAvailability,
  Tag.ModalitiesInStudy,
  Tag.ReferringPhysicianName,
  Tag.TimezoneOffsetFromUTC,
  Tag.RetrieveURL,
  Tag.PatientName,
  Tag.PatientID,
  Tag.PatientBirthDate,
  Tag.PatientSex,
  Tag.StudyInstanceUID,
  Tag.StudyID,
  Tag.NumberOfStudyRelatedSeries,
  Tag.NumberOfStudyRelatedInstances,
];
/** PS3.18 Table 10.6.3-4: Series' Attributes. */
const SERIES_REQUIRED = [
  Tag.Modality,
  Tag.TimezoneOffsetFromUTC,
  Tag.SeriesDescription,
  Tag.RetrieveURL,
  Tag.SeriesInstanceUID,
  Tag.SeriesNumber,
  Tag.NumberOfSeriesRelatedInstances,
  EXTRA.PerformedProcedureStepStartDate,
  EXTRA.PerformedProcedureStepStartTime,
  EXTRA.RequestAttributesSequence,
];
/** PS3.18 Table 10.6.3-5: Instance's Attributes. */
const INSTANCE_REQUIRED = [
  Tag.SOPClassUID,
  Tag.SOPInstanceUID,
  Tag.InstanceAvailability,
  Tag.TimezoneOffsetFromUTC,
  Tag.RetrieveURL,
  Tag.InstanceNumber,
  EXTRA.Rows,
  EXTRA.Columns,
  EXTRA.BitsAllocated,
  EXTRA.NumberOfFrames,
];

const TAG_BY_KEYWORD: Record<string, string> = { ...Tag, ...EXTRA };
const asTag = (key: string): string | undefined =>
  /^[0-9A-Fa-f]{8}$/.test(key) ? key.toUpperCase() : TAG_BY_KEYWORD[key];

/** The QIDO-RS resource a path names: its level and the study/series it is scoped to. */
function qidoTarget(path: string): { level: Level; scoped: 'none' | 'study' | 'series' } | undefined {
  const parts = path.split('/').filter(Boolean);
  if (parts.length === 1 && parts[0] === 'studies') return { level: 'study', scoped: 'none' };
  if (parts.length === 1 && parts[0] === 'series') return { level: 'series', scoped: 'none' };
  if (parts.length === 1 && parts[0] === 'instances') return { level: 'instance', scoped: 'none' };
  if (parts.length === 3 && parts[0] === 'studies' && parts[2] === 'series')
    return { level: 'series', scoped: 'study' };
  if (parts.length === 3 && parts[0] === 'studies' && parts[2] === 'instances')
    return { level: 'instance', scoped: 'study' };
  if (parts.length === 5 && parts[0] === 'studies' && parts[2] === 'series' && parts[4] === 'instances')
    return { level: 'instance', scoped: 'series' };
  return undefined;
}

/**
 * Required attributes for a target: its level's, plus the higher levels' when the search is not scoped to them
 * (PS3.18 10.6.3.3.1: a search over all series returns study attributes too, one over a study's instances series ones).
 */
function requiredFor(target: { level: Level; scoped: 'none' | 'study' | 'series' }): string[] {
  if (target.level === 'study') return STUDY_REQUIRED;
  if (target.level === 'series')
    return target.scoped === 'none' ? [...STUDY_REQUIRED, ...SERIES_REQUIRED] : SERIES_REQUIRED;
  if (target.scoped === 'series') return INSTANCE_REQUIRED;
  if (target.scoped === 'study') return [...SERIES_REQUIRED, ...INSTANCE_REQUIRED];
  return [...STUDY_REQUIRED, ...SERIES_REQUIRED, ...INSTANCE_REQUIRED];
}

/** What the client asked for: includefield values (comma lists, repeatable) and matching keys. */
function requested(query: string): string[] {
  const out: string[] = [];
  for (const pair of query.split('&').filter(Boolean)) {
    const eq = pair.indexOf('=');
    const key = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? '' : pair.slice(eq + 1);
    if (key === 'includefield') out.push(...value.split(',').map((v) => asTag(decodeURIComponent(v)) ?? ''));
    else if (!['limit', 'offset', 'fuzzymatching'].includes(key)) out.push(asTag(key) ?? '');
  }
  return out.filter(Boolean);
}

export interface StrictQidoOptions {
  /**
   * Levels at which the responder ignores `offset` (the query goes upstream without it, so every page is the
   * first page again), as some PACS do: a client must take that for truncation, never for the end.
   */
  ignoreOffset?: Level[];
}

export interface StrictQido {
  /** The DICOMweb base to give the bridge (QIDO-RS and WADO-RS), e.g. http://127.0.0.1:PORT/dicom-web */
  dicomWebBase: string;
  /** QIDO-RS searches answered (path and query as received). */
  searches: string[];
  stop(): Promise<void>;
}

interface Upstream {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function get(base: URL, pathAndQuery: string, headers: http.OutgoingHttpHeaders = {}): Promise<Upstream> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: base.hostname, port: base.port, path: pathAndQuery, headers, agent: false },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
}

export async function startStrictQido(
  orthanc: Pick<OrthancServer, 'dicomWebBase'>,
  options: StrictQidoOptions = {},
): Promise<StrictQido> {
  const upstream = new URL(orthanc.dicomWebBase);
  const root = upstream.pathname.replace(/\/+$/, '');
  const searches: string[] = [];
  // The files do not change during a test: one metadata answer per study/series/instance is kept.
  const metadataCache = new Map<string, Promise<DicomDataset | undefined>>();

  const metadataOf = (path: string): Promise<DicomDataset | undefined> => {
    let m = metadataCache.get(path);
    if (!m) {
      m = get(upstream, `${root}${path}/metadata`, { accept: 'application/dicom+json' }).then((r) =>
        r.status === 200 ? ((JSON.parse(r.body.toString('utf8')) as DicomDataset[])[0] ?? undefined) : undefined,
      );
      metadataCache.set(path, m);
    }
    return m;
  };

  const uid = (ds: DicomDataset, tag: string) => ds[tag]?.Value?.[0] as string | undefined;

  /** The header the row's values come from: the instance itself, or the first instance of its series or study. */
  const sourceOf = (row: DicomDataset, level: Level, pathUids: string[]): Promise<DicomDataset | undefined> => {
    const study = uid(row, Tag.StudyInstanceUID) ?? pathUids[0];
    const series = uid(row, Tag.SeriesInstanceUID) ?? pathUids[1];
    const instance = uid(row, Tag.SOPInstanceUID);
    if (level === 'study' && study) return metadataOf(`/studies/${study}`);
    if (level === 'series' && study && series) return metadataOf(`/studies/${study}/series/${series}`);
    if (level === 'instance' && study && series && instance)
      return metadataOf(`/studies/${study}/series/${series}/instances/${instance}`);
    return Promise.resolve(undefined);
  };

  const answerSearch = async (path: string, query: string, res: ServerResponse) => {
    const target = qidoTarget(path)!;
    searches.push(`${path}${query ? `?${query}` : ''}`);
    const sent = options.ignoreOffset?.includes(target.level)
      ? query
          .split('&')
          .filter((p) => !p.startsWith('offset='))
          .join('&')
      : query;
    const up = await get(upstream, `${root}${path}${sent ? `?${sent}` : ''}`, { accept: 'application/dicom+json' });
    const passHeaders = (extra: http.OutgoingHttpHeaders) => {
      const h: http.OutgoingHttpHeaders = { ...extra };
      if (up.headers.warning) h.warning = up.headers.warning;
      return h;
    };
    if (up.status !== 200 && up.status !== 206) {
      res.writeHead(up.status, passHeaders({ 'content-type': up.headers['content-type'] ?? 'application/json' }));
      res.end(up.body);
      return;
    }
    const rows = up.body.length ? (JSON.parse(up.body.toString('utf8')) as DicomDataset[]) : [];
    const wanted = new Set([...requiredFor(target), ...requested(query)]);
    const pathUids = path.split('/').filter((_, i) => i % 2 === 1);
    const out = await Promise.all(
      rows.map(async (row) => {
        const header = (await sourceOf(row, target.level, pathUids)) ?? {};
        const filtered: DicomDataset = {};
        for (const tag of [...wanted].sort()) {
          // Orthanc computes counts, modalities and URLs; everything else is read from the file's header.
          const attr = row[tag] ?? header[tag];
          if (attr) filtered[tag] = attr;
        }
        return filtered;
      }),
    );
    res.writeHead(up.status, passHeaders({ 'content-type': 'application/dicom+json' }));
    res.end(JSON.stringify(out));
  };

  const forward = (req: IncomingMessage, res: ServerResponse, pathAndQuery: string) => {
    const headers = { ...req.headers, host: upstream.host };
    const up = http.request(
      { host: upstream.hostname, port: upstream.port, path: `${root}${pathAndQuery}`, method: req.method, headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  };

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const fullPath = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q + 1);
    if (!fullPath.startsWith('/dicom-web/') && fullPath !== '/dicom-web') {
      res.writeHead(404);
      res.end();
      return;
    }
    const path = fullPath.slice('/dicom-web'.length);
    if (req.method === 'GET' && qidoTarget(path)) {
      answerSearch(path, query, res).catch((e: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`strict QIDO responder: ${e.message}`);
      });
    } else forward(req, res, url.slice('/dicom-web'.length));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    dicomWebBase: `http://127.0.0.1:${port}/dicom-web`,
    searches,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
