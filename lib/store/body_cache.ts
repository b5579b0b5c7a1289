// BodyCache: a spool's (FileSpool's, LogSpool's) copies of the messages it stored most recently, so that delivering a
// message soon after it was submitted does not read back the file just written (decision 37). A
// read cache only: put() is as durable as without it, and remove() drops the entry with the file.
// Bounded by bytes (bodies and envelope strings, roughly); when over, the oldest entries go first,
// which in an MTA are the messages most likely sent already or waiting for a retry.
import { checkInt } from '../validate.js';
import type { LoadedMessage } from './message_store.js';

/** A message kept in memory: its body is bytes. */
export type CachedMessage = LoadedMessage & { body: Buffer };

/** The default bound of a spool's cache (FileSpool's and LogSpool's `cacheBytes`). */
export const DEFAULT_CACHE_BYTES = 32 * 2 ** 20;

/** The cache a spool's `cacheBytes` option asks for: the default when absent, else checked. */
export function cacheOf(cacheBytes: unknown): BodyCache {
  return new BodyCache(
    cacheBytes === undefined
      ? DEFAULT_CACHE_BYTES
      : checkInt(cacheBytes, 'options.cacheBytes', 0, Number.MAX_SAFE_INTEGER),
  );
}

export class BodyCache {
  readonly #entries = new Map<number, CachedMessage>();
  /** Ids in the order they were kept, from #head on (some since deleted or kept again: skipped).
   *  Not the Map's own order: walking a Map from its start steps over every entry deleted since
   *  its last rehash, which made eviction cost grow with the cache's churn. */
  #order: number[] = [];
  #head = 0;
  #bytes = 0;

  /** @param maxBytes 0: nothing is kept */
  constructor(readonly maxBytes: number) {}

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Keeps a message (the caller hands over its own copies). */
  set(id: number, m: CachedMessage): void {
    const cost = costOf(m);
    if (cost > this.maxBytes) return;
    this.delete(id);
    this.#entries.set(id, m);
    this.#order.push(id);
    this.#bytes += cost;
    while (this.#bytes > this.maxBytes && this.#head < this.#order.length) {
      // An id deleted and kept again since is evicted at its first place: a little early, harmless.
      this.delete(this.#order[this.#head++]);
    }
    // Ids of entries deleted since (removed messages) pile up: rebuilt from the Map's own order
    // once they are most of the array, so it stays proportional to the cache.
    if (this.#order.length - this.#head > 2 * this.#entries.size + 1024) {
      this.#order = [...this.#entries.keys()];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head); // the evicted ones
      this.#head = 0;
    }
  }

  get(id: number): CachedMessage | undefined {
    return this.#entries.get(id);
  }

  /** A kept message's recipients are now `to` (setRecipients). */
  narrow(id: number, to: string[]): void {
    const e = this.#entries.get(id);
    if (e !== undefined) this.set(id, { envelope: { from: e.envelope.from, to }, body: e.body });
  }

  delete(id: number): void {
    const e = this.#entries.get(id);
    if (e === undefined) return;
    this.#entries.delete(id);
    this.#bytes -= costOf(e);
  }

  clear(): void {
    this.#entries.clear();
    this.#order = [];
    this.#head = 0;
    this.#bytes = 0;
  }
}

function costOf(m: CachedMessage): number {
  let n = m.body.length + m.envelope.from.length + 64;
  for (const r of m.envelope.to) n += r.length + 16;
  return n;
}
