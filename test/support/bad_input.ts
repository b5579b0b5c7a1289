// Shared by the bad-input tests, one file per class of the public API:
//
//   test/core/core-api.bad-input.test.ts         MailQueueCore's methods (constructor, config, queue
//                                                calls, passes, connections, after close())
//   test/pass/hooks-and-views.bad-input.test.ts  hook points, DomainRecord and ActiveQueue views,
//                                                defaultMailQueueMaintain, connectionGoal()
//   test/pass/grant-list.bad-input.test.ts       a bad GrantList passed to maintain()
//   test/core/raw-addon.bad-input.test.ts        garbage into the raw addon functions (own fixture)
//
// Each row of a table is one bad call. It says which error class it must throw (exactly
// TypeError, RangeError or MailQueueError), the `code` where there is one, and a regex that the
// message must match (the message names the argument). After every row the core must be exactly as
// it was (stats, the counters view, every active queue, every message, the domain records, the
// native invariant check) and Object.prototype must be untouched. A few rows are "reported" rows: the call
// must NOT throw, and the failure must arrive as an 'error' event (providers that fail).
import { expect, test } from 'vitest';

import { HookError, MailQueueCore, type MailQueueError, type ActiveQueue, type DomainRecord } from '../../lib/index.js';

export const T0 = 1_700_000_000_000;
export const MB = 'a'.repeat(1 << 20);
export const MAX_SAFE = Number.MAX_SAFE_INTEGER;
export const TWO53 = 2 ** 53;

export type ErrorClass = typeof TypeError | typeof RangeError | typeof MailQueueError;

// --- Object.prototype pollution ------------------------------------------------------------------

const originalToString = Object.prototype.toString;

export function protoSnapshot(): unknown {
  const names = (o: object) => Reflect.ownKeys(o).map(String).sort();
  return {
    object: names(Object.prototype),
    func: names(Function.prototype),
    array: names(Array.prototype),
    // The keys that the polluting payloads of the tables would set.
    probes: [
      ({} as Record<string, unknown>).x,
      ({} as Record<string, unknown>).polluted,
      Object.prototype.toString === originalToString,
    ],
  };
}

export function assertNoPollution(before: unknown): void {
  expect(protoSnapshot()).toEqual(before);
  expect(({} as Record<string, unknown>).x).toBeUndefined();
  expect(Object.hasOwn(Object.prototype, 'x')).toBe(false);
}

// --- the fixture: one core with mail in every state ----------------------------------------------

export interface Ctx {
  core: MailQueueCore;
  /** 'error' events (reported hook failures) of `core`. */
  events: unknown[];
  dr: DomainRecord;
  qa: ActiveQueue;
  qb: ActiveQueue;
  /** ids: ACTIVE queued on x.com/a, DELAYED waiting on x.com, IN_FLIGHT taken from x.com/a. */
  active: number;
  delayed: number;
  inFlight: number;
  conn: number;
  /** A second core with the same domain, for "a DomainRecord of another core". */
  other: MailQueueCore;
  otherDr: DomainRecord;
  otherQ: ActiveQueue;
  /** A closed core, and views taken from it before close(). */
  closed: MailQueueCore;
  closedDr: DomainRecord;
  closedQ: ActiveQueue;
}

export const IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100, MAX_SAFE];

export function makeCtx(): Ctx {
  const clock = () => T0;
  const core = new MailQueueCore({
    bindings: [{ name: 'a', group: 'g' }, 'b'],
    config: { global: { maxOutboundConnections: 8 }, domains: { 'y.com': { maxOutboundConnections: 2 } } },
    clock,
  });
  const events: unknown[] = [];
  core.on('error', (e) => events.push(e));
  core.enqueueBatch('x.com', 'a', Float64Array.of(1, 2, 3, 4), Uint8Array.of(0, 1, 0, 0));
  core.enqueue({ id: 5, domain: 'x.com', binding: 'b' });
  core.enqueue({ id: 6, domain: 'x.com', binding: 'a', nextAttempt: T0 + 3_600_000 });
  core.enqueue({ id: 7, domain: 'y.com', binding: 'b', priority: 1, expiresAt: Infinity });
  const { grants } = core.maintain();
  expect(grants.length).toBeGreaterThan(0);
  const [inFlight] = core.take('x.com', 'a', 1);
  expect(inFlight).toBe(2); // the urgent one
  const other = new MailQueueCore({ bindings: ['a', 'b'], clock });
  other.enqueue({ id: 1, domain: 'x.com' });
  const closed = new MailQueueCore({ bindings: ['a'], clock });
  closed.enqueue({ id: 1, domain: 'x.com' });
  const closedDr = closed.domain('x.com');
  const closedQ = closed.activeQueue('x.com', 'a');
  closed.close();
  return {
    core,
    events,
    dr: core.domain('x.com'),
    qa: core.activeQueue('x.com', 'a'),
    qb: core.activeQueue('x.com', 'b'),
    active: 1,
    delayed: 6,
    inFlight,
    conn: grants[0].connectionId,
    other,
    otherDr: other.domain('x.com'),
    otherQ: other.activeQueue('x.com', 'a'),
    closed,
    closedDr,
    closedQ,
  };
}

