// The files of a LogSpool (log_spool.ts): segment names and the record format.
//
// Segments
//   <dir>/<seq>.seg      seq: 16 lower-case hex digits, 1 and up; records are appended to the
//                        segment with the highest seq, replayed in seq order and file order.
//
// Record format (version 1, little-endian): a fixed 32-byte head, `metaLen` bytes of meta, then
// `bodyLen` bytes of body (PUT only).
//   0  u32  magic 0x314c514d ("MQL1" in file order)
//   4  u8   type: 1 PUT, 2 REMOVE, 3 RETRY
//   5  u8   0
//   6  u16  RETRY: the attempts; otherwise 0
//   8  u32  metaLen: PUT, the message as one line of JSON (UTF-8; an expiresAt of Infinity is the
//           string "Infinity"); RETRY, 8 bytes: nextAttempt as a float64; REMOVE, 0
//   12 u32  bodyLen (PUT; otherwise 0)
//   16 f64  the message id
//   24 u32  CRC-32 of the body (zlib.crc32; 0 without one)
//   28 u32  CRC-32 of bytes 0-27 followed by the meta bytes
// A record whose head or meta fails its CRC, whose lengths run past the end of the segment, or
// whose body fails its CRC is damaged: replay reports it and stops reading that segment. Replay
// checks the bodies' CRCs in the last segment only (the one a crash or power cut can have left
// torn: a segment is only left for a new one after its last durable group was synced); body()
// checks a body's CRC at every read, so a body damaged elsewhere is never delivered either.
import { crc32 } from 'node:zlib';

import type { RetryState, StoredMessage } from './message_store.js';
import { checkStoredMessage } from './memory_store.js';
import { MAX_HEADER_BYTES, SpoolCorruptError } from './spool_format.js';

export const MAGIC = 0x314c514d;
export const HEAD_BYTES = 32;
export const PUT = 1;
export const REMOVE = 2;
export const RETRY = 3;
/** Bodies up to 4 GiB - 1 (the length is a u32). */
export const MAX_BODY_BYTES = 0xffffffff;

export const SEGMENT_RE = /^([0-9a-f]{16})\.seg$/;

export function segmentName(seq: number): string {
  return `${seq.toString(16).padStart(16, '0')}.seg`;
}

function head(type: number, id: number, metaLen: number, bodyLen: number, bodyCrc: number, attempts: number) {
  const h = Buffer.allocUnsafe(HEAD_BYTES);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt8(type, 4);
  h.writeUInt8(0, 5);
  h.writeUInt16LE(attempts, 6);
  h.writeUInt32LE(metaLen, 8);
  h.writeUInt32LE(bodyLen, 12);
  h.writeDoubleLE(id, 16);
  h.writeUInt32LE(bodyCrc, 24);
  return h;
}

function seal(h: Buffer, meta: Buffer | undefined): void {
  const c = crc32(h.subarray(0, 28));
  h.writeUInt32LE(meta === undefined ? c : crc32(meta, c), 28);
}

/** The JSON meta of a PUT record. */
export function encodeMeta(m: StoredMessage): Buffer {
  const message: Record<string, unknown> = { ...m };
  if (m.expiresAt === Infinity) message.expiresAt = 'Infinity';
  return Buffer.from(JSON.stringify(message), 'utf8');
}

/** A PUT record as the buffers to write: head + meta, then the body (not copied). */
export function putRecord(id: number, meta: Buffer, body: Buffer, bodyCrc = crc32(body)): Buffer[] {
  const h = head(PUT, id, meta.length, body.length, bodyCrc, 0);
  seal(h, meta);
  return [Buffer.concat([h, meta]), body];
}

export function removeRecord(id: number): Buffer {
  const h = head(REMOVE, id, 0, 0, 0, 0);
  seal(h, undefined);
  return h;
}

export function retryRecord(id: number, s: RetryState): Buffer {
  const meta = Buffer.allocUnsafe(8);
  meta.writeDoubleLE(s.nextAttempt, 0);
  const h = head(RETRY, id, 8, 0, 0, s.attempts);
  seal(h, meta);
  return Buffer.concat([h, meta]);
}

export interface LogRecord {
  type: number;
  id: number;
  attempts: number;
  /** Offset of the meta in the buffer the record was parsed from. */
  metaOffset: number;
  metaLen: number;
  bodyLen: number;
  bodyCrc: number;
  /** Bytes of the whole record. */
  size: number;
}

/**
 * Parses the record at `off` in `buf`, whose first `filled` bytes hold the segment's bytes from
 * some offset on; `left` is how many bytes the segment has from `off` to its end. Checks the body's
 * CRC when `checkBody`. Returns the record, the number of bytes `buf` must hold from `off` for it
 * to be parsed, or why it is damaged.
 */
export function parseRecord(
  buf: Buffer,
  off: number,
  filled: number,
  left: number,
  checkBody: boolean,
): LogRecord | number | string {
  const have = filled - off;
  if (left < HEAD_BYTES) return `a record head cut short (${left} of ${HEAD_BYTES} bytes)`;
  if (have < HEAD_BYTES) return HEAD_BYTES;
  if (buf.readUInt32LE(off) !== MAGIC) return 'no record magic';
  const metaLen = buf.readUInt32LE(off + 8);
  const bodyLen = buf.readUInt32LE(off + 12);
  const size = HEAD_BYTES + metaLen + bodyLen;
  if (metaLen > MAX_HEADER_BYTES) return `a meta length of ${metaLen} bytes`;
  if (size > left) return `a record of ${size} bytes cut short (${left} left)`;
  if (have < HEAD_BYTES + metaLen) return HEAD_BYTES + metaLen;
  const metaOffset = off + HEAD_BYTES;
  const headCrc = crc32(buf.subarray(off, off + 28));
  if (crc32(buf.subarray(metaOffset, metaOffset + metaLen), headCrc) !== buf.readUInt32LE(off + 28))
    return 'the record head fails its CRC';
  const type = buf.readUInt8(off + 4);
  const id = buf.readDoubleLE(off + 16);
  if (!Number.isSafeInteger(id) || id < 0) return 'a bad id';
  if (type === RETRY ? metaLen !== 8 || bodyLen !== 0 : type === REMOVE ? size !== HEAD_BYTES : type !== PUT)
    return `a bad record of type ${type}`;
  const bodyCrc = buf.readUInt32LE(off + 24);
  if (checkBody && type === PUT) {
    if (have < size) return size;
    const b = metaOffset + metaLen;
    if (crc32(buf.subarray(b, b + bodyLen)) !== bodyCrc) return 'the body fails its CRC';
  }
  return { type, id, attempts: buf.readUInt16LE(off + 6), metaOffset, metaLen, bodyLen, bodyCrc, size };
}

/** The StoredMessage in a PUT record's meta; a SpoolCorruptError when it is not one. */
export function decodeMeta(meta: Buffer | string, file: string, id: number): StoredMessage {
  let m: StoredMessage;
  try {
    const raw = JSON.parse(typeof meta === 'string' ? meta : meta.toString('utf8')) as Record<string, unknown>;
    if (typeof raw === 'object' && raw !== null && raw.expiresAt === 'Infinity') raw.expiresAt = Infinity;
    m = checkStoredMessage(raw, 'record.message');
  } catch (e) {
    throw new SpoolCorruptError(file, `the message of id ${id}: ${(e as Error).message}`, { cause: e });
  }
  if (m.id !== id) throw new SpoolCorruptError(file, `record of id ${id} holds message.id ${m.id}`);
  return m;
}
