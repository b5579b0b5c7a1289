// Compaction of a LogSpool (log_spool.ts): bounds the disk use by deleting the oldest segment once
// its live messages have been appended again at the end of the log.
//
// When: the bytes of dead records (removed messages, REMOVE and RETRY records, superseded copies)
// exceed both the live bytes and one segment. So the log stays under about twice the live bytes
// plus two segments.
//
// How: the live messages of the oldest segment are read (each body checked against its CRC; a
// damaged one is reported and not carried over), then, in one synchronous step, re-encoded from
// the index as it is at that moment (a PUT record with the same meta and body, and a RETRY record
// with the latest retry state) and queued as durable groups of at most MOVE_BYTES. When the groups
// are synced, the segment is deleted and the directory fsynced. A remove() or setRetryState()
// called meanwhile is queued after the copies, so replay applies it to them. A crash before the
// deletion leaves two copies of a message, the later one wins at replay.
import fsp from 'node:fs/promises';
import { crc32 } from 'node:zlib';

import { fsyncDir } from './dir_sync.js';
import type { GroupWriter, Segment } from './group_writer.js';
import { HEAD_BYTES, putRecord, retryRecord } from './log_format.js';
import type { Entry } from './log_replay.js';
import type { LogSpool } from './log_spool.js';
import { SpoolCorruptError } from './spool_format.js';

const MOVE_BYTES = 4 * 1024 * 1024;

export function shouldCompact(s: LogSpool): boolean {
  if (s.segments.length < 2) return false;
  let bytes = 0;
  let live = 0;
  for (const seg of s.segments) {
    bytes += seg.size;
    live += seg.live;
  }
  return bytes - live > Math.max(live, s.segmentBytes);
}

/** Moves the oldest segment's live messages to the end of the log and deletes it; false when it cannot. */
export async function compactOldest(s: LogSpool, w: GroupWriter): Promise<boolean> {
  const seg = s.segments[0];
  if (seg === undefined || seg === w.active) return false;
  const entries: Entry[] = [];
  for (const e of s.index.values()) if (e.seg === seg) entries.push(e);
  entries.sort((a, b) => a.pos - b.pos);
  const moves: Promise<void>[] = [];
  let batch: { e: Entry; body: Buffer }[] = [];
  let bytes = 0;
  for (const e of entries) {
    const body = await s.readAt(seg, e.pos + HEAD_BYTES + e.metaLen, e.bodyLen);
    if (crc32(body) !== e.bodyCrc) {
      s.onCorrupt(
        seg.file,
        new SpoolCorruptError(seg.file, `the body of id ${e.id} at byte ${e.pos} fails its CRC; not carried over`),
      );
      if (s.index.get(e.id) === e) {
        s.index.delete(e.id);
        seg.live -= e.size;
      }
      continue;
    }
    batch.push({ e, body });
    bytes += e.size;
    if (bytes >= MOVE_BYTES) {
      moves.push(move(s, w, seg, batch));
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length > 0) moves.push(move(s, w, seg, batch));
  await Promise.all(moves);
  for (const e of s.index.values()) if (e.seg === seg) return false;
  s.segments.shift();
  seg.retiring = true;
  await s.releaseSegment(seg);
  await fsp.unlink(seg.file);
  await fsyncDir(s.dir);
  return true;
}

/** Queues copies of the batch's messages that are still live; points their entries at the copies once synced. */
function move(s: LogSpool, w: GroupWriter, from: Segment, batch: { e: Entry; body: Buffer }[]): Promise<void> {
  const live = batch.filter(({ e }) => s.index.get(e.id) === e && e.seg === from);
  if (live.length === 0) return Promise.resolve();
  const bufs: Buffer[] = [];
  const offsets: number[] = [];
  let off = 0;
  for (const { e, body } of live) {
    offsets.push(off);
    for (const b of putRecord(e.id, Buffer.from(e.meta, 'utf8'), body, e.bodyCrc)) bufs.push(b);
    off += e.size;
    if (e.attempts !== undefined) {
      const r = retryRecord(e.id, { attempts: e.attempts, nextAttempt: e.nextAttempt as number });
      bufs.push(r);
      off += r.length;
    }
  }
  return w.append(bufs, true).then((at) => {
    for (let i = 0; i < live.length; i++) {
      const e = live[i].e;
      if (s.index.get(e.id) !== e || e.seg !== from) continue;
      from.live -= e.size;
      e.seg = at.seg;
      e.pos = at.pos + offsets[i];
      at.seg.live += e.size;
    }
  });
}
