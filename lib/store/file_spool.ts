// FileSpool: a MessageStore with one file per message, durable before put() resolves.
//
// Layout
//   <dir>/<shard>/<id>.msg        shard = id % 256 as two lower-case hex digits ("00" .. "ff"), so
//                                 that no directory holds more than 1/256 of the spool. The id is
//                                 written in decimal without leading zeros.
//   <dir>/<shard>/.<id>.msg.<random hex>.tmp
//                                 a put() in progress (or interrupted by a crash). list() deletes
//                                 the ones no put() of this process is writing.
//
// File format (version 1)
//   line 1   one line of JSON, UTF-8, ended by "\n" (JSON.stringify never emits a raw newline):
//              {"v":1,"size":<body bytes>,"crc32":<CRC-32 of the body, as zlib.crc32>,"message":<StoredMessage>}
//            An expiresAt of Infinity ("never") is written as the string "Infinity".
//   line 2   empty: a single "\n"
//   rest     exactly `size` raw body bytes, unchanged (binary, any line endings, "\n\n" included).
//   So the file is `header line + 1 + size` bytes long; a shorter file is truncated, a longer one
//   damaged. list() and get() check the header and that size; body() also checks the CRC.
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
//   remove(): unlink only, no fsync. A removal lost in a crash makes the message reappear in the
//           next list(), so it is delivered once more; SMTP tolerates duplicates (at-least-once
//           delivery), and skipping the fsync keeps removal cheap.
//
// A spool directory belongs to one process at a time: put() refuses an id it is writing or that
// is on disk, but two processes writing the same id at once could both succeed (rename replaces).
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';

import { codedError } from '../errors.js';
import { checkFunction, checkId, checkInt, checkObject, typeName } from '../validate.js';
import type { MessageStore, StoredMessage } from './message_store.js';
import { checkBody, checkStoredMessage } from './memory_store.js';

const FORMAT_VERSION = 1;
/** put() refuses a header line longer than this (an envelope with tens of thousands of recipients). */
export const MAX_HEADER_BYTES = 4 * 1024 * 1024;
const FIRST_READ = 64 * 1024;
/** Files list() reads at once. */
const LIST_BATCH = 64;

const SHARD_RE = /^[0-9a-f]{2}$/;
const MESSAGE_RE = /^(0|[1-9][0-9]{0,15})\.msg$/;
const TEMP_RE = /^\.[0-9]+\.msg\.[0-9a-f]+\.tmp$/;
const NL = 0x0a;

/** A message file that is truncated, unparsable or fails its checksum. */
export class SpoolCorruptError extends Error {
  readonly code = 'ERR_SPOOL_CORRUPT' as const;
  constructor(readonly file: string, reason: string, options?: { cause?: unknown }) {
    super(`${file}: ${reason}`, options);
    this.name = 'SpoolCorruptError';
  }
}

export interface FileSpoolOptions {
  /**
   * Called by list() for each message file it skips (truncated, unparsable, wrong name or shard,
   * unreadable); the file is left in place. Default: console.warn.
   */
  onCorrupt?: (file: string, error: Error) => void;
  /** Permission bits of new message files (default 0o600: mail is private). */
  fileMode?: number;
}

/** The shard directory name of an id: id % 256 as two hex digits. */
export function shardOf(id: number): string {
  return (id % 256).toString(16).padStart(2, '0');
}

// Temporary files being written by a put() of this process, by absolute path, across all
// FileSpool instances (two instances on one directory must not delete each other's).
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

