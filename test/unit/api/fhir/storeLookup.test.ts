import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Endpoint, ImagingStudy } from 'fhir/r4';
import { parseApiConfig } from '../../../../src/api/config';
import type { Cursor } from '../../../../src/api/fhir/cursor';
import { START } from '../../../../src/api/fhir/cursor';
import { matchContextFor, matchesAll } from '../../../../src/api/fhir/match';
import { parseImagingStudySearch, type ParseOptions } from '../../../../src/api/fhir/params';
import { createStudyLookup } from '../../../../src/api/fhir/lookup';
import type { ApiSource, StudyLookup } from '../../../../src/api/fhir/studies';
import { storeFilterFor } from '../../../../src/api/fhir/storeFilter';
import { sourceSchema } from '../../../../src/config';
import type { PacsSource } from '../../../../src/dicomweb/types';
import { silentLogger } from '../../../../src/log';
import { createEmbeddedSink } from '../../../../src/sinks/embeddedSink';
import { openSqliteStore, type SqliteStateStore } from '../../../../src/state';
import { MIGRATIONS } from '../../../../src/state/sqlite/migrations';
import {
  STORED_ACCESSION_SYSTEM,
  STORED_PATIENT_SYSTEM,
  storedStudy,
  storedStudyUid,
} from '../../../fixtures/storedStudies';

let dir: string;
let store: SqliteStateStore;

const endpoint: Endpoint = {
  resourceType: 'Endpoint',
  id: 'pacs-a',
  status: 'active',
  connectionType: { code: 'dicom-wado-rs' },
  payloadType: [{ text: 'DICOM' }],
  address: 'http://pacs/dicom-web',
};

function indexOf(s: SqliteStateStore, id: string) {
  const row = s.db
    .prepare('SELECT source_id, started_day, started_ms, status FROM imaging_study_index WHERE resource_id = ?')
    .get(id);
  const tokens = (
    s.db.prepare('SELECT kind, value FROM imaging_study_token WHERE resource_id = ? ORDER BY kind, value').all(id) as {
      kind: string;
      value: string;
    }[]
  ).map((t) => `${t.kind}=${t.value}`);
  return { row, tokens };
}

const ids = (studies: ImagingStudy[]) => studies.map((s) => s.id);

