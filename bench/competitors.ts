// The queue-operation candidates of suite 1, behind one interface. Every candidate keeps the id
// index that cancel needs (cancel by id: docs/architecture.md §4). Pure JS:
//   js-array     two JS arrays (one FIFO per priority) + head index, Map id -> seq; lazy cancel
//   flatqueue    flatqueue binary heap on fixed typed arrays (Float64Array keys and ids), Map id -> key; lazy cancel
//   js-sdsl      OrderedMap (red-black tree) key -> id, Map id -> key; eager cancel
//   sorted-btree BTree key -> id, Map id -> key; eager cancel
// Native:
//   core         the public API, MailQueueCore (lib/core.ts)
//   native-raw   the raw binding (lib/native.ts), no lib/core.ts layer
// Keys: 'prio' = priority (1 first) then FIFO; 'ts' = next-attempt time then FIFO. JS structures
// that need one number pack it: prio (1-p)*2^50 + seq; ts (t - BASE)*2^26 + seq mod 2^26.
import BTreeModule from 'sorted-btree';
import FlatQueue from 'flatqueue';
import { OrderedMap } from 'js-sdsl';

import { MailQueueCore } from '../dist/lib/core.js';
import { native } from '../dist/lib/native.js';
import { BASE_TIME, BACKOFF_MS, keep, makeIds, makePriorities, makeTimes, rng } from './common.js';

const BTree = BTreeModule.default;

export type Variant = 'prio' | 'ts';
export const MIXED_B = 16;
const TABLE = 1 << 16;

export interface Workload {
  variant: Variant;
  n: number;
  ids: Float64Array;
  prios: Uint8Array;
  times: Float64Array;
  /** Chunks of 256 (views), for batched native enqueue. */
  idChunks: Float64Array[];
  prioChunks: Uint8Array[];
  /** Ids to cancel (N/10, a random sample of ids). */
  cancelIds: Float64Array;
  /** cancelIds in chunks of 256 (views), for the batched native cancel. */
  cancelChunks: Float64Array[];
  /** Mixed load: the next priorities (views of 16) and time deltas for re-inserted messages. */
  mixedPrioViews: Uint8Array[];
  mixedPrios: Uint8Array;
  mixedDeltas: Float64Array;
  /** Messages per timed phase (N/4): pop/take M from N resident, then refill M back to N. */
  m: number;
  /** The ids the last phase popped (refilled from here), in chunks of 256 for batched enqueue. */
  popped: Float64Array;
  poppedChunks: Float64Array[];
  /** Keys of refilled messages: priorities (and chunks of 256) and time deltas. */
  refillPrios: Uint8Array;
  refillPrioChunks: Uint8Array[];
  refillDeltas: Float64Array;
}

export function makeWorkload(variant: Variant, n: number): Workload {
  const seed = n * 7 + (variant === 'prio' ? 1 : 2);
  const ids = makeIds(n, seed);
  const prios = makePriorities(n, seed + 11);
  const times = makeTimes(n, seed + 13);
  const idChunks: Float64Array[] = [];
  const prioChunks: Uint8Array[] = [];
  for (let i = 0; i < n; i += 256) {
    idChunks.push(ids.subarray(i, Math.min(n, i + 256)));
    prioChunks.push(prios.subarray(i, Math.min(n, i + 256)));
  }
  const r = rng(seed + 17);
  const m = Math.max(1, Math.floor(n / 10));
  const cancelIds = new Float64Array(m);
  // A random sample without repeats: a partial Fisher-Yates over indices.
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(r() * (n - i));
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
    cancelIds[i] = ids[idx[i]];
  }
  const cancelChunks: Float64Array[] = [];
  for (let i = 0; i < m; i += 256) cancelChunks.push(cancelIds.subarray(i, Math.min(m, i + 256)));
  const mixedPrios = makePriorities(TABLE, seed + 19);
  const mixedPrioViews: Uint8Array[] = [];
  for (let i = 0; i < TABLE; i += MIXED_B) mixedPrioViews.push(mixedPrios.subarray(i, i + MIXED_B));
  const mixedDeltas = new Float64Array(TABLE);
  for (let i = 0; i < TABLE; i++) mixedDeltas[i] = BACKOFF_MS[Math.floor(r() * 4)] + Math.floor(r() * 30_000);
  const pm = Math.max(1, Math.floor(n / 4));
  const popped = new Float64Array(pm);
  const refillPrios = makePriorities(pm, seed + 23);
  const refillDeltas = new Float64Array(pm);
  for (let i = 0; i < pm; i++) refillDeltas[i] = mixedDeltas[i & (TABLE - 1)];
  const poppedChunks: Float64Array[] = [];
  const refillPrioChunks: Uint8Array[] = [];
  for (let i = 0; i < pm; i += 256) {
    poppedChunks.push(popped.subarray(i, Math.min(pm, i + 256)));
    refillPrioChunks.push(refillPrios.subarray(i, Math.min(pm, i + 256)));
  }
  return {
    variant,
    n,
    ids,
    prios,
    times,
    idChunks,
    prioChunks,
    cancelIds,
    cancelChunks,
    mixedPrioViews,
    mixedPrios,
    mixedDeltas,
    m: pm,
    popped,
    poppedChunks,
    refillPrios,
    refillPrioChunks,
    refillDeltas,
  };
}

