// One outbound connection: a lease granted by a maintenance pass, carried by a transport session.
// It pulls messages from its (domain, binding) active queue a small run at a time (the run is in
// flight for this connection: no other connection can take it), sends them one by one and hands
// each outcome to the delivery layer. It closes after max_deliveries_per_connection deliveries, after
// idle_timeout with nothing to send, when the session breaks, or when the core stops; on an empty
// queue it may first migrate to a sibling domain (same binding, same MX set). Whatever ends it, the
// finally block puts unsent messages back where they were and releases the lease: a leaked lease
// would slowly stop delivery, so nothing on the way out may skip that.
//
// The lease goes back only once the session is gone, as far as the transport can tell: the
// receiver counts a connection for as long as it exists at its end, and a lease released earlier
// lets the next connection exceed the receiver's limit. A healthy session is closed (QUIT); one
// given up on (the delivery layer reported it broken) is aborted, and so is one whose close()
// does not finish within CLOSE_TIMEOUT_MS (TransportSession.abort: a reset, resolved once the
// socket is closed). Only a transport with no abort(), or one whose abort() does not settle
// within another CLOSE_TIMEOUT_MS, gets its lease back on trust: holding it for ever would be
// the leak above.
import { debugEnabled, type Logger, logSafely } from '../logger.js';
import type { LoadedMessage } from '../store/message_store.js';
import type { Envelope, Outcome, OutboundMessage, TransportSession } from '../transport/transport.js';
import { Watchdog } from '../watchdog.js';
import type { ConnectionHost, DeliverResult } from './connection_host.js';
import { OpenTimeoutError, endSession, openWithTimeout } from './session_bounds.js';

function ignore(): void {}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The most messages a connection reserves at once. */
const RUN = 16;

export class Connection {
  #domain: string;
  #deliveries = 0;
  #closeRequested = false;
  /** The run of reserved messages: run[runPos .. runLen) are in flight for this connection, unsent. */
  readonly #run = new Float64Array(RUN);
  #runPos = 0;
  #runLen = 0;
  /** The store answers load() with promises: read the next message ahead (#prefetch). */
  #asyncLoads = false;
  // The next message's load, started while the current one is on the wire.
  #pre: Promise<LoadedMessage | undefined> | undefined;
  #preId = -1;
  /** #run's first k entries, by k (made once each). */
  readonly #views: Float64Array[] = [];
  #session: TransportSession | undefined;
  #max = 0;
  /** The session was given up on (its lease waits for abort(), not close()). */
  #givenUp = false;
  // The message on the wire: its id, and whether its outcome is still to come.
  #current = 0;
  #envelope: Envelope | undefined;
  #sending = false;
  /** The delivery timeout of the message on the wire: one per connection, re-armed per message. */
  #watchdog: Watchdog | undefined;
  // The message loop: how it ends (run() awaits it).
  #loopResolve: (() => void) | undefined;
  #loopReject: ((err: unknown) => void) | undefined;
  // Outcomes still being applied (waiting for the store); the lease waits for them.
  #applying = 0;
  #applied: (() => void) | undefined;
  /** The logger when it writes debug lines (asked once, when the connection opens), else undefined:
   *  then nothing is made per message for the log. */
  #debug: Logger | undefined;
  /** The configEpoch this connection last looked at (from its grant on). */
  #epoch: number;

  constructor(
    private readonly host: ConnectionHost,
    readonly connectionId: number,
    domain: string,
    readonly binding: string,
    readonly bindingSlot: number,
  ) {
    this.#domain = domain;
    this.#epoch = host.configEpoch();
  }

  get domain(): string {
    return this.#domain;
  }

  get deliveries(): number {
    return this.#deliveries;
  }

  /** Asked to close (releaseConnection() by an operator): it sends nothing more after the message
   *  in progress, puts back what it holds, and releases its lease once the session is closed, so
   *  the lease counts for as long as the session lives. */
  requestClose(): void {
    this.#closeRequested = true;
  }

