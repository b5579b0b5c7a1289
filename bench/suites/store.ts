// Suite `store`: the durable stores of issue 19, FileSpool (one file per message) and LogSpool (an
// append-only segment log with group commit), compiled from dist/, on a directory under os.tmpdir().
//
//   --mode submit   --store file|log --conc C --count N --body B
//       N puts of B-byte bodies by C concurrent submitters (after 200 untimed ones), then the N
//       removals by the same C submitters: puts/s, removals/s, and the fsync + fdatasync calls of
//       each phase (counted by wrapping FileHandle.prototype.sync and .datasync in this process).
//       For LogSpool, also the bytes on disk once the removals' compaction is done.
//   --mode fill     --store file|log --count N --body B --dir D
//       N puts into D (256 submitters), for a later recover in a fresh process.
//   --mode disk     --conc C --count N --body B
//       the disk's own limit, no store: a loop of one pwritev of C records of B + 150 bytes and one
//       fdatasync, N records in all: records/s at C records a sync.
//   --mode recover  --store file|log --dir D
//       a new store on D and one pass over list(): the time, messages, RSS and heap after; for
//       LogSpool then removes 90% and reports the bytes on disk once compaction is done.
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { FileSpool } from '../../dist/lib/store/file_spool.js';
import { LogSpool } from '../../dist/lib/store/log_spool.js';
import type { MessageStore, StoredMessage } from '../../dist/lib/store/message_store.js';
import { arg, emit, log, nowNs, numArg, sinceMs } from '../common.js';

const mode = arg('mode', 'submit');
const store = arg('store', 'log');
const conc = numArg('conc', 64);
const count = numArg('count', 20_000);
const bodyBytes = numArg('body', 4096);

// Every fsync and fdatasync of this process, whichever store makes it.
let syncs = 0;
{
  const probeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-bench-probe-'));
  const probe = await fsp.open(path.join(probeDir, 'x'), 'w');
  const proto = Object.getPrototypeOf(probe) as Record<string, (this: FileHandle) => Promise<void>>;
  await probe.close();
  fs.rmSync(probeDir, { recursive: true });
  for (const name of ['sync', 'datasync']) {
    const real = proto[name];
    proto[name] = function (this: FileHandle) {
      syncs++;
      return real.call(this);
    };
  }
}

function open(dir: string): MessageStore {
  return store === 'file' ? new FileSpool(dir) : new LogSpool(dir);
}

function message(id: number): StoredMessage {
  return {
    id,
    domain: `d${id % 1000}.example`,
    envelope: { from: `sender${id % 97}@origin.example`, to: [`rcpt${id}@d${id % 1000}.example`] },
  };
}
const body = Buffer.alloc(bodyBytes, 0x61);

/** Runs `n` calls of `op` (ids first .. first+n-1) by `c` concurrent callers; ms taken. */
async function run(c: number, first: number, n: number, op: (id: number) => Promise<void>): Promise<number> {
  let next = first;
  const end = first + n;
  const t0 = nowNs();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < end) await op(next++);
    }),
  );
  return sinceMs(t0);
}

async function settled(s: MessageStore): Promise<{ bytes: number; segments: number } | undefined> {
  if (!(s instanceof LogSpool)) return undefined;
  await s.settle();
  return { bytes: s.stats.bytes, segments: s.stats.segments };
}

if (mode === 'submit') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mqc-bench-${store}-`));
  const s = open(dir);
  const WARM = 200;
  await run(conc, 1e9, WARM, (id) => s.put(message(id), body));
  let base = syncs;
  const putMs = await run(conc, 0, count, (id) => s.put(message(id), body));
  const putSyncs = syncs - base;
  base = syncs;
  const removeMs = await run(conc, 0, count, (id) => s.remove(id));
  const removeSyncs = syncs - base;
  const disk = await settled(s);
  await s.close?.();
  fs.rmSync(dir, { recursive: true, force: true });
  log(`  ${store} x${conc}: ${Math.round((count / putMs) * 1000)} puts/s, ${(putSyncs / count).toFixed(3)} syncs/put`);
  emit({
    mode,
    store,
    conc,
    count,
    bodyBytes,
    putsPerSec: (count / putMs) * 1000,
    syncsPerPut: putSyncs / count,
    removesPerSec: (count / removeMs) * 1000,
    syncsPerRemove: removeSyncs / count,
    diskAfterRemovals: disk,
  });
} else if (mode === 'disk') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-bench-disk-'));
  const fh = await fsp.open(path.join(dir, 'log'), 'w');
  const record = Buffer.alloc(bodyBytes + 150, 0x61);
  const group = Array.from({ length: conc }, () => record);
  let pos = 0;
  const t0 = nowNs();
  for (let done = 0; done < count; done += conc) {
    pos += (await fh.writev(group, pos)).bytesWritten;
    await fh.datasync();
  }
  const ms = sinceMs(t0);
  await fh.close();
  fs.rmSync(dir, { recursive: true, force: true });
  log(`  disk x${conc}: ${Math.round((count / ms) * 1000)} records/s`);
  emit({ mode, conc, count, bodyBytes, recordsPerSec: (count / ms) * 1000 });
} else if (mode === 'fill') {
  const dir = arg('dir');
  const s = open(dir);
  const ms = await run(256, 0, count, (id) => s.put(message(id), body));
  await s.close?.();
  log(`  filled ${count} into ${store} in ${(ms / 1000).toFixed(1)} s`);
  emit({ mode, store, count, bodyBytes, fillPerSec: (count / ms) * 1000 });
} else {
  const dir = arg('dir');
  const t0 = nowNs();
  const s = open(dir);
  let n = 0;
  for await (const m of s.list()) if (m.id >= 0) n++;
  const ms = sinceMs(t0);
  const mem = process.memoryUsage();
  let compaction: Record<string, unknown> | undefined;
  if (s instanceof LogSpool) {
    const before = s.stats.bytes;
    let next = 0;
    const t1 = nowNs();
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < n) {
          const id = next++;
          if (id % 10 !== 0) await s.remove(id);
        }
      }),
    );
    await s.settle();
    compaction = {
      bytesBefore: before,
      bytesAfter: s.stats.bytes,
      liveBytes: s.stats.liveBytes,
      segments: s.stats.segments,
      compactions: s.stats.compactions,
      seconds: sinceMs(t1) / 1000,
    };
  }
  await s.close?.();
  log(`  recover ${store}: ${n} messages in ${(ms / 1000).toFixed(2)} s`);
  emit({
    mode,
    store,
    messages: n,
    seconds: ms / 1000,
    rssMiB: mem.rss / 2 ** 20,
    heapMiB: mem.heapUsed / 2 ** 20,
    compaction,
  });
}