export interface Candidate {
  readonly name: string;
  /** Which API each operation uses, for the table. */
  readonly api: Record<string, string>;
  readonly kind: 'js-fifo' | 'js-heap' | 'js-sorted' | 'native';
  supports(v: Variant): boolean;
  /** A fresh structure holding every message of w (from empty). */
  build(w: Workload): void;
  /** Pops m messages, k per call, into w.popped; each popped message is finished (native: take +
   *  settle; JS: popped and dropped from the id index). Returns how many. */
  pop(k: number, m: number): number;
  /** Native only: takes m messages, k per call, into w.popped, left in flight. */
  take?(k: number, m: number): number;
  /** Native only: settles the m messages of w.popped that take() left in flight. */
  finish?(m: number): void;
  /** Enqueues the m ids of w.popped again, with fresh keys (refill priorities / later times).
   *  single: one call per message (native prio; JS always enqueues one at a time). */
  refill(m: number, single: boolean): void;
  /** Cancels every id of w.cancelIds; returns how many. single: one call per id (native; the JS
   *  structures always cancel one at a time), else the native batch call per chunk of 256. */
  cancel(single: boolean): number;
  /** One step of the steady mixed load: pop B, re-insert B with fresh keys (size stays N). */
  mixed(): void;
  size(): number;
  dispose(): void;
}

const P50 = 2 ** 50;
const P26 = 2 ** 26;
const M26 = P26 - 1;

// --- pure JS ------------------------------------------------------------------------------------

abstract class JsBase implements Candidate {
  abstract readonly name: string;
  abstract readonly kind: 'js-fifo' | 'js-heap' | 'js-sorted';
  abstract readonly api: Record<string, string>;
  protected w!: Workload;
  protected seq = 0;
  protected live = new Map<number, number>();
  readonly #buf = new Float64Array(MIXED_B);
  #mix = 0;
  #vclock = 0;

  supports(_v: Variant): boolean {
    return true;
  }
  protected abstract reset(n: number): void;
  protected abstract push(id: number, p: number, t: number): void;
  /** Pops up to k entries into out[off..]; returns how many. */
  abstract popInto(out: Float64Array, off: number, k: number): number;
  abstract cancelOne(id: number): boolean;
  abstract size(): number;

  build(w: Workload): void {
    this.w = w;
    this.seq = 0;
    this.live = new Map();
    this.reset(w.n);
    const { ids, prios, times, n } = w;
    for (let i = 0; i < n; i++) this.push(ids[i], prios[i], times[i]);
    this.#vclock = BASE_TIME + n / 10;
  }

  pop(k: number, m: number): number {
    const out = this.w.popped;
    let got = 0;
    while (got < m) {
      const n = this.popInto(out, got, Math.min(k, m - got));
      if (n === 0) break;
      got += n;
    }
    keep(out[got - 1]);
    return got;
  }

  refill(m: number): void {
    const w = this.w;
    const ids = w.popped;
    const vc = this.#vclock;
    for (let i = 0; i < m; i++) this.push(ids[i], w.refillPrios[i], vc + w.refillDeltas[i]);
    this.#vclock += m / 10;
  }

