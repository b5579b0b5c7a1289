// The benchmark's ratios as a picture: bench/results/ratios.svg, written by `npm run bench` next to
// summary.md. One horizontal bar a comparison with plain JavaScript (the core's speed ÷ the best
// JS alternative's, the same numbers as the summary's targets), on a log scale around 1x, with the
// target as a tick: green where it is met, red where it is not. Plain SVG text, no library: a
// chart of a few dozen bars needs no more, and it renders on GitHub and in any browser.

/** One bar: higher is better for the core. */
export interface ChartBar {
  /** Section the bar belongs to (a heading above its bars). */
  group: string;
  label: string;
  /** core ÷ best plain JS (throughput), or plain ÷ core (time): > 1 means the core is ahead. */
  ratio: number;
  /** The target's ratio. */
  goal: number;
}

const ROW = 18;
const LABEL_W = 330;
const PLOT_W = 420;
const LO = 0.25;
const HI = 16;

const x = (r: number): number => {
  const c = Math.min(HI, Math.max(LO, r));
  return LABEL_W + ((Math.log(c) - Math.log(LO)) / (Math.log(HI) - Math.log(LO))) * PLOT_W;
};

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The SVG document for `bars` (in their order, grouped as they come), titled `title`. */
export function ratioChart(bars: readonly ChartBar[], title: string): string {
  const rows: string[] = [];
  let y = 48;
  let group: string | undefined;
  for (const b of bars) {
    if (!Number.isFinite(b.ratio) || b.ratio <= 0) continue;
    if (b.group !== group) {
      group = b.group;
      y += 6;
      rows.push(`<text x="4" y="${y + 12}" font-weight="bold">${esc(group)}</text>`);
      y += ROW;
    }
    const met = b.ratio >= b.goal;
    const x0 = x(1);
    const x1 = x(b.ratio);
    const [left, width] = x1 >= x0 ? [x0, x1 - x0] : [x1, x0 - x1];
    rows.push(
      `<text x="${LABEL_W - 6}" y="${y + 12}" text-anchor="end">${esc(b.label)}</text>`,
      `<rect x="${left.toFixed(1)}" y="${y + 3}" width="${Math.max(1, width).toFixed(1)}" height="${ROW - 6}" fill="${met ? '#2e8b57' : '#c0392b'}"/>`,
      `<line x1="${x(b.goal).toFixed(1)}" y1="${y + 1}" x2="${x(b.goal).toFixed(1)}" y2="${y + ROW - 1}" stroke="#222" stroke-width="2"/>`,
      `<text x="${(Math.max(x0, x1) + 4).toFixed(1)}" y="${y + 12}" fill="#333">${b.ratio.toFixed(2)}x</text>`,
    );
    y += ROW;
  }
  const axis: string[] = [];
  for (const t of [0.25, 0.5, 1, 2, 4, 8, 16]) {
    axis.push(
      `<line x1="${x(t).toFixed(1)}" y1="40" x2="${x(t).toFixed(1)}" y2="${y}" stroke="${t === 1 ? '#555' : '#ddd'}"/>`,
      `<text x="${x(t).toFixed(1)}" y="36" text-anchor="middle" fill="#555">${t}x</text>`,
    );
  }
  const h = y + 42;
  const w = LABEL_W + PLOT_W + 60;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="11">`,
    `<rect width="${w}" height="${h}" fill="#fff"/>`,
    `<text x="4" y="16" font-size="13" font-weight="bold">${esc(title)}</text>`,
    ...axis,
    ...rows,
    `<text x="4" y="${h - 22}" fill="#555">bar: the core's ratio to the best plain-JS alternative in the same run (log scale; right of 1x: the core ahead);</text>`,
    `<text x="4" y="${h - 8}" fill="#555">black tick: the target; green: met, red: not met. Numbers and method: bench/results/summary.md</text>`,
    '</svg>',
    '',
  ].join('\n');
}
