/**
 * The Endpoint tells clients how to get the images in another format too (TW Core ImagingStudy: "converted into
 * another format such as JPEG"): a source whose PACS serves WADO-RS rendered resources (Orthanc's DICOMweb plugin
 * does) lists image/jpeg beside application/dicom, and a rendered retrieval through the stored Endpoint's address
 * returns a JPEG for an image and 400 for an instance without pixel data (an SR document).
 */
import axios from 'axios';
import type { Endpoint, ImagingStudy } from 'fhir/r4';
import { createLogger } from '../../../src/log';
import { endpointId, isBlocking, validateEndpoint } from '../../../src/mapping';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { createSyncService } from '../../../src/sync';
import { makeSeries, makeStudy } from '../../fixtures/synthetic';
import { daysAgo, orthancWithStore, SOURCE_ID, sourceConfig, storedStudy } from './common';

const study = makeStudy({
  studyDate: daysAgo(1),
  series: [makeSeries({ modality: 'CT', instances: 1 }), makeSeries({ modality: 'SR', number: 2, instances: 1 })],
});
const env = orthancWithStore([study]);

test('the Endpoint of an Orthanc source lists image/jpeg, and its address serves rendered JPEGs', async () => {
  const { orthanc, store } = env;
  await createSyncService({
    config: {
      sources: [sourceConfig(orthanc.dicomWebBase, { renderedMimeTypes: ['image/jpeg'] })],
      sync: { lookbackDays: 3, windowDays: 3 },
    },
    store,
    sinks: [createEmbeddedSink(store)],
    logger: createLogger({ level: 'silent' }),
  }).runOnce(SOURCE_ID);

  const imagingStudy = (await storedStudy(store, study.studyUid)) as ImagingStudy;
  const ref = imagingStudy.endpoint?.[0].reference;
  expect(ref).toBe(`Endpoint/${endpointId(SOURCE_ID)}`);
  const endpoint = (await store.resources.get<Endpoint>('Endpoint', endpointId(SOURCE_ID)))!;
  expect(endpoint.payloadMimeType).toEqual(['application/dicom', 'image/jpeg']);
  expect(validateEndpoint(endpoint).filter(isBlocking)).toEqual([]);

  const rendered = (seriesIndex: number) => {
    const series = imagingStudy.series!.find((s) => s.uid === study.series[seriesIndex].seriesUid)!;
    const url = `${endpoint.address}/studies/${study.studyUid}/series/${series.uid}/instances/${series.instance![0].uid}/rendered`;
    return axios.get<ArrayBuffer>(url, {
      headers: { Accept: 'image/jpeg' },
      responseType: 'arraybuffer',
      validateStatus: () => true,
    });
  };
  const image = await rendered(0);
  expect(image.status).toBe(200);
  expect(image.headers['content-type']).toMatch(/^image\/jpeg/);
  expect([...Buffer.from(image.data).subarray(0, 2)]).toEqual([0xff, 0xd8]);
  const document = await rendered(1);
  expect(document.status).toBe(400);
});
