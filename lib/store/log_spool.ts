// LogSpool: a MessageStore in an append-only segment log with group commit, durable before put()
// resolves like FileSpool, at a fraction of its syncs: concurrent puts share one fdatasync, and
// removals and retry states ride the next group without a sync of their own.
//
// Layout: <dir>/<seq>.seg, the segments (names and record format: log_format.ts). Nothing else in
// <dir> is read; other files are left alone.
//
// Opening (the first call that needs the contents, or open()): mkdir <dir> (fsyncing the parents of
// what it created), replay every segment in seq order into an index in memory (log_replay.ts:
// id -> where the record is, its meta and retry state), then create the next segment, O_EXCL, and
// fsync <dir> before anything is appended to it. Every open appends to a new segment; a segment that holds no
// byte is deleted. A damaged record (log_scan.ts) is reported through onCorrupt with the segment
// and byte offset, and ends that segment's replay. When it is the last record of the last segment
// (the one written when the previous process ended: its head cut short, or the length it announces
// reaching the end), it is the torn tail of an interrupted group, never acknowledged, and is cut
// (ftruncate + fdatasync). Otherwise the rest of the segment is left in place and reported at each
// open until compaction drops the segment (its messages are not delivered).
//
// Durability (group_writer.ts): put() resolves after the group holding its record was written and
// fdatasynced (with the segment's directory entry fsynced when the segment was created). remove()
// and setRetryState() resolve after their record was written (a kill -9 keeps it; a power cut may
// lose the latest ones: a removed message is then delivered once more, a retry state falls back to
// the previous one, as with FileSpool). One submitter: one fdatasync per put.
//
// Compaction (log_compactor.ts) keeps the disk use bounded: when the bytes of dead records
// (removed messages, superseded states) exceed both the live bytes and one segment, the oldest
// segment's live messages are appended again (with their retry state), synced, and the segment is
// deleted (and <dir> fsynced). Only the oldest segment is ever deleted, because its REMOVE records
// can only concern PUTs in it: replay of the rest stays exact.
//
// A spool directory belongs to one LogSpool at a time (nothing locks it).
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';

import { codedError } from '../errors.js';
import { type BodyCache, cacheOf } from './body_cache.js';
import { checkId, checkInt } from '../validate.js';
import { fsyncDir, mkdirDurable } from './dir_sync.js';
import { GroupWriter, Segment } from './group_writer.js';
import { compactOldest, shouldCompact } from './log_compactor.js';
import {
  HEAD_BYTES,
  MAX_BODY_BYTES,
  decodeMeta,
  encodeMeta,
  putRecord,
  removeRecord,
  retryRecord,
  segmentName,
} from './log_format.js';
import { ReadWindows } from './log_read_window.js';
import { type Entry, replayLog } from './log_replay.js';
import { appendNarrowed } from './log_rewrite.js';
import type { LogSpoolOptions, LogSpoolStats } from './log_spool_options.js';
import { checkSpoolArgs, putOnce } from './spool_io.js';
import type { LoadedMessage, MessageStore, RetryState, StoredMessage } from './message_store.js';
import { checkBody, checkRecipientsArgs, checkRetryArgs, checkStoredMessage } from './memory_store.js';
import { MAX_HEADER_BYTES, SpoolCorruptError } from './spool_format.js';

export { SEGMENT_RE, segmentName } from './log_format.js';
export type { Entry } from './log_replay.js';
export type { LogSpoolOptions, LogSpoolStats } from './log_spool_options.js';

/** Default segment size: a new segment is started once the active one holds this many bytes. */
export const SEGMENT_BYTES = 64 * 1024 * 1024;
const OPTION_KEYS: ReadonlySet<string> = new Set(['onCorrupt', 'fileMode', 'segmentBytes', 'cacheBytes']);
const COMPACT_RETRY_MS = 1000;
const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

