// The order of the file-system calls that make a put durable, for FileSpool and LogSpool: data
// synced before the rename (or the commit) that publishes it, and the directory (or the log)
// synced before put() resolves. A kill -9 cannot show a missing or misplaced sync (what was handed
// to the OS reaches the disk anyway); only a power cut would. So the calls themselves are recorded:
// node:fs/promises (open, rename, unlink) and the FileHandle methods (write, writev, sync,
// datasync, truncate) are wrapped for the test, each call logged when it starts and when it
// ends, with the path of the file it acts on.
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';

import { FileSpool } from '../../lib/store/file_spool.js';
import { segmentName } from '../../lib/store/log_format.js';
import { LogSpool } from '../../lib/store/log_spool.js';
import type { StoredMessage } from '../../lib/store/message_store.js';

interface Call {
  op: string;
  file: string;
  /** For rename: the new name. */
  to?: string;
  start: number;
  end: number;
}

let clock = 0;
const calls: Call[] = [];
const paths = new WeakMap<FileHandle, string>();
const marks = new Map<string, number>();
const mark = (name: string): void => {
  marks.set(name, ++clock);
};

function logged<T>(op: string, file: string, run: () => Promise<T>, to?: string): Promise<T> {
  const c: Call = { op, file, to, start: ++clock, end: Number.POSITIVE_INFINITY };
  calls.push(c);
  return run().then((v) => {
    c.end = ++clock;
    return v;
  });
}

const tempDirs: string[] = [];
function tempDir(tag: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `mqc-order-${tag}-`));
  tempDirs.push(d);
  return d;
}

beforeAll(async () => {
  const realOpen = fsp.open.bind(fsp);
  const realRename = fsp.rename.bind(fsp);
  const realUnlink = fsp.unlink.bind(fsp);
  vi.spyOn(fsp, 'open').mockImplementation((file, flags, mode) =>
    logged('open', String(file), async () => {
      const fh = await realOpen(file, flags, mode);
      paths.set(fh, path.resolve(String(file)));
      return fh;
    }),
  );
  vi.spyOn(fsp, 'rename').mockImplementation((a, b) =>
    logged('rename', path.resolve(String(a)), () => realRename(a, b), path.resolve(String(b))),
  );
  vi.spyOn(fsp, 'unlink').mockImplementation((a) => logged('unlink', path.resolve(String(a)), () => realUnlink(a)));
  const probe = await realOpen(path.join(tempDir('probe'), 'x'), 'w');
  const proto = Object.getPrototypeOf(probe) as Record<string, (...a: unknown[]) => Promise<unknown>>;
  await probe.close();
  for (const op of ['write', 'writev', 'sync', 'datasync', 'truncate']) {
    const real = proto[op];
    vi.spyOn(proto, op).mockImplementation(function (this: FileHandle, ...args: unknown[]) {
      return logged(op, paths.get(this) ?? '?', () => real.apply(this, args));
    });
  }
});
afterAll(() => {
  vi.restoreAllMocks();
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});
afterEach(() => {
  calls.length = 0;
  marks.clear();
});

function msg(id: number): StoredMessage {
  return { id, domain: 'example.com', envelope: { from: 'a@o.example', to: ['b@example.com'] } };
}

/** The calls between two marks, as "op file" lines (for the failure messages). */
function trace(from: number, to: number, base: string): string {
  return calls
    .filter((c) => c.start > from && c.start < to)
    .map(
      (c) =>
        `${c.start}-${c.end} ${c.op} ${path.relative(base, c.file)}${c.to ? ` -> ${path.relative(base, c.to)}` : ''}`,
    )
    .join('\n');
}

const named = (op: string, file: string, after = 0): Call[] =>
  calls.filter((c) => c.op === op && c.file === file && c.start > after);

