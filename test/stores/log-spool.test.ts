// LogSpool beyond the contract suite (stores.test.ts): its segment files, replay after a restart
// (retry states, removals), group commit counted in syncs, torn and damaged records reported and
// never delivered, compaction bounding the disk, and a writer of puts and outcomes SIGKILLed at
// random moments (the child, test/fixtures/log-crash.mjs, runs lib/store/log_spool.ts compiled).
import fs from 'node:fs';
import path from 'node:path';

import { beforeAll, describe, expect, test } from 'vitest';

import { HEAD_BYTES, MAGIC, PUT, segmentName } from '../../lib/store/log_format.js';
import { LogSpool } from '../../lib/store/log_spool.js';
import type { MessageStore, StoredMessage } from '../../lib/store/message_store.js';
import { SpoolCorruptError } from '../../lib/store/spool_format.js';
import { tempDirs } from '../support/temp_dirs.js';
import { compileStore, crashBodyProblem, crashMessage, root, runAndKill, seeded } from '../support/crash_child.js';

const tempDir = tempDirs('mqc-log');

function msg(id: number, extra: Partial<StoredMessage> = {}): StoredMessage {
  return { id, domain: 'example.com', envelope: { from: `s${id}@o.example`, to: [`r${id}@example.com`] }, ...extra };
}

async function collect(store: MessageStore): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  for await (const m of store.list()) out.push(m);
  return out;
}

const segments = (dir: string): string[] =>
  fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.seg'))
    .sort();

/** A LogSpool whose reports are collected. */
function open(dir: string, segmentBytes?: number): { spool: LogSpool; reports: string[] } {
  const reports: string[] = [];
  const spool = new LogSpool(dir, {
    segmentBytes,
    onCorrupt: (f, e) => {
      expect(e).toBeInstanceOf(SpoolCorruptError);
      reports.push(`${path.basename(f)}: ${e.message}`);
    },
  });
  return { spool, reports };
}

