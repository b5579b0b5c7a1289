// FileSpool: a MessageStore with one file per message, durable before put() resolves.
//
// Layout
//   <dir>/<shard>/<id>.msg        shard = id % 256 as two lower-case hex digits ("00" .. "ff"), so
//                                 that no directory holds more than 1/256 of the spool. The id is
//                                 written in decimal without leading zeros.
//   <dir>/<shard>/.<id>.msg.<random hex>.tmp
//                                 a put() in progress (or interrupted by a crash). list() deletes
//                                 the ones no put() of this process is writing.
//   <dir>/<shard>/retry.log       the shard's retry-state journal (below); only in shards where
//                                 setRetryState() recorded something.
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
// File format (version 1)
//   line 1   one line of JSON, UTF-8, ended by "\n" (JSON.stringify never emits a raw newline):
//              {"v":1,"size":<body bytes>,"crc32":<CRC-32 of the body, as zlib.crc32>,"message":<StoredMessage>}
//            An expiresAt of Infinity ("never") is written as the string "Infinity".
//   line 2   empty: a single "\n"
//   rest     exactly `size` raw body bytes, unchanged (binary, any line endings, "\n\n" included).
//   So the file is `header line + 1 + size` bytes long; a shorter file is truncated, a longer one
//   damaged. list() and get() check the header and that size; body() also checks the CRC.
//   The message is as put() got it, attempts and nextAttempt included when given; the retry
//   journal, when it holds a state for the id, overrides those two.
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
//   setRetryState(): append only, no fsync. A kill -9 keeps the record (it is in the page cache);
//           a power cut may lose the latest ones, and those messages are then retried earlier than
//           scheduled (with a lower attempt count), never lost.
//
// A spool directory belongs to one process, and one FileSpool instance, at a time: put() refuses
// an id it is writing or that is on disk, but two processes writing the same id at once could both
// succeed (rename replaces), and two instances recording retry states in one directory would not
// see each other's (a compaction by one drops what the other appends to the replaced file).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { Dirent, Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';

import { codedError } from '../errors.js';
import { MAX_ATTEMPTS, MAX_TIME, checkFunction, checkId, checkInt, checkObject, typeName } from '../validate.js';
import type { MessageStore, RetryState, StoredMessage } from './message_store.js';
import { checkBody, checkRetryArgs, checkStoredMessage } from './memory_store.js';

const FORMAT_VERSION = 1;
/** put() refuses a header line longer than this (an envelope with tens of thousands of recipients). */
export const MAX_HEADER_BYTES = 4 * 1024 * 1024;
const FIRST_READ = 64 * 1024;
/** Files list() reads at once. */
const LIST_BATCH = 64;

/** The name of a shard's retry-state journal. */
export const RETRY_LOG = 'retry.log';
/** A journal is compacted when it grows past max(this, twice its size after the last compaction). */
export const RETRY_LOG_COMPACT_BYTES = 256 * 1024;
/** list() compacts a journal with more lines than this besides twice its listed messages' states. */
export const RETRY_LOG_LIST_SLACK = 1024;

const SHARD_RE = /^[0-9a-f]{2}$/;
const MESSAGE_RE = /^(0|[1-9][0-9]{0,15})\.msg$/;
const TEMP_RE = /^\.[0-9]+\.msg\.[0-9a-f]+\.tmp$/;
const JOURNAL_TEMP_RE = /^\.retry\.log\.[0-9a-f]+\.tmp$/;
/** A journal line without its "\n": id, then attempts and nextAttempt (or "- -"), then the CRC. */
const RECORD_RE = /^(0|[1-9][0-9]{0,15}) (?:(0|[1-9][0-9]{0,4}) ([-+.0-9e]{1,32})|- -) ([0-9a-f]{8})$/;
const NL = 0x0a;

// Windows has neither flag (nor FIFOs to block on); 0 leaves the open() as it was.
const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;
const O_NONBLOCK = fs.constants.O_NONBLOCK ?? 0;
const READ_FLAGS = fs.constants.O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
// Read and write: the torn tail of a journal is looked at (and cut) through the append handle.
const APPEND_FLAGS = fs.constants.O_RDWR | fs.constants.O_APPEND | fs.constants.O_CREAT | O_NOFOLLOW | O_NONBLOCK;

/**
 * A message file that is truncated, unparsable, fails its checksum or is not a regular file; also
 * what list() reports for a shard directory it cannot read and for damaged journal lines.
 */