export class LogSpool implements MessageStore {
  /** The spool directory, absolute. */
  readonly dir: string;
  readonly onCorrupt: (file: string, error: Error) => void;
  readonly #fileMode: number;
  readonly segmentBytes: number;
  /** Live messages by id. */
  readonly index = new Map<number, Entry>();
  /** Segments, oldest first; the last one is where appends go. */
  readonly segments: Segment[] = [];
  #ready: Promise<GroupWriter> | undefined;
  #writer: GroupWriter | undefined;
  readonly #pending = new Map<number, Promise<void>>();
  #compacting: Promise<void> | undefined;
  /** setRecipients() calls in progress (no compaction starts meanwhile). */
  #narrowing = 0;
  compactions = 0;
  /** No compaction starts before this time (ms since the epoch): set after one failed. */
  #compactAfter = 0;
  #closed = false;
  /** Recently stored messages, for load(). */
  readonly #cache: BodyCache;
  /** The windows of the log that load() read last. */
  readonly #windows = new ReadWindows((seg) => void this.releaseSegment(seg));

  constructor(dir: string, options?: LogSpoolOptions) {
    const a = checkSpoolArgs(dir, options, OPTION_KEYS, 'mail-queue-core LogSpool:');
    this.dir = a.dir;
    this.onCorrupt = a.onCorrupt;
    this.#fileMode = a.fileMode;
    const n = a.options.segmentBytes;
    this.segmentBytes = n === undefined ? SEGMENT_BYTES : checkInt(n, 'options.segmentBytes', 4096, 2 ** 31);
    this.#cache = cacheOf(a.options.cacheBytes);
  }

  /** Replays the segments (once) and opens a new one for appends; the other methods call it. */
  open(): Promise<void> {
    return this.#open().then(() => undefined);
  }

  #open(): Promise<GroupWriter> {
    if (this.#ready === undefined) {
      const ready = this.#replay();
      this.#ready = ready;
      ready.catch(() => {
        if (this.#ready === ready) this.#ready = undefined;
      });
    }
    return this.#ready;
  }