describe('LogSpool', () => {
  test('constructor arguments', () => {
    expect(() => new LogSpool(5 as unknown as string)).toThrow(/^dir must be a string, got number/);
    expect(() => new LogSpool('')).toThrow(RangeError);
    expect(() => new LogSpool('x', { segmentBytes: 100 })).toThrow(
      /^options\.segmentBytes must be an integer from 4096/,
    );
    expect(() => new LogSpool('x', { segmentBytes: 1.5 })).toThrow(RangeError);
    expect(() => new LogSpool('x', { onCorrupt: 3 as never })).toThrow(TypeError);
    expect(() => new LogSpool('x', { fileMode: -1 })).toThrow(/^options\.fileMode/);
    expect(() => new LogSpool('x', { sync: false } as never)).toThrow(/^options: unknown key "sync"/);
  });

  test('records are appended to <dir>/<seq>.seg, mode 0600; a new segment at each open', async () => {
    const dir = tempDir('layout');
    const { spool } = open(dir);
    await spool.put(msg(7), Buffer.from('body seven'));
    await spool.close();
    expect(segments(dir)).toEqual([segmentName(1)]);
    const data = fs.readFileSync(path.join(dir, segmentName(1)));
    expect(fs.statSync(path.join(dir, segmentName(1))).mode & 0o777).toBe(0o600);
    expect(data.readUInt32LE(0)).toBe(MAGIC);
    expect(data.subarray(0, 4).toString('latin1')).toBe('MQL1');
    expect(data.readUInt8(4)).toBe(PUT);
    expect(data.readDoubleLE(16)).toBe(7);
    const metaLen = data.readUInt32LE(8);
    expect(JSON.parse(data.toString('utf8', HEAD_BYTES, HEAD_BYTES + metaLen))).toEqual(msg(7));
    expect(data.subarray(HEAD_BYTES + metaLen).toString()).toBe('body seven');
    const again = open(dir);
    expect(await collect(again.spool)).toEqual([msg(7)]);
    await again.spool.close();
    // The empty segment the first reopen created is deleted by the next one.
    expect(segments(dir)).toEqual([segmentName(1), segmentName(2)]);
    const third = open(dir);
    await third.spool.open();
    expect(segments(dir)).toEqual([segmentName(1), segmentName(3)]);
    await third.spool.close();
  });

  test('a reopened spool has every message, removal and the latest retry state', async () => {
    const dir = tempDir('replay');
    const { spool } = open(dir);
    for (let id = 1; id <= 20; id++)
      await spool.put(msg(id, id === 3 ? { attempts: 2, nextAttempt: 5 } : {}), Buffer.from(`b${id}`));
    await spool.setRetryState(3, { attempts: 4, nextAttempt: 1_700_000_000_123 });
    await spool.setRetryState(5, { attempts: 1, nextAttempt: 10 });
    await spool.setRetryState(5, { attempts: 2, nextAttempt: 20 });
    await spool.setRetryState(999, { attempts: 1, nextAttempt: 1 }); // unknown: ignored
    for (const id of [2, 4, 6]) await spool.remove(id);
    await spool.put(msg(4), Buffer.from('again')); // put after remove: no state
    await spool.setRetryState(6, { attempts: 9, nextAttempt: 9 }); // removed: ignored
    const before = await collect(spool);
    await spool.close();
    const { spool: s2, reports } = open(dir);
    const after = await collect(s2);
    expect(after).toEqual(before);
    expect(reports).toEqual([]);
    expect(after.map((m) => m.id)).toEqual([1, 3, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 4]);
    expect(await s2.get(3)).toEqual(msg(3, { attempts: 4, nextAttempt: 1_700_000_000_123 }));
    expect(await s2.get(5)).toEqual(msg(5, { attempts: 2, nextAttempt: 20 }));
    expect(await s2.get(4)).toEqual(msg(4));
    expect((await s2.body(4)).toString()).toBe('again');
    expect(await s2.get(999)).toBeUndefined();
    await s2.close();
  });

  test('group commit: one fdatasync per put alone, shared by concurrent puts; outcomes add none', async () => {
    const dir = tempDir('groups');
    const { spool } = open(dir);
    const body = Buffer.alloc(4096, 0x61);
    for (let id = 0; id < 20; id++) await spool.put(msg(id), body);
    expect(spool.stats.syncs).toBe(20);
    await Promise.all(Array.from({ length: 640 }, (_, i) => spool.put(msg(100 + i), body)));
    const afterPuts = spool.stats.syncs;
    expect(afterPuts - 20).toBeLessThanOrEqual(640 / 8);
    await Promise.all(Array.from({ length: 300 }, (_, i) => spool.remove(100 + i)));
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => spool.setRetryState(500 + i, { attempts: 1, nextAttempt: i })),
    );
    for (let id = 0; id < 10; id++) await spool.remove(id);
    expect(spool.stats.syncs).toBe(afterPuts);
    // The removals ride the next group: its fdatasync covers them.
    await spool.put(msg(5000), body);
    expect(spool.stats.syncs).toBe(afterPuts + 1);
    expect(spool.stats.messages).toBe(20 + 640 - 300 - 10 + 1);
    await spool.close();
  });

  test('a torn tail is reported, cut, and never delivered; the records before it are intact', async () => {
    const base = tempDir('torn');
    const { spool } = open(path.join(base, 'orig'));
    const bodies = Array.from({ length: 12 }, (_, i) => Buffer.alloc(1000 + i * 300, 0x30 + i));
    for (let i = 0; i < bodies.length; i++) await spool.put(msg(i), bodies[i]);
    await spool.close();
    const file = segmentName(1);
    const whole = fs.readFileSync(path.join(base, 'orig', file));
    // Offsets of the records: the last one starts where the first eleven end.
    const lastStart = whole.length - (HEAD_BYTES + JSON.stringify(msg(11)).length + bodies[11].length);
    const rand = seeded(Date.now());
    const cuts = [lastStart + 1, lastStart + 20, lastStart + HEAD_BYTES + 5, whole.length - 1];
    for (let k = 0; k < 4; k++) cuts.push(lastStart + 1 + rand(whole.length - lastStart - 1));
    for (const cut of cuts) {
      const dir = path.join(base, `cut-${cut}`);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, file), whole.subarray(0, cut));
      const { spool: s, reports } = open(dir);
      expect(
        (await collect(s)).map((m) => m.id),
        `cut at ${cut}`,
      ).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(reports, `cut at ${cut}`).toEqual([
        expect.stringMatching(
          new RegExp(
            `^${file}: .*damaged record at byte ${lastStart} \\(.*\\); the ${cut - lastStart} bytes from there are cut \\(the torn tail`,
          ),
        ),
      ]);
      for (let i = 0; i <= 10; i++) expect((await s.body(i)).equals(bodies[i])).toBe(true);
      await expect(s.body(11)).rejects.toMatchObject({ code: 'ERR_UNKNOWN_ID' });
      await s.close();
      expect(fs.statSync(path.join(dir, file)).size).toBe(lastStart);
      const again = open(dir);
      expect((await collect(again.spool)).length).toBe(11);
      expect(again.reports).toEqual([]);
      await again.spool.close();
    }
  });

  test('a damaged record inside the log is reported with the rest of its segment, never delivered', async () => {
    const dir = tempDir('damaged');
    const { spool } = open(dir);
    for (let i = 0; i < 6; i++) await spool.put(msg(i), Buffer.alloc(500, 0x41 + i));
    await spool.close();
    const reopened = open(dir); // writes the next messages into segment 2
    for (let i = 6; i < 9; i++) await reopened.spool.put(msg(i), Buffer.alloc(500, 0x41 + i));
    await reopened.spool.close();
    const file = path.join(dir, segmentName(1));
    const data = fs.readFileSync(file);
    const recordBytes = data.length / 6;
    // A flipped byte in the meta of the third record (a head CRC failure, not at the end), and one
    // in the body of the fifth: replay checks the bodies of the last segment only, body() always.
    data[2 * recordBytes + HEAD_BYTES + 3] ^= 0x01;
    data[4 * recordBytes + recordBytes - 10] ^= 0x01;
    fs.writeFileSync(file, data);
    const { spool: s, reports } = open(dir);
    expect((await collect(s)).map((m) => m.id)).toEqual([0, 1, 6, 7, 8]);
    expect(reports).toEqual([
      expect.stringMatching(
        new RegExp(
          `damaged record at byte ${2 * recordBytes} \\(the record head fails its CRC\\); the ${4 * recordBytes} bytes from there are skipped, left in place`,
        ),
      ),
    ]);
    await s.close();
    expect(fs.statSync(file).size).toBe(data.length);
    // The same damage in the last segment: its body CRC is checked by replay.
    const last = path.join(dir, segmentName(2));
    const tail = fs.readFileSync(last);
    tail[tail.length / 3 - 10] ^= 0x01;
    fs.writeFileSync(last, tail);
    const third = open(dir);
    expect((await collect(third.spool)).map((m) => m.id)).toEqual([0, 1]);
    expect(third.reports).toEqual([
      expect.stringMatching(/damaged record at byte .*\(the record head fails its CRC\).*skipped, left in place/),
      expect.stringMatching(
        /damaged record at byte 0 \(the body fails its CRC\); the \d+ bytes from there are skipped/,
      ),
    ]);
    await third.spool.close();
  });

  test('a body damaged in an earlier segment is listed but never delivered: body() rejects', async () => {
    const dir = tempDir('body-old');
    const first = open(dir);
    for (let i = 0; i < 3; i++) await first.spool.put(msg(i), Buffer.alloc(400, 0x41 + i));
    await first.spool.close();
    const second = open(dir); // segment 1 is no longer the last
    await second.spool.put(msg(3), Buffer.from('in segment 2'));
    await second.spool.close();
    const file = path.join(dir, segmentName(1));
    const data = fs.readFileSync(file);
    data[data.length - 5] ^= 0x01;
    fs.writeFileSync(file, data);
    const { spool: s, reports } = open(dir);
    expect((await collect(s)).map((m) => m.id)).toEqual([0, 1, 2, 3]);
    expect(reports).toEqual([]);
    expect((await s.body(1)).equals(Buffer.alloc(400, 0x42))).toBe(true);
    await expect(s.body(2)).rejects.toBeInstanceOf(SpoolCorruptError);
    await expect(s.body(2)).rejects.toThrow(/the body of id 2 at byte \d+ fails its CRC/);
    await s.close();
  });

  test('a body damaged on disk after replay: body() rejects with a SpoolCorruptError', async () => {
    const dir = tempDir('body-crc');
    const { spool } = open(dir);
    await spool.put(msg(1), Buffer.alloc(300, 0x42));
    const file = path.join(dir, segmentName(1));
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from('X'), 0, 1, fs.fstatSync(fd).size - 5);
    fs.closeSync(fd);
    await expect(spool.body(1)).rejects.toBeInstanceOf(SpoolCorruptError);
    await expect(spool.body(1)).rejects.toThrow(/the body of id 1 at byte 0 fails its CRC/);
    await spool.close();
  });

  test('compaction keeps the disk bounded; replay after it is exact', async () => {
    const dir = tempDir('compact');
    const SEG = 64 * 1024;
    const { spool, reports } = open(dir, SEG);
    const body = (id: number): Buffer => Buffer.alloc(1000 + (id % 7) * 100, id % 251);
    const kept = new Map<number, StoredMessage>();
    let maxBytes = 0;
    for (let round = 0; round < 40; round++) {
      const ids = Array.from({ length: 50 }, (_, i) => round * 50 + i);
      await Promise.all(ids.map((id) => spool.put(msg(id), body(id))));
      for (const id of ids) {
        if (id % 10 === 3) {
          await spool.setRetryState(id, { attempts: 1 + (id % 5), nextAttempt: id });
          kept.set(id, msg(id, { attempts: 1 + (id % 5), nextAttempt: id }));
        } else if (id % 10 === 7) {
          kept.set(id, msg(id));
        } else {
          await spool.remove(id);
        }
        // A removal is written at once, without waiting for any I/O; an MTA's removals come from
        // socket callbacks, between which compaction's reads and writes complete. Here, one I/O
        // round trip through libuv's thread pool between removals stands for that.
        await fs.promises.stat(dir);
      }
      maxBytes = Math.max(maxBytes, spool.stats.bytes);
    }
    await spool.close();
    const st = spool.stats;
    expect(st.compactions).toBeGreaterThan(0);
    expect(reports).toEqual([]);
    // Written: 2,000 messages of ~1.3 KB (2.6 MB); live at the end: 400 of them.
    expect(st.liveBytes).toBeLessThan(600_000);
    expect(maxBytes).toBeLessThanOrEqual(2 * st.liveBytes + 3 * SEG);
    expect(segments(dir).length).toBe(st.segments);
    const { spool: s2, reports: r2 } = open(dir, SEG);
    const listed = await collect(s2);
    expect(r2).toEqual([]);
    expect(new Map(listed.map((m) => [m.id, m]))).toEqual(kept);
    for (const id of kept.keys()) expect((await s2.body(id)).equals(body(id))).toBe(true);
    await s2.close();
  });
});

