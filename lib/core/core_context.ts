// What every part of one MailQueueCore shares: the native handle and whether it is closed, the
// resolved configuration and binding names, the counters the native core writes in place, the
// clock, and the transport and store options. The facade (lib/core.ts) makes it; the domain table,
// suspensions, the maintenance pass, the outbox, the operator verbs and the delivery service each
// hold a reference to it instead of reaching into the facade.
import { ResolvedConfig, type BindingSpec, type CoreConfig } from '../config.js';
import { codedError } from '../errors.js';
import { native } from '../native.js';
import type { MessageStore } from '../store/message_store.js';
import type { Transport } from '../transport/transport.js';
import { MAX_TIME } from '../validate.js';
import { ArrivalStage } from './arrival_stage.js';

export interface ContextOptions {
  bindings?: BindingSpec[];
  config?: CoreConfig;
  clock?: () => number;
  transport?: Transport;
  store?: MessageStore;
  deliveryTimeout: number;
}

export class CoreContext {
  readonly handle: number;
  closed = false;
  readonly config: ResolvedConfig;
  readonly bindings: readonly string[];
  readonly bindingGroups: readonly string[];
  readonly clock: () => number;
  readonly transport: Transport | undefined;
  readonly store: MessageStore | undefined;
  readonly deliveryTimeout: number;
  /** Counters kept current by the native core, readable without a call. */
  readonly counters: Float64Array;
  /** Slot of each counter in `counters` (per-binding ones as connections:<binding>, active:<binding>). */
  readonly counterIndex: Readonly<Record<string, number>>;
  readonly openedSlot: number;
  readonly expiredSlot: number;
  readonly releasedSlot: number;
  readonly removedSlot: number;
  readonly activeSlot: number;
  /** locate()'s output: [domain, binding, place, priority, attempts, nextAttempt, expiresAt]. */
  readonly where = new Float64Array(7);
  /** Bumped whenever a pair's limits change (a suspension applied or lifted): a pass's view of
   *  the bindings it has not visited yet is stale then. */
  limitsEpoch = 0;
  /** Single enqueue() calls held on the JavaScript side until the next call into the core. */
  readonly arrivals: ArrivalStage;

  constructor(options: ContextOptions) {
    this.deliveryTimeout = options.deliveryTimeout;
    this.transport = options.transport;
    this.store = options.store;
    const cfg = new ResolvedConfig(options.bindings, options.config);
    this.config = cfg;
    this.clock = options.clock ?? Date.now;
    this.bindings = cfg.bindingNames;
    this.bindingGroups = cfg.groupNames;

    const names = native.counterNames();
    const index: Record<string, number> = {};
    names.forEach((n, i) => {
      index[n] = i;
    });
    const nb = cfg.bindingNames.length;
    cfg.bindingNames.forEach((b, i) => {
      index[`connections:${b}`] = names.length + i;
      index[`active:${b}`] = names.length + nb + i;
    });
    this.counterIndex = Object.freeze(index);
    this.openedSlot = index.opened;
    this.expiredSlot = index.expired;
    this.releasedSlot = index.released;
    this.removedSlot = index.activeRemoved;
    this.activeSlot = index.active;

    this.handle = native.createCore(
      Float64Array.of(nb, cfg.groupNames.length, cfg.serverMax(), cfg.serverReserve()),
      Int32Array.from(cfg.groupOfBinding),
      Float64Array.from(cfg.bindingServerMax()),
      Float64Array.from(cfg.groupServerMax()),
    );
    try {
      // The core's own counters, which it writes in place: reading one costs no call.
      this.counters = new Float64Array(native.countersBuffer(this.handle));
      for (const scope of cfg.throttleScopes) {
        scope.throttle = native.addThrottle(this.handle, scope.rate!.count, scope.rate!.windowMs);
      }
      for (const scope of cfg.messageThrottleScopes) {
        scope.messageThrottle = native.addThrottle(this.handle, scope.messageRate!.count, scope.messageRate!.windowMs);
      }
    } catch (err) {
      native.destroyCore(this.handle);
      throw err;
    }
    this.arrivals = new ArrivalStage(this);
  }

  /** The native handle, with every staged arrival handed over; ERR_CLOSED after close(). */
  live(): number {
    if (this.closed) throw codedError('ERR_CLOSED', 'the core is closed');
    if (this.arrivals.count !== 0) this.arrivals.flush();
    return this.handle;
  }

  now(): number {
    const t = this.clock();
    if (typeof t !== 'number' || !(Math.abs(t) <= MAX_TIME))
      throw new TypeError(`options.clock returned ${String(t)}, not a finite number within ±8.64e15 ms`);
    return t;
  }
}
