// FileSpool: a MessageStore with one file per message, durable before put() resolves.
//
// Layout
//   <dir>/<shard>/<id>.msg        shard = id % 256 as two lower-case hex digits ("00" .. "ff"), so
//                                 that no directory holds more than 1/256 of the spool. The id is
//                                 written in decimal without leading zeros.
//   <dir>/<shard>/.<id>.msg.<random hex>.tmp
//                                 a put() in progress (or interrupted by a crash). list() deletes
//                                 the ones no put() of this process is writing.
//   <dir>/<shard>/retry.log       the shard's retry-state journal (retry_journal.ts); only in
//                                 shards where setRetryState() recorded something.
//   <dir>/<shard>/.retry.log.<random hex>.tmp
//                                 a compaction of the journal in progress (or interrupted): list()
//                                 deletes it like the others.
//
// Only regular files are messages. A <id>.msg that is a FIFO, a socket, a device, a directory or a
// symbolic link (never followed) is reported by list() through onCorrupt and left in place; get()
// and body() reject with a SpoolCorruptError. Files are opened with O_NOFOLLOW | O_NONBLOCK and
// checked with fstat, so that no open() blocks on a FIFO. A shard directory that readdir fails on
// (EACCES, ELOOP, EIO) is reported (onCorrupt with the shard's path) and list() goes on with the
// next shard.
//
// File format (version 1): see spool_format.ts.
// Retry-state journal (retry.log, one per shard): see retry_journal.ts.
// Directory fsyncs: dir_sync.ts; opening only regular files, and other file access: spool_io.ts.
// The messages stored most recently are also kept in memory for load(): body_cache.ts.
//
// Durability (what is fsynced when)
//   put():  1. the first put() into a shard in this process: mkdir the shard (and <dir>) and fsync
//              <dir> (and the parents of any directory mkdir created), so the shard's own entry is
//              on disk before any message in it counts as stored;
//           2. write the temporary file (O_CREAT|O_EXCL, mode 0600 by default) and fsync it: the
//              header and body bytes are on disk, under a name recovery ignores;
//           3. rename it to <id>.msg (atomic: the name refers to the old nothing or to the whole
//              file, never to a part of it);
//           4. fsync the shard directory, so that the rename itself is on disk;
//           and only then resolves. A crash before step 4 completes leaves either no <id>.msg or a
//           complete one, plus perhaps a temporary file that the next list() deletes; the caller,
//           whose put() never resolved, did not count on the message. Concurrent puts into one
//           shard share directory fsyncs (one that starts after a rename covers it).
//           A put() that finds its directories gone (ENOENT: the spool directory or the shard was
//           removed, and perhaps re-created, under a live FileSpool) creates them again as in step
//           1, with the same fsyncs, and writes once more (once); that shard's journal is dropped
//           from memory and reopened.
//   remove(): unlink only, no fsync. A removal lost in a crash makes the message reappear in the
//           next list(), so it is delivered once more; SMTP tolerates duplicates (at-least-once
//           delivery), and skipping the fsync keeps removal cheap.
//   setRecipients(): the file written again with the narrowed envelope as in put()'s steps 2-4,
//           renamed over the old one (spool_write.ts): a crash leaves the old file or the new one.
//   setRetryState(): append only, no fsync. A kill -9 keeps the record (it is in the page cache);
//           a power cut may lose the latest ones, and those messages are then retried earlier than
//           scheduled (with a lower attempt count), never lost.
//
// A spool directory belongs to one process, and one FileSpool instance, at a time: put() refuses
// an id it is writing or that is on disk, but two processes writing the same id at once could both
// succeed (rename replaces), and two instances recording retry states in one directory would not
// see each other's (a compaction by one drops what the other appends to the replaced file).
import type { Dirent } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';

