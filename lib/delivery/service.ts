// The delivery service of one core: start() and stop() of the maintainer and the delivery layer,
// submit() (store, then queue) and recover() (queue again what the store holds). While started, it
// is where the rest of the core reports that mail became due (idle connections wake, or a pass is
// asked for), that a pass ended, and that an operator released a connection the layer runs.
import { Readable } from 'node:stream';

import type { CoreContext } from '../core/core_context.js';
import type { DomainTable } from '../core/domain_table.js';
import { HostTable } from '../core/host_table.js';
import type { Outbox } from '../core/outbox.js';
import type { Suspensions } from '../core/suspensions.js';
import type { Message, Stats } from '../core/types.js';
import { ClusterCaps } from '../cluster/cluster_caps.js';
import { codedError } from '../errors.js';
import { native, Place } from '../native.js';
import type { StoredMessage } from '../store/message_store.js';
import { checkDomainName, checkId, checkObject } from '../validate.js';
import { type BodyInput, checkBodyInput, putBodyStream } from './body_input.js';
import { Delivery, type MessageOps } from './delivery.js';
import { Maintainer } from './maintainer.js';

/** What the service calls on the facade. */
export interface ServiceHost extends MessageOps {
  enqueue(message: Message): void;
  maintain(): { opened: number };
  stats(): Stats;
}

export class DeliveryService {
  #delivery: Delivery | undefined;
  #maintainer: Maintainer | undefined;
  /** The Host scope's host names, for as long as the core lives (decision 47). */
  readonly #hosts: HostTable;

  constructor(
    private readonly ctx: CoreContext,
    private readonly core: ServiceHost,
    private readonly domains: DomainTable,
    private readonly suspensions: Suspensions,
    private readonly outbox: Outbox,
  ) {
    // The fleet-wide caps' lease loop lives with the core (lib/cluster), started or not.
    ctx.cluster = ClusterCaps.make(
      core,
      ctx,
      domains,
      () => this.poke(),
      (err) => outbox.reportError(err),
    );
    this.#hosts = new HostTable(ctx);
    domains.onForget.push((name, d) => {
      this.#hosts.forget(d);
      ctx.cluster?.domainForgotten(d);
      this.#delivery?.forgetDomain(name);
      if (outbox.listens('domainForgotten')) outbox.emitSafely('domainForgotten', { domain: name });
    });
  }

  get started(): boolean {
    return this.#maintainer?.running ?? false;
  }

  /** See MailQueueCore.start. */
  start(): void {
    const ctx = this.ctx;
    ctx.live();
    if (this.#maintainer?.running) return;
    if (!ctx.transport || !ctx.store) {
      throw codedError('ERR_CONFIG', 'start() needs the transport and store options');
    }
    const delivery = new Delivery(
      {
        ctx,
        messages: this.core,
        domains: this.domains,
        suspensions: this.suspensions,
        outbox: this.outbox,
        hosts: this.#hosts,
        poke: () => this.poke(),
      },
      ctx.transport,
      ctx.store,
      ctx.deliveryTimeout,
    );
    this.#delivery = delivery;
    this.#hosts.start();
    this.outbox.taker = delivery;
    this.#maintainer = new Maintainer(
      {
        runPass: () => this.#maintainerPass(),
        now: () => ctx.clock(),
        report: (err) => this.outbox.reportError(err),
      },
      ctx.config.scanIntervalMs(),
    );
    this.#maintainer.start();
  }

