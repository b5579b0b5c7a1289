// SmtpSession: one open SMTP session, sending one message at a time (send, close, abort, the
// transaction itself and the RSET after a refusal).

import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import { hostPort } from './mx_resolver.js';
import { SmtpSendError, asSmtpError, codedError, type SmtpError } from './smtp_errors.js';
import { within, type Link } from './smtp_link.js';
import type { Timeouts } from './smtp_options.js';
import { checkMessage, deliveredOutcome, has8bit, invalidEnvelope, replyOutcome } from './smtp_outcome.js';
import type { Outcome, OutboundMessage, TransportSession } from './transport.js';

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
  #idleTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

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
    conn.once('end', () => this.#stopIdle());
    void link.gone.then(() => {
      this.#stopIdle();
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

  async send(message: OutboundMessage): Promise<Outcome> {
    const msg = checkMessage(message);
    if (this.#busy) {
      throw new SmtpSendError(
        'ERR_REENTRANT',
        msg.id,
        this.host,
        `smtp send #${msg.id}: another message is in flight on this session`,
      );
    }
    if (!this.usable) {
      throw new SmtpSendError(
        'ERR_CLOSED',
        msg.id,
        this.host,
        `smtp send #${msg.id}: the session to ${this.host} is not usable`,
      );
    }
    const invalid = invalidEnvelope(msg.envelope);
    if (invalid) return { kind: 'permanent', response: invalid };

    this.#busy = true;
    this.#stopIdle();
    this.#setSocketTimeout(this.#t.command);
    try {
      const r = await this.#transact(msg);
      if ('info' in r) return deliveredOutcome(r.info);
      const outcome = replyOutcome(r.err);
      if (!outcome) {
        // Broken mid-transaction: give up on the connection (a reset, see Link).
        this.#broken = true;
        void this.abort();
        const e = r.err;
        throw new SmtpSendError(
          e.code ?? 'ECONNECTION',
          msg.id,
          this.host,
          `smtp send #${msg.id} to ${hostPort(this.host, this.port)}: ${e.message}`,
          { cause: e },
        );
      }
      if (r.err.responseCode === 503) this.#broken = true;
      else if (!this.#conn.destroyed && !(await this.#reset())) this.#broken = true;
      return outcome;
    } finally {
      this.#busy = false;
      if (this.usable) this.#startIdle();
      else if (!this.#conn.destroyed) void this.close();
    }
  }

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

  #transact(msg: OutboundMessage): Promise<Transaction> {
    const conn = this.#conn;
    return new Promise<Transaction>((resolve) => {
      let settled = false;
      const finish = (r: Transaction) => {
        if (settled) return;
        settled = true;
        clearTimeout(cap);
        conn.off('end', onEnd);
        resolve(r);
      };
      // nodemailer fails the send in flight when the connection breaks, but close() by us (or
      // an unexpected path) ends it silently: this makes sure send() settles anyway.
      const onEnd = () =>
        setImmediate(() => finish({ err: codedError('ECONNECTION', 'the connection closed during the transaction') }));
      const cap = setTimeout(() => {
        const err = codedError('ETIMEDOUT', `the transaction took longer than ${this.#t.message} ms`);
        void this.abort(); // a reset: the peer may have stopped reading megabytes ago
        finish({ err });
      }, this.#t.message);
      conn.once('end', onEnd);
      const body = msg.body;
      conn.send(
        {
          from: msg.envelope.from,
          to: msg.envelope.to,
          size: body.length,
          use8BitMime: has8bit(body),
        },
        body,
        (err, info) => finish(err ? { err: asSmtpError(err) } : { info }),
      );
    });
  }

  #reset(): Promise<boolean> {
    const conn = this.#conn;
    return new Promise<boolean>((resolve) => {
      let done = false;
      const finish = (ok: boolean) => {
        if (done) return;
        done = true;
        conn.off('end', onEnd);
        resolve(ok);
      };
      const onEnd = () => finish(false);
      conn.once('end', onEnd);
      try {
        conn.reset((err) => finish(!err));
      } catch {
        finish(false);
      }
    });
  }

  #startIdle(): void {
    this.#stopIdle();
    // nodemailer's socket timer is the per-command timeout; while idle our own timer decides.
    this.#setSocketTimeout(0);
    this.#idleTimer = setTimeout(() => void this.close(), this.#t.idle);
    this.#idleTimer.unref();
  }

  #stopIdle(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  #setSocketTimeout(ms: number): void {
    const s = this.#conn._socket;
    if (s && !s.destroyed) s.setTimeout(ms);
  }
}
