/**
 * `_lastUpdated` and `_sort=_lastUpdated` in store mode on both backends: the bounds pushed down to SQL
 * (`resources.last_updated`) select what the matcher would, on SQLite and on PostgreSQL (skipped with a note when
 * PostgreSQL is not installed). The stored studies are written directly, each at a known time; no PACS is asked.
 */
import type { ImagingStudy } from 'fhir/r4';
import type { StateStore } from '../../../src/state/repositories';
import { backends } from '../state/backends';
import { apiSource, matches, serveApi, sourceConfig, type ServedApi } from './helpers';

const ids = ['1.2.826.0.1.3', '1.2.826.0.1.1', '1.2.826.0.1.5', '1.2.826.0.1.2', '1.2.826.0.1.4'];
/** Written at 2031-05-0<k+1>T12:00Z for the k-th id: an order unlike the ids'. */
const at = (k: number) => new Date(Date.UTC(2031, 4, k + 1, 12));

const study = (id: string): ImagingStudy & { id: string } => ({
  resourceType: 'ImagingStudy',
  id,
  identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${id}` }],
  status: 'available',
  subject: { identifier: { system: 'urn:pacs-fhir-bridge:patient-id', value: 'P-LU-1' } },
  started: '2024-01-01T10:00:00+08:00',
  endpoint: [{ reference: 'Endpoint/pacs-a' }],
});

describe.each(backends().map((b) => [b.name, b] as const))('store mode on %s', (_name, backend) => {
  let store: StateStore;
  let api: ServedApi;

  beforeAll(async () => {
    await backend.setUp();
    store = await backend.fresh();
    for (const [k, id] of ids.entries())
      await store.resources.put([{ resource: study(id), sourceId: 'a', studyUid: id, contentHash: id, at: at(k) }]);
    api = await serveApi({
      config: { auth: { type: 'none' }, mode: 'store', storeFallback: false, rateLimit: { enabled: false } },
      // Never asked: the store answers alone.
      sources: [apiSource(sourceConfig('a', 'http://127.0.0.1:9/dicom-web'))],
      store: store.resources,
    });
  });

  afterAll(async () => {
    await api?.close();
    await store?.close();
    await backend.tearDown();
  });

  const found = async (query: string) => {
    const res = await api.http.get(`/ImagingStudy?${query}`);
    expect([query, res.status]).toEqual([query, 200]);
    return matches(res.data).map((r) => r.id!);
  };

  it('selects by every kind of bound', async () => {
    expect((await found('_lastUpdated=ge2031-05-02&_lastUpdated=lt2031-05-04')).sort()).toEqual(
      [ids[1], ids[2]].sort(),
    );
    expect((await found('_lastUpdated=gt2031-05-04')).sort()).toEqual([ids[4]]);
    expect((await found('_lastUpdated=le2031-05-01T12:00:00Z')).sort()).toEqual([ids[0]]);
    expect((await found('_lastUpdated=eq2031-05-03T20:00:00%2B08:00')).sort()).toEqual([ids[2]]);
    expect((await found('_lastUpdated=ne2031-05-03')).sort()).toEqual([...ids.slice(0, 2), ...ids.slice(3)].sort());
    expect(await found('_lastUpdated=lt2031-05-01')).toEqual([]);
  });

  it('orders by it either way, and pages in that order', async () => {
    expect(await found('_lastUpdated=gt2031-01-01&_sort=_lastUpdated')).toEqual(ids);
    expect(await found('_lastUpdated=gt2031-01-01&_sort=-_lastUpdated')).toEqual([...ids].reverse());
    const first = (await api.http.get('/ImagingStudy?_lastUpdated=gt2031-01-01&_sort=-_lastUpdated&_count=2')).data;
    const next = first.link.find((l: { relation: string }) => l.relation === 'next').url as string;
    expect(matches((await api.http.get(next)).data).map((r) => r.id)).toEqual([ids[2], ids[1]]);
  });
});
