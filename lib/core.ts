// MailQueueCore: the public API. It validates and shapes; the native core (lib/native.ts) holds the
// queues and the connection ledger and runs the default __mail_queue_maintain. When no JS provider
// is registered on any maintenance hook, a whole pass is one native call; otherwise the pass runs
// here, domain by domain, calling the hook chains with the native default behind them.
import { EventEmitter } from 'node:events';

import { ResolvedConfig, type BindingSpec, type CoreConfig, type PairSettings } from './config.js';
import { Delivery, type DomainTally } from './delivery.js';
import { Maintainer } from './maintainer.js';
import type { MessageStore, StoredMessage } from './store/message_store.js';
import type { Transport } from './transport/transport.js';
import { codedError, HookError } from './errors.js';
import { appendGrant, fillFromCore, GrantList, ownerOf } from './grant_list.js';
import { callTrusted, HookPoint } from './hook_point.js';
import { native, Place } from './native.js';
import {
  checkDomainName, checkExpiry, checkId, checkInt, checkObject, checkPriority, checkTime, checkTypedArray, MAX_TIME, typeName,
} from './validate.js';
import { ActiveQueue, DomainRecord, unknownDomain, ViewScratch, type ViewHost } from './views.js';

export interface MailQueueCoreOptions {
  /** Source bindings (MultiVIP), by name, optionally in groups. Default: ['default']. */
  bindings?: BindingSpec[];
  config?: CoreConfig;
  /** The clock, in ms since the epoch (default Date.now); sampled once per pass. */
  clock?: () => number;
  /** Carries the connections of a started core (see start()). */
  transport?: Transport;
  /** Holds envelopes and bodies (submit(), recover()). */
  store?: MessageStore;
  /** The longest a transport may take over one message before the core gives up on the session
   *  (ms, default 300000). The transport's own timeouts should fire well before. */
  deliveryTimeout?: number;
}

export interface Message {
  id: number;
  domain: string;
  /** Binding name; default: the first binding. */
  binding?: string;
  /** 0 normal, 1 urgent (served first). */
  priority?: number;
  /** ms since the epoch; after now the message waits in the delayed queue. Default: now. */
  nextAttempt?: number;
  /** ms since the epoch, or Infinity. Default: now + messageExpiration. */
  expiresAt?: number;
  /** Attempts already made (0 to 65535), for a message queued again after a restart. Default: 0. */
  attempts?: number;
}

export interface Grant {
  connectionId: number;
  domain: string;
  binding: string;
}

export interface MaintainResult {
  /** Connections opened in this pass (grants.length). */
  opened: number;
  grants: Grant[];
}

export interface MaintainOptions {
  /** Visit at most this many due domains (a slice of a pass). */
  maxDomains?: number;
  /** End the slice once it has opened this many connections (after the domain that reached it). */
  maxGrants?: number;
  /** Write the grants into this list (from grantList()) instead of Grant objects; the result's
   *  `grants` is then empty and `opened` counts the list's entries. */
  into?: GrantList;
}

/** What maintain() returns: a pass, or a slice of one (options.maxDomains). */
export interface PassResult extends MaintainResult {
  /** Due domains this call visited. */
  visited: number;
  /** Due domains this call did not visit (0 after a whole pass). */
  remaining: number;
}

export interface MessageInfo {
  id: number;
  domain: string;
  binding: string;
  state: 'active' | 'delayed' | 'in-flight';
  priority: number;
  attempts: number;
  nextAttempt: number;
  expiresAt: number;
}

export interface Stats {
  connections: number;
  active: number;
  delayed: number;
  inFlight: number;
  domains: number;
  opened: number;
  released: number;
  expired: number;
  /** Messages that left an active queue since creation (taken, cancelled, removed, expired or
   *  failed from it). */
  activeRemoved: number;
}

export type { BounceEvent as Bounce, DeferredEvent, DeliveredEvent, DomainTally } from './delivery.js';
import type { BounceEvent as Bounce } from './delivery.js';

/** A domain by name, or by its DomainRecord (core.domain(name)): the record saves a name lookup
 *  per call on the hot paths that accept one (enqueueBatch, takeInto, take). */
export type DomainRef = string | DomainRecord;

export type MailQueueMaintainArgs = [dr: DomainRecord, bindingSlot: number, sl: ActiveQueue, now: number, goalsz: number, reserve: number];
export type ConnectionGoalArgs = [dr: DomainRecord, bindingSlot: number, sl: ActiveQueue, goal: { value: number }];
export type DomainHookArgs = [dr: DomainRecord, now: number, rv: { value: number }];

export interface CoreHooks {
  /** __mail_queue_maintain: (closure, dr, bindingSlot, sl, now, goalsz, reserve) => number */
  readonly mailQueueMaintain: HookPoint<MailQueueMaintainArgs>;
  /** connection_goal: (closure, dr, bindingSlot, sl, goal: { value }) => void; last writer wins */
  readonly connectionGoal: HookPoint<ConnectionGoalArgs>;
  /** pre_mail_queue_maintain_domain: (closure, dr, now, rv: { value }) => void */
  readonly preMailQueueMaintainDomain: HookPoint<DomainHookArgs>;
  /** post_mail_queue_maintain_domain: (closure, dr, now, rv: { value }) => void; rv.value is the
   *  sum of the positive __mail_queue_maintain results of the domain's pass */
  readonly postMailQueueMaintainDomain: HookPoint<DomainHookArgs>;
}

/** The grants of a drain that found none, inside passes (never handed to a caller). */
const NO_GRANTS: Grant[] = Object.freeze([]) as unknown as Grant[];
const MESSAGE_KEYS = new Set(['id', 'domain', 'binding', 'priority', 'nextAttempt', 'expiresAt', 'attempts']);
const OPTION_KEYS = new Set(['bindings', 'config', 'clock', 'transport', 'store', 'deliveryTimeout']);
const MAX_TAKE = 1_000_000;

// A core dropped without close() is freed when it is collected.
const finalizer = new FinalizationRegistry<number>((handle) => {
  native.destroyCore(handle);
});

export class MailQueueCore extends EventEmitter {
  readonly hooks: CoreHooks;
  /** Counters kept current by the native core, readable without a call: see counterIndex. */
  readonly counters: Float64Array;
  /** Slot of each counter in `counters` (per-binding ones as connections:<binding>, active:<binding>). */
  readonly counterIndex: Readonly<Record<string, number>>;
  readonly bindings: readonly string[];
  readonly bindingGroups: readonly string[];

  #handle: number;
  #closed = false;
  readonly #config: ResolvedConfig;
  readonly #clock: () => number;
  readonly #host: ViewHost;
  readonly #domainIndex = new Map<string, number>();
  readonly #records: DomainRecord[] = [];
  // A domain's ActiveQueue views, made on first request (most are never asked for): a row per
  // domain, undefined until one of its views is.
  readonly #queues: (ActiveQueue[] | undefined)[] = [];
  // The settings of pair (d, b) at d * bindings + b; identical settings are one frozen object.
  readonly #pairs: PairSettings[] = [];
  readonly #interned = new Map<string, PairSettings>();
  readonly #suspensions = new Map<string, Set<number>>(); // operator: domain -> binding slots
  readonly #suspendedBindings = new Set<number>(); // operator: every domain of these bindings
  readonly #cooling = new Map<string, { until: number; timer: NodeJS.Timeout }>(); // host_failure_retry
  readonly #deliveryTimeout: number;
  readonly #transport: Transport | undefined;
  readonly #store: MessageStore | undefined;
  #delivery: Delivery | undefined;
  readonly #tallies = new Map<string, DomainTally>();
  #maintainer: Maintainer | undefined;
  readonly #grantBuf = new Float64Array(3 * 256);
  readonly #expiredBuf = new Float64Array(1024);
  readonly #expiredDomains = new Float64Array(1024);
  readonly #where = new Float64Array(7);
  readonly #order: Uint32Array;
  #dueBuf = new Uint32Array(64);
  #inPass = false;
  #passGrants: Grant[] | null = null;
  // The list the current maintain({ into }) call writes its grants into, or null (Grant objects).
  #into: GrantList | null = null;
  // The argument arrays of the trusted hook calls of a JS-driven pass, reused from call to call.
  readonly #maintainArgs = [] as unknown as MailQueueMaintainArgs;
  readonly #domainHookArgs = [] as unknown as DomainHookArgs;
  #seenOpened = 0;
  #seenExpired = 0;
  readonly #openedSlot: number;
  readonly #expiredSlot: number;
  readonly #releasedSlot: number;
  readonly #removedSlot: number;
  // What the counters said when a JS-driven pass last learned a domain's binding order and reserves
  // (see #maintainDomainJs): while they say the same, no queue emptied and no count changed.
  #visitRemoved = 0;
  #visitActive = 0;
  #visitOpened = 0;
  #visitReleased = 0;
  #visitDomain = -1;
  #limitsEpoch = 0;
  #visitEpoch = 0;
  readonly #sliceOut = new Float64Array(2);
  #visitGoalsz = 0;
  #visitNow = 0;
  readonly #activeSlot: number;