export class SpoolCorruptError extends Error {
  readonly code = 'ERR_SPOOL_CORRUPT' as const;
  constructor(readonly file: string, reason: string, options?: { cause?: unknown }) {
    super(`${file}: ${reason}`, options);
    this.name = 'SpoolCorruptError';
  }
}

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
}

/** The shard directory name of an id: id % 256 as two hex digits. */
export function shardOf(id: number): string {
  return (id % 256).toString(16).padStart(2, '0');
}

// Temporary files being written by a put() or a compaction of this process, by absolute path,
// across all FileSpool instances (two instances on one directory must not delete each other's).
const writing = new Set<string>();

function isErrno(e: unknown, ...codes: string[]): boolean {
  return typeof e === 'object' && e !== null && codes.includes((e as NodeJS.ErrnoException).code ?? '');
}

async function fsyncDir(dir: string): Promise<void> {
  // Windows cannot open a directory; NTFS journals the rename itself.
  if (process.platform === 'win32') return;
  const h = await fsp.open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * fsyncs one directory for many callers: a caller joins the fsync that starts next (never one
 * already running, which may have begun before the caller's rename).
 */
class DirSyncer {
  #running: Promise<void> | null = null;
  #queued: Promise<void> | null = null;
  constructor(readonly dir: string) {}

  sync(): Promise<void> {
    if (this.#running === null) {
      this.#running = fsyncDir(this.dir).finally(() => { this.#running = null; });
      return this.#running;
    }
    if (this.#queued === null) {
      this.#queued = this.#running.catch(() => undefined).then(() => {
        this.#queued = null;
        return this.sync();
      });
    }
    return this.#queued;
  }
}

async function writeFully(fh: FileHandle, buffers: Buffer[]): Promise<void> {
  let pos = 0;
  for (const b of buffers) {
    let off = 0;
    while (off < b.length) {
      const { bytesWritten } = await fh.write(b, off, b.length - off, pos);
      off += bytesWritten;
      pos += bytesWritten;
    }
  }
}

/** What a non-regular file is, for messages: "a FIFO", "a directory"... */
function kindOf(s: Stats | Dirent): string {
  if (s.isFIFO()) return 'a FIFO';
  if (s.isDirectory()) return 'a directory';
  if (s.isSymbolicLink()) return 'a symbolic link, not followed';
  if (s.isSocket()) return 'a socket';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  return 'of an unknown type';
}

/**
 * Opens a file that must be a regular one without following a symbolic link or blocking on a FIFO;
 * anything else is a SpoolCorruptError. Other errors (ENOENT...) pass through.
 */
