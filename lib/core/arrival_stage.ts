// The arrival stage: single enqueue() calls for new ids, held on the JavaScript side and handed to
// the native core in one call.
//
// An MTA receives mail one message at a time, each for one of many domains. Queued one native call
// each, every message pays a Node-API crossing and, at a million resident messages, a chain of
// cache misses (the id index, the domain, its queue, the queue's tail) that follow one another. So
// an enqueue() whose id is above every id the core has ever held (it cannot be a duplicate: the
// native core keeps that bound in its `highestId` counter) and that is otherwise checked in full at
// the call is written into a typed array here, and the counters the core shares with JavaScript are
// moved at once. The staged messages reach the core in one `enqueueArrivals` call, which fetches
// each pair's books a few messages ahead so that the misses overlap:
// - before any other call into the core: CoreContext.live(), which every other path goes through
//   (reads of views and counts included), flushes first, so nothing can see the core without them;
// - when the stage is full.
// What a staged message may not do is fail later: an id at or below `highestId`, a new domain, a
// message that would expire at once or carry attempts, and an enqueue from inside a maintenance
// pass all take the immediate path instead (docs/architecture.md §4, decision 30).
import { native } from '../native.js';
import type { CoreContext } from './core_context.js';

/** Messages the stage holds at most before it hands them over on its own. */
export const STAGE_CAPACITY = 512;
/** Above this many resident messages nothing is staged: the table's hard limit (2^27 handles,
 *  counting cancelled entries still queued) stays out of reach of a staged batch. */
const STAGE_MAX_RESIDENT = 2 ** 25;
const STRIDE = 5; // domain, binding + 65536 * priority, id, nextAttempt, expiresAt

export class ArrivalStage {
  /** How many messages are staged. */
  count = 0;
  readonly #entries = new Float64Array(STRIDE * STAGE_CAPACITY);
  // What the staged messages added to the shared counters (taken back before the native call,
  // which adds its own).
  #active = 0;
  #delayed = 0;
  readonly #activeByBinding: Float64Array;
  #highest = -1;
  #now = -Infinity;
  readonly #activeSlot: number;
  readonly #delayedSlot: number;
  readonly #inFlightSlot: number;
  readonly #highestSlot: number;
  readonly #bindingActiveBase: number;

  constructor(private readonly ctx: CoreContext) {
    const idx = ctx.counterIndex;
    this.#activeSlot = idx.active;
    this.#delayedSlot = idx.delayed;
    this.#inFlightSlot = idx.inFlight;
    this.#highestSlot = idx.highestId;
    this.#bindingActiveBase = idx[`active:${ctx.bindings[0]}`];
    this.#activeByBinding = new Float64Array(ctx.bindings.length);
  }

  /** The highest id ever staged (-1 before the first): with the core's highestId counter, a
   *  bound above every id the core holds or is about to. */
  get highest(): number {
    return this.#highest;
  }

  /** Whether an id is above every id the core or the stage has held (so cannot be a duplicate),
   *  with the message table far from full (so the native call cannot refuse the batch). */
  fresh(id: number): boolean {
    const c = this.ctx.counters;
    return (
      id > this.#highest &&
      id > c[this.#highestSlot] &&
      c[this.#activeSlot] + c[this.#delayedSlot] + c[this.#inFlightSlot] < STAGE_MAX_RESIDENT
    );
  }

  /** Stages one checked message (its domain exists, its id is fresh, it is neither expired nor
   *  carrying attempts). */
  add(d: number, b: number, priority: number, id: number, nextAttempt: number, expiresAt: number, now: number): void {
    const e = this.#entries;
    const o = STRIDE * this.count++;
    e[o] = d;
    e[o + 1] = b + 65536 * priority;
    e[o + 2] = id;
    e[o + 3] = nextAttempt;
    e[o + 4] = expiresAt;
    this.#highest = id;
    if (now > this.#now) this.#now = now;
    const c = this.ctx.counters;
    if (nextAttempt <= now) {
      this.#active++;
      this.#activeByBinding[b]++;
      c[this.#activeSlot]++;
      c[this.#bindingActiveBase + b]++;
    } else {
      this.#delayed++;
      c[this.#delayedSlot]++;
    }
    if (this.count === STAGE_CAPACITY) this.ctx.flushStaged();
  }

  /** Hands every staged message to the native core (in arrival order). */
  flush(): void {
    const n = this.count;
    if (n === 0) return;
    this.count = 0;
    const c = this.ctx.counters;
    c[this.#activeSlot] -= this.#active;
    c[this.#delayedSlot] -= this.#delayed;
    const byBinding = this.#activeByBinding;
    for (let b = 0; b < byBinding.length; b++) {
      if (byBinding[b] !== 0) c[this.#bindingActiveBase + b] -= byBinding[b];
      byBinding[b] = 0;
    }
    this.#active = 0;
    this.#delayed = 0;
    native.enqueueArrivals(this.ctx.handle, this.#entries, n, this.#now);
  }

  /** Forgets what is staged (the core is being destroyed). */
  drop(): void {
    this.count = 0;
  }
}
