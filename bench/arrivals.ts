// Issue 14's workload, the MTA cycle, written once over one interface with two implementations:
//   PlainScheduler  what a good engineer writes without the addon (issue 14): per (domain, binding)
//                   pair one JS array of ids per priority with a head index, one Map id -> pair
//                   (for cancel), one binary heap over typed arrays for the delayed queue, and the
//                   same goal curve and connection limits as the core's default maintain
//   CoreImpl        the public API (MailQueueCore from dist/): maintain(now, { into: GrantList }),
//                   takeFor, settleMany, deferMany, releaseConnection; arrivals either one
//                   core.enqueue({ id, domain, binding }) a message (mode "enqueue") or, through the
//                   hook arriveFast(), the fastest arrival path the API offers (mode "batched": the
//                   round's arrivals in one enqueueMany(DomainRecords, binding slots, ids) call)
// and one driver (runMta) that both share. Each round the simulated clock advances 1 s, then:
//   pass      one maintenance pass (the default, no provider); the plain scheduler first moves due
//             delayed messages back to their pairs (the core does it inside its pass)
//   take      every grant takes one batch of up to 64 by its connection id
//   outcome   of the messages taken, 90% delivered (one settleMany a batch) and 10% deferred by
//             1-30 s (one deferMany a batch, one time a batch)
//   release   the connection is released after its batch
//   arrive    every delivered message is replaced by a new one at a uniformly random pair
// Interleaved rounds (take, outcome and release one grant after the other, as an MTA runs them)
// give the headline rate; phased rounds run each step as its own loop over the round's grants
// (the batches are held in one staging buffer between them) to time each phase on its own.
// Every random draw comes from seeded tables the driver owns, so both implementations see the same
// workload: the grants, batch sizes and outcomes of every round must come out identical (the
// result carries a checksum of them, compared by the report).
import { MailQueueCore } from '../dist/lib/core.js';
import type { GrantList } from '../dist/lib/grant_list.js';
import type { DomainRecord } from '../dist/lib/views.js';
import { BASE_TIME, keep, makeId, rng } from './common.js';

// The core's defaults, set explicitly on the core and used by the plain scheduler.
export const MAX_CONN = 32; // max_outbound_connections per (domain, binding)
export const SERVER_MAX = 20_000; // server_max_outbound_connections
export const SERVER_RESERVE = 200; // server_reserve_outbound_connections
export const AGGRESSIVENESS = 0.3; // connection_allocation_aggressiveness ('normal')
export const BATCH = 64; // messages a grant takes

export const domainName = (d: number): string => `d${d}.example`;
export const bindingName = (b: number): string => `b${b}`;

/** The goal curve of the core (native/core/connection_goal.cpp): min(M, max(1, ceil(M(1 - e^(-aq/M))))). */
export function goalCurve(m: number, q: number, a: number): number {
  if (m === 0 || q === 0) return 0;
  const goal = Math.ceil(m * (1 - Math.exp((-a * q) / m)) - 1e-9);
  return goal < 1 ? 1 : Math.min(goal, m);
}

/** What the driver needs from an implementation. Each runs in its own process, so every call site
 *  of the driver sees one class. */
export interface MtaImpl {
  readonly name: string;
  setNow(now: number): void;
  /** Initial fill (untimed): ids (with priorities) for (domain, binding). */
  fill(d: number, b: number, ids: Float64Array, prios: Uint8Array): void;
  /** Due delayed messages back to their pairs before the pass (the core does it inside the pass). */
  promote(now: number): void;
  /** One default maintenance pass; returns how many grants it made (read with grantId). */
  pass(now: number): number;
  grantId(i: number): number;
  takeFor(connectionId: number, out: Float64Array): number;
  settleMany(ids: Float64Array): void;
  deferMany(ids: Float64Array, nextAttempt: number): void;
  release(connectionId: number): void;
  /** One arriving message, queued as it arrives. */
  enqueue(id: number, domain: string, binding: string): void;
  /** The round's arrivals at once, as columns (ids, domain indices, binding slots). */
  arriveFast(ids: Float64Array, doms: Uint32Array, binds: Uint8Array, n: number): void;
  // single-operation microbenchmarks
  takePair(d: number, b: number, out: Float64Array): number;
  settle(id: number): void;
  defer(id: number, nextAttempt: number): void;
  /** Removes a queued message (the enqueue microbenchmark's untimed undo). */
  cancelMany(ids: Float64Array): number;
  counts(): { active: number; delayed: number; inFlight: number; connections: number };
  /** Brings every operation made so far into the implementation's own books (the core: its staged
   *  arrivals cross; plain JS has nothing pending), so a timed loop pays for all it did. */
  sync(): void;
  close(): void;
}

// --- plain JS, without the addon -----------------------------------------------------------------

const GOAL_TABLE = 4096;

/**
 * The plain-JS scheduler of issue 14. No object per message: a message is its id (a double) in one
 * JS array of its pair, plus one Map entry id -> pair * 2 + priority, plus, while it waits to be
 * retried, one heap slot in three typed arrays. Counters per pair and per domain are typed arrays.
 *
 * Lighter than the core by design (what a user would write, not what the core promises): no
 * expiry, no attempt counts, no message state (settle/defer trust the caller that the id is in
 * flight; enqueue does not look for a duplicate id). The connection rules are the core's default
 * maintain, to the rotation: the same due domains from a start that moves on by one each pass,
 * bindings with mail in a per-domain rotation, the same goal curve, the per-pair maximum and the
 * server maximum with its reserve, so both open the same connections each round.
 */
export class PlainScheduler implements MtaImpl {
  readonly name = 'plain';
  readonly #nb: number;
  readonly #bindings: string[];
  #now = BASE_TIME;

