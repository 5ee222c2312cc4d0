/**
 * Golden test: the DICOM JSON that FHIR R4's ImagingStudy/example-xr describes, mapped, reproduces that
 * example. Each difference is applied below as a named, explained edit of the published example (the
 * same list is in docs/mapping.md, "Golden test"); anything else that differs fails the test.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ImagingStudy } from 'fhir/r4';
import { mapStudy } from '../../../src/mapping';
import { Tag } from '../../../src/dicom/tags';
import { code, n, pn, s, source, sq } from './dicom';
import { expectValid } from './validity';

const example = (): ImagingStudy & Record<string, any> =>
  JSON.parse(
    fs.readFileSync(path.resolve(__dirname, '../../fixtures/fhir-examples/r4/ImagingStudy-example-xr.json'), 'utf8'),
  );

const STUDY_UID = '2.16.124.113543.6003.1154777499.30246.19789.3503430046';
const SERIES_UID = '2.16.124.113543.6003.1154777499.30246.19789.3503430045.1';

/** What a PACS returns by QIDO-RS for the study in example-xr. */
export function exampleXrResults() {
  const studyDs = {
    [Tag.StudyInstanceUID]: s('UI', STUDY_UID),
    [Tag.StudyDate]: s('DA', '20170101'),
    [Tag.StudyTime]: s('TM', '110120'),
    [Tag.TimezoneOffsetFromUTC]: s('SH', '+0300'),
    [Tag.AccessionNumber]: s('SH', 'W12342398'),
    [Tag.StudyID]: s('SH', '55551234'),
    [Tag.ModalitiesInStudy]: s('CS', 'DX'),
    [Tag.PatientID]: s('LO', '09236'),
    [Tag.PatientName]: pn('Smith^John'),
    [Tag.ReferringPhysicianName]: pn('Careful^Adam'),
    [Tag.NameOfPhysiciansReadingStudy]: pn('Careful^Adam'),
    [Tag.StudyDescription]: s('LO', 'XR Wrist 3+ Views'),
    [Tag.ProcedureCodeSequence]: sq(code('RPID2589', 'RADLEX', 'XR Wrist 3+ Views')),
    [Tag.ReasonForRequestedProcedureCodeSequence]: sq(
      code('357009', 'SCT', 'Closed fracture of trapezoidal bone of wrist'),
    ),
    [Tag.NumberOfStudyRelatedSeries]: n('IS', 1),
    [Tag.NumberOfStudyRelatedInstances]: n('IS', 2),
  };
  const seriesDs = {
    [Tag.StudyInstanceUID]: s('UI', STUDY_UID),
    [Tag.SeriesInstanceUID]: s('UI', SERIES_UID),
    [Tag.SeriesNumber]: n('IS', 3),
    [Tag.Modality]: s('CS', 'DX'),
    [Tag.SeriesDescription]: s('LO', 'XR Wrist 3+ Views'),
    [Tag.NumberOfSeriesRelatedInstances]: n('IS', 2),
    [Tag.BodyPartExamined]: s('CS', 'WRIST'),
    [Tag.Laterality]: s('CS', 'L'),
    // The example's series started is 2011 while the study is 2017; kept as published.
    [Tag.SeriesDate]: s('DA', '20110101'),
    [Tag.SeriesTime]: s('TM', '110120'),
    [Tag.PerformingPhysicianName]: pn('Careful^Adam'),
  };
  const inst = (i: number, label: string) => ({
    [Tag.StudyInstanceUID]: s('UI', STUDY_UID),
    [Tag.SeriesInstanceUID]: s('UI', SERIES_UID),
    [Tag.SOPInstanceUID]: s('UI', `${SERIES_UID}.${i}`),
    [Tag.SOPClassUID]: s('UI', '1.2.840.10008.5.1.4.1.1.2'),
    [Tag.InstanceNumber]: n('IS', i),
    [Tag.ContentLabel]: s('CS', label),
  });
  return { study: studyDs, series: [seriesDs], instances: [inst(2, 'LL VIEW'), inst(1, 'PA VIEW')] };
}

const SOURCE = source({
  id: 'example-wadors',
  qidoBase: 'https://pacs.hospital.org/wado-rs',
  defaultTimezone: 'Asia/Taipei',
  mapping: { studyIdSystem: 'urn:example:study-id', basedOnServiceRequest: true, patient: { mode: 'resolved' } },
});

