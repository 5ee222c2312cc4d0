/**
 * The /status page end to end in a real browser (Debian's headless Chromium driven by playwright-core):
 * after real syncs against Orthanc — one study turned into a dead letter, one still failing — the numbers
 * on the page match the store, a wrong key cannot replay, the admin key can, and the replayed study syncs.
 */
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { sha256Hex, createAuthenticator } from '../../src/api/auth';
import { parseApiConfig } from '../../src/api/config';
import { adminAuth, ADMIN_SCOPE, createOpsRouter } from '../../src/api/ops';
import { createMetrics } from '../../src/metrics';
import { createEmbeddedSink } from '../../src/sinks/embeddedSink';
import { openSqliteStore, type SqliteStateStore } from '../../src/state';
import { createSyncService, type SyncService } from '../../src/sync';
import { generateCorpus, loadStudies, makeStudy, type SyntheticStudy } from '../fixtures/synthetic';
import { startOrthanc, type OrthancServer } from '../harness/orthanc';
import { levelOf, startRecordingProxy, type RecordingProxy } from '../harness/recordingProxy';
import { daysAgo, SOURCE_ID, sourceConfig } from '../integration/sync/common';

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const ADMIN_KEY = 'admin-key-for-the-status-page-test';
const READ_KEY = 'read-only-key';

let orthanc: OrthancServer;
let proxy: RecordingProxy;
let dir: string;
let store: SqliteStateStore;
let sync: SyncService;
let server: Server;
let base: string;
let browser: BrowserContext;
let page: Page;
let bad: SyntheticStudy;
let flaky: SyntheticStudy;
let corpus: SyntheticStudy[];