  // --- domains, by index; pairs p = d * nb + b
  readonly #domByName = new Map<string, number>();
  #domCount = 0;
  #domActive = new Int32Array(0); // active messages of the domain: due when > 0
  #domRot = new Uint32Array(0); // the domain's binding rotation
  #urgent: number[][] = []; // priority 1 ids, served first
  #normal: number[][] = []; // priority 0 ids
  #uHead = new Int32Array(0); // the first live index of urgent[p]
  #nHead = new Int32Array(0);
  #pairActive = new Int32Array(0);
  #pairConn = new Int32Array(0); // open connections of the pair

  // --- messages
  readonly #where = new Map<number, number>(); // id -> pair * 2 + priority (for cancel)
  // The delayed queue: a binary min-heap on the retry time over three typed arrays (time, id, and
  // pair * 2 + priority, so a due message goes back to its pair without a Map lookup).
  #hT = new Float64Array(1024);
  #hId = new Float64Array(1024);
  #hMeta = new Int32Array(1024);
  #hN = 0;

  // --- connections: id = slot + 1, slots reused (a free list); the pair each one serves
  #connPair = new Int32Array(1024).fill(-1);
  #free = new Int32Array(1024);
  #freeN = 0;
  #slotNext = 0;
  #total = 0; // open connections
  #grants = new Float64Array(1024); // the last pass's connection ids
  #grantN = 0;
  #due = new Int32Array(0);
  #rotation = 0;
  readonly #order: Int32Array;
  readonly #goal = new Uint8Array(GOAL_TABLE); // the goal curve for q < GOAL_TABLE

  #active = 0;
  #delayed = 0;
  #inFlight = 0;

  constructor(bindings: number) {
    this.#nb = bindings;
    this.#bindings = Array.from({ length: bindings }, (_, b) => bindingName(b));
    this.#order = new Int32Array(bindings);
    for (let q = 0; q < GOAL_TABLE; q++) this.#goal[q] = goalCurve(MAX_CONN, q, AGGRESSIVENESS);
  }

  setNow(now: number): void {
    this.#now = now;
  }