import { codedError } from '../errors.js';
import { checkId, typeName } from '../validate.js';
import { STREAM_BODY_BYTES, loadStreamed, writeBodyStream } from './body_stream.js';
import { type BodyCache, cacheOf } from './body_cache.js';
import { DirSyncer, mkdirDurable } from './dir_sync.js';
import type { LoadedMessage, MessageStore, RetryState, StoredMessage } from './message_store.js';
import { checkBody, checkRecipientsArgs, checkRetryArgs, checkStoredMessage } from './memory_store.js';
import { rewriteRecipients, writeMessageFile } from './spool_write.js';
import { RETRY_LOG_LIST_SLACK, RetryJournals } from './retry_journal.js';
import {
  JOURNAL_TEMP_RE,
  MESSAGE_RE,
  SHARD_RE,
  SpoolCorruptError,
  TEMP_RE,
  checkHeaderSize,
  encodeHeader,
  encodeStreamHeader,
  parseMessageFile,
  readHeader,
  shardOf,
} from './spool_format.js';
import {
  READ_FLAGS,
  exists,
  isErrno,
  kindOf,
  openRegular,
  checkSpoolArgs,
  putOnce,
  readHeaderOf,
  readMessageFile,
  readRegular,
  unlinkIfThere,
  writeFully,
  writing,
} from './spool_io.js';

export { MAX_HEADER_BYTES, SpoolCorruptError, shardOf } from './spool_format.js';
export { RETRY_LOG, RETRY_LOG_COMPACT_BYTES, RETRY_LOG_LIST_SLACK } from './retry_journal.js';

/** Files list() reads at once. */
const LIST_BATCH = 64;
const OPTION_KEYS: ReadonlySet<string> = new Set(['onCorrupt', 'fileMode', 'cacheBytes']);
/** The default of options.cacheBytes. */

export interface FileSpoolOptions {
  /**
   * Called for each message file list() skips (truncated, unparsable, wrong name or shard, not a
   * regular file, unreadable), each shard directory it cannot read, and each retry journal with
   * damaged lines or that cannot be read or compacted; the file is left in place. Default:
   * console.warn.
   */
  onCorrupt?: (file: string, error: Error) => void;
  /** Permission bits of new message and journal files (default 0o600: mail is private). */
  fileMode?: number;
  /**
   * Bytes of recently stored messages kept in memory for load() (default 32 MiB; 0: none), so
   * that delivering a message soon after put() does not read the file back. A read cache: put()
   * is as durable with it as without.
   */
  cacheBytes?: number;
}

export class FileSpool implements MessageStore {
  /** The spool directory, absolute. */
  readonly dir: string;
  readonly #onCorrupt: (file: string, error: Error) => void;
  readonly #fileMode: number;
  /** Recently stored messages, for load(). */
  readonly #cache: BodyCache;
  #root: Promise<void> | undefined;
  readonly #shards = new Map<string, Promise<string>>();
  /** The #root promise each #shards promise waited for. */
  readonly #shardRoots = new WeakMap<Promise<string>, Promise<void>>();
  /** #shards promises already found stale (their directory gone). */
  readonly #stale = new WeakSet<Promise<string>>();
  readonly #syncers = new Map<string, DirSyncer>();
  readonly #journals: RetryJournals;
  /** put()s in progress, by id. */
  readonly #pending = new Map<number, Promise<void>>();
  #closed = false;

  constructor(dir: string, options?: FileSpoolOptions) {
    const a = checkSpoolArgs(dir, options, OPTION_KEYS, 'mail-queue-core FileSpool: skipping');
    this.dir = a.dir;
    this.#onCorrupt = a.onCorrupt;
    this.#fileMode = a.fileMode;
    this.#cache = cacheOf(a.options.cacheBytes);
    this.#journals = new RetryJournals(this.dir, this.#onCorrupt, this.#fileMode, (d) => this.#syncer(d));
  }

  /** Where the message with this id is (or would be) stored. */
  pathOf(id: number): string {
    checkId(id, 'id');
    return path.join(this.dir, shardOf(id), `${id}.msg`);
  }

