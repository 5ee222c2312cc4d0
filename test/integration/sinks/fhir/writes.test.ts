/**
 * The FHIR sink against a real FHIR engine (@medplum/fhir-router over HTTP): idempotent writes,
 * updates in place, one Endpoint per source, splitting a rejected transaction, the start-up check,
 * removal, and the number of requests per study.
 */
import type { Endpoint, ImagingStudy } from 'fhir/r4';
import { createFhirSink, FhirSinkError, type FhirSink } from '../../../../src/sinks/fhir';
import { startFhirServer, type FhirTestServer } from '../../../harness/fhirServer';
import { studyWrite, uids } from './studies';

let server: FhirTestServer;

beforeAll(async () => {
  server = await startFhirServer();
});
afterAll(() => server?.stop());
beforeEach(async () => {
  server.repo.clear();
  server.resetRequests();
});

const sinkFor = (extra: Record<string, unknown> = {}): FhirSink =>
  createFhirSink({ baseUrl: server.baseUrl, backoffMs: 10, ...extra });

const studiesWithUid = (all: ImagingStudy[], uid: string) =>
  all.filter((s) => s.identifier?.some((i) => i.system === 'urn:dicom:uid' && i.value === `urn:oid:${uid}`));

describe('conditional update (default write mode)', () => {
  it('writing the same batch twice leaves exactly one ImagingStudy per study', async () => {
    const sink = sinkFor();
    const batch = uids('1.2.840.99.1', 6).map((uid) => studyWrite(uid));
    const first = await sink.writeBatch(batch);
    const second = await sink.writeBatch(batch);

    expect(first.every((o) => o.ok)).toBe(true);
    expect(second.every((o) => o.ok)).toBe(true);
    const stored = await server.all<ImagingStudy>('ImagingStudy');
    expect(stored).toHaveLength(6);
    for (const w of batch) expect(studiesWithUid(stored, w.studyUid)).toHaveLength(1);
    // Same resources both times: the second write resolved to the ids the first one created.
    expect(second.map((o) => o.ok && o.resourceId)).toEqual(first.map((o) => o.ok && o.resourceId));
  });

  it('updates a changed study in place: same id, new version, new content', async () => {
    const sink = sinkFor();
    const uid = '1.2.840.99.2.1';
    const [v1] = await sink.writeBatch([studyWrite(uid, { description: 'CT CHEST' })]);
    const [v2] = await sink.writeBatch([studyWrite(uid, { description: 'CT CHEST W CONTRAST' })]);
    if (!v1.ok || !v2.ok) throw new Error(`write failed: ${JSON.stringify([v1, v2])}`);

    expect(v2.resourceId).toBe(v1.resourceId);
    expect(v2.versionId).toBeDefined();
    expect(v2.versionId).not.toBe(v1.versionId);
    const stored = studiesWithUid(await server.all<ImagingStudy>('ImagingStudy'), uid);
    expect(stored).toHaveLength(1);
    expect(stored[0].description).toBe('CT CHEST W CONTRAST');
    expect(stored[0].meta?.versionId).toBe(v2.versionId);
    const history = await server.history<ImagingStudy>('ImagingStudy', v1.resourceId);
    expect(history.map((h) => h.description)).toEqual(['CT CHEST W CONTRAST', 'CT CHEST']);
  });

  it('sends If-Match with the version it wrote, so a concurrent change is not silently overwritten', async () => {
    const sink = sinkFor();
    const uid = '1.2.840.99.3.1';
    const [v1] = await sink.writeBatch([studyWrite(uid)]);
    if (!v1.ok) throw new Error(v1.error);
    // Someone else updates the study on the server.
    const current = await server.repo.readResource<any>('ImagingStudy', v1.resourceId);
    await server.repo.updateResource({ ...current, description: 'edited elsewhere' });

    const [conflict] = await sink.writeBatch([studyWrite(uid, { description: 'from PACS' })]);
    expect(conflict.ok).toBe(false);
    if (conflict.ok) return;
    expect(conflict.error).toMatch(/412|Precondition/i);
    expect(conflict.retryable).toBe(true);
    expect(studiesWithUid(await server.all<ImagingStudy>('ImagingStudy'), uid)[0].description).toBe('edited elsewhere');

    // The retry knows the conflict and writes over the current version.
    const [retry] = await sink.writeBatch([studyWrite(uid, { description: 'from PACS' })]);
    expect(retry.ok).toBe(true);
    expect(studiesWithUid(await server.all<ImagingStudy>('ImagingStudy'), uid)[0].description).toBe('from PACS');
  });

  it('ensures the Endpoint once per source and points every ImagingStudy at it', async () => {
    const sink = sinkFor();
    await sink.writeBatch(uids('1.2.840.99.4', 5).map((uid) => studyWrite(uid, { sourceId: 'pacsA' })));
    await sink.writeBatch(uids('1.2.840.99.5', 3).map((uid) => studyWrite(uid, { sourceId: 'pacsA' })));
    await sink.writeBatch(uids('1.2.840.99.6', 2).map((uid) => studyWrite(uid, { sourceId: 'pacsB' })));

    const endpoints = await server.all<Endpoint>('Endpoint');
    expect(endpoints.map((e) => e.address).sort()).toEqual([
      'http://pacs.example/pacsA/dicom-web',
      'http://pacs.example/pacsB/dicom-web',
    ]);
    const refOf = (addr: string) => `Endpoint/${endpoints.find((e) => e.address === addr)!.id}`;
    const stored = await server.all<ImagingStudy>('ImagingStudy');
    expect(stored).toHaveLength(10);
    for (const s of stored) {
      const source = s.identifier![0].value!.startsWith('urn:oid:1.2.840.99.6.') ? 'pacsB' : 'pacsA';
      expect(s.endpoint).toEqual([{ reference: refOf(`http://pacs.example/${source}/dicom-web`) }]);
    }
    // One Endpoint write per source over three batches.
    expect(sink.stats().requests.byKind.endpoint).toBe(2);
    expect(server.requests.filter((r) => r.path.startsWith('Endpoint')).length).toBe(2);

    // A second sink (a restart) finds the same Endpoint instead of creating another.
    await sinkFor().writeBatch([studyWrite('1.2.840.99.4.9', { sourceId: 'pacsA' })]);
    expect(await server.all<Endpoint>('Endpoint')).toHaveLength(2);
  });

  it('one invalid study in a batch does not stop the rest; it gets the OperationOutcome text', async () => {
    const sink = sinkFor();
    const batch = uids('1.2.840.99.7', 7).map((uid, i) => studyWrite(uid, { invalid: i === 4 }));
    const outcomes = await sink.writeBatch(batch);

    expect(outcomes.filter((o) => o.ok)).toHaveLength(6);
    const bad = outcomes[4];
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.studyUid).toBe(batch[4].studyUid);
    expect(bad.error).toMatch(/Invalid dateTime format \(ImagingStudy\.started\)/);
    expect(bad.retryable).toBe(false);
    const stored = await server.all<ImagingStudy>('ImagingStudy');
    expect(stored).toHaveLength(6);
    expect(studiesWithUid(stored, batch[4].studyUid)).toHaveLength(0);
    expect(sink.stats().splits).toBeGreaterThan(0);
  });

  it('splits batches larger than batchSize into several transactions', async () => {
    const sink = sinkFor({ batchSize: 4 });
    const outcomes = await sink.writeBatch(uids('1.2.840.99.8', 10).map((uid) => studyWrite(uid)));
    expect(outcomes.every((o) => o.ok)).toBe(true);
    const transactions = server.requests.filter((r) => r.method === 'POST' && r.path === '');
    expect(transactions.map((t) => t.entries)).toEqual([4, 4, 2]);
  });
});

