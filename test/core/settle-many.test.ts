// The batched calls: settleMany() and deferMany() (outcomes, all or nothing), enqueueBatch with
// per-message times, and cancelMany() (cancel for a batch).
import { describe, expect, test } from 'vitest';

import { prng } from '../../examples/demo/protocol.js'; // the project's seeded PRNG: a failure repeats
import { MailQueueCore, MailQueueError } from '../../lib/index.js';

test('settleMany settles a batch taken into flight, and refuses a bad batch whole', () => {
  const core = new MailQueueCore({ clock: () => 1000 });
  try {
    core.enqueueBatch(
      'x.test',
      undefined,
      Float64Array.from({ length: 20 }, (_, i) => i + 1),
    );
    const out = new Float64Array(16);
    expect(core.takeInto('x.test', 0, out)).toBe(16);
    const before = core.stats();
    // 17 is still queued: the whole batch is refused and nothing changes.
    expect(() => core.settleMany(Float64Array.of(1, 2, 17))).toThrow(
      expect.objectContaining({ code: 'ERR_NOT_IN_FLIGHT' }),
    );
    expect(() => core.settleMany(Float64Array.of(1, 1))).toThrow(expect.objectContaining({ code: 'ERR_DUPLICATE_ID' }));
    expect(() => core.settleMany([1, 2] as unknown as Float64Array)).toThrow(TypeError);
    expect(core.stats()).toEqual(before);
    core.settleMany(out);
    expect(core.stats()).toMatchObject({ inFlight: 0, active: 4 });
    expect(core.message(1)).toBeUndefined();
    expect(core.checkInvariants()).toBe(true);
  } finally {
    core.close();
  }
});

test('deferMany defers a batch to one retry time, expires what could only retry after expiry, and refuses a bad batch whole', () => {
  let now = 1_000_000;
  const core = new MailQueueCore({ clock: () => now, config: { global: { messageExpiration: 60 } } });
  try {
    core.enqueueBatch(
      'x.test',
      undefined,
      Float64Array.from({ length: 10 }, (_, i) => i + 1),
    );
    const out = new Float64Array(6);
    expect(core.takeInto('x.test', 0, out)).toBe(6);
    const before = core.stats();
    expect(() => core.deferMany(Float64Array.of(1, 7), now + 1000)).toThrow(
      expect.objectContaining({ code: 'ERR_NOT_IN_FLIGHT' }),
    );
    expect(() => core.deferMany(Float64Array.of(2, 2), now + 1000)).toThrow(
      expect.objectContaining({ code: 'ERR_DUPLICATE_ID' }),
    );
    expect(() => core.deferMany(Float64Array.of(2), Infinity)).toThrow(RangeError);
    expect(core.stats()).toEqual(before);
    const bounced: number[] = [];
    core.on('bounce', (b: { id: number }) => bounced.push(b.id));
    core.deferMany(out.subarray(0, 3), now + 5000); // 1, 2, 3 wait in the delayed queue
    core.deferMany(out.subarray(3, 5), now + 120_000); // 4, 5: past the 60 s expiry
    core.deferMany(out.subarray(5, 6), now); // 6: due again at once
    expect(core.stats()).toMatchObject({ inFlight: 0, delayed: 3, active: 5 });
    expect(bounced).toEqual([4, 5]);
    expect(core.message(1)).toMatchObject({ state: 'delayed', nextAttempt: now + 5000, attempts: 1 });
    expect(core.message(6)).toMatchObject({ state: 'active', attempts: 1 });
    now += 5000;
    core.maintain();
    expect(core.stats()).toMatchObject({ delayed: 0, active: 8 });
    expect(core.checkInvariants()).toBe(true);
  } finally {
    core.close();
  }
});

