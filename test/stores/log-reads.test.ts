// LogSpool's delivery reads (decision 43): load() of messages no longer cached reads the log in
// windows (one read serves the messages stored after the one asked for, each checked against its
// CRC); removals ride the group of their turn; the cache's eviction. Real files in a temporary
// directory.
import fs from 'node:fs';
import path from 'node:path';

import { describe, expect, test } from 'vitest';

import { BodyCache, type CachedMessage } from '../../lib/store/body_cache.js';
import { segmentName } from '../../lib/store/log_format.js';
import { WINDOW_BYTES } from '../../lib/store/log_read_window.js';
import { LogSpool } from '../../lib/store/log_spool.js';
import type { StoredMessage } from '../../lib/store/message_store.js';
import { SpoolCorruptError } from '../../lib/store/spool_format.js';
import { tempDirs } from '../support/temp_dirs.js';

const tempDir = tempDirs('mqc-logr');

function msg(id: number): StoredMessage {
  return { id, domain: 'example.com', envelope: { from: `s${id}@o.example`, to: [`r${id}@example.com`] } };
}

/** A body of 1-3 KB whose bytes say which message it is. */
function bodyOf(id: number): Buffer {
  return Buffer.from(`X-Id: ${id}\r\n\r\n${String(id % 10).repeat(1000 + ((id * 7919) % 2000))}\r\n`);
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A LogSpool in `dir` holding messages 1..n. */
async function spoolOf(dir: string, n: number): Promise<LogSpool> {
  const spool = new LogSpool(dir);
  await Promise.all(Array.from({ length: n }, (_, i) => spool.put(msg(i + 1), bodyOf(i + 1))));
  return spool;
}

/** The ids a new LogSpool on `dir` lists (what survived), in order. */
async function idsAfterReopen(dir: string): Promise<number[]> {
  const again = new LogSpool(dir);
  const ids: number[] = [];
  for await (const m of again.list()) ids.push(m.id);
  await again.close();
  return ids.sort((a, b) => a - b);
}

describe('load() reads the log in windows', () => {
  test('messages not in the cache: every body exact, one read serving many, several readers at once', async () => {
    const dir = tempDir('windows');
    const spool = new LogSpool(dir, { cacheBytes: 0 });
    const n = 600;
    await Promise.all(Array.from({ length: n }, (_, i) => spool.put(msg(i + 1), bodyOf(i + 1))));
    const big = Buffer.alloc(WINDOW_BYTES * 3 + 17, 0x62);
    await spool.put(msg(n + 1), big);
    // Eight "connections", each loading the next message in order, as a backlog is delivered.
    let next = 1;
    const seen: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next <= n) {
          const id = next++;
          const m = (await spool.load(id)) as CachedMessage;
          expect(m.body.equals(bodyOf(id))).toBe(true);
          expect(m.envelope).toEqual(msg(id).envelope);
          seen.push(id);
          await turn();
        }
      }),
    );
    expect(seen).toHaveLength(n);
    // About 1.2 MB of log in windows of 256 KB: a handful of reads, not one a message.
    expect(spool.stats.windowReads).toBeGreaterThan(0);
    expect(spool.stats.windowReads).toBeLessThan(n / 20);
    // A message in a window already read comes back at once, not as a promise.
    const again = spool.load(2);
    expect(again).not.toBeInstanceOf(Promise);
    expect((again as CachedMessage).body.equals(bodyOf(2))).toBe(true);
    // A body larger than a window is read whole.
    expect(((await spool.load(n + 1)) as CachedMessage).body.equals(big)).toBe(true);
    // Random order: still exact.
    for (const id of [17, 3, 599, 250, 251, 1])
      expect(((await spool.load(id)) as CachedMessage).body.equals(bodyOf(id))).toBe(true);
    await spool.close();
  });

  test('a body damaged on disk is refused by load() with a SpoolCorruptError; its neighbours in the window load', async () => {
    const dir = tempDir('damaged');
    const spool = new LogSpool(dir, { cacheBytes: 0 });
    for (let id = 1; id <= 3; id++) await spool.put(msg(id), bodyOf(id));
    // Damage a byte in the middle of message 2's body: find it by its content.
    const file = path.join(dir, segmentName(1));
    const bytes = fs.readFileSync(file);
    const at = bytes.indexOf(bodyOf(2)) + 500;
    expect(at).toBeGreaterThan(500);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from('Z'), 0, 1, at);
    fs.closeSync(fd);
    expect(((await spool.load(1)) as CachedMessage).body.equals(bodyOf(1))).toBe(true);
    await expect(spool.load(2)).rejects.toBeInstanceOf(SpoolCorruptError);
    await expect(spool.load(2)).rejects.toThrow(/the body of id 2 at byte \d+ fails its CRC/);
    expect(((await spool.load(3)) as CachedMessage).body.equals(bodyOf(3))).toBe(true);
    expect(spool.stats.windowReads).toBe(1);
    await spool.close();
  });

  test('after compaction moved messages to a new segment, load() reads them there', async () => {
    const dir = tempDir('compacted');
    const spool = new LogSpool(dir, { cacheBytes: 0, segmentBytes: 64 * 1024 });
    const n = 400;
    for (let i = 0; i < n; i += 50)
      await Promise.all(Array.from({ length: 50 }, (_, k) => spool.put(msg(i + k + 1), bodyOf(i + k + 1))));
    // Read the oldest messages once, so that windows of the first segments are held.
    for (let id = 1; id <= 20; id++) await spool.load(id);
    // Keep every tenth message; the rest removed, so that compaction moves the survivors.
    for (let id = 1; id <= n; id++) if (id % 10 !== 0) await spool.remove(id);
    for (let i = 0; i < 500 && spool.stats.compactions === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(spool.stats.compactions).toBeGreaterThan(0);
    for (let id = 10; id <= n; id += 10)
      expect(((await spool.load(id)) as CachedMessage).body.equals(bodyOf(id))).toBe(true);
    expect(await spool.load(11)).toBeUndefined();
    await spool.close();
    // And after a restart.
    const again = new LogSpool(dir, { cacheBytes: 0 });
    for (let id = 10; id <= n; id += 10)
      expect(((await again.load(id)) as CachedMessage).body.equals(bodyOf(id))).toBe(true);
    await again.close();
  });
});

