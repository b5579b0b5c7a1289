// FileSpool under file-system faults, and the retry state both stores keep (issue 12, store side):
//
// - a special file (a FIFO) or a symbolic link named <id>.msg: list() reports it through onCorrupt
//   and goes on with the rest of the spool (later shards included); get() and body() reject with a
//   SpoolCorruptError. Before, opening the FIFO blocked a thread-pool thread for ever (a hang);
// - a shard directory readdir fails on (a symlink loop: ELOOP, even for root; EACCES when not root):
//   reported, the other shards listed. Before, list() rejected and recover() stopped there;
// - the spool directory removed (and perhaps re-created) under a live FileSpool: put() to a shard
//   it used before re-creates the directories and succeeds, durably. Before: ENOENT until restart;
// - setRetryState(): what a new FileSpool on the directory lists and gets (the latest state wins),
//   a damaged or torn journal line skipped, the journal compacted (its size bounded, removed
//   messages dropped), a removed-then-re-put id starting without a state; both stores pass the same
//   contract and refuse bad arguments the same way.
//
// Everything runs against real directories under os.tmpdir(); the FIFO tests use a short timeout so
// that a hang fails them (afterEach opens the FIFOs for writing, which releases a blocked reader).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, afterEach, describe, expect, test } from 'vitest';

import { FileSpool, SpoolCorruptError, shardOf } from '../../lib/store/file_spool.js';
import * as spoolModule from '../../lib/store/file_spool.js';
import { MemoryStore } from '../../lib/store/memory_store.js';
import type { MessageStore, RetryState, StoredMessage } from '../../lib/store/message_store.js';

const tempDirs: string[] = [];
function tempDir(tag: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `mqc-spool-faults-${tag}-`));
  tempDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

