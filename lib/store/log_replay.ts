// The replay of a LogSpool's segments (log_spool.ts) into its index: every segment in seq order,
// every good record in file order (log_scan.ts). PUT adds or replaces the id's entry, REMOVE drops
// it, RETRY sets its retry state. Segments without a byte are deleted; a damaged record is
// reported, and cut when it is the torn tail of the last segment with data (log_spool.ts says when).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

import { Segment } from './group_writer.js';
import { type LogRecord, PUT, REMOVE, SEGMENT_RE, segmentName } from './log_format.js';
import { scanSegment } from './log_scan.js';
import { SpoolCorruptError } from './spool_format.js';

const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

/** Where a live message's PUT record is, and what replay or the API recorded for it. */
export interface Entry {
  id: number;
  seg: Segment;
  pos: number;
  size: number;
  metaLen: number;
  bodyLen: number;
  bodyCrc: number;
  /** The message as its JSON meta. */
  meta: string;
  attempts?: number;
  nextAttempt?: number;
}

/** What replay fills: the spool's index and segment list. */
export interface Replayed {
  readonly dir: string;
  readonly onCorrupt: (file: string, error: Error) => void;
  readonly index: Map<number, Entry>;
  readonly segments: Segment[];
}

/** Replays every segment of log.dir; returns the highest seq found (0 when none). */
export async function replayLog(log: Replayed): Promise<number> {
  const seqs = (await fsp.readdir(log.dir))
    .map((n) => SEGMENT_RE.exec(n))
    .filter((m) => m !== null)
    .map((m) => Number.parseInt(m[1], 16))
    .sort((a, b) => a - b);
  // The last segment with data is the one a crash can have left torn (an empty one after it was
  // opened by a process that wrote nothing).
  const sizes = await Promise.all(
    seqs.map((q) =>
      fsp.lstat(path.join(log.dir, segmentName(q))).then(
        (st) => st.size,
        () => 0,
      ),
    ),
  );
  let lastData = sizes.length - 1;
  while (lastData >= 0 && sizes[lastData] === 0) lastData--;
  for (let i = 0; i < seqs.length; i++) await replaySegment(log, seqs[i], i === lastData);
  return seqs.length === 0 ? 0 : seqs[seqs.length - 1];
}

async function replaySegment(log: Replayed, seq: number, last: boolean): Promise<void> {
  const file = path.join(log.dir, segmentName(seq));
  const fh = await fsp.open(file, (last ? fs.constants.O_RDWR : fs.constants.O_RDONLY) | O_NOFOLLOW);
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    log.onCorrupt(file, new SpoolCorruptError(file, 'not a regular file; skipped'));
    return;
  }
  if (st.size === 0) {
    await fh.close();
    await fsp.unlink(file);
    return;
  }
  const seg = new Segment(seq, file, st.size, fh);
  log.segments.push(seg);
  const r = await scanSegment(fh, st.size, last, (rec, buf, pos) => apply(log.index, seg, rec, buf, pos));
  if (r.damage === undefined) return;
  const skipped = st.size - r.end;
  const cut = last && r.torn === true;
  const what = cut ? 'cut (the torn tail of an interrupted write)' : 'skipped, left in place';
  log.onCorrupt(
    file,
    new SpoolCorruptError(
      file,
      `damaged record at byte ${r.end} (${r.damage}); the ${skipped} bytes from there are ${what}`,
    ),
  );
  seg.size = r.end;
  if (cut) {
    await fh.truncate(r.end);
    await fh.datasync();
  }
}

function apply(index: Map<number, Entry>, seg: Segment, r: LogRecord, buf: Buffer, pos: number): void {
  const old = index.get(r.id);
  if (r.type === PUT) {
    if (old !== undefined) old.seg.live -= old.size;
    const e: Entry = {
      id: r.id,
      seg,
      pos,
      size: r.size,
      metaLen: r.metaLen,
      bodyLen: r.bodyLen,
      bodyCrc: r.bodyCrc,
      meta: buf.toString('utf8', r.metaOffset, r.metaOffset + r.metaLen),
    };
    seg.live += r.size;
    index.set(r.id, e);
  } else if (r.type === REMOVE) {
    if (old === undefined) return;
    old.seg.live -= old.size;
    index.delete(r.id);
  } else if (old !== undefined) {
    old.attempts = r.attempts;
    old.nextAttempt = buf.readDoubleLE(r.metaOffset);
  }
}
