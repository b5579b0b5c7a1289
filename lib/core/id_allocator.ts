// Message ids for an MTA that has none of its own (Haraka names messages by UUID): rising safe
// integers, so that single enqueue() calls take the staged path (decision 30), and restart-safe
// without a file of their own (decision 32).
//
// An id is (ms since 2020-01-01 by the core's clock) * 4096 + a sequence within the millisecond,
// and never at or below the last id handed out or the highest id the core has held. So ids rise
// within a run; a restart starts above every id of the runs before it as long as the clock did not
// go back by more than the time since those ids were made; and after recover() it starts above
// every id in the store whatever the clock says. 4096 ids a millisecond; the ids stay below 2^53
// until about 2089.

import { codedError } from '../errors.js';
import type { CoreContext } from './core_context.js';

/** 2020-01-01T00:00:00Z in ms. */
export const ID_EPOCH_MS = 1_577_836_800_000;
/** Ids a millisecond. */
export const IDS_PER_MS = 4096;

export class IdAllocator {
  #last = -1;

  constructor(private readonly ctx: CoreContext) {}

  /** The next id: above every id the core holds or has staged, above the last one, and at least
   *  the clock's time-based id. ERR_CLOSED after close(); RangeError once 2^53 - 1 is reached. */
  next(): number {
    const ctx = this.ctx;
    if (ctx.closed) throw codedError('ERR_CLOSED', 'the core is closed');
    // The staged ids are not in the core's counter yet: the stage keeps its own highest.
    return this.nextAbove(ctx.now(), Math.max(ctx.counters[ctx.counterIndex.highestId], ctx.arrivals.highest));
  }

  /** The next id at time `now` above `highest`. */
  nextAbove(now: number, highest: number): number {
    const byTime = now > ID_EPOCH_MS ? Math.floor(now - ID_EPOCH_MS) * IDS_PER_MS : 0;
    let id = this.#last + 1;
    if (highest + 1 > id) id = highest + 1;
    if (byTime > id) id = byTime;
    if (!Number.isSafeInteger(id)) throw new RangeError('newId: no safe integer id is left above the ids held');
    this.#last = id;
    return id;
  }
}
