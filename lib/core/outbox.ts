// The outbox: what the native core has done that JavaScript must hear of. Grants (connections a
// pass opened) are drained from the core and handed to the delivery layer, to the caller (Grant
// objects or a GrantList) and to 'connection' listeners; expiries are drained, removed from the
// store and announced as bounces; failures the core survives become 'error' events. It also keeps
// the per-domain delivery tallies for the operator views (they outlive stop()).
import type { EventEmitter } from 'node:events';

import type { BounceEvent, DeferredEvent, DeliveredEvent, DomainTally } from '../delivery/events.js';
import { appendGrant, fillFromCore, type GrantList } from '../grant_list.js';
import { debugEnabled, logSafely } from '../logger.js';
import { announceBounce, type BounceFacts } from './bounce_notice.js';
import { native } from '../native.js';
import type { CoreContext } from './core_context.js';
import type { DomainTable } from './domain_table.js';

export interface Grant {
  connectionId: number;
  domain: string;
  binding: string;
}

/** The events a MailQueueCore emits, each with its listener's arguments (docs/delivery-api.md#events):
 *  `core.on('bounce', (e) => ...)` knows `e` is a BounceEvent. */
export interface CoreEvents {
  /** A grant of a pass (made only when a listener is registered). */
  connection: [grant: Grant];
  /** The receiver accepted the message. */
  delivered: [event: DeliveredEvent];
  /** A transient failure; the message waits until event.nextAttempt. */
  deferred: [event: DeferredEvent];
  /** The message ends without delivery. */
  bounce: [event: BounceEvent];
  /** A connection is open and greeted: the transport's session is ready (made only with a listener). */
  connectionOpened: [event: ConnectionOpenedEvent];
  /** A connection could not be opened or greeted (made only with a listener). */
  connectionFailed: [event: ConnectionFailedEvent];
  /** An idle domain was forgotten (decision 46): what is kept about it by name can go too (made
   *  only with a listener). */
  domainForgotten: [event: { domain: string }];
  /** A failure the core survives (a provider, a store call, a listener that threw). */
  error: [error: Error];
  /** A maintain() call (the maintainer's passes included) has ended (made only with a listener). */
  pass: [event: PassEvent];
}

/** What a 'connectionOpened' listener gets. */
export interface ConnectionOpenedEvent {
  connectionId: number;
  domain: string;
  binding: string;
  /** The host the session is connected to, when the transport says. */
  host?: string;
}

/** What a 'connectionFailed' listener gets: one connection the transport could not open. */
export interface ConnectionFailedEvent {
  connectionId: number;
  domain: string;
  binding: string;
  /** The transport's error message. */
  reason: string;
  /** True when the domain can never receive mail (null MX, no such domain): its mail bounces. */
  permanent: boolean;
}

/** What a 'pass' listener gets: how long the maintain() call took and what it did. */
export interface PassEvent {
  /** wall time of the call, ms */
  durationMs: number;
  /** connections it granted */
  opened: number;
  /** domains it visited */
  visited: number;
  /** domains of a sliced pass left for the next slice */
  remaining: number;
}

/** Who gets every grant first: the delivery layer of a started core. */
export interface GrantTaker {
  onGrant(connectionId: number, domain: string, binding: string): void;
}

/** The grants of a drain that found none, inside passes (never handed to a caller). */
const NO_GRANTS: Grant[] = Object.freeze([]) as unknown as Grant[];

export class Outbox {
  /** The delivery layer while the core is started. */
  taker: GrantTaker | undefined;
  /** The grants of the JS-driven pass in progress (Grant objects), or null. */
  passGrants: Grant[] | null = null;
  /** The list the current maintain({ into }) call writes its grants into, or null (Grant objects). */
  into: GrantList | null = null;
  readonly #tallies = new Map<string, DomainTally>();
  readonly #grantBuf = new Float64Array(3 * 256);
  readonly #expiredBuf = new Float64Array(1024);
  readonly #expiredDomains = new Float64Array(1024);
  #seenOpened = 0;
  #seenExpired = 0;

  /** The tallies of the domains forgotten (idle_domains.ts), summed: the totals keep them. */
  readonly forgottenTally: DomainTally = { delivered: 0, deferred: 0, bounced: 0, connectFailures: 0 };

  constructor(
    private readonly ctx: CoreContext,
    private readonly events: EventEmitter<CoreEvents>,
    private readonly domains: DomainTable,
  ) {
    domains.onForget.push((name) => {
      const t = this.#tallies.get(name);
      if (t === undefined) return;
      const f = this.forgottenTally;
      f.delivered += t.delivered;
      f.deferred += t.deferred;
      f.bounced += t.bounced;
      f.connectFailures += t.connectFailures;
      this.#tallies.delete(name);
    });
  }

  get tallies(): ReadonlyMap<string, DomainTally> {
    return this.#tallies;
  }

