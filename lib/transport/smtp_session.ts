// SmtpSession: one open SMTP session, sending one message at a time (send, close, abort, the
// transaction itself and the RSET after a refusal).

import type { Readable } from 'node:stream';
import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import { hostPort } from './mx_resolver.js';
import { SmtpSendError, asSmtpError, codedError, type SmtpError } from './smtp_errors.js';
import { within, type Link } from './smtp_link.js';
import { Watchdog } from '../watchdog.js';
import type { Timeouts } from './smtp_options.js';
import { checkMessage, deliveredOutcome, has8bit, invalidEnvelope, replyOutcome } from './smtp_outcome.js';
import type { Outcome, OutboundMessage, SendCallback, TransportSession } from './transport.js';

// ---- the session ----------------------------------------------------------------------------

export interface SessionInit {
  mxKey: string;
  domain: string;
  binding: string;
  host: string;
  address: string;
  port: number;
  timeouts: Timeouts;
  onGone: (s: SmtpSession) => void;
}

type Transaction = { info: SMTPConnection.SentMessageInfo } | { err: SmtpError };

/**
 * One SMTP session. Outcome rules (the core treats a message as one unit, one outcome for all
 * its recipients):
 *
 * - The server accepted the message after the final dot: `delivered`, with its reply.
 * - Every recipient refused at RCPT: `transient` if any refusal was 4xx (that recipient may
 *   accept later), else `permanent`. MAIL FROM, DATA or final-dot refusals: 4xx `transient`,
 *   5xx `permanent`, except 503 (bad sequence of commands: our session's state, not the
 *   message, was refused), which is `transient` and retires the session.
 * - Some recipients accepted, some refused: `delivered`, with the refused recipients and their
 *   replies appended to `response`. Why: the message then goes to the accepted recipients
 *   (nodemailer goes on to DATA once at least one RCPT succeeded, and with PIPELINING DATA is
 *   already on the wire), so reporting `transient` would make the core resend it and duplicate it to every
 *   recipient that already has it; reporting `permanent` would bounce a delivered message. The
 *   refused recipients are not retried: that is the price of one outcome per message, and the
 *   response text is where they are recorded.
 *
 * After a refusal the session sends RSET and stays usable; if RSET fails it is retired. A
 * dropped connection, a reply timeout or a protocol error rejects send() and leaves the
 * session unusable, its connection reset (see "Giving up on a connection" at the top of smtp_link.ts).
 */
export class SmtpSession implements TransportSession {
  readonly mxKey: string;
  readonly domain: string;
  readonly binding: string;
  /** The MX or route host this session is connected to. */
  readonly host: string;
  readonly address: string;
  readonly port: number;
  readonly #conn: SMTPConnection;
  readonly #link: Link;
  readonly #t: Timeouts;
  readonly #onGone: (s: SmtpSession) => void;
  #closed = false;
  #broken = false;
  #busy = false;
  #closing: Promise<void> | undefined;
  /** Closes the session (QUIT) after timeouts.idle unused. */
  readonly #idle: Watchdog;
  /** A transaction ended and the session goes idle at the next microtask, unless a send comes first. */
  #idlePending = false;
  /** The socket's timer is on (timeouts.command), as while busy. */
  #commandTimeout = false;
  /** Caps one transaction at timeouts.message. */
  readonly #cap: Watchdog;
  // The transaction in flight: its callback, its message id, whether it has ended, and whether
  // nodemailer's send() is still on the stack.
  #done: SendCallback | undefined;
  #msgId = 0;
  #txnOpen = false;
  /** The stream of a StreamedBody being sent, until the transaction ends. */
  #bodyStream: Readable | undefined;
  #inSend = false;

  constructor(conn: SMTPConnection, link: Link, init: SessionInit) {
    this.#conn = conn;
    this.#link = link;
    this.mxKey = init.mxKey;
    this.domain = init.domain;
    this.binding = init.binding;
    this.host = init.host;
    this.address = init.address;
    this.port = init.port;
    this.#t = init.timeouts;
    this.#onGone = init.onGone;
    // The peer may end an idle session (timeout, 421): the session is then simply gone. It leaves
    // the transport's books once its socket has closed, so that transport.close() waits for it.
    this.#idle = new Watchdog(this.#t.idle, () => {
      if (!this.#busy) void this.close();
    });
    this.#cap = new Watchdog(this.#t.message, this.#onCap);
    // nodemailer fails the send in flight when the connection breaks, but close() by us (or an
    // unexpected path) ends it silently: this makes sure the transaction ends anyway ('end' comes
    // before the error callback on some paths: let the error win).
    conn.once('end', () => {
      this.#stopIdle();
      if (this.#txnOpen)
        setImmediate(() =>
          this.#finish({ err: codedError('ECONNECTION', 'the connection closed during the transaction') }),
        );
    });
    void link.gone.then(() => {
      this.#idle.dispose();
      this.#cap.dispose();
      this.#onGone(this);
    });
    this.#startIdle();
  }

