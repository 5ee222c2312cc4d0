import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Endpoint, ImagingStudy } from 'fhir/r4';
import { openSqliteStore, type SqliteStateStore } from '../../../../src/state';
import { MIGRATIONS } from '../../../../src/state/sqlite/migrations';
import { createEmbeddedSink } from '../../../../src/sinks/embeddedSink';
import type { StudyWrite } from '../../../../src/sinks/sink';

let dir: string;
let store: SqliteStateStore;
beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'store-test-'));
  store = openSqliteStore(path.join(dir, 'sub', 'bridge.sqlite'));
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const endpoint: Endpoint = {
  resourceType: 'Endpoint',
  id: 'ep-a',
  status: 'active',
  connectionType: { code: 'dicom-wado-rs' },
  payloadType: [{ text: 'DICOM' }],
  address: 'http://pacs/dicom-web',
};
function write(uid: string, instances: number, id = `is-${uid}`): StudyWrite {
  const imagingStudy: ImagingStudy = {
    resourceType: 'ImagingStudy',
    id,
    status: 'available',
    subject: { reference: 'Patient/p' },
    numberOfInstances: instances,
  };
  return { sourceId: 'a', studyUid: uid, imagingStudy, endpoint, contentHash: `h${instances}` };
}
const failure = (error: string, countAttempt = true) => ({
  studyDate: '20240101',
  fingerprint: 'fp',
  error,
  countAttempt,
  maxAttempts: 3,
  retryDelaySeconds: (n: number) => 60 * n,
});

describe('embedded store', () => {
  it('creates its folder, runs in WAL mode and records the schema version', async () => {
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS[MIGRATIONS.length - 1].version);
    await store.close();
    store = openSqliteStore(path.join(dir, 'sub', 'bridge.sqlite')); // re-opening migrates nothing twice
    expect(store.schemaVersion).toBe(MIGRATIONS[MIGRATIONS.length - 1].version);
  });

  it('refuses a database from a newer bridge', async () => {
    await store.close();
    const raw = new Database(path.join(dir, 'sub', 'bridge.sqlite'));
    raw.pragma('user_version = 999');
    raw.close();
    expect(() => openSqliteStore(path.join(dir, 'sub', 'bridge.sqlite'))).toThrow(/newer/);
    store = openSqliteStore(':memory:');
  });

  it('moves checkpoints forward only, per source and name', async () => {
    await store.checkpoints.advance('a', '20240105');
    await store.checkpoints.advance('a', '20240103');
    await store.checkpoints.advance('a', '20230101', 'backfill:x');
    expect(await store.checkpoints.get('a')).toBe('20240105');
    expect(await store.checkpoints.get('a', 'backfill:x')).toBe('20230101');
    expect(await store.checkpoints.get('b')).toBeUndefined();
  });

  it('counts failures with backoff, dead-letters after the limit, and replays', async () => {
    const at = new Date('2024-03-01T00:00:00Z');
    let s = (await store.studies.recordFailures('a', [{ studyUid: '1.1', ...failure('boom'), at }]))[0];
    expect(s).toMatchObject({
      status: 'failing',
      attempts: 1,
      lastError: 'boom',
      nextRetryAt: '2024-03-01T00:01:00.000Z',
    });
    s = (await store.studies.recordFailures('a', [{ studyUid: '1.1', ...failure('unreachable', false), at }]))[0];
    expect(s).toMatchObject({ status: 'failing', attempts: 1, nextRetryAt: at.toISOString() });
    await store.studies.recordFailures('a', [{ studyUid: '1.1', ...failure('boom'), at }]);
    s = (await store.studies.recordFailures('a', [{ studyUid: '1.1', ...failure('boom again'), at }]))[0];
    expect(s).toMatchObject({ status: 'dead', dead: true, attempts: 3, lastError: 'boom again', nextRetryAt: null });
    expect((await store.studies.list('a', 'dead')).map((d) => d.studyUid)).toEqual(['1.1']);
    expect(await store.studies.dueRetries('a', new Date('2030-01-01'))).toEqual([]);

    expect(await store.studies.replay('a', '9.9')).toBe(0);
    expect(await store.studies.replay('a')).toBe(1);
    expect(await store.studies.get('a', '1.1')).toMatchObject({ status: 'failing', attempts: 0 });
    expect((await store.studies.dueRetries('a')).map((d) => d.studyUid)).toEqual(['1.1']);

    await store.studies.recordSynced('a', [
      { studyUid: '1.1', studyDate: '20240101', fingerprint: 'fp2', contentHash: 'h', resourceId: 'r', versionId: '1' },
    ]);
    expect(await store.studies.get('a', '1.1')).toMatchObject({
      status: 'synced',
      attempts: 0,
      lastError: null,
      fingerprint: 'fp2',
      contentHash: 'h',
      resourceId: 'r',
    });
    expect(await store.studies.counts('a')).toMatchObject({ studies: 1, synced: 1, failing: 0, dead: 0 });
  });

  it('keeps run history newest first and closes runs a killed process left open', async () => {
    const r1 = await store.runs.startRun('a', 'poll');
    await store.runs.finishRun(r1, { status: 'ok', counts: { written: 2 } });
    await store.runs.startRun('a', 'backfill');
    expect(await store.runs.closeAbandonedRuns()).toBe(1);
    const runs = await store.runs.listRuns('a', 10);
    expect(runs.map((r) => [r.kind, r.status])).toEqual([
      ['backfill', 'interrupted'],
      ['poll', 'ok'],
    ]);
    expect(runs[1].counts).toEqual({ written: 2 });
  });
});

