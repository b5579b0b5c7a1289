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