  get usable(): boolean {
    return !this.#closed && !this.#broken && !this.#conn.destroyed;
  }

  /** True when the session runs over TLS (STARTTLS succeeded). */
  get secure(): boolean {
    return this.#conn.secure;
  }

  send(message: OutboundMessage): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      this.sendCallback(message, (err, outcome) => (err ? reject(err) : resolve(outcome!)));
    });
  }

  /**
   * send() with a callback (TransportSession.sendCallback): the hot path of the core. Nothing is
   * made per message beyond what nodemailer needs (its envelope object) and the outcome: the
   * transaction's deadline and the idle timer are re-armed (Watchdog), the callbacks are bound
   * once per session. `done` is called once, never before this returns; a bad argument throws.
   */
  sendCallback(message: OutboundMessage, done: SendCallback): void {
    const msg = checkMessage(message);
    if (this.#busy) {
      const err = new SmtpSendError(
        'ERR_REENTRANT',
        msg.id,
        this.host,
        `smtp send #${msg.id}: another message is in flight on this session`,
      );
      queueMicrotask(() => done(err));
      return;
    }
    if (!this.usable) {
      const err = new SmtpSendError(
        'ERR_CLOSED',
        msg.id,
        this.host,
        `smtp send #${msg.id}: the session to ${this.host} is not usable`,
      );
      queueMicrotask(() => done(err));
      return;
    }
    const invalid = invalidEnvelope(msg.envelope);
    if (invalid) {
      queueMicrotask(() => done(null, { kind: 'permanent', response: invalid }));
      return;
    }

    this.#busy = true;
    this.#done = done;
    this.#msgId = msg.id;
    this.#idle.disarm();
    this.#idlePending = false;
    // The socket's timer is the per-command timeout while busy; it was switched off only if the
    // session really went idle since the last message (#enterIdle).
    if (!this.#commandTimeout) {
      this.#setSocketTimeout(this.#t.command);
      this.#commandTimeout = true;
    }
    this.#txnOpen = true;
    this.#cap.arm();
    const body = msg.body;
    this.#inSend = true;
    try {
      if (Buffer.isBuffer(body)) {
        this.#conn.send(
          { from: msg.envelope.from, to: msg.envelope.to, size: body.length, use8BitMime: has8bit(body) },
          body,
          this.#onSent,
        );
      } else {
        // A large body from the store, read as it goes out (size and 8-bit known without reading it).
        const stream = body.open();
        this.#bodyStream = stream;
        this.#conn.send(
          { from: msg.envelope.from, to: msg.envelope.to, size: body.size, use8BitMime: body.eightBit },
          stream,
          this.#onSent,
        );
      }
    } catch (err) {
      this.#finish({ err: asSmtpError(err) });
    } finally {
      this.#inSend = false;
    }
  }

  // --- one transaction: its end, its outcome ------------------------------------------------------

  /** nodemailer's callback for the transaction in flight (bound once). */
  readonly #onSent = (err: Error | null, info: SMTPConnection.SentMessageInfo): void => {
    this.#finish(err ? { err: asSmtpError(err) } : { info });
  };

  /** The transaction took longer than timeouts.message (bound once). */
  readonly #onCap = (): void => {
    if (!this.#txnOpen) return;
    const err = codedError('ETIMEDOUT', `the transaction took longer than ${this.#t.message} ms`);
    void this.abort(); // a reset: the peer may have stopped reading megabytes ago
    this.#finish({ err });
  };

  /** The transaction ended (reply, error, timeout or a closed connection): its outcome. Once. */
  #finish(r: Transaction): void {
    if (!this.#txnOpen) return;
    this.#txnOpen = false;
    // A streamed body not read to its end (a refusal, a broken session) must not hold its file.
    if (this.#bodyStream !== undefined) {
      this.#bodyStream.destroy();
      this.#bodyStream = undefined;
    }
    this.#cap.disarm();
    if (this.#inSend) {
      // nodemailer answered before send() returned: report after sendCallback() has returned.
      queueMicrotask(() => this.#outcomeOf(r));
      return;
    }
    this.#outcomeOf(r);
  }

  #outcomeOf(r: Transaction): void {
    if ('info' in r) {
      this.#complete(null, deliveredOutcome(r.info));
      return;
    }
    const outcome = replyOutcome(r.err);
    if (!outcome) {
      // Broken mid-transaction: give up on the connection (a reset, see Link).
      this.#broken = true;
      void this.abort();
      const e = r.err;
      const id = this.#msgId;
      this.#complete(
        new SmtpSendError(
          e.code ?? 'ECONNECTION',
          id,
          this.host,
          `smtp send #${id} to ${hostPort(this.host, this.port)}: ${e.message}`,
          { cause: e },
        ),
      );
      return;
    }
    if (r.err.responseCode === 503) this.#broken = true;
    else if (!this.#conn.destroyed) {
      this.#reset((ok) => {
        if (!ok) this.#broken = true;
        this.#complete(null, outcome);
      });
      return;
    }
    this.#complete(null, outcome);
  }

  /**
   * Hands the outcome over. The session goes idle only if no message follows at once: a caller
   * that sends the next one from within `done` keeps the socket's command timeout and leaves the
   * idle timer alone; one that sends after a promise (a store reading from disk) has until the
   * end of the current microtask queue.
   */
  #complete(err: Error | null, outcome?: Outcome): void {
    const done = this.#done!;
    this.#done = undefined;
    this.#busy = false;
    if (!this.usable) {
      if (!this.#conn.destroyed) void this.close();
      done(err, outcome);
      return;
    }
    done(err, outcome);
    if (this.#busy || this.#idlePending || !this.usable) return;
    this.#idlePending = true;
    queueMicrotask(this.#enterIdle);
  }

  /** After a transaction, unless the next one started meanwhile (bound once). */
  readonly #enterIdle = (): void => {
    if (!this.#idlePending || this.#busy || !this.usable) return;
    this.#idlePending = false;
    this.#startIdle();
  };

  /**
   * Ends the session. Idle and healthy: QUIT, then the server closes the connection and we close
   * ours; if that has not happened within timeouts.quit (no reply, or no close after it), the
   * connection is reset. Busy (a transaction in flight, which then rejects), broken or already
   * closing: abort(). Resolves once the socket has closed. Never rejects.
   */
  close(): Promise<void> {
    this.#closing ??= this.#quit();
    return this.#closing;
  }

  /**
   * Gives up on the session: resets the connection (whatever is unsent is discarded, the server
   * drops the connection at once) and resolves once the socket has closed. A send() in flight
   * rejects. Idempotent, also during close(). Never rejects.
   */
  abort(): Promise<void> {
    this.#closed = true;
    this.#stopIdle();
    const aborting = this.#link.abort();
    this.#closing ??= aborting;
    return aborting;
  }

  async #quit(): Promise<void> {
    this.#closed = true;
    this.#stopIdle();
    const conn = this.#conn;
    const link = this.#link;
    if (this.#busy || conn.destroyed || link.closed) {
      // No QUIT in the middle of a transaction, nor on a connection nodemailer already gave up.
      await link.abort();
      return;
    }
    // nodemailer's socket timer fires if QUIT gets no reply in time: that close is a reset too.
    this.#setSocketTimeout(this.#t.quit);
    link.quitting();
    try {
      conn.quit();
    } catch {
      await link.abort();
      return;
    }
    // nodemailer ends the socket on the reply to QUIT; the socket closes when the server closes
    // its side. Past timeouts.quit from QUIT, reset: the core releases the lease when close()
    // resolves, and the next connection to the same server may be granted at once, so the
    // connection must be gone at the receiver by then (the soak test saw one over the limit).
    if (!(await within(link.gone, this.#t.quit))) await link.abort();
  }

  /** RSET after a refused message; `done(false)` when it failed (the session is retired). */
  #reset(done: (ok: boolean) => void): void {
    const conn = this.#conn;
    let settled = false;
    const finish = (ok: boolean) => {
      if (settled) return;
      settled = true;
      conn.off('end', onEnd);
      done(ok);
    };
    const onEnd = () => finish(false);
    conn.once('end', onEnd);
    try {
      conn.reset((err) => finish(!err));
    } catch {
      finish(false);
    }
  }

  #startIdle(): void {
    // nodemailer's socket timer is the per-command timeout; while idle our own timer decides.
    this.#setSocketTimeout(0);
    this.#commandTimeout = false;
    this.#idle.arm();
  }

  #stopIdle(): void {
    this.#idlePending = false;
    this.#idle.disarm();
  }

  #setSocketTimeout(ms: number): void {
    const s = this.#conn._socket;
    if (s && !s.destroyed) s.setTimeout(ms);
  }
}