  cancel(): number {
    const ids = this.w.cancelIds;
    let c = 0;
    for (let i = 0; i < ids.length; i++) if (this.cancelOne(ids[i])) c++;
    return c;
  }

  mixed(): void {
    const buf = this.#buf;
    const n = this.popInto(buf, 0, MIXED_B);
    const w = this.w;
    let j = this.#mix;
    for (let i = 0; i < n; i++) {
      this.push(buf[i], w.mixedPrios[j], this.#vclock + w.mixedDeltas[j]);
      j = (j + 1) & (TABLE - 1);
    }
    this.#mix = j;
    this.#vclock += MIXED_B / 10;
  }

  dispose(): void {
    this.live = new Map();
    this.reset(0);
  }
}

export class JsArrayFifo extends JsBase {
  readonly name = 'js-array';
  readonly kind = 'js-fifo' as const;
  readonly api = { all: 'Array per priority + Map id->seq (lazy cancel)' };
  #ids: number[][] = [[], []];
  #seqs: number[][] = [[], []];
  #head = [0, 0];

  override supports(v: Variant): boolean {
    return v === 'prio';
  }
  protected reset(): void {
    this.#ids = [[], []];
    this.#seqs = [[], []];
    this.#head = [0, 0];
  }
  protected push(id: number, p: number): void {
    const s = ++this.seq;
    this.#ids[p].push(id);
    this.#seqs[p].push(s);
    this.live.set(id, s);
  }
  popInto(out: Float64Array, off: number, k: number): number {
    let n = 0;
    const live = this.live;
    for (let p = 1; p >= 0 && n < k; p--) {
      const ids = this.#ids[p];
      const seqs = this.#seqs[p];
      let h = this.#head[p];
      while (n < k && h < ids.length) {
        const id = ids[h];
        const s = seqs[h];
        h++;
        if (live.get(id) === s) {
          live.delete(id);
          out[off + n++] = id;
        }
      }
      if (h > 4096 && h * 2 > ids.length) {
        ids.copyWithin(0, h);
        ids.length -= h;
        seqs.copyWithin(0, h);
        seqs.length -= h;
        h = 0;
      }
      this.#head[p] = h;
    }
    return n;
  }
  cancelOne(id: number): boolean {
    return this.live.delete(id);
  }
  size(): number {
    return this.live.size;
  }
}

export class JsFlatQueue extends JsBase {
  readonly name = 'flatqueue';
  readonly kind = 'js-heap' as const;
  readonly api = { all: 'flatqueue on Float64Array keys/ids + Map id->key (lazy cancel)' };
  #q = new FlatQueue<number>();

  protected reset(n: number): void {
    // Room for the lazy tombstones that cancel leaves until they reach the top.
    this.#q = n === 0 ? new FlatQueue<number>() : new FlatQueue<number>(2 * n + 4096, Float64Array, Float64Array);
  }
  protected push(id: number, p: number, t: number): void {
    const s = ++this.seq;
    const key = this.w.variant === 'prio' ? (1 - p) * P50 + s : (t - BASE_TIME) * P26 + (s & M26);
    this.#q.push(id, key);
    this.live.set(id, key);
  }
  popInto(out: Float64Array, off: number, k: number): number {
    let n = 0;
    const q = this.#q;
    const live = this.live;
    while (n < k && q.length > 0) {
      const key = q.peekValue()!;
      const id = q.pop()!;
      if (live.get(id) === key) {
        live.delete(id);
        out[off + n++] = id;
      }
    }
    return n;
  }
  cancelOne(id: number): boolean {
    return this.live.delete(id);
  }
  size(): number {
    return this.live.size;
  }
}

export class JsSdsl extends JsBase {
  readonly name = 'js-sdsl';
  readonly kind = 'js-sorted' as const;
  readonly api = { all: 'js-sdsl OrderedMap key->id + Map id->key (eager cancel)' };
  #m = new OrderedMap<number, number>();

