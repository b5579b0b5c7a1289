// Directory fsyncs, which make a rename (or the entry of a new directory) durable: fsyncDir for one
// caller, DirSyncer to share them among concurrent callers, mkdirDurable for new directories.
import fsp from 'node:fs/promises';
import path from 'node:path';

export async function fsyncDir(dir: string): Promise<void> {
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
export class DirSyncer {
  #running: Promise<void> | null = null;
  #queued: Promise<void> | null = null;
  constructor(readonly dir: string) {}

  sync(): Promise<void> {
    if (this.#running === null) {
      this.#running = fsyncDir(this.dir).finally(() => {
        this.#running = null;
      });
      return this.#running;
    }
    if (this.#queued === null) {
      this.#queued = this.#running
        .catch(() => undefined)
        .then(() => {
          this.#queued = null;
          return this.sync();
        });
    }
    return this.#queued;
  }
}

/** mkdir -p, then fsyncs the parent of every directory it created, so their entries are on disk. */
export async function mkdirDurable(dir: string): Promise<void> {
  const first = await fsp.mkdir(dir, { recursive: true });
  if (first === undefined) return;
  for (let d = dir; ; d = path.dirname(d)) {
    await fsyncDir(path.dirname(d));
    if (d === first || path.dirname(d) === d) break;
  }
}