describe('client-assigned ids', () => {
  it('writes PUT ImagingStudy/<id> and stays idempotent', async () => {
    const sink = sinkFor({ writeMode: 'client-id' });
    const batch = uids('1.2.840.99.9', 3).map((uid) => studyWrite(uid));
    await sink.writeBatch(batch);
    const again = await sink.writeBatch(batch);
    expect(again.map((o) => o.ok && o.resourceId)).toEqual(batch.map((w) => w.studyUid));
    const stored = await server.all<ImagingStudy>('ImagingStudy');
    expect(stored.map((s) => s.id).sort()).toEqual(batch.map((w) => w.studyUid).sort());
    expect((await server.all<Endpoint>('Endpoint')).map((e) => e.id)).toEqual(['pacs-pacs1']);
    expect(stored.every((s) => s.endpoint?.[0].reference === 'Endpoint/pacs-pacs1')).toBe(true);
  });
});

describe('requests per synced study', () => {
  it('counts every request and agrees with what the server saw', async () => {
    const sink = sinkFor({ batchSize: 8 });
    const n = 40;
    const outcomes = await sink.writeBatch(uids('1.2.840.99.10', n).map((uid) => studyWrite(uid)));
    expect(outcomes.every((o) => o.ok)).toBe(true);
    const stats = sink.stats();
    // metadata + one Endpoint + ceil(40/8) transactions
    expect(stats.requests.byKind).toMatchObject({ metadata: 1, endpoint: 1, transaction: 5, lookup: 0 });
    expect(stats.requests.total).toBe(server.fhirRequestCount());
    expect(stats.requestsPerStudy).toBeCloseTo(7 / 40);
    console.log(
      `FHIR requests per synced study (batchSize 8, ${n} studies, identifier linking): ${stats.requestsPerStudy}`,
    );
  });
});