  protected reset(): void {
    this.#m = new OrderedMap<number, number>();
  }
  protected push(id: number, p: number, t: number): void {
    const s = ++this.seq;
    const key = this.w.variant === 'prio' ? (1 - p) * P50 + s : (t - BASE_TIME) * P26 + (s & M26);
    this.#m.setElement(key, id);
    this.live.set(id, key);
  }
  popInto(out: Float64Array, off: number, k: number): number {
    let n = 0;
    const m = this.#m;
    while (n < k && m.size() > 0) {
      const f = m.front()!;
      m.eraseElementByIterator(m.begin());
      this.live.delete(f[1]);
      out[off + n++] = f[1];
    }
    return n;
  }
  cancelOne(id: number): boolean {
    const key = this.live.get(id);
    if (key === undefined) return false;
    this.#m.eraseElementByKey(key);
    this.live.delete(id);
    return true;
  }
  size(): number {
    return this.#m.size();
  }
}

export class JsBtree extends JsBase {
  readonly name = 'sorted-btree';
  readonly kind = 'js-sorted' as const;
  readonly api = { all: 'sorted-btree BTree key->id + Map id->key (eager cancel)' };
  #t = new BTree<number, number>();
  readonly #pair: number[] = [];

  protected reset(): void {
    this.#t = new BTree<number, number>();
  }
  protected push(id: number, p: number, t: number): void {
    const s = ++this.seq;
    const key = this.w.variant === 'prio' ? (1 - p) * P50 + s : (t - BASE_TIME) * P26 + (s & M26);
    this.#t.set(key, id);
    this.live.set(id, key);
  }
  popInto(out: Float64Array, off: number, k: number): number {
    const t = this.#t;
    let n = 0;
    let first = 0;
    let last = 0;
    // One descent to iterate the first k entries (reusing one pair array), one deleteRange.
    if (k > 0) {
      for (const e of t.entries(undefined, this.#pair)) {
        if (n === 0) first = e[0];
        last = e[0];
        out[off + n++] = e[1];
        if (n === k) break;
      }
    }
    if (n > 0) {
      t.deleteRange(first, last, true);
      for (let i = 0; i < n; i++) this.live.delete(out[off + i]);
    }
    return n;
  }
  cancelOne(id: number): boolean {
    const key = this.live.get(id);
    if (key === undefined) return false;
    this.#t.delete(key);
    this.live.delete(id);
    return true;
  }
  size(): number {
    return this.#t.size;
  }
}

// --- native -------------------------------------------------------------------------------------

export const DOMAIN = 'bench.example';
/** The clock of the queue-ops cores: far after every generated time, so every message is due
 *  (active) and its nextAttempt is only a sort key; expiry (now + 1 day) is never reached. */
export const FAR = BASE_TIME + 1e9;

// Next-attempt times for batched time-key enqueues (both native candidates): TIME_VIEWS[k] = the
// first k entries of one Float64Array(256).
const TIMES = new Float64Array(256);
const TIME_VIEWS = Array.from({ length: 257 }, (_, k) => TIMES.subarray(0, k));
/** The times t0 + deltas[(d0 + i) & mask] for i < n (n <= 256), in a shared view. */
function timesFor(n: number, t0: number, deltas: Float64Array, d0: number, mask: number): Float64Array {
  for (let i = 0; i < n; i++) TIMES[i] = t0 + deltas[(d0 + i) & mask];
  return TIME_VIEWS[n];
}

export class CoreApi implements Candidate {
  readonly name = 'core';
  readonly kind = 'native' as const;
  readonly api = {
    enqueue:
      'prio: core.enqueueBatch(domain, binding, ids[256], priorities[256]); ts: core.enqueueBatch(domain, binding, ids[256], undefined, nextAttempts[256])',
    enqueue1: 'core.enqueue({id, domain, priority}) per message',
    pop: 'core.takeInto(domain, 0, Float64Array(k)) + core.settleMany(the ids taken)',
    take: 'core.takeInto(domain, 0, Float64Array(k)) only (messages left in flight)',
    cancel: 'core.cancelMany(ids[256])',
    cancel1: 'core.cancel(id) per message',
    mixed: 'takeInto(16) + settleMany(16) + prio: enqueueBatch(16) / ts: enqueueBatch(16, nextAttempts[16])',
  };
  #core: MailQueueCore | null = null;
  /** enqueueBatch of ids (at most 256) with times t0 + deltas[d0 + i] (deltas indexed mod mask + 1). */
  #enqueueTimed(ids: Float64Array, t0: number, deltas: Float64Array, d0: number, mask: number): void {
    this.#core!.enqueueBatch(DOMAIN, 'b0', ids, undefined, timesFor(ids.length, t0, deltas, d0, mask));
  }
  #w!: Workload;
  readonly #buf = new Float64Array(MIXED_B);
  #mix = 0;
  #vclock = 0;
  readonly #bufs = new Map<number, Float64Array>();
  #bufOf(k: number): Float64Array {
    let b = this.#bufs.get(k);
    if (!b) this.#bufs.set(k, (b = new Float64Array(k)));
    return b;
  }

