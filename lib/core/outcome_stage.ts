// The outcome stage: single settle() and defer() calls for messages a connection holds, held on
// the JavaScript side and handed to the native core in one call.
//
// One outcome a call costs a Node-API crossing and, at a million resident messages, the id index's
// two dependent cache misses (the slot, then the record it names) before any work is done. The
// core keeps a flight table that JavaScript reads in place (native/core/core.hpp): every message
// take() puts in flight gets an entry, found by its id, that names its handle and expiry. An
// outcome whose id is found there cannot be refused (the message is in flight) and needs no lookup
// (the handle is known), so it is written into a typed array here, its entry is cleared (a second
// outcome for the same id misses and takes the immediate path, which refuses it as before), and
// the counters the core shares with JavaScript are moved at once. The staged outcomes reach the
// core in one `applyOutcomes` call, which fetches each record and domain a few entries ahead so
// that the misses overlap:
// - before any other call into the core (CoreContext.live(), which every other path goes through,
//   flushes this stage first, then the arrival stage);
// - when the stage is full.
// What is not staged takes the immediate path: an id the table does not hold (never taken, already
// settled, or pushed out of a full set), a retry at or before now or at or after the expiry, and
// outcomes from inside a maintenance pass (docs/architecture.md §4, decision 55).
// Order: a staged defer gets its queue position (the sequence that orders equal times) when it is
// applied, so a defer is not staged after an arrival that is still staged; the arrivals go first.
import { native } from '../native.js';
import type { CoreContext } from './core_context.js';

/** Outcomes the stage holds at most before it hands them over on its own. */
export const OUTCOME_STAGE_CAPACITY = 256;
const STRIDE = 3; // handle, id, nextAttempt (NaN: settle)
const SET_SHIFT = 32 - native.limits.flightSetBits;
const WAY = native.limits.flightStride;
const SET = native.limits.flightWays * WAY;
if (native.limits.flightWays !== 4) throw new Error('internal: the flight table has 4 ways a set');

export class OutcomeStage {
  /** How many outcomes are staged. */
  count = 0;
  readonly #entries = new Float64Array(STRIDE * OUTCOME_STAGE_CAPACITY);
  readonly #flight: Float64Array;
  // The staged defers: with count, what the staged outcomes moved in the shared counters (every
  // one out of flight, each defer into the delayed queue), taken back before the native call,
  // which makes its own moves.
  #deferred = 0;
  // The earliest now at which a defer was staged: every staged retry is after it.
  #now = Infinity;
  #tracking = false;
  readonly #inFlightSlot: number;
  readonly #delayedSlot: number;

  constructor(private readonly ctx: CoreContext) {
    this.#flight = new Float64Array(native.flightBuffer(ctx.handle));
    this.#inFlightSlot = ctx.counterIndex.inFlight;
    this.#delayedSlot = ctx.counterIndex.delayed;
  }

  /** The offset of id's flight-table entry, or -1 when the table does not hold it. The core keeps
   *  the table from the first single outcome on (a core whose outcomes come in batches does not
   *  pay for it): that first one, and the messages in flight by then, take the call path. */
  #find(id: number): number {
    if (!this.#tracking) {
      this.#tracking = true;
      native.trackFlight(this.ctx.handle);
      return -1;
    }
    const o = (Math.imul(id >>> 0, 0x9e3779b1) >>> SET_SHIFT) * SET;
    const f = this.#flight;
    const key = id + 1;
    if (f[o] === key) return o;
    if (f[o + WAY] === key) return o + WAY;
    if (f[o + 2 * WAY] === key) return o + 2 * WAY;
    if (f[o + 3 * WAY] === key) return o + 3 * WAY;
    return -1;
  }

  /** Stages settle(id) when the flight table holds id (a valid id); false when it does not. */
  settle(id: number): boolean {
    const o = this.#find(id);
    if (o < 0) return false;
    this.#stage(o, id, Number.NaN);
    return true;
  }

  /** Stages defer(id, nextAttempt) when the flight table holds id and the retry is after now and
   *  before the message's expiry (a valid id and time); false otherwise. */
  defer(id: number, nextAttempt: number, now: number): boolean {
    const o = this.#find(id);
    if (o < 0 || !(nextAttempt > now) || !(nextAttempt < this.#flight[o + 2])) return false;
    if (this.ctx.arrivals.count !== 0) this.ctx.flushStaged();
    if (now < this.#now) this.#now = now;
    this.#stage(o, id, nextAttempt);
    return true;
  }

  /** Stages the outcome of the message at flight-table offset o (nextAttempt NaN: a settle), moves
   *  the shared counters, and hands the stage over when it is full. */
  #stage(o: number, id: number, nextAttempt: number): void {
    const f = this.#flight;
    const e = this.#entries;
    const i = STRIDE * this.count++;
    e[i] = f[o + 1];
    e[i + 1] = id;
    e[i + 2] = nextAttempt;
    f[o] = 0; // the entry is spent: a second outcome for the id takes the immediate path
    const c = this.ctx.counters;
    c[this.#inFlightSlot]--;
    if (!Number.isNaN(nextAttempt)) {
      this.#deferred++;
      c[this.#delayedSlot]++;
    }
    if (this.count === OUTCOME_STAGE_CAPACITY) this.ctx.flushStaged();
  }

  /** Hands every staged outcome to the native core (in call order). */
  flush(): void {
    const n = this.count;
    if (n === 0) return;
    this.count = 0;
    const c = this.ctx.counters;
    c[this.#inFlightSlot] += n;
    c[this.#delayedSlot] -= this.#deferred;
    this.#deferred = 0;
    const now = this.#now === Infinity ? 0 : this.#now; // settles alone do not read it
    this.#now = Infinity;
    const refused = native.applyOutcomes(this.ctx.handle, this.#entries, n, now);
    // An entry names a message in flight until an outcome or untake() clears it, and those all
    // come here or through live() first: a refusal is a broken invariant, not a caller's mistake.
    if (refused !== 0) throw new Error(`internal: ${refused} staged outcome(s) named no message in flight`);
  }

  /** Forgets what is staged (the core is being destroyed). */
  drop(): void {
    this.count = 0;
    this.#deferred = 0;
    this.#now = Infinity;
  }
}