// FIFOs made by a test: afterEach opens each for writing (non-blocking), which completes the open()
// of a reader blocked on it (the unfixed FileSpool), so that a hang fails one test, not the process.
const fifos: string[] = [];
afterEach(() => {
  for (const f of fifos.splice(0)) {
    try {
      fs.closeSync(fs.openSync(f, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
    } catch {
      // ENXIO: no reader, nothing blocked.
    }
  }
});
function mkfifo(file: string): void {
  execFileSync('mkfifo', [file]);
  fifos.push(file);
}

const posix = process.platform !== 'win32';
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const HANG_MS = 5_000;

function msg(id: number, extra: Partial<StoredMessage> = {}): StoredMessage {
  return {
    id,
    domain: 'example.com',
    envelope: { from: `s${id}@origin.example`, to: [`r${id}@example.com`] },
    ...extra,
  };
}

async function collect(store: MessageStore): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  for await (const m of store.list()) out.push(m);
  return out;
}
const ids = (ms: StoredMessage[]): number[] => ms.map((m) => m.id).sort((a, b) => a - b);

/** A FileSpool that records its onCorrupt reports. */
function reporting(dir: string): { spool: FileSpool; reports: [string, Error][] } {
  const reports: [string, Error][] = [];
  return { spool: new FileSpool(dir, { onCorrupt: (f, e) => reports.push([f, e]) }), reports };
}

const journalOf = (dir: string, id: number): string => path.join(dir, shardOf(id), 'retry.log');
const COMPACT_BYTES = (spoolModule as Record<string, unknown>).RETRY_LOG_COMPACT_BYTES as number;

// --- special files ------------------------------------------------------------------------------

describe.skipIf(!posix)('FileSpool: a FIFO or a symbolic link named <id>.msg', () => {
  /** Messages in shards before, at and after the FIFO's shard (03), and the FIFO as 3.msg. */
  async function spoolWithFifo(): Promise<{ dir: string; fifo: string }> {
    const dir = tempDir('fifo');
    const s = new FileSpool(dir);
    for (const id of [1, 259, 10, 255, 511]) await s.put(msg(id), Buffer.from(`body ${id}`));
    await s.close();
    const fifo = path.join(dir, '03', '3.msg');
    mkfifo(fifo);
    return { dir, fifo };
  }

  test(
    'list() reports the FIFO and yields every other message, those in later shards included',
    async () => {
      const { dir, fifo } = await spoolWithFifo();
      const { spool, reports } = reporting(dir);
      expect(ids(await collect(spool))).toEqual([1, 10, 255, 259, 511]);
      expect(reports.map(([f]) => f)).toEqual([fifo]);
      expect(reports[0][1]).toBeInstanceOf(SpoolCorruptError);
      expect(reports[0][1].message).toMatch(/not a regular file \(a FIFO\)/);
      expect(fs.existsSync(fifo)).toBe(true); // left in place
    },
    HANG_MS,
  );

  test(
    'get() of the FIFO rejects with a SpoolCorruptError',
    async () => {
      const { dir, fifo } = await spoolWithFifo();
      const p = new FileSpool(dir).get(3);
      await expect(p).rejects.toBeInstanceOf(SpoolCorruptError);
      await expect(p).rejects.toMatchObject({
        code: 'ERR_SPOOL_CORRUPT',
        file: fifo,
        message: expect.stringMatching(/a FIFO/),
      });
    },
    HANG_MS,
  );

  test(
    'body() and load() of the FIFO reject with a SpoolCorruptError',
    async () => {
      const { dir } = await spoolWithFifo();
      const spool = new FileSpool(dir);
      await expect(spool.body(3)).rejects.toBeInstanceOf(SpoolCorruptError);
      expect((await spool.body(259)).toString()).toBe('body 259');
      // load(), the delivery layer's one read of envelope and body, refuses it the same way.
      await expect(spool.load(3)).rejects.toBeInstanceOf(SpoolCorruptError);
      expect((await spool.load(259))?.body.toString()).toBe('body 259');
    },
    HANG_MS,
  );

  test(
    'a FIFO named retry.log (the retry-state journal) hangs nothing either',
    async () => {
      const { dir } = await spoolWithFifo();
      fs.rmSync(path.join(dir, '03', '3.msg'));
      const journal = path.join(dir, '03', 'retry.log');
      mkfifo(journal);
      const { spool, reports } = reporting(dir);
      expect(ids(await collect(spool))).toEqual([1, 10, 255, 259, 511]);
      expect(reports.map(([f]) => f)).toEqual([journal]);
      expect(await spool.get(259)).toEqual(msg(259));
      await expect(spool.setRetryState!(259, { attempts: 1, nextAttempt: 5 })).rejects.toBeInstanceOf(
        SpoolCorruptError,
      );
    },
    HANG_MS,
  );

  test(
    'a symbolic link is not followed: reported by list(), refused by get(), body() and load()',
    async () => {
      const dir = tempDir('symlink');
      const s = new FileSpool(dir);
      await s.put(msg(4), Buffer.from('four'));
      await s.put(msg(6), Buffer.from('six'));
      // 4.msg moved aside and replaced by a link to it: a valid message, but not a file of ours.
      const file = path.join(dir, '04', '4.msg');
      fs.renameSync(file, path.join(dir, '04', 'elsewhere'));
      fs.symlinkSync('elsewhere', file);
      fs.symlinkSync('nowhere', path.join(dir, '06', '262.msg')); // dangling
      const { spool, reports } = reporting(dir);
      expect(ids(await collect(spool))).toEqual([6]);
      expect(reports.map(([f]) => f).sort()).toEqual([file, path.join(dir, '06', '262.msg')].sort());
      for (const [, e] of reports) expect(e.message).toMatch(/symbolic link/);
      await expect(spool.get(4)).rejects.toBeInstanceOf(SpoolCorruptError);
      await expect(spool.body(4)).rejects.toBeInstanceOf(SpoolCorruptError);
      await expect(spool.load(4)).rejects.toBeInstanceOf(SpoolCorruptError);
      await expect(spool.get(262)).rejects.toBeInstanceOf(SpoolCorruptError);
    },
    HANG_MS,
  );
});

// --- unreadable shards --------------------------------------------------------------------------

describe.skipIf(!posix)('FileSpool: a shard directory readdir fails on', () => {
  async function spoolWith(ids: number[]): Promise<string> {
    const dir = tempDir('shard');
    const s = new FileSpool(dir);
    for (const id of ids) await s.put(msg(id), Buffer.from(`body ${id}`));
    await s.close();
    return dir;
  }

  test('a symlink loop (ELOOP, for root too): reported, the shards after it listed', async () => {
    const dir = await spoolWith([1, 10, 255, 256 + 10]);
    const bad = path.join(dir, '05');
    fs.symlinkSync('05', bad); // 05 -> 05
    expect(() => fs.readdirSync(bad)).toThrow(expect.objectContaining({ code: 'ELOOP' }));
    const { spool, reports } = reporting(dir);
    expect(ids(await collect(spool))).toEqual([1, 10, 255, 266]);
    expect(reports.map(([f]) => f)).toEqual([bad]);
    expect(reports[0][1]).toBeInstanceOf(SpoolCorruptError);
    expect(reports[0][1].message).toMatch(/shard directory unreadable.*ELOOP/);
    expect((reports[0][1] as Error & { cause?: { code?: string } }).cause?.code).toBe('ELOOP');
  });

  test.skipIf(isRoot)('a shard without read permission (EACCES; root reads it anyway)', async () => {
    const dir = await spoolWith([1, 2, 3]);
    const bad = path.join(dir, '02');
    fs.chmodSync(bad, 0);
    try {
      const { spool, reports } = reporting(dir);
      expect(ids(await collect(spool))).toEqual([1, 3]);
      expect(reports.map(([f]) => f)).toEqual([bad]);
      expect(reports[0][1].message).toMatch(/EACCES/);
    } finally {
      fs.chmodSync(bad, 0o700);
    }
  });
});

// --- the spool directory removed under a live FileSpool ------------------------------------------

describe('FileSpool: the spool directory removed, then used again', () => {
  test.each([
    ['re-created by the operator (mkdir)', true],
    ['not re-created', false],
  ])('%s: put() to a shard used before succeeds and is durable', async (_label, recreate) => {
    const dir = path.join(tempDir('gone'), 'spool');
    const spool = new FileSpool(dir);
    await spool.put(msg(1), Buffer.from('one'));
    await spool.put(msg(2), Buffer.from('two'));
    fs.rmSync(dir, { recursive: true, force: true });
    if (recreate) fs.mkdirSync(dir);

    await spool.put(msg(257), Buffer.from('two hundred fifty-seven')); // shard 01, used before
    await spool.put(msg(3), Buffer.from('three')); // a new shard
    await spool.put(msg(513), Buffer.from('five hundred thirteen')); // 01 again
    expect(await spool.get(1)).toBeUndefined();

    const reopened = new FileSpool(dir);
    expect(await collect(reopened)).toEqual([msg(257), msg(513), msg(3)]);
    expect((await reopened.body(257)).toString()).toBe('two hundred fifty-seven');
  });

  test('a retry-state journal open when the directory went: states recorded afterwards are kept', async () => {
    const dir = path.join(tempDir('gone-journal'), 'spool');
    const spool = new FileSpool(dir);
    await spool.put(msg(1), Buffer.from('one'));
    await spool.setRetryState!(1, { attempts: 1, nextAttempt: 1000 }); // an open journal in shard 01
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir);
    await spool.put(msg(257), Buffer.from('257'));
    await spool.setRetryState!(257, { attempts: 2, nextAttempt: 2000 });
    expect(await spool.get(257)).toEqual(msg(257, { attempts: 2, nextAttempt: 2000 }));
    expect(await collect(new FileSpool(dir))).toEqual([msg(257, { attempts: 2, nextAttempt: 2000 })]);
  });

  test('only the shard directory removed: put() re-creates it', async () => {
    const dir = tempDir('shard-gone');
    const spool = new FileSpool(dir);
    await spool.put(msg(7), Buffer.from('seven'));
    fs.rmSync(path.join(dir, '07'), { recursive: true });
    await spool.put(msg(263), Buffer.from('263'));
    expect(ids(await collect(new FileSpool(dir)))).toEqual([263]);
  });
});

