/** One study held by several sources, merged: endpoints, series and instances, counts, the patient agreeing. */
import type { ImagingStudy, ImagingStudySeries } from 'fhir/r4';
import { holdingsConflict, mergeHoldings, type SourceHolding } from '../../../src/mapping';

const instance = (uid: string) => ({
  uid,
  sopClass: { system: 'urn:ietf:rfc:3986', code: 'urn:oid:1.2.840.10008.5.1.4.1.1.2' },
});
const series = (uid: string, instances: string[], over: Partial<ImagingStudySeries> = {}): ImagingStudySeries => ({
  uid,
  modality: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT' },
  numberOfInstances: instances.length,
  instance: instances.map(instance),
  ...over,
});
const holding = (sourceId: string, over: Partial<ImagingStudy> = {}): SourceHolding => ({
  sourceId,
  imagingStudy: {
    resourceType: 'ImagingStudy',
    id: '1.2.3',
    status: 'available',
    subject: { identifier: { system: 'urn:oid:1.2', value: 'P1' } },
    endpoint: [{ reference: `Endpoint/pacs-${sourceId}` }],
    description: `from ${sourceId}`,
    numberOfSeries: 1,
    numberOfInstances: 2,
    series: [series('1.2.3.1', ['1.2.3.1.1', '1.2.3.1.2'])],
    ...over,
  },
});

describe('mergeHoldings', () => {
  it('one holding is returned as it is', () => {
    const h = holding('a');
    expect(mergeHoldings([h])).toBe(h.imagingStudy);
  });

  it('every endpoint, the first holder’s study-level attributes, one series all hold without endpoints of its own', () => {
    const m = mergeHoldings([holding('a'), holding('b')]);
    expect(m.endpoint).toEqual([{ reference: 'Endpoint/pacs-a' }, { reference: 'Endpoint/pacs-b' }]);
    expect(m.description).toBe('from a');
    expect(m.series).toEqual([series('1.2.3.1', ['1.2.3.1.1', '1.2.3.1.2'])]);
    expect(m).toMatchObject({ numberOfSeries: 1, numberOfInstances: 2 });
  });

  it('series and instances are the union; a series only some hold names their endpoints; counts follow', () => {
    const a = holding('a', {
      numberOfSeries: 2,
      numberOfInstances: 3,
      series: [series('1.2.3.1', ['1.2.3.1.1']), series('1.2.3.2', ['1.2.3.2.1', '1.2.3.2.2'])],
    });
    const b = holding('b', { series: [series('1.2.3.1', ['1.2.3.1.1', '1.2.3.1.2']), series('1.2.3.3', ['x'])] });
    const m = mergeHoldings([a, b]);
    expect(m.series!.map((s) => [s.uid, s.endpoint?.map((e) => e.reference), s.instance?.map((i) => i.uid)])).toEqual([
      ['1.2.3.1', undefined, ['1.2.3.1.1', '1.2.3.1.2']],
      ['1.2.3.2', ['Endpoint/pacs-a'], ['1.2.3.2.1', '1.2.3.2.2']],
      ['1.2.3.3', ['Endpoint/pacs-b'], ['x']],
    ]);
    expect(m.series![0].numberOfInstances).toBe(2);
    expect(m).toMatchObject({ numberOfSeries: 3, numberOfInstances: 5 });
  });

  it('a PACS count above what the lists hold is kept (instances not listed)', () => {
    const a = holding('a', { numberOfInstances: 500, series: [series('1.2.3.1', [], { numberOfInstances: 500 })] });
    delete a.imagingStudy.series![0].instance;
    const m = mergeHoldings([a, holding('b')]);
    expect(m.numberOfInstances).toBe(500);
    expect(m.series![0]).toMatchObject({ numberOfInstances: 500 });
  });

  it('available when any holder has it available', () => {
    const m = mergeHoldings([holding('a', { status: 'registered' }), holding('b')]);
    expect(m.status).toBe('available');
  });
});

describe('holdingsConflict', () => {
  it('none when every source names the same patient', () => {
    expect(holdingsConflict('1.2.3', [holding('a'), holding('b')])).toBeUndefined();
  });

  it('a Study UID conflict when the patient identifiers differ, naming the sources and the fix, not the patients', () => {
    const b = holding('b', { subject: { identifier: { system: 'urn:pacs-fhir-bridge:b:patient-id', value: 'P1' } } });
    const detail = holdingsConflict('1.2.3', [holding('a'), b])!;
    expect(detail).toMatch(/^study-uid-conflict: sources a, b hold Study Instance UID 1\.2\.3 under 2 different/);
    expect(detail).toMatch(/defaultSystem/);
    expect(detail).not.toMatch(/P1/);
  });

  it('a study without a Patient ID in one source differs from one with', () => {
    expect(holdingsConflict('1.2.3', [holding('a'), holding('b', { subject: { display: 'x' } })])).toBeDefined();
  });
});
