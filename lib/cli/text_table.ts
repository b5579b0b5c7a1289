// Plain-text tables for the command line (lib/cli/mqc.ts) and the demo: rows of the same keys,
// columns padded, numbers right-aligned; and the qshape table in Postfix's layout.
import type { Qshape } from '../core/qshape.js';

/** A table of rows (objects with the same keys), columns padded; numbers right-aligned. */
export function table(rows: Record<string, unknown>[], columns?: string[]): string {
  if (rows.length === 0) return '(none)';
  // Given when keys look like numbers: an object lists those first, whatever their order.
  const cols = columns ?? Object.keys(rows[0]);
  const cell = (v: unknown): string => (v === null || v === undefined ? '-' : String(v));
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: unknown[]) =>
    vals
      .map((v, i) => (typeof v === 'number' ? cell(v).padStart(width[i]) : cell(v).padEnd(width[i])))
      .join('  ')
      .trimEnd();
  return [line(cols), line(width.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => r[c])))].join(
    '\n',
  );
}

/**
 * A Qshape as Postfix's qshape prints it: a column T (the total) then one per age bucket (the
 * bucket's upper edge, in minutes or seconds; the last, the oldest, "<edge>+"), TOTAL first, the busiest
 * domains, then the rest summed; a column "?" when some messages' age is unknown.
 */
export function qshapeText(q: Qshape, unit: 'minutes' | 'seconds' = 'minutes'): string {
  const unknown = q.total.unknownAge > 0;
  const edges = q.minutes.map((m) => String(unit === 'seconds' ? Math.round(m * 600) / 10 : m));
  const heads = [...edges, `${edges[edges.length - 1]}+`];
  const row = (domain: string, r: { total: number; counts: number[]; unknownAge: number }) => {
    const o: Record<string, unknown> = { domain, T: r.total };
    heads.forEach((h, k) => {
      o[h] = r.counts[k];
    });
    if (unknown) o['?'] = r.unknownAge;
    return o;
  };
  const rows = [row('TOTAL', q.total), ...q.domains.map((d) => row(d.domain, d))];
  if (q.other.domains > 0) rows.push(row(`(${q.other.domains} more domains)`, q.other));
  return table(rows, ['domain', 'T', ...heads, ...(unknown ? ['?'] : [])]);
}
