// newId(): rising safe-integer ids for an MTA without numeric ids of its own. They must rise within
// a run, start above every id the core holds (queued, staged or recovered), keep rising across a
// restart by the clock, and be taken by the staged arrival path.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from 'vitest';

import { FileSpool, MailQueueCore } from '../../lib/index.js';
import { ID_EPOCH_MS, IDS_PER_MS } from '../../lib/core/id_allocator.js';

const NOW = Date.UTC(2026, 11, 7, 9, 0, 0);

test('ids rise within a run, 4096 a millisecond, then borrow from the next millisecond', () => {
  let now = NOW;
  const core = new MailQueueCore({ clock: () => now });
  try {
    const first = core.newId();
    expect(first).toBe((NOW - ID_EPOCH_MS) * IDS_PER_MS);
    const ids = Array.from({ length: 5000 }, () => core.newId());
    expect(ids[0]).toBe(first + 1);
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBe(ids[i - 1] + 1);
    // More than 4096 in one ms ran into the next ms's ids; once the clock passes them, ids follow it.
    now += 1000;
    expect(core.newId()).toBe((now - ID_EPOCH_MS) * IDS_PER_MS);
    for (const id of ids) expect(Number.isSafeInteger(id)).toBe(true);
  } finally {
    core.close();
  }
});

test('ids start above every id the core holds or has staged, whatever the clock says', () => {
  const core = new MailQueueCore({ clock: () => 5000 }); // a clock before 2020: the time part is 0
  try {
    expect(core.newId()).toBe(1); // highestId is 0 before the first message: ids start at 1
    core.enqueue({ id: 2 ** 50, domain: 'x.test' }); // straight to the core (the domain is new)
    expect(core.newId()).toBe(2 ** 50 + 1);
    core.enqueue({ id: 2 ** 51, domain: 'x.test' }); // staged: not in the core's counter yet
    expect(core.newId()).toBe(2 ** 51 + 1);
    core.enqueueBatch('x.test', undefined, Float64Array.of(2 ** 52));
    expect(core.newId()).toBe(2 ** 52 + 1);
    core.close();
    expect(() => core.newId()).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
  } finally {
    core.close();
  }
});

test('new ids are staged: a burst of enqueues with newId() reaches the core in one hand-over', () => {
  const core = new MailQueueCore();
  try {
    core.enqueue({ id: core.newId(), domain: 'x.test' });
    const highest = core.counters[core.counterIndex.highestId];
    const ids = Array.from({ length: 100 }, () => core.newId());
    for (const id of ids) core.enqueue({ id, domain: 'x.test' });
    // Staged: counted at once, but the core's highestId moves only when they are handed over.
    expect(core.counters[core.counterIndex.active]).toBe(101);
    expect(core.counters[core.counterIndex.highestId]).toBe(highest);
    expect(core.listQueue('x.test', { limit: 200 }).map((m) => m.id)).toEqual([highest, ...ids]);
    expect(core.counters[core.counterIndex.highestId]).toBe(ids[99]);
  } finally {
    core.close();
  }
});

test('after a restart, ids start above every id recovered from the store, even with a clock that went back', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-newid-'));
  try {
    const first = new MailQueueCore({ store: new FileSpool(dir), clock: () => NOW });
    const made: number[] = [];
    for (let i = 0; i < 20; i++) {
      const id = first.newId();
      made.push(id);
      await first.submit(
        { id, domain: 'x.test', envelope: { from: 'a@b.test', to: ['c@x.test'] } },
        Buffer.from('x\r\n'),
      );
    }
    first.close();
    // The clock is an hour behind the first run's now.
    const second = new MailQueueCore({ store: new FileSpool(dir), clock: () => NOW - 3_600_000 });
    try {
      expect(await second.recover()).toBe(20);
      const next = second.newId();
      expect(next).toBe(Math.max(...made) + 1);
    } finally {
      second.close();
    }
    // A restart with the clock moved on starts at the clock's ids, above the first run's.
    const third = new MailQueueCore({ clock: () => NOW + 1 });
    try {
      expect(third.newId()).toBeGreaterThan(Math.max(...made));
    } finally {
      third.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
