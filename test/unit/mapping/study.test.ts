/**
 * Study-level mapping rules (identifiers, subject, counts, modalities, dates), one block per rule; every produced
 * resource is validated against TW Core.
 */
import { mapStudy } from '../../../src/mapping';
import { Tag } from '../../../src/dicom/tags';
import { basicResults, code, instance, n, pn, s, series, source, sq, study, STUDY_UID } from './dicom';
import { expectValid } from './validity';

const mapOk = (results = basicResults(), src = source(), options = {}) => expectValid(mapStudy(results, src, options));

describe('id and meta', () => {
  test('id is the Study Instance UID and meta.profile is TW Core ImagingStudy', () => {
    const { imagingStudy } = mapOk();
    expect(imagingStudy.id).toBe(STUDY_UID);
    expect(imagingStudy.meta?.profile).toEqual([
      'https://twcore.mohw.gov.tw/ig/twcore/StructureDefinition/ImagingStudy-twcore',
    ]);
  });
});

describe('identifier', () => {
  test('Study Instance UID as urn:oid, official', () => {
    expect(mapOk().imagingStudy.identifier?.[0]).toEqual({
      use: 'official',
      system: 'urn:dicom:uid',
      value: `urn:oid:${STUDY_UID}`,
    });
  });

  test('accession number typed ACSN with the configured system when DICOM gives no issuer', () => {
    const { imagingStudy } = mapOk(
      basicResults(),
      source({ mapping: { accessionSystem: 'https://hosp.example.tw/acsn' } }),
    );
    expect(imagingStudy.identifier?.[1]).toEqual({
      use: 'usual',
      type: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN', display: 'Accession ID' }],
      },
      system: 'https://hosp.example.tw/acsn',
      value: 'ACC001',
    });
  });

  test('Issuer of Accession Number Sequence (ISO universal id) wins over configuration', () => {
    const r = basicResults();
    r.study[Tag.IssuerOfAccessionNumberSequence] = sq({
      [Tag.UniversalEntityID]: s('UT', '2.16.886.101.20003'),
      [Tag.UniversalEntityIDType]: s('CS', 'ISO'),
    });
    const { imagingStudy } = mapOk(r, source({ mapping: { accessionSystem: 'https://hosp.example.tw/acsn' } }));
    expect(imagingStudy.identifier?.[1].system).toBe('urn:oid:2.16.886.101.20003');
  });

  test('a local issuer without a system becomes the assigner display', () => {
    const r = basicResults();
    r.study[Tag.IssuerOfAccessionNumberSequence] = sq({ [Tag.LocalNamespaceEntityID]: s('UT', 'RIS_A') });
    const id = mapOk(r).imagingStudy.identifier?.[1];
    expect(id?.system).toBeUndefined();
    expect(id?.assigner).toEqual({ display: 'RIS_A' });
  });

  test('Study ID only when a system is configured', () => {
    const r = basicResults();
    r.study[Tag.StudyID] = s('SH', 'S77');
    expect(mapOk(r).imagingStudy.identifier).toHaveLength(2);
    const ids = mapOk(r, source({ mapping: { studyIdSystem: 'urn:example:study-id' } })).imagingStudy.identifier;
    expect(ids?.[2]).toEqual({ use: 'secondary', system: 'urn:example:study-id', value: 'S77' });
  });

  test('no accession number, no accession identifier', () => {
    const r = basicResults();
    delete r.study[Tag.AccessionNumber];
    expect(mapOk(r).imagingStudy.identifier).toHaveLength(1);
  });
});

describe('status', () => {
  test('available with instances', () => expect(mapOk().imagingStudy.status).toBe('available'));

  test('registered when the PACS reports no instances', () => {
    const r = {
      study: study({ [Tag.NumberOfStudyRelatedInstances]: n('IS', 0), [Tag.NumberOfStudyRelatedSeries]: n('IS', 0) }),
      series: [],
      instances: [],
    };
    const { imagingStudy } = mapOk(r);
    expect(imagingStudy.status).toBe('registered');
    expect(imagingStudy.numberOfInstances).toBe(0);
    expect(imagingStudy.series).toBeUndefined();
  });
});

