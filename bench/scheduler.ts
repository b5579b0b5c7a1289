// The scheduler cycle of suites 2 and 4, written once over an interface with two implementations:
//   CoreScheduler  the public API (MailQueueCore): enqueueBatch (by DomainRecord once the domain
//                  exists), maintain(now, { into: GrantList }), takeFor (by connection id),
//                  settleMany, deferMany (one call each per batch taken), releaseConnection
//   TsScheduler    the same cycle in plain TypeScript on the best JS structures of suite 1: message
//                  objects in a Map id -> Msg, per (domain, binding) one FIFO array per priority
//                  (head index), per domain a flatqueue heap of delayed messages keyed by
//                  nextAttempt, the same connection ledger rules and goal curve as the native default
// and one driver (runCycle) that both share: arrivals, maintenance pass, connections pulling batches,
// outcomes (90% delivered, 10% transient failure back to the delayed queue), due messages returning.
import FlatQueue from 'flatqueue';

import { MailQueueCore } from '../dist/lib/core.js';
import type { GrantList } from '../dist/lib/grant_list.js';
import type { DomainRecord } from '../dist/lib/views.js';
import { BASE_TIME, keep, makeId, nowNs, rng, sinceMs } from './common.js';

/** An open connection, as the driver holds it: a slot number the scheduler gave it (each
 *  implementation keeps its own per-connection state; the driver makes no object per connection). */
export type Conn = number;

/** The driver's open connections: slot numbers in a growing Int32Array (nothing allocated per
 *  connection once it has grown). */
export class ConnList {
  a = new Int32Array(1024);
  n = 0;
  push(c: Conn): void {
    if (this.n === this.a.length) {
      const grown = new Int32Array(2 * this.a.length);
      grown.set(this.a);
      this.a = grown;
    }
    this.a[this.n++] = c;
  }
}

/** Slot numbers for connections, reused once released. */
class Slots {
  #free: number[] = [];
  #next = 0;
  take(): number {
    return this.#free.length > 0 ? this.#free.pop()! : this.#next++;
  }
  give(slot: number): void {
    this.#free.push(slot);
  }
}

export interface Scheduler {
  readonly name: string;
  setNow(now: number): void;
  /** Queues ids (all of the view) for (domain d, binding b), due now. */
  enqueue(d: number, b: number, ids: Float64Array, prios: Uint8Array): void;
  /** One maintenance pass, or a slice of one over at most maxDomains due domains that ends after
   *  the domain that brought its grants to maxGrants; appends the connections it opened; returns
   *  [domains visited, domains of the pass still to visit]. */
  maintain(now: number, out: ConnList, maxDomains?: number, maxGrants?: number): [number, number];
  /** Takes up to BATCH messages for a connection into the scheduler's batch buffer. */
  take(c: Conn): number;
  /** The outcomes of the last take(): message i delivered when ok[i] is 1, else deferred to
   *  nextAttempt. Returns how many were delivered. */
  outcomes(n: number, ok: Uint8Array, nextAttempt: number): number;
  release(c: Conn): void;
  /** Messages that expired (bounced) since the last call. */
  drainBounced(): number;
  counts(): { active: number; delayed: number; inFlight: number; connections: number };
  close(): void;
}

export const BATCH = 16;
export const SERVER_MAX = 20_000;
export const SERVER_RESERVE = 200;
export const MAX_CONN = 32;
export const AGGRESSIVENESS = 0.3;
export const EXPIRY_MS = 86_400_000;

export function domainName(d: number): string {
  return `d${d}.example`;
}

// --- native, through the public API -------------------------------------------------------------

/** views[k] = the first k entries of one Float64Array(n), made once. */
function views(n: number): Float64Array[] {
  const buf = new Float64Array(n);
  return Array.from({ length: n + 1 }, (_, k) => buf.subarray(0, k));
}

export class CoreScheduler implements Scheduler {
  readonly name = 'core';
  readonly core: MailQueueCore;
  readonly #names: string[];
  readonly #bindings: string[];
  readonly #buf = new Float64Array(BATCH);
  readonly #grants: GrantList;
  #now = BASE_TIME;
  #bounced = 0;

