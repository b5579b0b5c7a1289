// MessageStore.setRecipients() in the three stores: the narrowed list is what get(), list() and
// load() return, the body, expiry and retry state are kept, an unknown id is fine, bad input is a
// TypeError or RangeError naming the argument, and after close() it is refused. For FileSpool and
// LogSpool the list survives a reopen (what recover() reads), also through LogSpool's compaction
// (which copies live records: a copy of the old record must never win over the narrowed one), and
// FileSpool rewrites the file through a temporary file renamed over it (never in place).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { FileSpool } from '../../lib/store/file_spool.js';
import { LogSpool } from '../../lib/store/log_spool.js';
import { MemoryStore } from '../../lib/store/memory_store.js';
import type { MessageStore, StoredMessage } from '../../lib/store/message_store.js';
import { compileStore, crashBodyProblem, crashMessage, root, runAndKill, seeded } from '../support/crash_child.js';

const tempDirs: string[] = [];
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-set-rcpt-'));
  tempDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

const TO = ['a@x.example', 'b@x.example', 'c@x.example'];
function msg(id: number, extra: Partial<StoredMessage> = {}): StoredMessage {
  return { id, domain: 'x.example', envelope: { from: 's@o.example', to: TO }, expiresAt: 1_900_000_000_000, ...extra };
}

type Durable = (dir: string) => MessageStore;
const durable: [string, Durable][] = [
  ['FileSpool', (dir) => new FileSpool(dir)],
  ['FileSpool without a cache', (dir) => new FileSpool(dir, { cacheBytes: 0 })],
  ['LogSpool', (dir) => new LogSpool(dir)],
  ['LogSpool without a cache', (dir) => new LogSpool(dir, { cacheBytes: 0 })],
];
const all: [string, () => MessageStore][] = [
  ['MemoryStore', () => new MemoryStore()],
  ...durable.map(([name, open]): [string, () => MessageStore] => [name, () => open(tempDir())]),
];

async function loaded(store: MessageStore, id: number) {
  return await store.load?.(id);
}

describe.each(all)('%s: setRecipients', (_name, make) => {
  test('narrows what get(), list() and load() return; keeps the body, the expiry and the retry state', async () => {
    const store = make();
    const body = Buffer.from('Subject: s\r\n\r\nbody\r\n');
    await store.put(msg(1), body);
    await store.put(msg(2), Buffer.from('other'));
    await store.setRetryState?.(1, { attempts: 2, nextAttempt: 1_800_000_000_000 });
    await store.setRecipients?.(1, ['c@x.example']);
    const want = msg(1, {
      envelope: { from: 's@o.example', to: ['c@x.example'] },
      attempts: 2,
      nextAttempt: 1_800_000_000_000,
    });
    expect(await store.get(1)).toEqual(want);
    const listed: StoredMessage[] = [];
    for await (const m of store.list()) listed.push(m);
    expect(listed.find((m) => m.id === 1)).toEqual(want);
    expect(listed.find((m) => m.id === 2)).toEqual(msg(2));
    expect(await store.body(1)).toEqual(body);
    expect((await loaded(store, 1))?.envelope).toEqual({ from: 's@o.example', to: ['c@x.example'] });
    expect((await loaded(store, 1))?.body).toEqual(body);
    await store.setRecipients?.(99, ['z@x.example']); // unknown: nothing, no error
    expect(await store.get(99)).toBeUndefined();
    await store.remove(1);
    expect(await store.get(1)).toBeUndefined();
    await store.close?.();
  });

  test('bad arguments are TypeErrors and RangeErrors naming them, and change nothing; after close() it is refused', async () => {
    const store = make();
    await store.put(msg(1), Buffer.from('x'));
    const set = (id: unknown, to: unknown) =>
      (store.setRecipients as (i: unknown, t: unknown) => Promise<void>)(id, to);
    await expect(set('1', ['a@x'])).rejects.toThrow(new TypeError('id must be a number, got string'));
    await expect(set(1, 'a@x')).rejects.toThrow(new TypeError('to must be an array, got string'));
    await expect(set(1, [])).rejects.toThrow(new RangeError('to must not be empty'));
    await expect(set(1, ['a@x', 7])).rejects.toThrow(new TypeError('to[1] must be a string, got number'));
    expect((await store.get(1))?.envelope.to).toEqual(TO);
    await store.close?.();
    await expect(set(1, ['a@x'])).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    expect((await store.get(1))?.envelope.to).toEqual(TO);
  });
});

describe.each(durable)('%s: the narrowed list after a reopen', (_name, open) => {
  test('a new instance on the directory lists the narrowed list, the body and the retry state', async () => {
    const dir = tempDir();
    const a = open(dir);
    await a.put(msg(5), Buffer.from('five'));
    await a.setRetryState?.(5, { attempts: 1, nextAttempt: 1_800_000_000_000 });
    await a.setRecipients?.(5, ['a@x.example', 'c@x.example']);
    await a.close?.();
    const b = open(dir);
    expect(await b.get(5)).toEqual(
      msg(5, {
        envelope: { from: 's@o.example', to: ['a@x.example', 'c@x.example'] },
        attempts: 1,
        nextAttempt: 1_800_000_000_000,
      }),
    );
    expect((await b.body(5)).toString()).toBe('five');
    await b.close?.();
  });
});