  supports(): boolean {
    return true;
  }

  #fresh(w: Workload): MailQueueCore {
    this.#core?.close();
    this.#w = w;
    this.#vclock = BASE_TIME + w.n / 10;
    const core = new MailQueueCore({ bindings: ['b0'], clock: () => FAR });
    this.#core = core;
    return core;
  }

  build(w: Workload): void {
    const core = this.#fresh(w);
    if (w.variant === 'prio') {
      const ic = w.idChunks;
      const pc = w.prioChunks;
      for (let c = 0; c < ic.length; c++) core.enqueueBatch(DOMAIN, 'b0', ic[c], pc[c]);
    } else {
      const { ids, times, n } = w;
      for (let i = 0; i < n; i += 256) {
        const e = Math.min(n, i + 256);
        this.#enqueueTimed(ids.subarray(i, e), 0, times.subarray(i, e), 0, 0xffffffff);
      }
    }
  }

  pop(k: number, m: number): number {
    const core = this.#core!;
    const out = this.#w.popped;
    const buf = this.#bufOf(k);
    let got = 0;
    while (got < m) {
      const view = m - got >= k ? buf : buf.subarray(0, m - got);
      const n = core.takeInto(DOMAIN, 0, view);
      if (n === 0) break;
      // One batched outcome call per run taken, as a connection that delivers in batches would.
      core.settleMany(n === view.length ? view : view.subarray(0, n));
      for (let i = 0; i < n; i++) out[got + i] = buf[i];
      got += n;
    }
    return got;
  }

  take(k: number, m: number): number {
    const core = this.#core!;
    const out = this.#w.popped;
    const buf = this.#bufOf(k);
    let got = 0;
    while (got < m) {
      const n = core.takeInto(DOMAIN, 0, m - got >= k ? buf : buf.subarray(0, m - got));
      if (n === 0) break;
      for (let i = 0; i < n; i++) out[got + i] = buf[i];
      got += n;
    }
    return got;
  }

  finish(m: number): void {
    const core = this.#core!;
    const ids = this.#w.popped;
    for (let i = 0; i < m; i++) core.settle(ids[i]);
  }

  refill(m: number, single: boolean): void {
    const core = this.#core!;
    const w = this.#w;
    const ids = w.popped;
    if (w.variant === 'prio' && !single && m === w.m) {
      const ic = w.poppedChunks;
      const pc = w.refillPrioChunks;
      for (let c = 0; c < ic.length; c++) core.enqueueBatch(DOMAIN, 'b0', ic[c], pc[c]);
    } else if (w.variant === 'prio') {
      for (let i = 0; i < m; i++) core.enqueue({ id: ids[i], domain: DOMAIN, priority: w.refillPrios[i] });
    } else {
      const vc = this.#vclock;
      for (let i = 0; i < m; i += 256)
        this.#enqueueTimed(ids.subarray(i, Math.min(m, i + 256)), vc, w.refillDeltas, i, 0xffffffff);
      this.#vclock += m / 10;
    }
  }

  cancel(single: boolean): number {
    const core = this.#core!;
    let c = 0;
    if (single) {
      const ids = this.#w.cancelIds;
      for (let i = 0; i < ids.length; i++) if (core.cancel(ids[i])) c++;
    } else {
      const chunks = this.#w.cancelChunks;
      for (let i = 0; i < chunks.length; i++) c += core.cancelMany(chunks[i]);
    }
    return c;
  }

  mixed(): void {
    const core = this.#core!;
    const buf = this.#buf;
    const w = this.#w;
    const n = core.takeInto(DOMAIN, 0, buf);
    core.settleMany(n === buf.length ? buf : buf.subarray(0, n));
    let j = this.#mix;
    if (w.variant === 'prio') {
      core.enqueueBatch(DOMAIN, 'b0', n === MIXED_B ? buf : buf.subarray(0, n), w.mixedPrioViews[j]);
      j = (j + 1) % w.mixedPrioViews.length;
    } else {
      this.#enqueueTimed(n === MIXED_B ? buf : buf.subarray(0, n), this.#vclock, w.mixedDeltas, j, TABLE - 1);
      j = (j + n) & (TABLE - 1);
      this.#vclock += MIXED_B / 10;
    }
    this.#mix = j;
  }

  size(): number {
    const c = this.#core!;
    return c.counters[c.counterIndex.active] + c.counters[c.counterIndex.delayed];
  }

  dispose(): void {
    this.#core?.close();
    this.#core = null;
  }
}

