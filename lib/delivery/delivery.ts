// The delivery layer of a started core: turns grants into connections over the transport, applies
// every message's outcome (a delivery here, on the hot path; transient and permanent failures and
// outcomes per recipient in outcomes.ts) to the core and the store, wakes idle connections when
// mail arrives, and keeps per-domain tallies for the operator views. Every recipient of a message
// ends in exactly one outcome; an id is held by at most one connection at a time (the core's
// in-flight state), so the core never sends a message twice at once.
import type { MessageInfo } from '../core/types.js';
import type { CoreContext } from '../core/core_context.js';
import type { DomainTable } from '../core/domain_table.js';
import type { HostTable } from '../core/host_table.js';
import type { Outbox } from '../core/outbox.js';
import type { Suspensions } from '../core/suspensions.js';
import type { PairSettings } from '../config.js';
import type { Logger } from '../logger.js';
import { native } from '../native.js';
import type { LoadedMessage, MessageStore } from '../store/message_store.js';
import type { DeliveryTarget, Envelope, Transport } from '../transport/transport.js';
import { Connection } from './connection.js';
import type { ConnectionHost, DeliverResult } from './connection_host.js';
import type { BounceEvent } from './events.js';
import { OutcomeApplier } from './outcomes.js';
import { Shedding } from './shedding.js';
import { SiblingIndex } from './sibling_index.js';

/** The message operations of the core (its public hot paths) that the delivery layer calls. */
export interface MessageOps {
  /** Takes for an open connection, from the (domain, binding) its lease names. */
  takeFor(connectionId: number, out: Float64Array): number;
  settle(id: number): void;
  defer(id: number, nextAttempt: number): void;
  untake(id: number): void;
  message(id: number): MessageInfo | undefined;
}

/** The parts of a core the delivery layer works with. */
export interface DeliveryParts {
  readonly ctx: CoreContext;
  readonly messages: MessageOps;
  readonly domains: DomainTable;
  readonly suspensions: Suspensions;
  readonly outbox: Outbox;
  /** The Host scope's host names (they outlive a start()). */
  readonly hosts: HostTable;
  /** A connection closed while its queue may still hold mail: ask for a pass. */
  readonly poke: () => void;
}

