/**
 * A completed sweep's `listed` on both backends: the distinct studies seen since the sweep started, however
 * many rows the listings returned (a UID listed twice, a resumed sweep's windows, the undated scan), and
 * none of those seen only before it started or looked up and not found.
 */
import type { StateStore } from '../../../src/state/repositories';
import { syncedStudy } from '../../fixtures/stateRecords';
import { backends, type Backend } from './backends';

const T0 = new Date('2025-03-01T10:00:00.000Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

const synced = (studyUid: string, seconds: number) => syncedStudy(studyUid, at(seconds));

describe.each(backends())('sweep listed on $name', (backend: Backend) => {
  let store: StateStore;

  beforeAll(() => backend.setUp(), 60_000);
  afterAll(() => backend.tearDown());
  beforeEach(async () => {
    store = await backend.fresh();
  });
  afterEach(() => store.close());

  it('counts each study seen since the sweep started once, whatever the rows listed', async () => {
    // Seen only before the sweep: not part of what this sweep's PACS reported.
    await store.studies.recordSynced('a', [synced('before', -10)]);
    const sweep = await store.sweeps.open('a', at(0));
    // Window 1 lists s1 twice (two PACS rows, one UID) and s2; the process stops, the sweep resumes.
    await store.studies.recordSynced('a', [synced('s1', 1), synced('s2', 1)]);
    await store.studies.touchSeen('a', ['s1'], at(2));
    await store.sweeps.advance(sweep.id, { throughDate: '20200101', listed: 3 });
    const resumed = await store.sweeps.open('a', at(5));
    expect(resumed).toMatchObject({ id: sweep.id, listed: 3 });
    // Window 2 lists s3; the undated scan finds s2 again (a dated study on a PACS without empty matching).
    await store.studies.recordSynced('a', [synced('s3', 6)]);
    await store.studies.recordFailures('a', [
      {
        studyUid: 's4',
        studyDate: null,
        fingerprint: 'fp',
        error: 'boom',
        countAttempt: true,
        maxAttempts: 3,
        retryDelaySeconds: () => 60,
        at: at(7),
      },
    ]);
    await store.studies.touchSeen('a', ['s2'], at(8));
    await store.sweeps.advance(sweep.id, { throughDate: '99991231', listed: 2 });
    await store.sweeps.advance(sweep.id, { listed: 2, undatedDone: true });
    // Another source's studies are not this sweep's.
    await store.studies.recordSynced('b', [synced('other', 3)]);

    const done = await store.sweeps.complete(sweep.id, { vanished: 1, unresolved: 0, at: at(10) });
    expect(done).toMatchObject({ listed: 4, synced: 3, failing: 1, dead: 0 });
    expect(await store.sweeps.lastComplete('a')).toMatchObject({ listed: 4 });
  });

  it('an empty PACS completes with nothing listed', async () => {
    const sweep = await store.sweeps.open('a', at(0));
    expect(await store.sweeps.complete(sweep.id, { vanished: 0, unresolved: 0, at: at(1) })).toMatchObject({
      listed: 0,
      synced: 0,
    });
  });
});
