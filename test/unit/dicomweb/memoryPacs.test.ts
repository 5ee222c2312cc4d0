/**
 * The in-memory PACS's own hooks (test/harness/memoryPacs.ts): the sync-rule tests lean on them to fail, delay and
 * change things exactly when they say, so that is checked here. What it answers is held to Orthanc's answers by
 * test/integration/dicomweb/pacsSourceContract.test.ts.
 */
import { PacsError } from '../../../src/dicomweb';
import { studyUidOf } from '../../../src/dicom';
import { makeStudy } from '../../fixtures/synthetic';
import { MemoryPacs, pacsOutage, pacsRejection } from '../../harness/memoryPacs';

const DAY = { from: '20240315', to: '20240315' };
const listed = async (pacs: MemoryPacs) => (await pacs.findStudies(DAY)).map(studyUidOf);

describe('MemoryPacs fault hooks', () => {
  it('fails the next N calls of a kind, after letting some through, then answers again', async () => {
    const pacs = new MemoryPacs([makeStudy()]);
    const uid = pacs.studies()[0]!.studyUid;
    pacs.fail('studyDetails', { error: pacsOutage(503), after: 1, times: 2 });
    await expect(pacs.studyDetails([uid])).resolves.toBeDefined();
    await expect(pacs.studyDetails([uid])).rejects.toMatchObject({ name: 'PacsError', status: 503 });
    await expect(pacs.studyDetails([uid])).rejects.toBeInstanceOf(PacsError);
    await expect(pacs.studyDetails([uid])).resolves.toBeDefined();
    // Other kinds were never affected.
    expect(await listed(pacs)).toEqual([uid]);
    expect(pacs.callsOf('studyDetails')).toHaveLength(4);
  });

  it('fails only the calls naming a study, every time, until cleared', async () => {
    const [good, bad] = [makeStudy(), makeStudy()];
    const pacs = new MemoryPacs([good, bad]);
    pacs.failStudy(bad.studyUid, pacsRejection(400));
    await expect(pacs.studyDetails([good.studyUid, bad.studyUid])).rejects.toMatchObject({ status: 400 });
    await expect(pacs.searchStudies({ StudyInstanceUID: bad.studyUid })).rejects.toMatchObject({ status: 400 });
    expect((await pacs.studyDetails([good.studyUid])).get(good.studyUid)!.series).toHaveLength(1);
    expect(await listed(pacs)).toHaveLength(2);
    pacs.clearFaults();
    expect((await pacs.studyDetails([bad.studyUid])).get(bad.studyUid)!.series).toHaveLength(1);
  });

  it('delays a kind of call, and runs the before-call hook first', async () => {
    const pacs = new MemoryPacs([makeStudy()]);
    const seen: string[] = [];
    pacs.beforeCall = (call) => void seen.push(call.kind);
    pacs.delay('findStudies', 30);
    const started = Date.now();
    await pacs.findStudies(DAY);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    expect(seen).toEqual(['findStudies']);
  });

  it('changes what it holds: put adds or replaces, update edits in place, remove deletes', async () => {
    const a = makeStudy();
    const pacs = new MemoryPacs([a]);
    // Held as a copy: the test's object changing is no upload.
    a.description = 'changed locally';
    expect(pacs.studies()[0]!.description).not.toBe('changed locally');
    pacs.put(a);
    expect(pacs.studies()).toHaveLength(1);
    expect(pacs.studies()[0]!.description).toBe('changed locally');

    pacs.update(a.studyUid, (s) => (s.studyDate = '20240316'));
    expect(await listed(pacs)).toEqual([]);
    const b = makeStudy();
    pacs.put(b);
    expect(await listed(pacs)).toEqual([b.studyUid]);
    expect(pacs.remove(b.studyUid)).toBe(1);
    expect(await listed(pacs)).toEqual([]);
    expect(() => pacs.update(b.studyUid, () => undefined)).toThrow(/holds no study/);
  });

  it('without UID-list matching, takes a comma list literally (it matches nothing)', async () => {
    const [a, b] = [makeStudy(), makeStudy()];
    const pacs = new MemoryPacs([a, b], { uidListMatching: false });
    expect(await pacs.supportsUidListMatching()).toBe(false);
    expect(await pacs.searchStudies({ StudyInstanceUID: `${a.studyUid},${b.studyUid}` })).toEqual([]);
    expect(await pacs.searchStudies({ StudyInstanceUID: a.studyUid })).toHaveLength(1);
  });
});
