/** The `map` command on saved QIDO-RS files: output, warnings, errors and exit codes. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runMap, mapCommand } from '../../../src/cli/map';
import { validatorLoads } from '../../../src/mapping';
import { Tag } from '../../../src/dicom/tags';
import { basicResults, s, STUDY_UID } from '../mapping/dicom';

let dir: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'map-cli-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, value: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
  return file;
}

test('maps saved files: resources on stdout, summary on stderr, exit 0', async () => {
  const r = basicResults();
  r.series[0][Tag.BodyPartExamined] = s('CS', 'SOMEWHERE');
  const run = await runMap({
    study: write('s.json', [r.study]),
    series: write('se.json', r.series),
    instances: write('i.json', r.instances),
    validate: true,
  });
  expect(run.exitCode).toBe(0);
  const out = JSON.parse(run.stdout);
  expect(out.ok).toBe(true);
  expect(out.imagingStudy.id).toBe(STUDY_UID);
  expect(out.endpoint.resourceType).toBe('Endpoint');
  expect(out.validation).toEqual([]);
  expect(run.stderr).toContain('warning [unknown-body-part]');
  expect(run.stderr).toMatch(/ok: ImagingStudy\/.* 1 series, 2 instances/);
});

test('a mapping error exits 1 and names the study and attribute', async () => {
  const r = basicResults();
  delete r.series[0][Tag.Modality];
  const run = await runMap({ study: write('s2.json', r.study), series: write('se2.json', r.series), validate: true });
  expect(run.exitCode).toBe(1);
  expect(JSON.parse(run.stdout).error).toMatchObject({
    code: 'series-missing-modality',
    studyUid: STUDY_UID,
    tag: Tag.Modality,
  });
  expect(run.stderr).toContain('error [series-missing-modality]');
});

test('unusable input exits 2 with a clear message', async () => {
  expect(await runMap({ study: write('bad.json', '{nope'), validate: true })).toMatchObject({
    exitCode: 2,
    stderr: expect.stringContaining('is not JSON'),
  });
  expect(await runMap({ study: path.join(dir, 'missing.json'), validate: true })).toMatchObject({
    exitCode: 2,
    stderr: expect.stringContaining('cannot read'),
  });
  const two = write('two.json', [
    basicResults().study,
    { ...basicResults().study, [Tag.StudyInstanceUID]: s('UI', '1.2.3') },
  ]);
  expect(await runMap({ study: two, validate: true })).toMatchObject({
    exitCode: 2,
    stderr: expect.stringContaining('--study-uid'),
  });
  const picked = await runMap({ study: two, studyUid: '1.2.3', validate: false });
  expect(picked.exitCode).toBe(0);
  expect(JSON.parse(picked.stdout).imagingStudy.id).toBe('1.2.3');
  expect(await runMap({ validate: true })).toMatchObject({ exitCode: 2 });
});

test('the commander command declares its options', async () => {
  const cmd = mapCommand();
  expect(cmd.name()).toBe('map');
  expect(cmd.options.map((o) => o.long)).toEqual(
    expect.arrayContaining(['--study', '--series', '--instances', '--source', '--study-uid', '--no-validate']),
  );
});

describe('validation out of the box', () => {
  const saved = process.env.TWCORE_PROFILES_DIR;
  afterEach(async () => {
    if (saved === undefined) delete process.env.TWCORE_PROFILES_DIR;
    else process.env.TWCORE_PROFILES_DIR = saved;
    process.exitCode = undefined;
    jest.restoreAllMocks();
  });

  test('`map` validates by default with the shipped profiles, no set-up', async () => {
    delete process.env.TWCORE_PROFILES_DIR;
    const r = basicResults();
    let stdout = '';
    let stderr = '';
    jest.spyOn(process.stdout, 'write').mockImplementation((d) => ((stdout += d), true));
    jest.spyOn(process.stderr, 'write').mockImplementation((d) => ((stderr += d), true));
    await mapCommand().parseAsync(
      [
        '--study',
        write('d.json', r.study),
        '--series',
        write('ds.json', r.series),
        '--instances',
        write('di.json', r.instances),
      ],
      { from: 'user' },
    );
    expect(process.exitCode).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ ok: true, validation: [] });
    expect(stderr).toContain('validated against R4 + ImagingStudy-twcore');
    expect(validatorLoads()).toBe(1);
  });

  test('profiles that cannot be loaded are a configuration error (78) naming the folder', async () => {
    jest.resetModules();
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a fresh module registry, loaded after the reset
    const fresh = require('../../../src/cli/map') as typeof import('../../../src/cli/map');
    process.env.TWCORE_PROFILES_DIR = path.join(dir, 'nowhere');
    const r = basicResults();
    const run = await fresh.runMap({ study: write('e.json', r.study), validate: true });
    expect(run.exitCode).toBe(78);
    expect(run.stderr).toContain(`${path.join(dir, 'nowhere')} does not exist`);
    expect(run.stderr).toContain('--no-validate');
  });
});
