/**
 * QIDO-RS answers whose rows lack their level's UID (a study row without 0020,000D, a series row without
 * 0020,000E, an instance row without 0008,0018) against a local HTTP server: refused as malformed, like HTML
 * or cut-off JSON, so no caller reads junk rows as "listed" or a look-up by UID as "not found".
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../../../src/config';
import { createPacsSource } from '../../../src/dicomweb';
import { PacsError } from '../../../src/dicomweb/types';

const STUDY = '1.2.3.1';
const uid = (tag: string, value: string) => ({ [tag]: { vr: 'UI', Value: [value] } });
// The values a PACS might send for a row's UID that name nothing: missing, no Value, an empty string.
const junkRows = [{ '00080020': { vr: 'DA', Value: ['20240101'] } }, { '0020000D': { vr: 'UI' } }];

/** Per scenario, the rows answered at each level (the path after the scenario decides the level). */
const answers: Record<string, Record<'studies' | 'series' | 'instances', unknown[]>> = {
  good: {
    studies: [uid('0020000D', STUDY)],
    series: [{ ...uid('0020000D', STUDY), ...uid('0020000E', '1.2.3.1.1') }],
    instances: [{ ...uid('0020000D', STUDY), ...uid('0020000E', '1.2.3.1.1'), ...uid('00080018', '1.2.3.1.1.1') }],
  },
  studyRowsWithoutUid: { studies: [uid('0020000D', STUDY), ...junkRows], series: [], instances: [] },
  emptyUid: { studies: [{ '0020000D': { vr: 'UI', Value: [''] } }], series: [], instances: [] },
  seriesRowsWithoutUid: { studies: [uid('0020000D', STUDY)], series: [uid('0020000D', STUDY)], instances: [] },
  instanceRowsWithoutUid: {
    studies: [uid('0020000D', STUDY)],
    series: [{ ...uid('0020000D', STUDY), ...uid('0020000E', '1.2.3.1.1') }],
    instances: [{ ...uid('0020000D', STUDY), ...uid('0020000E', '1.2.3.1.1') }],
  },
};

let server: http.Server;
let base: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const [, scenario, ...rest] = (req.url ?? '').split('?')[0]!.split('/');
    const level = rest.at(-1) as 'studies' | 'series' | 'instances';
    res.writeHead(200, { 'Content-Type': 'application/dicom+json' });
    res.end(JSON.stringify(answers[scenario!]?.[level] ?? []));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise((r) => server.close(r)));

const source = (scenario: string) =>
  createPacsSource(
    parseConfig({ sources: [{ id: 'test-pacs', qidoBase: `${base}/${scenario}`, retries: 0 }] }).sources[0],
  );

const malformed = (name: string) => ({
  kind: 'bad-response',
  retryable: false,
  message: expect.stringMatching(new RegExp(`has no ${name}.*malformed`)),
});

describe('rows without their level UID', () => {
  it('a conforming answer passes at every level', async () => {
    const s = source('good');
    expect(await s.searchStudies({})).toHaveLength(1);
    const details = (await s.studyDetails([STUDY])).get(STUDY)!;
    expect([details.series.length, details.instances.length]).toEqual([1, 1]);
  });

  it('study rows without StudyInstanceUID fail the listing and a look-up by UID alike', async () => {
    const s = source('studyRowsWithoutUid');
    const listing = await s.searchStudies({}).catch((e: unknown) => e);
    expect(listing).toBeInstanceOf(PacsError);
    expect(listing).toMatchObject(malformed('StudyInstanceUID \\(0020,000D\\)'));
    expect((listing as Error).message).toContain('row 2 of 3');
    await expect(s.searchStudies({ StudyInstanceUID: STUDY }, { limit: 2, offset: 0 })).rejects.toMatchObject(
      malformed('StudyInstanceUID'),
    );
    await expect(s.findStudies({ from: '20240101', to: '20240131' })).rejects.toMatchObject(
      malformed('StudyInstanceUID'),
    );
  });

  it('an empty UID value is no UID', async () => {
    await expect(source('emptyUid').searchStudies({})).rejects.toMatchObject(malformed('StudyInstanceUID'));
  });

  it('series rows without SeriesInstanceUID and instance rows without SOPInstanceUID fail the detail fetch', async () => {
    await expect(source('seriesRowsWithoutUid').studyDetails([STUDY])).rejects.toMatchObject(
      malformed('SeriesInstanceUID \\(0020,000E\\)'),
    );
    await expect(source('instanceRowsWithoutUid').studyDetails([STUDY])).rejects.toMatchObject(
      malformed('SOPInstanceUID \\(0008,0018\\)'),
    );
  });
});