describe('embedded sink', () => {
  it('writes resources with versions; an equal content hash writes nothing', async () => {
    const sink = createEmbeddedSink(store);
    const [first] = await sink.writeBatch([write('1.1', 3)]);
    expect(first).toEqual({ studyUid: '1.1', ok: true, resourceId: 'is-1.1', versionId: '1', unchanged: false });
    const [again] = await sink.writeBatch([write('1.1', 3)]);
    expect(again).toMatchObject({ versionId: '1', unchanged: true });
    const [changed] = await sink.writeBatch([write('1.1', 4)]);
    expect(changed).toMatchObject({ versionId: '2', unchanged: false });
    const stored = (await store.resources.get<ImagingStudy>('ImagingStudy', 'is-1.1'))!;
    expect(stored.numberOfInstances).toBe(4);
    expect(stored.meta?.versionId).toBe('2');
    expect(await store.resources.get('Endpoint', 'ep-a')).toMatchObject({ address: 'http://pacs/dicom-web' });
    expect(await store.resources.listImagingStudies({ sourceId: 'a' })).toHaveLength(1);
    expect(await store.resources.listImagingStudies({ sourceId: 'b' })).toHaveLength(0);
  });

  it('removes or marks only resources the bridge created', async () => {
    const sink = createEmbeddedSink(store);
    await store.resources.put([
      {
        resource: {
          resourceType: 'ImagingStudy',
          id: 'foreign',
          status: 'available',
          subject: { reference: 'Patient/p' },
        } as ImagingStudy & { id: string },
        sourceId: 'a',
        studyUid: '2.2',
        contentHash: 'x',
        createdByBridge: false,
      },
    ]);
    // The bridge updating a resource it found keeps it "not created by the bridge".
    await sink.writeBatch([write('2.2', 1, 'foreign'), write('1.1', 1), write('3.3', 1)]);
    expect(await store.resources.getMeta('ImagingStudy', 'foreign')).toMatchObject({
      createdByBridge: false,
      versionId: 2,
    });

    await sink.removeStudy('a', '2.2', 'delete');
    await sink.removeStudy('a', '1.1', 'delete');
    await sink.removeStudy('a', '3.3', 'entered-in-error');
    expect(await store.resources.get('ImagingStudy', 'foreign')).toBeDefined();
    expect(await store.resources.get('ImagingStudy', 'is-1.1')).toBeUndefined();
    expect((await store.resources.get<ImagingStudy>('ImagingStudy', 'is-3.3'))?.status).toBe('entered-in-error');
  });

  it('writes a batch all or nothing', async () => {
    const sink = createEmbeddedSink(store);
    const bad = write('4.4', 1);
    (bad.imagingStudy as unknown as { id: unknown }).id = { not: 'bindable' };
    await expect(sink.writeBatch([write('1.1', 1), bad])).rejects.toThrow();
    expect(await store.resources.listImagingStudies()).toHaveLength(0);
  });
});