/** A core made through the raw binding: one binding, default limits. */
export function rawCore(bindings = 1, serverMax = 20000, reserve = 200): { h: number; counters: Float64Array } {
  const h = native.createCore(
    Float64Array.of(bindings, 0, serverMax, reserve),
    new Int32Array(bindings).fill(-1),
    new Float64Array(bindings).fill(Infinity),
    new Float64Array(0),
  );
  return { h, counters: new Float64Array(native.countersBuffer(h)) };
}

export function rawDomain(h: number, bindings = 1, maxConnections = 32): number {
  const pairs = new Float64Array(4 * bindings);
  for (let b = 0; b < bindings; b++) pairs.set([maxConnections, 0.3, -1, 0], 4 * b);
  return native.addDomain(h, pairs, Infinity, new Float64Array(0));
}

export class NativeRaw implements Candidate {
  readonly name = 'native-raw';
  readonly kind = 'native' as const;
  readonly api = {
    enqueue:
      'prio: native.enqueueBatch(h, d, 0, ids[256], prios[256], now, Infinity, now); ts: native.enqueueBatch(h, d, 0, ids[256], null, times[256], Infinity, now)',
    enqueue1: 'native.enqueue(h, d, 0, id, prio, now, Infinity, now) per message',
    pop: 'native.take(h, d, 0, now, Float64Array(k)) + native.settleBatch(h, the ids taken)',
    take: 'native.take(h, d, 0, now, Float64Array(k)) only',
    cancel: 'native.cancelBatch(h, ids[256])',
    cancel1: 'native.cancel(h, id) per message',
    mixed: 'take(16) + settleBatch(16) + prio: enqueueBatch(16) / ts: enqueueBatch(16, times[16])',
  };
  #enqueueTimed(ids: Float64Array, t0: number, deltas: Float64Array, d0: number, mask: number): void {
    native.enqueueBatch(this.#h, this.#d, 0, ids, null, timesFor(ids.length, t0, deltas, d0, mask), Infinity, FAR);
  }
  #h = -1;
  #d = 0;
  #w!: Workload;
  readonly #buf = new Float64Array(MIXED_B);
  #mix = 0;
  #vclock = 0;
  readonly #bufs = new Map<number, Float64Array>();
  #bufOf(k: number): Float64Array {
    let b = this.#bufs.get(k);
    if (!b) this.#bufs.set(k, (b = new Float64Array(k)));
    return b;
  }

  supports(): boolean {
    return true;
  }

  #fresh(w: Workload): number {
    if (this.#h >= 0) native.destroyCore(this.#h);
    this.#w = w;
    this.#vclock = BASE_TIME + w.n / 10;
    this.#h = rawCore().h;
    this.#d = rawDomain(this.#h);
    return this.#h;
  }

  build(w: Workload): void {
    const h = this.#fresh(w);
    const d = this.#d;
    if (w.variant === 'prio') {
      const ic = w.idChunks;
      const pc = w.prioChunks;
      for (let c = 0; c < ic.length; c++) native.enqueueBatch(h, d, 0, ic[c], pc[c], FAR, Infinity, FAR);
    } else {
      const { ids, times, n } = w;
      for (let i = 0; i < n; i += 256) {
        const e = Math.min(n, i + 256);
        this.#enqueueTimed(ids.subarray(i, e), 0, times.subarray(i, e), 0, 0xffffffff);
      }
    }
  }

  pop(k: number, m: number): number {
    const h = this.#h;
    const d = this.#d;
    const out = this.#w.popped;
    const buf = this.#bufOf(k);
    let got = 0;
    while (got < m) {
      const view = m - got >= k ? buf : buf.subarray(0, m - got);
      const n = native.take(h, d, 0, FAR, view);
      if (n === 0) break;
      native.settleBatch(h, n === view.length ? view : view.subarray(0, n));
      for (let i = 0; i < n; i++) out[got + i] = buf[i];
      got += n;
    }
    return got;
  }

  take(k: number, m: number): number {
    const h = this.#h;
    const d = this.#d;
    const out = this.#w.popped;
    const buf = this.#bufOf(k);
    let got = 0;
    while (got < m) {
      const n = native.take(h, d, 0, FAR, m - got >= k ? buf : buf.subarray(0, m - got));
      if (n === 0) break;
      for (let i = 0; i < n; i++) out[got + i] = buf[i];
      got += n;
    }
    return got;
  }

  finish(m: number): void {
    const h = this.#h;
    const ids = this.#w.popped;
    for (let i = 0; i < m; i++) native.settle(h, ids[i]);
  }

  refill(m: number, single: boolean): void {
    const h = this.#h;
    const d = this.#d;
    const w = this.#w;
    const ids = w.popped;
    if (w.variant === 'prio' && !single && m === w.m) {
      const ic = w.poppedChunks;
      const pc = w.refillPrioChunks;
      for (let c = 0; c < ic.length; c++) native.enqueueBatch(h, d, 0, ic[c], pc[c], FAR, Infinity, FAR);
    } else if (w.variant === 'prio') {
      for (let i = 0; i < m; i++) native.enqueue(h, d, 0, ids[i], w.refillPrios[i], FAR, Infinity, FAR);
    } else {
      const vc = this.#vclock;
      for (let i = 0; i < m; i += 256)
        this.#enqueueTimed(ids.subarray(i, Math.min(m, i + 256)), vc, w.refillDeltas, i, 0xffffffff);
      this.#vclock += m / 10;
    }
  }

  cancel(single: boolean): number {
    const h = this.#h;
    let c = 0;
    if (single) {
      const ids = this.#w.cancelIds;
      for (let i = 0; i < ids.length; i++) if (native.cancel(h, ids[i])) c++;
    } else {
      const chunks = this.#w.cancelChunks;
      for (let i = 0; i < chunks.length; i++) c += native.cancelBatch(h, chunks[i]);
    }
    return c;
  }

  mixed(): void {
    const h = this.#h;
    const d = this.#d;
    const buf = this.#buf;
    const w = this.#w;
    const n = native.take(h, d, 0, FAR, buf);
    const taken = n === MIXED_B ? buf : buf.subarray(0, n);
    native.settleBatch(h, taken);
    let j = this.#mix;
    if (w.variant === 'prio') {
      native.enqueueBatch(h, d, 0, taken, w.mixedPrioViews[j], FAR, Infinity, FAR);
      j = (j + 1) % w.mixedPrioViews.length;
    } else {
      this.#enqueueTimed(taken, this.#vclock, w.mixedDeltas, j, TABLE - 1);
      j = (j + n) & (TABLE - 1);
      this.#vclock += MIXED_B / 10;
    }
    this.#mix = j;
  }

  size(): number {
    return native.activeSize(this.#h, this.#d, 0);
  }

  dispose(): void {
    if (this.#h >= 0) native.destroyCore(this.#h);
    this.#h = -1;
  }
}

export function candidateByName(name: string): Candidate {
  switch (name) {
    case 'js-array':
      return new JsArrayFifo();
    case 'flatqueue':
      return new JsFlatQueue();
    case 'js-sdsl':
      return new JsSdsl();
    case 'sorted-btree':
      return new JsBtree();
    case 'core':
      return new CoreApi();
    case 'native-raw':
      return new NativeRaw();
    default:
      throw new Error(`unknown candidate ${name}`);
  }
}

export const ALL_CANDIDATES = ['js-array', 'flatqueue', 'js-sdsl', 'sorted-btree', 'core', 'native-raw'];
