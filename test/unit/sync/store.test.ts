import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Endpoint, ImagingStudy } from 'fhir/r4';
import { openStore, type Store } from '../../../src/state';
import { MIGRATIONS } from '../../../src/state/sqlite/migrations';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import type { StudyWrite } from '../../../src/sinks/sink';

let dir: string;
let store: Store;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'store-test-'));
  store = openStore(path.join(dir, 'sub', 'bridge.sqlite'));
});
afterEach(() => {
  store.close();
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
  it('creates its folder, runs in WAL mode and records the schema version', () => {
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS[MIGRATIONS.length - 1].version);
    store.close();
    store = openStore(path.join(dir, 'sub', 'bridge.sqlite')); // re-opening migrates nothing twice
    expect(store.schemaVersion).toBe(MIGRATIONS.length);
  });

  it('refuses a database from a newer bridge', () => {
    store.close();
    const raw = new Database(path.join(dir, 'sub', 'bridge.sqlite'));
    raw.pragma('user_version = 999');
    raw.close();
    expect(() => openStore(path.join(dir, 'sub', 'bridge.sqlite'))).toThrow(/newer/);
    store = openStore(':memory:');
  });

  it('moves checkpoints forward only, per source and name', () => {
    store.advanceCheckpoint('a', '20240105');
    store.advanceCheckpoint('a', '20240103');
    store.advanceCheckpoint('a', '20230101', 'backfill:x');
    expect(store.getCheckpoint('a')).toBe('20240105');
    expect(store.getCheckpoint('a', 'backfill:x')).toBe('20230101');
    expect(store.getCheckpoint('b')).toBeUndefined();
  });

  it('counts failures with backoff, dead-letters after the limit, and replays', () => {
    const at = new Date('2024-03-01T00:00:00Z');
    let s = store.recordFailure('a', '1.1', { ...failure('boom'), at });
    expect(s).toMatchObject({
      status: 'failing',
      attempts: 1,
      lastError: 'boom',
      nextRetryAt: '2024-03-01T00:01:00.000Z',
    });
    s = store.recordFailure('a', '1.1', { ...failure('unreachable', false), at });
    expect(s).toMatchObject({ status: 'failing', attempts: 1, nextRetryAt: at.toISOString() });
    store.recordFailure('a', '1.1', { ...failure('boom'), at });
    s = store.recordFailure('a', '1.1', { ...failure('boom again'), at });
    expect(s).toMatchObject({ status: 'dead', dead: true, attempts: 3, lastError: 'boom again', nextRetryAt: null });
    expect(store.deadLetters('a').map((d) => d.studyUid)).toEqual(['1.1']);
    expect(store.dueRetries('a', new Date('2030-01-01'))).toEqual([]);

    expect(store.replay('a', '9.9')).toBe(0);
    expect(store.replay('a')).toBe(1);
    expect(store.getStudy('a', '1.1')).toMatchObject({ status: 'failing', attempts: 0 });
    expect(store.dueRetries('a').map((d) => d.studyUid)).toEqual(['1.1']);

    store.recordSynced('a', '1.1', {
      studyDate: '20240101',
      fingerprint: 'fp2',
      contentHash: 'h',
      resourceId: 'r',
      versionId: '1',
    });
    expect(store.getStudy('a', '1.1')).toMatchObject({
      status: 'synced',
      attempts: 0,
      lastError: null,
      fingerprint: 'fp2',
      contentHash: 'h',
      resourceId: 'r',
    });
    expect(store.counts('a')).toMatchObject({ studies: 1, synced: 1, failing: 0, dead: 0 });
  });

  it('keeps run history newest first and closes runs a killed process left open', () => {
    const r1 = store.startRun('a', 'poll');
    store.finishRun(r1, { status: 'ok', counts: { written: 2 } });
    store.startRun('a', 'backfill');
    expect(store.closeAbandonedRuns()).toBe(1);
    const runs = store.listRuns('a', 10);
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
    const stored = store.getResource<ImagingStudy>('ImagingStudy', 'is-1.1')!;
    expect(stored.numberOfInstances).toBe(4);
    expect(stored.meta?.versionId).toBe('2');
    expect(store.getResource('Endpoint', 'ep-a')).toMatchObject({ address: 'http://pacs/dicom-web' });
    expect(store.listImagingStudies({ sourceId: 'a' })).toHaveLength(1);
    expect(store.listImagingStudies({ sourceId: 'b' })).toHaveLength(0);
  });

  it('removes or marks only resources the bridge created', async () => {
    const sink = createEmbeddedSink(store);
    store.putResource(
      {
        resourceType: 'ImagingStudy',
        id: 'foreign',
        status: 'available',
        subject: { reference: 'Patient/p' },
      } as ImagingStudy & { id: string },
      {
        sourceId: 'a',
        studyUid: '2.2',
        contentHash: 'x',
        createdByBridge: false,
      },
    );
    // The bridge updating a resource it found keeps it "not created by the bridge".
    await sink.writeBatch([write('2.2', 1, 'foreign'), write('1.1', 1), write('3.3', 1)]);
    expect(store.getResourceMeta('ImagingStudy', 'foreign')).toMatchObject({ createdByBridge: false, versionId: 2 });

    await sink.removeStudy('a', '2.2', 'delete');
    await sink.removeStudy('a', '1.1', 'delete');
    await sink.removeStudy('a', '3.3', 'entered-in-error');
    expect(store.getResource('ImagingStudy', 'foreign')).toBeDefined();
    expect(store.getResource('ImagingStudy', 'is-1.1')).toBeUndefined();
    expect(store.getResource<ImagingStudy>('ImagingStudy', 'is-3.3')?.status).toBe('entered-in-error');
  });

  it('writes a batch all or nothing', async () => {
    const sink = createEmbeddedSink(store);
    const bad = write('4.4', 1);
    (bad.imagingStudy as unknown as { id: unknown }).id = { not: 'bindable' };
    await expect(sink.writeBatch([write('1.1', 1), bad])).rejects.toThrow();
    expect(store.listImagingStudies()).toHaveLength(0);
  });
});