  async run(): Promise<void> {
    const host = this.host;
    const logger = host.logger;
    if (debugEnabled(logger)) this.#debug = logger;
    let session: TransportSession | undefined;
    try {
      try {
        session = await openWithTimeout(
          host.transport,
          host.target(this.connectionId, this.#domain, this.binding, this.bindingSlot),
          host.sendTimeoutMs(),
        );
      } catch (err) {
        if (logger) logSafely(logger, 'error', { err, ...this.#where() }, `connection failed: ${message(err)}`);
        try {
          await host.openFailed(this.connectionId, this.#domain, this.binding, err);
        } finally {
          // An open() that timed out may still connect: the lease waits for that session to be
          // aborted (or for the open to fail), within bounds (lateOpen).
          if (err instanceof OpenTimeoutError) await err.late;
        }
        return;
      }
      this.#session = session;
      host.opened(this.connectionId, this.#domain, this.binding, session.host);
      if (this.#debug) logSafely(this.#debug, 'debug', this.#where(), 'connection open');
      this.#max = host.maxDeliveries(this.#domain, this.binding);
      this.#watchdog = new Watchdog(host.sendTimeoutMs(), this.#onTimeout, true);
      await new Promise<void>((resolve, reject) => {
        this.#loopResolve = resolve;
        this.#loopReject = reject;
        this.#pump();
      });
    } finally {
      this.#watchdog?.dispose();
      for (let i = this.#runPos; i < this.#runLen; i++) {
        try {
          host.untake(this.#run[i]);
        } catch {
          // The core is gone (closed): nothing left to put back.
        }
      }
      this.#runPos = this.#runLen = 0;
      // Outcomes still waiting for the store settle their messages with this lease.
      if (this.#applying > 0) await new Promise<void>((resolve) => (this.#applied = resolve));
      if (session) await endSession(session, this.#givenUp);
      try {
        host.release(this.connectionId);
      } catch {
        // Already released, or the core was closed under us.
      }
      if (this.#debug && session)
        logSafely(this.#debug, 'debug', { ...this.#where(), deliveries: this.#deliveries }, 'connection closed');
      host.closed(this);
    }
  }

  /** Who this connection is, for its log lines. */
  #where(): { connectionId: number; domain: string; binding: string; host: string | undefined } {
    return { connectionId: this.connectionId, domain: this.#domain, binding: this.binding, host: this.#session?.host };
  }

  // --- the message loop ---------------------------------------------------------------------------
  //
  // Callbacks, not a chain of awaits: when a message's outcome comes in, the next message is taken
  // and handed to the transport in the same turn of the event loop (#pump from #sent). Only
  // waiting (for mail, for the message throttle, for a store that reads from disk) leaves it.

  /** Ends the message loop (run() goes on to close the connection). */
  #end(err?: unknown): void {
    const resolve = this.#loopResolve;
    const reject = this.#loopReject;
    this.#loopResolve = this.#loopReject = undefined;
    if (err === undefined) resolve?.();
    else reject?.(err);
  }

  /** Starts the next message, or waits for one, or ends the loop. */
  #pump(): void {
    const host = this.host;
    const session = this.#session!;
    try {
      for (;;) {
        if (host.stopping() || !session.usable || this.#closeRequested) {
          this.#end();
          return;
        }
        // Suspension stops delivery, not only new connections: what this connection reserved goes
        // back to the queue (in the finally block of run()).
        if (host.suspended(this.#domain, this.binding)) {
          this.#end();
          return;
        }
        // configure() ran: a lowered limit this connection is above closes it (what it reserved
        // goes back, as for a suspension); one number compared per message otherwise.
        if (this.#epoch !== host.configEpoch() && this.#reconfigured()) {
          this.#end();
          return;
        }
        if (this.#runPos === this.#runLen && !this.#take()) {
          this.#wait(session).then(
            (more) => (more ? this.#pump() : this.#end()),
            (err) => this.#end(err),
          );
          return;
        }
        const id = this.#run[this.#runPos++];
        let loaded: LoadedMessage | undefined | Promise<LoadedMessage | undefined>;
        try {
          if (this.#preId === id) {
            loaded = this.#pre;
            this.#pre = undefined;
            this.#preId = -1;
          } else loaded = host.load(id);
        } catch (err) {
          this.#current = id;
          this.#loadFailed(err);
          return;
        }
        if (loaded instanceof Promise) {
          this.#asyncLoads = true;
          this.#current = id;
          loaded.then(this.#loaded, this.#loadFailed);
          return;
        }
        if (loaded !== undefined) {
          this.#send(id, loaded);
          return;
        }
        this.#missing(id);
      }
    } catch (err) {
      this.#end(err);
    }
  }

  /** A new configuration: its maxDeliveriesPerConnection from now on; true when this connection
   *  is above a lowered limit and closes. */
  #reconfigured(): boolean {
    const host = this.host;
    this.#epoch = host.configEpoch();
    this.#max = host.maxDeliveries(this.#domain, this.binding);
    return host.overLimit(this);
  }

  /** Reserves the next run; false when nothing can be taken now. `ahead`: messages still on the
   *  wire, which count towards maxDeliveriesPerConnection. */
  #take(ahead = 0): boolean {
    const host = this.host;
    const max = this.#max;
    const room = max > 0 ? Math.max(1, max - this.#deliveries - ahead) : RUN;
    const want = Math.min(host.batchSize(this.#domain, this.binding), room, RUN);
    const n = host.takeFor(this.connectionId, (this.#views[want] ??= this.#run.subarray(0, want)));
    this.#runPos = 0;
    this.#runLen = n;
    return n > 0;
  }

  /** Nothing to take: waits out the message throttle, migrates to a sibling, or waits for mail.
   *  True when the loop goes on. */
  async #wait(session: TransportSession): Promise<boolean> {
    const host = this.host;
    if (host.queued(this.#domain, this.binding) > 0) {
      // Mail is waiting but outbound_throttle_messages says not yet.
      const wait = host.messageAllowedAt(this.#domain, this.binding) - host.now();
      await host.sleep(Math.max(1, Math.min(wait, 1000)));
      return true;
    }
    const sibling = host.sibling(this.#domain, this.binding, session.mxKey);
    if (sibling !== undefined && host.migrate(this.connectionId, sibling)) {
      this.#domain = sibling;
      return true;
    }
    return host.waitForMail(this.#domain, this.binding, host.idleTimeoutMs(this.#domain, this.binding));
  }

  /** A load from the store came back (bound once: the id is #current). */
  readonly #loaded = (loaded: LoadedMessage | undefined): void => {
    if (loaded !== undefined) {
      this.#send(this.#current, loaded);
      return;
    }
    try {
      this.#missing(this.#current);
    } catch (err) {
      this.#end(err);
      return;
    }
    this.#pump();
  };

  /** The store no longer has the message: it bounces. */
  #missing(id: number): void {
    if (this.#debug) this.#logOutcome(id, { kind: 'permanent', response: 'missing from the store' });
    this.host.missing(id, this.#domain, this.binding);
  }

  /** The store failed to load the message: a transient failure; the session is closed (QUIT: it
   *  is healthy) and the connection ends. */
  readonly #loadFailed = (err: unknown): void => {
    const logger = this.host.logger;
    if (logger)
      logSafely(logger, 'error', { err, id: this.#current, ...this.#where() }, `store load failed: ${message(err)}`);
    this.#giveUp(false);
    this.#outcome(this.#current, {
      kind: 'transient',
      response: `delivery failed: ${message(err)}`,
      sessionBroken: true,
    });
  };

  #send(id: number, loaded: LoadedMessage): void {
    const session = this.#session!;
    const msg: OutboundMessage = { id, domain: this.#domain, envelope: loaded.envelope, body: loaded.body };
    this.#current = id;
    this.#envelope = loaded.envelope;
    this.#sending = true;
    this.#watchdog!.arm();
    try {
      if (session.sendCallback) session.sendCallback(msg, this.#sent);
      else session.send(msg).then(this.#resolved, this.#sent);
    } catch (err) {
      this.#sent(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (this.#asyncLoads && this.#sending) this.#prefetch();
  }

  /**
   * A store that reads from disk: while this message is on the wire, read the next one, so that it
   * is ready when this one's outcome comes. When the run is used up, the next run is taken now
   * (unless a message throttle is checked per message: then a take starts a message).
   */
  #prefetch(): void {
    const host = this.host;
    try {
      if (this.#runPos === this.#runLen) {
        if (host.stopping() || this.#closeRequested || host.suspended(this.#domain, this.binding)) return;
        if (this.#epoch !== host.configEpoch()) return; // #pump looks at the new configuration first
        if (host.batchSize(this.#domain, this.binding) <= 1) return;
        // The message on the wire may be the last one allowed on this connection.
        if (this.#max > 0 && this.#max - this.#deliveries <= 1) return;
        if (!this.#take(1)) return;
      }
      const id = this.#run[this.#runPos];
      const loaded = host.load(id);
      if (!(loaded instanceof Promise)) return;
      loaded.catch(ignore); // a failure is met when the message's turn comes (#pump)
      this.#pre = loaded;
      this.#preId = id;
    } catch {
      // The take or the load failed: #pump meets the failure again in its turn.
    }
  }

  /** send() resolved (bound once). */
  readonly #resolved = (outcome: Outcome): void => this.#sent(null, outcome);

  /** The transport's verdict on the message on the wire (bound once). */
  readonly #sent = (err: unknown, outcome?: Outcome): void => {
    if (!this.#sending) return; // the watchdog gave up on it already
    this.#sending = false;
    this.#watchdog!.disarm();
    if (err || outcome === undefined) {
      this.#giveUp(true);
      this.#outcome(this.#current, {
        kind: 'transient',
        response: `delivery failed: ${message(err ?? 'no outcome')}`,
        sessionBroken: true,
      });
      return;
    }
    this.#outcome(this.#current, outcome);
  };

  /** No outcome within the delivery timeout (bound once). */
  readonly #onTimeout = (): void => {
    if (!this.#sending) return;
    this.#sending = false;
    this.#giveUp(true);
    this.#outcome(this.#current, {
      kind: 'transient',
      response: `no outcome from the transport within ${this.host.sendTimeoutMs()} ms`,
      sessionBroken: true,
    });
  };

  /**
   * Given up on in the middle of a message (the watchdog fired, or send() failed): abort the
   * session at once, before the outcome is applied. A graceful close would queue behind the
   * unsent rest of the message, which a receiver that stopped reading never takes. Either way the
   * lease is released only once the session is gone (run()).
   */
  #giveUp(sending: boolean): void {
    const session = this.#session!;
    let ending: Promise<void>;
    try {
      ending = sending && session.abort ? session.abort() : session.close();
    } catch (err) {
      ending = Promise.reject(err);
    }
    void ending.catch(() => undefined);
  }

  /** Applies a message's outcome, then takes the next message at once or ends the loop. */
  #outcome(id: number, result: DeliverResult): void {
    if (this.#debug) this.#logOutcome(id, result);
    const envelope = this.#envelope;
    this.#envelope = undefined;
    const pending = this.host.apply(id, this.#domain, this.binding, result, envelope);
    if (pending !== undefined) {
      this.#applying++;
      pending.then(this.#onApplied);
    }
    if (result.kind === 'delivered') {
      this.#deliveries++;
      if (this.#max > 0 && this.#deliveries >= this.#max) {
        this.#end();
        return;
      }
    }
    if (result.sessionBroken) {
      this.#givenUp = true;
      this.#end();
      return;
    }
    this.#pump();
  }

  #logOutcome(id: number, result: DeliverResult): void {
    const { kind, code, response } = result as { kind: string; code?: number; response?: string };
    logSafely(this.#debug!, 'debug', { id, outcome: kind, code, response, ...this.#where() }, `message ${kind}`);
  }

  readonly #onApplied = (): void => {
    if (--this.#applying === 0) this.#applied?.();
  };
}
