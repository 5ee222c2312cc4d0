/**
 * Study UID conflicts: rows of one Study UID under two patients are told apart from harmless duplicates,
 * their record never names a patient, and the store keeps them quarantined until a replay (also across
 * the schema migration that introduced the status).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { detailConflict, splitStudyConflicts, STUDY_UID_CONFLICT } from '../../../src/sync/conflicts';
import { decideStudy } from '../../../src/sync/decide';
import { openSqliteStore } from '../../../src/state';
import { MIGRATIONS } from '../../../src/state/sqlite/migrations';
import { Tag } from '../../../src/dicom/tags';
import type { DicomDataset } from '../../../src/dicom/dicomJson';

const UID = '1.3.12.2.1107.5.2.32.35119.30000010011408520750000000022';
const row = (patientId: string | null, extra: DicomDataset = {}): DicomDataset => ({
  [Tag.StudyInstanceUID]: { vr: 'UI', Value: [UID] },
  ...(patientId === null ? {} : { [Tag.PatientID]: patientId ? { vr: 'LO', Value: [patientId] } : { vr: 'LO' } }),
  ...extra,
});
const other = (uid: string, id = 'X9') => ({
  [Tag.StudyInstanceUID]: { vr: 'UI', Value: [uid] },
  [Tag.PatientID]: { vr: 'LO', Value: [id] },
});

describe('study rows', () => {
  it('one UID under Patient ID 1234 and an empty Patient ID is a conflict; the record names neither', async () => {
    const { rows, conflicts } = splitStudyConflicts([row('1234'), other('1.2.3'), row('')]);
    expect(rows).toEqual([other('1.2.3')]);
    expect(conflicts.map((c) => c.uid)).toEqual([UID]);
    expect(conflicts[0].detail).toMatch(new RegExp(`^${STUDY_UID_CONFLICT}: .*under 2 patients`));
    expect(conflicts[0].detail).toContain('patient 2 (empty Patient ID)');
    expect(conflicts[0].detail).not.toContain('1234');
  });

  it('rows that agree (trailing spaces, an attribute not returned) and other issuers are told apart', async () => {
    expect(splitStudyConflicts([row('id11111 '), row('id11111')]).conflicts).toEqual([]);
    expect(splitStudyConflicts([row('A1'), row(null)]).conflicts).toEqual([]);
    const issuer = (v: string) => ({ [Tag.IssuerOfPatientID]: { vr: 'LO', Value: [v] } });
    const twoIssuers = splitStudyConflicts([row('Q12345', issuer('TWHOSP')), row('Q12345', issuer('OTHERHOSP'))]);
    expect(twoIssuers.conflicts).toHaveLength(1);
    expect(twoIssuers.conflicts[0].detail).not.toMatch(/Q12345|TWHOSP|OTHERHOSP/);
    // An issuer left empty (or out) on one row agrees with any: modalities fill 0010,0021 unevenly.
    expect(splitStudyConflicts([row('Q12345', issuer('TWHOSP')), row('Q12345', issuer(''))]).conflicts).toEqual([]);
  });
});

describe('series and instances', () => {
  const series = (uid: string, pid?: string) => ({
    [Tag.SeriesInstanceUID]: { vr: 'UI', Value: [uid] },
    ...(pid === undefined ? {} : { [Tag.PatientID]: { vr: 'LO', Value: [pid] } }),
  });
  it('instances under another patient than the study row are a conflict, named by series UIDs', async () => {
    const detail = detailConflict(UID, row('1234'), {
      series: [series('1.2.1', '1234')],
      instances: [series('1.2.1', '1234'), series('1.2.2', '5678')],
    });
    expect(detail).toContain('patient 1: the study row, series 1.2.1');
    expect(detail).toContain('patient 2: series 1.2.2');
    expect(detail).not.toMatch(/1234|5678/);
  });
  it('no conflict when they agree or carry no patient attributes', async () => {
    expect(detailConflict(UID, row('1234'), { series: [series('1.2.1')], instances: [series('1.2.1', '1234')] })).toBe(
      undefined,
    );
  });
});

describe('store', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'quarantine-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('quarantines, keeps what was written, counts, and replays', async () => {
    const store = openSqliteStore(path.join(dir, 'q.sqlite'));
    await store.studies.recordSynced('a', [
      { studyUid: UID, studyDate: '20100114', fingerprint: 'f', contentHash: 'h', resourceId: UID },
    ]);
    const q = await store.studies.recordQuarantine('a', UID, {
      studyDate: '20100114',
      fingerprint: 'f2',
      reason: STUDY_UID_CONFLICT,
      detail: 'study-uid-conflict: …',
    });
    expect(q).toMatchObject({ status: 'quarantined', reason: STUDY_UID_CONFLICT, resourceId: UID, contentHash: null });
    expect(decideStudy(q, 'f2', new Date())).toBe('quarantined');
    expect(await store.studies.counts('a')).toMatchObject({ quarantined: 1, synced: 0 });
    expect((await store.studies.list('a', 'quarantined')).map((s) => s.studyUid)).toEqual([UID]);
    expect(await store.studies.replay('a', UID)).toBe(1);
    expect(await store.studies.get('a', UID)).toMatchObject({ status: 'failing', reason: null, nextRetryAt: null });
    await store.close();
  });

  it('the migration keeps every row and index of an older database', async () => {
    const file = path.join(dir, 'v3.sqlite');
    const raw = new Database(file);
    const quarantineStep = MIGRATIONS.find((m) => m.description.includes('quarantined'))!;
    for (const m of MIGRATIONS.filter((step) => step.version < quarantineStep.version)) {
      raw.exec(m.sql);
      m.fill?.(raw);
    }
    raw.pragma(`user_version = ${quarantineStep.version - 1}`);
    raw
      .prepare(
        `INSERT INTO studies (source_id, study_uid, study_date, status, attempts, last_error, updated_at) VALUES ('a', '1.2', '20240101', 'dead', 5, 'boom', 'x')`,
      )
      .run();
    raw.close();
    const store = openSqliteStore(file);
    expect(await store.studies.get('a', '1.2')).toMatchObject({
      status: 'dead',
      attempts: 5,
      lastError: 'boom',
      reason: null,
    });
    const indexes = store.db
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'studies'`)
      .all();
    expect(indexes).toContainEqual({ name: 'studies_status' });
    expect(() => store.db.prepare(`UPDATE studies SET status = 'bogus'`).run()).toThrow(/CHECK/);
    await store.close();
  });
});