describe('store search index', () => {
  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'store-index-'));
    store = openSqliteStore(path.join(dir, 'bridge.sqlite'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('follows writes, updates, entered-in-error marks and deletes, in the same transaction', async () => {
    const sink = createEmbeddedSink(store);
    const study = storedStudy('a', 2); // started with +08:00, two series
    const uid = storedStudyUid('a', 2);
    await sink.writeBatch([{ sourceId: 'a', studyUid: uid, imagingStudy: study, endpoint, contentHash: 'h1' }]);
    let idx = indexOf(store, study.id);
    expect(idx.row).toEqual({
      source_id: 'a',
      started_day: '20240303',
      started_ms: Date.parse('2024-03-03T02:15:00+08:00'),
      status: 'available',
    });
    // Study modality US; series US, CR, DX; subject identifier P2.
    expect(idx.tokens).toEqual([
      `identifier=ACC2`,
      `identifier=urn:oid:${uid}`,
      'modality=CR',
      'modality=DX',
      'modality=US',
      'patient=P2',
      `series=${uid}.1`,
      `series=${uid}.2`,
      `series=${uid}.3`,
      `uid=${uid}`,
    ]);

    // Update: new accession, date and modality replace the old entries.
    const updated: ImagingStudy & { id: string } = {
      ...study,
      started: '2023-12-31',
      identifier: [study.identifier![0], { value: 'NEW1' }],
      modality: [{ code: 'XA' }],
      series: [],
    };
    await sink.writeBatch([{ sourceId: 'a', studyUid: uid, imagingStudy: updated, endpoint, contentHash: 'h2' }]);
    idx = indexOf(store, study.id);
    expect(idx.row).toEqual({ source_id: 'a', started_day: '20231231', started_ms: null, status: 'available' });
    expect(idx.tokens).toEqual([
      'identifier=NEW1',
      `identifier=urn:oid:${uid}`,
      'modality=XA',
      'patient=P2',
      `uid=${uid}`,
    ]);
    expect(
      ids(
        await store.resources.searchImagingStudies(
          { sourceId: 'a', tokens: [[{ kind: 'identifier', value: 'ACC2' }]] },
          { limit: 10 },
        ),
      ),
    ).toEqual([]);
    expect(
      ids(
        await store.resources.searchImagingStudies(
          { sourceId: 'a', tokens: [[{ kind: 'identifier', value: 'NEW1' }]] },
          { limit: 10 },
        ),
      ),
    ).toEqual([study.id]);

    await sink.removeStudy('a', uid, 'entered-in-error');
    expect(indexOf(store, study.id).row).toMatchObject({ status: 'entered-in-error' });
    expect(
      ids(await store.resources.searchImagingStudies({ sourceId: 'a', statuses: [['available']] }, { limit: 10 })),
    ).toEqual([]);

    await sink.removeStudy('a', uid, 'delete');
    expect(indexOf(store, study.id)).toEqual({ row: undefined, tokens: [] });
  });

  it('rolls the index back with a failed batch', async () => {
    const good = storedStudy('a', 1);
    // The second put of the batch is not JSON-serialisable: the first must not stay behind, nor its index rows.
    const cyclic = { ...storedStudy('a', 2) } as ImagingStudy & { id: string; self?: unknown };
    cyclic.self = cyclic;
    await expect(
      store.resources.put([
        { resource: good, sourceId: 'a', studyUid: storedStudyUid('a', 1), contentHash: 'h' },
        { resource: cyclic, sourceId: 'a', studyUid: storedStudyUid('a', 2), contentHash: 'h2' },
      ]),
    ).rejects.toThrow(/circular/i);
    expect(await store.resources.get('ImagingStudy', good.id)).toBeUndefined();
    expect(indexOf(store, good.id)).toEqual({ row: undefined, tokens: [] });
  });

  it('is back-filled by the migration from a version-2 database', async () => {
    await store.close();
    const file = path.join(dir, 'v2.sqlite');
    const raw = new Database(file);
    for (const m of MIGRATIONS.filter((step) => step.version <= 2)) raw.exec(m.sql);
    raw.pragma('user_version = 2');
    const put = raw.prepare(
      `INSERT INTO resources (resource_type, id, source_id, study_uid, version_id, content_hash, created_by_bridge, last_updated, json) VALUES (?, ?, ?, ?, 1, 'h', 1, '2024-01-01T00:00:00Z', ?)`,
    );
    for (let i = 0; i < 30; i++) {
      const s = storedStudy(i < 20 ? 'a' : 'b', i);
      put.run('ImagingStudy', s.id, i < 20 ? 'a' : 'b', storedStudyUid(i < 20 ? 'a' : 'b', i), JSON.stringify(s));
    }
    put.run('Endpoint', 'pacs-a', 'a', null, JSON.stringify(endpoint));
    raw.close();

    store = openSqliteStore(file);
    expect(store.schemaVersion).toBe(MIGRATIONS[MIGRATIONS.length - 1].version);
    expect((store.db.prepare('SELECT COUNT(*) AS n FROM imaging_study_index').get() as { n: number }).n).toBe(30);
    expect(indexOf(store, storedStudy('a', 5).id)).toEqual({
      row: {
        source_id: 'a',
        started_day: '20240306',
        started_ms: Date.parse('2024-03-06T05:00:00Z'),
        status: 'available',
      },
      tokens: expect.arrayContaining(['patient=P5', 'identifier=ACC5']),
    });
    expect(
      ids(
        await store.resources.searchImagingStudies(
          { sourceId: 'a', tokens: [[{ kind: 'patient', value: 'P5' }]] },
          { limit: 10 },
        ),
      ),
    ).toEqual([storedStudy('a', 5).id]);
    expect(await store.resources.searchImagingStudies({ sourceId: 'b' }, { limit: 100 })).toHaveLength(10);
  });

  it('pages candidates by keyset in id order', async () => {
    await store.resources.put(
      Array.from({ length: 25 }, (_, i) => ({
        resource: storedStudy('a', i),
        sourceId: 'a',
        studyUid: storedStudyUid('a', i),
        contentHash: `h${i}`,
      })),
    );
    const all = ids(await store.resources.listImagingStudies({ sourceId: 'a' }));
    const first = await store.resources.searchImagingStudies({ sourceId: 'a' }, { limit: 10 });
    const second = await store.resources.searchImagingStudies({ sourceId: 'a' }, { after: first[9].id, limit: 100 });
    expect([...ids(first), ...ids(second)]).toEqual(all);
  });
});