  constructor(domains: number, bindings: number, options: { maxConnections?: number; serverMax?: number } = {}) {
    this.#bindings = Array.from({ length: bindings }, (_, b) => `b${b}`);
    this.#names = Array.from({ length: domains }, (_, d) => domainName(d));
    this.core = new MailQueueCore({
      bindings: this.#bindings,
      clock: () => this.#now,
      config: {
        global: {
          maxOutboundConnections: options.maxConnections ?? MAX_CONN,
          serverMaxOutboundConnections: options.serverMax ?? SERVER_MAX,
          serverReserveOutboundConnections: SERVER_RESERVE,
          messageExpiration: EXPIRY_MS / 1000,
        },
      },
    });
    this.core.on('bounce', () => {
      this.#bounced++;
    });
    this.#grants = this.core.grantList();
  }

  setNow(now: number): void {
    this.#now = now;
  }

  // An MTA keeps the DomainRecord of a domain it sends to (core.domain(name)): no name lookup per
  // call. The first batch for a domain names it (that makes the domain).
  readonly #records: (DomainRecord | undefined)[] = [];
  enqueue(d: number, b: number, ids: Float64Array, prios: Uint8Array): void {
    const r = this.#records[d];
    if (r !== undefined) {
      this.core.enqueueBatch(r, this.#bindings[b], ids, prios);
      return;
    }
    this.core.enqueueBatch(this.#names[d], this.#bindings[b], ids, prios);
    this.#records[d] = this.core.domain(this.#names[d]);
  }

  // The pass writes its grants into a reused GrantList (numbers); each connection's id goes into a
  // column at its slot (no object per connection): takeFor finds its (domain, binding) natively.
  readonly #slots = new Slots();
  #connIds = new Float64Array(1024);
  maintain(now: number, out: ConnList, maxDomains?: number, maxGrants?: number): [number, number] {
    const list = this.#grants;
    const r = this.core.maintain(
      now,
      maxDomains === undefined ? { into: list } : { maxDomains, maxGrants, into: list },
    );
    for (let i = 0; i < list.length; i++) {
      const slot = this.#slots.take();
      if (slot >= this.#connIds.length) {
        const grown = new Float64Array(2 * this.#connIds.length);
        grown.set(this.#connIds);
        this.#connIds = grown;
      }
      this.#connIds[slot] = list.connectionId(i);
      out.push(slot);
    }
    return [r.visited, r.remaining];
  }

  take(c: Conn): number {
    return this.core.takeFor(this.#connIds[c], this.#buf);
  }

  // A connection reports a batch's outcomes in two calls: settleMany (delivered) and deferMany.
  readonly #settleViews = views(BATCH);
  readonly #deferViews = views(BATCH);
  outcomes(n: number, ok: Uint8Array, nextAttempt: number): number {
    const buf = this.#buf;
    const sv = this.#settleViews[BATCH];
    const dv = this.#deferViews[BATCH];
    let a = 0;
    let b = 0;
    for (let i = 0; i < n; i++) {
      if (ok[i] === 1) sv[a++] = buf[i];
      else dv[b++] = buf[i];
    }
    if (a > 0) this.core.settleMany(this.#settleViews[a]);
    if (b > 0) this.core.deferMany(this.#deferViews[b], nextAttempt);
    return a;
  }
  release(c: Conn): void {
    this.core.releaseConnection(this.#connIds[c]);
    this.#slots.give(c);
  }

  drainBounced(): number {
    const n = this.#bounced;
    this.#bounced = 0;
    return n;
  }

  counts() {
    const c = this.core.counters;
    const i = this.core.counterIndex;
    return { active: c[i.active], delayed: c[i.delayed], inFlight: c[i.inFlight], connections: c[i.connections] };
  }

  close(): void {
    this.core.close();
  }
}

// --- plain TypeScript ---------------------------------------------------------------------------

// biome-ignore lint/suspicious/noConstEnum: compiled by tsx for the benchmark only; inlined states keep the TypeScript cycle fair
const enum St {
  Free = 0,
  Active = 1,
  Delayed = 2,
  InFlight = 3,
}

class Msg {
  attempts = 0;
  state: St = St.Active;
  constructor(
    readonly id: number,
    readonly d: number,
    readonly b: number,
    readonly prio: number,
    public next: number,
    readonly exp: number,
  ) {}
}

/** FIFO of messages: a JS array and a head index, compacted when the dead prefix dominates. */
class Fifo {
  a: Msg[] = [];
  h = 0;
  get size(): number {
    return this.a.length - this.h;
  }
  push(m: Msg): void {
    this.a.push(m);
  }
  shift(): Msg | undefined {
    const a = this.a;
    if (this.h === a.length) return undefined;
    const m = a[this.h++];
    if (this.h === a.length) {
      a.length = 0;
      this.h = 0;
    } else if (this.h > 1024 && this.h * 2 > a.length) {
      a.copyWithin(0, this.h);
      a.length -= this.h;
      this.h = 0;
    }
    return m;
  }
}

class PairQueue {
  readonly urgent = new Fifo();
  readonly normal = new Fifo();
  size = 0;
}

class Dom {
  readonly q: PairQueue[];
  readonly conn: Int32Array;
  delayed: FlatQueue<Msg> | null = null;
  activeTotal = 0;
  total = 0;
  rotation = 0;
  minExp = Infinity;
  constructor(bindings: number) {
    this.q = Array.from({ length: bindings }, () => new PairQueue());
    this.conn = new Int32Array(bindings);
  }
}

class TsConn {
  constructor(
    readonly id: number,
    readonly d: number,
    readonly b: number,
  ) {}
}

export function goalCurve(m: number, q: number, a: number): number {
  if (m === 0 || q === 0) return 0;
  const goal = Math.ceil(m * (1 - Math.exp((-a * q) / m)) - 1e-9);
  return goal < 1 ? 1 : Math.min(goal, m);
}

export class TsScheduler implements Scheduler {
  readonly name = 'ts';
  readonly #msgs = new Map<number, Msg>();
  readonly #doms: Dom[] = [];
  readonly #nb: number;
  readonly #leases = new Map<number, TsConn>();
  // The driver's slot number of each open connection -> its TsConn (the TS cycle's own object).
  readonly #slots = new Slots();
  readonly #bySlot: TsConn[] = [];
  readonly #bindingCount: Int32Array;
  readonly #buf: Msg[] = [];
  readonly #maxConn: number;
  readonly #serverMax: number;
  readonly #pass: number[] = []; // the domains of the pass in progress, in visit order
  #passPos = 0;
  readonly #order: number[] = [];
  #total = 0;
  #nextConn = 1;
  #rotation = 0;
  #now = BASE_TIME;
  #bounced = 0;
  #active = 0;
  #delayed = 0;
  #inFlight = 0;

  constructor(domains: number, bindings: number, options: { maxConnections?: number; serverMax?: number } = {}) {
    this.#nb = bindings;
    this.#maxConn = options.maxConnections ?? MAX_CONN;
    this.#serverMax = options.serverMax ?? SERVER_MAX;
    this.#bindingCount = new Int32Array(bindings);
    for (let d = 0; d < domains; d++) this.#doms.push(new Dom(bindings));
    for (let i = 0; i < BATCH; i++) this.#buf.push(new Msg(0, 0, 0, 0, 0, 0));
  }

  setNow(now: number): void {
    this.#now = now;
  }

  #placeActive(m: Msg): void {
    m.state = St.Active;
    const dom = this.#doms[m.d];
    const q = dom.q[m.b];
    (m.prio === 1 ? q.urgent : q.normal).push(m);
    q.size++;
    dom.activeTotal++;
    if (m.exp < dom.minExp) dom.minExp = m.exp;
    this.#active++;
  }

  #expire(m: Msg): void {
    m.state = St.Free;
    this.#msgs.delete(m.id);
    this.#bounced++;
  }

  enqueue(d: number, b: number, ids: Float64Array, prios: Uint8Array): void {
    const now = this.#now;
    const exp = now + EXPIRY_MS;
    for (let i = 0; i < ids.length; i++) {
      if (this.#msgs.has(ids[i])) throw new Error(`duplicate id ${ids[i]}`);
    }
    for (let i = 0; i < ids.length; i++) {
      const m = new Msg(ids[i], d, b, prios[i], now, exp);
      this.#msgs.set(m.id, m);
      this.#placeActive(m);
    }
  }

  #promote(dom: Dom, now: number): void {
    const h = dom.delayed;
    if (h === null) return;
    while (h.length > 0 && h.peekValue()! <= now) {
      const m = h.pop()!;
      this.#delayed--;
      if (m.exp <= now) this.#expire(m);
      else this.#placeActive(m);
    }
    if (h.length === 0) dom.delayed = null;
  }

  #expireActive(dom: Dom, now: number): void {
    if (dom.minExp > now) return;
    let min = Infinity;
    for (const q of dom.q) {
      for (const f of [q.urgent, q.normal]) {
        const keep: Msg[] = [];
        for (let i = f.h; i < f.a.length; i++) {
          const m = f.a[i];
          if (m.exp <= now) {
            this.#expire(m);
            q.size--;
            dom.activeTotal--;
            this.#active--;
          } else {
            keep.push(m);
            if (m.exp < min) min = m.exp;
          }
        }
        f.a = keep;
        f.h = 0;
      }
    }
    dom.minExp = min;
  }

  maintain(now: number, out: ConnList, maxDomains = Infinity, maxGrants = Infinity): [number, number] {
    // The same passes as the core's: a snapshot of the due domains from the rotation's start,
    // visited whole or in slices.
    const pass = this.#pass;
    if (maxDomains === Infinity || this.#passPos >= pass.length) {
      const doms = this.#doms;
      pass.length = 0;
      for (let d = 0; d < doms.length; d++) {
        const dom = doms[d];
        if (dom.activeTotal > 0 || (dom.delayed !== null && dom.delayed.peekValue()! <= now)) pass.push(d);
      }
      const n = pass.length;
      if (n > 1) {
        const start = this.#rotation++ % n;
        const rotated = pass.slice(start).concat(pass.slice(0, start));
        for (let i = 0; i < n; i++) pass[i] = rotated[i];
      } else if (n === 1) {
        this.#rotation++;
      }
      this.#passPos = 0;
    }
    const visits = Math.min(pass.length - this.#passPos, maxDomains);
    const before = out.n;
    let i = 0;
    while (i < visits && out.n - before < maxGrants) this.#maintainDomain(pass[this.#passPos + i++], now, out);
    this.#passPos += i;
    return [i, pass.length - this.#passPos];
  }

  #maintainDomain(d: number, now: number, out: ConnList): void {
    const dom = this.#doms[d];
    this.#promote(dom, now);
    this.#expireActive(dom, now);
    const order = this.#order;
    order.length = 0;
    for (let b = 0; b < this.#nb; b++) if (dom.q[b].size > 0) order.push(b);
    const n = order.length;
    const start = n > 1 ? dom.rotation++ % n : 0;
    for (let j = 0; j < n; j++) {
      const b = order[(start + j) % n];
      const cur = dom.conn[b];
      const reserve = cur === 0 ? 0 : SERVER_RESERVE;
      const goal = goalCurve(this.#maxConn, dom.q[b].size, AGGRESSIVENESS);
      let want = goal - cur;
      if (want <= 0) continue;
      const room = this.#maxConn - cur;
      if (want > room) want = room;
      let left = Math.max(0, this.#serverMax + SERVER_RESERVE - reserve - this.#total);
      if (reserve < SERVER_RESERVE) left = Math.min(left, Math.max(0, this.#serverMax - this.#total) + 1);
      if (want > left) want = left;
      for (let k = 0; k < want; k++) {
        const c = new TsConn(this.#nextConn++, d, b);
        this.#leases.set(c.id, c);
        const slot = this.#slots.take();
        this.#bySlot[slot] = c;
        out.push(slot);
      }
      if (want > 0) {
        dom.conn[b] += want;
        dom.total += want;
        this.#bindingCount[b] += want;
        this.#total += want;
      }
    }
  }

  take(c: Conn): number {
    const { d, b } = this.#bySlot[c];
    const dom = this.#doms[d];
    const q = dom.q[b];
    const now = this.#now;
    const buf = this.#buf;
    let n = 0;
    let popped = 0;
    while (n < BATCH && q.size > 0) {
      const m = (q.urgent.size > 0 ? q.urgent : q.normal).shift()!;
      q.size--;
      popped++;
      if (m.exp <= now) {
        this.#expire(m);
        continue;
      }
      m.state = St.InFlight;
      m.attempts++;
      buf[n++] = m;
    }
    dom.activeTotal -= popped;
    this.#active -= popped;
    this.#inFlight += n;
    return n;
  }

  outcomes(n: number, ok: Uint8Array, nextAttempt: number): number {
    let a = 0;
    for (let i = 0; i < n; i++) {
      if (ok[i] === 1) {
        this.#settleAt(i);
        a++;
      } else {
        this.#deferAt(i, nextAttempt);
      }
    }
    return a;
  }

  #settleAt(i: number): void {
    const m = this.#buf[i];
    m.state = St.Free;
    this.#msgs.delete(m.id);
    this.#inFlight--;
  }

  #deferAt(i: number, nextAttempt: number): void {
    const m = this.#buf[i];
    this.#inFlight--;
    if (nextAttempt >= m.exp) {
      this.#expire(m);
      return;
    }
    m.next = nextAttempt;
    if (nextAttempt > this.#now) {
      m.state = St.Delayed;
      const dom = this.#doms[m.d];
      if (dom.delayed === null) dom.delayed = new FlatQueue<Msg>();
      dom.delayed.push(m, nextAttempt);
      this.#delayed++;
    } else {
      this.#placeActive(m);
    }
  }

  release(c: Conn): void {
    const t = this.#bySlot[c];
    if (!this.#leases.delete(t.id)) throw new Error(`unknown connection ${t.id}`);
    this.#slots.give(c);
    const dom = this.#doms[t.d];
    dom.conn[t.b]--;
    dom.total--;
    this.#bindingCount[t.b]--;
    this.#total--;
  }

  drainBounced(): number {
    const n = this.#bounced;
    this.#bounced = 0;
    return n;
  }

  counts() {
    return { active: this.#active, delayed: this.#delayed, inFlight: this.#inFlight, connections: this.#total };
  }

  close(): void {
    this.#msgs.clear();
    this.#doms.length = 0;
  }
}

// --- the driver ---------------------------------------------------------------------------------

export interface CycleOptions {
  domains: number;
  bindings: number;
  perPair: number;
  warmTicks: number;
  ticks: number;
  tickMs?: number;
  retryMs?: number;
  /** A connection closes after this many batches (max_deliveries_per_connection = 16 * this). */
  maxBatches?: number;
  /** Batches a connection pulls per tick (one tick stands for a minute of SMTP sessions). */
  batchesPerTick?: number;
  /** Yield to the event loop after this many connections or arrival chunks. */
  yieldEvery?: number;
  /** Yield also once this many messages were pulled or arrived since the last yield (a connection
   *  may pull 64 messages or none: a count of connections alone makes the driver's stretches, not
   *  the implementation's, the longest). Default: no limit. */
  yieldMessages?: number;
  /** Maintenance in slices of this many due domains with a yield between them (default: whole
   *  passes). */
  sliceDomains?: number;
  /** With sliceDomains: a slice also ends once it has opened this many connections. */
  sliceGrants?: number;
  seed?: number;
  /** Runs after the initial fill, before the first tick (memory is read here). */
  afterFill?: () => void | Promise<void>;
  /** Called once the warm-up ticks are done, before the first timed tick (stall measurements
   *  start here, as the longest synchronous stretch does). */
  afterWarm?: () => void;
}

export interface TickStat {
  ms: number;
  maintainMs: number;
  pullMs: number;
  arriveMs: number;
  outcomes: number;
  opened: number;
  open: number;
}

export interface CycleResult {
  fillMs: number;
  resident: number;
  ticks: TickStat[];
  outcomes: number;
  delivered: number;
  deferred: number;
  bounced: number;
  ms: number;
  rate: number;
  maxSyncMs: number;
  /** The longest maintain() call of the timed ticks: one synchronous call, it cannot yield. */
  maxMaintainMs: number;
  /** The longest single maintain() call (a slice when sliceDomains is set). */
  maxMaintainCallMs: number;
  end: { active: number; delayed: number; inFlight: number; connections: number };
}

const TABLE = 1 << 16;
const yieldNow = (): Promise<void> => new Promise((r) => setImmediate(r));

export class Workload {
  readonly pairs: Uint32Array;
  readonly prios: Uint8Array;
  readonly outcome: Uint8Array;
  readonly hi: Uint32Array;
  constructor(
    readonly domains: number,
    readonly bindings: number,
    seed: number,
  ) {
    const r = rng(seed);
    this.pairs = new Uint32Array(TABLE);
    this.prios = new Uint8Array(TABLE);
    this.outcome = new Uint8Array(TABLE);
    this.hi = new Uint32Array(TABLE);
    for (let i = 0; i < TABLE; i++) {
      this.pairs[i] = Math.floor(r() * domains) * bindings + Math.floor(r() * bindings);
      this.prios[i] = r() < 0.1 ? 1 : 0;
      this.outcome[i] = r() < 0.9 ? 1 : 0;
      this.hi[i] = Math.floor(r() * 2097152);
    }
  }
}

export async function runCycle(s: Scheduler, o: CycleOptions, onSync?: (ms: number) => void): Promise<CycleResult> {
  const tickMs = o.tickMs ?? 60_000;
  const retryMs = o.retryMs ?? 300_000;
  const maxBatches = o.maxBatches ?? 16;
  const batchesPerTick = o.batchesPerTick ?? 4;
  const yieldEvery = o.yieldEvery ?? 2000;
  const yieldMessages = o.yieldMessages ?? Infinity;
  const w = new Workload(o.domains, o.bindings, o.seed ?? 42);
  const ids = new Float64Array(BATCH);
  const prios = new Uint8Array(BATCH);
  const idViews = Array.from({ length: BATCH + 1 }, (_, k) => ids.subarray(0, k));
  const prioViews = Array.from({ length: BATCH + 1 }, (_, k) => prios.subarray(0, k));
  let nextId = 0;
  let cursor = 0;
  let now = BASE_TIME;
  let maxSync = 0;
  let seg = nowNs();
  const segment = async (): Promise<void> => {
    const ms = sinceMs(seg);
    if (ms > maxSync) maxSync = ms;
    onSync?.(ms);
    await yieldNow();
    seg = nowNs();
  };
  const fillChunk = (k: number): void => {
    for (let i = 0; i < k; i++) {
      ids[i] = makeId(nextId, w.hi[nextId & (TABLE - 1)]);
      nextId++;
      prios[i] = w.prios[cursor++ & (TABLE - 1)];
    }
  };

  // Initial fill: perPair messages for every (domain, binding), in chunks of up to 16.
  s.setNow(now);
  const t0 = nowNs();
  let chunks = 0;
  for (let d = 0; d < o.domains; d++) {
    for (let b = 0; b < o.bindings; b++) {
      for (let left = o.perPair; left > 0; left -= BATCH) {
        const k = Math.min(BATCH, left);
        fillChunk(k);
        s.enqueue(d, b, idViews[k], prioViews[k]);
        if (++chunks % (yieldEvery * 4) === 0) await segment();
      }
    }
  }
  const fillMs = sinceMs(t0);
  const resident = o.domains * o.bindings * o.perPair;

  if (o.afterFill) await o.afterFill();
  await yieldNow();
  seg = nowNs();
  maxSync = 0; // stalls are measured while the cycle runs, not during the fill
  let conns = new ConnList();
  let next = new ConnList();
  // Batches pulled per open connection, by slot (slots are small and reused).
  let batches = new Uint16Array(1 << 16);
  const ticks: TickStat[] = [];
  let delivered = 0;
  let deferred = 0;
  let bounced = 0;
  let oc = 0;
  const ok = new Uint8Array(BATCH);
  let maxMaintainCall = 0;
  for (let t = 0; t < o.warmTicks + o.ticks; t++) {
    const timed = t >= o.warmTicks;
    if (t === o.warmTicks) {
      maxSync = 0;
      o.afterWarm?.();
    }
    now += tickMs;
    s.setNow(now);
    const tt = nowNs();
    const before = conns.n;
    let maintainMs = 0;
    if (o.sliceDomains === undefined) {
      s.maintain(now, conns);
      maintainMs = sinceMs(tt);
      if (timed && maintainMs > maxMaintainCall) maxMaintainCall = maintainMs;
      await segment();
    } else {
      // A whole pass in slices, until none of its domains is left to visit.
      let left = 1;
      while (left > 0) {
        const ts = nowNs();
        left = s.maintain(now, conns, o.sliceDomains, o.sliceGrants)[1];
        const ms = sinceMs(ts);
        if (timed && ms > maxMaintainCall) maxMaintainCall = ms;
        maintainMs += ms;
        await segment();
      }
    }
    const opened = conns.n - before;
    for (let i = before; i < conns.n; i++) {
      const c = conns.a[i];
      if (c >= batches.length) {
        const grown = new Uint16Array(2 * c);
        grown.set(batches);
        batches = grown;
      }
      batches[c] = 0;
    }
    const tp = nowNs();
    let dl = 0;
    let df = 0;
    next.n = 0;
    let since = 0; // messages pulled (then arrived) since the last yield
    for (let i = 0; i < conns.n; i++) {
      const c = conns.a[i];
      let open = true;
      for (let p = 0; p < batchesPerTick && open; p++) {
        const n = s.take(c);
        for (let j = 0; j < n; j++) ok[j] = w.outcome[oc++ & (TABLE - 1)];
        const good = s.outcomes(n, ok, now + retryMs);
        dl += good;
        df += n - good;
        since += n;
        const nb = ++batches[c];
        // A connection closes when its queue runs dry or its delivery quota is used.
        if (n < BATCH || nb >= maxBatches) open = false;
      }
      if (open) next.push(c);
      else s.release(c);
      if ((i + 1) % yieldEvery === 0 || since >= yieldMessages) {
        since = 0;
        await segment();
      }
    }
    const swap = conns;
    conns = next;
    next = swap;
    const pullMs = sinceMs(tp);
    await segment();
    // Arrivals replace what left the system (delivered and bounced), so residency stays constant.
    const ta = nowNs();
    const b = s.drainBounced();
    let need = dl + b;
    let k = 0;
    since = 0;
    while (need > 0) {
      const m = Math.min(BATCH, need);
      fillChunk(m);
      const p = w.pairs[(cursor + k++) & (TABLE - 1)];
      s.enqueue(Math.floor(p / o.bindings), p % o.bindings, idViews[m], prioViews[m]);
      need -= m;
      since += m;
      if (k % yieldEvery === 0 || since >= yieldMessages) {
        since = 0;
        await segment();
      }
    }
    const arriveMs = sinceMs(ta);
    await segment();
    if (timed) {
      ticks.push({ ms: sinceMs(tt), maintainMs, pullMs, arriveMs, outcomes: dl + df, opened, open: conns.n });
      delivered += dl;
      deferred += df;
      bounced += b;
    }
  }
  const ms = ticks.reduce((a, x) => a + x.ms, 0);
  keep(delivered + deferred);
  return {
    fillMs,
    resident,
    ticks,
    outcomes: delivered + deferred,
    delivered,
    deferred,
    bounced,
    ms,
    rate: (delivered + deferred) / (ms / 1000),
    maxSyncMs: maxSync,
    maxMaintainMs: ticks.reduce((a, x) => Math.max(a, x.maintainMs), 0),
    maxMaintainCallMs: maxMaintainCall,
    end: s.counts(),
  };
}