// --- crash --------------------------------------------------------------------------------------

describe('LogSpool: puts and outcomes SIGKILLed at random moments', () => {
  const FIXTURE = path.join(root, 'test', 'fixtures', 'log-crash.mjs');
  let lib = '';
  beforeAll(() => {
    lib = compileStore(tempDir('build'), 'log_spool');
  }, 120_000);

  test('every acknowledged message once, with its bytes and retry state; nothing half there', async () => {
    const seed = Date.now();
    const rand = seeded(seed);
    const dir = tempDir('crash');
    const COUNT = 600;
    const SEG = 256 * 1024;
    const attempted = new Set<number>();
    const putAcked = new Set<number>();
    const removeAcked = new Set<number>();
    const stateAcked = new Map<number, number>();
    const notes: string[] = [];
    for (let round = 0; round < 6; round++) {
      const first = round * COUNT;
      for (let id = first; id < first + COUNT; id++) attempted.add(id);
      // Late enough in some rounds for the removals to make compaction run (small segments).
      const afterAcks = rand(500);
      const delay = rand(50);
      const k = await runAndKill(
        FIXTURE,
        lib,
        [dir, String(first), String(COUNT), '32', String(SEG)],
        afterAcks,
        delay,
      );
      const ctx = `seed ${seed}, round ${round}, kill after ${afterAcks} acks + ${delay} ms; child: status ${k.status} signal ${k.signal} stderr ${k.stderr.slice(0, 2000)}`;
      // The child's own replay may cut the torn tail its predecessor left: nothing else.
      expect(
        k.stderr.split('\n').filter((l) => l !== '' && !/are cut \(the torn tail/.test(l)),
        ctx,
      ).toEqual([]);
      expect(k.signal === 'SIGKILL' || (k.status === 0 && k.done), ctx).toBe(true);
      for (const line of k.lines) {
        const [what, idText, a] = line.split(' ');
        const id = Number(idText);
        if (what === 'ok') putAcked.add(id);
        else if (what === 'rm') removeAcked.add(id);
        else if (what === 'st') stateAcked.set(id, Number(a));
      }
      const { spool, reports } = open(dir, SEG);
      const listed = await collect(spool);
      const torn = reports.filter((r) => /are cut \(the torn tail/.test(r));
      expect(reports.length - torn.length, `${reports.join('\n')}; ${ctx}`).toBe(0);
      const ids = new Set(listed.map((m) => m.id));
      expect(ids.size, ctx).toBe(listed.length);
      // An id the child goes on to remove may be gone before "rm" was acknowledged: those with
      // id % 4 of 0 or 2 at once, the others once the put of id + 100 in the same run was.
      const removing = (id: number): boolean =>
        id % 4 === 0 ||
        id % 4 === 2 ||
        (Math.floor((id + 100) / COUNT) === Math.floor(id / COUNT) && putAcked.has(id + 100));
      for (const id of putAcked) {
        if (!removing(id)) expect(ids.has(id), `acknowledged id ${id} is missing; ${ctx}`).toBe(true);
      }
      for (const id of removeAcked) expect(ids.has(id), `removed id ${id} is back; ${ctx}`).toBe(false);
      for (const m of listed) {
        expect(attempted.has(m.id), ctx).toBe(true);
        const acked = stateAcked.get(m.id) ?? 0;
        if (m.attempts === undefined) {
          expect(acked, `id ${m.id} lost its retry state; ${ctx}`).toBe(0);
          expect(m, ctx).toEqual(crashMessage(m.id));
        } else {
          // The latest acknowledged state, or a later one written just before the kill.
          expect(m.attempts, `id ${m.id}; ${ctx}`).toBeGreaterThanOrEqual(Math.max(acked, 1));
          expect(m.attempts, `id ${m.id}; ${ctx}`).toBeLessThanOrEqual((m.id % 3) + 1);
          expect(m, ctx).toEqual({
            ...crashMessage(m.id),
            attempts: m.attempts,
            nextAttempt: 1_700_000_000_000 + m.id * 1000 + m.attempts,
          });
        }
        expect(crashBodyProblem(m.id, await spool.body(m.id)), `id ${m.id}; ${ctx}`).toBe('');
      }
      const st = spool.stats;
      await spool.close();
      notes.push(
        `round ${round}: ${k.signal ?? `exit ${k.status}`}, ${k.lines.length} acks, ${listed.length} listed, ${torn.length} torn tails cut, ${st.segments} segments of ${st.bytes} bytes (${st.liveBytes} live), last segment ${segments(dir).at(-1)}`,
      );
    }
    console.info(`LogSpool crash test (seed ${seed}):\n  ${notes.join('\n  ')}`);
  }, 180_000);
});

describe('load() for delivery', () => {
  test('a message stored by this instance comes from memory; after a restart, or with no cache, from the log; none after remove()', async () => {
    const dir = tempDir('load');
    const a = new LogSpool(dir);
    const body = Buffer.from('Subject: x\r\n\r\nhello\r\n');
    await a.put(msg(1), body);
    body.fill(0x78); // the caller reuses its buffer: what was stored stays
    const fresh = a.load(1);
    expect(fresh).not.toBeInstanceOf(Promise); // from memory, at once
    expect((fresh as { body: Buffer }).body.toString()).toBe('Subject: x\r\n\r\nhello\r\n');
    expect((fresh as { envelope: unknown }).envelope).toEqual(msg(1).envelope);
    await a.close();
    for (const options of [{}, { cacheBytes: 0 }]) {
      const b = new LogSpool(dir, options);
      const loaded = await b.load(1);
      expect(loaded?.body.toString()).toBe('Subject: x\r\n\r\nhello\r\n');
      expect(loaded?.envelope).toEqual(msg(1).envelope);
      expect(await b.load(2)).toBeUndefined();
      await b.close();
    }
    const c = new LogSpool(dir);
    await c.remove(1);
    expect(await c.load(1)).toBeUndefined();
    await c.put(msg(3), Buffer.from('three'));
    await c.remove(3);
    expect(await c.load(3)).toBeUndefined(); // the cached copy went with the message
    await c.close();
    expect(() => new LogSpool(dir, { cacheBytes: -1 })).toThrow(/^options\.cacheBytes must be an integer from 0/);
    expect(() => c.load(-1)).toThrow(RangeError);
  });
});

test('a caller that reuses its body buffer while put() waits for its group stores what it passed', async () => {
  const dir = tempDir('reuse');
  const a = new LogSpool(dir, { cacheBytes: 0 });
  const buf = Buffer.from('first body\r\n');
  const p = a.put(msg(1), buf);
  buf.write('XXXXX'); // before the group is written
  await p;
  await a.close();
  const b = new LogSpool(dir, { cacheBytes: 0 });
  expect((await b.body(1)).toString()).toBe('first body\r\n');
  await b.close();
});