async function openRegular(file: string, flags: number, mode?: number): Promise<{ fh: FileHandle; size: number }> {
  let fh: FileHandle;
  try {
    fh = await fsp.open(file, flags, mode);
  } catch (e) {
    // O_NOFOLLOW on a symbolic link: ELOOP (Linux, macOS), EMLINK (FreeBSD).
    if (O_NOFOLLOW !== 0 && isErrno(e, 'ELOOP', 'EMLINK')) throw new SpoolCorruptError(file, 'not a regular file (a symbolic link, not followed)', { cause: e });
    throw e;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new SpoolCorruptError(file, `not a regular file (${kindOf(st)})`);
    return { fh, size: st.size };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
}

function encodeHeader(m: StoredMessage, body: Buffer): Buffer {
  const message: Record<string, unknown> = { ...m };
  if (m.expiresAt === Infinity) message.expiresAt = 'Infinity';
  const line = JSON.stringify({ v: FORMAT_VERSION, size: body.length, crc32: crc32(body), message });
  return Buffer.from(`${line}\n\n`, 'utf8');
}

interface Header {
  message: StoredMessage;
  /** Offset of the first body byte. */
  bodyOffset: number;
  size: number;
  crc32: number;
}

/**
 * Parses the header from `head` (the file's first bytes, including the header line's "\n" if the
 * file has one) and checks it against the file's length and name.
 */
function parseHeader(head: Buffer, fileSize: number, file: string, id: number): Header {
  const nl = head.indexOf(NL);
  if (nl < 0) {
    throw new SpoolCorruptError(file, fileSize <= head.length
      ? `truncated: no end of header line in ${fileSize} bytes`
      : `header line longer than ${MAX_HEADER_BYTES} bytes`);
  }
  let h: unknown;
  try {
    h = JSON.parse(head.toString('utf8', 0, nl));
  } catch (e) {
    throw new SpoolCorruptError(file, `header is not JSON (${(e as Error).message})`, { cause: e });
  }
  if (typeof h !== 'object' || h === null || Array.isArray(h)) throw new SpoolCorruptError(file, `header is ${typeName(h)}, not an object`);
  const r = h as Record<string, unknown>;
  if (r.v !== FORMAT_VERSION) throw new SpoolCorruptError(file, `header: unknown format version ${JSON.stringify(r.v)}`);
  if (typeof r.size !== 'number' || !Number.isSafeInteger(r.size) || r.size < 0) throw new SpoolCorruptError(file, 'header: bad size');
  if (typeof r.crc32 !== 'number' || !Number.isInteger(r.crc32) || r.crc32 < 0 || r.crc32 > 0xffffffff) {
    throw new SpoolCorruptError(file, 'header: bad crc32');
  }
  let message: StoredMessage;
  try {
    const raw = r.message;
    if (typeof raw === 'object' && raw !== null && (raw as Record<string, unknown>).expiresAt === 'Infinity') {
      (raw as Record<string, unknown>).expiresAt = Infinity;
    }
    message = checkStoredMessage(raw, 'header.message');
  } catch (e) {
    throw new SpoolCorruptError(file, (e as Error).message, { cause: e });
  }
  if (message.id !== id) throw new SpoolCorruptError(file, `header.message.id ${message.id} does not match the file name`);
  const bodyOffset = nl + 2;
  if (fileSize < bodyOffset + r.size) {
    throw new SpoolCorruptError(file, `truncated: ${fileSize} bytes, the header announces ${bodyOffset + r.size}`);
  }
  if (head[nl + 1] !== NL) throw new SpoolCorruptError(file, 'no empty line after the header');
  if (fileSize > bodyOffset + r.size) {
    throw new SpoolCorruptError(file, `${fileSize - bodyOffset - r.size} bytes after the body`);
  }
  return { message, bodyOffset, size: r.size, crc32: r.crc32 };
}

/** Reads and checks the header of an open message file of `size` bytes. */
async function readHeader(fh: FileHandle, size: number, file: string, id: number): Promise<Header> {
  const limit = Math.min(size, MAX_HEADER_BYTES + 2);
  let head = Buffer.alloc(Math.min(limit, FIRST_READ));
  let have = 0;
  for (;;) {
    while (have < head.length) {
      const { bytesRead } = await fh.read(head, have, head.length - have, have);
      if (bytesRead === 0) break;
      have += bytesRead;
    }
    const got = head.subarray(0, have);
    // Done when the header line's "\n" and the byte after it are in, or nothing more can come.
    const nl = got.indexOf(NL);
    if ((nl >= 0 && nl + 1 < have) || have < head.length || head.length >= limit) return parseHeader(got, size, file, id);
    const bigger = Buffer.alloc(Math.min(limit, head.length * 4));
    head.copy(bigger, 0, 0, have);
    head = bigger;
  }
}

// --- the retry-state journal ----------------------------------------------------------------------

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
  if (attempts > MAX_ATTEMPTS || !Number.isFinite(nextAttempt) || Math.abs(nextAttempt) > MAX_TIME || String(nextAttempt) !== m[3]) return null;
  return { id, state: { attempts, nextAttempt } };
}

/** One shard's journal, as this instance knows it. */
interface Journal {
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

export class FileSpool implements MessageStore {
  /** The spool directory, absolute. */
  readonly dir: string;
  readonly #onCorrupt: (file: string, error: Error) => void;
  readonly #fileMode: number;
  #root: Promise<void> | undefined;
  readonly #shards = new Map<string, Promise<string>>();
  /** The #root promise each #shards promise waited for. */
  readonly #shardRoots = new WeakMap<Promise<string>, Promise<void>>();
  /** #shards promises already found stale (their directory gone). */
  readonly #stale = new WeakSet<Promise<string>>();
  readonly #syncers = new Map<string, DirSyncer>();
  readonly #journals = new Map<string, Journal>();
  /** put()s in progress, by id. */
  readonly #pending = new Map<number, Promise<void>>();
  #closed = false;