describe('modality', () => {
  test('Modalities in Study with CID 29 displays, sorted and deduplicated', () => {
    const r = basicResults();
    r.study[Tag.ModalitiesInStudy] = s('CS', 'PT', 'CT', 'CT', 'SR');
    expect(mapOk(r).imagingStudy.modality).toEqual([
      { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT', display: 'Computed Tomography' },
      { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'PT', display: 'Positron emission tomography' },
      { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'SR', display: 'Structured Report Document' },
    ]);
  });

  test('union of series modalities when Modalities in Study is absent; unknown codes keep no display', () => {
    const r = basicResults();
    delete r.study[Tag.ModalitiesInStudy];
    r.series.push(
      series(`${STUDY_UID}.2`, {
        [Tag.Modality]: s('CS', 'XYZ'),
        [Tag.SeriesNumber]: n('IS', 2),
        [Tag.NumberOfSeriesRelatedInstances]: n('IS', 0),
      }),
    );
    expect(mapOk(r).imagingStudy.modality).toEqual([
      { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT', display: 'Computed Tomography' },
      { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'XYZ' },
    ]);
  });

  test('a series modality missing from Modalities in Study is reported', () => {
    const r = basicResults();
    r.study[Tag.ModalitiesInStudy] = s('CS', 'MR');
    const res = mapOk(r);
    expect(res.imagingStudy.modality?.map((m) => m.code)).toEqual(['MR']);
    expect(res.warnings.map((w) => w.code)).toContain('modality-mismatch');
  });
});

describe('subject', () => {
  test('identifier mode (default): logical reference by identifier with the default system', () => {
    const { imagingStudy } = mapOk();
    expect(imagingStudy.subject).toEqual({
      type: 'Patient',
      identifier: { system: 'urn:pacs-fhir-bridge:pacs1:patient-id', value: 'A123456789' },
      display: 'TA WEN CHEN',
    });
  });

  test('issuer table maps Issuer of Patient ID to a system; an unmapped issuer gets a system of its own, with a warning', () => {
    const mapping = {
      patient: { defaultSystem: 'urn:default', issuerSystems: { HOSP_A: 'https://hosp-a.example.tw/mrn' } },
    };
    const r = basicResults();
    r.study[Tag.IssuerOfPatientID] = s('LO', 'HOSP_A');
    expect(mapOk(r, source({ mapping })).imagingStudy.subject?.identifier?.system).toBe(
      'https://hosp-a.example.tw/mrn',
    );
    r.study[Tag.IssuerOfPatientID] = s('LO', 'HOSP_B');
    const other = mapOk(r, source({ mapping }));
    expect(other.imagingStudy.subject?.identifier?.system).toBe('urn:pacs-fhir-bridge:pacs1:issuer:HOSP_B:patient-id');
    expect(other.warnings.find((w) => w.code === 'unmapped-patient-issuer')?.tag).toBe(Tag.IssuerOfPatientID);
    // Two unmapped issuers never share a system; no issuer at all keeps the source's default system.
    r.study[Tag.IssuerOfPatientID] = s('LO', 'OTHER HOSP/2');
    expect(mapOk(r, source({ mapping })).imagingStudy.subject?.identifier?.system).toBe(
      'urn:pacs-fhir-bridge:pacs1:issuer:OTHER%20HOSP%2F2:patient-id',
    );
    delete r.study[Tag.IssuerOfPatientID];
    const none = mapOk(r, source({ mapping }));
    expect(none.imagingStudy.subject?.identifier?.system).toBe('urn:default');
    expect(none.warnings.map((w) => w.code)).not.toContain('unmapped-patient-issuer');
  });

  test('Issuer of Patient ID Qualifiers Sequence gives the system when the issuer is not configured', () => {
    const r = basicResults();
    r.study[Tag.IssuerOfPatientID] = s('LO', 'HOSP_Q');
    r.study[Tag.IssuerOfPatientIDQualifiersSequence] = {
      vr: 'SQ',
      Value: [{ [Tag.UniversalEntityID]: s('UT', '2.16.886.101.20003'), [Tag.UniversalEntityIDType]: s('CS', 'ISO') }],
    };
    const res = mapOk(r);
    expect(res.imagingStudy.subject?.identifier?.system).toBe('urn:oid:2.16.886.101.20003');
    expect(res.warnings.map((w) => w.code)).not.toContain('unmapped-patient-issuer');
  });

  test('conditional mode: Patient?identifier=system|value with search escaping', () => {
    const r = basicResults();
    r.study[Tag.PatientID] = s('LO', 'A|1,2 3');
    const { imagingStudy } = mapOk(
      r,
      source({ mapping: { patient: { mode: 'conditional', defaultSystem: 'urn:oid:2.16.886.101.20003.20001' } } }),
    );
    expect(imagingStudy.subject?.reference).toBe('Patient?identifier=urn:oid:2.16.886.101.20003.20001|A\\|1\\,2%203');
    expect(decodeURIComponent(imagingStudy.subject!.reference!.split('|').slice(1).join('|'))).toBe('A\\|1\\,2 3');
  });

  test("resolved mode uses the caller's Patient/<id>; without one it falls back to the identifier with a warning", () => {
    const src = source({ mapping: { patient: { mode: 'resolved' } } });
    expect(mapOk(basicResults(), src, { patientReference: 'Patient/p-42' }).imagingStudy.subject?.reference).toBe(
      'Patient/p-42',
    );
    const fallback = mapOk(basicResults(), src);
    expect(fallback.imagingStudy.subject?.reference).toBeUndefined();
    expect(fallback.imagingStudy.subject?.identifier?.value).toBe('A123456789');
    expect(fallback.warnings.map((w) => w.code)).toContain('patient-not-resolved');
  });

  test('display: alphabetic or ideographic group by configuration, falling back to the other group', () => {
    expect(
      mapOk(basicResults(), source({ mapping: { patient: { nameGroup: 'ideographic' } } })).imagingStudy.subject
        ?.display,
    ).toBe('陳大文');
    const r = basicResults();
    r.study[Tag.PatientName] = pn({ Ideographic: '林^美玲' });
    expect(mapOk(r).imagingStudy.subject?.display).toBe('林美玲');
  });

  test('CJK names read family then given without a space, in whichever group they stand', () => {
    const r = basicResults();
    r.study[Tag.PatientName] = pn({ Alphabetic: '陳^大文' });
    r.study[Tag.ReferringPhysicianName] = pn({ Alphabetic: '林^美玲' });
    for (const nameGroup of ['alphabetic', 'ideographic'] as const) {
      const { imagingStudy } = mapOk(r, source({ mapping: { patient: { nameGroup } } }));
      expect(imagingStudy.subject?.display).toBe('陳大文');
      expect(imagingStudy.referrer?.display).toBe('林美玲');
    }
    // Western names keep given-then-family order.
    r.study[Tag.PatientName] = pn({ Alphabetic: 'Smith^John' });
    expect(mapOk(r).imagingStudy.subject?.display).toBe('John Smith');
  });

  test('no Patient ID: display only, with a warning that does not contain the name', () => {
    const r = basicResults();
    delete r.study[Tag.PatientID];
    const res = mapOk(r);
    expect(res.imagingStudy.subject).toEqual({ type: 'Patient', display: 'TA WEN CHEN' });
    expect(res.warnings.map((w) => w.code)).toContain('missing-patient-id');
    expect(JSON.stringify(res.warnings)).not.toMatch(/CHEN/);
  });

  test('a malformed patient attribute is reported without its value', () => {
    const r = basicResults();
    r.study[Tag.PatientName] = { vr: 'PN', Value: [{ Alphabetic: 42 }] };
    const res = mapOk(r);
    const w = res.warnings.find((x) => x.tag === Tag.PatientName);
    expect(w?.code).toBe('bad-person-name');
    expect(JSON.stringify(w)).not.toContain('42');
  });

  test('a malformed Patient ID or issuer is reported without its value, though read from the dataset', () => {
    const r = basicResults();
    r.study[Tag.PatientID] = { vr: 'LO', Value: [{ id: 'SECRET-ID' }] };
    r.study[Tag.IssuerOfPatientID] = { vr: 'LO', Value: [['SECRET-ISSUER']] };
    const res = mapOk(r);
    const tags = res.warnings.filter((x) => x.code === 'not-a-string').map((x) => x.tag);
    expect(tags).toEqual([Tag.PatientID, Tag.IssuerOfPatientID]);
    expect(JSON.stringify(res.warnings)).not.toMatch(/SECRET/);
  });
});

describe('referrer, interpreter, description, location, reason', () => {
  test('display references, description, department and reason text', () => {
    const r = basicResults();
    Object.assign(r.study, {
      [Tag.ReferringPhysicianName]: pn('WANG^XIAO MING'),
      [Tag.NameOfPhysiciansReadingStudy]: pn('LIN^A', 'HUANG^B', 'LIN^A'),
      [Tag.StudyDescription]: s('LO', 'CT CHEST W/O CONTRAST'),
      [Tag.InstitutionalDepartmentName]: s('LO', 'Radiology'),
      [Tag.ReasonForRequestedProcedure]: s('LO', 'r/o pneumonia'),
    });
    const { imagingStudy } = mapOk(r);
    expect(imagingStudy.referrer).toEqual({ display: 'XIAO MING WANG' });
    expect(imagingStudy.interpreter).toEqual([{ display: 'A LIN' }, { display: 'B HUANG' }]);
    expect(imagingStudy.description).toBe('CT CHEST W/O CONTRAST');
    expect(imagingStudy.location).toEqual({ display: 'Radiology' });
    expect(imagingStudy.reasonCode).toEqual([{ text: 'r/o pneumonia' }]);
  });

  test('Reason for Requested Procedure Code Sequence gives codings', () => {
    const r = basicResults();
    r.study[Tag.ReasonForRequestedProcedureCodeSequence] = sq(code('233604007', 'SCT', 'Pneumonia'));
    expect(mapOk(r).imagingStudy.reasonCode).toEqual([
      { coding: [{ system: 'http://snomed.info/sct', code: '233604007', display: 'Pneumonia' }], text: 'Pneumonia' },
    ]);
  });
});

describe('procedureCode', () => {
  test('RadLex → TW Core RadLex system, ICD-10-PCS → TW Core 2023 system, others kept with a stable system', () => {
    const r = basicResults();
    r.study[Tag.ProcedureCodeSequence] = sq(
      code('RPID16', 'RADLEX', 'CT Chest wo'),
      code('BW24ZZZ', 'I10P', '胸部電腦斷層掃描'),
      code('33010-3', 'LN', 'CT Chest'),
      code('CT001', '99HOSP', 'Local CT chest'),
    );
    expect(mapOk(r).imagingStudy.procedureCode).toEqual([
      { coding: [{ system: 'http://www.radlex.org', code: 'RPID16', display: 'CT Chest wo' }], text: 'CT Chest wo' },
      {
        coding: [
          {
            system: 'https://twcore.mohw.gov.tw/ig/twcore/CodeSystem/icd-10-pcs-2023-tw',
            code: 'BW24ZZZ',
            display: '胸部電腦斷層掃描',
          },
        ],
        text: '胸部電腦斷層掃描',
      },
      { coding: [{ system: 'http://loinc.org', code: '33010-3', display: 'CT Chest' }], text: 'CT Chest' },
      {
        coding: [{ system: 'urn:dicom:coding-scheme:99HOSP', code: 'CT001', display: 'Local CT chest' }],
        text: 'Local CT chest',
      },
    ]);
  });

  test('an item with a meaning but no code becomes text only; an empty item is dropped', () => {
    const r = basicResults();
    r.study[Tag.ProcedureCodeSequence] = sq({ [Tag.CodeMeaning]: s('LO', 'Chest CT') }, {});
    expect(mapOk(r).imagingStudy.procedureCode).toEqual([{ text: 'Chest CT' }]);
  });
});

describe('basedOn and endpoint', () => {
  test('basedOn: ServiceRequest by accession identifier when configured', () => {
    expect(mapOk().imagingStudy.basedOn).toBeUndefined();
    const { imagingStudy } = mapOk(
      basicResults(),
      source({ mapping: { basedOnServiceRequest: true, accessionSystem: 'urn:acsn' } }),
    );
    expect(imagingStudy.basedOn).toEqual([
      {
        type: 'ServiceRequest',
        identifier: {
          type: {
            coding: [
              { system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN', display: 'Accession ID' },
            ],
          },
          system: 'urn:acsn',
          value: 'ACC001',
        },
      },
    ]);
  });

  test('endpoint references the source Endpoint', () => {
    const res = mapOk();
    expect(res.imagingStudy.endpoint).toEqual([{ reference: `Endpoint/${res.endpoint.id}` }]);
  });
});

describe('counts', () => {
  test('PACS counts win; disagreements are warnings', () => {
    const r = basicResults();
    r.study[Tag.NumberOfStudyRelatedSeries] = n('IS', 3);
    r.study[Tag.NumberOfStudyRelatedInstances] = n('IS', 40);
    const res = mapOk(r);
    expect(res.imagingStudy.numberOfSeries).toBe(3);
    expect(res.imagingStudy.numberOfInstances).toBe(40);
    expect(res.warnings.map((w) => w.code)).toEqual(
      expect.arrayContaining(['series-count-mismatch', 'instance-count-mismatch']),
    );
  });

  test('computed from the results when the PACS omits them', () => {
    const r = basicResults();
    delete r.study[Tag.NumberOfStudyRelatedSeries];
    delete r.study[Tag.NumberOfStudyRelatedInstances];
    const res = mapOk(r);
    expect([res.imagingStudy.numberOfSeries, res.imagingStudy.numberOfInstances]).toEqual([1, 2]);
    expect(res.warnings).toEqual([]);
  });

  test('without instance results the series counts are summed', () => {
    const r = {
      study: study({ [Tag.NumberOfStudyRelatedInstances]: undefined as never }),
      series: [series(), series(`${STUDY_UID}.2`, { [Tag.NumberOfSeriesRelatedInstances]: n('IS', 5) })],
      instances: [],
    };
    delete r.study[Tag.NumberOfStudyRelatedInstances];
    delete r.study[Tag.NumberOfStudyRelatedSeries];
    const res = mapOk(r);
    expect(res.imagingStudy.numberOfInstances).toBe(7);
    expect(res.imagingStudy.numberOfSeries).toBe(2);
  });
});

describe('errors', () => {
  test('no Study Instance UID', () => {
    const r = basicResults();
    delete r.study[Tag.StudyInstanceUID];
    const res = mapStudy(r, source());
    expect(res).toMatchObject({ ok: false, error: { code: 'missing-study-uid', tag: Tag.StudyInstanceUID } });
  });

  test('a Study Instance UID that is not a FHIR id', () => {
    const r = basicResults();
    r.study[Tag.StudyInstanceUID] = s('UI', `1.${'2'.repeat(70)}`);
    expect(mapStudy(r, source())).toMatchObject({ ok: false, error: { code: 'invalid-study-uid' } });
  });

  test('a series without UID or modality, an instance without UID or SOP class: typed errors naming study and attribute', () => {
    const noSeriesUid = basicResults();
    delete noSeriesUid.series[0][Tag.SeriesInstanceUID];
    expect(mapStudy(noSeriesUid, source())).toMatchObject({
      ok: false,
      error: { code: 'series-missing-uid', studyUid: STUDY_UID, tag: Tag.SeriesInstanceUID },
    });

    const noModality = basicResults();
    delete noModality.series[0][Tag.Modality];
    const m = mapStudy(noModality, source());
    expect(m).toMatchObject({
      ok: false,
      error: { code: 'series-missing-modality', studyUid: STUDY_UID, tag: Tag.Modality },
    });
    expect(!m.ok && m.error.message).toContain(STUDY_UID);

    const noInstanceUid = basicResults();
    delete noInstanceUid.instances[1][Tag.SOPInstanceUID];
    expect(mapStudy(noInstanceUid, source())).toMatchObject({
      ok: false,
      error: { code: 'instance-missing-uid', tag: Tag.SOPInstanceUID },
    });

    const noSopClass = basicResults();
    noSopClass.instances[0][Tag.SOPClassUID] = { vr: 'UI' };
    expect(mapStudy(noSopClass, source())).toMatchObject({
      ok: false,
      error: { code: 'instance-missing-sop-class', tag: Tag.SOPClassUID },
    });
  });

  test('not an object at all', () => {
    expect(mapStudy(null as never, source())).toMatchObject({ ok: false, error: { code: 'missing-study-uid' } });
    expect(mapStudy({ study: 'x' } as never, source())).toMatchObject({
      ok: false,
      error: { code: 'missing-study-uid' },
    });
  });
});

describe('output hygiene and determinism', () => {
  test('empty and blank values become absent elements', () => {
    const r = basicResults();
    Object.assign(r.study, {
      [Tag.StudyDescription]: s('LO', '   '),
      [Tag.ReferringPhysicianName]: { vr: 'PN', Value: [{ Alphabetic: '' }] },
      [Tag.NameOfPhysiciansReadingStudy]: { vr: 'PN' },
      [Tag.ProcedureCodeSequence]: { vr: 'SQ', Value: [] },
      [Tag.AccessionNumber]: s('SH', null),
    });
    const json = JSON.stringify(mapOk(r).imagingStudy);
    expect(json).not.toMatch(/""|\[\]|\{\}/);
    expect(json).not.toContain('description');
    expect(json).not.toContain('referrer');
  });

  test('the same input in another order gives byte-identical JSON and the same hash', () => {
    const a = basicResults();
    a.series.push(
      series(`${STUDY_UID}.2`, { [Tag.SeriesNumber]: n('IS', 2), [Tag.NumberOfSeriesRelatedInstances]: n('IS', 1) }),
    );
    a.instances.push(instance(`${STUDY_UID}.2`, 1));
    a.study[Tag.NumberOfStudyRelatedSeries] = n('IS', 2);
    a.study[Tag.NumberOfStudyRelatedInstances] = n('IS', 3);
    const b = { study: a.study, series: [...a.series].reverse(), instances: [...a.instances].reverse() };
    const ra = mapOk(a);
    const rb = mapOk(b);
    expect(JSON.stringify(rb.imagingStudy)).toBe(JSON.stringify(ra.imagingStudy));
    expect(rb.contentHash).toBe(ra.contentHash);
    expect(ra.imagingStudy.series?.map((x) => x.number)).toEqual([1, 2]);
  });

  test('a changed attribute changes the hash', () => {
    const r = basicResults();
    const before = mapOk(r).contentHash;
    r.study[Tag.StudyDescription] = s('LO', 'changed');
    expect(mapOk(r).contentHash).not.toBe(before);
  });
});