// --- retry state: FileSpool ---------------------------------------------------------------------

describe('FileSpool: retry state', () => {
  test('a new FileSpool lists and gets the latest state recorded; messages without one have none', async () => {
    const dir = tempDir('retry');
    const a = new FileSpool(dir);
    for (const id of [1, 2, 257, 300]) await a.put(msg(id), Buffer.from(`b${id}`));
    await a.put(msg(4, { attempts: 3, nextAttempt: 4000 }), Buffer.from('b4')); // put() takes a state too
    await a.setRetryState!(1, { attempts: 1, nextAttempt: 1_700_000_000_000 });
    await a.setRetryState!(1, { attempts: 2, nextAttempt: 1_700_000_060_000.5 });
    await a.setRetryState!(257, { attempts: 65535, nextAttempt: -8.64e15 });
    await a.setRetryState!(1, { attempts: 3, nextAttempt: 1_700_000_120_000 });
    await Promise.all([
      a.setRetryState!(300, { attempts: 1, nextAttempt: 1 }),
      a.setRetryState!(300, { attempts: 2, nextAttempt: 2 }),
    ]);
    await a.setRetryState!(4, { attempts: 4, nextAttempt: 8.64e15 });
    expect(await a.get(1)).toEqual(msg(1, { attempts: 3, nextAttempt: 1_700_000_120_000 }));

    const expected = new Map<number, StoredMessage>([
      [1, msg(1, { attempts: 3, nextAttempt: 1_700_000_120_000 })],
      [2, msg(2)],
      [4, msg(4, { attempts: 4, nextAttempt: 8.64e15 })],
      [257, msg(257, { attempts: 65535, nextAttempt: -8.64e15 })],
      [300, msg(300, { attempts: 2, nextAttempt: 2 })],
    ]);
    for (const make of [() => new FileSpool(dir), () => new FileSpool(dir)]) {
      // One instance lists first, the other gets first (each reads the journal on its own).
      const b = make();
      const listed = await collect(b);
      expect(listed.length).toBe(expected.size);
      for (const m of listed) expect(m).toEqual(expected.get(m.id));
      const c = make();
      for (const [id, m] of expected) expect(await c.get(id)).toEqual(m);
    }
    await a.close();
  });

  test('the journal: <dir>/<shard>/retry.log, one checksummed line per update, no other file', async () => {
    const dir = tempDir('journal');
    const a = new FileSpool(dir);
    await a.put(msg(1), Buffer.from('x'));
    await a.setRetryState!(1, { attempts: 1, nextAttempt: 1_700_000_000_000 });
    await a.setRetryState!(1, { attempts: 2, nextAttempt: 1.5 });
    await a.close();
    expect(fs.readdirSync(path.join(dir, '01')).sort()).toEqual(['1.msg', 'retry.log']);
    const lines = fs.readFileSync(journalOf(dir, 1), 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^1 1 1700000000000 [0-9a-f]{8}$/);
    expect(lines[1]).toMatch(/^1 2 1\.5 [0-9a-f]{8}$/);
    // No journal at all in a shard without a recorded state.
    const b = new FileSpool(dir);
    await b.put(msg(2), Buffer.from('y'));
    expect(fs.existsSync(journalOf(dir, 2))).toBe(false);
  });

  test('damaged lines are skipped (reported), a torn last line silently; the values before them stand', async () => {
    const dir = tempDir('torn');
    const a = new FileSpool(dir);
    await a.put(msg(1), Buffer.from('x'));
    await a.put(msg(257), Buffer.from('y'));
    await a.put(msg(513), Buffer.from('z'));
    await a.setRetryState!(1, { attempts: 1, nextAttempt: 1000 });
    await a.setRetryState!(257, { attempts: 5, nextAttempt: 5000 });
    await a.setRetryState!(513, { attempts: 7, nextAttempt: 7000 });
    await a.close();
    const journal = journalOf(dir, 1);
    const good = fs.readFileSync(journal, 'utf8').split('\n');
    // A record for 1 with one digit changed (its checksum no longer matches); garbage; a record of
    // id 2 copied from shard 02 (valid checksum, wrong shard); a newer record for 513 cut short.
    const flipped = good[0].replace(' 1000 ', ' 9000 ');
    const other = new FileSpool(tempDir('other'));
    await other.put(msg(2), Buffer.from('w'));
    await other.setRetryState!(2, { attempts: 9, nextAttempt: 9 });
    const foreign = fs.readFileSync(journalOf(other.dir, 2), 'utf8');
    const newer513 = '513 8 8000 ';
    fs.appendFileSync(journal, `${flipped}\n\u0000\u00ff garbage \n\n${foreign}${newer513}`);

    const { spool: b, reports } = reporting(dir);
    expect(await collect(b)).toEqual([
      msg(1, { attempts: 1, nextAttempt: 1000 }),
      msg(257, { attempts: 5, nextAttempt: 5000 }),
      msg(513, { attempts: 7, nextAttempt: 7000 }),
    ]);
    expect(reports.map(([f]) => f)).toEqual([journal]);
    expect(reports[0][1]).toBeInstanceOf(SpoolCorruptError);
    expect(reports[0][1].message).toMatch(/4 damaged lines skipped \(the first is line 4\)/);
    await b.close();

    // list() dropped the damaged lines (compaction), so a restart does not report them again.
    expect(fs.readFileSync(journal, 'utf8').split('\n').length - 1).toBe(3);
    const again = reporting(dir);
    expect(await collect(again.spool)).toHaveLength(3);
    expect(again.reports).toEqual([]);
    await again.spool.close();

    // A torn last line (no "\n") is cut before the next append, so it cannot swallow the record.
    fs.appendFileSync(journal, newer513);
    const c = new FileSpool(dir, {
      onCorrupt: (_f, e) => {
        throw e;
      },
    });
    expect(await c.get(513)).toEqual(msg(513, { attempts: 7, nextAttempt: 7000 }));
    await c.setRetryState!(513, { attempts: 9, nextAttempt: 9000 });
    await c.close();
    expect(fs.readFileSync(journal, 'utf8').endsWith('\n')).toBe(true);
    expect(fs.readFileSync(journal, 'utf8')).not.toContain(newer513);
    expect(
      await new FileSpool(dir, {
        onCorrupt: (_f, e) => {
          throw e;
        },
      }).get(513),
    ).toEqual(msg(513, { attempts: 9, nextAttempt: 9000 }));
    expect(
      await new FileSpool(dir, {
        onCorrupt: (_f, e) => {
          throw e;
        },
      }).get(1),
    ).toEqual(msg(1, { attempts: 1, nextAttempt: 1000 }));
  });

  test('a journal of nothing but garbage, or cut in its first line, yields no state and no crash', async () => {
    const dir = tempDir('garbage');
    const a = new FileSpool(dir);
    await a.put(msg(1), Buffer.from('x'));
    fs.writeFileSync(journalOf(dir, 1), Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 131 + 7) % 256)));
    const { spool: b, reports } = reporting(dir);
    expect(await collect(b)).toEqual([msg(1)]);
    expect(reports.map(([f, e]) => [f, e.constructor])).toEqual([[journalOf(dir, 1), SpoolCorruptError]]);
    fs.writeFileSync(journalOf(dir, 1), '1 3 17');
    expect(await new FileSpool(dir).get(1)).toEqual(msg(1));
  });

  test('compaction: the journal stays bounded; the latest state of live messages is kept, removed ones dropped', async () => {
    expect(COMPACT_BYTES).toBeGreaterThan(0);
    const dir = tempDir('compact');
    const a = new FileSpool(dir);
    const live = [1, 257, 769];
    for (const id of [...live, 513]) await a.put(msg(id), Buffer.from(`b${id}`));
    await a.setRetryState!(513, { attempts: 1, nextAttempt: 513 });
    await a.remove(513);
    let maxSize = 0;
    let shrank = 0;
    let last = 0;
    const updates = Math.ceil((3 * COMPACT_BYTES) / 20);
    for (let i = 1; i <= updates; i++) {
      const id = live[i % 3];
      await a.setRetryState!(id, { attempts: i % 65536, nextAttempt: 1_700_000_000_000 + i });
      const size = fs.statSync(journalOf(dir, 1)).size;
      if (size < last) shrank++;
      last = size;
      maxSize = Math.max(maxSize, size);
    }
    expect(shrank).toBeGreaterThanOrEqual(2);
    expect(maxSize).toBeLessThanOrEqual(COMPACT_BYTES + 200);
    await a.close();

    const text = fs.readFileSync(journalOf(dir, 1), 'utf8');
    expect(text).not.toMatch(/^513 /m);
    const b = new FileSpool(dir);
    for (const [k, id] of live.entries()) {
      // The last update of live[k] was the last i with i % 3 === k.
      let i = updates;
      while (i % 3 !== k) i--;
      expect(await b.get(id)).toEqual(msg(id, { attempts: i % 65536, nextAttempt: 1_700_000_000_000 + i }));
    }
    await b.put(msg(513), Buffer.from('again'));
    expect(await b.get(513)).toEqual(msg(513));
  }, 60_000);

  test('list() compacts a journal mostly made of removed messages, and deletes one with no live state', async () => {
    const dir = tempDir('list-compact');
    const a = new FileSpool(dir);
    // Shard 02: a few messages put, given a state and removed, and many states of ids that are not
    // stored (setRetryState records them; they are dropped at compaction); one live message.
    for (let k = 0; k < 3000; k++) {
      const id = 2 + 256 * k;
      if (k < 10) await a.put(msg(id), Buffer.from('x'));
      await a.setRetryState!(id, { attempts: 1, nextAttempt: id });
      if (k < 10 && k !== 5) await a.remove(id);
    }
    await a.put(msg(3), Buffer.from('x'));
    await a.setRetryState!(3, { attempts: 1, nextAttempt: 3 });
    await a.remove(3);
    await a.close();
    const before = fs.statSync(journalOf(dir, 2)).size;
    const b = new FileSpool(dir);
    expect(await collect(b)).toEqual([msg(2 + 256 * 5, { attempts: 1, nextAttempt: 2 + 256 * 5 })]);
    expect(fs.statSync(journalOf(dir, 2)).size).toBeLessThan(before / 100);
    expect(fs.existsSync(journalOf(dir, 3))).toBe(false);
    expect(await new FileSpool(dir).get(2 + 256 * 5)).toEqual(
      msg(2 + 256 * 5, { attempts: 1, nextAttempt: 2 + 256 * 5 }),
    );
    await b.close();
  });

  test('a removed message put again later starts without a state, in this instance and in a new one', async () => {
    const dir = tempDir('reput');
    const a = new FileSpool(dir);
    await a.put(msg(7), Buffer.from('first'));
    await a.setRetryState!(7, { attempts: 4, nextAttempt: 4444 });
    await a.put(msg(8), Buffer.from('first'));
    await a.setRetryState!(8, { attempts: 5, nextAttempt: 5555 });
    await a.remove(7);
    await a.remove(8);
    // The same instance puts 7 again; a new instance (which never saw 8's state) puts 8 again.
    await a.put(msg(7), Buffer.from('second'));
    expect(await a.get(7)).toEqual(msg(7));
    await a.close();
    const b = new FileSpool(dir);
    await b.put(msg(8, { attempts: 1, nextAttempt: 1 }), Buffer.from('second'));
    expect(await b.get(8)).toEqual(msg(8, { attempts: 1, nextAttempt: 1 }));
    await b.close();
    const c = new FileSpool(dir);
    expect(await collect(c)).toEqual([msg(7), msg(8, { attempts: 1, nextAttempt: 1 })]);
    expect(await c.get(7)).toEqual(msg(7));
  });
});

