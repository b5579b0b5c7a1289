// LogSpool.setRecipients() (log_spool.ts): a message appended again with its recipients narrowed.
// The new PUT record holds the same meta but for the envelope and the same body; a RETRY record
// with the message's retry state follows it (a PUT starts without one at replay), both in one
// durable group. Replay keeps the later PUT of an id, so a crash leaves the old list or the new
// one. The caller keeps compaction from running meanwhile: a compaction's copy of the old record,
// appended after this one, would bring the old list back at replay.
import { decodeMeta, encodeMeta, HEAD_BYTES, putRecord, retryRecord } from './log_format.js';
import type { GroupWriter } from './group_writer.js';
import type { LogSpool } from './log_spool.js';

/** Appends message `id` again with recipients `to`; false when it is not stored (or was removed
 *  meanwhile). `cached`: its body, when the spool has it in memory. */
export async function appendNarrowed(
  s: LogSpool,
  w: GroupWriter,
  id: number,
  to: string[],
  cached: Buffer | undefined,
): Promise<boolean> {
  const old = s.index.get(id);
  if (old === undefined) return false;
  const m = decodeMeta(old.meta, old.seg.file, id);
  const meta = encodeMeta({ ...m, envelope: { from: m.envelope.from, to } });
  const body = cached ?? (await s.body(id));
  if (s.index.get(id) !== old) return false; // removed (or narrowed) while the body was read
  const bufs = putRecord(id, meta, body, old.bodyCrc);
  if (old.attempts !== undefined)
    bufs.push(retryRecord(id, { attempts: old.attempts, nextAttempt: old.nextAttempt as number }));
  const at = await w.append(bufs, true);
  const e = s.index.get(id);
  if (e === undefined) return false; // removed meanwhile: its REMOVE record came after the copy
  const size = HEAD_BYTES + meta.length + body.length;
  e.seg.live -= e.size;
  Object.assign(e, { seg: at.seg, pos: at.pos, size, metaLen: meta.length, meta: meta.toString('utf8') });
  at.seg.live += size;
  return true;
}
