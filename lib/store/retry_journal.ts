// The retry-state journal of a FileSpool (the spool's layout is in file_spool.ts): one retry.log
// per shard, read, appended to and compacted by the RetryJournals of the FileSpool.
//
// Retry-state journal (retry.log, one per shard)
//   Append-only ASCII, one record per line, each ended by "\n":
//     <id> <attempts> <nextAttempt> <crc>     a state recorded by setRetryState()
//     <id> - - <crc>                          "no state": written by put() of an id that has one
//   <id> and <attempts> in decimal without leading zeros; <nextAttempt> as JavaScript's
//   String(number) writes it (exact: "1700000000000", "1.5", "-8640000000000000"); <crc> the
//   CRC-32 (zlib.crc32) of the bytes before the space that precedes it, as 8 lower-case hex digits.
//   Reading: the last valid record for an id wins. A line that does not parse, fails its CRC,
//   holds a value out of range or an id of another shard is skipped (list() reports the count
//   through onCorrupt); a last line without its "\n" (a write cut by a kill -9) is ignored, and
//   cut off before the next append, so that it cannot swallow the record after it.
//   Writing: setRetryState() appends one line through a FileHandle kept open per shard (O_APPEND),
//   without fsync; appends, loads and compactions of a shard run one at a time.
//   Memory: each instance keeps, per shard it touched (get, put, list, setRetryState), the latest
//   state of every id in that shard's journal: about 100 bytes per message with a recorded state,
//   plus ids removed since the last compaction. The journal is read once per shard and instance.
//   Compaction rewrites the journal with only the latest state of the ids whose <id>.msg exists
//   (temporary file, fsync, rename over retry.log, fsync of the shard), or deletes it (and fsyncs
//   the shard) when none is left. It runs when the journal grows past
//   max(RETRY_LOG_COMPACT_BYTES, twice its size after the last compaction), and in list() when
//   the journal has no state of a listed message, had damaged lines (reported, then dropped), or
//   more than RETRY_LOG_LIST_SLACK lines besides twice the listed messages' states. So a journal stays under a few hundred KiB unless the
//   shard holds thousands of deferred messages, and then about twice their records.
//   remove() does not touch the journal (the state of a removed id dies at compaction); put() of
//   an id that has a state in the journal first appends its "no state" record and fsyncs the
//   journal, so that a message put again after remove() never inherits the old schedule.
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';

import { codedError } from '../errors.js';
import { MAX_ATTEMPTS, MAX_TIME } from '../validate.js';
import type { DirSyncer } from './dir_sync.js';
import type { RetryState } from './message_store.js';
import { MESSAGE_RE, NL, SpoolCorruptError, shardOf } from './spool_format.js';
import { APPEND_FLAGS, READ_FLAGS, isErrno, openRegular, writeFully, writing } from './spool_io.js';

/** The name of a shard's retry-state journal. */
export const RETRY_LOG = 'retry.log';
/** A journal is compacted when it grows past max(this, twice its size after the last compaction). */
export const RETRY_LOG_COMPACT_BYTES = 256 * 1024;
/** list() compacts a journal with more lines than this besides twice its listed messages' states. */
export const RETRY_LOG_LIST_SLACK = 1024;

/** A journal line without its "\n": id, then attempts and nextAttempt (or "- -"), then the CRC. */
const RECORD_RE = /^(0|[1-9][0-9]{0,15}) (?:(0|[1-9][0-9]{0,4}) ([-+.0-9e]{1,32})|- -) ([0-9a-f]{8})$/;

function crcHex(text: string): string {
  return crc32(Buffer.from(text, 'latin1')).toString(16).padStart(8, '0');
}

/** One journal line: a state, or "no state" (undefined). */
function encodeRecord(id: number, state: RetryState | undefined): string {
  const body = state === undefined ? `${id} - -` : `${id} ${state.attempts} ${String(state.nextAttempt)}`;
  return `${body} ${crcHex(body)}\n`;
}