export function stateOf(core: MailQueueCore): unknown {
  return {
    stats: core.stats(),
    counters: Array.from(core.counters),
    domains: core.domains(),
    records: core.domains().map((d) => core.domain(d).toJSON()),
    queues: core.domains().flatMap((d) => core.bindings.map((b) => [d, b, core.activeQueue(d, b).toArray()])),
    messages: IDS.map((id) => core.message(id) ?? null),
    hooks: Object.values(core.hooks).map((h) => h.size),
    invariants: core.checkInvariants(),
  };
}

// --- rows ----------------------------------------------------------------------------------------

export interface ThrowsRow {
  api: string;
  what: string;
  run: (c: Ctx) => unknown;
  throws: ErrorClass;
  code?: string;
  message?: RegExp;
}
export interface ReportedRow {
  api: string;
  what: string;
  run: (c: Ctx) => unknown;
  /** The call returns this, and exactly one HookError event matching `reported` is emitted. */
  returns: unknown;
  reported: RegExp;
}
export type Row = ThrowsRow | ReportedRow;

export const any = (v: unknown) => v as never;

export function assertThrows(row: ThrowsRow, c: Ctx): void {
  let thrown: unknown;
  let threw = false;
  try {
    row.run(c);
  } catch (e) {
    threw = true;
    thrown = e;
  }
  expect(threw, 'the call must throw').toBe(true);
  expect(thrown).toBeInstanceOf(Error);
  const err = thrown as Error & { code?: unknown };
  // Exactly the class: a RangeError is not accepted where a TypeError is expected, nor the reverse.
  expect(err.constructor, `${err.constructor.name}: ${err.message}`).toBe(row.throws);
  expect(err.code).toBe(row.code);
  if (row.message) expect(err.message).toMatch(row.message);
  expect(err.message.length, 'the message must not echo megabytes of input').toBeLessThan(500);
}

export function runRow(row: Row): void {
  const c = makeCtx();
  const proto = protoSnapshot();
  const before = stateOf(c.core);
  const otherBefore = stateOf(c.other);
  try {
    if ('throws' in row) {
      assertThrows(row, c);
      expect(c.events).toEqual([]);
    } else {
      expect(row.run(c)).toBe(row.returns);
      expect(c.events).toHaveLength(1);
      const ev = c.events[0];
      expect(ev).toBeInstanceOf(HookError);
      expect((ev as HookError).code).toBe('ERR_HOOK_FAILED');
      expect((ev as HookError).domain).toBe('x.com');
      expect((ev as HookError).message).toMatch(row.reported);
    }
    expect(c.core.closed).toBe(false);
    expect(stateOf(c.core)).toEqual(before);
    expect(stateOf(c.other)).toEqual(otherBefore);
    expect(c.closed.closed).toBe(true);
    assertNoPollution(proto);
  } finally {
    c.core.close();
    c.other.close();
  }
}

/** One test per row, named "<api>: <case>". The names of a table must be unique and not empty. */
export function rowTests(rows: Row[]): void {
  const names = rows.map((r) => `${r.api}: ${r.what}`);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new Error(`two rows are named "${dup}"`);
  if (rows.some((r) => r.api.length * r.what.length === 0)) throw new Error('a row has no api or no case');
  for (const row of rows) {
    test(`${row.api}: ${row.what}`, () => runRow(row));
  }
}