  #addDomain(name: string): number {
    const d = this.#domCount++;
    if (d >= this.#domActive.length) {
      const cap = Math.max(1024, 2 * this.#domActive.length);
      const grow32 = (a: Int32Array, n: number) => {
        const g = new Int32Array(n);
        g.set(a);
        return g;
      };
      this.#domActive = grow32(this.#domActive, cap);
      const rot = new Uint32Array(cap);
      rot.set(this.#domRot);
      this.#domRot = rot;
      this.#due = new Int32Array(cap);
      const pc = cap * this.#nb;
      this.#uHead = grow32(this.#uHead, pc);
      this.#nHead = grow32(this.#nHead, pc);
      this.#pairActive = grow32(this.#pairActive, pc);
      this.#pairConn = grow32(this.#pairConn, pc);
    }
    for (let b = 0; b < this.#nb; b++) {
      this.#urgent.push([]);
      this.#normal.push([]);
    }
    this.#domByName.set(name, d);
    return d;
  }

  #place(p: number, id: number, prio: number): void {
    (prio === 1 ? this.#urgent : this.#normal)[p].push(id);
    this.#pairActive[p]++;
    this.#domActive[(p / this.#nb) | 0]++;
    this.#active++;
  }

  fill(d: number, b: number, ids: Float64Array, prios: Uint8Array): void {
    const name = domainName(d);
    let dom = this.#domByName.get(name);
    if (dom === undefined) dom = this.#addDomain(name);
    const p = dom * this.#nb + b;
    for (let i = 0; i < ids.length; i++) {
      this.#where.set(ids[i], p * 2 + prios[i]);
      this.#place(p, ids[i], prios[i]);
    }
  }

  /** One arriving message (priority 0, due now): a name lookup, an array push, a Map.set. */
  enqueue(id: number, domain: string, binding: string): void {
    let d = this.#domByName.get(domain);
    if (d === undefined) d = this.#addDomain(domain);
    const b = this.#bindings.indexOf(binding);
    if (b < 0) throw new RangeError(`unknown binding ${binding}`);
    const p = d * this.#nb + b;
    this.#normal[p].push(id);
    this.#where.set(id, p * 2);
    this.#pairActive[p]++;
    this.#domActive[d]++;
    this.#active++;
  }

  arriveFast(ids: Float64Array, doms: Uint32Array, binds: Uint8Array, n: number): void {
    const nb = this.#nb;
    for (let i = 0; i < n; i++) {
      const p = doms[i] * nb + binds[i];
      this.#normal[p].push(ids[i]);
      this.#where.set(ids[i], p * 2);
      this.#pairActive[p]++;
      this.#domActive[doms[i]]++;
    }
    this.#active += n;
  }

  // --- the delayed heap

  #heapPush(t: number, id: number, meta: number): void {
    if (this.#hN === this.#hT.length) {
      const cap = 2 * this.#hT.length;
      const t2 = new Float64Array(cap);
      t2.set(this.#hT);
      this.#hT = t2;
      const i2 = new Float64Array(cap);
      i2.set(this.#hId);
      this.#hId = i2;
      const m2 = new Int32Array(cap);
      m2.set(this.#hMeta);
      this.#hMeta = m2;
    }
    const T = this.#hT,
      I = this.#hId,
      M = this.#hMeta;
    let i = this.#hN++;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (T[up] <= t) break;
      T[i] = T[up];
      I[i] = I[up];
      M[i] = M[up];
      i = up;
    }
    T[i] = t;
    I[i] = id;
    M[i] = meta;
  }

  /** Drops the top of the heap (read it first). */
  #heapPop(): void {
    const T = this.#hT,
      I = this.#hId,
      M = this.#hMeta;
    const n = --this.#hN;
    if (n === 0) return;
    const t = T[n],
      id = I[n],
      meta = M[n];
    let i = 0;
    const half = n >> 1;
    while (i < half) {
      let c = 2 * i + 1;
      if (c + 1 < n && T[c + 1] < T[c]) c++;
      if (T[c] >= t) break;
      T[i] = T[c];
      I[i] = I[c];
      M[i] = M[c];
      i = c;
    }
    T[i] = t;
    I[i] = id;
    M[i] = meta;
  }

  promote(now: number): void {
    while (this.#hN > 0 && this.#hT[0] <= now) {
      const id = this.#hId[0];
      const meta = this.#hMeta[0];
      this.#heapPop();
      this.#delayed--;
      this.#place(meta >> 1, id, meta & 1);
    }
  }

  // --- the maintenance pass: the core's default maintain

  pass(_now: number): number {
    const nb = this.#nb;
    const domActive = this.#domActive;
    const due = this.#due;
    this.#grantN = 0;
    let n = 0;
    for (let d = 0; d < this.#domCount; d++) if (domActive[d] > 0) due[n++] = d;
    if (n === 0) return 0;
    const start = this.#rotation++ % n;
    const ceiling = SERVER_MAX + SERVER_RESERVE;
    const pairActive = this.#pairActive;
    const pairConn = this.#pairConn;
    const order = this.#order;
    for (let i = 0; i < n; i++) {
      let k = start + i;
      if (k >= n) k -= n;
      const d = due[k];
      const base = d * nb;
      let cnt = 0;
      for (let b = 0; b < nb; b++) if (pairActive[base + b] > 0) order[cnt++] = b;
      const first = cnt > 1 ? this.#domRot[d]++ % cnt : 0;
      // Nothing can be granted once the total is at server max + reserve (the rotation above still
      // moves on, as the core's does on every visit).
      if (this.#total >= ceiling) continue;
      for (let j = 0; j < cnt; j++) {
        let o = first + j;
        if (o >= cnt) o -= cnt;
        const p = base + order[o];
        const cur = pairConn[p];
        const q = pairActive[p];
        const goal = q < GOAL_TABLE ? this.#goal[q] : goalCurve(MAX_CONN, q, AGGRESSIVENESS);
        let want = goal - cur;
        if (want <= 0) continue;
        if (want > MAX_CONN - cur) want = MAX_CONN - cur;
        // The seed's rule: the total stays at or below ceiling - reserve, and a pair with no
        // connection (reserve 0) takes at most one connection from the reserve.
        const reserve = cur === 0 ? 0 : SERVER_RESERVE;
        const limit = ceiling - reserve;
        let left = limit > this.#total ? limit - this.#total : 0;
        if (reserve < SERVER_RESERVE) {
          const normalLeft = SERVER_MAX > this.#total ? SERVER_MAX - this.#total : 0;
          if (left > normalLeft + 1) left = normalLeft + 1;
        }
        if (want > left) want = left;
        if (want <= 0) continue;
        for (let c = 0; c < want; c++) this.#grant(p);
        pairConn[p] += want;
        this.#total += want;
      }
    }
    return this.#grantN;
  }

  #grant(p: number): void {
    let slot: number;
    if (this.#freeN > 0) {
      slot = this.#free[--this.#freeN];
    } else {
      slot = this.#slotNext++;
      if (slot >= this.#connPair.length) {
        const cp = new Int32Array(2 * this.#connPair.length).fill(-1);
        cp.set(this.#connPair);
        this.#connPair = cp;
        const fr = new Int32Array(2 * this.#free.length);
        fr.set(this.#free);
        this.#free = fr;
      }
    }
    this.#connPair[slot] = p;
    if (this.#grantN === this.#grants.length) {
      const g = new Float64Array(2 * this.#grants.length);
      g.set(this.#grants);
      this.#grants = g;
    }
    this.#grants[this.#grantN++] = slot + 1;
  }

  grantId(i: number): number {
    return this.#grants[i];
  }

  // --- connections and messages

  #takePair(p: number, out: Float64Array): number {
    if (this.#pairActive[p] === 0) return 0;
    const k = out.length;
    let n = 0;
    const u = this.#urgent[p];
    let h = this.#uHead[p];
    if (h < u.length) {
      while (n < k && h < u.length) out[n++] = u[h++];
      if (h === u.length) {
        u.length = 0;
        h = 0;
      } else if (h > 1024 && 2 * h > u.length) {
        // compact once the dead prefix dominates
        u.copyWithin(0, h);
        u.length -= h;
        h = 0;
      }
      this.#uHead[p] = h;
    }
    if (n < k) {
      const a = this.#normal[p];
      h = this.#nHead[p];
      if (h < a.length) {
        while (n < k && h < a.length) out[n++] = a[h++];
        if (h === a.length) {
          a.length = 0;
          h = 0;
        } else if (h > 1024 && 2 * h > a.length) {
          a.copyWithin(0, h);
          a.length -= h;
          h = 0;
        }
        this.#nHead[p] = h;
      }
    }
    this.#pairActive[p] -= n;
    this.#domActive[(p / this.#nb) | 0] -= n;
    this.#active -= n;
    this.#inFlight += n;
    return n;
  }

  takeFor(connectionId: number, out: Float64Array): number {
    const p = this.#connPair[connectionId - 1];
    if (!(p >= 0)) throw new Error(`unknown connection ${connectionId}`);
    return this.#takePair(p, out);
  }

  takePair(d: number, b: number, out: Float64Array): number {
    return this.#takePair(d * this.#nb + b, out);
  }

  settle(id: number): void {
    this.#where.delete(id);
    this.#inFlight--;
  }

  settleMany(ids: Float64Array): void {
    const where = this.#where;
    for (let i = 0; i < ids.length; i++) where.delete(ids[i]);
    this.#inFlight -= ids.length;
  }

  defer(id: number, nextAttempt: number): void {
    const meta = this.#where.get(id)!;
    this.#inFlight--;
    if (nextAttempt > this.#now) {
      this.#heapPush(nextAttempt, id, meta);
      this.#delayed++;
    } else {
      this.#place(meta >> 1, id, meta & 1);
    }
  }

  deferMany(ids: Float64Array, nextAttempt: number): void {
    if (!(nextAttempt > this.#now)) {
      for (let i = 0; i < ids.length; i++) this.defer(ids[i], nextAttempt);
      return;
    }
    const where = this.#where;
    for (let i = 0; i < ids.length; i++) this.#heapPush(nextAttempt, ids[i], where.get(ids[i])!);
    this.#delayed += ids.length;
    this.#inFlight -= ids.length;
  }

  release(connectionId: number): void {
    const slot = connectionId - 1;
    const p = this.#connPair[slot];
    if (!(p >= 0)) throw new Error(`unknown connection ${connectionId}`);
    this.#connPair[slot] = -1;
    this.#free[this.#freeN++] = slot;
    this.#pairConn[p]--;
    this.#total--;
  }

  /** Active messages only (enough for the microbenchmark's undo; untimed): found from the tail. */
  cancelMany(ids: Float64Array): number {
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const meta = this.#where.get(id);
      if (meta === undefined) continue;
      const p = meta >> 1;
      const a = (meta & 1 ? this.#urgent : this.#normal)[p];
      const head = (meta & 1 ? this.#uHead : this.#nHead)[p];
      const at = a.lastIndexOf(id);
      if (at < head)
        throw new Error(`cancel: ${id} is not active (this baseline's cancel is for the bench's undo only)`);
      a.splice(at, 1);
      this.#where.delete(id);
      this.#pairActive[p]--;
      this.#domActive[(p / this.#nb) | 0]--;
      this.#active--;
      n++;
    }
    return n;
  }

  counts() {
    return { active: this.#active, delayed: this.#delayed, inFlight: this.#inFlight, connections: this.#total };
  }

  sync(): void {
    /* nothing is pending */
  }

  close(): void {
    this.#where.clear();
    this.#urgent = [];
    this.#normal = [];
  }
}

// --- the core, through the public API -----------------------------------------------------------

/** views[k] = the first k entries of buf (made once: no subarray per call). */
function views(buf: Float64Array): Float64Array[] {
  return Array.from({ length: buf.length + 1 }, (_, k) => buf.subarray(0, k));
}

export class CoreImpl implements MtaImpl {
  readonly name = 'core';
  readonly core: MailQueueCore;
  readonly #grants: GrantList;
  readonly #names: string[];
  readonly #bindings: string[];
  // An MTA keeps the DomainRecord of a domain it sends to (core.domain(name)).
  readonly #records: DomainRecord[] = [];
  #now = BASE_TIME;

  constructor(domains: number, bindings: number) {
    this.#bindings = Array.from({ length: bindings }, (_, b) => bindingName(b));
    this.#names = Array.from({ length: domains }, (_, d) => domainName(d));
    this.core = new MailQueueCore({
      bindings: this.#bindings,
      clock: () => this.#now,
      config: {
        global: {
          maxOutboundConnections: MAX_CONN,
          serverMaxOutboundConnections: SERVER_MAX,
          serverReserveOutboundConnections: SERVER_RESERVE,
          connectionAllocationAggressiveness: AGGRESSIVENESS,
        },
      },
    });
    this.#grants = this.core.grantList();
  }

  setNow(now: number): void {
    this.#now = now;
  }

  fill(d: number, b: number, ids: Float64Array, prios: Uint8Array): void {
    const r = this.#records[d];
    if (r !== undefined) {
      this.core.enqueueBatch(r, this.#bindings[b], ids, prios);
      return;
    }
    this.core.enqueueBatch(this.#names[d], this.#bindings[b], ids, prios);
    this.#records[d] = this.core.domain(this.#names[d]);
  }

  promote(_now: number): void {
    /* the core's pass promotes due mail of each domain it visits */
  }

  pass(now: number): number {
    this.core.maintain(now, { into: this.#grants });
    return this.#grants.length;
  }

  grantId(i: number): number {
    return this.#grants.connectionId(i);
  }
  takeFor(connectionId: number, out: Float64Array): number {
    return this.core.takeFor(connectionId, out);
  }
  settleMany(ids: Float64Array): void {
    this.core.settleMany(ids);
  }
  deferMany(ids: Float64Array, nextAttempt: number): void {
    this.core.deferMany(ids, nextAttempt);
  }
  release(connectionId: number): void {
    this.core.releaseConnection(connectionId);
  }

  /** Mode "enqueue": the message as an MTA has it (an id, the recipient domain's name, the binding
   *  routing chose), one call a message. */
  enqueue(id: number, domain: string, binding: string): void {
    this.core.enqueue({ id, domain, binding });
  }

  // Scratch of arriveFast: the round's arrivals' DomainRecords, in arrival order.
  readonly #arrivalRecords: DomainRecord[] = [];

  /**
   * Mode "batched": the fastest arrival path the API offers, enqueueMany: the round's arrivals in
   * one call, each named by its domain's DomainRecord (an MTA keeps the record of a domain it
   * sends to) and its binding slot, in arrival order.
   */
  arriveFast(ids: Float64Array, doms: Uint32Array, binds: Uint8Array, n: number): void {
    const recs = this.#arrivalRecords;
    const records = this.#records;
    recs.length = n;
    for (let i = 0; i < n; i++) recs[i] = records[doms[i]];
    this.core.enqueueMany(
      recs,
      n === binds.length ? binds : binds.subarray(0, n),
      n === ids.length ? ids : ids.subarray(0, n),
    );
  }

  takePair(d: number, b: number, out: Float64Array): number {
    return this.core.takeInto(this.#records[d], this.#bindings[b], out);
  }
  settle(id: number): void {
    this.core.settle(id);
  }
  defer(id: number, nextAttempt: number): void {
    this.core.defer(id, nextAttempt);
  }
  cancelMany(ids: Float64Array): number {
    return this.core.cancelMany(ids);
  }

  sync(): void {
    // Any call into the core hands it the staged outcomes and arrivals first; this one is among
    // the cheapest.
    this.core.hasDomain(this.#names[0]);
  }

  counts() {
    const c = this.core.counters;
    const i = this.core.counterIndex;
    return { active: c[i.active], delayed: c[i.delayed], inFlight: c[i.inFlight], connections: c[i.connections] };
  }

  checkInvariants(): boolean {
    return this.core.checkInvariants();
  }

  close(): void {
    this.core.close();
  }
}

// --- the workload: seeded tables both implementations read the same way --------------------------

const TABLE = 1 << 20;
const MASK = TABLE - 1;

export class Streams {
  readonly dom = new Uint32Array(TABLE); // arrival pairs, uniformly random
  readonly bind = new Uint8Array(TABLE);
  readonly hi = new Uint32Array(TABLE); // id high bits
  readonly ok = new Uint8Array(TABLE); // 1: delivered (90%), 0: deferred
  readonly delay = new Uint8Array(TABLE); // retry delay in s, 1-30
  readonly prio = new Uint8Array(TABLE); // fill priorities, 1 with urgentShare
  constructor(domains: number, bindings: number, urgentShare: number, seed: number) {
    const r = rng(seed);
    for (let i = 0; i < TABLE; i++) {
      this.dom[i] = Math.floor(r() * domains);
      this.bind[i] = Math.floor(r() * bindings);
      this.hi[i] = Math.floor(r() * 2097152);
      this.ok[i] = r() < 0.9 ? 1 : 0;
      this.delay[i] = 1 + Math.floor(r() * 30);
      this.prio[i] = r() < urgentShare ? 1 : 0;
    }
  }
}

export const mask = MASK;

export type IdPolicy = 'rising' | 'random';
/** Where rising ids start: above 2^31, so that plain JS keys them as heap numbers, as it would a
 *  real MTA's time-based ids (a Map keyed by small integers would be a friendlier baseline). */
export const RISING_BASE = 2 ** 40;
/** The i-th id of a run under an id policy. */
export function idFor(policy: IdPolicy, s: Streams, i: number): number {
  return policy === 'rising' ? RISING_BASE + i : makeId(i, s.hi[i & MASK]);
}

export interface MtaOptions {
  domains: number;
  bindings: number;
  perPair: number;
  urgentShare: number;
  warm: number;
  /** Timed rounds, take/settle/defer/release one grant after the other (the headline rate). */
  rounds: number;
  /** Untimed rounds of the phased loops before the timed ones (their code and staging buffer warm). */
  phasedWarm: number;
  /** Timed rounds with each phase its own loop (the per-phase times). */
  phased: number;
  mode: 'enqueue' | 'batched';
  /** How ids are drawn: 'rising' (an MTA's id allocator: a counter above 2^40, so every new id is
   *  above every id seen) or 'random' (uniform over 53 bits). */
  ids: IdPolicy;
  seed?: number;
}

export interface RoundStat {
  kind: 'warm' | 'interleaved' | 'warm-phased' | 'phased';
  ms: number;
  passMs: number;
  /** interleaved rounds: take + outcomes + release together */
  connMs: number;
  takeMs: number;
  outcomeMs: number;
  releaseMs: number;
  arriveMs: number;
  /** the same in CPU time (ms) */
  cpuMs: number;
  passCpu: number;
  connCpu: number;
  takeCpu: number;
  outcomeCpu: number;
  releaseCpu: number;
  arriveCpu: number;
  grants: number;
  /** grants that took at least one message */
  busy: number;
  taken: number;
  delivered: number;
  deferred: number;
  arrived: number;
  resident: number;
  delayed: number;
}

export interface MtaResult {
  impl: string;
  mode: string;
  fillMs: number;
  resident: number;
  rounds: RoundStat[];
  /** Outcomes (delivered + deferred) per second over the interleaved timed rounds. */
  rate: number;
  /** The same over the phased rounds (each phase its own loop). */
  phasedRate: number;
  /** The two rates in outcomes per CPU second. */
  cpuRate: number;
  phasedCpuRate: number;
  /** Per phased round, ms (wall, then CPU). */
  phases: { pass: number; take: number; outcome: number; release: number; arrive: number; total: number };
  phasesCpu: { pass: number; take: number; outcome: number; release: number; arrive: number; total: number };
  /** Per interleaved round, ms (wall, then CPU). */
  interleaved: { pass: number; conn: number; arrive: number; total: number };
  interleavedCpu: { pass: number; conn: number; arrive: number; total: number };
  perRound: { grants: number; busy: number; outcomes: number; arrived: number };
  /** FNV-1a over every round's (grants, busy, taken, delivered, deferred): the same for every
   *  implementation and mode when they made the same decisions. */
  checksum: string;
  end: { active: number; delayed: number; inFlight: number; connections: number };
}

/** Wall and CPU time of one stretch. CPU time is process.cpuUsage() (every thread of the process,
 *  the collector's helpers included): on a shared machine it leaves out the time the process
 *  waited for a core, which wall time counts. */
class Lap {
  #w = 0n;
  #c = 0;
  wall = 0;
  cpu = 0;
  start(): void {
    const u = process.cpuUsage();
    this.#c = u.user + u.system;
    this.#w = process.hrtime.bigint();
  }
  stop(): void {
    this.wall = Number(process.hrtime.bigint() - this.#w) / 1e6;
    const u = process.cpuUsage();
    this.cpu = (u.user + u.system - this.#c) / 1000;
  }
}

function fnv(h: number, x: number): number {
  for (let k = 0; k < 4; k++) {
    h ^= (x >>> (8 * k)) & 0xff;
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h;
}

export function runMta(impl: MtaImpl, o: MtaOptions): MtaResult {
  const s = new Streams(o.domains, o.bindings, o.urgentShare, o.seed ?? 14);
  const nb = o.bindings;
  const names = Array.from({ length: o.domains }, (_, d) => domainName(d));
  const bnames = Array.from({ length: nb }, (_, b) => bindingName(b));
  let now = BASE_TIME;
  impl.setNow(now);

  // Fill: perPair messages for every pair, urgentShare of them priority 1.
  let nextId = 0;
  const fillIds = new Float64Array(o.perPair);
  const fillPrios = new Uint8Array(o.perPair);
  const t0 = process.hrtime.bigint();
  for (let d = 0; d < o.domains; d++) {
    for (let b = 0; b < nb; b++) {
      for (let i = 0; i < o.perPair; i++) {
        fillIds[i] = idFor(o.ids, s, nextId);
        fillPrios[i] = s.prio[nextId & MASK];
        nextId++;
      }
      impl.fill(d, b, fillIds, fillPrios);
    }
  }
  const fillMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const initial = o.domains * nb * o.perPair;
  {
    const c = impl.counts();
    if (c.active !== initial) throw new Error(`${impl.name}: ${c.active} active after the fill, expected ${initial}`);
  }

  const buf = new Float64Array(BATCH);
  const sv = new Float64Array(BATCH);
  const dv = new Float64Array(BATCH);
  const svV = views(sv);
  const dvV = views(dv);
  // Phased rounds: the round's batches between the take and outcome loops (view i: grant i's batch).
  let stage = new Float64Array(0);
  let stageV: Float64Array[] = [];
  let conn = new Float64Array(0);
  let took = new Int32Array(0);
  const ensureStage = (g: number): void => {
    if (stageV.length >= g) return;
    const cap = Math.max(g, 2 * stageV.length);
    stage = new Float64Array(cap * BATCH);
    stageV = Array.from({ length: cap }, (_, i) => stage.subarray(i * BATCH, (i + 1) * BATCH));
    conn = new Float64Array(cap);
    took = new Int32Array(cap);
  };
  // Arrival columns (mode batched).
  let aIds = new Float64Array(1 << 16);
  let aDom = new Uint32Array(1 << 16);
  let aBind = new Uint8Array(1 << 16);

  let oc = 0; // cursor of the outcome table
  let dc = 0; // of the delay table
  let pc = 0; // of the arrival pairs
  let arrivedTotal = 0;
  let deliveredTotal = 0;
  let sum = 2166136261;
  const rounds: RoundStat[] = [];
  const whole = new Lap();
  const lap = new Lap();
  const total = o.warm + o.rounds + o.phasedWarm + o.phased;
  ensureStage(SERVER_MAX + SERVER_RESERVE);
  for (let r = 0; r < total; r++) {
    const kind: RoundStat['kind'] =
      r < o.warm
        ? 'warm'
        : r < o.warm + o.rounds
          ? 'interleaved'
          : r < o.warm + o.rounds + o.phasedWarm
            ? 'warm-phased'
            : 'phased';
    const phasedLoops = kind === 'phased' || kind === 'warm-phased';
    now += 1000;
    impl.setNow(now);
    let delivered = 0;
    let deferred = 0;
    let busy = 0;
    let connMs = 0,
      takeMs = 0,
      outcomeMs = 0,
      releaseMs = 0;
    let connCpu = 0,
      takeCpu = 0,
      outcomeCpu = 0,
      releaseCpu = 0;
    whole.start();
    lap.start();
    impl.promote(now);
    const g = impl.pass(now);
    lap.stop();
    const passMs = lap.wall;
    const passCpu = lap.cpu;
    if (!phasedLoops) {
      // As an MTA runs them: each connection takes its batch, reports it, and is released.
      lap.start();
      for (let i = 0; i < g; i++) {
        const c = impl.grantId(i);
        const n = impl.takeFor(c, buf);
        if (n > 0) {
          busy++;
          let a = 0;
          let b = 0;
          for (let j = 0; j < n; j++) {
            if (s.ok[oc++ & MASK] === 1) sv[a++] = buf[j];
            else dv[b++] = buf[j];
          }
          if (a > 0) impl.settleMany(svV[a]);
          if (b > 0) impl.deferMany(dvV[b], now + 1000 * s.delay[dc++ & MASK]);
          delivered += a;
          deferred += b;
        }
        impl.release(c);
      }
      lap.stop();
      connMs = lap.wall;
      connCpu = lap.cpu;
    } else {
      ensureStage(g);
      lap.start();
      for (let i = 0; i < g; i++) {
        const c = impl.grantId(i);
        conn[i] = c;
        took[i] = impl.takeFor(c, stageV[i]);
      }
      lap.stop();
      takeMs = lap.wall;
      takeCpu = lap.cpu;
      lap.start();
      for (let i = 0; i < g; i++) {
        const n = took[i];
        if (n === 0) continue;
        busy++;
        const off = i * BATCH;
        let a = 0;
        let b = 0;
        for (let j = 0; j < n; j++) {
          if (s.ok[oc++ & MASK] === 1) sv[a++] = stage[off + j];
          else dv[b++] = stage[off + j];
        }
        if (a > 0) impl.settleMany(svV[a]);
        if (b > 0) impl.deferMany(dvV[b], now + 1000 * s.delay[dc++ & MASK]);
        delivered += a;
        deferred += b;
      }
      lap.stop();
      outcomeMs = lap.wall;
      outcomeCpu = lap.cpu;
      lap.start();
      for (let i = 0; i < g; i++) impl.release(conn[i]);
      lap.stop();
      releaseMs = lap.wall;
      releaseCpu = lap.cpu;
    }
    // Arrivals: every delivered message is replaced by a new one at a random pair.
    lap.start();
    if (o.mode === 'enqueue') {
      for (let j = 0; j < delivered; j++) {
        const id = idFor(o.ids, s, nextId);
        nextId++;
        const x = pc++ & MASK;
        impl.enqueue(id, names[s.dom[x]], bnames[s.bind[x]]);
      }
    } else {
      if (aIds.length < delivered) {
        aIds = new Float64Array(2 * delivered);
        aDom = new Uint32Array(2 * delivered);
        aBind = new Uint8Array(2 * delivered);
      }
      for (let j = 0; j < delivered; j++) {
        aIds[j] = idFor(o.ids, s, nextId);
        nextId++;
        const x = pc++ & MASK;
        aDom[j] = s.dom[x];
        aBind[j] = s.bind[x];
      }
      impl.arriveFast(aIds, aDom, aBind, delivered);
    }
    impl.sync();
    lap.stop();
    whole.stop();
    const arriveMs = lap.wall;
    const arriveCpu = lap.cpu;
    const ms = whole.wall;
    const cpuMs = whole.cpu;
    arrivedTotal += delivered;
    deliveredTotal += delivered;

    // Every message accounted: resident + delivered - arrived stays what the fill left.
    const c = impl.counts();
    const resident = c.active + c.delayed + c.inFlight;
    if (resident + deliveredTotal - arrivedTotal !== initial || c.inFlight !== 0 || c.connections !== 0) {
      throw new Error(
        `${impl.name} round ${r}: resident ${resident} (active ${c.active}, delayed ${c.delayed}, in flight ${c.inFlight}), ` +
          `connections ${c.connections}, delivered ${deliveredTotal}, arrived ${arrivedTotal}: expected ${initial} resident, none in flight or open`,
      );
    }
    for (const x of [g, busy, delivered + deferred, delivered, deferred]) sum = fnv(sum, x);
    rounds.push({
      kind,
      ms,
      passMs,
      connMs,
      takeMs,
      outcomeMs,
      releaseMs,
      arriveMs,
      cpuMs,
      passCpu,
      connCpu,
      takeCpu,
      outcomeCpu,
      releaseCpu,
      arriveCpu,
      grants: g,
      busy,
      taken: delivered + deferred,
      delivered,
      deferred,
      arrived: delivered,
      resident,
      delayed: c.delayed,
    });
  }
  const il = rounds.filter((x) => x.kind === 'interleaved');
  const ph = rounds.filter((x) => x.kind === 'phased');
  const tot = (xs: RoundStat[], f: (x: RoundStat) => number): number => xs.reduce((a, x) => a + f(x), 0);
  const per = (xs: RoundStat[], f: (x: RoundStat) => number): number => (xs.length ? tot(xs, f) / xs.length : NaN);
  const timed = [...il, ...ph];
  keep(tot(timed, (x) => x.taken));
  return {
    impl: impl.name,
    mode: o.mode,
    fillMs,
    resident: initial,
    rounds,
    rate: tot(il, (x) => x.taken) / (tot(il, (x) => x.ms) / 1000),
    phasedRate: tot(ph, (x) => x.taken) / (tot(ph, (x) => x.ms) / 1000),
    cpuRate: tot(il, (x) => x.taken) / (tot(il, (x) => x.cpuMs) / 1000),
    phasedCpuRate: tot(ph, (x) => x.taken) / (tot(ph, (x) => x.cpuMs) / 1000),
    phasesCpu: {
      pass: per(ph, (x) => x.passCpu),
      take: per(ph, (x) => x.takeCpu),
      outcome: per(ph, (x) => x.outcomeCpu),
      release: per(ph, (x) => x.releaseCpu),
      arrive: per(ph, (x) => x.arriveCpu),
      total: per(ph, (x) => x.cpuMs),
    },
    interleavedCpu: {
      pass: per(il, (x) => x.passCpu),
      conn: per(il, (x) => x.connCpu),
      arrive: per(il, (x) => x.arriveCpu),
      total: per(il, (x) => x.cpuMs),
    },
    phases: {
      pass: per(ph, (x) => x.passMs),
      take: per(ph, (x) => x.takeMs),
      outcome: per(ph, (x) => x.outcomeMs),
      release: per(ph, (x) => x.releaseMs),
      arrive: per(ph, (x) => x.arriveMs),
      total: per(ph, (x) => x.ms),
    },
    interleaved: {
      pass: per(il, (x) => x.passMs),
      conn: per(il, (x) => x.connMs),
      arrive: per(il, (x) => x.arriveMs),
      total: per(il, (x) => x.ms),
    },
    perRound: {
      grants: per(timed, (x) => x.grants),
      busy: per(timed, (x) => x.busy),
      outcomes: per(timed, (x) => x.taken),
      arrived: per(timed, (x) => x.arrived),
    },
    checksum: sum.toString(16),
    end: impl.counts(),
  };
}

// --- single operations at 1M resident, random pairs ---------------------------------------------

export interface MicroOptions {
  domains: number;
  bindings: number;
  perPair: number;
  urgentShare: number;
  /** Operations a sample (a timed loop). */
  n: number;
  rounds: number;
  ids: IdPolicy;
  seed?: number;
}

export interface MicroResult {
  n: number;
  rounds: number;
  resident: number;
  /** ns per operation, every round's sample, per op and implementation */
  samples: Record<string, Record<string, number[]>>;
  /** the median of the rounds */
  median: Record<string, Record<string, number>>;
  /** the same in CPU ns (process.cpuUsage, microsecond resolution) */
  samplesCpu: Record<string, Record<string, number[]>>;
  medianCpu: Record<string, Record<string, number>>;
}

/**
 * One enqueue, one settle, one defer at 1M resident on random pairs, both implementations in the
 * same process, interleaved (round r runs the core first when r is even, the plain scheduler
 * first when odd), with a full GC before every timed loop:
 *   enqueue  n fresh ids to random pairs, one call each (core.enqueue({ id, domain, binding }) /
 *            plain: name lookup, array push, Map.set); undone untimed (cancelMany)
 *   settle   n messages in flight (untimed: one taken from each of n random pairs), then one
 *            settle(id) each in random order; residency restored untimed (n fresh arrivals)
 *   defer    the same with defer(id, now + 1-30 s) (plain: a Map.get and a heap push); the deferred
 *            stay resident (delayed)
 */
export function runMicro(o: MicroOptions, gc: () => void): MicroResult {
  const s = new Streams(o.domains, o.bindings, o.urgentShare, o.seed ?? 14);
  const nb = o.bindings;
  const names = Array.from({ length: o.domains }, (_, d) => domainName(d));
  const bnames = Array.from({ length: nb }, (_, b) => bindingName(b));
  const impls: MtaImpl[] = [new CoreImpl(o.domains, nb), new PlainScheduler(nb)];
  const now = BASE_TIME;
  for (const impl of impls) impl.setNow(now);
  let nextId = 0;
  const fillIds = new Float64Array(o.perPair);
  const fillPrios = new Uint8Array(o.perPair);
  const start = nextId;
  for (const impl of impls) {
    nextId = start;
    for (let d = 0; d < o.domains; d++) {
      for (let b = 0; b < nb; b++) {
        for (let i = 0; i < o.perPair; i++) {
          fillIds[i] = idFor(o.ids, s, nextId);
          fillPrios[i] = s.prio[nextId & MASK];
          nextId++;
        }
        impl.fill(d, b, fillIds, fillPrios);
      }
    }
  }
  const resident = o.domains * nb * o.perPair;
  let pc = 0;
  let dc = 0;
  const ids = new Float64Array(o.n);
  const dom = new Uint32Array(o.n);
  const bind = new Uint8Array(o.n);
  const inflight = new Float64Array(o.n);
  const one = new Float64Array(1);
  const oneId = new Float64Array(1);
  const onePrio = new Uint8Array(1);
  const samples: Record<string, Record<string, number[]>> = {};
  const samplesCpu: Record<string, Record<string, number[]>> = {};
  const lap = new Lap();
  const add = (op: string, impl: string, count: number): void => {
    samples[op] ??= {};
    (samples[op][impl] ??= []).push((lap.wall * 1e6) / count);
    samplesCpu[op] ??= {};
    (samplesCpu[op][impl] ??= []).push((lap.cpu * 1e6) / count);
  };
  const shuffle = (a: Float64Array, n: number, seed: number): void => {
    const r = rng(seed);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  };
  // n messages of random pairs into flight (one from each), for settle and defer; returns how many.
  const intoFlight = (impl: MtaImpl, from: number, seed: number): number => {
    let k = 0;
    for (let i = 0; i < o.n; i++) {
      const x = (from + i) & MASK;
      if (impl.takePair(s.dom[x], s.bind[x], one) === 1) inflight[k++] = one[0];
    }
    shuffle(inflight, k, seed);
    return k;
  };
  const refill = (impl: MtaImpl, k: number, from: number, idFrom: number): void => {
    for (let i = 0; i < k; i++) {
      const x = (from + i) & MASK;
      oneId[0] = idFor(o.ids, s, idFrom + i);
      impl.fill(s.dom[x], s.bind[x], oneId, onePrio);
    }
  };
  for (let r = 0; r < o.rounds; r++) {
    const order = r % 2 === 0 ? impls : [impls[1], impls[0]];
    // enqueue
    for (let i = 0; i < o.n; i++) {
      ids[i] = idFor(o.ids, s, nextId + i);
      const x = (pc + i) & MASK;
      dom[i] = s.dom[x];
      bind[i] = s.bind[x];
    }
    nextId += o.n;
    pc += o.n;
    for (const impl of order) {
      gc();
      lap.start();
      for (let i = 0; i < o.n; i++) impl.enqueue(ids[i], names[dom[i]], bnames[bind[i]]);
      impl.sync();
      lap.stop();
      add('enqueue', impl.name, o.n);
      if (impl.cancelMany(ids) !== o.n) throw new Error(`${impl.name}: enqueue undo cancelled fewer than ${o.n}`);
    }
    // settle, then defer: the same pairs and order for both implementations
    for (const op of ['settle', 'defer'] as const) {
      const from = pc;
      pc += o.n;
      const dfrom = dc;
      dc += o.n;
      const idFrom = nextId;
      nextId += o.n;
      for (const impl of order) {
        const k = intoFlight(impl, from, 1000 + r);
        gc();
        lap.start();
        if (op === 'settle') {
          for (let i = 0; i < k; i++) impl.settle(inflight[i]);
        } else {
          for (let i = 0; i < k; i++) impl.defer(inflight[i], now + 1000 * s.delay[(dfrom + i) & MASK]);
        }
        impl.sync(); // staged outcomes are handed over inside the timed window
        lap.stop();
        add(op, impl.name, k);
        if (op === 'settle') refill(impl, k, from, idFrom);
        const c = impl.counts();
        if (c.active + c.delayed + c.inFlight !== resident || c.inFlight !== 0) {
          throw new Error(
            `${impl.name} ${op}: resident ${c.active + c.delayed + c.inFlight}, in flight ${c.inFlight}, expected ${resident} and 0`,
          );
        }
      }
    }
  }
  for (const impl of impls) impl.close();
  const medians = (all: Record<string, Record<string, number[]>>): Record<string, Record<string, number>> => {
    const out: Record<string, Record<string, number>> = {};
    for (const [op, by] of Object.entries(all)) {
      out[op] = {};
      for (const [impl, xs] of Object.entries(by)) {
        const sorted = [...xs].sort((a, b) => a - b);
        const m = sorted.length >> 1;
        out[op][impl] = sorted.length % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
      }
    }
    return out;
  };
  return {
    n: o.n,
    rounds: o.rounds,
    resident,
    samples,
    median: medians(samples),
    samplesCpu,
    medianCpu: medians(samplesCpu),
  };
}
