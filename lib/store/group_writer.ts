// The group commit of a LogSpool (log_spool.ts): records wait in a queue while a group is being
// written; the next group takes all of them (up to GROUP_BYTES), writes them with one pwritev at
// the end of the active segment and, when any of them must be durable (a put), calls fdatasync
// once for the whole group. Records that need no sync of their own (remove, retry state) are
// handed to the OS with the group they fall in and resolve after the write; a later durable group
// syncs them too. When no group is being written, such a record is written at once instead, with
// one pwrite on the event loop's thread (writeNow): a write into the page cache costs a few
// microseconds, where a group costs a turn of the event loop, a hand-over to libuv's thread pool
// and a wake-up on completion (decision 52).
//
// Faults: a group whose write or sync fails rejects every record in it. The segment is cut back to
// where the group started (ftruncate), so that the next group does not follow a torn one; when the
// cut fails, or the sync failed (what reached the disk is then unknown), the segment is sealed and
// the next group opens a new one.
import { ftruncateSync, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/** Bytes a group takes from the queue at most (one record more when the first is larger). */
export const GROUP_BYTES = 8 * 1024 * 1024;

/** A segment file of the log. */
export class Segment {
  /** Bytes of live PUT records in it. */
  live = 0;
  /** Reads in progress through fh. */
  reads = 0;
  /** No more appends: the next group opens a new segment. */
  sealed = false;
  /** Dropped by compaction, or the spool closed: fh is closed when the last read ends. */
  retiring = false;
  constructor(
    readonly seq: number,
    readonly file: string,
    /** Bytes of whole records (appends go here). */
    public size: number,
    public fh: FileHandle | undefined,
  ) {}
}

interface Op {
  bufs: Buffer[];
  bytes: number;
  durable: boolean;
  resolve(at: Placement): void;
  reject(e: unknown): void;
}

export interface Placement {
  seg: Segment;
  /** Offset of the op's first byte in the segment. */
  pos: number;
}

export class GroupWriter {
  #queue: Op[] = [];
  #running: Promise<void> | undefined;
  /** fdatasync calls made. */
  syncs = 0;
  /** Groups written. */
  groups = 0;
  /** Records written at once (writeNow), outside any group. */
  direct = 0;

  constructor(
    public active: Segment,
    readonly segmentBytes: number,
    /** Opens the next segment (its directory entry durable) and returns it. */
    readonly roll: () => Promise<Segment>,
  ) {}

  /** Queues buffers written together, contiguous; resolves where they were written. */
  append(bufs: Buffer[], durable: boolean): Promise<Placement> {
    let bytes = 0;
    for (const b of bufs) bytes += b.length;
    return new Promise<Placement>((resolve, reject) => {
      this.#queue.push({ bufs, bytes, durable, resolve, reject });
      if (this.#running === undefined) this.#running = this.#loop();
    });
  }

  /**
   * Writes a record that needs no sync at once, when nothing is queued or being written and the
   * active segment has room (so it lands after every record before it); returns where, or
   * undefined when it must wait for a group (append()). Throws what the write threw, the segment
   * cut back as a failed group's is.
   */
  writeNow(buf: Buffer): Placement | undefined {
    const seg = this.active;
    if (this.#running !== undefined || seg.sealed || seg.size >= this.segmentBytes || seg.fh === undefined)
      return undefined;
    const fd = seg.fh.fd;
    const start = seg.size;
    try {
      let done = 0;
      while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done, start + done);
    } catch (e) {
      try {
        ftruncateSync(fd, start);
      } catch {
        seg.sealed = true;
      }
      throw e;
    }
    seg.size = start + buf.length;
    this.direct++;
    return { seg, pos: start };
  }

  /** Resolves when the queue is empty and no group is being written. */
  async drain(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async #loop(): Promise<void> {
    // Let the submits of this turn of the event loop join the first group.
    await new Promise<void>((r) => setImmediate(r));
    while (this.#queue.length > 0) {
      let n = 0;
      let bytes = 0;
      while (n < this.#queue.length && (n === 0 || bytes + this.#queue[n].bytes <= GROUP_BYTES)) {
        bytes += this.#queue[n].bytes;
        n++;
      }
      const group = this.#queue.splice(0, n);
      try {
        const at = await this.#commit(group, bytes);
        for (let i = 0; i < group.length; i++) group[i].resolve(at[i]);
      } catch (e) {
        for (const op of group) op.reject(e);
      }
    }
    this.#running = undefined;
  }

  async #commit(group: Op[], bytes: number): Promise<Placement[]> {
    if (this.active.sealed || this.active.size >= this.segmentBytes) this.active = await this.roll();
    const seg = this.active;
    const fh = seg.fh as FileHandle;
    const start = seg.size;
    const bufs: Buffer[] = [];
    const at: Placement[] = [];
    let pos = start;
    let durable = false;
    for (const op of group) {
      at.push({ seg, pos });
      pos += op.bytes;
      durable ||= op.durable;
      for (const b of op.bufs) bufs.push(b);
    }
    let synced = false;
    try {
      await writeAllAt(fh, bufs, bytes, start);
      if (durable) {
        synced = true;
        this.syncs++;
        await fh.datasync();
      }
    } catch (e) {
      try {
        await fh.truncate(start);
        if (synced) seg.sealed = true;
      } catch {
        seg.sealed = true;
      }
      throw e;
    }
    seg.size = pos;
    this.groups++;
    return at;
  }
}

/** pwritev of all the bytes at `pos`, again from where a short write stopped. */
async function writeAllAt(fh: FileHandle, bufs: Buffer[], bytes: number, pos: number): Promise<void> {
  let done = (await fh.writev(bufs, pos)).bytesWritten;
  if (done === bytes) return;
  const rest = Buffer.concat(bufs).subarray(done);
  let off = 0;
  while (off < rest.length) {
    const { bytesWritten } = await fh.write(rest, off, rest.length - off, pos + done);
    off += bytesWritten;
    done += bytesWritten;
  }
}