  constructor(options: MailQueueCoreOptions = {}) {
    super();
    checkObject(options, 'options');
    for (const k of Object.keys(options)) {
      if (!OPTION_KEYS.has(k)) throw new RangeError(`options: unknown option ${JSON.stringify(k)}`);
    }
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new TypeError(`options.clock must be a function, got ${typeName(options.clock)}`);
    }
    if (options.transport !== undefined && (typeof options.transport !== 'object' || options.transport === null || typeof options.transport.open !== 'function')) {
      throw new TypeError('options.transport must be a Transport (an object with open())');
    }
    if (options.store !== undefined) {
      const st = options.store as unknown as Record<string, unknown>;
      if (typeof st !== 'object' || st === null || !['put', 'get', 'body', 'remove', 'list'].every((m) => typeof st[m] === 'function')) {
        throw new TypeError('options.store must be a MessageStore (put, get, body, remove, list)');
      }
    }
    this.#deliveryTimeout = options.deliveryTimeout === undefined ? 300_000 : checkInt(options.deliveryTimeout, 'options.deliveryTimeout', 1, 86_400_000);
    this.#transport = options.transport;
    this.#store = options.store;
    const cfg = new ResolvedConfig(options.bindings, options.config);
    this.#config = cfg;
    this.#clock = options.clock ?? Date.now;
    this.bindings = cfg.bindingNames;
    this.bindingGroups = cfg.groupNames;

    const names = native.counterNames();
    const index: Record<string, number> = {};
    names.forEach((n, i) => { index[n] = i; });
    const nb = cfg.bindingNames.length;
    cfg.bindingNames.forEach((b, i) => {
      index[`connections:${b}`] = names.length + i;
      index[`active:${b}`] = names.length + nb + i;
    });
    this.counterIndex = Object.freeze(index);
    this.#openedSlot = index.opened;
    this.#expiredSlot = index.expired;
    this.#releasedSlot = index.released;
    this.#removedSlot = index.activeRemoved;
    this.#activeSlot = index.active;
    this.#order = new Uint32Array(3 * nb);

