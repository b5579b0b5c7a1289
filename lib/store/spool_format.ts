// The files of a FileSpool: the message file format, the names of the files in a spool directory
// (the layout is in file_spool.ts), and SpoolCorruptError.
//
// File format (version 1)
//   line 1   one line of JSON, UTF-8, ended by "\n" (JSON.stringify never emits a raw newline):
//              {"v":1,"size":<body bytes>,"crc32":<CRC-32 of the body, as zlib.crc32>,"message":<StoredMessage>}
//            An expiresAt of Infinity ("never") is written as the string "Infinity".
//   line 2   empty: a single "\n"
//   rest     exactly `size` raw body bytes, unchanged (binary, any line endings, "\n\n" included).
//   So the file is `header line + 1 + size` bytes long; a shorter file is truncated, a longer one
//   damaged. list() and get() check the header and that size; body() also checks the CRC.
//   A body written from a stream (putStream) has its header written last, over room kept for it at
//   the start of the file: there, size and crc32 are padded with spaces to a fixed width (JSON
//   whitespace) and an "ascii" field (true when no byte is above 0x7f) follows them; readers of
//   the format above take such a header as it is.
//   The message is as put() got it, attempts and nextAttempt included when given; the retry
//   journal, when it holds a state for the id, overrides those two.
import type { FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';

import { MailQueueError } from '../errors.js';
import { typeName } from '../validate.js';
import type { StoredMessage } from './message_store.js';
import { checkStoredMessage } from './memory_store.js';

const FORMAT_VERSION = 1;
/** put() refuses a header line longer than this (an envelope with tens of thousands of recipients). */
export const MAX_HEADER_BYTES = 4 * 1024 * 1024;
const FIRST_READ = 64 * 1024;

export const SHARD_RE = /^[0-9a-f]{2}$/;
export const MESSAGE_RE = /^(0|[1-9][0-9]{0,15})\.msg$/;
export const TEMP_RE = /^\.[0-9]+\.msg\.[0-9a-f]+\.tmp$/;
export const JOURNAL_TEMP_RE = /^\.retry\.log\.[0-9a-f]+\.tmp$/;
export const NL = 0x0a;

/**
 * A message file that is truncated, unparsable, fails its checksum or is not a regular file; also
 * what list() reports for a shard directory it cannot read and for damaged journal lines.
 */
export class SpoolCorruptError extends MailQueueError<'ERR_SPOOL_CORRUPT'> {
  constructor(
    readonly file: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_SPOOL_CORRUPT', `${file}: ${reason}`, options);
    this.name = 'SpoolCorruptError';
  }
}

/** The shard directory name of an id: id % 256 as two hex digits. */
export function shardOf(id: number): string {
  return (id % 256).toString(16).padStart(2, '0');
}

export function encodeHeader(m: StoredMessage, body: Buffer): Buffer {
  const message: Record<string, unknown> = { ...m };
  if (m.expiresAt === Infinity) message.expiresAt = 'Infinity';
  const line = JSON.stringify({ v: FORMAT_VERSION, size: body.length, crc32: crc32(body), message });
  return Buffer.from(`${line}\n\n`, 'utf8');
}

/**
 * The header of a body written from a stream: the same line as encodeHeader's, with size and crc32
 * padded to a fixed width, so that its length does not depend on them and the body can be written
 * after room kept for it before they are known; plus "ascii".
 */
export function encodeStreamHeader(m: StoredMessage, size: number, crc: number, ascii: boolean): Buffer {
  const message: Record<string, unknown> = { ...m };
  if (m.expiresAt === Infinity) message.expiresAt = 'Infinity';
  const line =
    `{"v":${FORMAT_VERSION},"size":${String(size).padStart(16)},"crc32":${String(crc).padStart(10)},` +
    `"ascii":${ascii ? 'true ' : 'false'},"message":${JSON.stringify(message)}}`;
  return Buffer.from(`${line}\n\n`, 'utf8');
}

/** A header line within MAX_HEADER_BYTES, else a RangeError. */
export function checkHeaderSize(header: Buffer): Buffer {
  if (header.length - 2 > MAX_HEADER_BYTES)
    throw new RangeError(`message: its header line of ${header.length - 2} bytes exceeds ${MAX_HEADER_BYTES}`);
  return header;
}

export interface Header {
  /** From a streamed put: whether every body byte is ASCII; undefined when not recorded. */
  ascii?: boolean;
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
export function parseHeader(head: Buffer, fileSize: number, file: string, id: number): Header {
  const nl = head.indexOf(NL);
  if (nl < 0) {
    throw new SpoolCorruptError(
      file,
      fileSize <= head.length
        ? `truncated: no end of header line in ${fileSize} bytes`
        : `header line longer than ${MAX_HEADER_BYTES} bytes`,
    );
  }
  let h: unknown;
  try {
    h = JSON.parse(head.toString('utf8', 0, nl));
  } catch (e) {
    throw new SpoolCorruptError(file, `header is not JSON (${(e as Error).message})`, { cause: e });
  }
  if (typeof h !== 'object' || h === null || Array.isArray(h))
    throw new SpoolCorruptError(file, `header is ${typeName(h)}, not an object`);
  const r = h as Record<string, unknown>;
  if (r.v !== FORMAT_VERSION)
    throw new SpoolCorruptError(file, `header: unknown format version ${JSON.stringify(r.v)}`);
  if (typeof r.size !== 'number' || !Number.isSafeInteger(r.size) || r.size < 0)
    throw new SpoolCorruptError(file, 'header: bad size');
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
  if (message.id !== id)
    throw new SpoolCorruptError(file, `header.message.id ${message.id} does not match the file name`);
  const bodyOffset = nl + 2;
  if (fileSize < bodyOffset + r.size) {
    throw new SpoolCorruptError(file, `truncated: ${fileSize} bytes, the header announces ${bodyOffset + r.size}`);
  }
  if (head[nl + 1] !== NL) throw new SpoolCorruptError(file, 'no empty line after the header');
  if (fileSize > bodyOffset + r.size) {
    throw new SpoolCorruptError(file, `${fileSize - bodyOffset - r.size} bytes after the body`);
  }
  const ascii = typeof r.ascii === 'boolean' ? r.ascii : undefined;
  return { message, bodyOffset, size: r.size, crc32: r.crc32, ascii };
}

/** A whole message file checked: its header, and its body against the header's size and CRC-32. */
export function parseMessageFile(data: Buffer, file: string, id: number): { header: Header; body: Buffer } {
  const header = parseHeader(data.subarray(0, MAX_HEADER_BYTES + 2), data.length, file, id);
  const body = data.subarray(header.bodyOffset);
  if (crc32(body) !== header.crc32) throw new SpoolCorruptError(file, 'body does not match its crc32');
  return { header, body };
}

/** Reads and checks the header of an open message file of `size` bytes. */
export async function readHeader(fh: FileHandle, size: number, file: string, id: number): Promise<Header> {
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
    if ((nl >= 0 && nl + 1 < have) || have < head.length || head.length >= limit)
      return parseHeader(got, size, file, id);
    const bigger = Buffer.alloc(Math.min(limit, head.length * 4));
    head.copy(bigger, 0, 0, have);
    head = bigger;
  }
}