test('enqueueBatch with one next-attempt time per message: due ones active in time order, later ones delayed', () => {
  const now = 5_000_000;
  const core = new MailQueueCore({ clock: () => now });
  try {
    const ids = Float64Array.of(1, 2, 3, 4, 5);
    const times = Float64Array.of(now - 10, now + 1000, now - 30, now, now + 10);
    core.enqueueBatch('x.test', undefined, ids, Uint8Array.of(0, 0, 0, 0, 1), times);
    expect(core.stats()).toMatchObject({ active: 3, delayed: 2 });
    expect(core.take('x.test', 0, 5)).toEqual([3, 1, 4]);
    expect(core.message(2)).toMatchObject({ state: 'delayed', nextAttempt: now + 1000 });
    expect(core.message(5)).toMatchObject({ state: 'delayed', priority: 1 });
    // A refused batch (one time not finite) leaves nothing behind.
    expect(() =>
      core.enqueueBatch('x.test', undefined, Float64Array.of(10, 11), undefined, Float64Array.of(now, NaN)),
    ).toThrow(RangeError);
    expect(core.message(10)).toBeUndefined();
    expect(core.checkInvariants()).toBe(true);
  } finally {
    core.close();
  }
});

// cancelMany(): cancel() for a batch in one native call. Unknown ids and repeats are skipped; an id
// in flight or not an id refuses the whole batch.
describe('cancelMany', () => {
  const T0 = 2_000_000;

  /** Everything a cancel could change: stats, the counters view, every queue, every id's place. */
  function stateOf(core: MailQueueCore, ids: Iterable<number>): unknown {
    return {
      stats: core.stats(),
      counters: Array.from(core.counters),
      queues: core.domains().flatMap((d) => core.bindings.map((b) => [d, b, core.activeQueue(d, b).toArray(5000)])),
      delayed: core.domains().map((d) => [d, core.domain(d).delayedSize]),
      messages: [...ids].map((id) => [id, core.message(id) ?? null]),
      invariants: core.checkInvariants(),
    };
  }

  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  /** x.test/a: 1..10 active (3 urgent); x.test/b: 11..12 active; 20..22 delayed; 1 and 2 taken into flight. */
  function fixture(): { core: MailQueueCore; ids: number[] } {
    const core = new MailQueueCore({ bindings: ['a', 'b'], clock: () => T0 });
    core.enqueueBatch('x.test', 'a', Float64Array.from(range(1, 10)), Uint8Array.of(0, 0, 1, 0, 0, 0, 0, 0, 0, 0));
    core.enqueueBatch('x.test', 'b', Float64Array.of(11, 12));
    core.enqueueBatch(
      'y.test',
      'a',
      Float64Array.of(20, 21, 22),
      undefined,
      Float64Array.of(T0 + 1000, T0 + 2000, T0 + 3000),
    );
    expect(core.take('x.test', 'a', 2)).toEqual([3, 1]); // the urgent one first
    return { core, ids: [...range(1, 12), 20, 21, 22, 99] };
  }

  test('returns how many it cancelled; unknown ids and repeats are skipped', () => {
    const { core } = fixture();
    try {
      const before = core.stats();
      // 4, 5 active; 20 delayed; 99 and 2^53-1 unknown; 4 and 20 repeated.
      expect(core.cancelMany(Float64Array.of(4, 99, 5, 4, 20, Number.MAX_SAFE_INTEGER, 20))).toBe(3);
      expect(core.stats()).toEqual({
        ...before,
        active: before.active - 2,
        delayed: before.delayed - 1,
        activeRemoved: before.activeRemoved + 2,
      });
      for (const id of [4, 5, 20]) expect(core.message(id)).toBeUndefined();
      // Nothing left to cancel among them: a second call counts 0 and changes nothing.
      const after = stateOf(core, range(1, 30));
      expect(core.cancelMany(Float64Array.of(4, 5, 20, 99, 0))).toBe(0);
      expect(stateOf(core, range(1, 30))).toEqual(after);
      expect(core.checkInvariants()).toBe(true);
    } finally {
      core.close();
    }
  });

  test('active messages (lazily) and delayed ones are cancelled and gone, as cancel() leaves them', () => {
    const { core, ids } = fixture();
    const twin = fixture().core;
    try {
      const batch = [2, 6, 11, 21, 10]; // (1 and 3 are in flight)
      expect(core.message(2)?.state).toBe('active');
      expect(core.cancelMany(Float64Array.from(batch))).toBe(5);
      for (const id of batch) expect(twin.cancel(id)).toBe(true);
      expect(stateOf(core, ids)).toEqual(stateOf(twin, ids));
      for (const id of batch) expect(core.message(id)).toBeUndefined();
      expect(core.activeQueue('x.test', 'a').toArray()).toEqual([4, 5, 7, 8, 9]);
      expect(core.activeQueue('x.test', 'b').toArray()).toEqual([12]);
      expect(core.domain('y.test').delayedSize).toBe(2);
      expect(core.stats()).toMatchObject({ active: 6, delayed: 2, inFlight: 2 });
      expect(core.counters[core.counterIndex['active:a']]).toBe(5);
      expect(core.counters[core.counterIndex['active:b']]).toBe(1);
      // take() serves the live ones in order, past the dead entries.
      expect(core.take('x.test', 'a', 10)).toEqual([4, 5, 7, 8, 9]);
      expect(core.take('x.test', 'b', 10)).toEqual([12]);
      expect(core.checkInvariants()).toBe(true);
    } finally {
      core.close();
      twin.close();
    }
  });

  test('an id in flight refuses the whole batch, which changes nothing', () => {
    const { core, ids } = fixture();
    try {
      const before = stateOf(core, ids);
      const refused = (batch: number[], at: number) => {
        let err: (Error & { code?: string }) | undefined;
        try {
          core.cancelMany(Float64Array.from(batch));
        } catch (e) {
          err = e as Error & { code?: string };
        }
        expect(err, `cancelMany([${batch}]) must throw`).toBeInstanceOf(Error);
        expect(err!.constructor).toBe(MailQueueError);
        expect(err!.code).toBe('ERR_IN_FLIGHT');
        expect(err!.message).toMatch(new RegExp(`^ids\\[${at}\\]`));
        expect(stateOf(core, ids)).toEqual(before);
      };
      refused([1], 0);
      refused([4, 20, 11, 3, 5], 3); // active, delayed, active on b, then in flight
      refused([99, 4, 4, 20, 1, 3], 4); // unknown and repeated ids before it
      refused([2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3], 11); // past the prefetch distance
      refused([3, 5], 0);
      // A bad id after the in-flight one: the first bad entry is the one named.
      refused([5, 1, NaN], 1);
      expect(core.checkInvariants()).toBe(true);
      // Once the messages are settled, the same ids cancel what is queued.
      core.settleMany(Float64Array.of(1, 3));
      expect(core.cancelMany(Float64Array.of(4, 20, 11, 3, 5))).toBe(4);
      expect(core.checkInvariants()).toBe(true);
    } finally {
      core.close();
    }
  });

  test('an id that is not a safe integer from 0 to 2^53-1 refuses the whole batch with a RangeError', () => {
    const { core, ids } = fixture();
    try {
      const before = stateOf(core, ids);
      const cases: Array<[number[], number]> = [
        [[NaN], 0],
        [[4, 5, -1], 2],
        [[4, 0.5, 5], 1],
        [[20, 11, 2 ** 53], 2],
        [[Infinity], 0],
        [[-Infinity, 1], 0],
        [[4, 99, 4, -0.5], 3],
        [[...range(4, 12), 1e300], 9], // past the prefetch distance
        [[4, NaN, 1], 1], // the bad id comes before the in-flight one
      ];
      for (const [batch, at] of cases) {
        expect(() => core.cancelMany(Float64Array.from(batch)), `[${batch}]`).toThrow(RangeError);
        expect(() => core.cancelMany(Float64Array.from(batch))).toThrow(
          new RegExp(`^ids\\[${at}\\] must be a safe integer`),
        );
        expect(stateOf(core, ids), `[${batch}]`).toEqual(before);
      }
      expect(() => core.cancelMany([4, 5] as unknown as Float64Array)).toThrow(TypeError);
      expect(() => core.cancelMany(Float32Array.of(4) as unknown as Float64Array)).toThrow(TypeError);
      expect(() => core.cancelMany(undefined as unknown as Float64Array)).toThrow(TypeError);
      expect(stateOf(core, ids)).toEqual(before);
    } finally {
      core.close();
    }
  });

  test('an empty batch returns 0 and changes nothing; a subarray cancels only the ids it views', () => {
    const { core, ids } = fixture();
    try {
      const before = stateOf(core, ids);
      expect(core.cancelMany(new Float64Array(0))).toBe(0);
      const all = Float64Array.of(4, 5, 6, 7, 1, 20);
      expect(core.cancelMany(all.subarray(4, 4))).toBe(0);
      expect(stateOf(core, ids)).toEqual(before);
      expect(core.cancelMany(all.subarray(1, 3))).toBe(2); // 5 and 6: not 4, nor 1 in flight
      expect(core.message(4)?.state).toBe('active');
      expect(core.message(5)).toBeUndefined();
      expect(core.message(6)).toBeUndefined();
      expect(core.message(7)?.state).toBe('active');
      expect(core.checkInvariants()).toBe(true);
    } finally {
      core.close();
    }
  });

  test('a cancelled id can be enqueued again, while its dead entry may still be queued', () => {
    const { core } = fixture();
    try {
      expect(core.cancelMany(Float64Array.of(4, 5, 21))).toBe(3);
      core.enqueue({ id: 4, domain: 'x.test', binding: 'a' }); // same queue: at the back
      core.enqueue({ id: 5, domain: 'z.test', binding: 'b', priority: 1 });
      core.enqueue({ id: 21, domain: 'x.test', binding: 'b', nextAttempt: T0 + 500 });
      expect(core.message(4)).toMatchObject({ domain: 'x.test', binding: 'a', state: 'active', attempts: 0 });
      expect(core.message(5)).toMatchObject({ domain: 'z.test', binding: 'b', state: 'active', priority: 1 });
      expect(core.message(21)).toMatchObject({ domain: 'x.test', state: 'delayed', nextAttempt: T0 + 500 });
      expect(core.activeQueue('x.test', 'a').toArray()).toEqual([2, 6, 7, 8, 9, 10, 4]);
      expect(core.checkInvariants()).toBe(true);
      // ... and cancelled again, the new message this time.
      expect(core.cancelMany(Float64Array.of(4, 5, 21))).toBe(3);
      expect(core.activeQueue('x.test', 'a').toArray()).toEqual([2, 6, 7, 8, 9, 10]);
      expect(core.activeQueue('z.test', 'b').size).toBe(0);
      expect(core.take('x.test', 'a', 10)).toEqual([2, 6, 7, 8, 9, 10]);
      expect(core.checkInvariants()).toBe(true);
    } finally {
      core.close();
    }
  });

  test('a batch that cancels most of a long queue (purges during the call) leaves it in order', () => {
    const core = new MailQueueCore({ clock: () => T0 });
    try {
      const n = 2000;
      const prios = Uint8Array.from({ length: n }, (_, i) => (i % 11 === 0 ? 1 : 0));
      core.enqueueBatch('x.test', undefined, Float64Array.from(range(1, n)), prios);
      const order = core.activeQueue('x.test', 0).toArray(n);
      const gone = order.filter((_, i) => i % 10 !== 3);
      const before = core.stats();
      expect(core.cancelMany(Float64Array.from(gone))).toBe(gone.length);
      const kept = order.filter((_, i) => i % 10 === 3);
      expect(core.stats()).toMatchObject({ active: kept.length, activeRemoved: before.activeRemoved + gone.length });
      expect(core.activeQueue('x.test', 0).toArray(n)).toEqual(kept);
      expect(core.checkInvariants()).toBe(true);
      expect(core.cancelMany(Float64Array.from(kept))).toBe(kept.length);
      expect(core.activeQueue('x.test', 0).size).toBe(0);
      expect(core.stats().active).toBe(0);
      expect(core.checkInvariants()).toBe(true);
    } finally {
      core.close();
    }
  });

  test('agrees with a loop of cancel() on a twin core, for random batches among random traffic', () => {
    const rnd = prng(0x5eed_18);
    const int = (n: number) => Math.floor(rnd() * n);
    let now = T0;
    const options = () => ({
      bindings: ['a', 'b', 'c'],
      clock: () => now,
      config: { global: { messageExpiration: 30 } },
    });
    const core = new MailQueueCore(options());
    const twin = new MailQueueCore(options());
    const domains = ['d0.test', 'd1.test', 'd2.test'];
    const ID_RANGE = 160;
    const all = range(0, ID_RANGE - 1);
    // The same call on both cores (f must not draw random numbers: it runs twice).
    const both = <T>(f: (c: MailQueueCore) => T): T => {
      const a = f(core);
      expect(f(twin)).toEqual(a);
      return a;
    };
    let refusedInFlight = 0;
    let refusedBad = 0;
    let cancelled = 0;
    try {
      domains.forEach((d, i) => {
        both((c) => c.enqueue({ id: i, domain: d }));
      });
      for (let step = 0; step < 400; step++) {
        const what = int(10);
        if (what < 3) {
          // Enqueue fresh (or lately cancelled) ids: due now, later, or urgent.
          const free = all.filter((id) => twin.message(id) === undefined);
          const ids = Array.from({ length: int(12) }, () => free[int(free.length)]).filter(
            (x, i, a) => x !== undefined && a.indexOf(x) === i,
          );
          const d = domains[int(3)];
          const b = int(3);
          const times = Float64Array.from(ids, () => (int(3) === 0 ? now + 250 * (1 + int(8)) : now));
          const prios = Uint8Array.from(ids, () => (int(4) === 0 ? 1 : 0));
          both((c) => c.enqueueBatch(d, c.bindings[b], Float64Array.from(ids), prios, times));
        } else if (what === 3) {
          const [d, b, k] = [domains[int(3)], int(3), 1 + int(4)];
          both((c) => c.take(d, b, k));
        } else if (what === 4) {
          const inFlight = all.filter((id) => twin.message(id)?.state === 'in-flight');
          if (inFlight.length > 0) {
            const id = inFlight[int(inFlight.length)];
            const later = now + 250 * int(6);
            if (int(2) === 0) both((c) => c.settle(id));
            else both((c) => c.defer(id, later));
          }
        } else if (what === 5) {
          now += 250 * int(8);
          both((c) => c.maintain().grants.length);
        } else {
          // A batch: mostly known ids, some unknown, some repeated; now and then an id in flight
          // or a bad one, which refuses it.
          const inFlight = all.filter((id) => twin.message(id)?.state === 'in-flight');
          const n = int(3) === 0 ? int(60) : int(10);
          const batch: number[] = [];
          for (let i = 0; i < n; i++) {
            const r = int(20);
            if (r < 2 && batch.length > 0) batch.push(batch[int(batch.length)]);
            else batch.push(int(ID_RANGE + 20)); // a few beyond the range: unknown
          }
          // Without the in-flight ones, unless this batch is to be refused.
          const spoil = int(6);
          const clean = batch.filter((id) => twin.message(id)?.state !== 'in-flight');
          const ids =
            spoil === 0 && inFlight.length > 0
              ? [
                  ...clean.slice(0, int(clean.length + 1)),
                  inFlight[int(inFlight.length)],
                  ...clean.slice(int(clean.length + 1)),
                ]
              : spoil === 1
                ? [...clean, [NaN, -1, 0.5, 2 ** 53, Infinity][int(5)], ...clean.slice(0, int(4))]
                : clean;
          // The twin: cancel() per id, after finding the first entry that refuses the batch.
          let bad = -1;
          let badKind = '';
          for (let i = 0; i < ids.length && bad < 0; i++) {
            if (!Number.isSafeInteger(ids[i]) || ids[i] < 0) [bad, badKind] = [i, 'range'];
            else if (twin.message(ids[i])?.state === 'in-flight') [bad, badKind] = [i, 'in-flight'];
          }
          const before = stateOf(core, all);
          if (bad >= 0) {
            let err: (Error & { code?: string }) | undefined;
            try {
              core.cancelMany(Float64Array.from(ids));
            } catch (e) {
              err = e as Error & { code?: string };
            }
            expect(err, `step ${step}: cancelMany([${ids}]) must be refused`).toBeDefined();
            expect(err!.message).toMatch(new RegExp(`^ids\\[${bad}\\]`));
            if (badKind === 'range') {
              expect(err).toBeInstanceOf(RangeError);
              refusedBad++;
            } else {
              expect(err!.code).toBe('ERR_IN_FLIGHT');
              refusedInFlight++;
            }
            expect(stateOf(core, all), `step ${step}: a refused batch changes nothing`).toEqual(before);
          } else {
            let want = 0;
            for (const id of ids) if (twin.cancel(id)) want++;
            expect(core.cancelMany(Float64Array.from(ids)), `step ${step}: cancelMany([${ids}])`).toBe(want);
            cancelled += want;
          }
        }
        expect(stateOf(core, all), `step ${step}`).toEqual(stateOf(twin, all));
      }
      // The walk reached every case.
      expect(cancelled).toBeGreaterThan(100);
      expect(refusedInFlight).toBeGreaterThan(5);
      expect(refusedBad).toBeGreaterThan(5);
    } finally {
      core.close();
      twin.close();
    }
  });
});
