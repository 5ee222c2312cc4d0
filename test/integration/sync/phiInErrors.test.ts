/**
 * A sink's error text may quote the patient (a FHIR server's OperationOutcome often does). What the
 * sync stores and logs for a failed study must not: the study's patient name, ID and birth date are cut out.
 */
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/log';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import type { Sink } from '../../../src/sinks/sink';
import { createSyncService } from '../../../src/sync';
import { makeStudy } from '../../fixtures/synthetic';
import { daysAgo, orthancWithStore, SOURCE_ID, sourceConfig } from './common';

const study = makeStudy({ studyUid: '2.25.77001', studyDate: daysAgo(1) });
const pacs = orthancWithStore([study]);

it('stores and logs a rejection without the patient data the server echoed', async () => {
  // The server's words, as a FHIR server might put them in an OperationOutcome.
  const echoed = 'Patient "Chen^Da Wen" / 陳大文 (identifier P-MAKE-1, birthDate 1970-01-01) is not known here';
  const rejecting: Sink = {
    name: 'echoing-server',
    writeBatch: async (writes) =>
      writes.map((w) => ({ studyUid: w.studyUid, ok: false as const, error: echoed, retryable: true })),
    removeStudy: async () => {},
  };
  const lines: string[] = [];
  const logger = createLogger({
    level: 'info',
    destination: new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }),
  });
  const sync = createSyncService({
    config: { sources: [sourceConfig(pacs.orthanc.dicomWebBase)], sync: { lookbackDays: 3 } },
    store: pacs.store,
    sinks: [createEmbeddedSink(pacs.store), rejecting],
    logger,
  });

  const run = await sync.runOnce(SOURCE_ID);
  expect(run.counts).toMatchObject({ failed: 1, written: 0 });
  const [failing] = await pacs.store.studies.list(SOURCE_ID, 'failing');
  expect(failing.studyUid).toBe(study.studyUid);
  expect(failing.lastError).toContain('is not known here');
  expect(failing.lastError).toContain('[redacted]');

  const recorded = [failing.lastError ?? '', ...lines].join('\n');
  for (const phi of ['Chen', 'Da Wen', '陳', '大文', 'P-MAKE-1', '1970-01-01', '19700101'])
    expect(recorded).not.toContain(phi);
  expect(lines.some((l) => l.includes(study.studyUid) && l.includes('is not known here'))).toBe(true);
});
