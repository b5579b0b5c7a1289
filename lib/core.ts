// MailQueueCore: the public API, a facade. It validates and shapes; the native core (lib/native.ts)
// holds the queues and the connection ledger and runs the default __mail_queue_maintain. The
// message hot paths (enqueue ... untake) call native directly here; everything else is one line
// that hands over to the part that holds it (docs/architecture.md §2):
//   lib/core/core_context.ts      the native handle, configuration, counters and clock they share
//   lib/core/domain_table.ts      domains by name and index, records, views, pair settings, bindings
//   lib/core/suspensions.ts       operator and configuration suspensions, connect-failure cool-downs
//   lib/core/maintenance_pass.ts  the hook points and the passes that run them
//   lib/core/outbox.ts            grants, expiries, events, error reports, delivery tallies
//   lib/core/operator_verbs.ts    flush, fail, retry, summary, domain view, queue listing, message()
//   lib/core/reconfigure.ts       configure(): a new configuration applied to the running core
//   lib/delivery/service.ts       start, stop, submit, recover, and the delivery layer under them
import { EventEmitter } from 'node:events';

import { CoreContext } from './core/core_context.js';
import { DomainTable } from './core/domain_table.js';
import { InFlight } from './core/in_flight.js';
import { Intake } from './core/intake.js';
import type { CoreHooks, MaintainOptions, MaintainResult, PassResult } from './core/maintenance_pass.js';
import { MaintenancePass } from './core/maintenance_pass.js';
import { OperatorVerbs, type DomainView, type ListQueueOptions, type Summary } from './core/operator_verbs.js';
import { type CoreEvents, Outbox, type Grant } from './core/outbox.js';
import { type Qshape, type QshapeOptions, qshape } from './core/qshape.js';
import { Suspensions } from './core/suspensions.js';
import { reconfigure } from './core/reconfigure.js';
import type { CoreConfig } from './config.js';
import type { DomainRef, Message, MessageInfo, Stats } from './core/types.js';
import { DeliveryService } from './delivery/service.js';
import type { BodyInput } from './delivery/body_input.js';
import type { Registry } from 'prom-client';
import { createMetrics, type MetricsOptions } from './admin/metrics.js';
import { IdAllocator } from './core/id_allocator.js';
import { IdleDomains } from './core/idle_domains.js';
import { codedError } from './errors.js';
import { GrantList } from './grant_list.js';
import { native } from './native.js';
import type { StoredMessage } from './store/message_store.js';
import { checkDomainName, checkInt, checkTypedArray } from './validate.js';
import type { ActiveQueue, DomainRecord } from './views.js';

import type { MailQueueCoreOptions } from './core/core_context.js';
// The types of this API are exported from lib/index.ts, from the modules that define them.

// A core dropped without close() is freed when it is collected.
const finalizer = new FinalizationRegistry<number>((handle) => {
  native.destroyCore(handle);
});

export class MailQueueCore extends EventEmitter<CoreEvents> {
  readonly hooks: CoreHooks;
  /** Counters kept current by the native core, readable without a call: see counterIndex. */
  readonly counters: Float64Array;
  /** Slot of each counter in `counters` (per-binding ones as connections:<binding>, active:<binding>). */
  readonly counterIndex: Readonly<Record<string, number>>;
  readonly bindings: readonly string[];
  readonly bindingGroups: readonly string[];

  readonly #ctx: CoreContext;
  readonly #domains: DomainTable;
  readonly #suspensions: Suspensions;
  readonly #outbox: Outbox;
  readonly #pass: MaintenancePass;
  readonly #verbs: OperatorVerbs;
  readonly #intake: Intake;
  readonly #inFlight: InFlight;
  readonly #ids: IdAllocator;
  readonly #idle: IdleDomains;
  #metrics: Registry | undefined;
  readonly #service: DeliveryService;