/** The PACS answers 500 to series/instance queries naming any of these studies. */
function failDetailsOf(studies: SyntheticStudy[]) {
  proxy.failWhen(
    studies.length
      ? (r) => levelOf(r.url) !== 'studies' && studies.some((s) => decodeURIComponent(r.url).includes(s.studyUid))
      : undefined,
  );
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: run "WITH_CHROMIUM=1 bash scripts/system-deps.sh" (npm test does)`);
  dir = mkdtempSync(path.join(os.tmpdir(), 'h7-status-'));
  const launching = chromium.launchPersistentContext(path.join(dir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  orthanc = await startOrthanc();
  proxy = await startRecordingProxy(orthanc.dicomWebBase);
  corpus = generateCorpus({ seed: 77, studies: 8, days: { from: daysAgo(3), count: 4 }, undated: 1 });
  bad = makeStudy({ studyDate: daysAgo(1) });
  flaky = makeStudy({ studyDate: daysAgo(2) });
  await loadStudies(orthanc, [...corpus, bad]);

  store = openSqliteStore(path.join(dir, 'bridge.sqlite'));
  sync = createSyncService({
    config: {
      sources: [sourceConfig(proxy.via(orthanc.dicomWebBase))],
      sync: {
        lookbackDays: 5,
        windowDays: 7,
        maxAttempts: 2,
        backoffBaseSeconds: 0,
        sweep: { maxRequestsPerMinute: 100000, maxAgeHours: 24 },
      },
    },
    store,
    sinks: [createEmbeddedSink(store)],
  });

  const apiConfig = parseApiConfig({
    auth: {
      type: 'apiKey',
      keys: [
        { client: 'ops', sha256: sha256Hex(ADMIN_KEY), scopes: [ADMIN_SCOPE] },
        { client: 'viewer', sha256: sha256Hex(READ_KEY) },
      ],
    },
  });
  const app = express();
  app.use(
    createOpsRouter({
      store,
      sources: [sync.source(SOURCE_ID)],
      auth: adminAuth(createAuthenticator(apiConfig.auth)),
      metrics: createMetrics(),
      sweepSettings: (id) => sync.settings(id).sweep,
      now: () => new Date(Date.now() + opsClockAheadMs),
    }),
  );
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launching;
  page = await browser.newPage();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  store?.close();
  await proxy?.stop();
  await orthanc?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** How far the ops router's clock runs ahead of the real one (to see a sweep become overdue). */
let opsClockAheadMs = 0;

const section = () => page.locator(`section[data-source="${SOURCE_ID}"]`);
const field = (name: string) => section().locator(`.counts [data-field="${name}"]`).innerText();

/** Every number the page shows for the source, checked against the store. */
async function expectPageMatchesStore() {
  const counts = await store.studies.counts(SOURCE_ID);
  expect(await field('studies')).toBe(String(counts.studies));
  expect(await field('synced')).toBe(String(counts.synced));
  expect(await field('resources')).toBe(String(counts.resources));
  expect(await field('failing')).toBe(String(counts.failing));
  expect(await field('dead')).toBe(String(counts.dead));
  expect(await field('checkpoint')).toBe(await store.checkpoints.get(SOURCE_ID, 'poll'));

  const runs = await store.runs.listRuns(SOURCE_ID);
  const rows = section().locator('table.runs tbody tr');
  expect(await rows.count()).toBe(runs.length);
  for (const run of runs) {
    const row = section().locator(`table.runs tr[data-run-id="${run.runId}"]`);
    for (const key of ['found', 'written', 'unchanged', 'failed', 'dead'] as const) {
      expect(await row.locator(`[data-field="${key}"]`).innerText()).toBe(String(run.counts[key] ?? 0));
    }
    expect(await row.locator('[data-field="status"]').innerText()).toBe(run.status);
  }
  // The chart: one bar per run, its tooltip saying what the run wrote.
  const bars = section().locator('svg.chart rect.bar');
  expect(await bars.count()).toBe(runs.length);
  const tooltips = await bars.locator('title').allTextContents();
  expect(tooltips.map((t) => Number(/(\d+) written$/.exec(t)![1])).reverse()).toEqual(
    runs.map((r) => r.counts.written ?? 0),
  );

  const failing = await store.studies.list(SOURCE_ID, 'failing');
  expect(await section().locator('[data-field="failing-count"]').innerText()).toBe(String(failing.length));
  for (const f of failing) {
    const row = section().locator(`table.failing tr[data-study-uid="${f.studyUid}"]`);
    expect(await row.locator('[data-field="attempts"]').innerText()).toBe(String(f.attempts));
    expect(await row.locator('td.err').innerText()).toBe(f.lastError);
  }
  const dead = await store.studies.list(SOURCE_ID, 'dead');
  expect(await section().locator('[data-field="dead-count"]').innerText()).toBe(String(dead.length));
  expect(await section().locator('table.dead tbody tr').count()).toBe(dead.length);
  for (const d of dead) {
    const row = section().locator(`table.dead tr[data-study-uid="${d.studyUid}"]`);
    expect(await row.locator('td.err').innerText()).toBe(d.lastError);
  }
}

test('the page shows what the store holds after real syncs, and replay is protected', async () => {
  // Run 1: every study but `bad` syncs; `bad` fails once.
  failDetailsOf([bad]);
  const first = await sync.runOnce(SOURCE_ID, { undated: true });
  expect(first.status).toBe('partial');
  // Run 2: `bad` fails again and becomes a dead letter; `flaky` arrives and fails for the first time.
  await loadStudies(orthanc, [flaky]);
  failDetailsOf([bad, flaky]);
  const second = await sync.runOnce(SOURCE_ID);
  expect(second.counts).toMatchObject({ failed: 2, dead: 1 });
  expect((await store.studies.list(SOURCE_ID, 'dead')).map((s) => s.studyUid)).toEqual([bad.studyUid]);
  expect((await store.studies.list(SOURCE_ID, 'failing')).map((s) => s.studyUid)).toEqual([flaky.studyUid]);

  const res = await page.goto(`${base}/status`);
  expect(res!.status()).toBe(200);
  expect(res!.headers()['content-security-policy']).toContain("default-src 'none'");
  await expectPageMatchesStore();
  expect(await field('synced')).toBe(String(corpus.length));
  expect(await field('lag')).not.toBe('–');
  await expect(section().locator('table.dead td.err').innerText()).resolves.toMatch(/500/);

  // A key without the admin scope, then a wrong key: refused, nothing re-queued.
  const deadRow = section().locator(`table.dead tr[data-study-uid="${bad.studyUid}"]`);
  await deadRow.locator('input[name="apiKey"]').fill(READ_KEY);
  let answer = await Promise.all([page.waitForNavigation(), deadRow.locator('button[type="submit"]').click()]).then(
    ([r]) => r!,
  );
  expect(answer.status()).toBe(403);
  expect(await page.locator('body').innerText()).toContain(`lacks the "${ADMIN_SCOPE}" scope`);
  await page.goto(`${base}/status`);
  await deadRow.locator('input[name="apiKey"]').fill('not-a-key');
  answer = await Promise.all([page.waitForNavigation(), deadRow.locator('button[type="submit"]').click()]).then(
    ([r]) => r!,
  );
  expect(answer.status()).toBe(401);
  expect(await store.studies.list(SOURCE_ID, 'dead')).toHaveLength(1);

  // The admin key replays the dead letter; the browser lands back on the page, which says so.
  await page.goto(`${base}/status`);
  await deadRow.locator('input[name="apiKey"]').fill(ADMIN_KEY);
  await Promise.all([page.waitForURL(/\/status\?replayed=1/), deadRow.locator('button[type="submit"]').click()]);
  expect(await page.locator('.flash').innerText()).toContain('Re-queued 1 dead letter of orthanc');
  expect(await store.studies.list(SOURCE_ID, 'dead')).toHaveLength(0);
  expect(await store.studies.get(SOURCE_ID, bad.studyUid)).toMatchObject({ status: 'failing', attempts: 0 });
  await expectPageMatchesStore();

  // The PACS is fixed; the next run syncs both studies, and the page follows.
  failDetailsOf([]);
  const third = await sync.runOnce(SOURCE_ID);
  expect(third.status).toBe('ok');
  await page.goto(`${base}/status`);
  await expectPageMatchesStore();
  expect(await field('synced')).toBe(String(corpus.length + 2));
  expect(await field('failing')).toBe('0');
  expect(await section().locator('table.runs tbody tr').count()).toBe(3);
});

test('coverage: a never-swept source says so; a sweep proves it; an old sweep is flagged overdue', async () => {
  const coverage = () => section().locator('[data-field="coverage-health"]');
  await page.goto(`${base}/status`);
  expect(await coverage().getAttribute('data-health')).toBe('never-swept');
  expect(await coverage().locator('.verdict').innerText()).toBe('Never swept');
  expect(await field('last-sweep')).toBe('never');

  const sweep = await sync.sweep(SOURCE_ID);
  expect(sweep).toMatchObject({ status: 'ok', counts: { listed: corpus.length + 2 } });
  await page.goto(`${base}/status`);
  expect(await coverage().getAttribute('data-health')).toBe('ok');
  expect(await field('sweep-listed')).toBe(String(corpus.length + 2));
  expect(await field('sweep-synced')).toBe(String(corpus.length + 2));
  expect(await field('coverage')).toBe('100.0 %');
  expect(await field('pending')).toBe('0');
  expect(await field('freshness-p95')).not.toBe('–');

  // The same figures as JSON.
  const json = await page.request.get(`${base}/status?format=json`);
  const model = (await json.json()) as { sources: { sourceId: string; coverage: Record<string, unknown> }[] };
  expect(model.sources[0]!.coverage).toMatchObject({
    health: 'ok',
    lastSweep: { listed: corpus.length + 2, synced: corpus.length + 2, coverage: 1 },
    pending: { failing: 0, dead: 0 },
  });

  // Two days later without another sweep (maxAgeHours 24): overdue, on the page, in JSON and beside /readyz.
  opsClockAheadMs = 2 * 86_400_000;
  try {
    await page.goto(`${base}/status`);
    expect(await coverage().getAttribute('data-health')).toBe('overdue');
    expect(await coverage().locator('.problems').innerText()).toMatch(
      /last complete sweep is 4[89] h old \(limit 24 h\)/,
    );
    const ready = await page.request.get(`${base}/readyz`);
    expect(((await ready.json()) as { coverage: unknown[] }).coverage).toEqual([
      expect.objectContaining({ source: SOURCE_ID, healthy: false, health: 'overdue' }),
    ]);
  } finally {
    opsClockAheadMs = 0;
  }
});

test('a replay form posted from another origin, or without the page token, is refused', async () => {
  const deadUid = '1.2.826.0.1.3680043.8.498.1';
  // Another site auto-submitting the form, with a valid key typed in: the Origin check stops it.
  const evil = express();
  evil.get('/', (_req, res) => {
    res
      .type('html')
      .send(
        `<form method="post" action="${base}/status/replay"><input name="source" value="${SOURCE_ID}"><input name="study" value="${deadUid}"><input name="apiKey" value="${ADMIN_KEY}"><button>go</button></form>`,
      );
  });
  const evilServer = await new Promise<Server>((resolve) => {
    const s = evil.listen(0, '127.0.0.1', () => resolve(s));
  });
  try {
    await page.goto(`http://localhost:${(evilServer.address() as AddressInfo).port}/`);
    const [answer] = await Promise.all([page.waitForNavigation(), page.locator('button').click()]);
    expect(answer!.status()).toBe(403);
    expect(await page.locator('body').innerText()).toContain('sent from another site');
  } finally {
    evilServer.closeAllConnections();
    await new Promise((r) => evilServer.close(r));
  }
  // Same origin but a forged token.
  const res = await page.request.post(`${base}/status/replay`, {
    form: { source: SOURCE_ID, csrf: 'forged', apiKey: ADMIN_KEY },
    headers: { origin: base },
  });
  expect(res.status()).toBe(403);
});