describe('the order of the calls that make a put durable', () => {
  test('FileSpool: write, fsync the file, rename, fsync the shard directory, then resolve', async () => {
    const dir = path.join(tempDir('file'), 'spool');
    const spool = new FileSpool(dir);
    await spool.put(msg(1), Buffer.from('first: creates the spool and the shard'));
    for (const id of [257, 513]) {
      mark(`start ${id}`);
      await spool.put(msg(id), Buffer.alloc(10_000, 0x61));
      mark(`resolved ${id}`);
      const from = marks.get(`start ${id}`) as number;
      const resolved = marks.get(`resolved ${id}`) as number;
      const shard = path.join(dir, '01');
      const ctx = trace(from, resolved, dir);
      const rename = calls.find((c) => c.op === 'rename' && c.start > from && c.to === path.join(shard, `${id}.msg`));
      expect(rename, ctx).toBeDefined();
      const tmp = (rename as Call).file;
      expect(path.dirname(tmp), ctx).toBe(shard);
      const writes = named('write', tmp, from);
      const syncs = named('sync', tmp, from);
      expect(writes.length, ctx).toBeGreaterThan(0);
      expect(syncs.length, ctx).toBe(1);
      // Every byte written, then synced, before the rename publishes the name.
      for (const w of writes) expect(w.end, ctx).toBeLessThan(syncs[0].start);
      expect(syncs[0].end, ctx).toBeLessThan((rename as Call).start);
      // The rename is made durable by an fsync of the shard directory that starts after it.
      const dirSyncs = named('sync', shard, from).filter((c) => c.start > (rename as Call).end);
      expect(dirSyncs.length, ctx).toBeGreaterThan(0);
      expect(dirSyncs[0].end, ctx).toBeLessThan(resolved);
    }
    await spool.close();
  });

  test('LogSpool: the segment entry synced before its first record; write, fdatasync, then resolve', async () => {
    const dir = path.join(tempDir('log'), 'spool');
    const spool = new LogSpool(dir, { segmentBytes: 16 * 1024 });
    mark('open');
    await spool.open();
    const seg1 = path.join(dir, segmentName(1));
    const created = named('open', seg1);
    expect(created.length).toBe(1);
    const firstDirSync = named('sync', dir).find((c) => c.start > created[0].end);
    expect(firstDirSync, trace(0, clock + 1, dir)).toBeDefined();
    for (let id = 1; id <= 6; id++) {
      mark(`start ${id}`);
      await spool.put(msg(id), Buffer.alloc(6000, 0x61 + id));
      mark(`resolved ${id}`);
      const from = marks.get(`start ${id}`) as number;
      const resolved = marks.get(`resolved ${id}`) as number;
      const ctx = trace(from, resolved, dir);
      const writes = calls.filter((c) => c.op === 'writev' && c.start > from && c.start < resolved);
      expect(writes.length, ctx).toBe(1);
      const seg = writes[0].file;
      const datasyncs = named('datasync', seg, from).filter((c) => c.start < resolved);
      // One sync per put, after the write, ended before put() resolves.
      expect(datasyncs.length, ctx).toBe(1);
      expect(writes[0].end, ctx).toBeLessThan(datasyncs[0].start);
      expect(datasyncs[0].end, ctx).toBeLessThan(resolved);
      // The segment's directory entry was synced before anything was written to it.
      const opened = named('open', seg)[0];
      const entrySync = named('sync', dir).find((c) => c.start > opened.end);
      expect(entrySync, ctx).toBeDefined();
      expect((entrySync as Call).end, ctx).toBeLessThan(named('writev', seg)[0].start);
    }
    // 6 records of ~6 KB in segments of 16 KiB: the log rolled over at least once.
    expect(named('open', path.join(dir, segmentName(2))).length).toBe(1);
    // A removal and a retry state: written, no sync of their own (a new segment's entry is synced
    // when one of them opens it).
    mark('outcomes');
    const direct = spool.stats.direct;
    await spool.remove(1);
    await spool.setRetryState(2, { attempts: 1, nextAttempt: 5 });
    const o = calls.filter((c) => c.start > (marks.get('outcomes') as number));
    const ctx = trace(marks.get('outcomes') as number, clock + 1, dir);
    expect(
      o.filter((c) => c.op === 'datasync'),
      ctx,
    ).toEqual([]);
    const segmentsOpened = o.filter((c) => c.op === 'open' && c.file.endsWith('.seg')).length;
    expect(o.filter((c) => c.op === 'sync' && c.file === dir).length, ctx).toBe(segmentsOpened);
    expect(
      o.filter((c) => c.op === 'sync' && c.file !== dir),
      ctx,
    ).toEqual([]);
    // Each one written once: through a group (writev) or at once (a pwrite on the loop's thread,
    // counted by the spool) when no group was being written.
    expect(o.filter((c) => c.op === 'writev').length + spool.stats.direct - direct, ctx).toBe(2);
    // No group was being written when they came: each went out at once, but for one that had to
    // open a new segment first (that takes a group).
    expect(spool.stats.direct - direct, ctx).toBe(2 - segmentsOpened);
    await spool.close();
  });
});
