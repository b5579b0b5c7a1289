// The simulator's timelines as an SVG line chart: one panel per measure, one line per variant,
// minutes along the bottom. Plain SVG text, no dependency.
import type { TimelineRow } from './simulation.js';

export interface Panel {
  label: string;
  value: (r: TimelineRow) => number;
}

export interface Series {
  name: string;
  rows: TimelineRow[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];
const W = 760;
const PANEL_H = 150;
const LEFT = 60;
const RIGHT = 20;
const TOP = 64;
const GAP = 40;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A round number at or above v, for an axis's top. */
function niceTop(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function timelineSvg(
  title: string,
  subtitle: string,
  series: readonly Series[],
  panels: readonly Panel[],
): string {
  const minutes = Math.max(1, ...series.map((s) => s.rows.length));
  const h = TOP + panels.length * (PANEL_H + GAP) + 20;
  const plotW = W - LEFT - RIGHT;
  const x = (m: number) => LEFT + (plotW * m) / minutes;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${h}" fill="white"/>`,
    `<text x="${LEFT}" y="16" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<text x="${LEFT}" y="30" fill="#444">${esc(subtitle)}</text>`,
  ];
  series.forEach((s, i) => {
    const lx = LEFT + i * 220;
    out.push(`<rect x="${lx}" y="40" width="12" height="4" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${lx + 16}" y="45">${esc(s.name)}</text>`);
  });
  panels.forEach((p, k) => {
    const top = TOP + k * (PANEL_H + GAP) + 10;
    const yMax = niceTop(Math.max(0, ...series.flatMap((s) => s.rows.map(p.value))));
    const y = (v: number) => top + PANEL_H - (PANEL_H * v) / yMax;
    out.push(`<text x="${LEFT}" y="${top - 4}" font-weight="bold">${esc(p.label)}</text>`);
    out.push(`<line x1="${LEFT}" y1="${top + PANEL_H}" x2="${W - RIGHT}" y2="${top + PANEL_H}" stroke="#888"/>`);
    out.push(`<line x1="${LEFT}" y1="${top}" x2="${LEFT}" y2="${top + PANEL_H}" stroke="#888"/>`);
    for (const f of [0, 0.5, 1]) {
      const v = yMax * f;
      out.push(`<text x="${LEFT - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text>`);
      if (f > 0) out.push(`<line x1="${LEFT}" y1="${y(v)}" x2="${W - RIGHT}" y2="${y(v)}" stroke="#eee"/>`);
    }
    const tick = minutes <= 30 ? 5 : 10;
    for (let m = 0; m <= minutes; m += tick)
      out.push(`<text x="${x(m)}" y="${top + PANEL_H + 14}" text-anchor="middle">${m}</text>`);
    series.forEach((s, i) => {
      const pts = s.rows.map((r) => `${x(r.minute).toFixed(1)},${y(p.value(r)).toFixed(1)}`).join(' ');
      out.push(`<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.6" points="${pts}"/>`);
    });
  });
  out.push(`<text x="${W / 2}" y="${h - 6}" text-anchor="middle">simulated minutes</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
