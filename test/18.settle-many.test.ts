// settleMany(): the batched outcome call, all or nothing.
import { expect, test } from 'vitest';

import { MailQueueCore } from '../lib/index.js';

test('settleMany settles a batch taken into flight, and refuses a bad batch whole', () => {
  const core = new MailQueueCore({ clock: () => 1000 });
  try {
    core.enqueueBatch('x.test', undefined, Float64Array.from({ length: 20 }, (_, i) => i + 1));
    const out = new Float64Array(16);
    expect(core.takeInto('x.test', 0, out)).toBe(16);
    const before = core.stats();
    // 17 is still queued: the whole batch is refused and nothing changes.
    expect(() => core.settleMany(Float64Array.of(1, 2, 17))).toThrow(expect.objectContaining({ code: 'ERR_NOT_IN_FLIGHT' }));
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
    core.enqueueBatch('x.test', undefined, Float64Array.from({ length: 10 }, (_, i) => i + 1));
    const out = new Float64Array(6);
    expect(core.takeInto('x.test', 0, out)).toBe(6);
    const before = core.stats();
    expect(() => core.deferMany(Float64Array.of(1, 7), now + 1000)).toThrow(expect.objectContaining({ code: 'ERR_NOT_IN_FLIGHT' }));
    expect(() => core.deferMany(Float64Array.of(2, 2), now + 1000)).toThrow(expect.objectContaining({ code: 'ERR_DUPLICATE_ID' }));
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
    expect(() => core.enqueueBatch('x.test', undefined, Float64Array.of(10, 11), undefined, Float64Array.of(now, NaN))).toThrow(RangeError);
    expect(core.message(10)).toBeUndefined();
    expect(core.checkInvariants()).toBe(true);
  } finally {
    core.close();
  }
});
