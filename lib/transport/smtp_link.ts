// The TCP connection under one nodemailer SMTPConnection: connectTcp (our own connect, with its
// own timeout), Link (how the connection ends: a reset unless the session ended with QUIT), and
// socketClosed / within (waiting, bounded, for a socket to close).
//
// Giving up on a connection. A healthy idle session ends with QUIT: the server replies and
// closes, then so do we. Every other end is a give-up (a command, greeting or transaction
// timeout, a broken or refused session, close() during a transaction, QUIT unanswered, abort(),
// the transport closed), and a give-up resets the connection (TCP RST) instead of closing it:
// a graceful close queues its FIN behind whatever is still unsent, against a peer that stopped
// reading that is megabytes of DATA that never leave, and Node then reports the socket closed
// while the kernel keeps the connection (and the receiver keeps counting it) for minutes; a FIN
// sent to a peer that reads nothing leaves the connection open at the receiver (CLOSE_WAIT) just
// the same. A reset drops the connection on both sides at once. close() and abort() resolve (and
// open() rejects) only once the socket has closed, so the core releases a connection's lease
// only when the receiver can no longer count the connection.

import net from 'node:net';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { hostPort } from './mx_resolver.js';
import { codedError } from './smtp_errors.js';

export function ignore(): void {}

export function connectTcp(
  host: string,
  port: number,
  localAddress: string | undefined,
  timeout: number,
  signal: AbortSignal,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(codedError('ERR_CLOSED', 'the transport was closed'));
      return;
    }
    const socket = net.connect({ host, port, localAddress });
    // Kept for the socket's whole life: an error between our listeners and nodemailer's must
    // not be thrown as unhandled. nodemailer still sees every error through its own listener.
    socket.on('error', ignore);
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off('connect', onConnect);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (err: Error) => {
      cleanup();
      socket.destroy();
      // Settle once the socket is closed (destroy() closes it on a later tick), for the reason
      // in #connect: a connect that timed out may have been accepted by the server meanwhile.
      void socketClosed(socket, timeout).then(() => reject(err));
    };
    const onError = (err: Error) => fail(err);
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    const onAbort = () => fail(codedError('ERR_CLOSED', 'the transport was closed'));
    const timer = setTimeout(
      () => fail(codedError('ETIMEDOUT', `connect to ${hostPort(host, port)} timed out after ${timeout} ms`)),
      timeout,
    );
    socket.once('connect', onConnect);
    socket.on('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

// ---- the connection under a session ---------------------------------------------------------

type SocketInternals = net.Socket & { _writableState?: { finalCalled?: boolean } };

/** end() was called and its shutdown (our FIN) has not completed: libuv refuses to reset the
 *  socket then (and Node would lose the handle trying), so a reset has to wait for 'finish'. */
function shutdownPending(socket: net.Socket): boolean {
  return (
    !socket.destroyed && (socket as SocketInternals)._writableState?.finalCalled === true && !socket.writableFinished
  );
}

/** Resolves true once `p` settles, false after ms. Never rejects. */
export function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The TCP connection under one SMTPConnection, and how it ends (see "Giving up on a connection"
 * at the top of this file). nodemailer's close() ends the socket gracefully and destroys it
 * after socketCloseTimeout; it runs on every failure nodemailer detects itself (a reply or
 * greeting timeout, a protocol error, a 421). So close() is replaced on this one instance: every
 * close, nodemailer's own or ours, resets the connection first, except the close nodemailer runs
 * on the server's reply to QUIT (after quitting()), which stays graceful.
 */
export class Link {
  /** Resolves once the TCP socket has closed (its descriptor released). */
  readonly gone: Promise<void>;
  #quitting = false;
  #closed = false;
  #resetPending = false;
  #aborting: Promise<void> | undefined;

  constructor(
    readonly conn: SMTPConnection,
    readonly raw: net.Socket,
    private readonly graceMs: number,
  ) {
    this.gone = new Promise<void>((resolve) => {
      const done = () => {
        this.#closed = true;
        resolve();
      };
      if ((raw as net.Socket & { closed?: boolean }).closed === true) done();
      else raw.once('close', done);
    });
    const close = SMTPConnection.prototype.close;
    // nodemailer calls this.close() internally, and queues this.close as the action for the reply
    // to QUIT (called with that reply): an own property takes the place of the method for both.
    (conn as unknown as { close: (reply?: unknown) => void }).close = (reply?: unknown) => {
      const graceful = this.#quitting && typeof reply === 'string';
      if (!graceful) this.#resetRaw();
      // nodemailer's own teardown. After the reset it finds the raw socket destroyed and only
      // forgets it; a TLS socket over it is still open in JS: nodemailer detaches its listeners
      // from it (so its 'close' is not reported as a failure of its own) before it is destroyed.
      close.call(conn);
      if (!graceful) this.#destroyOuter();
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** QUIT is going out: the close after its reply may end the connection gracefully. */
  quitting(): void {
    this.#quitting = true;
  }

  /** Resets the connection now, and tears nodemailer down (a send in flight fails). */
  reset(): void {
    this.conn.close();
  }

  /** SO_LINGER 0 and close: the kernel discards what is unsent and sends RST, and the peer drops
   *  the connection. After STARTTLS the TLS socket runs on the same TCP handle: resetting the raw
   *  socket resets both. */
  #resetRaw(): void {
    const raw = this.raw;
    if (raw.destroyed) return;
    const outer = this.#outer();
    for (const s of outer ? [raw, outer] : [raw]) {
      if (!shutdownPending(s)) continue;
      // A FIN is being queued (a graceful end that just started, or the peer's FIN answered):
      // reset once that is done. If it never is (a FIN behind a full send buffer), abort() ends
      // the socket after its grace period.
      if (!this.#resetPending) {
        this.#resetPending = true;
        s.once('finish', () => {
          this.#resetPending = false;
          this.#resetRaw();
          this.#destroyOuter();
        });
      }
      return;
    }
    try {
      raw.resetAndDestroy();
    } catch {
      raw.destroy(); // not a TCP handle (never the case for connectTcp's sockets)
    }
  }

  #destroyOuter(): void {
    const outer = this.#outer();
    if (!outer || outer.destroyed || !this.raw.destroyed) return;
    outer.on('error', ignore);
    outer.destroy();
  }

  /** Gives up on the connection: reset(), resolved once the socket has closed. Idempotent; never
   *  rejects. */
  abort(): Promise<void> {
    this.#aborting ??= this.#abort();
    return this.#aborting;
  }

  async #abort(): Promise<void> {
    try {
      this.reset();
    } catch {
      // nodemailer's teardown threw: the reset itself comes first
    }
    if (await within(this.gone, this.graceMs)) return;
    // The reset is still waiting for a shutdown that does not complete: close the descriptor. (A
    // socket whose 'close' never comes at all is beyond repair: never wait for it for ever.)
    this.raw.destroy();
    this.#outer()?.destroy();
    await within(this.gone, this.graceMs);
  }

  /** The TLS socket nodemailer put over the raw one after STARTTLS, if any. */
  #outer(): net.Socket | undefined {
    const s = (this.conn as unknown as { _socket?: net.Socket | false })._socket;
    return s && s !== this.raw ? s : undefined;
  }
}

/** Resolves once the socket has closed (its fd released, FIN or RST sent); destroys it after ms. */
export function socketClosed(socket: net.Socket | undefined, ms: number): Promise<void> {
  if (!socket || (socket as net.Socket & { closed?: boolean }).closed === true) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve();
    }, ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