export type { BounceEvent, DeferredEvent, DeliveredEvent, DomainTally } from './events.js';

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class Delivery implements ConnectionHost {
  readonly #connections = new Set<Connection>();
  readonly #running = new Set<Promise<void>>();
  readonly #waiters = new Map<string, Array<(mail: boolean) => void>>();
  readonly #sleepers = new Set<() => void>();
  readonly #shedding: Shedding;
  readonly #siblings: SiblingIndex;
  #stopping = false;
  readonly #ctx: CoreContext;
  readonly #core: MessageOps;
  readonly #domains: DomainTable;
  readonly #suspensions: Suspensions;
  readonly #outbox: Outbox;
  readonly #poke: () => void;
  readonly #outcomes: OutcomeApplier;
  readonly #hosts: HostTable;

  constructor(
    parts: DeliveryParts,
    readonly transport: Transport,
    readonly store: MessageStore,
    private readonly sendTimeout: number,
  ) {
    this.#ctx = parts.ctx;
    this.#core = parts.messages;
    this.#domains = parts.domains;
    this.#suspensions = parts.suspensions;
    this.#outbox = parts.outbox;
    this.#poke = parts.poke;
    this.#hosts = parts.hosts;
    this.#siblings = new SiblingIndex(parts.ctx, parts.domains, transport);
    this.#shedding = new Shedding(parts.ctx);
    const core = parts.messages;
    this.#outcomes = new OutcomeApplier({
      ctx: parts.ctx,
      outbox: parts.outbox,
      store,
      settle: (id) => core.settle(id),
      defer: (id, at) => core.defer(id, at),
      attempts: (id) => core.message(id)?.attempts,
      settings: (domain, binding) => this.#settings(domain, binding),
    });
  }

  get logger(): Logger | undefined {
    return this.#ctx.logger;
  }

  get connections(): ReadonlySet<Connection> {
    return this.#connections;
  }

  /** A grant from a pass: a new connection. */
  onGrant(connectionId: number, domain: string, binding: string): void {
    if (this.#stopping) {
      native.releaseConnection(this.#ctx.live(), connectionId);
      return;
    }
    const c = new Connection(this, connectionId, domain, binding, this.#domains.bindingSlot(binding, 'binding'));
    this.#connections.add(c);
    const p = c.run().catch((err) => {
      // A core closed under a running connection ends it; that is not worth a report.
      if ((err as { code?: string }).code !== 'ERR_CLOSED') this.#outbox.reportError(err);
    });
    this.#running.add(p);
    void p.finally(() => this.#running.delete(p));
  }

  /** Stops taking new work: idle connections close, busy ones finish their message and close. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const list of this.#waiters.values()) for (const w of list.splice(0)) w(false);
    this.#waiters.clear();
    for (const wake of [...this.#sleepers]) wake();
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }

  /** `count` messages arrived for (domain, binding): wake up to that many idle connections there;
   *  returns how many woke. */
  mailArrived(domain: string, binding: string, count = 1): number {
    const key = `${domain}\0${binding}`;
    const list = this.#waiters.get(key);
    if (!list) return 0;
    let woke = 0;
    while (woke < count && list.length > 0) {
      list.shift()!(true);
      woke++;
    }
    if (list.length === 0) this.#waiters.delete(key);
    return woke;
  }

  /** configure() applied a new configuration: every idle connection looks again (one above a
   *  lowered limit closes; the others go back to waiting). */
  reconfigured(): void {
    for (const list of this.#waiters.values()) for (const w of list.splice(0)) w(true);
    this.#waiters.clear();
    for (const wake of [...this.#sleepers]) wake();
  }

  /** After a pass (delayed mail may have become due): wake idle connections that have mail. */
  afterPass(): void {
    for (const key of [...this.#waiters.keys()]) {
      const [domain, binding] = key.split('\0');
      this.mailArrived(domain, binding, this.#queued(domain, binding));
    }
  }

  // --- ConnectionHost ---------------------------------------------------------------------------

  now(): number {
    return this.#ctx.now();
  }

  stopping(): boolean {
    return this.#stopping;
  }

  batchSize(domain: string, binding: string): number {
    // A message throttle is checked per message; otherwise a small run per take (docs/architecture.md §9).
    return this.#settings(domain, binding).messageThrottle >= 0 ? 1 : 8;
  }

  maxDeliveries(domain: string, binding: string): number {
    return this.#settings(domain, binding).maxDeliveries;
  }

  idleTimeoutMs(domain: string, binding: string): number {
    return this.#settings(domain, binding).idleTimeoutMs;
  }

  sendTimeoutMs(): number {
    return this.sendTimeout;
  }

  takeFor(connectionId: number, out: Float64Array): number {
    return this.#core.takeFor(connectionId, out);
  }

  target(connectionId: number, domain: string, binding: string, bindingSlot: number): DeliveryTarget {
    const target: DeliveryTarget = { domain, binding, bindingSlot };
    // The Host scope: the session connects only where the ledger has room (decision 47).
    return this.#hosts.active ? Object.assign(target, this.#hosts.gate(connectionId, this.#index(domain))) : target;
  }

  queued(domain: string, binding: string): number {
    return this.#queued(domain, binding);
  }

  messageAllowedAt(domain: string, binding: string): number {
    return native.messageNextAllowedAt(this.#ctx.live(), this.#index(domain), this.#slot(binding), this.#ctx.now());
  }

  sibling(domain: string, binding: string, mxKey: string | undefined): string | undefined {
    if (mxKey === undefined || !this.#settings(domain, binding).migrate) return undefined;
    const fits = (other: string) =>
      other !== domain &&
      this.#domains.byName.has(other) &&
      this.#queued(other, binding) > 0 &&
      this.#settings(other, binding).migrate &&
      !this.#suspensions.deliverySuspended(this.#index(other), this.#slot(binding));
    return this.#siblings.find(domain, mxKey, fits);
  }

  /** The core forgot a domain: the sibling index lets go of it. */
  forgetDomain(name: string): void {
    this.#siblings.forget(name);
  }

  configEpoch(): number {
    return this.#ctx.configEpoch;
  }

  overLimit(connection: Connection): boolean {
    return this.#shedding.shouldClose(connection);
  }

  suspended(domain: string, binding: string): boolean {
    return this.#suspensions.deliverySuspended(this.#index(domain), this.#slot(binding));
  }

  migrate(connectionId: number, domain: string): boolean {
    return native.migrateConnection(this.#ctx.live(), connectionId, this.#index(domain));
  }

  waitForMail(domain: string, binding: string, timeoutMs: number): Promise<boolean> {
    if (this.#stopping) return Promise.resolve(false);
    const key = `${domain}\0${binding}`;
    return new Promise<boolean>((resolve) => {
      let list = this.#waiters.get(key);
      if (!list) this.#waiters.set(key, (list = []));
      const waiter = (mail: boolean) => {
        clearTimeout(timer);
        resolve(mail);
      };
      const timer = setTimeout(() => {
        const l = this.#waiters.get(key);
        const i = l ? l.indexOf(waiter) : -1;
        if (l && i >= 0) l.splice(i, 1);
        if (l && l.length === 0) this.#waiters.delete(key);
        resolve(false);
      }, timeoutMs);
      list.push(waiter);
    });
  }

  sleep(ms: number): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#sleepers.add(wake);
    });
  }

  load(id: number): LoadedMessage | undefined | Promise<LoadedMessage | undefined> {
    const store = this.store;
    return store.load ? store.load(id) : this.#loadByParts(id);
  }

  /** A store without load(): get() and body(). */
  async #loadByParts(id: number): Promise<LoadedMessage | undefined> {
    const meta = await this.store.get(id);
    if (!meta) return undefined;
    return { envelope: meta.envelope, body: await this.store.body(id) };
  }

  missing(id: number, domain: string, binding: string): void {
    try {
      // Nothing stored to keep readable: settled at once, then announced.
      this.#core.settle(id);
      this.#outbox.tally(domain).bounced++;
      const response = 'the message is not in the store';
      this.#outbox.emitSafely('bounce', { id, domain, binding, reason: 'missing', response } satisfies BounceEvent);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_CLOSED') this.#outbox.reportError(err);
    }
  }

  apply(
    id: number,
    domain: string,
    binding: string,
    outcome: DeliverResult,
    envelope?: Envelope,
  ): Promise<void> | undefined {
    if (outcome.kind !== 'delivered' || outcome.refused !== undefined)
      return this.#outcomes.apply(id, domain, binding, outcome, envelope);
    // The hot path. The store forgets the message before the core settles it (a settled id may
    // be submitted again, and a removal still pending would then delete the new message); the
    // connection does not wait for either: its next message is already on the wire.
    // A store that can remove at once (removeNow) makes no promise for it: the message is then
    // settled in this same call.
    const store = this.store;
    let removing: Promise<void> | undefined;
    try {
      removing = store.removeNow ? store.removeNow(id) : store.remove(id);
    } catch (err) {
      removing = Promise.reject(err);
    }
    const to = envelope?.to;
    if (removing === undefined) {
      this.#outcomes.delivered(id, domain, binding, outcome.response, to);
      return undefined;
    }
    return removing.then(
      () => this.#outcomes.delivered(id, domain, binding, outcome.response, to),
      (err) => {
        // The message is done either way; a store that cannot remove it will offer it again after
        // a restart (a duplicate delivery, which SMTP tolerates), so report and go on.
        this.#outbox.reportError(err);
        this.#outcomes.delivered(id, domain, binding, outcome.response, to);
      },
    );
  }

  opened(connectionId: number, domain: string, binding: string, host: string | undefined): void {
    if (this.#outbox.listens('connectionOpened'))
      this.#outbox.emitSafely('connectionOpened', { connectionId, domain, binding, host });
  }

  async openFailed(connectionId: number, domain: string, binding: string, err: unknown): Promise<void> {
    // Every host of the domain was at its cap (decision 47): no attempt failed, nothing to retry
    // or rest; the lease goes back and a later pass grants within the caps the ledger now knows.
    if ((err as { code?: unknown } | null)?.code === 'ERR_HOST_CAP') return;
    const t = this.#outbox.tally(domain);
    t.connectFailures++;
    const permanent = typeof err === 'object' && err !== null && (err as { permanent?: unknown }).permanent === true;
    if (this.#outbox.listens('connectionFailed'))
      this.#outbox.emitSafely('connectionFailed', { connectionId, domain, binding, reason: message(err), permanent });
    // Every connection of one pass opens at once; when the first failure has already put the pair
    // to rest, the others add no further message failures (one failure per round, not per grant).
    if (this.#suspensions.cooling(this.#index(domain), this.#slot(binding))) return;
    const text = `connection failed: ${message(err)}`;
    const out = new Float64Array(64);
    if (permanent) {
      // The domain accepts no mail (null MX, no such domain): every queued message bounces.
      let n: number;
      while ((n = this.#core.takeFor(connectionId, out)) > 0) {
        for (let i = 0; i < n; i++)
          await this.#outcomes.apply(out[i], domain, binding, { kind: 'permanent', response: text });
      }
      return;
    }
    // Momentum's CONN_ACTION_REQUEUE1: one message takes the failure (and its retry schedule), so a
    // domain whose MX is down makes progress towards expiry; then the pair rests for
    // host_failure_retry before the next connection attempt.
    const n = this.#core.takeFor(connectionId, out.subarray(0, 1));
    if (n === 1) await this.#outcomes.apply(out[0], domain, binding, { kind: 'transient', response: text });
    this.#suspensions.cool(
      this.#index(domain),
      this.#slot(binding),
      this.now() + this.#settings(domain, binding).hostFailureRetryMs,
    );
  }

  untake(id: number): void {
    this.#core.untake(id);
  }

  release(connectionId: number): void {
    native.releaseConnection(this.#ctx.live(), connectionId);
  }

  /** releaseConnection() of a lease this layer runs a connection on: asks that connection to close
   *  (it releases the lease itself, after its session); false when no connection here holds it. */
  closeConnection(connectionId: number): boolean {
    for (const c of this.#connections) {
      if (c.connectionId !== connectionId) continue;
      c.requestClose();
      // Wake it if it waits: for mail on its pair (a spurious wake costs the others there one
      // look at an empty queue), or out a message throttle.
      this.mailArrived(c.domain, c.binding, Infinity);
      for (const wake of [...this.#sleepers]) wake();
      return true;
    }
    return false;
  }

  closed(connection: Connection): void {
    this.#connections.delete(connection);
    this.#shedding.gone(connection);
    try {
      if (!this.#stopping && this.#queued(connection.domain, connection.binding) > 0) this.#poke();
    } catch {
      // The core was closed: nothing to maintain.
    }
  }

  // --- the core's books, by name ------------------------------------------------------------------

  #index(domain: string): number {
    return this.#domains.known(domain);
  }

  #slot(binding: string): number {
    return this.#domains.bindingSlot(binding, 'binding');
  }

  #queued(domain: string, binding: string): number {
    return native.activeSize(this.#ctx.live(), this.#index(domain), this.#slot(binding));
  }

  #settings(domain: string, binding: string): PairSettings {
    return this.#domains.pair(this.#index(domain), this.#slot(binding));
  }
}