/** A journal line (without its "\n") of shard `shard`; null when it is damaged. */
function parseRecord(line: string, shard: string): { id: number; state: RetryState | undefined } | null {
  const m = RECORD_RE.exec(line);
  if (m === null) return null;
  if (crcHex(line.slice(0, line.length - 9)) !== m[4]) return null;
  const id = Number(m[1]);
  if (!Number.isSafeInteger(id) || shardOf(id) !== shard) return null;
  if (m[2] === undefined) return { id, state: undefined };
  const attempts = Number(m[2]);
  const nextAttempt = Number(m[3]);
  // Only what encodeRecord writes: String() of a finite time in range.
  if (
    attempts > MAX_ATTEMPTS ||
    !Number.isFinite(nextAttempt) ||
    Math.abs(nextAttempt) > MAX_TIME ||
    String(nextAttempt) !== m[3]
  )
    return null;
  return { id, state: { attempts, nextAttempt } };
}

/** One shard's journal, as this instance knows it. */
export interface Journal {
  readonly shard: string;
  readonly file: string;
  /** The latest state per id, as in the file (ids removed since the last compaction included). */
  readonly states: Map<number, RetryState>;
  /** The file read into `states` (once; never rejects). */
  loaded: Promise<void> | undefined;
  /** Why the file cannot be used (not a regular file, unreadable): appends reject with it. */
  broken: Error | undefined;
  /** The append handle, opened on the first append. */
  handle: FileHandle | undefined;
  /** Bytes and complete lines in the file, as far as this instance knows. */
  size: number;
  lines: number;
  /** Damaged lines found by the load (reported), until a compaction drops them. */
  damaged: number;
  compactAt: number;
  compacting: boolean;
  /** Closed (close(), or dropped after its directory went): appends reject. */
  closed: boolean;
  /** Loads, appends and compactions, one at a time. */
  queue: Promise<unknown>;
}

async function closeHandle(j: Journal): Promise<void> {
  const h = j.handle;
  j.handle = undefined;
  await h?.close().catch(() => undefined);
}

/** Cuts a last line without its "\n" (a write cut short) off the end of an open journal. */
async function cutTornTail(fh: FileHandle, size: number): Promise<number> {
  const CHUNK = 64 * 1024;
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - CHUNK);
    const buf = Buffer.alloc(end - start);
    const { bytesRead } = await fh.read(buf, 0, buf.length, start);
    const nl = buf.subarray(0, bytesRead).lastIndexOf(NL);
    if (nl >= 0) {
      end = start + nl + 1;
      break;
    }
    end = start;
  }
  if (end < size) await fh.truncate(end);
  return end;
}

/**
 * The retry-state journals of one FileSpool, by shard: loads, appends and compactions of a shard
 * run one at a time.
 */
export class RetryJournals {
  readonly #journals = new Map<string, Journal>();
  readonly #onCorrupt: (file: string, error: Error) => void;
  readonly #fileMode: number;
  /** The spool's DirSyncer of a directory (shared with put()). */
  readonly #syncer: (dir: string) => DirSyncer;

  constructor(
    /** The spool directory, absolute. */
    readonly dir: string,
    onCorrupt: (file: string, error: Error) => void,
    fileMode: number,
    syncer: (dir: string) => DirSyncer,
  ) {
    this.#onCorrupt = onCorrupt;
    this.#fileMode = fileMode;
    this.#syncer = syncer;
  }

  /** The shard's journal, as this instance knows it (created empty, not loaded, on first use). */
  get(shard: string): Journal {
    let j = this.#journals.get(shard);
    if (j === undefined) {
      j = {
        shard,
        file: path.join(this.dir, shard, RETRY_LOG),
        states: new Map(),
        loaded: undefined,
        broken: undefined,
        handle: undefined,
        size: 0,
        lines: 0,
        damaged: 0,
        compactAt: RETRY_LOG_COMPACT_BYTES,
        compacting: false,
        closed: false,
        queue: Promise.resolve(),
      };
      this.#journals.set(shard, j);
    }
    return j;
  }