  async put(message: StoredMessage, body: Buffer): Promise<void> {
    const m = checkStoredMessage(message);
    const b = checkBody(body);
    if (this.#closed) throw codedError('ERR_CLOSED', 'the spool is closed');
    const header = checkHeaderSize(encodeHeader(m, b));
    await putOnce(this.#pending, m.id, () => this.#write(m.id, (fh) => writeFully(fh, [header, b])));
    // Durable now. A copy of the body: the caller may reuse its buffer.
    if (this.#cache.maxBytes > 0) this.#cache.set(m.id, { envelope: m.envelope, body: Buffer.from(b) });
  }

  /**
   * put() with the body as a stream: written into the temporary file as it comes (after room kept
   * for the header, which is written last, once size and CRC-32 are known), then fsynced and
   * renamed as put() does. Never holds the body whole; one of at most STREAM_BODY_BYTES is kept in
   * the cache. Rejects, with nothing stored and the stream destroyed, when the stream errors or
   * yields something other than bytes, or the arguments are bad.
   */
  async putStream(message: StoredMessage, body: Readable): Promise<void> {
    try {
      const m = checkStoredMessage(message);
      if (!(body instanceof Readable)) throw new TypeError(`body must be a Readable stream, got ${typeName(body)}`);
      if (this.#closed) throw codedError('ERR_CLOSED', 'the spool is closed');
      const room = checkHeaderSize(encodeStreamHeader(m, 0, 0, true)).length;
      const keep = this.#cache.maxBytes > 0 ? STREAM_BODY_BYTES : -1;
      let read = false;
      let kept: Buffer | undefined;
      await putOnce(this.#pending, m.id, () =>
        this.#write(m.id, async (fh) => {
          // A stream is read once: a second write (its directory was removed meanwhile) fails.
          if (read) throw new Error('body: the stream was read by a write that failed');
          read = true;
          const w = await writeBodyStream(fh, body, room, keep);
          await writeFully(fh, [encodeStreamHeader(m, w.size, w.crc32, w.ascii)]);
          kept = w.kept;
        }),
      );
      if (kept !== undefined) this.#cache.set(m.id, { envelope: m.envelope, body: kept });
    } catch (e) {
      (body as Readable | undefined)?.destroy?.();
      throw e;
    }
  }

  /** Writes into the shard (`fill` writes the temporary file's bytes); when its directory has gone
   *  (ENOENT), creates it again and writes once more. */
  async #write(id: number, fill: (fh: FileHandle) => Promise<void>): Promise<void> {
    const name = shardOf(id);
    for (let again = false; ; again = true) {
      const shard = this.#shard(name);
      try {
        await this.#writeIn(await shard, id, fill);
        return;
      } catch (e) {
        if (again || !isErrno(e, 'ENOENT')) throw e;
        this.#shardGone(name, shard);
      }
    }
  }

  async #writeIn(shardDir: string, id: number, fill: (fh: FileHandle) => Promise<void>): Promise<void> {
    const file = path.join(shardDir, `${id}.msg`);
    if (await exists(file)) throw codedError('ERR_DUPLICATE_ID', `message.id ${id} is already stored`);
    // A state the journal still holds for the id (from a message removed since) must not apply.
    await this.#journals.clear(id);
    await writeMessageFile(shardDir, id, fill, this.#fileMode, this.#syncer(shardDir), false);
  }

  #syncer(dir: string): DirSyncer {
    let s = this.#syncers.get(dir);
    if (s === undefined) {
      s = new DirSyncer(dir);
      this.#syncers.set(dir, s);
    }
    return s;
  }

  /** Creates <dir> once per instance (again after #shardGone); fsyncs the parent of every directory that mkdir created. */
  #ensureRoot(): Promise<void> {
    if (this.#root === undefined) {
      const root = mkdirDurable(this.dir);
      this.#root = root;
      root.catch(() => {
        if (this.#root === root) this.#root = undefined;
      });
    }
    return this.#root;
  }

  /**
   * Creates a shard directory once per instance (again after #shardGone) and fsyncs <dir>, so that
   * its entry is on disk. The mkdir is not recursive: a missing <dir> is an ENOENT, for #write to
   * go through #ensureRoot (and its fsyncs) again.
   */
  #shard(name: string): Promise<string> {
    let p = this.#shards.get(name);
    if (p === undefined) {
      const root = this.#ensureRoot();
      const d = path.join(this.dir, name);
      const shard = (async () => {
        await root;
        try {
          await fsp.mkdir(d);
        } catch (e) {
          if (!isErrno(e, 'EEXIST')) throw e;
        }
        await this.#syncer(this.dir).sync();
        return d;
      })();
      this.#shardRoots.set(shard, root);
      this.#shards.set(name, shard);
      shard.catch(() => {
        if (this.#shards.get(name) === shard) this.#shards.delete(name);
      });
      p = shard;
    }
    return p;
  }