  constructor(options: MailQueueCoreOptions = {}) {
    super();
    const ctx = new CoreContext(options);
    this.#ctx = ctx;
    this.#ids = new IdAllocator(ctx);
    this.bindings = ctx.bindings;
    this.bindingGroups = ctx.bindingGroups;
    this.counters = ctx.counters;
    this.counterIndex = ctx.counterIndex;
    finalizer.register(this, ctx.handle, this);

    this.#domains = new DomainTable(ctx, (name, b) => this.#suspensions.operatorSuspended(name, b));
    this.#outbox = new Outbox(ctx, this, this.#domains);
    this.#suspensions = new Suspensions(ctx, this.#domains, () => this.#service.poke());
    this.#service = new DeliveryService(ctx, this, this.#domains, this.#suspensions, this.#outbox);
    this.#idle = new IdleDomains(ctx, this.#domains, ctx.forgetIdleDomainsAfter);
    this.#pass = new MaintenancePass(ctx, this.#domains, this.#outbox, this, (now) => {
      this.#idle.sweep(now);
      this.#service.afterPass();
    });
    const service = this.#service;
    this.#verbs = new OperatorVerbs(ctx, this.#domains, this.#suspensions, this.#outbox, {
      stats: () => this.stats(),
      get started() {
        return service.started;
      },
      mailArrived: (d, b, count) => service.mailArrived(d, b, count),
    });
    this.#intake = new Intake(ctx, this.#domains, this.#outbox, service, () => this.#pass.busy);
    this.#inFlight = new InFlight(ctx, this.#outbox, service, this.#domains, () => this.#pass.busy);
    this.hooks = this.#pass.hooks;
  }

  // --- lifetime -------------------------------------------------------------------------------

  /** Frees the native core. Calls after close() throw ERR_CLOSED; close() again does nothing. */
  close(): void {
    const ctx = this.#ctx;
    if (ctx.closed) return;
    if (this.#pass.busy) throw codedError('ERR_REENTRANT', 'close() was called from inside a maintenance hook');
    ctx.closed = true;
    ctx.dropStaged();
    this.#service.halt();
    this.#suspensions.clear();
    finalizer.unregister(this);
    native.destroyCore(ctx.handle);
  }

  get closed(): boolean {
    return this.#ctx.closed;
  }

  #live(): number {
    return this.#ctx.live();
  }

  // --- messages -------------------------------------------------------------------------------

  /** Queues one message: active when nextAttempt <= now, else delayed. A new id above the
   *  highestId counter is staged and reaches the native core with the next call into it
   *  (lib/core/intake.ts, decision 30). */
  enqueue(message: Message): void {
    this.#intake.enqueue(message);
  }

  /**
   * Queues many messages for one (domain, binding) in one native call: ids (safe integers) in a
   * Float64Array, optional priorities (0 or 1) in a Uint8Array of the same length, and optional
   * next-attempt times (ms) in a Float64Array of the same length (each message active when its
   * time is not after now, else delayed; without them, all are due now). All or nothing.
   */
  enqueueBatch(
    domain: DomainRef,
    binding: string | undefined,
    ids: Float64Array,
    priorities?: Uint8Array,
    nextAttempts?: Float64Array,
  ): void {
    this.#intake.enqueueBatch(domain, binding, ids, priorities, nextAttempts);
  }

  /**
   * Queues many arrivals for any pairs in one native call: the fastest way in for mail that an MTA
   * gathers over a moment (one event-loop turn, a pipelined SMTP session, a spool scan). Entry i is
   * the message ids[i] for domains[i] (a name or a DomainRecord), binding slot bindings[i] (a
   * Uint8Array of slots; absent: slot 0) and priority priorities[i] (0 or 1; absent: 0); every one
   * is due now and expires after its pair's messageExpiration. All or nothing: a bad entry or a
   * duplicate id refuses the whole call, the error names the first bad domains[i], bindings[i],
   * priorities[i] or ids[i], and nothing is queued (no domain is made).
   */
  enqueueMany(
    domains: readonly DomainRef[],
    bindings: Uint8Array | undefined,
    ids: Float64Array,
    priorities?: Uint8Array,
  ): void {
    this.#intake.enqueueMany(domains, bindings, ids, priorities);
  }

  /**
   * A new message id: a safe integer above every id this core has held or handed out, made from
   * the clock (ms since 2020 * 4096, plus a sequence) so that ids keep rising across restarts. For
   * an MTA whose own message names are not numbers (UUIDs): rising ids are what the staged
   * arrival path takes (docs/api.md, decision 32).
   */
  newId(): number {
    return this.#ids.next();
  }

  /** Removes a queued (active or delayed) message; false when the id is unknown. A message in
   *  flight cannot be cancelled (ERR_IN_FLIGHT): it ends with its delivery's outcome. With a store,
   *  a cancelled message is removed from it too (in the background; a failure is an 'error'
   *  event), so recover() does not bring it back. */
  cancel(id: number): boolean {
    return this.#inFlight.cancel(id);
  }

  /** cancel() for many messages in one native call (a recalled campaign, an operator's list):
   *  returns how many were cancelled; unknown ids (and an id repeated in the batch) are skipped,
   *  as cancel() returns false for them. An id in flight (ERR_IN_FLIGHT) or not an id refuses the
   *  whole batch, the error names the first bad ids[i], and nothing changes. */
  cancelMany(ids: Float64Array): number {
    return this.#inFlight.cancelMany(ids);
  }

  /** Where a message is, or undefined when the core does not hold it. */
  message(id: number): MessageInfo | undefined {
    return this.#verbs.message(id);
  }

  /**
   * Takes up to k messages from the head of (domain, binding)'s active queue into flight, for a
   * connection to deliver. Each must end with settle(), defer() or untake(). Expired messages are
   * bounced instead of taken.
   */
  take(domain: DomainRef, binding: string | number, k = 1): number[] {
    return this.#inFlight.take(domain, binding, k);
  }

  /** take() into a caller-owned buffer (k = out.length); returns how many were taken. */
  takeInto(domain: DomainRef, binding: string | number, out: Float64Array): number {
    return this.#inFlight.takeInto(domain, binding, out);
  }

  /** takeInto() for an open connection, by its id: its lease names the (domain, binding), the
   *  domain it migrated to if it did (no name to look up). ERR_UNKNOWN_CONNECTION when no
   *  connection with that id is open. */
  takeFor(connectionId: number, out: Float64Array): number {
    const h = this.#live();
    checkInt(connectionId, 'connectionId', 1, Number.MAX_SAFE_INTEGER);
    checkTypedArray(out, Float64Array, 'Float64Array', 'out');
    const n = native.takeFor(h, connectionId, this.#ctx.now(), out);
    this.#outbox.drainExpired();
    return n;
  }

  /** The core's clock (options.clock, default Date.now): ms since the epoch. */
  now(): number {
    return this.#ctx.now();
  }

  /** A message in flight reached its final outcome (delivered, or bounced by the caller). */
  settle(id: number): void {
    this.#inFlight.settle(id);
  }

  /** settle() for many messages in one native call (for a caller that delivers in batches). All
   *  must be in flight; on a refusal nothing changes and the error names the first bad entry. */
  settleMany(ids: Float64Array): void {
    this.#inFlight.settleMany(ids);
  }

  /** A message in flight failed transiently: it waits in the delayed queue until nextAttempt (it
   *  expires instead when nextAttempt is at or after its expiry). */
  defer(id: number, nextAttempt: number): void {
    this.#inFlight.defer(id, nextAttempt);
  }

  /** defer() for many messages to the same nextAttempt, in one native call. All must be in
   *  flight; on a refusal nothing changes and the error names the first bad entry. */
  deferMany(ids: Float64Array, nextAttempt: number): void {
    this.#inFlight.deferMany(ids, nextAttempt);
  }

  /** A message in flight was not attempted: it goes back to the position it was taken from. */
  untake(id: number): void {
    this.#inFlight.untake(id);
  }

  // --- delivery (lib/delivery/service.ts) ------------------------------------------------------

  /**
   * Starts delivery: the maintainer runs passes on its own (every delayedQueueScanInterval, at the
   * next due retry, and soon after mail arrives), and every grant becomes a connection over the
   * transport. Needs the transport and store options.
   */
  start(): void {
    this.#service.start();
  }

  /** Stops the maintainer; idle connections close, busy ones finish their message and close. */
  stop(): Promise<void> {
    return this.#service.stop();
  }

  get started(): boolean {
    return this.#service.started;
  }

  /** Stores a message durably (store option), then queues it. The body: a Buffer, a Readable
   *  stream or { path } (docs/delivery-api.md#bodies). */
  submit(message: StoredMessage, body: BodyInput): Promise<void> {
    return this.#service.submit(message, body);
  }

  /**
   * Queues again every message the store holds that the core does not (after a restart). Returns
   * how many were queued. Expiry times are kept, and so is the retry schedule the store recorded
   * (attempts made and the next attempt time, MessageStore.setRetryState): a message deferred
   * before the restart waits for its next attempt and keeps counting towards maxRetries.
   */
  recover(onProgress?: (queued: number) => void): Promise<number> {
    return this.#service.recover(onProgress);
  }

  // --- operator actions and views (lib/core/operator_verbs.ts) --------------------------------

  /** flush domain: every delayed message of the domain becomes due now. Returns how many. */
  flush(domain: string): number {
    return this.#verbs.flush(domain);
  }

  /** fail domain: bounces every queued (active and delayed) message of the domain ('bounce' events
   *  with reason 'failed'); messages in flight end with their delivery. Returns how many. */
  fail(domain: string): number {
    return this.#verbs.fail(domain);
  }

  /** message retry: a delayed message becomes due now. False when it is not delayed. */
  retry(id: number): boolean {
    return this.#verbs.retry(id);
  }

  /** The whole core at a glance: counts, connections, and delivery totals since start. */
  summary(): Summary {
    return this.#verbs.summary();
  }

  /** One domain: connections, active and delayed per binding, and its delivery tallies. */
  domainView(domain: string): DomainView {
    return this.#verbs.domainView(domain);
  }

  /** A listing of one queue: the active queue of (domain, binding) or the domain's delayed queue. */
  listQueue(domain: string, options: ListQueueOptions = {}): MessageInfo[] {
    return this.#verbs.listQueue(domain, options);
  }

  // --- domains and queues (lib/core/domain_table.ts) ------------------------------------------

  hasDomain(name: string): boolean {
    this.#live();
    return this.#domains.byName.has(checkDomainName(name, 'name'));
  }

  /** Names of every domain the core holds (seen and not forgotten), in the order of their slots. */
  domains(): string[] {
    this.#live();
    return this.#domains.names();
  }

  /** Forgets every domain idle now (no message, no connection, no suspension) however short its
   *  idle time, as forgetIdleDomainsAfter does after a while; returns how many (docs/api.md). */
  forgetIdleDomains(): number {
    return this.#idle.forgetAll();
  }

  /** Connections of every domain, in one native call: entry d is the domain `domains()[d]`. Into
   *  `out` when it has room for every domain, else into a new array. */
  connectionsByDomain(out?: Float64Array): Float64Array {
    return this.#domains.connectionsByDomain(out);
  }

  /** The queue by domain and age, busiest domains first (Postfix's qshape; lib/core/qshape.ts). */
  qshape(options?: QshapeOptions): Qshape {
    return qshape(this.#ctx, this.#domains, options);
  }

  /** The live DomainRecord of a domain that has had mail (ERR_UNKNOWN_DOMAIN otherwise). */
  domain(name: string): DomainRecord {
    this.#live();
    return this.#domains.records[this.#domains.known(name)];
  }

  /** The live active queue of (domain, binding). */
  activeQueue(domain: string, binding: string | number): ActiveQueue {
    this.#live();
    const d = this.#domains.known(domain);
    return this.#domains.queue(d, this.#domains.bindingSlot(binding, 'binding'));
  }

  // --- suspensions (lib/core/suspensions.ts) --------------------------------------------------

  /** Stops delivery for a domain (all bindings, or one): no new connections, and open ones close
   *  after their current message. Mail stays queued. Applies to a domain that has not been seen
   *  yet as soon as its first message arrives. */
  suspend(domain: string, binding?: string | number): void {
    this.#suspensions.set(domain, binding, true);
  }

  resume(domain: string, binding?: string | number): void {
    this.#suspensions.set(domain, binding, false);
  }

  /** Stops delivery for (domain, binding) for `durationMs` (as suspend(), and lifted by itself; 0
   *  lifts it now). For policies (response rules): separate from suspend()/resume(). False when
   *  the domain has no record (no mail seen). */
  pause(domain: string, binding: string | number, durationMs: number): boolean {
    return this.#suspensions.pauseFor(domain, binding, durationMs);
  }

  /** Stops new connections for a binding on every domain, now and for domains seen later. */
  suspendBinding(binding: string | number): void {
    this.#suspensions.setBinding(binding, true);
  }

  resumeBinding(binding: string | number): void {
    this.#suspensions.setBinding(binding, false);
  }

  // --- configuration (lib/core/reconfigure.ts) ------------------------------------------------

  /** Applies a new configuration (the constructor's `config` option) to the running core: every
   *  domain's limits resolve again, connections above a lowered limit finish their message and
   *  close, throttles keep their history, operator suspensions stay. Checked whole first: a bad
   *  key refuses it all (the error names the key and scope) and nothing changes. */
  configure(config: CoreConfig): void {
    reconfigure(this.#ctx, this.#domains, this.#suspensions, this.#service, this.#pass.busy, config);
  }

  // --- maintenance (lib/core/maintenance_pass.ts) ---------------------------------------------

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
    return this.#pass.maintain(now, options);
  }

  /** Maintenance of one domain, as Momentum's _mail_queue_maintain_domain(dr, now, goalsz, reserve).
   *  Without `reserve`, each binding gets the maintainer's rule (0 for a pair with no connection). */
  maintainDomain(domain: string, options: { now?: number; goalsz?: number; reserve?: number } = {}): MaintainResult {
    return this.#pass.maintainDomain(domain, options);
  }

  /**
   * Opens up to `count` more connections for (domain, binding), clipped by every limit, as the
   * default does; for providers that open connections themselves. Returns the grants.
   */
  openConnections(
    domain: string,
    binding: string | number,
    count: number,
    options: { now?: number; reserve?: number } = {},
  ): Grant[] {
    return this.#pass.openConnections(domain, binding, count, options);
  }

  /** The native default __mail_queue_maintain (with connection_goal hooks), for providers that
   *  wrap it, as Momentum exports __mail_queue_maintain. */
  defaultMailQueueMaintain(
    dr: DomainRecord,
    bindingSlot: number,
    sl: ActiveQueue,
    now: number,
    goalsz: number,
    reserve: number,
  ): number {
    return this.#pass.defaultMailQueueMaintain(dr, bindingSlot, sl, now, goalsz, reserve);
  }

  /** A reusable list for maintain(now, { into }): the pass writes its grants there as numbers,
   *  with no Grant object each (see GrantList). */
  grantList(): GrantList {
    this.#live();
    const records = this.#domains.records;
    return new GrantList(this, (d) => records[d].name, this.bindings);
  }

  /** Gives a connection's leases back (every count it held). A connection the delivery layer
   *  runs is asked to close instead: it sends nothing more after the message in progress, puts
   *  back what it holds, and gives its lease back once its session is closed (so the lease counts
   *  while the session lives and no limit is passed). */
  releaseConnection(connectionId: number): void {
    const h = this.#live();
    checkInt(connectionId, 'connectionId', 1, Number.MAX_SAFE_INTEGER);
    if (this.#service.closeConnection(connectionId)) return;
    native.releaseConnection(h, connectionId);
  }

  stats(): Stats {
    this.#live();
    return this.#ctx.stats();
  }

  /**
   * The core's Prometheus metrics (prom-client): queued messages by state, connections in all and
   * by binding, the busiest domains' connections (top N plus "other"), connections opened and
   * released, outcomes, bounces and deferrals by class, pass durations, event-loop delay. The same
   * Registry every call; `options` count at the first (docs/api.md#metrics). Serve it with
   * `registry.metrics()` or merge it into the MTA's own (`Registry.merge`).
   */
  metrics(options?: MetricsOptions): Registry {
    this.#live();
    this.#metrics ??= createMetrics(this, options);
    return this.#metrics;
  }

  /** The native core's own consistency check (queues, message table, ledger); for tests. */
  checkInvariants(): boolean {
    return native.checkInvariants(this.#live());
  }
}