  constructor(dir: string, options?: FileSpoolOptions) {
    if (typeof dir !== 'string') throw new TypeError(`dir must be a string, got ${typeName(dir)}`);
    if (dir.length === 0) throw new RangeError('dir must not be empty');
    const o = options === undefined ? {} : checkObject(options, 'options');
    for (const k of Object.keys(o)) {
      if (k !== 'onCorrupt' && k !== 'fileMode') throw new RangeError(`options: unknown key ${JSON.stringify(k)}`);
    }
    if (o.onCorrupt !== undefined) checkFunction(o.onCorrupt, 'options.onCorrupt');
    this.#fileMode = o.fileMode === undefined ? 0o600 : checkInt(o.fileMode, 'options.fileMode', 0, 0o777);
    this.#onCorrupt = (o.onCorrupt as FileSpoolOptions['onCorrupt']) ?? ((file, error) => {
      console.warn(`mail-queue-core FileSpool: skipping ${file}: ${error.message}`);
    });
    this.dir = path.resolve(dir);
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
    const header = encodeHeader(m, b);
    if (header.length - 2 > MAX_HEADER_BYTES) {
      throw new RangeError(`message: its header line of ${header.length - 2} bytes exceeds ${MAX_HEADER_BYTES}`);
    }
    // Registered before the first await, so that a second put() of the id sees this one.
    if (this.#pending.has(m.id)) throw codedError('ERR_DUPLICATE_ID', `message.id ${m.id} is already stored`);
    const p = this.#write(m.id, header, b);
    this.#pending.set(m.id, p);
    try {
      await p;
    } finally {
      this.#pending.delete(m.id);
    }
  }