  async #replay(): Promise<GroupWriter> {
    await mkdirDurable(this.dir);
    const last = await replayLog(this);
    const seg = await this.#newSegment(last + 1);
    this.#writer = new GroupWriter(seg, this.segmentBytes, () =>
      this.#newSegment(this.segments[this.segments.length - 1].seq + 1),
    );
    return this.#writer;
  }

  /** Creates segment `seq` (O_EXCL), fsyncs <dir> so that its entry is on disk, appends it to the list. */
  async #newSegment(seq: number): Promise<Segment> {
    const file = path.join(this.dir, segmentName(seq));
    const fh = await fsp.open(
      file,
      fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | O_NOFOLLOW,
      this.#fileMode,
    );
    try {
      await fsyncDir(this.dir);
    } catch (e) {
      await fh.close().catch(() => undefined);
      await fsp.unlink(file).catch(() => undefined);
      throw e;
    }
    const seg = new Segment(seq, file, 0, fh);
    this.segments.push(seg);
    return seg;
  }

  // --- writing ------------------------------------------------------------------------------------

  async put(message: StoredMessage, body: Buffer): Promise<void> {
    const m = checkStoredMessage(message);
    const b = checkBody(body);
    if (this.#closed) throw codedError('ERR_CLOSED', 'the spool is closed');
    const meta = encodeMeta(m);
    if (meta.length > MAX_HEADER_BYTES)
      throw new RangeError(`message: its JSON of ${meta.length} bytes exceeds ${MAX_HEADER_BYTES}`);
    if (b.length > MAX_BODY_BYTES) throw new RangeError(`body: ${b.length} bytes exceed ${MAX_BODY_BYTES}`);
    // A copy: the record waits for its group, and the caller may reuse its buffer meanwhile (the
    // record's CRC would then fail). The cache keeps the same copy once it is durable.
    const own = Buffer.from(b);
    await putOnce(this.#pending, m.id, () => this.#put(m.id, meta, own));
    if (this.#cache.maxBytes > 0) this.#cache.set(m.id, { envelope: m.envelope, body: own });
  }

  async #put(id: number, meta: Buffer, body: Buffer): Promise<void> {
    const writer = await this.#open();
    if (this.index.has(id)) throw codedError('ERR_DUPLICATE_ID', `message.id ${id} is already stored`);
    const bodyCrc = crc32(body);
    const at = await writer.append(putRecord(id, meta, body, bodyCrc), true);
    const size = HEAD_BYTES + meta.length + body.length;
    const e: Entry = {
      id,
      seg: at.seg,
      pos: at.pos,
      size,
      metaLen: meta.length,
      bodyLen: body.length,
      bodyCrc,
      meta: meta.toString('utf8'),
    };
    at.seg.live += size;
    this.index.set(id, e);
  }

  /** Forgets the message: a REMOVE record written at once, or in the next group while one is being written; no sync of its own. Waits for a put() of the id in progress. */
  async remove(id: number): Promise<void> {
    checkId(id, 'id');
    const p = this.#pending.get(id);
    if (p !== undefined) await p.catch(() => undefined);
    this.#cache.delete(id);
    const writer = this.#writer ?? (await this.#open());
    await this.#removeIndexed(writer, id);
  }

  /**
   * remove() without a promise when its record can be written at once (the spool is open, no put()
   * of the id is in progress, no group is being written): undefined then, else remove()'s promise.
   * A bad id, or a closed spool that holds the id, throws (before the spool opened: rejects).
   */
  removeNow(id: number): Promise<void> | undefined {
    const writer = this.#writer;
    // A subclass or an instance that replaced remove() gets its own remove().
    if (writer === undefined || this.#pending.has(id) || this.remove !== LogSpool.prototype.remove)
      return this.remove(id);
    checkId(id, 'id');
    this.#cache.delete(id);
    return this.#removeIndexed(writer, id);
  }

  /** The removal of an id whose put() is not in progress: undefined when its record was written
   *  at once, or the group's promise. Throws ERR_CLOSED, or what an immediate write threw. */
  #removeIndexed(writer: GroupWriter, id: number): Promise<void> | undefined {
    const e = this.index.get(id);
    if (e === undefined) return undefined;
    if (this.#closed) throw codedError('ERR_CLOSED', 'the spool is closed');
    // Out of the index at once, so that a compaction that starts now does not carry it forward.
    this.index.delete(id);
    e.seg.live -= e.size;
    const restore = (err: unknown): never => {
      if (!this.index.has(id)) {
        this.index.set(id, e);
        e.seg.live += e.size;
      }
      throw err;
    };
    const rec = removeRecord(id);
    let now: unknown;
    try {
      now = writer.writeNow(rec);
    } catch (err) {
      return restore(err);
    }
    if (now !== undefined) {
      this.#maybeCompact();
      return undefined;
    }
    return writer.append([rec], false).then(() => this.#maybeCompact(), restore);
  }

  /**
   * Records a retry state: a RETRY record written like remove()'s, no sync of its own. An unknown id is
   * ignored (nothing written). Rejects with ERR_CLOSED after close().
   */
  async setRetryState(id: number, state: RetryState): Promise<void> {
    const s = checkRetryArgs(id, state);
    if (this.#closed) throw codedError('ERR_CLOSED', 'the spool is closed');
    const writer = await this.#open();
    const e = this.index.get(id);
    if (e === undefined) return;
    // In memory at once, so that a compaction that starts now carries the new state.
    e.attempts = s.attempts;
    e.nextAttempt = s.nextAttempt;
    const rec = retryRecord(id, s);
    if (writer.writeNow(rec) === undefined) await writer.append([rec], false);
    this.#maybeCompact();
  }

  /** Narrows the recipients: the message appended again, durably (log_rewrite.ts); no compaction
   *  runs meanwhile. Unknown id: nothing written. */
  async setRecipients(id: number, to: string[]): Promise<void> {
    const list = checkRecipientsArgs(id, to);
    if (this.#closed) throw codedError('ERR_CLOSED', 'the spool is closed');
    const writer = await this.#open();
    while (this.#compacting !== undefined) await this.#compacting;
    this.#narrowing++;
    try {
      if (await appendNarrowed(this, writer, id, list, this.#cache.get(id)?.body)) this.#cache.narrow(id, list);
    } finally {
      this.#narrowing--;
    }
    this.#maybeCompact();
  }

  #maybeCompact(): void {
    if (this.#compacting !== undefined || this.#narrowing > 0 || this.#closed || Date.now() < this.#compactAfter)
      return;
    if (!shouldCompact(this)) return;
    this.#compacting = compactOldest(this, this.#writer as GroupWriter)
      .then(
        (dropped) => {
          if (dropped) this.compactions++;
          return dropped;
        },
        (e: unknown) => {
          this.onCorrupt(
            this.dir,
            new SpoolCorruptError(this.dir, `compaction failed (${(e as Error).message})`, { cause: e }),
          );
          return false;
        },
      )
      .then((dropped) => {
        this.#compacting = undefined;
        // On to the next segment at once; after a failure (a full disk), not before a second.
        if (dropped) this.#maybeCompact();
        else this.#compactAfter = Date.now() + COMPACT_RETRY_MS;
      });
  }

  // --- reading ------------------------------------------------------------------------------------

  /** The stored message with its retry state, undefined when unknown; a SpoolCorruptError when its record is damaged. */
  async get(id: number): Promise<StoredMessage | undefined> {
    checkId(id, 'id');
    await this.#open();
    const e = this.index.get(id);
    return e === undefined ? undefined : LogSpool.#message(e);
  }

  static #message(e: Entry): StoredMessage {
    const m = decodeMeta(e.meta, e.seg.file, e.id);
    if (e.attempts !== undefined) {
      m.attempts = e.attempts;
      m.nextAttempt = e.nextAttempt;
    }
    return m;
  }

  /** The body bytes, checked against their CRC; rejects with ERR_UNKNOWN_ID or a SpoolCorruptError. */
  async body(id: number): Promise<Buffer> {
    checkId(id, 'id');
    await this.#open();
    const e = this.index.get(id);
    if (e === undefined) throw codedError('ERR_UNKNOWN_ID', `id ${id} is not stored`);
    const b = await this.readAt(e.seg, e.pos + HEAD_BYTES + e.metaLen, e.bodyLen);
    if (crc32(b) !== e.bodyCrc)
      throw new SpoolCorruptError(e.seg.file, `the body of id ${id} at byte ${e.pos} fails its CRC`);
    return b;
  }

  /** The envelope and body for delivery: from memory when this instance stored the message
   *  recently, else from the log, checked as by body(). Undefined when unknown. */
  load(id: number): LoadedMessage | Promise<LoadedMessage | undefined> {
    checkId(id, 'id');
    const cached = this.#cache.get(id);
    if (cached !== undefined) return cached;
    if (this.#writer === undefined) return this.#open().then(() => this.load(id));
    const e = this.index.get(id);
    if (e === undefined) return Promise.resolve(undefined);
    const fh = e.seg.fh;
    if (fh === undefined) return this.#loadFromLog(e);
    // From a window of the log read for this message and those stored after it (log_read_window.ts):
    // at once when a window already holds it.
    const at = e.pos + HEAD_BYTES + e.metaLen;
    const held = this.#windows.peek(e.seg, at, e.bodyLen);
    if (held !== undefined) {
      if (crc32(held) !== e.bodyCrc)
        return Promise.reject(new SpoolCorruptError(e.seg.file, `the body of id ${id} at byte ${e.pos} fails its CRC`));
      return { envelope: LogSpool.#message(e).envelope, body: held };
    }
    return new Promise((resolve, reject) => {
      this.#windows.read(e.seg, fh.fd, at, e.bodyLen, (err, body) => {
        if (body === undefined) reject(err);
        else if (crc32(body) !== e.bodyCrc)
          reject(new SpoolCorruptError(e.seg.file, `the body of id ${id} at byte ${e.pos} fails its CRC`));
        else {
          try {
            resolve({ envelope: LogSpool.#message(e).envelope, body });
          } catch (metaErr) {
            reject(metaErr);
          }
        }
      });
    });
  }

  /** load() of a message in a segment whose handle was closed (the spool closed). */
  async #loadFromLog(e: Entry): Promise<LoadedMessage | undefined> {
    const m = LogSpool.#message(e);
    return { envelope: m.envelope, body: await this.body(e.id) };
  }

  /** Reads `len` bytes of a segment at `pos` (through its open handle, or a new one after close()). */
  async readAt(seg: Segment, pos: number, len: number): Promise<Buffer> {
    const b = Buffer.allocUnsafe(len);
    seg.reads++;
    let fh: FileHandle | undefined = seg.fh;
    const own = fh === undefined;
    try {
      if (fh === undefined) fh = await fsp.open(seg.file, fs.constants.O_RDONLY | O_NOFOLLOW);
      let off = 0;
      while (off < len) {
        const { bytesRead } = await fh.read(b, off, len - off, pos + off);
        if (bytesRead === 0) throw new SpoolCorruptError(seg.file, `ends before byte ${pos + len}`);
        off += bytesRead;
      }
      return b;
    } finally {
      if (own) await fh?.close();
      seg.reads--;
      if (seg.retiring && seg.reads === 0) await this.releaseSegment(seg);
    }
  }

  /** Closes a segment's handle once no read uses it. */
  async releaseSegment(seg: Segment): Promise<void> {
    this.#windows.forget(seg);
    const fh = seg.fh;
    if (fh === undefined || seg.reads > 0) return;
    seg.fh = undefined;
    await fh.close();
  }

  /**
   * Every stored message with its retry state, about in the order they were put (compaction moves
   * some later). A message whose meta does not parse is reported to onCorrupt and skipped.
   */
  list(): AsyncIterable<StoredMessage> {
    // A plain iterator, not an async generator: one settled promise per message (recover() of a
    // million messages spends a second less).
    return {
      [Symbol.asyncIterator]: () => {
        let entries: IterableIterator<Entry> | undefined;
        const step = (): IteratorResult<StoredMessage> => {
          for (;;) {
            const r = (entries as IterableIterator<Entry>).next();
            if (r.done === true) return { done: true, value: undefined };
            const e = r.value;
            if (this.index.get(e.id) !== e) continue; // removed since
            try {
              return { done: false, value: LogSpool.#message(e) };
            } catch (err) {
              this.onCorrupt(e.seg.file, err as Error);
            }
          }
        };
        return {
          next: async () => {
            if (entries === undefined) {
              await this.#open();
              // The messages stored when the iteration starts, less those removed since.
              entries = [...this.index.values()].values();
            }
            return step();
          },
        };
      },
    };
  }

  get stats(): LogSpoolStats {
    let bytes = 0;
    let liveBytes = 0;
    for (const s of this.segments) {
      bytes += s.size;
      liveBytes += s.live;
    }
    return {
      messages: this.index.size,
      segments: this.segments.length,
      bytes,
      liveBytes,
      syncs: this.#writer?.syncs ?? 0,
      groups: this.#writer?.groups ?? 0,
      direct: this.#writer?.direct ?? 0,
      compactions: this.compactions,
      windowReads: this.#windows.reads,
    };
  }

  /**
   * Waits for put()s, a compaction and the queued records, then closes the segment files; later
   * put()s, remove()s and setRetryState()s reject with ERR_CLOSED. Reads keep working.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#cache.clear();
    await Promise.allSettled([...this.#pending.values()]);
    await this.#compacting;
    await this.#writer?.drain();
    for (const s of this.segments) {
      s.retiring = true;
      await this.releaseSegment(s);
    }
  }

  /** Resolves when the queued records are written and no compaction is running (nor due). */
  async settle(): Promise<void> {
    for (;;) {
      await this.#writer?.drain();
      if (this.#compacting === undefined) return;
      await this.#compacting;
    }
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#closed;
  }
}
