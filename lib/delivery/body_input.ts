// What submit() takes as a body: a Buffer, a Readable stream, or { path } (a file to read). A
// store with putStream() (FileSpool) gets streams and files as a stream and writes them without
// holding them whole; any other store (MemoryStore, LogSpool, a store of the MTA's own) gets one
// Buffer, read from the stream up to MAX_BUFFERED_BODY_BYTES (docs/delivery-api.md#bodies).
import fsp from 'node:fs/promises';
import { Readable } from 'node:stream';

import type { MessageStore, StoredMessage } from '../store/message_store.js';
import { typeName } from '../validate.js';

/** A body for submit(): the bytes, a stream of them, or a file that holds them. */
export type BodyInput = Buffer | Readable | { path: string };

/** The most bytes submit() reads into memory for a store without putStream(). */
export const MAX_BUFFERED_BODY_BYTES = 64 * 1024 * 1024;

/** Checks a body argument: the Buffer itself, or how to open the stream (the file is opened when
 *  called, after every other argument was checked). */
export function checkBodyInput(body: unknown): Buffer | (() => Promise<Readable>) {
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Readable) return () => Promise.resolve(body);
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    const keys = Object.keys(body);
    const p = (body as { path?: unknown }).path;
    if (keys.length !== 1 || keys[0] !== 'path')
      throw new RangeError(`body as an object must be { path } alone, got keys ${JSON.stringify(keys)}`);
    if (typeof p !== 'string') throw new TypeError(`body.path must be a string, got ${typeName(p)}`);
    if (p.length === 0) throw new RangeError('body.path must not be empty');
    return () => openFile(p);
  }
  throw new TypeError(`body must be a Buffer, a Readable stream or { path }, got ${typeName(body)}`);
}

/** A stream of a regular file; rejects (ENOENT, EACCES...) naming body.path before anything is stored. */
async function openFile(p: string): Promise<Readable> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(p, 'r');
  } catch (e) {
    throw Object.assign(new Error(`body.path ${JSON.stringify(p)}: ${(e as Error).message}`, { cause: e }), {
      code: (e as { code?: unknown }).code,
    });
  }
  const st = await fh.stat().catch(async (e) => {
    await fh.close();
    throw e;
  });
  if (!st.isFile()) {
    await fh.close();
    throw new TypeError(`body.path ${JSON.stringify(p)} is not a regular file`);
  }
  return fh.createReadStream();
}

/** Stores a message whose body is a stream: putStream() when the store has it, else put() of the
 *  bytes read into memory (at most MAX_BUFFERED_BODY_BYTES). The stream is destroyed on failure. */
export async function putBodyStream(store: MessageStore, message: StoredMessage, body: Readable): Promise<void> {
  if (store.putStream) {
    await store.putStream(message, body);
    return;
  }
  let bytes: Buffer;
  try {
    bytes = await collect(body, MAX_BUFFERED_BODY_BYTES);
  } catch (e) {
    body.destroy();
    throw e;
  }
  await store.put(message, bytes);
}

async function collect(body: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (!(chunk instanceof Uint8Array))
      throw new TypeError(`body stream must yield Buffers, got ${typeName(chunk)} (no setEncoding, no object mode)`);
    size += chunk.byteLength;
    if (size > max)
      throw new RangeError(
        `body: more than ${max} bytes from a stream, which this store takes whole in memory (FileSpool streams them to disk)`,
      );
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  }
  return Buffer.concat(chunks, size);
}
