// The reads of LogSpool.load() (log_spool.ts): the bodies of messages no longer in the spool's cache,
// read from the log in windows. Messages sit in the log in the order they were stored, and an MTA
// delivers a backlog in about that order, several connections side by side, so the next message a
// connection asks for is almost always a few kilobytes after the last one read. A read therefore
// takes WINDOW_BYTES of the segment from the body asked for, and the messages after it are served
// from memory: one pread through libuv's thread pool for dozens of messages instead of one each
// (each round trip costs tens of microseconds of CPU on the development machine; decision 43).
//
// A few windows are kept (the connections read at different places), the oldest replaced first.
// A body is a view into its window's buffer, never copied; a window is never written after its
// read, so a body handed out stays valid for as long as the caller holds it. Every body is checked
// against its CRC before it is handed out. What is read lies below the segment's size at the time,
// which only covers whole, written groups.
import fs from 'node:fs';

import type { Segment } from './group_writer.js';

/** Bytes a window reads at the least (more when one body is larger). */
export const WINDOW_BYTES = 256 * 1024;
/** Windows kept at once. */
export const WINDOWS = 8;

interface Window {
  seg: Segment;
  start: number;
  end: number;
  /** The bytes [start, end), once read. */
  data: Buffer | undefined;
  /** Callers waiting for the read. */
  waiters: ((err: Error | null, data?: Buffer) => void)[];
}

export class ReadWindows {
  readonly #windows: Window[] = [];
  /** Windows read (for tests and stats). */
  reads = 0;

  /** @param idle called when a read of a retiring segment ends and no other read uses it */
  constructor(readonly idle: (seg: Segment) => void) {}

  /** The bytes [pos, pos + len) of `seg` when a window read already holds them, else undefined. */
  peek(seg: Segment, pos: number, len: number): Buffer | undefined {
    const end = pos + len;
    for (const w of this.#windows) {
      if (w.seg === seg && w.data !== undefined && pos >= w.start && end <= w.end)
        return w.data.subarray(pos - w.start, end - w.start);
    }
    return undefined;
  }

  /**
   * The bytes [pos, pos + len) of `seg` through its open descriptor `fd`, from a window held or
   * being read, else from a new one. `done` is called once, never before read() returns.
   */
  read(seg: Segment, fd: number, pos: number, len: number, done: (err: Error | null, bytes?: Buffer) => void): void {
    const end = pos + len;
    for (const w of this.#windows) {
      if (w.seg !== seg || pos < w.start || end > w.end) continue;
      const data = w.data;
      if (data !== undefined) queueMicrotask(() => done(null, data.subarray(pos - w.start, end - w.start)));
      else
        w.waiters.push((err, d) =>
          d === undefined ? done(err) : done(null, d.subarray(pos - w.start, end - w.start)),
        );
      return;
    }
    const w: Window = {
      seg,
      start: pos,
      end: Math.max(end, Math.min(pos + WINDOW_BYTES, seg.size)),
      data: undefined,
      waiters: [(err, d) => (d === undefined ? done(err) : done(null, d.subarray(0, len)))],
    };
    this.#keep(w);
    this.reads++;
    const buf = Buffer.allocUnsafe(w.end - w.start);
    seg.reads++;
    const finish = (err: Error | null): void => {
      seg.reads--;
      if (err !== null) this.#drop(w);
      else w.data = buf;
      for (const wake of w.waiters.splice(0)) wake(err, err === null ? buf : undefined);
      if (seg.retiring && seg.reads === 0) this.idle(seg);
    };
    const readFrom = (off: number): void => {
      fs.read(fd, buf, off, buf.length - off, w.start + off, (err, n) => {
        if (err) finish(err);
        else if (n === 0) finish(new RangeError(`${seg.file} ends before byte ${w.start + buf.length}`));
        else if (off + n < buf.length) readFrom(off + n);
        else finish(null);
      });
    };
    readFrom(0);
  }

  /** Drops the windows of `seg` that are read (compaction dropped it, or the spool closed). */
  forget(seg: Segment): void {
    for (let i = this.#windows.length - 1; i >= 0; i--) {
      const w = this.#windows[i];
      if (w.seg === seg && w.data !== undefined) this.#drop(w);
    }
  }

  #keep(w: Window): void {
    // Oldest first (the array is in the order windows were made), but never one whose read is in
    // progress: its waiters find nothing else. With every window reading, one more is kept for now.
    if (this.#windows.length >= WINDOWS) {
      const i = this.#windows.findIndex((x) => x.data !== undefined);
      if (i >= 0) this.#windows.splice(i, 1);
    }
    this.#windows.push(w);
  }

  #drop(w: Window): void {
    const i = this.#windows.indexOf(w);
    if (i >= 0) this.#windows.splice(i, 1);
  }
}