test('FileSpool: the file is replaced by a rename (a new inode), never written in place', async () => {
  const dir = tempDir();
  const spool = new FileSpool(dir);
  await spool.put(msg(3), Buffer.from('three'));
  const before = fs.statSync(spool.pathOf(3)).ino;
  await spool.setRecipients(3, ['b@x.example']);
  expect(fs.statSync(spool.pathOf(3)).ino).not.toBe(before);
  expect(fs.readdirSync(path.dirname(spool.pathOf(3)))).toEqual(['3.msg']); // no temporary file left
  await spool.close();
});

test('LogSpool: narrowed messages keep their list through compaction and replay', async () => {
  const dir = tempDir();
  const SEG = 64 * 1024;
  const spool = new LogSpool(dir, { segmentBytes: SEG, cacheBytes: 0 });
  const body = (id: number): Buffer => Buffer.alloc(1200, id % 251);
  const kept = new Map<number, StoredMessage>();
  for (let round = 0; round < 30; round++) {
    const ids = Array.from({ length: 40 }, (_, i) => round * 40 + i);
    await Promise.all(ids.map((id) => spool.put(msg(id), body(id))));
    // Outcomes at once, as a busy core makes them: compactions start among the narrowings.
    await Promise.all(
      ids.map(async (id) => {
        if (id % 10 !== 3) return spool.remove(id);
        await spool.setRetryState(id, { attempts: 2, nextAttempt: id });
        await spool.setRecipients(id, [TO[id % 3]]);
        kept.set(id, msg(id, { envelope: { from: 's@o.example', to: [TO[id % 3]] }, attempts: 2, nextAttempt: id }));
      }),
    );
  }
  await spool.settle();
  expect(spool.stats.compactions).toBeGreaterThan(0);
  await spool.close();
  const again = new LogSpool(dir, { segmentBytes: SEG });
  const listed: StoredMessage[] = [];
  for await (const m of again.list()) listed.push(m);
  expect(new Map(listed.map((m) => [m.id, m]))).toEqual(kept);
  for (const id of kept.keys()) expect((await again.body(id)).equals(body(id))).toBe(true);
  await again.close();
});

// --- crash --------------------------------------------------------------------------------------

describe.each([
  ['FileSpool', 'file_spool'],
  ['LogSpool', 'log_spool'],
])('%s: narrowings SIGKILLed at random moments', (kind, file) => {
  const FIXTURE = path.join(root, 'test', 'fixtures', 'narrow-crash.mjs');
  let lib = '';
  beforeAll(() => {
    lib = compileStore(tempDir(), file);
  }, 120_000);

  test('an acknowledged narrowing is kept; one cut short leaves the old list or the new one; bodies and states intact', async () => {
    const seed = Date.now();
    const rand = seeded(seed);
    const dir = tempDir();
    const COUNT = 300;
    const open = (): MessageStore =>
      kind === 'LogSpool' ? new LogSpool(dir, { segmentBytes: 256 * 1024 }) : new FileSpool(dir);
    const acked = new Map<number, Set<string>>();
    for (let round = 0; round < 4; round++) {
      const first = round * COUNT;
      const afterAcks = rand(600);
      const delay = rand(30);
      const k = await runAndKill(FIXTURE, lib, [kind, dir, String(first), String(COUNT), '16'], afterAcks, delay);
      const ctx = `seed ${seed}, round ${round}, kill after ${afterAcks} acks + ${delay} ms; child: status ${k.status} signal ${k.signal} stderr ${k.stderr.slice(0, 2000)}`;
      expect(k.signal === 'SIGKILL' || (k.status === 0 && k.done), ctx).toBe(true);
      for (const line of k.lines) {
        const [what, idText] = line.split(' ');
        const id = Number(idText);
        if (!acked.has(id)) acked.set(id, new Set());
        acked.get(id)?.add(what);
      }
      const store = open();
      const listed = new Map<number, StoredMessage>();
      for await (const m of store.list()) listed.set(m.id, m);
      for (const [id, what] of acked) {
        const m = listed.get(id);
        if (what.has('rm')) {
          expect(m, `removed id ${id} is back; ${ctx}`).toBeUndefined();
          continue;
        }
        if (id % 3 !== 0 || !what.has('nr')) expect(m, `acknowledged id ${id} is missing; ${ctx}`).toBeDefined();
        if (m === undefined) continue; // being removed when the kill came
        const whole = crashMessage(id);
        const narrowed = { ...whole, envelope: { from: whole.envelope.from, to: [whole.envelope.to[0]] } };
        const state = { attempts: 1, nextAttempt: 1_700_000_000_000 + id };
        if (what.has('nr')) expect(m, `id ${id}; ${ctx}`).toEqual({ ...narrowed, ...state });
        else if (what.has('st'))
          expect(
            [
              { ...whole, ...state },
              { ...narrowed, ...state },
            ],
            `id ${id}; ${ctx}`,
          ).toContainEqual(m);
        expect(crashBodyProblem(id, await store.body(id)), `id ${id}; ${ctx}`).toBe('');
      }
      await store.close?.();
    }
  }, 180_000);
});
