/**
 * The mapper against JSON.parse: the corpus's QIDO answers (study pages and batched series/instance answers,
 * fetched once) are parsed, then grouped by study, fingerprinted, mapped to ImagingStudy + Endpoint and hashed
 * as the sync does. Mapping should cost less than half of parsing the same payloads.
 */
import { sourceSchema } from '../src/config';
import type { DicomDataset } from '../src/dicom/dicomJson';
import { mapStudy, preloadValidator, studyFingerprint, validateImagingStudy } from '../src/mapping';
import type { ImagingStudy } from 'fhir/r4';
import type { BenchCorpus } from './corpus';
import { corpusFloor } from './qidoFloor';
import { median } from './stats';

export interface MapperResult {
  payloads: { count: number; megabytes: number };
  studies: number;
  instances: number;
  /** Median over the repetitions. */
  parseMs: number;
  mapMs: number;
  /** mapMs ÷ parseMs. */
  ratio: number;
  instancesPerSecond: number;
  studiesPerSecond: number;
  /** The profile guard's work on the same studies: validating each ImagingStudy (median over repetitions). */
  validate?: { loadMs: number; ms: number; perStudyMs: number };
}

const STUDY_UID = '0020000D';
const uidOf = (ds: DicomDataset) => (ds[STUDY_UID]?.Value?.[0] as string | undefined) ?? '';

function timeMs(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

export async function runMapper(corpus: BenchCorpus, repetitions = 7): Promise<MapperResult> {
  const source = sourceSchema.parse({ id: 'bench', qidoBase: corpus.orthanc.dicomWebBase });
  const bodies: { level: 'studies' | 'details'; text: string }[] = [];
  let level: 'studies' | 'details' = 'studies';
  const floor = corpusFloor(corpus, source, { onBody: (text) => bodies.push({ level, text }) });
  try {
    const { uids } = await floor.listStudies();
    level = 'details';
    await floor.batchedDetails(uids);
  } finally {
    floor.close();
  }

  const parseAll = () => bodies.map((b) => ({ level: b.level, rows: JSON.parse(b.text) as DicomDataset[] }));
  const parsed = parseAll();
  let instances = 0;
  const mappedStudies: ImagingStudy[] = [];
  const mapAll = () => {
    // Grouping by study is the sync's work too (source.ts does it for batched answers).
    const details = new Map<string, { series: DicomDataset[]; instances: DicomDataset[] }>();
    const studies: DicomDataset[] = [];
    for (const { level: l, rows } of parsed) {
      if (l === 'studies') studies.push(...rows);
      else
        for (const ds of rows) {
          const d = details.get(uidOf(ds)) ?? details.set(uidOf(ds), { series: [], instances: [] }).get(uidOf(ds))!;
          (ds['00080018'] ? d.instances : d.series).push(ds);
        }
    }
    instances = 0;
    mappedStudies.length = 0;
    for (const study of studies) {
      studyFingerprint(study);
      const d = details.get(uidOf(study))!;
      const result = mapStudy({ study, series: d.series, instances: d.instances }, source);
      if (!result.ok) throw new Error(`mapping failed for ${uidOf(study)}: ${result.error.code}`);
      mappedStudies.push(result.imagingStudy);
      instances += d.instances.length;
    }
  };
  mapAll(); // warm-up: both sides run optimised code
  const parseTimes: number[] = [];
  const mapTimes: number[] = [];
  for (let i = 0; i < repetitions; i++) {
    parseTimes.push(timeMs(parseAll));
    mapTimes.push(timeMs(mapAll));
  }
  const loadMs = timeMs(preloadValidator);
  const validateAll = () => {
    for (const r of mappedStudies)
      if (validateImagingStudy(r).some((i) => i.severity === 'error')) throw new Error(`invalid: ImagingStudy/${r.id}`);
  };
  validateAll(); // warm-up
  const validateMs = median(Array.from({ length: 3 }, () => timeMs(validateAll)));
  const parseMs = median(parseTimes);
  const mapMs = median(mapTimes);
  const studies = parsed.filter((p) => p.level === 'studies').reduce((n, p) => n + p.rows.length, 0);
  return {
    payloads: { count: bodies.length, megabytes: bodies.reduce((n, b) => n + Buffer.byteLength(b.text), 0) / 1e6 },
    studies,
    instances,
    parseMs,
    mapMs,
    ratio: mapMs / parseMs,
    instancesPerSecond: instances / (mapMs / 1000),
    studiesPerSecond: studies / (mapMs / 1000),
    validate: { loadMs, ms: validateMs, perStudyMs: validateMs / mappedStudies.length },
  };
}