  /**
   * A write into the shard that `shard` created found no directory: forget it (and <dir>, when the
   * shard was created under the current #root), so that the next #shard() creates both again, and
   * drop the shard's journal (its handle points at a deleted file). Once per stale promise.
   */
  #shardGone(name: string, shard: Promise<string>): void {
    if (this.#stale.has(shard)) return;
    this.#stale.add(shard);
    if (this.#shards.get(name) === shard) this.#shards.delete(name);
    if (this.#root !== undefined && this.#root === this.#shardRoots.get(shard)) this.#root = undefined;
    this.#journals.drop(name);
  }

  // --- retry states -------------------------------------------------------------------------------

  /**
   * Records a retry state: one line appended to the shard's journal, no fsync. An unknown id is
   * recorded too (nothing checks the disk) and dropped at the next compaction; put() of that id
   * clears it. Rejects with ERR_CLOSED after close(), with a SpoolCorruptError when the journal
   * is not a regular file or could not be read.
   */
  async setRetryState(id: number, state: RetryState): Promise<void> {
    const s = checkRetryArgs(id, state);
    if (this.#closed) throw codedError('ERR_CLOSED', 'the spool is closed');
    await this.#journals.record(id, s);
  }

  /**
   * Narrows the recipients: the file is written again with the new envelope (spool_write.ts: a
   * temporary file fsynced, renamed over <id>.msg, the shard fsynced), so that a crash leaves the
   * old file or the new one. The retry state stays in the journal. Unknown id: nothing written.
   */
  async setRecipients(id: number, to: string[]): Promise<void> {
    const list = checkRecipientsArgs(id, to);
    if (this.#closed) throw codedError('ERR_CLOSED', 'the spool is closed');
    const shardDir = path.join(this.dir, shardOf(id));
    const syncer = this.#syncer(shardDir);
    if (await rewriteRecipients(this.#pending, shardDir, id, list, this.#fileMode, syncer))
      this.#cache.narrow(id, list);
  }

  /** The message with the journal's state for its id, if any. */
  static #withState(m: StoredMessage, s: RetryState | undefined): StoredMessage {
    if (s !== undefined) {
      m.attempts = s.attempts;
      m.nextAttempt = s.nextAttempt;
    }
    return m;
  }

  // --- reading ------------------------------------------------------------------------------------

  /**
   * The stored message (with its recorded retry state), undefined when there is no <id>.msg;
   * rejects with a SpoolCorruptError when the file is damaged or not a regular file.
   */
  async get(id: number): Promise<StoredMessage | undefined> {
    const file = this.pathOf(id);
    const j = this.#journals.get(shardOf(id));
    await this.#journals.load(j);
    const h = await readHeaderOf(file, id);
    return h === undefined ? undefined : FileSpool.#withState(h.message, j.states.get(id));
  }

  /** The body bytes; rejects with ERR_UNKNOWN_ID, or a SpoolCorruptError when the file is damaged or not a regular file. */
  async body(id: number): Promise<Buffer> {
    const file = this.pathOf(id);
    const data = await readMessageFile(file);
    if (data === undefined) throw codedError('ERR_UNKNOWN_ID', `id ${id} is not stored`);
    return parseMessageFile(data, file, id).body;
  }

  /** The envelope and body for delivery: from the cache (decision 37) when this instance stored it
   *  recently, else from one read of the file, checked as by body(); a file larger than
   *  STREAM_BODY_BYTES gives its body as a StreamedBody (read as it is sent, checked before its
   *  end). Undefined: no <id>.msg. */
  load(id: number): LoadedMessage | Promise<LoadedMessage | undefined> {
    const file = this.pathOf(id);
    // Stored by this instance recently: at once, from memory.
    const cached = this.#cache.get(id);
    if (cached !== undefined) return cached;
    return new Promise((resolve, reject) => {
      readRegular(
        file,
        (err, data, tooLarge) => {
          if (tooLarge !== undefined && !err) {
            loadStreamed(file, id).then(resolve, reject);
            return;
          }
          if (err || data === undefined) {
            if (err) reject(err);
            else resolve(undefined);
            return;
          }
          try {
            const { header, body } = parseMessageFile(data, file, id);
            resolve({ envelope: header.message.envelope, body });
          } catch (e) {
            reject(e);
          }
        },
        STREAM_BODY_BYTES,
      );
    });
  }

  /** Unlinks the message file (an unknown id is fine). Waits for a put() of the id in progress. */
  async remove(id: number): Promise<void> {
    const file = this.pathOf(id);
    const p = this.#pending.get(id);
    if (p !== undefined) await p.catch(() => undefined);
    this.#cache.delete(id);
    return unlinkIfThere(file);
  }

  /**
   * Every stored message, shard by shard ("00" to "ff"), by id within a shard, with its recorded
   * retry state. Files that fail their check, are not regular files, and shard directories that
   * cannot be read are reported to options.onCorrupt and skipped; temporary files left by an
   * interrupted put() or compaction are deleted; a journal mostly made of removed messages' states
   * is compacted. Bodies are not read (body() checks the CRC).
   */
  async *list(): AsyncIterable<StoredMessage> {
    let shards: string[];
    try {
      shards = await fsp.readdir(this.dir);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return;
      throw e;
    }
    for (const shard of shards.filter((n) => SHARD_RE.test(n)).sort()) {
      const shardDir = path.join(this.dir, shard);
      let entries: Dirent[];
      try {
        entries = await fsp.readdir(shardDir, { withFileTypes: true });
      } catch (e) {
        if (isErrno(e, 'ENOENT', 'ENOTDIR')) continue;
        // One unreadable shard (EACCES, ELOOP, EIO) must not hide the others.
        this.#onCorrupt(
          shardDir,
          new SpoolCorruptError(shardDir, `shard directory unreadable (${(e as Error).message})`, { cause: e }),
        );
        continue;
      }
      const j = this.#journals.get(shard);
      await this.#journals.load(j);
      const ids: number[] = [];
      for (const entry of entries) {
        const name = entry.name;
        const file = path.join(shardDir, name);
        if (TEMP_RE.test(name) || JOURNAL_TEMP_RE.test(name)) {
          if (!writing.has(file)) await fsp.unlink(file).catch(() => undefined);
          continue;
        }
        const match = MESSAGE_RE.exec(name);
        if (match === null) continue; // not ours
        const id = Number(match[1]);
        if (!Number.isSafeInteger(id)) {
          this.#onCorrupt(file, new SpoolCorruptError(file, 'the id in the file name is not a safe integer'));
        } else if (shardOf(id) !== shard) {
          this.#onCorrupt(file, new SpoolCorruptError(file, `in shard ${shard}, expected ${shardOf(id)}`));
        } else if (!entry.isFile()) {
          this.#onCorrupt(file, new SpoolCorruptError(file, `not a regular file (${kindOf(entry)})`));
        } else {
          ids.push(id);
        }
      }
      if (!this.#closed && j.size > 0 && j.broken === undefined) {
        let withState = 0;
        for (const id of ids) if (j.states.has(id)) withState++;
        // No live state, mostly stale lines, or damaged lines (reported once: not at every restart).
        if (withState === 0 || j.damaged > 0 || j.lines > 2 * withState + RETRY_LOG_LIST_SLACK)
          await this.#journals.compactSoon(j);
      }
      ids.sort((a, b) => a - b);
      for (let i = 0; i < ids.length; i += LIST_BATCH) {
        const batch = await Promise.all(ids.slice(i, i + LIST_BATCH).map((id) => this.#readForList(shardDir, id)));
        for (const r of batch) {
          if (r === undefined) continue;
          if (r instanceof Error) this.#onCorrupt(r.file, r);
          else yield FileSpool.#withState(r, j.states.get(r.id));
        }
      }
    }
  }

  /** The message, a SpoolCorruptError to report, or undefined when the file has gone. */
  async #readForList(shardDir: string, id: number): Promise<StoredMessage | SpoolCorruptError | undefined> {
    const file = path.join(shardDir, `${id}.msg`);
    let fh: FileHandle | undefined;
    try {
      const o = await openRegular(file, READ_FLAGS);
      fh = o.fh;
      return (await readHeader(fh, o.size, file, id)).message;
    } catch (e) {
      if (e instanceof SpoolCorruptError) return e;
      if (isErrno(e, 'ENOENT')) return undefined;
      return new SpoolCorruptError(file, `unreadable (${(e as Error).message})`, { cause: e });
    } finally {
      await fh?.close();
    }
  }

  /**
   * Waits for put()s in progress, then closes the journals (after the appends queued); later
   * put()s and setRetryState()s reject with ERR_CLOSED. Reads keep working.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#pending.values()]);
    this.#cache.clear();
    await this.#journals.close();
  }
}