    this.#handle = native.createCore(
      Float64Array.of(nb, cfg.groupNames.length, cfg.serverMax(), cfg.serverReserve()),
      Int32Array.from(cfg.groupOfBinding),
      Float64Array.from(cfg.bindingServerMax()),
      Float64Array.from(cfg.groupServerMax()),
    );
    try {
      // The core's own counters, which it writes in place: reading one costs no call.
      this.counters = new Float64Array(native.countersBuffer(this.#handle));
      for (const scope of cfg.throttleScopes) {
        scope.throttle = native.addThrottle(this.#handle, scope.rate!.count, scope.rate!.windowMs);
      }
      for (const scope of cfg.messageThrottleScopes) {
        scope.messageThrottle = native.addThrottle(this.#handle, scope.messageRate!.count, scope.messageRate!.windowMs);
      }
    } catch (err) {
      native.destroyCore(this.#handle);
      throw err;
    }
    finalizer.register(this, this.#handle, this);

    const self = this;
    this.#host = {
      bindingNames: this.bindings,
      scratch: new ViewScratch(nb),
      handle: () => self.#live(),
      bindingSlot: (b, name) => self.#bindingSlot(b, name),
    };
    const guard = () => { this.#live(); };
    const report = (err: HookError) => this.#reportError(err);
    const describe = (args: unknown[]) => {
      const dr = args[0];
      const slot = args[1];
      return {
        domain: dr instanceof DomainRecord ? dr.name : undefined,
        binding: typeof slot === 'number' ? this.bindings[slot] : undefined,
      };
    };
    this.hooks = Object.freeze({
      mailQueueMaintain: new HookPoint<MailQueueMaintainArgs>('mailQueueMaintain', {
        kind: 'chain',
        guard,
        report,
        describe,
        checkArgs: (args) => this.#checkMaintainArgs(args),
        fallback: (dr, slot, sl, now, goalsz, reserve) => {
          // When nothing moved before the default ran, what it opens (for this pair only) does not
          // make the pass's view of the other bindings stale; connectionGoal providers might.
          const clean = !this.hooks.connectionGoal.has() && !this.#countersMoved();
          // Nothing moved since the visit began and the pair wants no more than it holds: the
          // default would open nothing (the native call is most of a passive provider's cost).
          const inVisit = dr.index === this.#visitDomain && goalsz === this.#visitGoalsz && now === this.#visitNow;
          if (clean && inVisit && this.#order[2 * this.bindings.length + slot] === 0) return 0;
          // The visit's own pair with no connectionGoal provider: the native call takes the domain,
          // now and goalsz from the visit (prepareVisit), three arguments fewer to cross.
          const r = inVisit && !this.hooks.connectionGoal.has()
            ? native.visitDefault(this.#handle, slot, reserve)
            : this.#defaultMaintain(dr, slot, sl, now, goalsz, reserve);
          if (clean) this.#noteVisit();
          return r;
        },
      }),
      connectionGoal: new HookPoint<ConnectionGoalArgs>('connectionGoal', {
        kind: 'void', guard, report, describe,
        checkArgs: ([dr, slot, sl, goal]) => {
          this.#checkPair(dr, slot, sl);
          this.#checkBox(goal, 'goal');
        },
      }),
      preMailQueueMaintainDomain: new HookPoint<DomainHookArgs>('preMailQueueMaintainDomain', {
        kind: 'void', guard, report, describe, checkArgs: (args) => this.#checkDomainHookArgs(args),
      }),
      postMailQueueMaintainDomain: new HookPoint<DomainHookArgs>('postMailQueueMaintainDomain', {
        kind: 'void', guard, report, describe, checkArgs: (args) => this.#checkDomainHookArgs(args),
      }),
    });
  }

  // --- lifetime -------------------------------------------------------------------------------

  /** Frees the native core. Calls after close() throw ERR_CLOSED; close() again does nothing. */
  close(): void {
    if (this.#closed) return;
    const k = this.hooks;
    if (this.#inPass || k.mailQueueMaintain.calling || k.connectionGoal.calling || k.preMailQueueMaintainDomain.calling ||
      k.postMailQueueMaintainDomain.calling) {
      throw codedError('ERR_REENTRANT', 'close() was called from inside a maintenance hook');
    }
    this.#closed = true;
    this.#maintainer?.stop();
    void this.#delivery?.stop();
    for (const c of this.#cooling.values()) clearTimeout(c.timer);
    this.#cooling.clear();
    finalizer.unregister(this);
    native.destroyCore(this.#handle);
  }

  get closed(): boolean {
    return this.#closed;
  }

  #live(): number {
    if (this.#closed) throw codedError('ERR_CLOSED', 'the core is closed');
    return this.#handle;
  }

  // --- messages -------------------------------------------------------------------------------

  /** Queues one message: active when nextAttempt <= now, else delayed. */
  enqueue(message: Message): void {
    const h = this.#live();
    const m = checkObject(message, 'message');
    for (const k of Object.keys(m)) {
      if (!MESSAGE_KEYS.has(k)) throw new RangeError(`message: unknown key ${JSON.stringify(k)}`);
    }
    const id = checkId(m.id, 'message.id');
    // A name already known is valid and normalised: the Map lookup is the whole check.
    let d = typeof m.domain === 'string' ? this.#domainIndex.get(m.domain) : undefined;
    const domain = d === undefined ? checkDomainName(m.domain, 'message.domain') : (m.domain as string);
    const b = m.binding === undefined ? 0 : this.#bindingSlot(m.binding, 'message.binding');
    const priority = m.priority === undefined ? 0 : checkPriority(m.priority, 'message.priority');
    const now = this.#now();
    const nextAttempt = m.nextAttempt === undefined ? now : checkTime(m.nextAttempt, 'message.nextAttempt');
    if (d === undefined) d = this.#domainIndex.get(domain);
    const expiresAt = m.expiresAt !== undefined ? checkExpiry(m.expiresAt, 'message.expiresAt')
      : now + (d !== undefined ? this.#pair(d, b).messageExpirationMs : this.#defaultExpiryMs(domain, b));
    const attempts = m.attempts === undefined ? 0 : checkInt(m.attempts, 'message.attempts', 0, 65535);
    if (d === undefined) {
      // A refused message must not leave a new domain behind: check the id before creating it.
      if (native.locate(h, id, this.#where) !== Place.None) throw codedError('ERR_DUPLICATE_ID', `message.id ${id} is already queued`);
      d = this.#createDomain(domain);
    }
    native.enqueue(h, d, b, id, priority, nextAttempt, expiresAt, now);
    // Not a queue key, so set after the fact (only recovery passes it): the message is queued.
    if (attempts > 0) native.setAttempts(h, id, attempts);
    this.#drainExpired();
    if (nextAttempt <= now) this.#mailArrived(d, b);
    else this.#maintainer?.scheduleAt(nextAttempt);
  }

  /**
   * Queues many messages for one (domain, binding) in one native call: ids (safe integers) in a
   * Float64Array, optional priorities (0 or 1) in a Uint8Array of the same length, and optional
   * next-attempt times (ms) in a Float64Array of the same length (each message active when its
   * time is not after now, else delayed; without them, all are due now). All or nothing.
   */
  enqueueBatch(domain: DomainRef, binding: string | undefined, ids: Float64Array, priorities?: Uint8Array, nextAttempts?: Float64Array): void {
    const h = this.#live();
    // A name already known is valid and normalised: the Map lookup is the whole check. A new name
    // makes its domain below, once the batch is known to be good.
    let d: number | undefined;
    let name = '';
    if (typeof domain === 'string') {
      d = this.#domainIndex.get(domain);
      if (d === undefined) name = checkDomainName(domain, 'domain');
    } else {
      d = this.#domainRef(domain);
    }
    const b = binding === undefined ? 0 : this.#bindingSlot(binding, 'binding');
    checkTypedArray(ids, Float64Array, 'Float64Array', 'ids');
    if (priorities !== undefined) {
      checkTypedArray(priorities, Uint8Array, 'Uint8Array', 'priorities');
      if (priorities.length !== ids.length) {
        throw new RangeError(`priorities must have as many entries as ids (${ids.length}), got ${priorities.length}`);
      }
    }
    if (nextAttempts !== undefined) {
      checkTypedArray(nextAttempts, Float64Array, 'Float64Array', 'nextAttempts');
      if (nextAttempts.length !== ids.length) {
        throw new RangeError(`nextAttempts must have as many entries as ids (${ids.length}), got ${nextAttempts.length}`);
      }
    }
    if (ids.length === 0) return;
    const now = this.#now();
    if (d === undefined) d = this.#domainIndex.get(name);
    if (d === undefined) {
      this.#precheckBatch(h, ids, priorities, nextAttempts);
      d = this.#createDomain(name);
    }
    native.enqueueBatch(h, d, b, ids, priorities ?? null, nextAttempts ?? now, now + this.#pair(d, b).messageExpirationMs, now);
    this.#drainExpired();
    if (nextAttempts === undefined) {
      this.#mailArrived(d, b, ids.length);
      return;
    }
    let due = 0;
    let soonest = Infinity;
    for (let i = 0; i < nextAttempts.length; i++) {
      const t = nextAttempts[i];
      if (t <= now) due++;
      else if (t < soonest) soonest = t;
    }
    if (due > 0) this.#mailArrived(d, b, due);
    if (soonest !== Infinity) this.#maintainer?.scheduleAt(soonest);
  }

  // The native call checks the same things; this runs only before a new domain is created, so that
  // a refused batch leaves no domain behind.
  #precheckBatch(h: number, ids: Float64Array, priorities: Uint8Array | undefined, nextAttempts: Float64Array | undefined): void {
    const seen = new Set<number>();
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isSafeInteger(id) || id < 0) throw new RangeError(`ids[${i}] must be a safe integer from 0 to 2^53-1, got ${id}`);
      if (priorities !== undefined && priorities[i] > 1) throw new RangeError(`priorities[${i}] must be 0 or 1, got ${priorities[i]}`);
      if (nextAttempts !== undefined && !(Math.abs(nextAttempts[i]) <= MAX_TIME)) {
        throw new RangeError(`nextAttempts[${i}] must be a finite number within ±8.64e15 ms`);
      }
      if (seen.has(id) || native.locate(h, id, this.#where) !== Place.None) {
        throw codedError('ERR_DUPLICATE_ID', `ids[${i}]: id ${id} is already queued`);
      }
      seen.add(id);
    }
  }

  /** Removes a queued (active or delayed) message; false when the id is unknown. A message in
   *  flight cannot be cancelled (ERR_IN_FLIGHT): it ends with its delivery's outcome. With a store,
   *  a cancelled message is removed from it too (in the background; a failure is an 'error'
   *  event), so recover() does not bring it back. */
  cancel(id: number): boolean {
    const h = this.#live();
    checkId(id, 'id');
    const cancelled = native.cancel(h, id);
    if (cancelled && this.#store) this.#unstore(id);
    return cancelled;
  }

  /** cancel() for many messages in one native call (a recalled campaign, an operator's list):
   *  returns how many were cancelled; unknown ids (and an id repeated in the batch) are skipped,
   *  as cancel() returns false for them. An id in flight (ERR_IN_FLIGHT) or not an id refuses the
   *  whole batch, the error names the first bad ids[i], and nothing changes. */
  cancelMany(ids: Float64Array): number {
    const h = this.#live();
    checkTypedArray(ids, Float64Array, 'Float64Array', 'ids');
    if (!this.#store) return native.cancelBatch(h, ids);
    // The ids the core holds now are the ones the batch cancels (all or nothing).
    const held: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      if (Number.isSafeInteger(ids[i]) && ids[i] >= 0 && native.locate(h, ids[i], this.#where) !== Place.None) held.push(ids[i]);
    }
    const n = native.cancelBatch(h, ids);
    for (const id of new Set(held)) this.#unstore(id);
    return n;
  }

  /** Removes a message the core no longer holds from the store, in the background. */
  #unstore(id: number): void {
    this.#store?.remove(id).catch((err) => this.#reportError(err));
  }

  /** Where a message is, or undefined when the core does not hold it. */
  message(id: number): MessageInfo | undefined {
    const h = this.#live();
    checkId(id, 'id');
    const place = native.locate(h, id, this.#where);
    if (place === Place.None) return undefined;
    const w = this.#where;
    return {
      id,
      domain: this.#records[w[0]].name,
      binding: this.bindings[w[1]],
      state: place === Place.Active ? 'active' : place === Place.Delayed ? 'delayed' : 'in-flight',
      priority: w[3],
      attempts: w[4],
      nextAttempt: w[5],
      expiresAt: w[6],
    };
  }

  /**
   * Takes up to k messages from the head of (domain, binding)'s active queue into flight, for a
   * connection to deliver. Each must end with settle(), defer() or untake(). Expired messages are
   * bounced instead of taken.
   */
  take(domain: DomainRef, binding: string | number, k = 1): number[] {
    checkInt(k, 'k', 1, MAX_TAKE);
    const out = new Float64Array(k);
    const n = this.takeInto(domain, binding, out);
    return Array.from(out.subarray(0, n));
  }

  /** take() into a caller-owned buffer (k = out.length); returns how many were taken. */
  takeInto(domain: DomainRef, binding: string | number, out: Float64Array): number {
    const h = this.#live();
    const d = this.#domainRef(domain);
    const b = this.#bindingSlot(binding, 'binding');
    checkTypedArray(out, Float64Array, 'Float64Array', 'out');
    const n = native.take(h, d, b, this.#now(), out);
    this.#drainExpired();
    return n;
  }

  /** takeInto() for an open connection, by its id: its lease names the (domain, binding), the
   *  domain it migrated to if it did (no name to look up). ERR_UNKNOWN_CONNECTION when no
   *  connection with that id is open. */
  takeFor(connectionId: number, out: Float64Array): number {
    const h = this.#live();
    checkInt(connectionId, 'connectionId', 1, Number.MAX_SAFE_INTEGER);
    checkTypedArray(out, Float64Array, 'Float64Array', 'out');
    const n = native.takeFor(h, connectionId, this.#now(), out);
    this.#drainExpired();
    return n;
  }

  /** A message in flight reached its final outcome (delivered, or bounced by the caller). */
  settle(id: number): void {
    const h = this.#live();
    checkId(id, 'id');
    native.settle(h, id);
  }

  /** settle() for many messages in one native call (for a caller that delivers in batches). All
   *  must be in flight; on a refusal nothing changes and the error names the first bad entry. */
  settleMany(ids: Float64Array): void {
    const h = this.#live();
    checkTypedArray(ids, Float64Array, 'Float64Array', 'ids');
    native.settleBatch(h, ids);
  }

  /** A message in flight failed transiently: it waits in the delayed queue until nextAttempt (it
   *  expires instead when nextAttempt is at or after its expiry). */
  defer(id: number, nextAttempt: number): void {
    const h = this.#live();
    checkId(id, 'id');
    checkTime(nextAttempt, 'nextAttempt');
    const now = this.#now();
    native.defer(h, id, nextAttempt, now);
    this.#drainExpired();
    this.#maintainer?.scheduleAt(nextAttempt);
  }

  /** defer() for many messages to the same nextAttempt, in one native call. All must be in
   *  flight; on a refusal nothing changes and the error names the first bad entry. */
  deferMany(ids: Float64Array, nextAttempt: number): void {
    const h = this.#live();
    checkTypedArray(ids, Float64Array, 'Float64Array', 'ids');
    checkTime(nextAttempt, 'nextAttempt');
    if (ids.length === 0) return;
    const now = this.#now();
    native.deferBatch(h, ids, nextAttempt, now);
    this.#drainExpired();
    this.#maintainer?.scheduleAt(nextAttempt);
  }

  /** A message in flight was not attempted: it goes back to the position it was taken from. */
  untake(id: number): void {
    const h = this.#live();
    checkId(id, 'id');
    native.untake(h, id);
  }

  // --- delivery ------------------------------------------------------------------------------

  /**
   * Starts delivery: the maintainer runs passes on its own (every delayedQueueScanInterval, at the
   * next due retry, and soon after mail arrives), and every grant becomes a connection over the
   * transport. Needs the transport and store options.
   */
  start(): void {
    this.#live();
    if (this.#maintainer?.running) return;
    if (!this.#transport || !this.#store) {
      throw codedError('ERR_CONFIG', 'start() needs the transport and store options');
    }
    const delivery = new Delivery(this.#deliveryCore(), this.#transport, this.#store, this.#deliveryTimeout);
    this.#delivery = delivery;
    this.#maintainer = new Maintainer({
      runPass: () => this.#maintainerPass(),
      now: () => this.#clock(),
      report: (err) => this.#reportError(err),
    }, this.#config.scanIntervalMs());
    this.#maintainer.start();
  }

  /** Stops the maintainer; idle connections close, busy ones finish their message and close. */
  async stop(): Promise<void> {
    const maintainer = this.#maintainer;
    const delivery = this.#delivery;
    maintainer?.stop();
    if (delivery) await delivery.stop();
    // A start() during the await made new ones: leave those alone.
    if (this.#maintainer === maintainer) this.#maintainer = undefined;
    if (this.#delivery === delivery) this.#delivery = undefined;
  }

  get started(): boolean {
    return this.#maintainer?.running ?? false;
  }

  /** Stores a message durably (store option), then queues it. */
  async submit(message: StoredMessage & { nextAttempt?: number }, body: Buffer): Promise<void> {
    this.#live();
    const store = this.#store;
    if (!store) throw codedError('ERR_CONFIG', 'submit() needs the store option');
    const m = checkObject(message, 'message');
    const id = checkId(m.id, 'message.id');
    checkDomainName(m.domain, 'message.domain');
    if (m.binding !== undefined) this.#bindingSlot(m.binding, 'message.binding');
    if (!Buffer.isBuffer(body)) throw new TypeError(`body must be a Buffer, got ${typeName(body)}`);
    if (native.locate(this.#handle, id, this.#where) !== Place.None) throw codedError('ERR_DUPLICATE_ID', `message.id ${id} is already queued`);
    const stored: StoredMessage = { ...message };
    // Store the expiry the core will use, so a restart keeps it (recover() reads it back).
    if (stored.expiresAt === undefined) {
      const b = stored.binding === undefined ? 0 : this.#bindingSlot(stored.binding, 'message.binding');
      stored.expiresAt = this.#now() + this.#defaultExpiryMs(checkDomainName(stored.domain, 'message.domain'), b);
    }
    await store.put(stored, body);
    try {
      this.enqueue({
        id, domain: stored.domain, binding: stored.binding, priority: stored.priority, expiresAt: stored.expiresAt,
        nextAttempt: stored.nextAttempt, attempts: stored.attempts,
      });
    } catch (err) {
      // A recover() running at the same time may have queued this very entry: remove it from the
      // store only when the core does not hold it.
      if (!this.#closed && native.locate(this.#handle, id, this.#where) === Place.None) await store.remove(id).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Queues again every message the store holds that the core does not (after a restart). Returns
   * how many were queued. Expiry times are kept, and so is the retry schedule the store recorded
   * (attempts made and the next attempt time, MessageStore.setRetryState): a message deferred
   * before the restart waits for its next attempt and keeps counting towards maxRetries.
   */
  async recover(onProgress?: (queued: number) => void): Promise<number> {
    this.#live();
    const store = this.#store;
    if (!store) throw codedError('ERR_CONFIG', 'recover() needs the store option');
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new TypeError('onProgress must be a function');
    let n = 0;
    for await (const m of store.list()) {
      if (native.locate(this.#live(), m.id, this.#where) !== Place.None) continue;
      try {
        this.enqueue({
          id: m.id, domain: m.domain, binding: m.binding, priority: m.priority, expiresAt: m.expiresAt,
          nextAttempt: m.nextAttempt, attempts: m.attempts,
        });
      } catch (err) {
        // One entry the configuration no longer fits (a binding removed, say) must not keep the
        // rest of the spool from being queued: report it, leave it in the store, go on.
        this.#reportError(new Error(`recover(): message ${m.id} was not queued: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
        continue;
      }
      n++;
      if (onProgress && n % 10_000 === 0) onProgress(n);
    }
    onProgress?.(n);
    return n;
  }

  #maintainerPass(): number {
    if (this.#closed) return Infinity;
    const r = this.maintain();
    const now = this.#now();
    const nextDue = native.nextDueAt(this.#handle) - now;
    const s = this.stats();
    // Mail waits with no connection at all (a limit, a throttle or a cool-down): look again soon.
    const stuck = s.active > 0 && s.connections === 0 && r.opened === 0 ? 250 : Infinity;
    return Math.max(0, Math.min(nextDue, stuck));
  }

  // Mail became due for (d, b): wake as many idle connections there as there are new messages, and
  // ask for a pass when that is not enough.
  #mailArrived(d: number, b: number, count = 1): void {
    const delivery = this.#delivery;
    if (!delivery) return;
    if (delivery.mailArrived(this.#records[d].name, this.bindings[b], count) < count) this.#maintainer?.poke();
  }

  #deliveryCore() {
    const self = this;
    const index = (domain: string) => {
      const d = self.#domainIndex.get(domain);
      if (d === undefined) throw unknownDomain(domain);
      return d;
    };
    const slot = (binding: string) => self.#bindingSlot(binding, 'binding');
    return {
      now: () => self.#now(),
      takeFor: (connectionId: number, out: Float64Array) => self.takeFor(connectionId, out),
      queued: (domain: string, binding: string) => native.activeSize(self.#live(), index(domain), slot(binding)),
      settings: (domain: string, binding: string) => self.#pair(index(domain), slot(binding)),
      attempts: (id: number) => self.message(id)?.attempts ?? 1,
      settle: (id: number) => self.settle(id),
      defer: (id: number, nextAttempt: number) => {
        self.defer(id, nextAttempt);
        return native.locate(self.#live(), id, self.#where) !== Place.None;
      },
      untake: (id: number) => self.untake(id),
      release: (connectionId: number) => native.releaseConnection(self.#live(), connectionId),
      migrate: (connectionId: number, domain: string) => native.migrateConnection(self.#live(), connectionId, index(domain)),
      messageAllowedAt: (domain: string, binding: string) => native.messageNextAllowedAt(self.#live(), index(domain), slot(binding), self.#now()),
      cool: (domain: string, binding: string, until: number) => self.#cool(index(domain), slot(binding), until),
      bindingSlot: slot,
      emit: (event: string, payload: unknown) => {
        if (event === 'error') self.#reportError(payload);
        else self.#emitSafely(event, payload);
      },
      poke: () => self.#maintainer?.poke(),
      tally: (domain: string) => self.#tally(domain),
      cooling: (domain: string, binding: string) => self.#cooling.has(`${index(domain)}:${slot(binding)}`),
      suspended: (domain: string, binding: string) => self.#deliverySuspended(index(domain), slot(binding)),
      domainsWithMail: (max: number) => {
        const h = self.#live();
        if (self.#dueBuf.length < self.#records.length) self.#dueBuf = new Uint32Array(self.#records.length * 2);
        const n = native.dueDomains(h, self.#now(), self.#dueBuf);
        const out: string[] = [];
        for (let i = 0; i < n && out.length < max; i++) out.push(self.#records[self.#dueBuf[i]].name);
        return out;
      },
    };
  }

  // Failures the core survives (a provider, a store, a listener): an 'error' event, or a process
  // warning when nobody listens (an unheard 'error' event would throw and stop maintenance).
  #reportError(err: unknown): void {
    if (this.listenerCount('error') > 0) {
      this.emit('error', err);
      return;
    }
    const code = (err as { code?: unknown })?.code;
    process.emitWarning(err instanceof Error ? err.message : String(err), {
      code: typeof code === 'string' ? code : 'ERR_MAIL_QUEUE_CORE',
      detail: 'add an error listener on the core to handle these',
    });
  }

  // --- operator actions (Momentum's console verbs) ---------------------------------------------

  /** flush domain: every delayed message of the domain becomes due now. Returns how many. */
  flush(domain: string): number {
    const h = this.#live();
    const d = this.#knownDomain(domain);
    const n = native.flushDomain(h, d, this.#now());
    this.#drainExpired();
    if (n > 0) {
      for (let b = 0; b < this.bindings.length; b++) {
        const q = native.activeSize(h, d, b);
        if (q > 0) this.#mailArrived(d, b, q);
      }
    }
    return n;
  }

  /** fail domain: bounces every queued (active and delayed) message of the domain ('bounce' events
   *  with reason 'failed'); messages in flight end with their delivery. Returns how many. */
  fail(domain: string): number {
    const h = this.#live();
    const d = this.#knownDomain(domain);
    const name = this.#records[d].name;
    const out = new Float64Array(1024);
    let total = 0;
    let n: number;
    while ((n = native.failDomain(h, d, out)) > 0) {
      for (let i = 0; i < n; i++) {
        const id = out[i];
        if (this.#store) this.#unstore(id);
        this.#emitSafely('bounce', { id, domain: name, reason: 'failed', response: 'failed by the operator' });
      }
      total += n;
    }
    if (total > 0) this.#tally(name).bounced += total;
    return total;
  }

  /** message retry: a delayed message becomes due now. False when it is not delayed. */
  retry(id: number): boolean {
    const h = this.#live();
    checkId(id, 'id');
    const now = this.#now();
    if (!native.retryNow(h, id, now)) return false;
    native.locate(h, id, this.#where);
    // The store's schedule follows, or a restart would make it wait for the old time again.
    this.#store?.setRetryState?.(id, { attempts: this.#where[4], nextAttempt: now }).catch((err) => this.#reportError(err));
    this.#mailArrived(this.#where[0], this.#where[1]);
    return true;
  }

  /** The whole core at a glance: counts, connections, and delivery totals since start. */
  summary(): Stats & { started: boolean; delivered: number; deferred: number; bounced: number; connectFailures: number; bindings: Record<string, { connections: number; active: number; suspended: boolean }> } {
    const stats = this.stats();
    const t = { delivered: 0, deferred: 0, bounced: 0, connectFailures: 0 };
    for (const v of this.#tallies.values()) {
      t.delivered += v.delivered;
      t.deferred += v.deferred;
      t.bounced += v.bounced;
      t.connectFailures += v.connectFailures;
    }
    const bindings: Record<string, { connections: number; active: number; suspended: boolean }> = {};
    this.bindings.forEach((b, i) => {
      bindings[b] = {
        connections: this.counters[this.counterIndex[`connections:${b}`]],
        active: this.counters[this.counterIndex[`active:${b}`]],
        suspended: this.#suspendedBindings.has(i),
      };
    });
    return { ...stats, started: this.started, ...t, bindings };
  }

  /** One domain: connections, active and delayed per binding, and its delivery tallies. */
  domainView(domain: string): { name: string; connections: number; delayed: number; bindings: Record<string, { active: number; delayed: number; connections: number; suspended: boolean }> } & DomainTally {
    const h = this.#live();
    const d = this.#knownDomain(domain);
    const rec = this.#records[d].toJSON();
    const delayed = new Float64Array(this.bindings.length);
    native.delayedByBinding(h, d, delayed);
    const bindings: Record<string, { active: number; delayed: number; connections: number; suspended: boolean }> = {};
    this.bindings.forEach((b, i) => {
      bindings[b] = { active: rec.active[b], delayed: delayed[i], connections: rec.connections[b], suspended: rec.suspended[b] };
    });
    const tally = { delivered: 0, deferred: 0, bounced: 0, connectFailures: 0, ...this.#tallies.get(rec.name) };
    return { name: rec.name, connections: this.#records[d].connections(), delayed: rec.delayed, bindings, ...tally };
  }

  /** A listing of one queue: the active queue of (domain, binding) or the domain's delayed queue. */
  listQueue(domain: string, options: { binding?: string | number; queue?: 'active' | 'delayed'; limit?: number; offset?: number } = {}): MessageInfo[] {
    const h = this.#live();
    const d = this.#knownDomain(domain);
    checkObject(options, 'options');
    for (const k of Object.keys(options)) {
      if (!['binding', 'queue', 'limit', 'offset'].includes(k)) throw new RangeError(`options: unknown option ${JSON.stringify(k)}`);
    }
    const queue = options.queue ?? 'active';
    if (queue !== 'active' && queue !== 'delayed') throw new RangeError(`options.queue must be 'active' or 'delayed', got ${String(queue)}`);
    const limit = options.limit === undefined ? 100 : checkInt(options.limit, 'options.limit', 0, 1_000_000);
    const offset = options.offset === undefined ? 0 : checkInt(options.offset, 'options.offset', 0, Number.MAX_SAFE_INTEGER);
    const out = new Float64Array(limit);
    let n: number;
    if (queue === 'active') {
      const b = this.#bindingSlot(options.binding ?? 0, 'options.binding');
      n = native.peekActive(h, d, b, offset, out);
    } else {
      if (options.binding !== undefined) throw new RangeError("options.binding: the delayed queue is per domain; leave binding out");
      n = native.peekDelayed(h, d, offset, out);
    }
    const list: MessageInfo[] = [];
    for (let i = 0; i < n; i++) {
      const info = this.message(out[i]);
      if (info) list.push(info);
    }
    return list;
  }

  // --- domains and queues ---------------------------------------------------------------------

  hasDomain(name: string): boolean {
    this.#live();
    return this.#domainIndex.has(checkDomainName(name, 'name'));
  }

  /** Names of every domain the core has seen, in the order they were first seen. */
  domains(): string[] {
    this.#live();
    return this.#records.map((r) => r.name);
  }

  /** The live DomainRecord of a domain that has had mail (ERR_UNKNOWN_DOMAIN otherwise). */
  domain(name: string): DomainRecord {
    this.#live();
    return this.#records[this.#knownDomain(name)];
  }

  /** The live active queue of (domain, binding). */
  activeQueue(domain: string, binding: string | number): ActiveQueue {
    this.#live();
    const d = this.#knownDomain(domain);
    return this.#queue(d, this.#bindingSlot(binding, 'binding'));
  }

  /** Stops delivery for a domain (all bindings, or one): no new connections, and open ones close
   *  after their current message. Mail stays queued. Applies to a domain that has not been seen
   *  yet as soon as its first message arrives. */
  suspend(domain: string, binding?: string | number): void {
    this.#setSuspended(domain, binding, true);
  }

  resume(domain: string, binding?: string | number): void {
    this.#setSuspended(domain, binding, false);
  }

  #setSuspended(domain: string, binding: string | number | undefined, flag: boolean): void {
    this.#live();
    const name = checkDomainName(domain, 'domain');
    const slots = binding === undefined ? this.bindings.map((_, i) => i) : [this.#bindingSlot(binding, 'binding')];
    let set = this.#suspensions.get(name);
    if (flag) {
      if (!set) this.#suspensions.set(name, (set = new Set()));
      for (const s of slots) set.add(s);
    } else if (set) {
      for (const s of slots) set.delete(s);
    }
    const d = this.#domainIndex.get(name);
    if (d !== undefined) for (const s of slots) this.#applySuspension(d, s);
    if (!flag) this.#maintainer?.poke();
  }

  /** Stops new connections for a binding on every domain, now and for domains seen later. */
  suspendBinding(binding: string | number): void {
    this.#live();
    this.#suspendedBindings.add(this.#bindingSlot(binding, 'binding'));
    this.#applyAll();
  }

  resumeBinding(binding: string | number): void {
    this.#live();
    this.#suspendedBindings.delete(this.#bindingSlot(binding, 'binding'));
    this.#applyAll();
    this.#maintainer?.poke();
  }

  #applyAll(): void {
    for (let d = 0; d < this.#records.length; d++) for (let b = 0; b < this.bindings.length; b++) this.#applySuspension(d, b);
  }

  // A pair opens no connection while the configuration, the operator (for the pair, the domain or
  // the binding) or a recent connection failure says so. Resuming one of them leaves the others.
  #isSuspended(d: number, b: number): boolean {
    return this.#deliverySuspended(d, b) || this.#cooling.has(`${d}:${b}`);
  }

  // Suspended by configuration or by the operator: open connections stop taking messages too. (A
  // connect-failure cool-down only holds back new connections.)
  #deliverySuspended(d: number, b: number): boolean {
    const name = this.#records[d].name;
    return this.#pair(d, b).suspended || this.#suspendedBindings.has(b) || (this.#suspensions.get(name)?.has(b) ?? false);
  }

  #applySuspension(d: number, b: number): void {
    native.setSuspended(this.#handle, d, b, this.#isSuspended(d, b));
    this.#limitsEpoch++; // a pair's limits changed: a pass's view of later bindings is stale
  }

  #cool(d: number, b: number, until: number): void {
    const key = `${d}:${b}`;
    const old = this.#cooling.get(key);
    if (old) clearTimeout(old.timer);
    const timer = setTimeout(() => {
      this.#cooling.delete(key);
      if (this.#closed) return;
      this.#applySuspension(d, b);
      this.#maintainer?.poke();
    }, Math.max(0, until - this.#now()));
    timer.unref();
    this.#cooling.set(key, { until, timer });
    this.#applySuspension(d, b);
  }

  // --- maintenance ----------------------------------------------------------------------------

  /**
   * One maintenance pass over every due domain. With `options.maxDomains`, a slice of a pass: the
   * first slice takes a snapshot of the due domains (in the rotation's order); each call visits the
   * next `maxDomains` of them and returns how many are still to visit (`remaining`); once it is 0,
   * the next call starts a new pass. Calling until `remaining` is 0, with a yield to the event loop
   * between calls, covers every domain of the pass once without holding the event loop for long. A
   * whole pass (no maxDomains) abandons a sliced pass in progress. `options.maxGrants` ends a
   * slice early once it has opened that many connections (after the domain that reached it), so a
   * tick where every pair wants connections does not grant them all in one call.
   */
  maintain(now?: number, options: MaintainOptions = {}): PassResult {
    const h = this.#live();
    this.#refuseInPass('maintain');
    const t = now === undefined ? this.#now() : checkTime(now, 'now');
    checkObject(options, 'options');
    for (const k of Object.keys(options)) {
      if (k !== 'maxDomains' && k !== 'maxGrants' && k !== 'into') throw new RangeError(`options: unknown option ${JSON.stringify(k)}`);
    }
    const max = options.maxDomains === undefined ? Infinity : checkInt(options.maxDomains, 'options.maxDomains', 1, 4294967295);
    const maxGrants = options.maxGrants === undefined ? Infinity : checkInt(options.maxGrants, 'options.maxGrants', 1, 4294967295);
    const into = options.into === undefined ? null : this.#checkGrantList(options.into, 'options.into');
    // A whole pass (neither option) is a fresh slice as large as the number of due domains.
    const whole = max === Infinity && maxGrants === Infinity;
    if (!this.#anyProvider()) {
      const out = this.#sliceOut;
      native.maintainSlice(h, t, max === Infinity ? 4294967295 : max, whole, maxGrants, out);
      this.#drainExpired();
      let grants: Grant[];
      if (into === null) {
        grants = this.#drainGrants(true);
      } else {
        into.clear();
        this.#into = into;
        try {
          this.#drainGrants();
        } finally {
          this.#into = null;
        }
        grants = [];
      }
      this.#delivery?.afterPass();
      return { opened: into === null ? grants.length : into.length, grants, visited: out[0], remaining: out[1] };
    }
    let remaining = 0;
    let visited = 0;
    const result = this.#jsPass(into, () => {
      // The domains of this pass (or slice) from the core's snapshot; a whole pass takes a fresh one.
      if (this.#dueBuf.length < this.#records.length + 1) this.#dueBuf = new Uint32Array(this.#records.length * 2 + 1);
      const buf = this.#dueBuf;
      // Grants are drained at the pass's end: count them by the core's counter meanwhile.
      const openedBefore = this.counters[this.#openedSlot];
      const opened = (): number => this.counters[this.#openedSlot] - openedBefore;
      // With a grant cap, domains are asked for a few at a time, so the slice can end where the
      // cap was reached and leave the rest of the pass to the next slice.
      const step = maxGrants === Infinity ? 4294967295 : 16;
      let fresh = whole;
      for (;;) {
        const n = native.nextSlice(h, t, Math.min(step, max - visited), fresh, buf);
        fresh = false;
        remaining = buf[0];
        // Copied: a provider may enqueue to a new domain, and the next pass reuses the buffer.
        const list = Array.from(buf.subarray(1, 1 + n));
        let i = 0;
        while (i < n && opened() < maxGrants) this.#maintainDomainJs(list[i++], t, 0, undefined);
        visited += i;
        if (i < n) {
          // The cap was reached inside this batch: give the unvisited domains back to the pass.
          native.unvisitSlice(h, n - i);
          remaining += n - i;
          break;
        }
        if (remaining === 0 || visited >= max || opened() >= maxGrants || n === 0) break;
      }
    });
    this.#delivery?.afterPass();
    return { ...result, visited, remaining };
  }

  /** Maintenance of one domain, as Momentum's _mail_queue_maintain_domain(dr, now, goalsz, reserve).
   *  Without `reserve`, each binding gets the maintainer's rule (0 for a pair with no connection). */
  maintainDomain(domain: string, options: { now?: number; goalsz?: number; reserve?: number } = {}): MaintainResult {
    const h = this.#live();
    this.#refuseInPass('maintainDomain');
    const d = this.#knownDomain(domain);
    checkObject(options, 'options');
    for (const k of Object.keys(options)) {
      if (k !== 'now' && k !== 'goalsz' && k !== 'reserve') throw new RangeError(`options: unknown option ${JSON.stringify(k)}`);
    }
    const t = options.now === undefined ? this.#now() : checkTime(options.now, 'options.now');
    const goalsz = options.goalsz === undefined ? 0 : checkInt(options.goalsz, 'options.goalsz', -2147483648, 2147483647);
    const reserve = options.reserve === undefined ? undefined : checkInt(options.reserve, 'options.reserve', 0, 4294967294);
    if (!this.#anyProvider()) {
      native.maintainDomain(h, d, t, goalsz, reserve ?? -1);
      this.#drainExpired();
      const grants = this.#drainGrants(true);
      return { opened: grants.length, grants };
    }
    return this.#jsPass(null, () => this.#maintainDomainJs(d, t, goalsz, reserve));
  }

  /**
   * Opens up to `count` more connections for (domain, binding), clipped by every limit, as the
   * default does; for providers that open connections themselves. Returns the grants.
   */
  openConnections(domain: string, binding: string | number, count: number, options: { now?: number; reserve?: number } = {}): Grant[] {
    const h = this.#live();
    const d = this.#knownDomain(domain);
    const b = this.#bindingSlot(binding, 'binding');
    checkInt(count, 'count', 0, 4294967294);
    checkObject(options, 'options');
    for (const k of Object.keys(options)) {
      if (k !== 'now' && k !== 'reserve') throw new RangeError(`options: unknown option ${JSON.stringify(k)}`);
    }
    const t = options.now === undefined ? this.#now() : checkTime(options.now, 'options.now');
    const reserve = options.reserve === undefined ? native.reserveFor(h, d, b) : checkInt(options.reserve, 'options.reserve', 0, 4294967294);
    const cur = this.#records[d].connections(b);
    this.#drainGrants(); // grants still pending (the pass's default) are not this caller's
    native.openConnections(h, d, b, cur + count, reserve, t);
    return this.#drainGrants(true);
  }

  /** A reusable list for maintain(now, { into }): the pass writes its grants there as numbers,
   *  with no Grant object each (see GrantList). */
  grantList(): GrantList {
    this.#live();
    return new GrantList(this, (d) => this.#records[d].name, this.bindings);
  }

  #checkGrantList(v: unknown, name: string): GrantList {
    if (!(v instanceof GrantList)) throw new TypeError(`${name} must be a GrantList (from core.grantList()), got ${typeName(v)}`);
    if (v[ownerOf] !== this) throw new RangeError(`${name}: a GrantList of another core`);
    return v;
  }

  /** Gives a connection's leases back (every count it held). A connection the delivery layer
   *  runs is asked to close instead: it sends nothing more after the message in progress, puts
   *  back what it holds, and gives its lease back once its session is closed (so the lease counts
   *  while the session lives and no limit is passed). */
  releaseConnection(connectionId: number): void {
    const h = this.#live();
    checkInt(connectionId, 'connectionId', 1, Number.MAX_SAFE_INTEGER);
    if (this.#delivery?.closeConnection(connectionId)) return;
    native.releaseConnection(h, connectionId);
  }

  /** The native default __mail_queue_maintain (with connection_goal hooks), for providers that
   *  wrap it, as Momentum exports __mail_queue_maintain. */
  defaultMailQueueMaintain(dr: DomainRecord, bindingSlot: number, sl: ActiveQueue, now: number, goalsz: number, reserve: number): number {
    this.#live();
    this.#checkMaintainArgs([dr, bindingSlot, sl, now, goalsz, reserve]);
    return this.#defaultMaintain(dr, bindingSlot, sl, now, goalsz, reserve);
  }

  stats(): Stats {
    this.#live();
    const c = this.counters;
    const i = this.counterIndex;
    return {
      connections: c[i.connections],
      active: c[i.active],
      delayed: c[i.delayed],
      inFlight: c[i.inFlight],
      domains: c[i.domains],
      opened: c[i.opened],
      released: c[i.released],
      expired: c[i.expired],
      activeRemoved: c[i.activeRemoved],
    };
  }

  /** The native core's own consistency check (queues, message table, ledger); for tests. */
  checkInvariants(): boolean {
    return native.checkInvariants(this.#live());
  }

  // --- internals ------------------------------------------------------------------------------

  #now(): number {
    const t = this.#clock();
    if (typeof t !== 'number' || !(Math.abs(t) <= MAX_TIME)) throw new TypeError(`options.clock returned ${String(t)}, not a finite number within ±8.64e15 ms`);
    return t;
  }

  #anyProvider(): boolean {
    const k = this.hooks;
    return k.mailQueueMaintain.has() || k.connectionGoal.has() || k.preMailQueueMaintainDomain.has() || k.postMailQueueMaintainDomain.has();
  }

  #refuseInPass(what: string): void {
    if (this.#inPass) throw codedError('ERR_REENTRANT', `${what}() was called from inside a maintenance hook`);
  }

  /** Runs a JS-driven pass; its grants go into `into` when given (the result's `grants` is then
   *  empty), else into Grant objects. */
  #jsPass(into: GrantList | null, body: () => void): MaintainResult {
    this.#inPass = true;
    const grants: Grant[] = [];
    this.#passGrants = grants;
    into?.clear();
    this.#into = into;
    try {
      body();
      // The pass's grants are drained once, at its end (a provider's openConnections() drains
      // what is pending before it opens its own).
      this.#drainGrants();
    } catch (err) {
      // Connections granted before the failure are real leases: hand them over with the error.
      this.#drainGrants();
      if (typeof err === 'object' && err !== null) (err as { grants?: Grant[] }).grants = into === null ? grants : into.toArray();
      throw err;
    } finally {
      this.#inPass = false;
      this.#passGrants = null;
      this.#into = null;
    }
    return { opened: into === null ? grants.length : into.length, grants };
  }

  #maintainDomainJs(d: number, now: number, goalsz: number, reserve: number | undefined): void {
    const h = this.#handle;
    const dr = this.#records[d];
    const { preMailQueueMaintainDomain: pre, postMailQueueMaintainDomain: post, mailQueueMaintain } = this.hooks;
    const rv = pre.has() || post.has() ? { value: 0 } : undefined;
    const da = this.#domainHookArgs;
    if (rv) {
      da[0] = dr;
      da[1] = now;
      da[2] = rv;
    }
    if (pre.has()) pre[callTrusted](da);
    // One native call: promote, expire, the bindings with mail in this visit's order, their reserves.
    const order = this.#order;
    const nb = this.bindings.length;
    const n = native.prepareVisit(h, d, now, goalsz, order);
    this.#drainExpired();
    this.#noteVisit();
    this.#visitDomain = d;
    this.#visitGoalsz = goalsz;
    this.#visitNow = now;
    let stale = false;
    let sum = 0;
    for (let j = 0; j < n; j++) {
      const b = order[j];
      let r = reserve ?? order[nb + j];
      // A provider of an earlier binding may have emptied this queue or changed its connections:
      // ask the core again once anything moved.
      if (stale || (stale = this.#countersMoved())) {
        if (native.activeSize(h, d, b) === 0) continue;
        if (reserve === undefined) r = native.reserveFor(h, d, b);
      }
      const ma = this.#maintainArgs;
      ma[0] = dr;
      ma[1] = b;
      ma[2] = this.#queue(d, b);
      ma[3] = now;
      ma[4] = goalsz;
      ma[5] = r;
      const got = mailQueueMaintain[callTrusted](ma);
      if (got > 0) sum += got;
    }
    this.#visitDomain = -1;
    if (rv) rv.value = sum;
    if (post.has()) post[callTrusted](da);
  }

  #noteVisit(): void {
    const c = this.counters;
    this.#visitEpoch = this.#limitsEpoch;
    this.#visitRemoved = c[this.#removedSlot];
    this.#visitActive = c[this.#activeSlot];
    this.#visitOpened = c[this.#openedSlot];
    this.#visitReleased = c[this.#releasedSlot];
  }

  #countersMoved(): boolean {
    const c = this.counters;
    return this.#limitsEpoch !== this.#visitEpoch ||
      c[this.#removedSlot] !== this.#visitRemoved || c[this.#activeSlot] !== this.#visitActive ||
      c[this.#openedSlot] !== this.#visitOpened ||
      c[this.#releasedSlot] !== this.#visitReleased;
  }

  #defaultMaintain(dr: DomainRecord, b: number, sl: ActiveQueue, now: number, goalsz: number, reserve: number): number {
    const h = this.#handle;
    const d = dr.index;
    let opened: number;
    if (!this.hooks.connectionGoal.has()) {
      opened = native.defaultMaintain(h, d, b, now, goalsz, reserve);
    } else {
      const goal = native.computeGoal(h, d, b, goalsz);
      if (goal < 0) return 0;
      const box = { value: goal };
      this.hooks.connectionGoal.call(dr, b, sl, box);
      let g = box.value;
      if (typeof g !== 'number' || !Number.isFinite(g) || g < 0) {
        this.#reportError(new HookError('connectionGoal', dr.name, this.bindings[b],
          `connectionGoal providers set goal to ${String(g)}, not a count; the default goal ${goal} is used`));
        g = goal;
      }
      // The clips bound it anyway; keep it inside what the native call accepts.
      opened = native.openConnections(h, d, b, Math.min(Math.floor(g), 4294967294), reserve, now);
    }
    // Inside a pass the grants wait for the pass's end (one drain a pass, not one a pair);
    // openConnections() drains what is pending before it opens its own.
    if (!this.#inPass) this.#drainGrants();
    return opened;
  }

  #checkDomain(dr: unknown): asserts dr is DomainRecord {
    if (!(dr instanceof DomainRecord)) throw new TypeError('dr must be a DomainRecord of this core');
    this.#recordIndex(dr, 'dr');
  }

  #checkPair(dr: unknown, slot: unknown, sl: unknown): void {
    this.#checkDomain(dr);
    checkInt(slot, 'bindingSlot', 0, this.bindings.length - 1);
    // A view of the pair was made when it was handed out: one not made yet is not this one.
    if (!(sl instanceof ActiveQueue) || this.#queues[dr.index]?.[slot as number] !== sl) {
      throw new TypeError('sl must be the ActiveQueue of (dr, bindingSlot)');
    }
  }

  #checkBox(box: unknown, name: string): void {
    if (typeof box !== 'object' || box === null || typeof (box as { value?: unknown }).value !== 'number') {
      throw new TypeError(`${name} must be an object { value: number }, got ${typeName(box)}`);
    }
  }

  #checkDomainHookArgs([dr, now, rv]: DomainHookArgs): void {
    this.#checkDomain(dr);
    checkTime(now, 'now');
    this.#checkBox(rv, 'rv');
  }

  #checkMaintainArgs(args: MailQueueMaintainArgs): void {
    const [dr, slot, sl, now, goalsz, reserve] = args;
    this.#checkPair(dr, slot, sl);
    checkTime(now, 'now');
    checkInt(goalsz, 'goalsz', -2147483648, 2147483647);
    checkInt(reserve, 'reserve', 0, 4294967294);
  }

  #createDomain(name: string): number {
    const h = this.#handle;
    const cfg = this.#config;
    const nb = this.bindings.length;
    const pairs = new Float64Array(4 * nb);
    const settings: PairSettings[] = [];
    const suspended = this.#suspensions.get(name);
    for (let b = 0; b < nb; b++) {
      const p = this.#intern(cfg.pair(b, name));
      settings.push(p);
      pairs[4 * b] = p.maxConnections;
      pairs[4 * b + 1] = p.aggressiveness;
      pairs[4 * b + 2] = p.throttle;
      pairs[4 * b + 3] = p.suspended || this.#suspendedBindings.has(b) || (suspended?.has(b) ?? false) ? 1 : 0;
    }
    const d = native.addDomain(h, pairs, cfg.domainScopeMax(name), Float64Array.from(cfg.groupDomainScopeMax(name)));
    for (let b = 0; b < nb; b++) if (settings[b].messageThrottle >= 0) native.setMessageThrottle(h, d, b, settings[b].messageThrottle);
    this.#domainIndex.set(name, d);
    this.#records.push(new DomainRecord(this.#host, name, d));
    this.#queues.push(undefined);
    for (let b = 0; b < nb; b++) this.#pairs.push(settings[b]);
    return d;
  }

  // Nearly every pair resolves to the same settings: one frozen object for each distinct set
  // instead of one per pair. Nothing writes them (here or in the delivery layer); a config is
  // fixed for the core's life, so a set never changes once made.
  #intern(p: PairSettings): PairSettings {
    const key = Object.values(p).join();
    let shared = this.#interned.get(key);
    if (shared === undefined) this.#interned.set(key, (shared = Object.freeze(p)));
    return shared;
  }

  #pair(d: number, b: number): PairSettings {
    return this.#pairs[d * this.bindings.length + b];
  }

  /** The ActiveQueue view of (d, b), the same object every time. */
  #queue(d: number, b: number): ActiveQueue {
    let row = this.#queues[d];
    if (row === undefined) this.#queues[d] = row = new Array<ActiveQueue>(this.bindings.length);
    return row[b] ??= new ActiveQueue(this.#host, this.#records[d], b);
  }

  // A domain by name or by its DomainRecord (no name to look up: a caller on a hot path keeps the
  // record), for the methods that take a DomainRef.
  #domainRef(domain: unknown): number {
    if (domain instanceof DomainRecord) return this.#recordIndex(domain);
    if (typeof domain !== 'string') throw new TypeError(`domain must be a string or a DomainRecord, got ${typeName(domain)}`);
    return this.#knownDomain(domain);
  }

  #knownDomain(name: unknown): number {
    // A name already known is valid and normalised: the Map lookup is the whole check.
    if (typeof name === 'string') {
      const known = this.#domainIndex.get(name);
      if (known !== undefined) return known;
    }
    const n = checkDomainName(name, 'domain');
    const d = this.#domainIndex.get(n);
    if (d === undefined) throw unknownDomain(n);
    return d;
  }

  // The record's index when it is one of this core's (the one check for every argument that
  // takes a DomainRecord).
  #recordIndex(dr: DomainRecord, name = 'domain'): number {
    const d = DomainRecord.indexIn(dr, this.#host);
    if (d < 0) throw new TypeError(`${name} must be a DomainRecord of this core`);
    return d;
  }

  #bindingSlot(binding: unknown, name: string): number {
    if (typeof binding === 'number') {
      if (!Number.isInteger(binding) || binding < 0 || binding >= this.bindings.length) {
        throw new RangeError(`${name}: no binding slot ${binding} (there are ${this.bindings.length})`);
      }
      return binding;
    }
    if (typeof binding !== 'string') throw new TypeError(`${name} must be a binding name or slot, got ${typeName(binding)}`);
    const i = this.bindings.indexOf(binding);
    if (i < 0) throw new RangeError(`${name}: unknown binding ${JSON.stringify(binding.slice(0, 80))}`);
    return i;
  }

  /** The grants of the native calls since the last drain, announced; `forCaller`: a fresh array
   *  even when there are none (the pass internals take a shared empty one). */
  #drainGrants(forCaller = false): Grant[] {
    if (this.counters[this.#openedSlot] === this.#seenOpened) return forCaller ? [] : NO_GRANTS;
    const into = this.#into;
    if (into !== null && !forCaller) {
      // Into the caller's list: no object per grant unless a 'connection' listener wants one.
      const from = into[fillFromCore](this.#handle);
      this.#seenOpened = this.counters[this.#openedSlot];
      const delivery = this.#delivery;
      const emit = this.listenerCount('connection') > 0;
      if (delivery || emit) {
        for (let i = from; i < into.length; i++) {
          const id = into.connectionId(i);
          const domain = into.domain(i);
          const binding = into.binding(i);
          delivery?.onGrant(id, domain, binding);
          if (emit) this.#emitSafely('connection', { connectionId: id, domain, binding } satisfies Grant);
        }
      }
      return NO_GRANTS;
    }
    const out: Grant[] = [];
    const h = this.#handle;
    const buf = this.#grantBuf;
    for (;;) {
      const n = native.drainGrants(h, buf);
      for (let i = 0; i < n; i++) {
        out.push({ connectionId: buf[3 * i], domain: this.#records[buf[3 * i + 1]].name, binding: this.bindings[buf[3 * i + 2]] });
        into?.[appendGrant](buf[3 * i], buf[3 * i + 1], buf[3 * i + 2]);
      }
      if (n < buf.length / 3) break;
    }
    this.#seenOpened = this.counters[this.#openedSlot];
    const pass = this.#passGrants;
    if (pass && !into) for (let i = 0; i < out.length; i++) pass.push(out[i]); // no spread: out may be long
    // The delivery layer gets its grants first and directly: a user's 'connection' listener that
    // throws must not strand a lease with no connection behind it.
    if (this.#delivery) for (const g of out) this.#delivery.onGrant(g.connectionId, g.domain, g.binding);
    if (this.listenerCount('connection') > 0) for (const g of out) this.#emitSafely('connection', g);
    return out;
  }

  #drainExpired(): void {
    if (this.counters[this.#expiredSlot] === this.#seenExpired) return;
    const h = this.#handle;
    const buf = this.#expiredBuf;
    const doms = this.#expiredDomains;
    for (;;) {
      const n = native.drainExpired(h, buf, doms);
      for (let i = 0; i < n; i++) {
        const domain = this.#records[doms[i]].name;
        // Whether started or not: an expired message is done, in the store as in the core.
        if (this.#store) void this.#store.remove(buf[i]).catch((err) => this.#reportError(err));
        this.#tally(domain).bounced++;
        this.#emitSafely('bounce', { id: buf[i], domain, reason: 'expired' } satisfies Bounce);
      }
      if (n < buf.length) break;
    }
    this.#seenExpired = this.counters[this.#expiredSlot];
  }

  /** message_expiration for (domain, binding) in ms, for a domain seen or not yet seen. */
  #defaultExpiryMs(domain: string, b: number): number {
    const d = this.#domainIndex.get(domain);
    return d === undefined ? this.#config.pair(b, domain).messageExpirationMs : this.#pair(d, b).messageExpirationMs;
  }

  #tally(domain: string): DomainTally {
    let t = this.#tallies.get(domain);
    if (!t) this.#tallies.set(domain, (t = { delivered: 0, deferred: 0, bounced: 0, connectFailures: 0 }));
    return t;
  }

  // Events carry facts the core has already acted on; a listener that throws is reported, and
  // never unwinds through the core's own bookkeeping.
  #emitSafely(event: string, payload: unknown): void {
    try {
      this.emit(event, payload);
    } catch (err) {
      this.#reportError(err);
    }
  }


}