  /** Runs op after the journal's earlier operations (whatever their outcome). */
  #serial<T>(j: Journal, op: () => Promise<T>): Promise<T> {
    const p = j.queue.then(op, op);
    j.queue = p.catch(() => undefined);
    return p;
  }

  /** Reads the journal into j.states, once per instance and shard. Never rejects: problems are reported. */
  load(j: Journal): Promise<void> {
    j.loaded ??= this.#serial(j, () => this.#read(j));
    return j.loaded;
  }

  async #read(j: Journal): Promise<void> {
    let data: Buffer;
    try {
      const { fh } = await openRegular(j.file, READ_FLAGS);
      try {
        data = await fh.readFile();
      } finally {
        await fh.close();
      }
    } catch (e) {
      if (isErrno(e, 'ENOENT', 'ENOTDIR')) return;
      j.broken =
        e instanceof SpoolCorruptError
          ? e
          : new SpoolCorruptError(j.file, `unreadable (${(e as Error).message})`, { cause: e });
      this.#onCorrupt(j.file, j.broken);
      return;
    }
    let start = 0;
    let lines = 0;
    let damaged = 0;
    let first = 0;
    for (let nl = data.indexOf(NL); nl >= 0; nl = data.indexOf(NL, start)) {
      lines++;
      const r = parseRecord(data.toString('latin1', start, nl), j.shard);
      start = nl + 1;
      if (r === null) {
        damaged++;
        if (first === 0) first = lines;
      } else if (r.state === undefined) {
        j.states.delete(r.id);
      } else {
        j.states.set(r.id, r.state);
      }
    }
    // Bytes after the last "\n": a torn last line, ignored (cut before the next append).
    j.size = data.length;
    j.lines = lines;
    j.damaged = damaged;
    let live = 0;
    for (const [id, s] of j.states) live += encodeRecord(id, s).length;
    j.compactAt = Math.max(RETRY_LOG_COMPACT_BYTES, 2 * live);
    if (damaged > 0) {
      this.#onCorrupt(
        j.file,
        new SpoolCorruptError(
          j.file,
          `${damaged} damaged line${damaged === 1 ? '' : 's'} skipped (the first is line ${first})`,
        ),
      );
    }
  }

  /** Appends a line; false when the shard directory does not exist (no message can be there). In #serial. */
  async #append(j: Journal, line: string): Promise<boolean> {
    if (j.closed) throw codedError('ERR_CLOSED', 'the spool is closed');
    if (j.broken !== undefined) throw j.broken;
    if (j.handle === undefined) {
      let o: { fh: FileHandle; size: number };
      try {
        o = await openRegular(j.file, APPEND_FLAGS, this.#fileMode);
      } catch (e) {
        if (isErrno(e, 'ENOENT', 'ENOTDIR')) return false;
        throw e;
      }
      try {
        j.size = o.size > 0 ? await cutTornTail(o.fh, o.size) : 0;
      } catch (e) {
        await o.fh.close().catch(() => undefined);
        throw e;
      }
      j.handle = o.fh;
    }
    const buf = Buffer.from(line, 'latin1');
    try {
      for (let off = 0; off < buf.length; ) off += (await j.handle.write(buf, off, buf.length - off)).bytesWritten;
    } catch (e) {
      // Perhaps a part of the line is in: the next open cuts it off.
      await closeHandle(j);
      throw e;
    }
    j.size += buf.length;
    j.lines++;
    return true;
  }

  /** Appends the state to its shard's journal; compacts the journal in the background when it has grown. */
  async record(id: number, s: RetryState): Promise<void> {
    const j = this.get(shardOf(id));
    await this.load(j);
    await this.#serial(j, async () => {
      if (await this.#append(j, encodeRecord(id, s))) j.states.set(id, s);
    });
    if (j.size > j.compactAt && !j.compacting) void this.compactSoon(j);
  }

  /** Appends "no state" for the id (fsynced) when the journal has a state for it. */
  async clear(id: number): Promise<void> {
    const j = this.get(shardOf(id));
    await this.load(j);
    if (!j.states.has(id)) return;
    await this.#serial(j, async () => {
      if (!j.states.has(id)) return;
      // fsynced: the message about to be written is, and must not meet the old state after a power cut.
      if (await this.#append(j, encodeRecord(id, undefined))) await j.handle!.sync();
      j.states.delete(id);
    });
  }

  /** Compacts in the background (after the operations queued so far); a failure is reported. */
  async compactSoon(j: Journal): Promise<void> {
    j.compacting = true;
    try {
      await this.#serial(j, () => this.#compact(j));
    } catch (e) {
      this.#onCorrupt(j.file, e as Error);
    } finally {
      j.compacting = false;
    }
  }

  /**
   * Rewrites the journal with the latest state of each id whose <id>.msg exists (or deletes it
   * when there is none), durably: temporary file, fsync, rename, fsync of the shard. In #serial.
   */
  async #compact(j: Journal): Promise<void> {
    if (j.closed || j.broken !== undefined) return;
    // On failure, wait for the journal to double before trying again.
    j.compactAt = Math.max(j.compactAt, 2 * j.size);
    const shardDir = path.join(this.dir, j.shard);
    let names: string[];
    try {
      names = await fsp.readdir(shardDir);
    } catch (e) {
      if (!isErrno(e, 'ENOENT', 'ENOTDIR')) throw e;
      await closeHandle(j);
      j.states.clear();
      j.size = 0;
      j.lines = 0;
      j.damaged = 0;
      return;
    }
    const live = new Set<number>();
    for (const name of names) {
      const m = MESSAGE_RE.exec(name);
      if (m !== null) live.add(Number(m[1]));
    }
    const keep = [...j.states].filter(([id]) => live.has(id));
    await closeHandle(j);
    let size = 0;
    if (keep.length === 0) {
      try {
        await fsp.unlink(j.file);
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) throw e;
      }
    } else {
      const buf = Buffer.from(keep.map(([id, s]) => encodeRecord(id, s)).join(''), 'latin1');
      const tmp = path.join(shardDir, `.${RETRY_LOG}.${randomBytes(6).toString('hex')}.tmp`);
      writing.add(tmp);
      try {
        const fh = await fsp.open(tmp, 'wx', this.#fileMode);
        try {
          await writeFully(fh, [buf]);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await fsp.rename(tmp, j.file);
      } catch (e) {
        await fsp.unlink(tmp).catch(() => undefined);
        throw e;
      } finally {
        writing.delete(tmp);
      }
      size = buf.length;
    }
    // The rename (or unlink) on disk before anything counts on it: a "no state" record dropped here
    // must not come back with the old journal after a power cut.
    await this.#syncer(shardDir).sync();
    for (const id of [...j.states.keys()]) if (!live.has(id)) j.states.delete(id);
    j.size = size;
    j.lines = keep.length;
    j.damaged = 0;
    j.compactAt = Math.max(RETRY_LOG_COMPACT_BYTES, 2 * size);
  }

  /**
   * Forgets the shard's journal (its directory has gone, and its handle points at a deleted file)
   * and closes it after the operations queued.
   */
  drop(shard: string): void {
    const j = this.#journals.get(shard);
    if (j !== undefined) {
      this.#journals.delete(shard);
      void this.#serial(j, async () => {
        j.closed = true;
        await closeHandle(j);
      });
    }
  }

  /** Closes every journal after the appends queued: later appends reject with ERR_CLOSED. */
  async close(): Promise<void> {
    await Promise.allSettled(
      [...this.#journals.values()].map((j) =>
        this.#serial(j, async () => {
          j.closed = true;
          await closeHandle(j);
        }),
      ),
    );
  }
}
