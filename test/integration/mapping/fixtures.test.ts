/**
 * Every fixture study in a real Orthanc — the synthetic corpus and the pydicom samples — fetched through the
 * bridge's source layer maps to a resource that validates against R4 + ImagingStudy-twcore and whose
 * identifiers, counts, modalities, series and instances are what the fixture put in. Also the `map`
 * command fetching one study live. Each test runs twice: against Orthanc, which returns more than it is asked
 * for, and against the strict QIDO-RS responder over the same files, which returns only the required attributes
 * and what `includefield` asks for (so an attribute the mapper reads but never requests shows up here).
 */
import type { ImagingStudy } from 'fhir/r4';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { startStrictQido, type StrictQido } from '../../harness/strictQido';
import {
  generateCorpus,
  instanceCount,
  loadStudies,
  makeSeries,
  makeStudy,
  modalitiesInStudy,
  type SyntheticStudy,
} from '../../fixtures/synthetic';
import { loadPydicomSamples, studiesFromSamples, type SampleFact } from '../../fixtures/pydicomSamples';
import { sourceSchema, type SourceConfig } from '../../../src/config/schema';
import { createPacsSource } from '../../../src/dicomweb';
import type { PacsSource } from '../../../src/dicomweb';
import { readString, valueOf } from '../../../src/dicom/dicomJson';
import { Tag } from '../../../src/dicom/tags';
import { isBlocking, mapStudy, validateEndpoint, validateImagingStudy, type MapResult } from '../../../src/mapping';
import { runMap } from '../../../src/cli/map';

let orthanc: OrthancServer;
let strict: StrictQido;
let corpus: SyntheticStudy[];
let samples: SampleFact[];

const special = [
  makeStudy({ description: 'ideographic only', patient: { id: 'P-IDEO', ideographic: '林^美玲' } }),
  makeStudy({
    studyTime: undefined,
    tzOffset: undefined,
    accession: undefined,
    procedureCode: undefined,
    series: [makeSeries({ modality: 'MR', bodyPart: 'KNEE', laterality: 'L', instances: 3 })],
  }),
  // Attributes only a PACS asked for them returns: reason codes, the issuer qualifiers' OID.
  makeStudy({
    description: 'reason codes and issuer qualifiers',
    reason: '咳嗽',
    reasonCode: { code: 'R05', scheme: 'I10', meaning: 'Cough' },
    patient: {
      id: 'P-QUAL',
      issuer: 'TW-QUAL',
      issuerQualifier: { universalEntityId: '2.16.886.101.20003.20014', type: 'ISO' },
    },
  }),
];

beforeAll(async () => {
  orthanc = await startOrthanc();
  corpus = [...generateCorpus({ seed: 33, studies: 24, days: { from: '20240610', count: 3 }, undated: 2 }), ...special];
  await loadStudies(orthanc, corpus);
  samples = await loadPydicomSamples(orthanc);
  strict = await startStrictQido(orthanc);
}, 180000);

afterAll(async () => {
  await strict?.stop();
  await orthanc?.stop();
});

const SERVERS: Array<[string, () => string]> = [
  ['Orthanc', () => orthanc.dicomWebBase],
  ['the strict QIDO-RS responder', () => strict.dicomWebBase],
];

