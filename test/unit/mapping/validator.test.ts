/**
 * The validator (medplum + TW Core + the bridge's own checks) and the run-time guard: what each catches.
 * The TW Core and R4 examples must pass; broken variants of a mapped resource must be refused.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ImagingStudy } from 'fhir/r4';
import {
  createResourceGuard,
  mapStudy,
  validateEndpoint,
  validateImagingStudy,
  validatorLoads,
  isBlocking,
  endpointFor,
} from '../../../src/mapping';
import { loadProfiles } from '../../../src/mapping/profiles';
import { basicResults, source } from './dicom';

const EXAMPLES = path.resolve(__dirname, '../../fixtures/fhir-examples');

function mapped(): ImagingStudy {
  const res = mapStudy(basicResults(), source());
  if (!res.ok) throw new Error(res.error.message);
  return JSON.parse(JSON.stringify(res.imagingStudy));
}

const blocking = (r: unknown) => validateImagingStudy(r).filter(isBlocking);

test('published TW Core and R4 ImagingStudy examples validate against ImagingStudy-twcore', () => {
  const files = [
    ...fs.readdirSync(path.join(EXAMPLES, 'twcore')).map((f) => path.join(EXAMPLES, 'twcore', f)),
    path.join(EXAMPLES, 'r4', 'ImagingStudy-example-xr.json'),
    path.join(EXAMPLES, 'r4', 'ImagingStudy-example.json'),
  ];
  for (const f of files) {
    const r = JSON.parse(fs.readFileSync(f, 'utf8'));
    expect({ file: path.basename(f), issues: blocking(r).filter((i) => i.source === 'medplum') }).toEqual({
      file: path.basename(f),
      issues: [],
    });
  }
  expect(
    validateEndpoint(JSON.parse(fs.readFileSync(path.join(EXAMPLES, 'r4', 'Endpoint-example-wadors.json'), 'utf8'))),
  ).toEqual([]);
});

const cases: [string, (r: any) => void, 'medplum' | 'bridge', RegExp][] = [
  ['a series without uid (R4 cardinality)', (r) => delete r.series[0].uid, 'medplum', /uid/],
  ['an unknown element', (r) => (r.foo = 1), 'medplum', /foo/],
  ['a malformed dateTime', (r) => (r.started = '2024-13-01'), 'medplum', /started/],
  ['a negative count', (r) => (r.numberOfSeries = -1), 'medplum', /numberOfSeries/],
  [
    'two RadLex codings in one procedureCode (TW Core slice 0..1)',
    (r) =>
      (r.procedureCode = [
        {
          coding: [
            { system: 'http://www.radlex.org', code: 'RPID1' },
            { system: 'http://www.radlex.org', code: 'RPID2' },
          ],
        },
      ]),
    'medplum',
    /slice/,
  ],
  ['a control character in a string', (r) => (r.description = 'a\u0001b'), 'medplum', /description/],
  ['an empty string', (r) => (r.description = ''), 'bridge', /description/],
  ['an empty array', (r) => (r.interpreter = []), 'bridge', /interpreter/],
  ['an empty object', (r) => (r.referrer = {}), 'bridge', /referrer/],
  ['a status outside the required value set', (r) => (r.status = 'done'), 'bridge', /status/],
  ['a series UID that is not an id', (r) => (r.series[0].uid = '1.2_3'), 'bridge', /uid/],
  ['a resource id that is not an id', (r) => (r.id = 'a'.repeat(65)), 'bridge', /id/],
  ['a code with a double space', (r) => (r.modality[0].code = 'C  T'), 'bridge', /code/],
];

test('per-issuer patient systems and CJK names in the alphabetic group validate', () => {
  const r = basicResults();
  r.study['00100021'] = { vr: 'LO', Value: ['OTHER HOSP/2'] };
  r.study['00100010'] = { vr: 'PN', Value: [{ Alphabetic: '陳^大文' }] };
  r.study['00080090'] = { vr: 'PN', Value: [{ Alphabetic: '林^美玲' }] };
  const res = mapStudy(r, source());
  if (!res.ok) throw new Error(res.error.message);
  expect(res.imagingStudy.subject).toMatchObject({
    identifier: { system: 'urn:pacs-fhir-bridge:pacs1:issuer:OTHER%20HOSP%2F2:patient-id' },
    display: '陳大文',
  });
  expect(blocking(res.imagingStudy)).toEqual([]);
});

describe('what is caught', () => {
  test.each(cases)('%s', (_name, breakIt, by, where) => {
    const r = mapped();
    breakIt(r);
    const issues = blocking(r);
    expect(issues.some((i) => i.source === by && where.test(`${i.path} ${i.message}`))).toBe(true);
  });
});

describe('createResourceGuard', () => {
  test('enabled: accepts a mapped study and its Endpoint, refuses a broken one with a message', () => {
    const guard = createResourceGuard(true);
    expect(guard.check(mapped()).ok).toBe(true);
    expect(guard.check(endpointFor(source())).ok).toBe(true);
    const broken = mapped() as any;
    broken.status = 'done';
    const verdict = guard.check(broken);
    expect(verdict.ok).toBe(false);
    expect(!verdict.ok && verdict.message).toContain(`ImagingStudy/${broken.id}`);
  });

  test('an invalid Endpoint is refused', () => {
    const ep = endpointFor(source()) as any;
    ep.address = 'not a url';
    expect(createResourceGuard(true).check(ep).ok).toBe(false);
  });

  test('disabled: everything passes without validation', () => {
    const guard = createResourceGuard(false);
    expect(guard.enabled).toBe(false);
    expect(guard.check({ resourceType: 'ImagingStudy', status: 'nonsense' })).toEqual({ ok: true, issues: [] });
  });
});

test("the kept schema gives medplum's own profile validation, without parsing the profile each time", () => {
  // The @medplum/core instance the validator loaded (kept per jest worker, so maybe from another test file's registry).
  const { medplum } = loadProfiles();
  const profile = JSON.parse(
    fs.readFileSync(
      path.resolve(__dirname, '../../../profiles/twcore-0.3.2/StructureDefinition-ImagingStudy-twcore.json'),
      'utf8',
    ),
  );
  const viaProfile = (r: unknown) => {
    try {
      return medplum.validateResource(r as never, { profile }).map((i) => i.details?.text);
    } catch (err) {
      return ((err as { outcome: { issue: { details?: { text?: string } }[] } }).outcome.issue ?? []).map(
        (i) => i.details?.text,
      );
    }
  };
  const variants: unknown[] = [mapped()];
  for (const [, breakIt] of cases) {
    const r = mapped();
    breakIt(r);
    variants.push(r);
  }
  for (const f of fs.readdirSync(path.join(EXAMPLES, 'twcore')))
    variants.push(JSON.parse(fs.readFileSync(path.join(EXAMPLES, 'twcore', f), 'utf8')));
  let stricter = 0;
  for (const r of variants) {
    const ours = validateImagingStudy(r).filter((i) => i.source === 'medplum');
    // One difference, on our side: primitive types come from the profile's snapshot, where TW Core types
    // ImagingStudy.id as `id` (R4's own snapshot says System.String), so an over-long id is caught here too.
    const idFormat = (i: { path?: string; message: string }) =>
      i.path === 'ImagingStudy.id' && /Invalid id/.test(i.message);
    stricter += ours.filter(idFormat).length;
    expect(ours.filter((i) => !idFormat(i)).map((i) => i.message)).toEqual(viaProfile(r));
  }
  expect(stricter).toBe(1);
  // The base type is back in place afterwards: a plain R4 validation does not apply the TW Core slices.
  const twoRadlex = mapped() as any;
  twoRadlex.procedureCode = [
    {
      coding: [
        { system: 'http://www.radlex.org', code: 'RPID1' },
        { system: 'http://www.radlex.org', code: 'RPID2' },
      ],
    },
  ];
  expect(() => medplum.validateResource(twoRadlex)).not.toThrow();
});

test("the guard validates a source's Endpoint once and reuses the verdict", () => {
  const guard = createResourceGuard(true);
  const first = guard.check(endpointFor(source()));
  expect(first.ok).toBe(true);
  expect(guard.check(endpointFor(source()))).toBe(first);
  const other = guard.check(endpointFor(source({ id: 'pacs2' })));
  expect(other).not.toBe(first);
});

test('the definitions were built once for this whole file, however many validations and guards', () => {
  expect(validatorLoads()).toBe(1);
});
