// What every part of one MailQueueCore shares: the native handle and whether it is closed, the
// resolved configuration and binding names, the counters the native core writes in place, the
// clock, and the transport and store options. The facade (lib/core.ts) makes it; the domain table,
// suspensions, the maintenance pass, the outbox, the operator verbs and the delivery service each
// hold a reference to it instead of reaching into the facade.
import { ResolvedConfig, type BindingSpec, type CoreConfig } from '../config.js';
import { codedError } from '../errors.js';
import { checkLogger, type Logger } from '../logger.js';
import { native } from '../native.js';
import type { MessageStore } from '../store/message_store.js';
import type { Transport } from '../transport/transport.js';
import { checkInt, checkKeys, checkObject, MAX_TIME, typeName } from '../validate.js';
import { ArrivalStage } from './arrival_stage.js';
import { OutcomeStage } from './outcome_stage.js';
import type { ClusterCaps } from '../cluster/cluster_caps.js';
import {
  type ClusterOptions,
  type ClusterSettings,
  checkClusterCapped,
  checkClusterOptions,
} from '../cluster/cluster_options.js';
import type { Stats } from './types.js';

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
  /** A pino-compatible logger: connections and outcomes at debug, failures at error. */
  logger?: Logger;
  /** A domain with no message, no connection and no suspension for this long (ms) is forgotten:
   *  its record, settings and name go, and its next message makes it again (default 600000, ten
   *  minutes; 0: at the end of the first pass that finds it idle; Infinity: never). */
  forgetIdleDomainsAfter?: number;
  /** Fleet-wide caps through Redis (the cluster* options): a client, a node name, a lease's life. */
  cluster?: ClusterOptions;
}

const OPTION_KEYS = new Set([
  'bindings',
  'config',
  'clock',
  'transport',
  'store',
  'deliveryTimeout',
  'logger',
  'forgetIdleDomainsAfter',
  'cluster',
]);

/** Checks the constructor's options (the configuration itself is checked by ResolvedConfig). */
function checkOptions(options: MailQueueCoreOptions): void {
  checkKeys(checkObject(options, 'options'), OPTION_KEYS, 'options', 'option');
  if (options.clock !== undefined && typeof options.clock !== 'function') {
    throw new TypeError(`options.clock must be a function, got ${typeName(options.clock)}`);
  }
  const tr = options.transport as unknown as Record<string, unknown> | undefined;
  if (tr !== undefined && (typeof tr !== 'object' || tr === null || typeof tr.open !== 'function')) {
    throw new TypeError('options.transport must be a Transport (an object with open())');
  }
  const st = options.store as unknown as Record<string, unknown> | undefined;
  if (st !== undefined) {
    if (
      typeof st !== 'object' ||
      st === null ||
      !['put', 'get', 'body', 'remove', 'list'].every((m) => typeof st[m] === 'function')
    ) {
      throw new TypeError('options.store must be a MessageStore (put, get, body, remove, list)');
    }
  }
}

export class CoreContext {
  readonly handle: number;
  closed = false;
  /** The resolved configuration: replaced whole by configure() (lib/core/reconfigure.ts). */
  config: ResolvedConfig;
  readonly bindings: readonly string[];
  readonly bindingGroups: readonly string[];
  readonly clock: () => number;
  readonly transport: Transport | undefined;
  readonly store: MessageStore | undefined;
  readonly deliveryTimeout: number;
  readonly logger: Logger | undefined;
  /** The checked cluster option, and the fleet-wide caps made from it (lib/cluster). */
  readonly clusterSettings: ClusterSettings | undefined;
  cluster: ClusterCaps | undefined;
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
  /** Bumped by configure(): an open connection compares it per run and, when it moved, asks the
   *  ledger whether its lease is above a lowered limit (lib/delivery/connection.ts). */
  configEpoch = 0;
  /** Single enqueue() calls held on the JavaScript side until the next call into the core. */
  readonly arrivals: ArrivalStage;
  readonly outcomes: OutcomeStage;
  /** options.forgetIdleDomainsAfter (ms; Infinity: never). */
  readonly forgetIdleDomainsAfter: number;

  constructor(options: MailQueueCoreOptions) {
    checkOptions(options);
    this.deliveryTimeout =
      options.deliveryTimeout === undefined
        ? 300_000
        : checkInt(options.deliveryTimeout, 'options.deliveryTimeout', 1, 86_400_000);
    this.logger = checkLogger(options.logger, 'options.logger');
    const f = options.forgetIdleDomainsAfter;
    if (f !== undefined && typeof f !== 'number')
      throw new TypeError(`options.forgetIdleDomainsAfter must be a number, got ${typeName(f)}`);
    if (f !== undefined && f !== Number.POSITIVE_INFINITY && !(Number.isSafeInteger(f) && f >= 0))
      throw new RangeError(`options.forgetIdleDomainsAfter must be a whole number of ms from 0, or Infinity, got ${f}`);
    this.forgetIdleDomainsAfter = f ?? 600_000;
    this.transport = options.transport;
    this.store = options.store;
    const cfg = new ResolvedConfig(options.bindings, options.config);
    this.clusterSettings = options.cluster === undefined ? undefined : checkClusterOptions(options.cluster);
    checkClusterCapped(cfg, this.clusterSettings);
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
      this.outcomes = new OutcomeStage(this); // maps the core's flight table
    } catch (err) {
      native.destroyCore(this.handle);
      throw err;
    }
    this.arrivals = new ArrivalStage(this);
  }

  /** The native handle, with every staged outcome and arrival handed over; ERR_CLOSED after
   *  close(). */
  live(): number {
    if (this.closed) throw codedError('ERR_CLOSED', 'the core is closed');
    if (this.outcomes.count !== 0 || this.arrivals.count !== 0) this.flushStaged();
    return this.handle;
  }

  /** Hands both stages to the core: the outcomes first (every staged defer was called before
   *  every staged arrival: staging a defer hands the arrivals over first), then the arrivals. */
  flushStaged(): void {
    this.outcomes.flush();
    this.arrivals.flush();
  }

  /** Forgets both stages (the core is being destroyed). */
  dropStaged(): void {
    this.outcomes.drop();
    this.arrivals.drop();
  }

  /** The fixed counters as an object (core.stats()). */
  stats(): Stats {
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

  now(): number {
    const t = this.clock();
    if (typeof t !== 'number' || !(Math.abs(t) <= MAX_TIME))
      throw new TypeError(`options.clock returned ${String(t)}, not a finite number within ±8.64e15 ms`);
    return t;
  }
}
