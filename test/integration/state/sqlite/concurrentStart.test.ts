/**
 * Two processes starting together on a new store file must both come up: migrations run in an
 * immediate transaction that re-reads the schema version, so the second waits and then finds nothing
 * to do. Real processes, many rounds (a new file each), both opening within a millisecond or so.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore } from '../../../../src/state';
import { MIGRATIONS } from '../../../../src/state/sqlite/migrations';

const ROOT = path.resolve(__dirname, '../../../..');
const TS_NODE = path.join(ROOT, 'node_modules/.bin/ts-node');
const CHILD = path.join(__dirname, 'openStore.child.ts');
const ROUNDS = 25;
const SPACING_MS = 150;

function openInChild(dir: string, startAt: number, name: string): Promise<{ code: number | null; out: string }> {
  const args = ['--transpile-only', CHILD, dir, String(startAt), String(ROUNDS), String(SPACING_MS), name];
  const child = spawn(TS_NODE, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out })));
}

let dir: string;
beforeAll(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'store-race-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test(`two processes opening the same new store file at once both work (${ROUNDS} rounds)`, async () => {
  const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version;
  // Far enough ahead for both ts-node start-ups.
  const startAt = Date.now() + 6000;
  const [a, b] = await Promise.all([openInChild(dir, startAt, 'a'), openInChild(dir, startAt, 'b')]);
  const everyRound = Array.from({ length: ROUNDS }, () => ({ ok: true, version: latest }));
  expect({ code: a.code, rounds: JSON.parse(a.out) }).toEqual({ code: 0, rounds: everyRound });
  expect({ code: b.code, rounds: JSON.parse(b.out) }).toEqual({ code: 0, rounds: everyRound });
  for (let k = 0; k < ROUNDS; k++) {
    const store = openSqliteStore(path.join(dir, `round-${k}`, 'bridge.sqlite'));
    try {
      expect(store.db.pragma('user_version', { simple: true })).toBe(latest);
      expect((await store.runs.listRuns('a')).length + (await store.runs.listRuns('b')).length).toBe(2);
    } finally {
      await store.close();
    }
  }
}, 120000);