describe('start-up check', () => {
  it('accepts the server and reports what it is', async () => {
    await expect(sinkFor().check()).resolves.toMatchObject({ fhirVersion: '4.0.1', transaction: true });
  });

  it('stops with a clear message when the server is not FHIR 4.0 or lacks transactions', async () => {
    const odd = await startFhirServer({
      capability: (cs) => ({
        ...cs,
        fhirVersion: '5.0.0' as any,
        rest: [{ ...cs.rest![0], interaction: [{ code: 'batch' }] }],
      }),
    });
    try {
      const sink = createFhirSink({ baseUrl: odd.baseUrl });
      const err = await sink.check().catch((e) => e);
      expect(err).toBeInstanceOf(FhirSinkError);
      expect(err.message).toMatch(/FHIR 5\.0\.0, this bridge needs FHIR R4/);
      expect(err.message).toMatch(/does not declare the "transaction" interaction/);
      // Writes are refused, and recorded as retryable: nothing lost.
      const [outcome] = await sink.writeBatch([studyWrite('1.2.840.99.11.1')]);
      expect(outcome).toMatchObject({ ok: false, retryable: true });
      expect(odd.requests.filter((r) => r.method !== 'GET')).toHaveLength(0);
    } finally {
      await odd.stop();
    }
  });
});

describe('removeStudy', () => {
  it('marks its own study entered-in-error, deletes on request, and leaves foreign studies alone', async () => {
    const sink = sinkFor();
    const [a] = await sink.writeBatch([studyWrite('1.2.840.99.12.1')]);
    await sink.writeBatch([studyWrite('1.2.840.99.12.2')]);
    const foreign = await server.repo.createResource<any>({
      ...studyWrite('1.2.840.99.12.3').imagingStudy,
      id: undefined,
      meta: undefined,
      endpoint: undefined,
    });

    await sink.removeStudy('pacs1', '1.2.840.99.12.1', 'entered-in-error');
    await sink.removeStudy('pacs1', '1.2.840.99.12.2', 'delete');
    await sink.removeStudy('pacs1', '1.2.840.99.12.3', 'delete');

    const stored = await server.all<ImagingStudy>('ImagingStudy');
    expect(stored.find((s) => s.id === (a.ok && a.resourceId))?.status).toBe('entered-in-error');
    expect(studiesWithUid(stored, '1.2.840.99.12.2')).toHaveLength(0);
    expect(stored.find((s) => s.id === foreign.id)?.status).toBe('available');
  });
});
