// The queue's shape by domain and age (Postfix's qshape): how many messages each destination holds
// and how long ago they arrived, in buckets of minutes, the busiest domains first. One native walk
// of the message table (no per-message objects, a few milliseconds at 1M messages), then a sort of
// the domains by their totals.
//
// A message's arrival is not stored: the core knows its expiry, and a message submitted without an
// expiry of its own expires at arrival + its pair's messageExpiration, so its age is now - (expiry
// - that expiration). A message given its own expiresAt is placed by that instead, and one that
// never expires (messageExpiration Infinity) is counted as of unknown age.
import { native } from '../native.js';
import { checkInt, checkKeys, checkObject, typeName } from '../validate.js';
import type { CoreContext } from './core_context.js';
import type { DomainTable } from './domain_table.js';

/** Postfix qshape's buckets: ages below 5, 10, 20, ... 1280 minutes, then 1280 and more. */
export const DEFAULT_QSHAPE_MINUTES: readonly number[] = [5, 10, 20, 40, 80, 160, 320, 640, 1280];
const KEYS: ReadonlySet<string> = new Set(['top', 'minutes']);
const MAX_EDGES = 64;

export interface QshapeOptions {
  /** Domains shown by name, the busiest first (default 20, 0 to 100,000); the rest are summed in `other`. */
  top?: number;
  /** Upper edges of the age buckets, minutes, ascending (default Postfix's 5 to 1280; at most 64). */
  minutes?: number[];
}

export interface QshapeRow {
  domain: string;
  /** Messages held (active, delayed, in flight). */
  total: number;
  /** By age: counts[k] arrived less than minutes[k] ago (and at least minutes[k - 1]); the last
   *  entry, minutes[minutes.length - 1] or more. */
  counts: number[];
  /** Messages whose age is not known (they never expire). */
  unknownAge: number;
}

export interface Qshape {
  /** ms since the epoch, the core's clock. */
  now: number;
  minutes: number[];
  /** Every message held. */
  total: Omit<QshapeRow, 'domain'>;
  /** The busiest `top` domains with mail, by total (then name). */
  domains: QshapeRow[];
  /** The domains with mail beyond the top ones, summed (domains: how many). */
  other: Omit<QshapeRow, 'domain'> & { domains: number };
}

function checkOptions(options: unknown): { top: number; minutes: number[] } {
  const o = checkObject(options, 'options');
  checkKeys(o, KEYS, 'options', 'option');
  const top = o.top === undefined ? 20 : checkInt(o.top, 'options.top', 0, 100_000);
  let minutes = [...DEFAULT_QSHAPE_MINUTES];
  if (o.minutes !== undefined) {
    if (!Array.isArray(o.minutes))
      throw new TypeError(`options.minutes must be an array of numbers, got ${typeName(o.minutes)}`);
    if (o.minutes.length > MAX_EDGES)
      throw new RangeError(`options.minutes holds at most ${MAX_EDGES} edges, got ${o.minutes.length}`);
    minutes = o.minutes.map((m: unknown, i: number) => {
      if (typeof m !== 'number') throw new TypeError(`options.minutes[${i}] must be a number, got ${typeName(m)}`);
      if (!Number.isFinite(m) || m <= 0)
        throw new RangeError(`options.minutes[${i}] must be above 0 and finite, got ${m}`);
      return m;
    });
    for (let i = 1; i < minutes.length; i++)
      if (!(minutes[i] > minutes[i - 1]))
        throw new RangeError(`options.minutes must ascend: [${i}] = ${minutes[i]} is not above ${minutes[i - 1]}`);
  }
  return { top, minutes };
}

const emptyRow = (width: number) => ({ total: 0, counts: new Array<number>(width).fill(0), unknownAge: 0 });

/** See MailQueueCore.qshape(). */
export function qshape(ctx: CoreContext, domains: DomainTable, options: QshapeOptions = {}): Qshape {
  const h = ctx.live();
  const { top, minutes } = checkOptions(options);
  const nd = domains.records.length;
  const nb = ctx.bindings.length;
  const expiration = new Float64Array(nd * nb);
  for (let d = 0; d < nd; d++)
    for (let b = 0; b < nb; b++) expiration[d * nb + b] = domains.pair(d, b).messageExpirationMs;
  const edges = Float64Array.from(minutes, (m) => m * 60_000);
  const width = minutes.length + 2; // the buckets, the oldest, the unknown
  const out = new Float64Array(Math.max(1, nd * width));
  const now = ctx.now();
  native.ageShape(h, now, expiration, edges, out);

  const rows: QshapeRow[] = [];
  const total = emptyRow(minutes.length + 1);
  for (let d = 0; d < nd; d++) {
    const counts = Array.from(out.subarray(d * width, d * width + width - 1));
    const unknownAge = out[d * width + width - 1];
    let sum = unknownAge;
    for (const c of counts) sum += c;
    if (sum === 0) continue;
    rows.push({ domain: domains.records[d].name, total: sum, counts, unknownAge });
    add(total, sum, counts, unknownAge);
  }
  rows.sort((a, b) => b.total - a.total || (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
  const other = { ...emptyRow(minutes.length + 1), domains: Math.max(0, rows.length - top) };
  for (const r of rows.slice(top)) add(other, r.total, r.counts, r.unknownAge);
  return { now, minutes, total, domains: rows.slice(0, top), other };
}

function add(into: Omit<QshapeRow, 'domain'>, total: number, counts: number[], unknownAge: number): void {
  into.total += total;
  into.unknownAge += unknownAge;
  for (let k = 0; k < counts.length; k++) into.counts[k] += counts[k];
}