// --- retry state: the contract of both stores ---------------------------------------------------

interface Subject {
  name: string;
  make(): MessageStore;
}
const subjects: Subject[] = [
  { name: 'MemoryStore', make: () => new MemoryStore() },
  {
    name: 'FileSpool',
    make: () =>
      new FileSpool(path.join(tempDir('contract'), 'spool'), {
        onCorrupt: (_f, e) => {
          throw e;
        },
      }),
  },
];

type Bad = [label: string, id: unknown, state: unknown, error: typeof TypeError | typeof RangeError, pattern: RegExp];
const BAD_STATES: Bad[] = [
  ['id a string', '1', { attempts: 1, nextAttempt: 0 }, TypeError, /^id must be a number, got string/],
  ['id negative', -1, { attempts: 1, nextAttempt: 0 }, RangeError, /^id must be a safe integer/],
  ['state undefined', 1, undefined, TypeError, /^state must be an object, got undefined/],
  ['state null', 1, null, TypeError, /^state must be an object, got null/],
  ['state an array', 1, [1, 2], TypeError, /^state must be an object, got an array/],
  ['an unknown key', 1, { attempts: 1, nextAttempt: 0, error: 'x' }, RangeError, /^state: unknown key "error"/],
  ['attempts missing', 1, { nextAttempt: 0 }, TypeError, /^state\.attempts must be a number, got undefined/],
  [
    'attempts a string',
    1,
    { attempts: '1', nextAttempt: 0 },
    TypeError,
    /^state\.attempts must be a number, got string/,
  ],
  [
    'attempts -1',
    1,
    { attempts: -1, nextAttempt: 0 },
    RangeError,
    /^state\.attempts must be an integer from 0 to 65535, got -1/,
  ],
  [
    'attempts 1.5',
    1,
    { attempts: 1.5, nextAttempt: 0 },
    RangeError,
    /^state\.attempts must be an integer from 0 to 65535/,
  ],
  [
    'attempts 65536',
    1,
    { attempts: 65536, nextAttempt: 0 },
    RangeError,
    /^state\.attempts must be an integer from 0 to 65535, got 65536/,
  ],
  ['nextAttempt missing', 1, { attempts: 1 }, TypeError, /^state\.nextAttempt must be a number/],
  ['nextAttempt a string', 1, { attempts: 1, nextAttempt: '5' }, TypeError, /^state\.nextAttempt must be a number/],
  [
    'nextAttempt NaN',
    1,
    { attempts: 1, nextAttempt: NaN },
    RangeError,
    /^state\.nextAttempt must be finite and within ±8\.64e15/,
  ],
  ['nextAttempt Infinity', 1, { attempts: 1, nextAttempt: Infinity }, RangeError, /^state\.nextAttempt must be finite/],
  [
    'nextAttempt 8.64e15+1',
    1,
    { attempts: 1, nextAttempt: 8.64e15 + 1 },
    RangeError,
    /^state\.nextAttempt must be finite/,
  ],
];

