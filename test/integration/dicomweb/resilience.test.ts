/**
 * Authentication and recovery against a real Orthanc: Basic auth accepted, wrong credentials
 * refused with a clear error, and a search that survives Orthanc restarting under it.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../../../src/config';
import { createPacsSource, PacsError } from '../../../src/dicomweb';
import { readString, Tag, valueOf, type DicomDataset } from '../../../src/dicom';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { generateCorpus, loadStudies, studiesBetween } from '../../fixtures/synthetic';

const uid = (ds: DicomDataset) => valueOf(readString(ds, Tag.StudyInstanceUID))!;

describe('Orthanc with HTTP Basic authentication', () => {
  let orthanc: OrthancServer;
  const corpus = generateCorpus({
    seed: 3,
    studies: 24,
    days: { from: '20230101', count: 4 },
    undated: 0,
    maxSeries: 1,
    maxInstances: 1,
  });
  const source = (password: string, extra: Record<string, unknown> = {}, beforeRequest?: () => Promise<void>) =>
    createPacsSource(
      parseConfig({
        sources: [
          {
            id: 'secured',
            qidoBase: orthanc.dicomWebBase,
            auth: { type: 'basic', username: 'bridge', password },
            ...extra,
          },
        ],
      }).sources[0],
      { retry: { baseMs: 100, maxMs: 1000 }, beforeRequest },
    );

  beforeAll(async () => {
    orthanc = await startOrthanc({ users: { bridge: 'right-pässword' } });
    await loadStudies(orthanc, corpus);
  });
  afterAll(() => orthanc?.stop());

  it('finds the studies with the right credentials', async () => {
    const found = await source('right-pässword').findStudies({ from: '20230101', to: '20230131' });
    expect(found.map(uid).sort()).toEqual(corpus.map((c) => c.studyUid).sort());
  });

  it('refuses wrong credentials with an auth error that does not leak them, without retrying', async () => {
    const s = source('wrong-password');
    const err = await s.findStudies({ from: '20230101', to: '20230131' }).catch((e) => e);
    expect(err).toBeInstanceOf(PacsError);
    expect(err).toMatchObject({ kind: 'auth', status: 401, retryable: false });
    expect(err.message).toBe(
      'PACS "secured" studies query: HTTP 401, the PACS did not accept the configured credentials (check sources[].auth for "secured")',
    );
    expect(err.message).not.toContain('wrong-password');
    expect(s.stats.requests.studies).toBe(1);
  });

  it('recovers when Orthanc restarts in the middle of a paged search', async () => {
    let attempts = 0;
    let restarted: Promise<void> | undefined;
    // Stop Orthanc just before the fourth request (pages already fetched), start it again 300 ms later.
    const s = source('right-pässword', { pageSize: 2, concurrency: 1, retries: 8 }, async () => {
      if (++attempts !== 4) return;
      await orthanc.kill();
      restarted = new Promise((r) => setTimeout(r, 300)).then(() => orthanc.restart());
    });
    const found = await s.findStudies({ from: '20230101', to: '20230131' });
    await restarted;
    expect(found.map(uid).sort()).toEqual(
      studiesBetween(corpus, '20230101', '20230131')
        .map((c) => c.studyUid)
        .sort(),
    );
    expect(s.stats.retries).toBeGreaterThan(0);
    expect(s.stats.requests.studies).toBeGreaterThan(24 / 2);
  });
});

describe('an unresponsive PACS', () => {
  it('times out: a server that accepts the connection and never answers', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    const s = createPacsSource(
      parseConfig({
        sources: [{ id: 'silent', qidoBase: `http://127.0.0.1:${port}/dicom-web`, timeoutMs: 300, retries: 1 }],
      }).sources[0],
      { retry: { baseMs: 5, maxMs: 10 } },
    );
    const err = await s.findStudies({ from: '20240101', to: '20240101' }).catch((e) => e);
    sockets.forEach((x) => x.destroy());
    await new Promise((r) => silent.close(r));
    expect(err).toBeInstanceOf(PacsError);
    expect(err).toMatchObject({ kind: 'timeout', status: 0, retryable: true });
    expect(err.message).toBe(
      `PACS "silent" studies query: no answer within 300 ms (http://127.0.0.1:${port}/dicom-web/studies)`,
    );
    expect(sockets.length).toBe(2); // the first try and one retry
  });
});
