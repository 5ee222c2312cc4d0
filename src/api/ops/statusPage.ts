/**
 * The /status page: per source the store's counts, the last runs (chart and table), failing studies with
 * their errors, dead letters and quarantined studies with a replay form. Server-rendered HTML with inline CSS and SVG
 * and no script at all, so it needs no front-end build and a strict Content-Security-Policy holds.
 */
import type { RunRecord, SourceCounts, StateStore, StudyState } from '../../state';
import { sourceCoverage, type Coverage, type CoverageStore, type SweepSettings } from '../../sync';
import { feedReadingOf, lagPerRun, syncLagSeconds, type RunLagPoint } from '../../metrics';
import { runChartSvg } from './chart';
import { escapeHtml as h, formatDuration, formatInstant } from './format';

/** The sweep limits a source's coverage is judged by (defaults when a source has none configured). */
export type CoverageSettingsOf = (sourceId: string) => Pick<SweepSettings, 'maxAgeHours' | 'minCoverage'> | undefined;

/** What the page reads from the store. */
export type StatusStoreView = CoverageStore & Pick<StateStore, 'runs' | 'checkpoints'>;

export interface SourceStatus {
  sourceId: string;
  counts: SourceCounts;
  checkpoint?: string;
  lagSeconds?: number;
  /** Newest first, with the lag each run left behind. */
  runs: (RunRecord & { lagSeconds?: number })[];
  chart: RunLagPoint[];
  failing: StudyState[];
  dead: StudyState[];
  /** Held for an operator (a Study UID under two patients), replayable once the PACS is fixed. */
  quarantined: StudyState[];
  coverage: Coverage;
}

export interface StatusModel {
  generatedAt: string;
  sources: SourceStatus[];
}

/** Rows listed per table; the counts above each table give the full number. */
export const MAX_ROWS = 200;

export async function buildStatusModel(
  store: StatusStoreView,
  sourceIds: string[],
  now: Date,
  runsShown: number,
  settingsOf: CoverageSettingsOf = () => undefined,
): Promise<StatusModel> {
  const sources = await Promise.all(
    sourceIds.map((sourceId) => sourceStatus(store, sourceId, now, runsShown, settingsOf(sourceId))),
  );
  return { generatedAt: now.toISOString(), sources };
}

async function sourceStatus(
  store: StatusStoreView,
  sourceId: string,
  now: Date,
  runsShown: number,
  settings: ReturnType<CoverageSettingsOf>,
): Promise<SourceStatus> {
  const [runs, pollRuns, checkpoint, counts, failing, dead, quarantined, coverage, feed] = await Promise.all([
    store.runs.listRuns(sourceId, runsShown),
    // From polls alone: feed runs, every few seconds while studies arrive, would crowd them out of `runs`.
    store.runs.listRuns(sourceId, runsShown, 'poll'),
    store.checkpoints.get(sourceId, 'poll'),
    store.studies.counts(sourceId),
    store.studies.list(sourceId, 'failing'),
    store.studies.list(sourceId, 'dead'),
    store.studies.list(sourceId, 'quarantined'),
    sourceCoverage(store, sourceId, now, settings),
    // With a change feed, the lag runs from its last read (to the head), not from the last poll.
    feedReadingOf(store.feed, sourceId),
  ]);
  const chart = lagPerRun(runs);
  const lagById = new Map(chart.map((p) => [p.runId, p.lagSeconds]));
  return {
    sourceId,
    counts,
    checkpoint,
    lagSeconds: syncLagSeconds(pollRuns, now, checkpoint, feed),
    runs: runs.map((r) => ({ ...r, lagSeconds: lagById.get(r.runId) })),
    chart,
    failing,
    dead,
    quarantined,
    coverage,
  };
}

const runSeconds = (r: RunRecord) =>
  r.endedAt ? (new Date(r.endedAt).getTime() - new Date(r.startedAt).getTime()) / 1000 : undefined;
const num = (v: number | undefined) => String(v ?? 0);

