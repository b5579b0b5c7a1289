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
import type { DeliveryTarget, Outcome, Transport, TransportSession } from '../transport/transport.js';

/** What a connection needs from the delivery layer. */
export interface ConnectionHost {
  readonly transport: Transport;
  now(): number;
  stopping(): boolean;
  /** Suspended by configuration or the operator: take nothing more, close. */
  suspended(domain: string, binding: string): boolean;
  /** Messages to reserve per take (1 when a message throttle applies, so it is checked per message). */
  batchSize(domain: string, binding: string): number;
  maxDeliveries(domain: string, binding: string): number;
  idleTimeoutMs(domain: string, binding: string): number;
  sendTimeoutMs(): number;
  /** Takes up to out.length messages into flight for this connection (from the (domain, binding)
   *  its lease names); returns how many. */
  takeFor(connectionId: number, out: Float64Array): number;
  /** Active messages waiting in (domain, binding). */
  queued(domain: string, binding: string): number;
  /** When the message throttle lets (domain, binding) start its next message. */
  messageAllowedAt(domain: string, binding: string): number;
  /** A sibling domain with mail on this binding and the same MX key, or undefined. */
  sibling(domain: string, binding: string, mxKey: string | undefined): string | undefined;
  /** Moves the lease to another domain; false when that domain has no room. */
  migrate(connectionId: number, domain: string): boolean;
  /** Resolves true when mail arrives for (domain, binding), false after timeoutMs or on stop. */
  waitForMail(domain: string, binding: string, timeoutMs: number): Promise<boolean>;
  /** Resolves after ms, or early on stop. */
  sleep(ms: number): Promise<void>;
  /** Sends one message and applies its outcome (returns it); never rejects. */
  deliver(
    session: TransportSession,
    id: number,
    domain: string,
    binding: string,
    timeoutMs: number,
  ): Promise<Outcome & { sessionBroken?: boolean }>;
  /** A session could not be opened (every MX failed). */
  openFailed(connectionId: number, domain: string, binding: string, err: unknown): Promise<void>;
  /** Puts an unsent, in-flight message back at its queue position. */
  untake(id: number): void;
  release(connectionId: number): void;
  closed(connection: Connection): void;
}

const CLOSE_TIMEOUT_MS = 10_000;

export class Connection {
  #domain: string;
  #reserved: number[] = [];
  #deliveries = 0;
  #closeRequested = false;
  readonly #buf: Float64Array;