  /** See MailQueueCore.stop. */
  async stop(): Promise<void> {
    const maintainer = this.#maintainer;
    const delivery = this.#delivery;
    maintainer?.stop();
    if (delivery) await delivery.stop();
    // A start() during the await made new ones: leave those alone.
    if (this.#maintainer === maintainer) this.#maintainer = undefined;
    if (this.#delivery === delivery) {
      this.#delivery = undefined;
      if (this.outbox.taker === delivery) this.outbox.taker = undefined;
    }
  }

  /** The core is closing: the maintainer stops, connections are told to stop (not awaited). */
  halt(): void {
    this.#maintainer?.stop();
    void this.#delivery?.stop();
    this.ctx.cluster?.close();
  }

  /** configure() applied a new configuration: the maintainer takes its scan interval, idle
   *  connections look again (one above a lowered limit closes), and a pass runs soon (a raised
   *  limit may open connections). */
  reconfigured(): void {
    this.#maintainer?.setScanInterval(this.ctx.config.scanIntervalMs());
    this.#delivery?.reconfigured();
    this.poke();
  }

  /** Asks for a pass soon. */
  poke(): void {
    this.#maintainer?.poke();
  }

  /** Asks for a pass at time t (a retry or a delayed arrival becomes due). */
  scheduleAt(t: number): void {
    this.#maintainer?.scheduleAt(t);
  }

  // Mail became due for (d, b): wake as many idle connections there as there are new messages, and
  // ask for a pass when that is not enough.
  mailArrived(d: number, b: number, count = 1): void {
    const delivery = this.#delivery;
    if (!delivery) return;
    if (delivery.mailArrived(this.domains.records[d].name, this.ctx.bindings[b], count) < count)
      this.#maintainer?.poke();
  }

  afterPass(): void {
    this.#delivery?.afterPass();
  }

  /** releaseConnection() of a lease a connection of this layer runs: that connection closes
   *  itself; false when none holds it. */
  closeConnection(connectionId: number): boolean {
    return this.#delivery?.closeConnection(connectionId) ?? false;
  }

  /** See MailQueueCore.submit. */
  async submit(message: StoredMessage, body: BodyInput): Promise<void> {
    try {
      await this.#submit(message, body);
    } catch (err) {
      // A stream given to a submit that failed is not read further: destroyed, as a store's
      // putStream() does on failure (it may have been refused before reaching the store).
      if (body instanceof Readable) body.destroy();
      throw err;
    }
  }

  async #submit(message: StoredMessage, body: BodyInput): Promise<void> {
    const ctx = this.ctx;
    ctx.live();
    const store = ctx.store;
    if (!store) throw codedError('ERR_CONFIG', 'submit() needs the store option');
    const m = checkObject(message, 'message');
    const id = checkId(m.id, 'message.id');
    checkDomainName(m.domain, 'message.domain');
    if (m.binding !== undefined) this.domains.bindingSlot(m.binding, 'message.binding');
    const input = checkBodyInput(body);
    if (native.locate(ctx.handle, id, ctx.where) !== Place.None)
      throw codedError('ERR_DUPLICATE_ID', `message.id ${id} is already queued`);
    const stored: StoredMessage = { ...message };
    // Store the expiry the core will use, so a restart keeps it (recover() reads it back).
    if (stored.expiresAt === undefined) {
      const b = stored.binding === undefined ? 0 : this.domains.bindingSlot(stored.binding, 'message.binding');
      stored.expiresAt = ctx.now() + this.domains.defaultExpiryMs(checkDomainName(stored.domain, 'message.domain'), b);
    }
    if (Buffer.isBuffer(input)) await store.put(stored, input);
    else await putBodyStream(store, stored, await input());
    try {
      this.core.enqueue({
        id,
        domain: stored.domain,
        binding: stored.binding,
        priority: stored.priority,
        expiresAt: stored.expiresAt,
        nextAttempt: stored.nextAttempt,
        attempts: stored.attempts,
      });
    } catch (err) {
      // A recover() running at the same time may have queued this very entry: remove it from the
      // store only when the core does not hold it.
      if (!ctx.closed && native.locate(ctx.handle, id, ctx.where) === Place.None)
        await store.remove(id).catch(() => undefined);
      throw err;
    }
  }

  /** See MailQueueCore.recover. */
  async recover(onProgress?: (queued: number) => void): Promise<number> {
    const ctx = this.ctx;
    ctx.live();
    const store = ctx.store;
    if (!store) throw codedError('ERR_CONFIG', 'recover() needs the store option');
    if (onProgress !== undefined && typeof onProgress !== 'function')
      throw new TypeError('onProgress must be a function');
    let n = 0;
    for await (const m of store.list()) {
      if (native.locate(ctx.live(), m.id, ctx.where) !== Place.None) continue;
      try {
        this.core.enqueue({
          id: m.id,
          domain: m.domain,
          binding: m.binding,
          priority: m.priority,
          expiresAt: m.expiresAt,
          nextAttempt: m.nextAttempt,
          attempts: m.attempts,
        });
      } catch (err) {
        // One entry the configuration no longer fits (a binding removed, say) must not keep the
        // rest of the spool from being queued: report it, leave it in the store, go on.
        this.outbox.reportError(
          new Error(`recover(): message ${m.id} was not queued: ${err instanceof Error ? err.message : String(err)}`, {
            cause: err,
          }),
        );
        continue;
      }
      n++;
      if (onProgress && n % 10_000 === 0) onProgress(n);
    }
    onProgress?.(n);
    return n;
  }

  #maintainerPass(): number {
    const ctx = this.ctx;
    if (ctx.closed) return Infinity;
    const r = this.core.maintain();
    const now = ctx.now();
    const nextDue = native.nextDueAt(ctx.handle) - now;
    const s = this.core.stats();
    // Mail waits with no connection at all (a limit, a throttle or a cool-down): look again soon.
    const stuck = s.active > 0 && s.connections === 0 && r.opened === 0 ? 250 : Infinity;
    return Math.max(0, Math.min(nextDue, stuck));
  }
}