function countsBlock(s: SourceStatus): string {
  const item = (field: string, label: string, value: string) =>
    `<div class="count"><span class="value" data-field="${field}">${h(value)}</span><span class="label">${h(label)}</span></div>`;
  return `<div class="counts">${[
    item('studies', 'studies known', num(s.counts.studies)),
    item('synced', 'synced', num(s.counts.synced)),
    item('resources', 'ImagingStudy resources', num(s.counts.resources)),
    item('failing', 'failing', num(s.counts.failing)),
    item('dead', 'dead letters', num(s.counts.dead)),
    item('quarantined', 'quarantined', num(s.counts.quarantined)),
    item('lag', 'sync lag', formatDuration(s.lagSeconds)),
    item('checkpoint', 'polled through StudyDate', s.checkpoint ?? '–'),
  ].join('')}</div>`;
}

const HEALTH_LABEL: Record<Coverage['health'], string> = {
  ok: 'Coverage proven',
  'never-swept': 'Never swept',
  held: 'Removals held',
  overdue: 'Sweep overdue',
  short: 'Coverage short',
};

/** The proof of coverage: the last complete sweep against the store, pending studies, freshness, verdict. */
function coverageBlock(c: Coverage): string {
  const item = (field: string, label: string, value: string) =>
    `<div class="count"><span class="value" data-field="${field}">${h(value)}</span><span class="label">${h(label)}</span></div>`;
  const s = c.lastSweep;
  const pct = s ? `${(s.coverage * 100).toFixed(1)} %` : '–';
  const problems = c.problems.length
    ? `<ul class="problems">${c.problems.map((p) => `<li>${h(p)}</li>`).join('')}</ul>`
    : '';
  const open = c.sweepInProgress
    ? `<p class="meta" data-field="sweep-in-progress">Sweep in progress since ${h(formatInstant(c.sweepInProgress.startedAt))}, through StudyDate ${h(c.sweepInProgress.throughDate ?? '–')}, ${c.sweepInProgress.listed} listed.</p>`
    : '';
  return (
    `<div class="coverage health-${h(c.health)}" data-field="coverage-health" data-health="${h(c.health)}">` +
    `<p class="verdict">${h(HEALTH_LABEL[c.health])}</p>${problems}<div class="counts">${[
      item('last-sweep', 'last complete sweep (UTC)', s ? formatInstant(s.completedAt) : 'never'),
      item('sweep-age', 'since then', s ? formatDuration(s.ageSeconds) : '–'),
      item('sweep-listed', 'studies the PACS reported', s ? String(s.listed) : '–'),
      item('sweep-synced', 'of them synced', s ? String(s.synced) : '–'),
      item('coverage', 'coverage', pct),
      item('removals-held', 'removals held', s?.held ? `${s.held.removals} of ${s.held.of}` : '0'),
      item('pending', 'pending (failing + dead)', String(c.pending.failing + c.pending.dead)),
      item('oldest-pending', 'oldest pending waits', formatDuration(c.pending.oldestAgeSeconds ?? undefined)),
      item(
        'freshness-p95',
        `freshness p95 (24 h, ${c.freshness.samples} written)`,
        formatDuration(c.freshness.p95 ?? undefined),
      ),
    ].join('')}</div>${open}</div>`
  );
}

