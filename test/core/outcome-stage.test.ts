// Single settle() and defer() of a message a connection holds are staged on the JavaScript side
// (lib/core/outcome_stage.ts): they must look, to every read and every later call, exactly as the
// immediate native calls did. Each test runs the real addon.
import { expect, test } from 'vitest';

import { MailQueueCore } from '../../lib/index.js';
import { native } from '../../lib/native.js';

const T0 = 1_700_000_000_000;

// A core whose flight table is kept: the core keeps it from the first single outcome on (that
// one takes the call path), so each core here starts with one, for a message of its own domain.
// The flight table of each core made here, as the core handed it to its JavaScript side.
const tables = new WeakMap<MailQueueCore, Float64Array>();

function coreAt(clock: { now: number }, messageExpiration?: number): MailQueueCore {
  const raw = native as unknown as { flightBuffer(h: number): ArrayBuffer };
  const flightBuffer = raw.flightBuffer;
  let table: ArrayBuffer | undefined;
  raw.flightBuffer = (h) => (table = flightBuffer(h));
  let core: MailQueueCore;
  try {
    core = new MailQueueCore({
      clock: () => clock.now,
      config: messageExpiration === undefined ? undefined : { global: { messageExpiration } },
    });
  } finally {
    raw.flightBuffer = flightBuffer;
  }
  tables.set(core, new Float64Array(table!));
  core.enqueue({ id: 1e12, domain: 'first.test' });
  core.settle(core.take('first.test', 0, 1)[0]);
  return core;
}

// Runs f on such a core (its clock at T0 unless f moves it), and closes the core after.
function withCore(f: (core: MailQueueCore, clock: { now: number }) => void, messageExpiration?: number): void {
  const clock = { now: T0 };
  const core = coreAt(clock, messageExpiration);
  try {
    f(core, clock);
  } finally {
    core.close();
  }
}

// The ids the core's flight table holds, read from the table itself (every entry, every way).
function idsInTable(core: MailQueueCore): Set<number> {
  const flight = tables.get(core)!;
  const held = new Set<number>();
  for (let o = 0; o < flight.length; o += native.limits.flightStride) if (flight[o] !== 0) held.add(flight[o] - 1);
  return held;
}

// Counts the native calls an outcome can make, while f runs.
function crossings(f: () => void): Record<string, number> {
  const raw = native as unknown as Record<string, (...a: unknown[]) => unknown>;
  const seen: Record<string, number> = { settle: 0, defer: 0, applyOutcomes: 0 };
  const saved = Object.keys(seen).map((k) => [k, raw[k]] as const);
  for (const [k, fn] of saved)
    raw[k] = (...a: unknown[]) => {
      seen[k]++;
      return fn(...a);
    };
  try {
    f();
  } finally {
    for (const [k, fn] of saved) raw[k] = fn;
  }
  return seen;
}

test('a staged settle and defer show at once in the shared counters, the views and stats()', () => {
  withCore((core) => {
    core.enqueueBatch('x.test', undefined, Float64Array.of(1, 2, 3, 4));
    expect(core.take('x.test', 0, 4)).toEqual([1, 2, 3, 4]);
    const c = core.counters;
    const i = core.counterIndex;
    const calls = crossings(() => {
      core.settle(1);
      core.defer(2, T0 + 5000);
      // Before any other call: the counters the core shares already count both.
      expect(c[i.inFlight]).toBe(2);
      expect(c[i.delayed]).toBe(1);
      expect(core.stats()).toMatchObject({ inFlight: 2, delayed: 1, active: 0 });
    });
    // Neither crossed on its own: both went over in the one call that stats() made first.
    expect(calls).toEqual({ settle: 0, defer: 0, applyOutcomes: 1 });
    expect(core.message(1)).toBeUndefined();
    expect(core.message(2)).toMatchObject({ state: 'delayed', nextAttempt: T0 + 5000, attempts: 1 });
    expect(core.checkInvariants()).toBe(true);
  });
});