/** The published example with every explained difference applied. */
function expectedFromExample(): ImagingStudy {
  const x = example();
  const acsnType = {
    coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN', display: 'Accession ID' }],
  };
  // 1. id: the Study Instance UID, so every path in the bridge gives this study the same id.
  x.id = STUDY_UID;
  // 2. meta.profile: the resource claims TW Core ImagingStudy.
  x.meta = { profile: ['https://twcore.mohw.gov.tw/ig/twcore/StructureDefinition/ImagingStudy-twcore'] };
  // 3. text: no narrative is generated (optional; servers render their own).
  delete x.text;
  // 4. identifiers: ACSN type gets its display; no assigner (DICOM has no issuer here);
  //    Study ID carries the configured system.
  x.identifier![1] = { use: 'usual', type: acsnType, value: 'W12342398' };
  x.identifier![2] = { use: 'secondary', system: 'urn:example:study-id', value: '55551234' };
  // 5. modality display from CID 29.
  x.modality![0].display = 'Digital Radiography';
  // 6. subject: the resolved Patient reference, plus type, identifier and the name from DICOM.
  x.subject = {
    reference: 'Patient/dicom',
    type: 'Patient',
    identifier: { system: 'urn:pacs-fhir-bridge:example-wadors:patient-id', value: '09236' },
    display: 'John Smith',
  };
  // 7. encounter and procedureReference: DICOM QIDO results carry neither.
  delete x.encounter;
  delete x.procedureReference;
  // 8. basedOn: a logical ServiceRequest reference by accession identifier instead of a literal id.
  x.basedOn = [{ type: 'ServiceRequest', identifier: { type: acsnType, value: 'W12342398' } }];
  // 9. referrer / interpreter: DICOM has names only, so display references.
  x.referrer = { display: 'Adam Careful' };
  x.interpreter = [{ display: 'Adam Careful' }];
  // 10. endpoint: the source's Endpoint id ("pacs-" + source id).
  x.endpoint = [{ reference: 'Endpoint/pacs-example-wadors' }];
  // 11. reasonCode.text from Code Meaning (as procedureCode.text).
  x.reasonCode![0].text = 'Closed fracture of trapezoidal bone of wrist';
  // 12. Study Description goes to description, not note (R4 maps 0008,1030 to description).
  delete x.note;
  x.description = 'XR Wrist 3+ Views';
  const series = x.series![0] as Record<string, any>;
  // 13. series.modality display; series.endpoint left out (the study-level endpoint covers every series).
  series.modality.display = 'Digital Radiography';
  delete series.endpoint;
  // 14. bodySite: the example's "T-15460" is a SNOMED RT id under the SNOMED CT system; Annex L gives SCT 74670003.
  series.bodySite = { system: 'http://snomed.info/sct', code: '74670003', display: 'Wrist joint' };
  // 15. performer: display reference from Performing Physician's Name; function display added.
  series.performer = [
    {
      function: {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PRF', display: 'performer' },
        ],
      },
      actor: { display: 'Adam Careful' },
    },
  ];
  // 16. sopClass display from PS3.6.
  for (const i of series.instance) i.sopClass.display = 'CT Image Storage';
  return x;
}

test('example-xr is reproduced, differences as documented', () => {
  const res = expectValid(mapStudy(exampleXrResults(), SOURCE, { patientReference: 'Patient/dicom' }));
  expect(res.warnings).toEqual([]);
  expect(JSON.parse(JSON.stringify(res.imagingStudy))).toEqual(expectedFromExample());
});

test("the example's own values survive unchanged where DICOM carries them", () => {
  const { imagingStudy } = expectValid(mapStudy(exampleXrResults(), SOURCE, { patientReference: 'Patient/dicom' }));
  const x = example();
  expect(imagingStudy.started).toBe(x.started);
  expect(imagingStudy.identifier![0]).toEqual(x.identifier![0]);
  expect(imagingStudy.procedureCode).toEqual(x.procedureCode);
  expect(imagingStudy.series![0].instance!.map((i) => [i.uid, i.number, i.title])).toEqual(
    x.series![0].instance!.map((i: any) => [i.uid, i.number, i.title]),
  );
  expect(imagingStudy.series![0].laterality).toEqual(x.series![0].laterality);
  expect(imagingStudy.series![0].started).toBe(x.series![0].started);
  expect([imagingStudy.numberOfSeries, imagingStudy.numberOfInstances, imagingStudy.status]).toEqual([
    x.numberOfSeries,
    x.numberOfInstances,
    x.status,
  ]);
});
