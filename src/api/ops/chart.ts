/**
 * The status page's run chart as inline SVG (no script, no front-end build): one bar per run for the
 * studies it wrote (polls, sweeps and backfills; change-feed runs in their own colour), and a line for the sync
 * lag each run left behind, on its own scale at the right.
 */
import type { RunLagPoint } from '../../metrics';
import { escapeHtml, formatDuration } from './format';

const W = 560;
const H = 180;
const PAD = { left: 44, right: 64, top: 14, bottom: 26 };

/** A round axis maximum (1, 2, 5 × 10^n) at or above the data's largest value. */
export function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const exp = Math.pow(10, Math.floor(Math.log10(value)));
  for (const m of [1, 2, 5, 10]) if (m * exp >= value) return m * exp;
  return 10 * exp;
}

/** A round lag-axis maximum: a whole number of minutes, hours or days at or above the largest lag. */
export function niceLagMax(seconds: number): number {
  const steps = [
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    7 * 86400,
    30 * 86400,
  ];
  return steps.find((s) => s >= seconds) ?? Math.ceil(seconds / 86400) * 86400;
}

export function runChartSvg(points: RunLagPoint[], caption: string): string {
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const n = Math.max(points.length, 1);
  const slot = plotW / n;
  const maxWritten = niceMax(Math.max(0, ...points.map((p) => p.written)));
  const lags = points.map((p) => p.lagSeconds).filter((s): s is number => s !== undefined);
  const maxLag = niceLagMax(Math.max(0, ...lags));
  const y = (v: number, max: number) => PAD.top + plotH - (v / max) * plotH;

  const bars = points
    .map((p, i) => {
      const x = PAD.left + i * slot + slot * 0.15;
      const top = y(p.written, maxWritten);
      // Feed runs (a change feed's studies, seconds apart) in a colour of their own beside the polls and sweeps.
      const kind = p.kind === 'feed' ? ' feed' : '';
      const cls = p.status === 'ok' ? `bar${kind}` : p.status === 'running' ? 'bar running' : 'bar bad';
      return `<rect class="${cls}" x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${(slot * 0.7).toFixed(1)}" height="${(PAD.top + plotH - top).toFixed(1)}"><title>${escapeHtml(
        `${p.startedAt} ${p.kind} ${p.status}: ${p.written} written`,
      )}</title></rect>`;
    })
    .join('');

  const lagPoints = points
    .map((p, i) =>
      p.lagSeconds === undefined
        ? undefined
        : `${(PAD.left + (i + 0.5) * slot).toFixed(1)},${y(p.lagSeconds, maxLag).toFixed(1)}`,
    )
    .filter(Boolean);
  const lagLine = lagPoints.length > 1 ? `<polyline class="lag" points="${lagPoints.join(' ')}"/>` : '';
  const lagDots = points
    .map((p, i) =>
      p.lagSeconds === undefined
        ? ''
        : `<circle class="lag-dot" cx="${(PAD.left + (i + 0.5) * slot).toFixed(1)}" cy="${y(p.lagSeconds, maxLag).toFixed(1)}" r="3"><title>${escapeHtml(`lag ${formatDuration(p.lagSeconds)}`)}</title></circle>`,
    )
    .join('');

  const axes = [
    `<line class="axis" x1="${PAD.left}" y1="${PAD.top + plotH}" x2="${W - PAD.right}" y2="${PAD.top + plotH}"/>`,
    `<text class="tick" x="${PAD.left - 4}" y="${PAD.top + 4}" text-anchor="end">${maxWritten}</text>`,
    `<text class="tick" x="${PAD.left - 4}" y="${PAD.top + plotH}" text-anchor="end">0</text>`,
    `<text class="tick lag-tick" x="${W - PAD.right + 4}" y="${PAD.top + 4}">${escapeHtml(formatDuration(maxLag))}</text>`,
    `<text class="tick lag-tick" x="${W - PAD.right + 4}" y="${PAD.top + plotH}">0</text>`,
    `<text class="legend" x="${PAD.left}" y="${H - 6}">■ studies written per run</text>`,
    `<text class="legend feed-legend" x="${PAD.left + 150}" y="${H - 6}">■ by a feed run</text>`,
    `<text class="legend lag-legend" x="${W - PAD.right}" y="${H - 6}" text-anchor="end">● sync lag after run</text>`,
  ].join('');
  const empty = points.length
    ? ''
    : `<text class="tick" x="${W / 2}" y="${H / 2}" text-anchor="middle">no runs yet</text>`;

  return `<svg class="chart" role="img" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg"><title>${escapeHtml(caption)}</title>${axes}${bars}${lagLine}${lagDots}${empty}</svg>`;
}
