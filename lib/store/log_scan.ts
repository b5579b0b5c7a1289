// Replay of one LogSpool segment (log_spool.ts): reads it front to back in large chunks, checks
// every record (log_format.ts) and hands the good ones over in file order. The first damaged record
// ends the segment: nothing after it is trusted, since a damaged length cannot say where the next
// record starts (and looking for the next magic could take a record out of a message body).
import type { FileHandle } from 'node:fs/promises';

import { HEAD_BYTES, type LogRecord, MAGIC, parseRecord } from './log_format.js';

const CHUNK = 8 * 1024 * 1024;

export interface ScanResult {
  /** Offset of the end of the last good record. */
  end: number;
  /** Why the record at `end` is damaged; undefined when the segment ended cleanly. */
  damage?: string;
  /**
   * The damaged record is the segment's last: its head is cut short, or the length it announces
   * reaches or passes the end (the signature of a write interrupted at the end of the log).
   */
  torn?: boolean;
}

/**
 * Calls `onRecord` for each good record of the open segment of `size` bytes, in order; checks the
 * bodies' CRCs when `checkBodies`. A body larger than a chunk (8 MiB) that is not checked is not read.
 */
export async function scanSegment(
  fh: FileHandle,
  size: number,
  checkBodies: boolean,
  onRecord: (r: LogRecord, buf: Buffer, pos: number) => void,
): Promise<ScanResult> {
  let buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(size, HEAD_BYTES)));
  let base = 0; // segment offset of buf[0]
  let filled = 0; // bytes of buf holding segment data
  let off = 0; // offset in buf of the next record
  for (;;) {
    const pos = base + off;
    if (pos === size) return { end: pos };
    const r = parseRecord(buf, off, filled, size - pos, checkBodies);
    if (typeof r === 'string') return { end: pos, damage: r, torn: isTail(buf, off, filled, size - pos) };
    let need: number;
    if (typeof r === 'number') {
      need = r;
    } else {
      // Whole records are read in large sequential reads; only a body larger than a chunk is skipped.
      if (off + r.size <= filled || r.size > CHUNK) {
        onRecord(r, buf, pos);
        if (off + r.size <= filled) {
          off += r.size;
        } else {
          base = pos + r.size;
          off = 0;
          filled = 0;
        }
        continue;
      }
      need = r.size;
    }
    // Needs `need` bytes from off: move them to the front (in a larger buffer if need be) and read on.
    const keep = filled - off;
    if (need > buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(need as number, CHUNK));
      buf.copy(bigger, 0, off, filled);
      buf = bigger;
    } else {
      buf.copy(buf, 0, off, filled);
    }
    base = pos;
    off = 0;
    filled = keep;
    while (filled < buf.length && base + filled < size) {
      const { bytesRead } = await fh.read(
        buf,
        filled,
        Math.min(buf.length - filled, size - base - filled),
        base + filled,
      );
      if (bytesRead === 0) return { end: pos, damage: `the segment ends at ${base + filled} bytes, not ${size}` };
      filled += bytesRead;
    }
  }
}

/** Whether the damaged record at `off` (with `left` bytes to the segment's end) is the last one. */
function isTail(buf: Buffer, off: number, filled: number, left: number): boolean {
  if (left < HEAD_BYTES) return true;
  if (filled - off < HEAD_BYTES || buf.readUInt32LE(off) !== MAGIC) return false;
  return HEAD_BYTES + buf.readUInt32LE(off + 8) + buf.readUInt32LE(off + 12) >= left;
}