test('a second outcome for a staged id is refused at the call, as before', () => {
  withCore((core) => {
    core.enqueueBatch('x.test', undefined, Float64Array.of(1, 2, 3));
    core.take('x.test', 0, 3);
    core.settle(1);
    expect(() => core.settle(1)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_ID' }));
    core.defer(2, T0 + 1000);
    expect(() => core.defer(2, T0 + 2000)).toThrow(expect.objectContaining({ code: 'ERR_NOT_IN_FLIGHT' }));
    expect(() => core.settle(2)).toThrow(expect.objectContaining({ code: 'ERR_NOT_IN_FLIGHT' }));
    expect(() => core.untake(1)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_ID' }));
    // Bad arguments are refused before anything is staged.
    expect(() => core.settle(-1)).toThrow(RangeError);
    expect(() => core.defer(3, Number.NaN)).toThrow(RangeError);
    expect(() => core.defer('3' as unknown as number, T0)).toThrow(TypeError);
    expect(core.message(3)).toMatchObject({ state: 'in-flight' });
    core.settle(3);
    expect(core.stats()).toMatchObject({ inFlight: 0, delayed: 1, active: 0 });
    expect(core.checkInvariants()).toBe(true);
  });
});

test('a defer past the expiry bounces at the call; one to now or earlier is due at once', () => {
  withCore((core) => {
    const bounced: number[] = [];
    core.on('bounce', (b: { id: number }) => bounced.push(b.id));
    core.enqueueBatch('x.test', undefined, Float64Array.of(1, 2, 3));
    core.take('x.test', 0, 3);
    // At the expiry (the retry could only come after it), and not after now: both on the call path.
    expect(crossings(() => core.defer(1, T0 + 60_000))).toMatchObject({ defer: 1 });
    expect(bounced).toEqual([1]);
    expect(crossings(() => core.defer(2, T0))).toMatchObject({ defer: 1 });
    expect(core.message(2)).toMatchObject({ state: 'active' });
    expect(crossings(() => core.defer(3, T0 + 59_999))).toEqual({ settle: 0, defer: 0, applyOutcomes: 0 }); // staged
    expect(bounced).toEqual([1]);
    expect(core.stats()).toMatchObject({ inFlight: 0, delayed: 1, active: 1, expired: 1 });
    expect(core.checkInvariants()).toBe(true);
  }, 60);
});

test('equal retry times keep call order across staged defers and staged arrivals', () => {
  withCore((core, clock) => {
    const t = T0 + 1000;
    core.enqueueBatch('x.test', undefined, Float64Array.of(1, 2));
    core.take('x.test', 0, 2);
    // An arrival staged before a defer to the same time, then a defer before an arrival.
    core.enqueue({ id: 10, domain: 'x.test', nextAttempt: t });
    core.defer(1, t);
    core.defer(2, t);
    core.enqueue({ id: 11, domain: 'x.test', nextAttempt: t });
    clock.now = t;
    core.maintain(t);
    expect(core.activeQueue('x.test', 0).toArray(10)).toEqual([10, 1, 2, 11]);
    expect(core.checkInvariants()).toBe(true);
  });
});

test('more outcomes than the stage holds, and an outcome for a message whose table entry was pushed out', () => {
  withCore((core) => {
    // One id more than a set of the flight table holds, all in one set: the first taken is pushed out.
    const setOf = (id: number) => Math.imul(id >>> 0, 0x9e3779b1) >>> (32 - native.limits.flightSetBits);
    const same: number[] = [];
    for (let id = 100_000; same.length < native.limits.flightWays + 1; id++)
      if (setOf(id) === setOf(100_000)) same.push(id);
    const ids = Float64Array.from({ length: 700 }, (_, k) => k + 1);
    core.enqueueBatch('x.test', undefined, ids);
    core.enqueueBatch('y.test', undefined, Float64Array.from(same));
    expect(core.take('x.test', 0, 700)).toHaveLength(700);
    expect(core.take('y.test', 0, same.length)).toEqual(same);
    // What the table holds, read from it: the first of `same` was pushed out.
    const held = idsInTable(core);
    const missing = [...ids, ...same].filter((id) => !held.has(id));
    expect(missing).toContain(same[0]);
    const calls = crossings(() => {
      for (let k = 1; k <= 700; k++) {
        if (k % 10 === 0) core.defer(k, T0 + k);
        else core.settle(k);
      }
      for (const id of same) core.settle(id);
    });
    // Exactly the outcomes the table could not vouch for crossed on their own; the rest went over
    // in batches, the stage handed over when full (256) at least twice.
    expect(calls.settle + calls.defer).toBe(missing.length);
    expect(calls.applyOutcomes).toBeGreaterThanOrEqual(2);
    expect(core.stats()).toMatchObject({ inFlight: 0, delayed: 70, active: 0 });
    expect(core.message(1)).toBeUndefined();
    expect(core.message(700)).toMatchObject({ state: 'delayed', nextAttempt: T0 + 700 });
    expect(core.checkInvariants()).toBe(true);
  });
});

test('outcomes from inside a maintenance hook, and after close()', () => {
  const clock = { now: T0 };
  const core = coreAt(clock);
  core.enqueueBatch('x.test', undefined, Float64Array.of(1, 2, 3));
  core.take('x.test', 0, 2);
  let inside = false;
  let calls: Record<string, number> = {};
  core.hooks.mailQueueMaintain.registerFirst(() => {
    if (!inside) {
      inside = true;
      // Inside a pass nothing is staged: both cross at the call.
      calls = crossings(() => {
        core.settle(1);
        core.defer(2, T0 + 10);
      });
    }
    return 0;
  });
  core.maintain(T0);
  expect(inside).toBe(true);
  expect(calls).toEqual({ settle: 1, defer: 1, applyOutcomes: 0 });
  expect(core.stats()).toMatchObject({ inFlight: 0, delayed: 1 });
  expect(core.checkInvariants()).toBe(true);
  core.take('x.test', 0, 1);
  core.settle(3); // staged, then dropped with the core
  core.close();
  expect(() => core.settle(3)).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
  expect(() => core.defer(3, T0 + 1)).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
});

test('the flight table is memory JavaScript can write: garbage there or in staged entries crashes nothing', () => {
  const h = native.createCore(
    Float64Array.of(1, 0, 100, 0),
    Int32Array.of(-1),
    Float64Array.of(Infinity),
    new Float64Array(0),
  );
  try {
    const d = native.addDomain(h, Float64Array.of(32, 0.3, -1, 0), Infinity, new Float64Array(0));
    native.trackFlight(h);
    native.enqueueBatch(h, d, 0, Float64Array.of(1, 2, 3, 4), null, T0, Infinity, T0);
    const out = new Float64Array(4);
    expect(native.take(h, d, 0, T0, out)).toBe(4);
    const flight = new Float64Array(native.flightBuffer(h));
    const junk = [Number.NaN, -1, 2 ** 40, 1e300, -Infinity, 0.5, 3];
    for (let i = 0; i < flight.length; i++) flight[i] = junk[i % junk.length];
    // Entries whose handles are garbage are found by id; ones that name nothing in flight are
    // counted, not applied.
    const staged = Float64Array.of(
      Number.NaN,
      1,
      Number.NaN,
      -5,
      2,
      T0 + 10,
      2 ** 40,
      3,
      Number.NaN,
      0.5,
      77,
      Number.NaN,
      1e300,
      Number.NaN,
      Number.NaN,
      0,
      4,
      Infinity,
    );
    expect(native.applyOutcomes(h, staged, 6, T0)).toBe(3);
    const where = new Float64Array(7);
    expect(native.locate(h, 1, where)).toBe(0); // gone
    expect(native.locate(h, 2, where)).not.toBe(0);
    expect(where[2]).toBe(2); // delayed
    native.settle(h, 4); // still in flight: the refused defer to Infinity left it there
    expect(native.locate(h, 4, where)).toBe(0);
  } finally {
    native.destroyCore(h);
  }
});
