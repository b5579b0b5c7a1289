// Bodies as streams in FileSpool: writing a body that arrives as a stream into a message file
// without holding it whole (its size, CRC-32 and whether it is all ASCII counted as it passes),
// and handing a large stored body to the transport as a StreamedBody that reads the file as the
// message goes out and checks the bytes against the header's size and CRC-32 before it ends.
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { isAscii } from 'node:buffer';
import { Readable, Transform } from 'node:stream';
import { crc32 } from 'node:zlib';

import type { StreamedBody } from '../transport/transport.js';
import { typeName } from '../validate.js';
import type { LoadedMessage } from './message_store.js';
import { READ_FLAGS, readHeaderOf } from './spool_io.js';
import { SpoolCorruptError } from './spool_format.js';

/**
 * FileSpool.load() hands a body larger than this to the transport as a StreamedBody (read from
 * the file as it is sent) instead of reading the file whole; smaller ones keep the one-read path.
 */
export const STREAM_BODY_BYTES = 1024 * 1024;

/** What writeBodyStream() counted. */
export interface StreamedWrite {
  size: number;
  crc32: number;
  ascii: boolean;
  /** The whole body when it was at most keepUpTo bytes (for the spool's cache), else undefined. */
  kept: Buffer | undefined;
}

/**
 * Writes every chunk of `body` into `fh` from `offset` on, one chunk at a time (the stream is
 * read only as fast as the disk takes it), counting size, CRC-32 and ASCII-ness. Rejects when the
 * stream errors or yields something that is not bytes (a string from setEncoding(), an object).
 */
export async function writeBodyStream(
  fh: FileHandle,
  body: Readable,
  offset: number,
  keepUpTo: number,
): Promise<StreamedWrite> {
  let size = 0;
  let crc = 0;
  let ascii = true;
  let kept: Buffer[] | undefined = [];
  for await (const chunk of body) {
    if (!(chunk instanceof Uint8Array))
      throw new TypeError(`body stream must yield Buffers, got ${typeName(chunk)} (no setEncoding, no object mode)`);
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let off = 0;
    while (off < b.length) {
      const { bytesWritten } = await fh.write(b, off, b.length - off, offset + size + off);
      off += bytesWritten;
    }
    size += b.length;
    crc = crc32(b, crc);
    if (ascii) ascii = isAscii(b);
    if (kept !== undefined) {
      if (size <= keepUpTo) kept.push(Buffer.from(b));
      else kept = undefined;
    }
  }
  return { size, crc32: crc, ascii, kept: kept === undefined ? undefined : Buffer.concat(kept) };
}

/** A large message file for delivery: its header read and checked, its body a StreamedBody
 *  (8-bit unless the header says it is all ASCII). Undefined when the file is not there. */
export async function loadStreamed(file: string, id: number): Promise<LoadedMessage | undefined> {
  const h = await readHeaderOf(file, id);
  if (h === undefined) return undefined;
  return { envelope: h.message.envelope, body: fileBody(file, h.bodyOffset, h.size, h.crc32, h.ascii !== true) };
}

/**
 * The body of a message file, bytes [start, start + size), as a StreamedBody: each open() reads the
 * file anew (O_NOFOLLOW, as the spool opens its files) and the stream errors with a
 * SpoolCorruptError, before it ends, when the bytes read are fewer than `size` or their CRC-32 is
 * not `crc`.
 */
export function fileBody(file: string, start: number, size: number, crc: number, eightBit: boolean): StreamedBody {
  return {
    size,
    eightBit,
    open(): Readable {
      if (size === 0) return Readable.from([]);
      // (fs takes numeric flags too; its types say string)
      const src = fs.createReadStream(file, { flags: READ_FLAGS as unknown as string, start, end: start + size - 1 });
      let got = 0;
      let sum = 0;
      const check = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          got += chunk.length;
          sum = crc32(chunk, sum);
          cb(null, chunk);
        },
        flush(cb) {
          if (got !== size)
            cb(new SpoolCorruptError(file, `truncated: ${got} body bytes, the header announces ${size}`));
          else if (sum !== crc) cb(new SpoolCorruptError(file, 'body does not match its crc32'));
          else cb();
        },
      });
      src.on('error', (err) => check.destroy(err));
      check.on('close', () => src.destroy());
      return src.pipe(check);
    },
  };
}
