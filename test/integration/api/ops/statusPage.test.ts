/** The status page's HTML over a real store: text from the PACS or sinks is escaped, never markup. */
import { buildStatusModel, renderStatusPage } from '../../../../src/api/ops';
import { niceLagMax, runChartSvg } from '../../../../src/api/ops/chart';
import { formatDuration } from '../../../../src/api/ops/format';
import { openSqliteStore } from '../../../../src/state';

test('errors holding markup are shown as text, and every table row is there', async () => {
  const store = openSqliteStore(':memory:');
  const evil = '<script>alert(1)</script><img src=x onerror=alert(2)>';
  const id = await store.runs.startRun('pacs', 'poll');
  await store.runs.finishRun(id, { status: 'failed', counts: { found: 2 }, error: evil });
  await store.studies.recordFailures('pacs', [
    {
      studyUid: '1.2.3',
      studyDate: null,
      fingerprint: null,
      error: evil,
      countAttempt: true,
      maxAttempts: 1,
      retryDelaySeconds: () => 0,
    },
  ]);
  await store.studies.recordFailures('pacs', [
    {
      studyUid: '1.2.4',
      studyDate: '20240101',
      fingerprint: null,
      error: 'x "quoted" & more',
      countAttempt: true,
      maxAttempts: 5,
      retryDelaySeconds: () => 0,
    },
  ]);
  const html = renderStatusPage(await buildStatusModel(store, ['pacs'], new Date(), 20), 'tok"en');
  expect(html).not.toMatch(/<script|<img/);
  expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  expect(html).toContain('x &quot;quoted&quot; &amp; more');
  expect(html).toContain('value="tok&quot;en"');
  expect(html.match(/<tr data-study-uid="1\.2\.3">/g)).toHaveLength(1);
  expect(html.match(/<tr data-run-id=/g)).toHaveLength(1);
  await store.close();
});

test('chart axes and durations read well', async () => {
  expect(niceLagMax(2000)).toBe(3600);
  expect(niceLagMax(59)).toBe(60);
  expect(formatDuration(3 * 3600 + 125)).toBe('3 h 2 min');
  expect(formatDuration(42)).toBe('42 s');
  expect(formatDuration(undefined)).toBe('–');
  const svg = runChartSvg(
    [
      {
        runId: 'a',
        startedAt: '2024-01-01T00:00:00Z',
        endedAt: '2024-01-01T00:01:00Z',
        status: 'ok',
        kind: 'poll',
        written: 7,
        lagSeconds: 60,
      },
      {
        runId: 'b',
        startedAt: '2024-01-01T00:05:00Z',
        endedAt: '2024-01-01T00:06:00Z',
        status: 'failed',
        kind: 'poll',
        written: 0,
        lagSeconds: 360,
      },
    ],
    'caption',
  );
  expect(svg.match(/<rect class="bar/g)).toHaveLength(2);
  expect(svg).toContain('<polyline class="lag"');
  expect(svg).toContain('7 written');
});
