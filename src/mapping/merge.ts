/**
 * One study held by several sources (a PACS and its VNA, the old and the new PACS in a migration) is one
 * ImagingStudy: every source's Endpoint, the union of their series and instances, a series' own endpoints where
 * only some sources hold it. Pure; the sync keeps each source's mapping (src/sync/holdings.ts) and the live API
 * merges what each source answers, both with this.
 */
import type { Coding, ImagingStudy, ImagingStudySeries, ImagingStudySeriesInstance, Reference } from 'fhir/r4';
import { STUDY_UID_CONFLICT } from './conflicts';

/** A source's mapping of the study. */
export interface SourceHolding {
  sourceId: string;
  imagingStudy: ImagingStudy;
}

interface MergedSeries {
  series: ImagingStudySeries;
  holders: Reference[];
  instances: Map<string, ImagingStudySeriesInstance>;
  counts: number[];
}

const refKey = (r: Reference) => r.reference ?? '';
const codingKey = (c: Coding) => `${c.system ?? ''}|${c.code ?? ''}`;
const patientOf = (s: ImagingStudy) => {
  const id = s.subject?.identifier;
  return id?.value ? `${id.system ?? ''}|${id.value}` : '';
};

/** Items of all lists, the first of each key kept, in order. */
function union<T>(lists: (T[] | undefined)[], key: (t: T) => string): T[] {
  const out = new Map<string, T>();
  for (const list of lists) for (const t of list ?? []) if (!out.has(key(t))) out.set(key(t), t);
  return [...out.values()];
}

/**
 * Why these holdings cannot be one study, or undefined when they can: the sources must name the same patient
 * (identifier system and value). Sources that copy each other share one patient identity through the same
 * `issuerSystems` or `defaultSystem`; otherwise a Study UID under two identities is a Study UID conflict.
 */
export function holdingsConflict(studyUid: string, holdings: SourceHolding[]): string | undefined {
  const patients = new Set(holdings.map((h) => patientOf(h.imagingStudy)));
  if (patients.size < 2) return undefined;
  const sources = holdings.map((h) => h.sourceId).join(', ');
  return (
    `${STUDY_UID_CONFLICT}: sources ${sources} hold Study Instance UID ${studyUid} under ${patients.size} different ` +
    `patient identifiers; sources that copy each other must share one patient identity (the same ` +
    `mapping.patient.defaultSystem or issuerSystems); not written until fixed and the study replayed`
  );
}

/** The series of all holdings by Series Instance UID, in order of first appearance. */
function mergeSeries(holdings: SourceHolding[]): MergedSeries[] {
  const byUid = new Map<string, MergedSeries>();
  for (const h of holdings) {
    const own = h.imagingStudy.endpoint ?? [];
    for (const series of h.imagingStudy.series ?? []) {
      let m = byUid.get(series.uid);
      if (!m) byUid.set(series.uid, (m = { series, holders: [], instances: new Map(), counts: [] }));
      m.holders.push(...own);
      if (series.numberOfInstances !== undefined) m.counts.push(series.numberOfInstances);
      for (const i of series.instance ?? []) if (!m.instances.has(i.uid)) m.instances.set(i.uid, i);
    }
  }
  return [...byUid.values()];
}

function seriesOut(m: MergedSeries, allEndpoints: Reference[]): ImagingStudySeries {
  const holders = union([m.holders], refKey);
  const { endpoint: _own, ...rest } = m.series;
  const out: ImagingStudySeries = { ...rest };
  // A series only some sources hold says where it is; one all of them hold goes by the study's endpoints.
  if (holders.length < allEndpoints.length) out.endpoint = holders;
  const count = Math.max(m.instances.size, ...m.counts);
  if (m.counts.length || m.instances.size) out.numberOfInstances = count;
  if (m.instances.size) out.instance = [...m.instances.values()];
  return out;
}

const maxOf = (values: (number | undefined)[], floor: number) =>
  values.some((v) => v !== undefined) || floor > 0 ? Math.max(floor, ...values.map((v) => v ?? 0)) : undefined;

/**
 * The one ImagingStudy of holdings in priority order (the configured order of their sources): study-level
 * attributes from the first, endpoints, modalities, series and instances from all; counts never below any
 * source's own. The caller has checked holdingsConflict first.
 */
export function mergeHoldings(holdings: SourceHolding[]): ImagingStudy {
  if (holdings.length === 1) return holdings[0].imagingStudy;
  const studies = holdings.map((h) => h.imagingStudy);
  const first = studies[0];
  const endpoint = union(
    studies.map((s) => s.endpoint),
    refKey,
  );
  const series = mergeSeries(holdings).map((m) => seriesOut(m, endpoint));
  const listed = series.reduce((n, s) => n + (s.numberOfInstances ?? 0), 0);
  const merged: ImagingStudy = {
    ...first,
    status: studies.some((s) => s.status === 'available') ? 'available' : first.status,
    modality: union(
      studies.map((s) => s.modality),
      codingKey,
    ),
    endpoint,
    numberOfSeries: maxOf(
      studies.map((s) => s.numberOfSeries),
      series.length,
    ),
    numberOfInstances: maxOf(
      studies.map((s) => s.numberOfInstances),
      listed,
    ),
    series,
  };
  for (const key of ['modality', 'series', 'numberOfSeries', 'numberOfInstances'] as const)
    if (merged[key] === undefined || (Array.isArray(merged[key]) && !(merged[key] as unknown[]).length))
      delete merged[key];
  return merged;
}
