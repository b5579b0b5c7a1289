// Writing a FileSpool message file (file_spool.ts) so that a crash leaves either the old state or
// the new one: a temporary file written and fsynced, renamed to <id>.msg, the shard directory
// fsynced. put() writes a new file this way; setRecipients() writes one over the old file with
// the narrowed envelope (the same body, its retry state untouched in the shard's journal).
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import fsp from 'node:fs/promises';
import path from 'node:path';

import type { DirSyncer } from './dir_sync.js';
import { readMessageFile, writeFully, writing } from './spool_io.js';
import { encodeHeader, parseMessageFile } from './spool_format.js';

/**
 * Writes `content` as <shardDir>/<id>.msg durably: the bytes of `parts`, or what `fill` writes
 * into the temporary file (a streamed body). Not `replace`: a failure removes what it wrote
 * (not stored). `replace` (over an existing file): a failure after the rename leaves the new file,
 * which is whole (its directory entry may not be durable yet: a crash then keeps the old one).
 */
export async function writeMessageFile(
  shardDir: string,
  id: number,
  content: Buffer[] | ((fh: FileHandle) => Promise<void>),
  fileMode: number,
  syncer: DirSyncer,
  replace: boolean,
): Promise<void> {
  const file = path.join(shardDir, `${id}.msg`);
  const tmp = path.join(shardDir, `.${id}.msg.${randomBytes(6).toString('hex')}.tmp`);
  writing.add(tmp);
  let fh: FileHandle | undefined;
  let renamed = false;
  try {
    fh = await fsp.open(tmp, 'wx', fileMode);
    if (typeof content === 'function') await content(fh);
    else await writeFully(fh, content);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, file);
    renamed = true;
    await syncer.sync();
  } catch (e) {
    if (fh !== undefined) await fh.close().catch(() => undefined);
    // Not durable, so not stored: the caller sees the rejection and may put() again.
    if (!renamed) await fsp.unlink(tmp).catch(() => undefined);
    else if (!replace) await fsp.unlink(file).catch(() => undefined);
    throw e;
  } finally {
    writing.delete(tmp);
  }
}

/** The message file `file` again, with its recipients `to`: [header, body], or undefined when
 *  there is no such file. Rejects with a SpoolCorruptError when the file is damaged. */
async function narrowedFile(file: string, id: number, to: string[]): Promise<Buffer[] | undefined> {
  const data = await readMessageFile(file);
  if (data === undefined) return undefined;
  const { header, body } = parseMessageFile(data, file, id);
  const m = header.message;
  return [encodeHeader({ ...m, envelope: { from: m.envelope.from, to } }, body), body];
}

/**
 * FileSpool.setRecipients(): once a put() or rewrite of the id in `pending` has ended, the file
 * written again with recipients `to`; remove() and close() wait for it as for a put(). False when
 * there is no such file.
 */
export async function rewriteRecipients(
  pending: Map<number, Promise<void>>,
  shardDir: string,
  id: number,
  to: string[],
  fileMode: number,
  syncer: DirSyncer,
): Promise<boolean> {
  const before = pending.get(id);
  if (before !== undefined) await before.catch(() => undefined);
  const work = (async () => {
    const parts = await narrowedFile(path.join(shardDir, `${id}.msg`), id, to);
    if (parts === undefined) return false;
    await writeMessageFile(shardDir, id, parts, fileMode, syncer, true);
    return true;
  })();
  const done = work.then(
    () => undefined,
    () => undefined,
  );
  pending.set(id, done);
  try {
    return await work;
  } finally {
    if (pending.get(id) === done) pending.delete(id);
  }
}
