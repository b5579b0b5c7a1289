// File access shared by FileSpool and its retry journal: errno tests, opening only regular files
// (O_NOFOLLOW | O_NONBLOCK, then fstat: never following a symbolic link nor blocking on a FIFO),
// complete writes, the temporary files this process is writing, put()s in progress by id, and the
// constructor arguments both spools share.
import fs from 'node:fs';
import type { Dirent, Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import fsp from 'node:fs/promises';
import path from 'node:path';

import { codedError } from '../errors.js';
import { checkFunction, checkInt, checkKeys, checkObject, typeName } from '../validate.js';
import { type Header, SpoolCorruptError, readHeader } from './spool_format.js';

// Windows has neither flag (nor FIFOs to block on); 0 leaves the open() as it was.
const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;
const O_NONBLOCK = fs.constants.O_NONBLOCK ?? 0;
export const READ_FLAGS = fs.constants.O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
// Read and write: the torn tail of a journal is looked at (and cut) through the append handle.
export const APPEND_FLAGS =
  fs.constants.O_RDWR | fs.constants.O_APPEND | fs.constants.O_CREAT | O_NOFOLLOW | O_NONBLOCK;

// Temporary files being written by a put() or a compaction of this process, by absolute path,
// across all FileSpool instances (two instances on one directory must not delete each other's).
export const writing = new Set<string>();

export function isErrno(e: unknown, ...codes: string[]): boolean {
  return typeof e === 'object' && e !== null && codes.includes((e as NodeJS.ErrnoException).code ?? '');
}

export async function writeFully(fh: FileHandle, buffers: Buffer[]): Promise<void> {
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
export function kindOf(s: Stats | Dirent): string {
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
export async function openRegular(
  file: string,
  flags: number,
  mode?: number,
): Promise<{ fh: FileHandle; size: number }> {
  let fh: FileHandle;
  try {
    fh = await fsp.open(file, flags, mode);
  } catch (e) {
    // O_NOFOLLOW on a symbolic link: ELOOP (Linux, macOS), EMLINK (FreeBSD).
    if (O_NOFOLLOW !== 0 && isErrno(e, 'ELOOP', 'EMLINK'))
      throw new SpoolCorruptError(file, 'not a regular file (a symbolic link, not followed)', { cause: e });
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

/** The checked header of a message file (opened as openRegular), or undefined when it is not there. */
export async function readHeaderOf(file: string, id: number): Promise<Header | undefined> {
  let o: { fh: FileHandle; size: number };
  try {
    o = await openRegular(file, READ_FLAGS);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
  try {
    return await readHeader(o.fh, o.size, file, id);
  } finally {
    await o.fh.close();
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fsp.lstat(file);
    return true;
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return false;
    throw e;
  }
}

/**
 * A whole regular file in one buffer, with callbacks rather than a FileHandle and a promise per
 * step (the delivery hot path reads one file per message): open (as openRegular), fstat, read,
 * close. `done(null, undefined)` when the file does not exist; a file that is not a regular one is
 * a SpoolCorruptError; a file larger than `wholeUpTo` bytes is not read: `done(null, undefined,
 * its size)`.
 */
export function readRegular(
  file: string,
  done: (err: Error | null, data?: Buffer, tooLarge?: number) => void,
  wholeUpTo = Number.POSITIVE_INFINITY,
): void {
  fs.open(file, READ_FLAGS, (err, fd) => {
    if (err) {
      if (isErrno(err, 'ENOENT')) done(null, undefined);
      else if (O_NOFOLLOW !== 0 && isErrno(err, 'ELOOP', 'EMLINK'))
        done(new SpoolCorruptError(file, 'not a regular file (a symbolic link, not followed)', { cause: err }));
      else done(err);
      return;
    }
    const finish = (e: Error | null, data?: Buffer) => fs.close(fd, (closeErr) => done(e ?? closeErr, data));
    fs.fstat(fd, (err2, st) => {
      if (err2) {
        finish(err2);
        return;
      }
      if (!st.isFile()) {
        finish(new SpoolCorruptError(file, `not a regular file (${kindOf(st)})`));
        return;
      }
      if (st.size > wholeUpTo) {
        fs.close(fd, (closeErr) => done(closeErr, undefined, st.size));
        return;
      }
      const buf = Buffer.allocUnsafe(st.size);
      const readFrom = (off: number): void => {
        if (off === buf.length) {
          finish(null, buf);
          return;
        }
        fs.read(fd, buf, off, buf.length - off, off, (err3, n) => {
          if (err3) {
            finish(err3);
            return;
          }
          // Shorter than fstat said (truncated meanwhile): what is there, for the checks to judge.
          if (n === 0) {
            finish(null, buf.subarray(0, off));
            return;
          }
          readFrom(off + n);
        });
      };
      readFrom(0);
    });
  });
}

/** Unlinks a file; one that is not there is no error. A callback underneath, not fs/promises:
 *  removal follows every delivery. */
export function unlinkIfThere(file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.unlink(file, (err) => {
      if (err && !isErrno(err, 'ENOENT')) reject(err);
      else resolve();
    });
  });
}

/**
 * Runs a put() of `id` registered in `pending` (put()s in progress by id) until it settles; refuses
 * an id already there with ERR_DUPLICATE_ID. Registered before the first await, so that a second
 * put() of the id sees the first.
 */
export async function putOnce(pending: Map<number, Promise<void>>, id: number, write: () => Promise<void>) {
  if (pending.has(id)) throw codedError('ERR_DUPLICATE_ID', `message.id ${id} is already stored`);
  const p = write();
  pending.set(id, p);
  try {
    await p;
  } finally {
    pending.delete(id);
  }
}

export interface SpoolArgs {
  /** The spool directory, absolute. */
  dir: string;
  /** The options, checked against `keys`. */
  options: Record<string, unknown>;
  onCorrupt: (file: string, error: Error) => void;
  fileMode: number;
}

/**
 * Checks the constructor arguments both spools share: the directory, the option names, onCorrupt
 * (default: console.warn with `prefix`) and fileMode (default 0o600: mail is private).
 */
export function checkSpoolArgs(dir: unknown, options: unknown, keys: ReadonlySet<string>, prefix: string): SpoolArgs {
  if (typeof dir !== 'string') throw new TypeError(`dir must be a string, got ${typeName(dir)}`);
  if (dir.length === 0) throw new RangeError('dir must not be empty');
  const o = options === undefined ? {} : checkObject(options, 'options');
  checkKeys(o, keys, 'options');
  if (o.onCorrupt !== undefined) checkFunction(o.onCorrupt, 'options.onCorrupt');
  const fileMode = o.fileMode === undefined ? 0o600 : checkInt(o.fileMode, 'options.fileMode', 0, 0o777);
  const onCorrupt =
    (o.onCorrupt as SpoolArgs['onCorrupt'] | undefined) ??
    ((file: string, error: Error) => {
      console.warn(`${prefix} ${file}: ${error.message}`);
    });
  return { dir: path.resolve(dir), options: o, onCorrupt, fileMode };
}

/** The whole of a message file (a regular file only), or undefined when there is none. */
export async function readMessageFile(file: string): Promise<Buffer | undefined> {
  try {
    const { fh } = await openRegular(file, READ_FLAGS);
    try {
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
}