/** Reads and checks the header of an open message file. */
async function readHeader(fh: FileHandle, file: string, id: number): Promise<Header> {
  const { size } = await fh.stat();
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

export class FileSpool implements MessageStore {
  /** The spool directory, absolute. */
  readonly dir: string;
  readonly #onCorrupt: (file: string, error: Error) => void;
  readonly #fileMode: number;
  #root: Promise<void> | undefined;
  readonly #shards = new Map<string, Promise<string>>();
  readonly #syncers = new Map<string, DirSyncer>();
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

  async #write(id: number, header: Buffer, body: Buffer): Promise<void> {
    const shardDir = await this.#shard(shardOf(id));
    const file = path.join(shardDir, `${id}.msg`);
    if (await exists(file)) throw codedError('ERR_DUPLICATE_ID', `message.id ${id} is already stored`);
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

  /** Creates <dir> once per instance; fsyncs the parent of every directory that mkdir created. */
  #ensureRoot(): Promise<void> {
    if (this.#root === undefined) {
      this.#root = (async () => {
        const first = await fsp.mkdir(this.dir, { recursive: true });
        if (first !== undefined) {
          for (let d = this.dir; ; d = path.dirname(d)) {
            await fsyncDir(path.dirname(d));
            if (d === first || path.dirname(d) === d) break;
          }
        }
      })();
      this.#root.catch(() => { this.#root = undefined; });
    }
    return this.#root;
  }

  /** Creates a shard directory once per instance and fsyncs <dir>, so that its entry is on disk. */
  #shard(name: string): Promise<string> {
    let p = this.#shards.get(name);
    if (p === undefined) {
      p = (async () => {
        await this.#ensureRoot();
        const d = path.join(this.dir, name);
        await fsp.mkdir(d, { recursive: true });
        await this.#syncer(this.dir).sync();
        return d;
      })();
      this.#shards.set(name, p);
      p.catch(() => { this.#shards.delete(name); });
    }
    return p;
  }

  async get(id: number): Promise<StoredMessage | undefined> {
    const file = this.pathOf(id);
    let fh: FileHandle;
    try {
      fh = await fsp.open(file, 'r');
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined;
      throw e;
    }
    try {
      return (await readHeader(fh, file, id)).message;
    } finally {
      await fh.close();
    }
  }

  /** The body bytes; rejects with ERR_UNKNOWN_ID, or a SpoolCorruptError when the file is damaged. */
  async body(id: number): Promise<Buffer> {
    const file = this.pathOf(id);
    let data: Buffer;
    try {
      data = await fsp.readFile(file);
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
   * Every stored message, shard by shard ("00" to "ff"), by id within a shard. Files that fail
   * their check are reported to options.onCorrupt and skipped; temporary files left by an
   * interrupted put() are deleted. Bodies are not read (body() checks the CRC).
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
      let names: string[];
      try {
        names = await fsp.readdir(shardDir);
      } catch (e) {
        if (isErrno(e, 'ENOENT', 'ENOTDIR')) continue;
        throw e;
      }
      const ids: number[] = [];
      for (const name of names) {
        const file = path.join(shardDir, name);
        if (TEMP_RE.test(name)) {
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
        } else {
          ids.push(id);
        }
      }
      ids.sort((a, b) => a - b);
      for (let i = 0; i < ids.length; i += LIST_BATCH) {
        const batch = await Promise.all(ids.slice(i, i + LIST_BATCH).map((id) => this.#readForList(shardDir, id)));
        for (const r of batch) {
          if (r === undefined) continue;
          if (r instanceof Error) this.#onCorrupt(r.file, r);
          else yield r;
        }
      }
    }
  }

  /** The message, a SpoolCorruptError to report, or undefined when the file has gone. */
  async #readForList(shardDir: string, id: number): Promise<StoredMessage | SpoolCorruptError | undefined> {
    const file = path.join(shardDir, `${id}.msg`);
    let fh: FileHandle | undefined;
    try {
      fh = await fsp.open(file, 'r');
      return (await readHeader(fh, file, id)).message;
    } catch (e) {
      if (e instanceof SpoolCorruptError) return e;
      if (isErrno(e, 'ENOENT')) return undefined;
      return new SpoolCorruptError(file, `unreadable (${(e as Error).message})`, { cause: e });
    } finally {
      await fh?.close();
    }
  }

  /** Waits for put()s in progress; later put()s reject with ERR_CLOSED. Reads keep working. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#pending.values()]);
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