  constructor(
    private readonly host: ConnectionHost,
    readonly connectionId: number,
    domain: string,
    readonly binding: string,
    readonly bindingSlot: number,
  ) {
    this.#domain = domain;
    this.#buf = new Float64Array(16);
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
    let session: TransportSession | undefined;
    let givenUp = false;
    try {
      try {
        session = await openWithTimeout(
          host.transport,
          { domain: this.#domain, binding: this.binding, bindingSlot: this.bindingSlot },
          host.sendTimeoutMs(),
        );
      } catch (err) {
        try {
          await host.openFailed(this.connectionId, this.#domain, this.binding, err);
        } finally {
          // An open() that timed out may still connect: the lease waits for that session to be
          // aborted (or for the open to fail), within bounds (lateOpen).
          if (err instanceof OpenTimeoutError) await err.late;
        }
        return;
      }
      const max = host.maxDeliveries(this.#domain, this.binding);
      for (;;) {
        const id = await this.#next(session);
        if (id === undefined) break;
        const outcome = await host.deliver(session, id, this.#domain, this.binding, host.sendTimeoutMs());
        if (outcome.kind === 'delivered') {
          this.#deliveries++;
          if (max > 0 && this.#deliveries >= max) break;
        }
        if (outcome.sessionBroken) {
          givenUp = true;
          break;
        }
        if (!session.usable) break;
      }
    } finally {
      for (const id of this.#reserved) {
        try {
          host.untake(id);
        } catch {
          // The core is gone (closed): nothing left to put back.
        }
      }
      this.#reserved = [];
      if (session) await endSession(session, givenUp);
      try {
        host.release(this.connectionId);
      } catch {
        // Already released, or the core was closed under us.
      }
      host.closed(this);
    }
  }

  async #next(session: TransportSession): Promise<number | undefined> {
    const host = this.host;
    for (;;) {
      if (host.stopping() || !session.usable || this.#closeRequested) return undefined;
      // Suspension stops delivery, not only new connections: what this connection reserved goes
      // back to the queue (in the finally block of run()).
      if (host.suspended(this.#domain, this.binding)) return undefined;
      const next = this.#reserved.shift();
      if (next !== undefined) return next;
      const max = host.maxDeliveries(this.#domain, this.binding);
      const room = max > 0 ? Math.max(1, max - this.#deliveries) : Infinity;
      const want = Math.min(host.batchSize(this.#domain, this.binding), room, this.#buf.length);
      const n = host.takeFor(this.connectionId, this.#buf.subarray(0, want));
      if (n > 0) {
        for (let i = 0; i < n; i++) this.#reserved.push(this.#buf[i]);
        continue;
      }
      if (host.queued(this.#domain, this.binding) > 0) {
        // Mail is waiting but outbound_throttle_messages says not yet.
        const wait = host.messageAllowedAt(this.#domain, this.binding) - host.now();
        await host.sleep(Math.max(1, Math.min(wait, 1000)));
        continue;
      }
      const sibling = host.sibling(this.#domain, this.binding, session.mxKey);
      if (sibling !== undefined && host.migrate(this.connectionId, sibling)) {
        this.#domain = sibling;
        continue;
      }
      if (!(await host.waitForMail(this.#domain, this.binding, host.idleTimeoutMs(this.#domain, this.binding))))
        return undefined;
    }
  }
}

/** Resolves true once `p` settles (fulfilled or rejected), false after ms. Never rejects. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** Starts abort(), or close() for a transport without it; throws nothing. */
function abortSession(session: TransportSession): Promise<void> {
  try {
    return session.abort ? session.abort() : session.close();
  } catch (err) {
    return Promise.reject(err);
  }
}

function closeSession(session: TransportSession): Promise<void> {
  try {
    return session.close();
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Ends a session before its lease goes back (see the top of this file): abort() when given up
 * on, else close(), and abort() when close() has not finished within CLOSE_TIMEOUT_MS. Waits at
 * most 2 * CLOSE_TIMEOUT_MS. Never rejects.
 */
async function endSession(session: TransportSession, givenUp: boolean): Promise<void> {
  if (givenUp && session.abort) {
    await within(abortSession(session), CLOSE_TIMEOUT_MS);
    return;
  }
  if (await within(closeSession(session), CLOSE_TIMEOUT_MS)) return;
  if (session.abort) await within(abortSession(session), CLOSE_TIMEOUT_MS);
}

class OpenTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(
    message: string,
    readonly late: Promise<void>,
  ) {
    super(message);
  }
}

/** An open() given up on may still bring a session: abort it whenever it comes. The returned
 *  promise, which the lease waits for, settles when that is done or the open failed, or after
 *  CLOSE_TIMEOUT_MS with the open still pending (then the lease goes back on trust: an open()
 *  that never settles must not hold it for ever). */
async function lateOpen(opening: Promise<TransportSession>): Promise<void> {
  const ended = opening.then(
    (s) => endSession(s, true),
    () => undefined,
  );
  if (await within(opening, CLOSE_TIMEOUT_MS)) await ended;
}

// A transport whose open() never settles must not hold the lease for ever: give up after the
// delivery timeout (OpenTimeoutError), and abort the session if it turns up later.
async function openWithTimeout(
  transport: Transport,
  target: DeliveryTarget,
  timeoutMs: number,
): Promise<TransportSession> {
  let timer: NodeJS.Timeout | undefined;
  const opening = transport.open(target);
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new OpenTimeoutError(`no session from the transport within ${timeoutMs} ms`, lateOpen(opening)));
    }, timeoutMs);
  });
  try {
    return await Promise.race([opening, watchdog]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