  /** The grants of the native calls since the last drain, announced; `forCaller`: a fresh array
   *  even when there are none (the pass internals take a shared empty one). */
  drainGrants(forCaller = false): Grant[] {
    const ctx = this.ctx;
    if (ctx.counters[ctx.openedSlot] === this.#seenOpened) return forCaller ? [] : NO_GRANTS;
    const into = this.into;
    if (into !== null && !forCaller) {
      // Into the caller's list: no object per grant unless a 'connection' listener wants one.
      const from = into[fillFromCore](ctx.handle);
      this.#seenOpened = ctx.counters[ctx.openedSlot];
      const taker = this.taker;
      const emit = this.listens('connection');
      if (taker || emit) {
        for (let i = from; i < into.length; i++) {
          const id = into.connectionId(i);
          const domain = into.domain(i);
          const binding = into.binding(i);
          taker?.onGrant(id, domain, binding);
          if (emit) this.emitSafely('connection', { connectionId: id, domain, binding } satisfies Grant);
        }
      }
      return NO_GRANTS;
    }
    const out: Grant[] = [];
    const buf = this.#grantBuf;
    const records = this.domains.records;
    for (;;) {
      const n = native.drainGrants(ctx.handle, buf);
      for (let i = 0; i < n; i++) {
        out.push({
          connectionId: buf[3 * i],
          domain: records[buf[3 * i + 1]].name,
          binding: ctx.bindings[buf[3 * i + 2]],
        });
        into?.[appendGrant](buf[3 * i], buf[3 * i + 1], buf[3 * i + 2]);
      }
      if (n < buf.length / 3) break;
    }
    this.#seenOpened = ctx.counters[ctx.openedSlot];
    const pass = this.passGrants;
    if (pass && !into) for (let i = 0; i < out.length; i++) pass.push(out[i]); // no spread: out may be long
    // The delivery layer gets its grants first and directly: a user's 'connection' listener that
    // throws must not strand a lease with no connection behind it.
    if (this.taker) for (const g of out) this.taker.onGrant(g.connectionId, g.domain, g.binding);
    if (this.listens('connection')) for (const g of out) this.emitSafely('connection', g);
    return out;
  }

  drainExpired(): void {
    const ctx = this.ctx;
    if (ctx.counters[ctx.expiredSlot] === this.#seenExpired) return;
    const buf = this.#expiredBuf;
    const doms = this.#expiredDomains;
    const records = this.domains.records;
    const log = debugEnabled(ctx.logger) ? ctx.logger! : undefined;
    for (;;) {
      const n = native.drainExpired(ctx.handle, buf, doms);
      for (let i = 0; i < n; i++) {
        const domain = records[doms[i]].name;
        if (log) logSafely(log, 'debug', { id: buf[i], domain, outcome: 'expired' }, 'message expired');
        // Whether started or not: an expired message is done, in the store as in the core (once
        // the listeners have run).
        this.tally(domain).bounced++;
        void this.bounce({ id: buf[i], domain, reason: 'expired' });
      }
      if (n < buf.length) break;
    }
    this.#seenExpired = ctx.counters[ctx.expiredSlot];
  }

  /** Removes a message the core no longer holds from the store, in the background. */
  unstore(id: number): void {
    this.ctx.store?.remove(id).catch((err) => this.reportError(err));
  }

  tally(domain: string): DomainTally {
    let t = this.#tallies.get(domain);
    if (!t) this.#tallies.set(domain, (t = { delivered: 0, deferred: 0, bounced: 0, connectFailures: 0 }));
    return t;
  }

  /** Whether anyone listens to `event` (an event costly to make is made only then). */
  listens(event: keyof CoreEvents): boolean {
    return this.events.listenerCount(event) > 0;
  }

  // Events carry facts the core has already acted on; a listener that throws is reported, and
  // never unwinds through the core's own bookkeeping.
  emitSafely<K extends keyof CoreEvents>(event: K, ...args: CoreEvents[K]): void {
    try {
      (this.events.emit as (e: K, ...a: CoreEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.reportError(err);
    }
  }

  /**
   * Emits `event` and resolves once every listener has returned and every promise one returned
   * has settled, or after `timeoutMs` (an 'error' event then says which event's listeners were
   * slow). A listener that throws or rejects is an 'error' event; never rejects.
   */
  async emitAwaited<K extends keyof CoreEvents>(event: K, payload: CoreEvents[K][0], timeoutMs: number): Promise<void> {
    const waits: Promise<unknown>[] = [];
    // rawListeners: a once() listener's wrapper, which unregisters it when called.
    for (const l of this.events.rawListeners(event) as ((p: unknown) => unknown)[]) {
      try {
        const r = l.call(this.events, payload) as { then?: unknown } | undefined;
        if (typeof r?.then === 'function') waits.push(Promise.resolve(r).catch((err) => this.reportError(err)));
      } catch (err) {
        this.reportError(err);
      }
    }
    if (waits.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, timeoutMs, true)));
    const late = await Promise.race([Promise.all(waits).then(() => false), timedOut]);
    clearTimeout(timer);
    if (late)
      this.reportError(new Error(`'${event}' listeners did not settle within ${timeoutMs} ms; went on without them`));
  }

  /** Announces a bounce (bounce_notice.ts): the event with the envelope, then the store removal. */
  bounce(ev: BounceEvent, facts?: BounceFacts): Promise<void> {
    return announceBounce(this, this.ctx.store, ev, facts);
  }

  // Failures the core survives (a provider, a store, a listener): an 'error' event, or a process
  // warning when nobody listens (an unheard 'error' event would throw and stop maintenance); and a
  // line at error level in options.logger, when given.
  reportError(err: unknown): void {
    const logger = this.ctx.logger;
    if (logger) logSafely(logger, 'error', { err }, err instanceof Error ? err.message : String(err));
    if (this.listens('error')) {
      // Listeners get an Error: a thrown string or number is wrapped in one.
      this.events.emit('error', typeof err === 'object' && err !== null ? (err as Error) : new Error(String(err)));
      return;
    }
    const code = (err as { code?: unknown })?.code;
    process.emitWarning(err instanceof Error ? err.message : String(err), {
      code: typeof code === 'string' ? code : 'ERR_MAIL_QUEUE_CORE',
      detail: 'add an error listener on the core to handle these',
    });
  }
}