describe.each(SERVERS)('against %s', (server, baseOf) => {
  let cfg: SourceConfig;
  /** The same source with mapping.missingModality 'OT', as the quick start configures it. */
  let cfgOT: SourceConfig;
  let pacs: PacsSource;
  beforeAll(() => {
    const mapping = { patient: { issuerSystems: { 'TW-HOSP-A': 'https://hosp-a.example.tw/mrn' } } };
    cfg = sourceSchema.parse({ id: 'orthanc', qidoBase: baseOf(), mapping });
    cfgOT = sourceSchema.parse({ id: 'orthanc', qidoBase: baseOf(), mapping: { ...mapping, missingModality: 'OT' } });
    pacs = createPacsSource(cfg);
  });

  /** The study rows QIDO returns for a UID (Orthanc lists a UID twice when two PatientIDs share it), with details. */
  async function fetchResults(studyUid: string) {
    // No fallback: every study, ISO 2022 ones included, must come through the source layer.
    let rows = await pacs.searchStudies({ StudyInstanceUID: studyUid });
    const details = (await pacs.studyDetails([studyUid], { instances: true })).get(studyUid)!;
    rows = rows.filter((r) => valueOf(readString(r, Tag.StudyInstanceUID)) === studyUid);
    return { rows, details };
  }

  function valid(res: MapResult, label: string): ImagingStudy {
    if (!res.ok) throw new Error(`${label}: ${res.error.code}: ${res.error.message}`);
    const issues = [...validateImagingStudy(res.imagingStudy), ...validateEndpoint(res.endpoint)].filter(isBlocking);
    expect({ label, issues }).toEqual({ label, issues: [] });
    return res.imagingStudy;
  }

  const seriesShape = (r: ImagingStudy) =>
    (r.series ?? [])
      .map((s) => ({ uid: s.uid, modality: s.modality.code, instances: (s.instance ?? []).map((i) => i.uid).sort() }))
      .sort((a, b) => a.uid.localeCompare(b.uid));

  test('every synthetic study maps to a valid resource matching its facts', async () => {
    for (const study of corpus) {
      const { rows, details } = await fetchResults(study.studyUid);
      expect(rows).toHaveLength(1);
      const r = valid(
        mapStudy({ study: rows[0], series: details.series, instances: details.instances }, cfg),
        study.studyUid,
      );

      expect(r.id).toBe(study.studyUid);
      expect(r.identifier?.[0]).toEqual({
        use: 'official',
        system: 'urn:dicom:uid',
        value: `urn:oid:${study.studyUid}`,
      });
      const acsn = r.identifier?.find((i) => i.type?.coding?.[0].code === 'ACSN');
      expect(acsn?.value).toBe(study.accession);
      // The issuer-qualified patient is checked on its own below (its system depends on what the server returns).
      if (!study.patient.issuerQualifier)
        expect(r.subject.identifier).toEqual({
          system:
            study.patient.issuer === 'TW-HOSP-A'
              ? 'https://hosp-a.example.tw/mrn'
              : 'urn:pacs-fhir-bridge:orthanc:patient-id',
          value: study.patient.id,
        });
      expect(r.numberOfSeries).toBe(study.series.length);
      expect(r.numberOfInstances).toBe(instanceCount(study));
      expect(r.status).toBe('available');
      expect(r.modality?.map((m) => m.code)).toEqual(modalitiesInStudy(study));
      expect(seriesShape(r)).toEqual(
        study.series
          .map((s) => ({
            uid: s.seriesUid,
            modality: s.modality,
            instances: s.instances.map((i) => i.sopInstanceUid).sort(),
          }))
          .sort((a, b) => a.uid.localeCompare(b.uid)),
      );
      for (const s of study.series) {
        const out = r.series!.find((x) => x.uid === s.seriesUid)!;
        expect(out.number).toBe(s.number);
        expect(out.numberOfInstances).toBe(s.instances.length);
        for (const i of s.instances) {
          const inst = out.instance!.find((x) => x.uid === i.sopInstanceUid)!;
          expect(inst.sopClass.code).toBe(`urn:oid:${i.sopClassUid}`);
          expect(inst.number).toBe(i.number);
        }
      }
      if (study.studyDate)
        expect(r.started?.slice(0, 10)).toBe(
          `${study.studyDate.slice(0, 4)}-${study.studyDate.slice(4, 6)}-${study.studyDate.slice(6, 8)}`,
        );
      else expect(r.started).toBeUndefined();
      expect(r.description).toBe(study.description);
    }
  });

  test('special synthetic facts: ideographic-only name, date without time, body part and laterality', async () => {
    const [ideo, dateOnly] = special;
    const a = await fetchResults(ideo.studyUid);
    expect(valid(mapStudy({ study: a.rows[0], ...a.details }, cfg), 'ideographic').subject.display).toBe('林美玲');
    const b = await fetchResults(dateOnly.studyUid);
    const r = valid(mapStudy({ study: b.rows[0], ...b.details }, cfg), 'date-only');
    expect(r.started).toBe('2024-03-15');
    expect(r.series?.[0].bodySite).toEqual({ system: 'http://snomed.info/sct', code: '72696002', display: 'Knee' });
    expect(r.series?.[0].laterality?.code).toBe('419161000');
  });

  test("reason codes and the issuer qualifiers' OID arrive where the PACS returns what is asked for", async () => {
    const study = special[2];
    const { rows, details } = await fetchResults(study.studyUid);
    const r = valid(mapStudy({ study: rows[0], ...details }, cfg), 'qualifiers');
    if (server === 'Orthanc') {
      // Orthanc's QIDO-RS never returns sequences, asked or not: only the text survives (enrichment fills the codes).
      expect(r.reasonCode).toEqual([{ text: '咳嗽' }]);
      expect(r.subject.identifier?.system).not.toBe('urn:oid:2.16.886.101.20003.20014');
    } else {
      // Strict: nothing beyond the required attributes and the include list, 0008,0005 included.
      expect(Object.keys(rows[0])).not.toContain(Tag.SpecificCharacterSet);
      expect(Object.keys(rows[0])).not.toContain(Tag.InstitutionName);
      expect(r.reasonCode).toEqual([
        { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10', code: 'R05', display: 'Cough' }], text: 'Cough' },
        { text: '咳嗽' },
      ]);
      expect(r.subject.identifier).toEqual({ system: 'urn:oid:2.16.886.101.20003.20014', value: 'P-QUAL' });
    }
  });

  test('every pydicom sample study maps to a valid resource with its series and instances (missingModality OT)', async () => {
    const studies = studiesFromSamples(samples);
    expect(studies.length).toBeGreaterThan(10);
    const report: string[] = [];
    let mapped = 0;
    let defaultedStudies = 0;
    for (const study of studies) {
      const { rows, details } = await fetchResults(study.studyUid);
      expect(rows.length).toBeGreaterThanOrEqual(1);
      const results = { study: rows[0], series: details.series, instances: details.instances };
      const files = samples.filter((f) => f.accepted && f.studyUid === study.studyUid);
      const seriesWithoutModality = study.series.filter((s) =>
        files.filter((f) => f.seriesUid === s.uid).every((f) => !f.modality),
      );
      const res = mapStudy(results, cfgOT);
      if (seriesWithoutModality.length) {
        // Files without the Type 1 Modality (some Secondary Capture samples). By default FHIR's required
        // series.modality makes that the typed error naming the study and the attribute, never an invalid resource;
        // with missingModality 'OT' each such series is "Other", with a warning naming it.
        expect(mapStudy(results, cfg)).toMatchObject({
          ok: false,
          error: { code: 'series-missing-modality', studyUid: study.studyUid, tag: Tag.Modality },
        });
        const defaulted = res.warnings.filter((w) => w.code === 'series-modality-defaulted');
        expect(defaulted.map((w) => seriesWithoutModality.find((s) => w.message.includes(s.uid))?.uid).sort()).toEqual(
          seriesWithoutModality.map((s) => s.uid).sort(),
        );
        report.push(`${study.studyUid}: no Modality in ${files.map((f) => f.file).join(', ')}; mapped as OT`);
        defaultedStudies += 1;
      } else {
        // A setting for missing values changes nothing where the values are there.
        const byDefault = mapStudy(results, cfg);
        expect(res.ok && byDefault.ok && res.contentHash === byDefault.contentHash).toBe(true);
      }
      const r = valid(res, study.studyUid);
      mapped += 1;
      for (const s of seriesWithoutModality)
        expect(r.series?.find((x) => x.uid === s.uid)?.modality).toEqual({
          system: 'http://dicom.nema.org/resources/ontology/DCM',
          code: 'OT',
          display: 'Other',
        });
      if (seriesWithoutModality.length) expect(r.modality?.map((m) => m.code)).toContain('OT');
      expect(seriesShape(r).map(({ uid, instances }) => ({ uid, instances }))).toEqual(study.series);
      // Orthanc splits a UID shared by two PatientIDs into two studies; each row then counts only its own part.
      if (rows.length === 1) {
        expect(r.numberOfSeries).toBe(study.series.length);
        expect(r.numberOfInstances).toBe(study.series.reduce((n, s) => n + s.instances.length, 0));
      } else {
        report.push(`${study.studyUid}: ${rows.length} study rows`);
      }
      const modalities = new Set(
        samples.filter((f) => f.studyUid === study.studyUid && f.modality).map((f) => f.modality!.toUpperCase()),
      );
      for (const m of modalities) expect(r.modality?.map((x) => x.code)).toContain(m);
    }
    expect(mapped).toBe(studies.length);
    // The Secondary Capture samples without Modality
    // (SC_jpeg_no_color_transform*, SC_rgb_jpeg_app14_dcmd, GDCMJ2K_TextGBR).
    expect(defaultedStudies).toBe(3);
    if (process.env.SHOW_SAMPLES) console.log(report);
  });
});

// Once, on Orthanc: the CLI reads its configuration once per process.
test('map command fetches one study live from a configured source', async () => {
  const study = corpus[0];
  const previous = process.env.NODE_CONFIG;
  const previousEnv = process.env.NODE_CONFIG_ENV;
  process.env.NODE_CONFIG = JSON.stringify({ sources: [{ id: 'orthanc', qidoBase: orthanc.dicomWebBase }] });
  process.env.NODE_CONFIG_ENV = 'default';
  try {
    const run = await runMap({ source: 'orthanc', studyUid: study.studyUid, validate: true, compact: true });
    expect(run.exitCode).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out.imagingStudy.id).toBe(study.studyUid);
    expect(out.imagingStudy.numberOfInstances).toBe(instanceCount(study));
    expect(out.endpoint.address).toBe(orthanc.dicomWebBase.replace(/\/+$/, ''));
    const missing = await runMap({ source: 'orthanc', studyUid: '1.2.3.4.5.6.7.8.9', validate: true });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('has no study');
  } finally {
    if (previous === undefined) delete process.env.NODE_CONFIG;
    else process.env.NODE_CONFIG = previous;
    if (previousEnv === undefined) delete process.env.NODE_CONFIG_ENV;
    else process.env.NODE_CONFIG_ENV = previousEnv;
  }
});