function runsTable(s: SourceStatus): string {
  if (!s.runs.length) return '<p class="none">No runs yet.</p>';
  const rows = s.runs
    .map(
      (r) =>
        `<tr data-run-id="${h(r.runId)}" class="status-${h(r.status)}"><td>${h(formatInstant(r.startedAt))}</td><td>${h(r.kind)}</td><td data-field="status">${h(r.status)}</td>` +
        `<td class="n" data-field="found">${num(r.counts.found)}</td><td class="n" data-field="written">${num(r.counts.written)}</td><td class="n" data-field="unchanged">${num(r.counts.unchanged)}</td>` +
        `<td class="n" data-field="failed">${num(r.counts.failed)}</td><td class="n" data-field="dead">${num(r.counts.dead)}</td>` +
        `<td class="n">${h(formatDuration(runSeconds(r)))}</td><td class="n">${h(formatDuration(r.lagSeconds))}</td><td class="err">${h(r.error ?? '')}</td></tr>`,
    )
    .join('');
  return `<table class="runs"><caption>Last ${s.runs.length} runs, newest first</caption><thead><tr><th>started (UTC)</th><th>kind</th><th>status</th><th>found</th><th>written</th><th>unchanged</th><th>failed</th><th>dead</th><th>duration</th><th>lag after</th><th>error</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function failingTable(s: SourceStatus): string {
  if (!s.failing.length) return '<p class="none">No failing studies.</p>';
  const rows = s.failing
    .slice(0, MAX_ROWS)
    .map(
      (f) =>
        `<tr data-study-uid="${h(f.studyUid)}"><td class="uid">${h(f.studyUid)}</td><td>${h(f.studyDate ?? '–')}</td><td class="n" data-field="attempts">${f.attempts}</td>` +
        `<td>${h(formatInstant(f.nextRetryAt))}</td><td class="err">${h(f.lastError ?? '')}</td></tr>`,
    )
    .join('');
  const more = s.failing.length > MAX_ROWS ? `<p class="more">and ${s.failing.length - MAX_ROWS} more</p>` : '';
  return `<table class="failing"><thead><tr><th>Study Instance UID</th><th>StudyDate</th><th>attempts</th><th>next retry (UTC)</th><th>last error</th></tr></thead><tbody>${rows}</tbody></table>${more}`;
}

function replayForm(sourceId: string, csrfToken: string, studyUid: string | undefined, label: string): string {
  return (
    `<form method="post" action="status/replay" class="replay">` +
    `<input type="hidden" name="csrf" value="${h(csrfToken)}"><input type="hidden" name="source" value="${h(sourceId)}">` +
    (studyUid ? `<input type="hidden" name="study" value="${h(studyUid)}">` : '') +
    `<input type="password" name="apiKey" placeholder="admin API key or token" autocomplete="off" required aria-label="admin API key or token">` +
    `<button type="submit">${h(label)}</button></form>`
  );
}

function deadTable(s: SourceStatus, csrfToken: string): string {
  if (!s.dead.length) return '<p class="none">No dead letters.</p>';
  const rows = s.dead
    .slice(0, MAX_ROWS)
    .map(
      (d) =>
        `<tr data-study-uid="${h(d.studyUid)}"><td class="uid">${h(d.studyUid)}</td><td>${h(d.studyDate ?? '–')}</td><td class="n" data-field="attempts">${d.attempts}</td>` +
        `<td class="err">${h(d.lastError ?? '')}</td><td>${replayForm(s.sourceId, csrfToken, d.studyUid, 'Replay')}</td></tr>`,
    )
    .join('');
  const more = s.dead.length > MAX_ROWS ? `<p class="more">and ${s.dead.length - MAX_ROWS} more</p>` : '';
  const all = `<div class="replay-all">${replayForm(s.sourceId, csrfToken, undefined, `Replay all ${s.dead.length} dead letters of ${s.sourceId}`)}</div>`;
  return `<table class="dead"><thead><tr><th>Study Instance UID</th><th>StudyDate</th><th>attempts</th><th>last error</th><th>replay</th></tr></thead><tbody>${rows}</tbody></table>${more}${all}`;
}

function quarantineTable(s: SourceStatus, csrfToken: string): string {
  if (!s.quarantined.length) return '<p class="none">No quarantined studies.</p>';
  const rows = s.quarantined
    .slice(0, MAX_ROWS)
    .map(
      (q) =>
        `<tr data-study-uid="${h(q.studyUid)}"><td class="uid">${h(q.studyUid)}</td><td>${h(q.studyDate ?? '–')}</td><td data-field="reason">${h(q.reason ?? '')}</td>` +
        `<td class="err">${h(q.lastError ?? '')}</td><td>${replayForm(s.sourceId, csrfToken, q.studyUid, 'Replay')}</td></tr>`,
    )
    .join('');
  const more = s.quarantined.length > MAX_ROWS ? `<p class="more">and ${s.quarantined.length - MAX_ROWS} more</p>` : '';
  return `<p class="meta">Not written: fix the study on the PACS, then replay it.</p><table class="quarantined"><thead><tr><th>Study Instance UID</th><th>StudyDate</th><th>reason</th><th>detail</th><th>replay</th></tr></thead><tbody>${rows}</tbody></table>${more}`;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222;background:#fafafa}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.15rem;margin:2rem 0 .5rem;border-bottom:1px solid #ccc}h3{font-size:1rem;margin:1.2rem 0 .4rem}
.meta{color:#666}.flash{padding:.5rem .8rem;border-radius:4px;background:#e6f4ea;border:1px solid #8c8}.flash.error{background:#fdecea;border-color:#e99}
.counts{display:flex;flex-wrap:wrap;gap:.6rem}.count{background:#fff;border:1px solid #ddd;border-radius:4px;padding:.4rem .7rem;min-width:6rem}
.count .value{display:block;font-size:1.3rem;font-weight:600}.count .label{color:#666;font-size:.8rem}
table{border-collapse:collapse;background:#fff;margin:.3rem 0}th,td{border:1px solid #ddd;padding:.2rem .45rem;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}td.uid{font-family:monospace}td.err{color:#a00;max-width:36rem;word-break:break-word}
caption{text-align:left;color:#666;padding:.2rem 0}tr.status-failed td,tr.status-interrupted td{background:#fff4f4}
.chart{background:#fff;border:1px solid #ddd;border-radius:4px}.chart .bar{fill:#4a7bd0}.chart .bar.bad{fill:#d0734a}.chart .bar.running{fill:#aab}.chart .bar.feed{fill:#8a5cc7}.chart .legend.feed-legend{fill:#8a5cc7}
.chart .lag{fill:none;stroke:#2a9d4a;stroke-width:2}.chart .lag-dot{fill:#2a9d4a}.chart .axis{stroke:#999}.chart .tick,.chart .legend{font-size:11px;fill:#555}.chart .lag-legend,.chart .lag-tick{fill:#2a9d4a}
.coverage{border-left:6px solid #2a9d4a;padding:.2rem .8rem;margin:.4rem 0 .8rem;background:#f3faf5}.coverage.health-overdue,.coverage.health-short,.coverage.health-never-swept,.coverage.health-held{border-color:#d0734a;background:#fff6f0}
.coverage .verdict{font-weight:600;margin:.2rem 0}.coverage .problems{margin:.2rem 0;color:#a33}
form.replay{display:flex;gap:.3rem;margin:0}form.replay input[type=password]{width:12rem}.replay-all{margin:.5rem 0}.none{color:#666}
`;

export function renderStatusPage(model: StatusModel, csrfToken: string, flash?: { ok: boolean; text: string }): string {
  const nav = model.sources.map((s) => `<a href="#source-${h(s.sourceId)}">${h(s.sourceId)}</a>`).join(' · ');
  const sections = model.sources
    .map(
      (s) =>
        `<section class="source" id="source-${h(s.sourceId)}" data-source="${h(s.sourceId)}"><h2>Source ${h(s.sourceId)}</h2>${coverageBlock(s.coverage)}${countsBlock(s)}` +
        `<h3>Last runs</h3>${runChartSvg([...s.chart].slice(-40), `Studies written and sync lag per run for ${s.sourceId}`)}${runsTable(s)}` +
        `<h3>Failing studies (<span data-field="failing-count">${s.failing.length}</span>)</h3>${failingTable(s)}` +
        `<h3>Dead letters (<span data-field="dead-count">${s.dead.length}</span>)</h3>${deadTable(s, csrfToken)}` +
        `<h3>Quarantined studies (<span data-field="quarantined-count">${s.quarantined.length}</span>)</h3>${quarantineTable(s, csrfToken)}</section>`,
    )
    .join('');
  const flashHtml = flash ? `<p class="flash${flash.ok ? '' : ' error'}" role="status">${h(flash.text)}</p>` : '';
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>pacs-fhir-bridge status</title><style>${STYLE}</style></head><body>` +
    `<h1>pacs-fhir-bridge status</h1><p class="meta">Generated ${h(formatInstant(model.generatedAt))} · ${nav || 'no sources'} · <a href="metrics">metrics</a> · <a href="readyz">readiness</a></p>` +
    `${flashHtml}${sections || '<p class="none">No sources configured.</p>'}</body></html>`
  );
}

/** The page's Content-Security-Policy: no script, forms only to this origin, never framed. */
export const STATUS_PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
