/**
 * The run-time profile guard (sinks.validation): with profiles it cannot load, the sync refuses to start
 * (nothing is run or recorded; the executable exits 78 naming what is missing) instead of failing studies one
 * by one; with the shipped profiles and no set-up, every study is validated against base R4 and TW Core and written.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundledProfilesRoot, ProfilesUnavailableError, setProfilesDir, validatorLoads } from '../../../src/mapping';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { createSyncService } from '../../../src/sync';
import { makeStudy } from '../../fixtures/synthetic';
import { daysAgo, orthancWithStore, SOURCE_ID, sourceConfig, storedStudy } from './common';

const study = makeStudy({ studyUid: '2.25.77101', studyDate: daysAgo(1) });
const pacs = orthancWithStore([study]);

const service = () =>
  createSyncService({
    config: { sources: [sourceConfig(pacs.orthanc.dicomWebBase)], sync: { lookbackDays: 3, backoffBaseSeconds: 0 } },
    store: pacs.store,
    sinks: [createEmbeddedSink(pacs.store)],
    validateResources: true,
  });

it('without its profiles the guard stops the sync before it starts, naming the folder', async () => {
  const missing = path.join(__dirname, 'no-such-profiles');
  setProfilesDir(missing);
  expect(service).toThrow(ProfilesUnavailableError);
  expect(service).toThrow(missing);
  expect(await pacs.store.studies.list(SOURCE_ID, 'failing')).toEqual([]);
  expect(await storedStudy(pacs.store, study.studyUid)).toBeUndefined();
});

it('with the shipped profiles every study is validated and written', async () => {
  setProfilesDir(path.join(bundledProfilesRoot(), 'twcore-0.3.2'));
  const summary = await service().runOnce(SOURCE_ID);
  expect(summary.counts).toMatchObject({ failed: 0, written: 1 });
  expect(validatorLoads()).toBe(1); // once per process (jest: per worker)
  expect((await storedStudy(pacs.store, study.studyUid))?.meta?.profile).toEqual([
    'https://twcore.mohw.gov.tw/ig/twcore/StructureDefinition/ImagingStudy-twcore',
  ]);
});

it('the executable exits 78 at start-up when the guard cannot load its profiles, saying what is missing', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'guard-cli-'));
  const missing = path.join(dir, 'twcore-missing');
  try {
    const config = {
      sources: [{ id: SOURCE_ID, qidoBase: pacs.orthanc.dicomWebBase }],
      store: { path: path.join(dir, 'bridge.sqlite') },
      sinks: { validation: { profilesDir: missing } },
    };
    writeFileSync(path.join(dir, 'default.json'), JSON.stringify(config));
    const root = path.resolve(__dirname, '../../..');
    const run = spawnSync(
      path.join(root, 'node_modules/.bin/ts-node'),
      ['--transpile-only', 'src/cli/main.ts', 'sync', '--once'],
      {
        cwd: root,
        env: { ...process.env, NODE_CONFIG_DIR: dir, NODE_ENV: 'default', SUPPRESS_NO_CONFIG_WARNING: '1' },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(run.status).toBe(78);
    expect(run.stderr).toContain('Invalid configuration (1 problem)');
    expect(run.stderr).toContain(`sinks.validation: TW Core 0.3.2 profiles folder ${missing} does not exist`);
    expect(run.stderr).not.toMatch(/validator unavailable|invalid-resource/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