describe('removals: at once, or with the group being written', () => {
  test('removals with no group running are written at once; during a group, they wait for the next; close() writes those still queued', async () => {
    const dir = tempDir('ride');
    const spool = await spoolOf(dir, 300);
    const before = spool.stats;
    const more: Promise<void>[] = [];
    for (let id = 1; id <= 20; id++) more.push(spool.remove(id));
    // Written before remove() returned: no group, no sync of their own (decision 52).
    expect(spool.stats.direct - before.direct).toBe(20);
    await Promise.all(more);
    expect(spool.stats.groups - before.groups).toBe(0);
    const put = spool.put(msg(1000), bodyOf(1000));
    // The put's group has started once a turn of the event loop has passed.
    await turn();
    const during = spool.stats;
    for (let id = 21; id <= 40; id++) more.push(spool.remove(id));
    expect(spool.stats.direct).toBe(during.direct);
    await put;
    await Promise.all(more);
    expect(spool.stats.syncs - before.syncs).toBe(1); // the put's; the removals have none
    for (let id = 41; id <= 230; id++) void spool.remove(id);
    await spool.close();
    expect(await idsAfterReopen(dir)).toEqual([...Array.from({ length: 70 }, (_, i) => 231 + i), 1000]);
  });
});

describe('removeNow(): no promise when the record is written at once', () => {
  test("undefined with no group running (gone, and gone after a restart); the group's promise while one is written; a put in progress is waited for", async () => {
    const dir = tempDir('remove-now');
    const spool = await spoolOf(dir, 10);
    const before = spool.stats;
    expect(spool.removeNow(1)).toBeUndefined();
    expect(spool.stats.direct - before.direct).toBe(1);
    expect(await spool.get(1)).toBeUndefined();
    // A group being written: the removal waits for the next one.
    const put = spool.put(msg(100), bodyOf(100));
    await turn();
    const during = spool.removeNow(2);
    expect(during).toBeInstanceOf(Promise);
    await put;
    await during;
    expect(await spool.get(2)).toBeUndefined();
    // The put of the id itself in progress: removeNow() waits for it, as remove() does.
    const late = spool.put(msg(200), bodyOf(200));
    const afterPut = spool.removeNow(200);
    expect(afterPut).toBeInstanceOf(Promise);
    await late;
    await afterPut;
    expect(await spool.get(200)).toBeUndefined();
    await spool.close();
    expect(await idsAfterReopen(dir)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 100]);
  });
});

describe('BodyCache', () => {
  const m = (n: number): CachedMessage => ({ envelope: { from: 'a@b', to: ['c@d'] }, body: Buffer.alloc(n) });
  // costOf: body + from (3) + 64 + each recipient (3) + 16 = body + 86.
  test('evicts the oldest kept first, with deletions and keeps again in between; stays within its bound', () => {
    const c = new BodyCache(10 * (100 + 86));
    for (let id = 1; id <= 10; id++) c.set(id, m(100));
    expect(c.size).toBe(10);
    c.delete(3);
    c.set(11, m(100)); // room for it: nothing evicted
    expect(c.get(1)).toBeDefined();
    c.set(12, m(100)); // over by one: 1 goes
    expect(c.get(1)).toBeUndefined();
    expect(c.get(2)).toBeDefined();
    c.set(13, m(250)); // 2 and 4 go (3 was deleted)
    expect([2, 4, 5].map((id) => c.get(id) !== undefined)).toEqual([false, false, true]);
    expect(c.bytes).toBeLessThanOrEqual(c.maxBytes);
    // Churn: a million keeps and deletions; the bound holds and the newest are kept.
    for (let id = 100; id < 1_000_100; id++) {
      c.set(id, m(100));
      if (id % 3 !== 0) c.delete(id);
    }
    expect(c.bytes).toBeLessThanOrEqual(c.maxBytes);
    expect(c.get(1_000_098)).toBeDefined();
    expect(c.get(1_000_096)).toBeUndefined(); // deleted
    expect(c.size).toBeLessThanOrEqual(10);
  });
});