describe('store-mode search over many stored studies', () => {
  const opts: ParseOptions = {
    defaultCount: 20,
    maxCount: 1000,
    maxValueLength: 128,
    strict: false,
    patientIdRule: { prefix: 'pid-', suffix: '' },
  };
  const sources: ApiSource[] = ['a', 'b'].map((id) => ({
    // Patient ids (pid-P12) stand for Patient IDs in the sources' issuer-less system.
    config: sourceSchema.parse({
      id,
      qidoBase: `http://pacs-${id}.invalid/dicom-web`,
      defaultTimezone: 'Asia/Taipei',
      mapping: { patient: { defaultSystem: STORED_PATIENT_SYSTEM } },
    }),
    // Store mode without fallback never asks the PACS: any call fails the test.
    pacs: new Proxy(
      {},
      {
        get: () => () => {
          throw new Error('PACS queried in store mode');
        },
      },
    ) as unknown as PacsSource,
  }));
  let service: StudyLookup;
  const PER_SOURCE = { a: 3000, b: 400 };

  beforeAll(async () => {
    store = openSqliteStore(':memory:');
    for (const [sourceId, n] of Object.entries(PER_SOURCE))
      await store.resources.put(
        Array.from({ length: n }, (_, i) => ({
          resource: storedStudy(sourceId, i),
          sourceId,
          studyUid: storedStudyUid(sourceId, i),
          contentHash: `h${i}`,
        })),
      );
    service = createStudyLookup({
      config: parseApiConfig({
        mode: 'store',
        storeFallback: false,
        cache: { enabled: false },
        auth: { type: 'none' },
      }),
      sources: sources,
      store: store.resources,
      logger: silentLogger,
    });
  });
  afterAll(async () => {
    service.close();
    await store.close();
  });

  /** What a full scan with the matcher finds: the old store path. */
  async function fullScan(query: string): Promise<string[]> {
    const { criteria } = parseImagingStudySearch([...new URLSearchParams(query).entries()], opts);
    const out: string[] = [];
    for (const src of sources)
      for (const r of await store.resources.listImagingStudies({ sourceId: src.config.id }))
        if (matchesAll(r, criteria, matchContextFor(src.config))) out.push(r.id!);
    return out;
  }

  async function everyPage(query: string, count: number): Promise<string[]> {
    const { criteria } = parseImagingStudySearch([...new URLSearchParams(query).entries()], opts);
    const out: string[] = [];
    for (let cursor: Cursor | undefined = START; cursor;) {
      const page = await service.search({ criteria, count, cursor });
      expect(page.studies.length).toBeLessThanOrEqual(count);
      out.push(...page.studies.map((s) => s.resource.id!));
      cursor = page.next;
    }
    return out;
  }

  const uidA = storedStudyUid('a', 42);
  const queries = [
    `_id=${uidA}`,
    `_id=${uidA},${storedStudyUid('b', 7)},1.2.3.999`,
    `identifier=urn:dicom:uid|urn:oid:${uidA}`,
    'identifier=ACC42',
    `identifier=${STORED_ACCESSION_SYSTEM}|ACC42`,
    'identifier=|ACC43',
    `patient:identifier=${STORED_PATIENT_SYSTEM}|P12`,
    'patient.identifier=P14',
    'patient=Patient/pid-P12',
    'patient=Patient/pid-X3',
    'started=2024-02-05',
    'started=2024-01',
    'started=ge2024-03-20&started=lt2024-03-25',
    'started=gt2024-02-27T10:00:00%2B08:00&started=le2024-03-01T23:00:00',
    'started=eq2024-02-05T04:45',
    'started=eq2024-03-03T02:15%2B08:00',
    'started=lt2024-01-03T00:00:00Z',
    'started=2024-02-05&modality=CT',
    'modality=MR&status=available',
    'modality=http://dicom.nema.org/resources/ontology/DCM|US&patient.identifier=P3',
    'status=entered-in-error&started=ge2024-03',
    `series=${uidA}.1,${storedStudyUid('b', 8)}.2`,
    'patient.identifier=P96&status=available,registered',
    'started=2025-01-01',
    'started=ge2024-02-01&started=lt2024-01-01',
  ];

  it.each(queries)('%s finds exactly what a full scan finds, across pages', async (query) => {
    const expected = await fullScan(query);
    // Only the two impossible date ranges have no match: the others would pass vacuously.
    if (!query.startsWith('started=2025') && !query.includes('lt2024-01-01'))
      expect(expected.length).toBeGreaterThan(0);
    expect(await everyPage(query, 50)).toEqual(expected);
    const { criteria } = parseImagingStudySearch([...new URLSearchParams(query).entries()], opts);
    expect(await service.count(criteria)).toBe(expected.length);
  });

  it('narrows: a selective search reads only its candidates from the index', async () => {
    const { criteria } = parseImagingStudySearch(
      [...new URLSearchParams('patient.identifier=P12&started=2024-01').entries()],
      opts,
    );
    const candidates = await store.resources.searchImagingStudies(storeFilterFor(criteria, 'a', 'Asia/Taipei')!, {
      limit: 10_000,
    });
    expect(candidates.length).toBeGreaterThan(0);
    expect(candidates.length).toBeLessThan(60);
    expect((await fullScan('patient.identifier=P12&started=2024-01')).length).toBeGreaterThan(0);
  });
});