  /** Writes into the shard; when its directory has gone (ENOENT), creates it again and writes once more. */
  async #write(id: number, header: Buffer, body: Buffer): Promise<void> {
    const name = shardOf(id);
    for (let again = false; ; again = true) {
      const shard = this.#shard(name);
      try {
        await this.#writeIn(await shard, id, header, body);
        return;
      } catch (e) {
        if (again || !isErrno(e, 'ENOENT')) throw e;
        this.#shardGone(name, shard);
      }
    }
  }

  async #writeIn(shardDir: string, id: number, header: Buffer, body: Buffer): Promise<void> {
    const file = path.join(shardDir, `${id}.msg`);
    if (await exists(file)) throw codedError('ERR_DUPLICATE_ID', `message.id ${id} is already stored`);
    // A state the journal still holds for the id (from a message removed since) must not apply.
    await this.#clearState(id);
    const tmp = path.join(shardDir, `.${id}.msg.${randomBytes(6).toString('hex')}.tmp`);
    writing.add(tmp);
    let fh: FileHandle | undefined;
    let renamed = false;
    try {
      fh = await fsp.open(tmp, 'wx', this.#fileMode);
      await writeFully(fh, [header, body]);
      await fh.sync();
      await fh.close();
      fh = undefined;
      await fsp.rename(tmp, file);
      renamed = true;
      await this.#syncer(shardDir).sync();
    } catch (e) {
      if (fh !== undefined) await fh.close().catch(() => undefined);
      // Not durable, so not stored: the caller sees the rejection and may put() again.
      await fsp.unlink(renamed ? file : tmp).catch(() => undefined);
      throw e;
    } finally {
      writing.delete(tmp);
    }
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
      const root = (async () => {
        const first = await fsp.mkdir(this.dir, { recursive: true });
        if (first !== undefined) {
          for (let d = this.dir; ; d = path.dirname(d)) {
            await fsyncDir(path.dirname(d));
            if (d === first || path.dirname(d) === d) break;
          }
        }
      })();
      this.#root = root;
      root.catch(() => { if (this.#root === root) this.#root = undefined; });
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
      shard.catch(() => { if (this.#shards.get(name) === shard) this.#shards.delete(name); });
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
    const j = this.#journals.get(name);
    if (j !== undefined) {
      this.#journals.delete(name);
      void this.#serial(j, async () => {
        j.closed = true;
        await closeHandle(j);
      });
    }
  }

  // --- retry states -------------------------------------------------------------------------------

  #journal(shard: string): Journal {
    let j = this.#journals.get(shard);
    if (j === undefined) {
      j = {
        shard, file: path.join(this.dir, shard, RETRY_LOG), states: new Map(), loaded: undefined, broken: undefined, handle: undefined,
        size: 0, lines: 0, damaged: 0, compactAt: RETRY_LOG_COMPACT_BYTES, compacting: false, closed: false, queue: Promise.resolve(),
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
  #load(j: Journal): Promise<void> {
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
      j.broken = e instanceof SpoolCorruptError ? e : new SpoolCorruptError(j.file, `unreadable (${(e as Error).message})`, { cause: e });
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
      this.#onCorrupt(j.file, new SpoolCorruptError(j.file, `${damaged} damaged line${damaged === 1 ? '' : 's'} skipped (the first is line ${first})`));
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
      for (let off = 0; off < buf.length;) off += (await j.handle.write(buf, off, buf.length - off)).bytesWritten;
    } catch (e) {
      // Perhaps a part of the line is in: the next open cuts it off.
      await closeHandle(j);
      throw e;
    }
    j.size += buf.length;
    j.lines++;
    return true;
  }

  /**
   * Records a retry state: one line appended to the shard's journal, no fsync. An unknown id is
   * recorded too (nothing checks the disk) and dropped at the next compaction; put() of that id
   * clears it. Rejects with ERR_CLOSED after close(), with a SpoolCorruptError when the journal
   * is not a regular file or could not be read.
   */
  async setRetryState(id: number, state: RetryState): Promise<void> {
    const s = checkRetryArgs(id, state);
    if (this.#closed) throw codedError('ERR_CLOSED', 'the spool is closed');
    const j = this.#journal(shardOf(id));
    await this.#load(j);
    await this.#serial(j, async () => {
      if (await this.#append(j, encodeRecord(id, s))) j.states.set(id, s);
    });
    if (j.size > j.compactAt && !j.compacting) void this.#compactSoon(j);
  }

  /** Appends "no state" for the id (fsynced) when the journal has a state for it. */
  async #clearState(id: number): Promise<void> {
    const j = this.#journal(shardOf(id));
    await this.#load(j);
    if (!j.states.has(id)) return;
    await this.#serial(j, async () => {
      if (!j.states.has(id)) return;
      // fsynced: the message about to be written is, and must not meet the old state after a power cut.
      if (await this.#append(j, encodeRecord(id, undefined))) await j.handle!.sync();
      j.states.delete(id);
    });
  }

  /** Compacts in the background (after the operations queued so far); a failure is reported. */
  async #compactSoon(j: Journal): Promise<void> {
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
    const j = this.#journal(shardOf(id));
    await this.#load(j);
    let o: { fh: FileHandle; size: number };
    try {
      o = await openRegular(file, READ_FLAGS);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined;
      throw e;
    }
    try {
      return FileSpool.#withState((await readHeader(o.fh, o.size, file, id)).message, j.states.get(id));
    } finally {
      await o.fh.close();
    }
  }

  /** The body bytes; rejects with ERR_UNKNOWN_ID, or a SpoolCorruptError when the file is damaged or not a regular file. */
  async body(id: number): Promise<Buffer> {
    const file = this.pathOf(id);
    let data: Buffer;
    try {
      const { fh } = await openRegular(file, READ_FLAGS);
      try {
        data = await fh.readFile();
      } finally {
        await fh.close();
      }
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw codedError('ERR_UNKNOWN_ID', `id ${id} is not stored`);
      throw e;
    }
    const h = parseHeader(data.subarray(0, MAX_HEADER_BYTES + 2), data.length, file, id);
    const body = data.subarray(h.bodyOffset);
    if (crc32(body) !== h.crc32) throw new SpoolCorruptError(file, 'body does not match its crc32');
    return body;
  }

  /** Unlinks the message file (an unknown id is fine). Waits for a put() of the id in progress. */
  async remove(id: number): Promise<void> {
    const file = this.pathOf(id);
    const p = this.#pending.get(id);
    if (p !== undefined) await p.catch(() => undefined);
    try {
      await fsp.unlink(file);
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e;
    }
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
        this.#onCorrupt(shardDir, new SpoolCorruptError(shardDir, `shard directory unreadable (${(e as Error).message})`, { cause: e }));
        continue;
      }
      const j = this.#journal(shard);
      await this.#load(j);
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
        if (withState === 0 || j.damaged > 0 || j.lines > 2 * withState + RETRY_LOG_LIST_SLACK) await this.#compactSoon(j);
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
    await Promise.allSettled([...this.#journals.values()].map((j) => this.#serial(j, async () => {
      j.closed = true;
      await closeHandle(j);
    })));
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fsp.lstat(file);
    return true;
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return false;
    throw e;
  }
}