type BadPut = [
  label: string,
  extra: Record<string, unknown>,
  error: typeof TypeError | typeof RangeError,
  pattern: RegExp,
];
const BAD_PUTS: BadPut[] = [
  ['attempts 65536', { attempts: 65536 }, RangeError, /^message\.attempts must be an integer from 0 to 65535/],
  ['attempts a string', { attempts: '2' }, TypeError, /^message\.attempts must be a number/],
  ['nextAttempt NaN', { nextAttempt: NaN }, RangeError, /^message\.nextAttempt must be finite/],
  ['nextAttempt null', { nextAttempt: null }, TypeError, /^message\.nextAttempt must be a number/],
];

describe.each(subjects)('$name: the retry-state contract', ({ make }) => {
  let store: MessageStore;
  afterEach(async () => {
    await store?.close?.();
  });

  test('setRetryState is reflected by get() and list(); the latest wins; put() takes one too', async () => {
    store = make();
    await store.put(msg(1), Buffer.from('1'));
    await store.put(msg(2, { attempts: 0, nextAttempt: 20 }), Buffer.from('2'));
    await store.put(msg(3), Buffer.from('3'));
    expect(await store.get(2)).toEqual(msg(2, { attempts: 0, nextAttempt: 20 }));
    const s: RetryState = { attempts: 1, nextAttempt: 1_000 };
    await store.setRetryState!(1, s);
    s.attempts = 99; // the caller's object afterwards changes nothing
    await store.setRetryState!(2, { attempts: 2, nextAttempt: 2_000 });
    await store.setRetryState!(2, { attempts: 3, nextAttempt: 3_000 });
    expect(await store.get(1)).toEqual(msg(1, { attempts: 1, nextAttempt: 1_000 }));
    expect(await store.get(2)).toEqual(msg(2, { attempts: 3, nextAttempt: 3_000 }));
    expect(await store.get(3)).toEqual(msg(3));
    const listed = new Map((await collect(store)).map((m) => [m.id, m]));
    expect(listed.get(1)).toEqual(msg(1, { attempts: 1, nextAttempt: 1_000 }));
    expect(listed.get(2)).toEqual(msg(2, { attempts: 3, nextAttempt: 3_000 }));
    expect(listed.get(3)).toEqual(msg(3));
  });

  test('an unknown id is no error, and a message put later with that id has no state', async () => {
    store = make();
    await store.setRetryState!(42, { attempts: 3, nextAttempt: 3 });
    expect(await store.get(42)).toBeUndefined();
    expect(await collect(store)).toEqual([]);
    await store.put(msg(42), Buffer.from('x'));
    expect(await store.get(42)).toEqual(msg(42));
  });

  test('remove() then put() of the id again: no state inherited', async () => {
    store = make();
    await store.put(msg(5), Buffer.from('x'));
    await store.setRetryState!(5, { attempts: 6, nextAttempt: 6 });
    await store.remove(5);
    await store.put(msg(5), Buffer.from('y'));
    expect(await store.get(5)).toEqual(msg(5));
    expect(await collect(store)).toEqual([msg(5)]);
  });

  test.each(BAD_STATES)('setRetryState refuses %s, and records nothing', async (_label, id, state, error, pattern) => {
    store = make();
    await store.put(msg(1), Buffer.from('x'));
    const p = store.setRetryState!(id as number, state as RetryState);
    await expect(p).rejects.toThrow(pattern);
    await expect(p).rejects.toBeInstanceOf(error);
    expect(await store.get(1)).toEqual(msg(1));
  });

  test.each(BAD_PUTS)('put refuses %s', async (_label, extra, error, pattern) => {
    store = make();
    const p = store.put({ ...msg(1), ...extra } as StoredMessage, Buffer.from('x'));
    await expect(p).rejects.toThrow(pattern);
    await expect(p).rejects.toBeInstanceOf(error);
    expect(await store.get(1)).toBeUndefined();
  });

  test('after close(), setRetryState is refused with ERR_CLOSED', async () => {
    store = make();
    await store.put(msg(1), Buffer.from('x'));
    await store.close?.();
    await expect(store.setRetryState!(1, { attempts: 1, nextAttempt: 1 })).rejects.toMatchObject({
      code: 'ERR_CLOSED',
    });
    expect(await store.get(1)).toEqual(msg(1));
  });
});
