// Errors of the SMTP transport: SmtpOpenError (open() failed, with every attempt made),
// SmtpSendError (send() rejected), and the helpers that type nodemailer's errors.

import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import { MailQueueError } from '../errors.js';
import { hostPort, type MxErrorCode } from './mx_resolver.js';

// ---- errors ---------------------------------------------------------------------------------

/** One connection attempt that open() made, or a host it could not resolve. */
export interface SmtpAttempt {
  /** MX or route host name (or IP). */
  host: string;
  /** The address connected to; the host itself for a route by name (the OS resolves it). */
  address: string;
  port: number;
  /** ECONNREFUSED, ETIMEDOUT, EPROTOCOL (bad greeting), ETLS, ENOTFOUND (host did not resolve), ... */
  code: string;
  /** The SMTP reply code when the server answered (a 421 greeting, say). */
  responseCode?: number;
  message: string;
}

export type SmtpOpenErrorCode = MxErrorCode | 'ERR_SMTP_CONNECT' | 'ERR_SMTP_ROUTE' | 'ERR_CLOSED' | 'ERR_HOST_CAP';

/**
 * Why open() failed. `permanent: true` (null MX, NXDOMAIN, no MX and no address) means the
 * domain can never receive mail, and the core bounces; otherwise `transient: true` and the core
 * retries later. `attempts` lists every host and address tried, in order.
 */
export class SmtpOpenError extends MailQueueError<SmtpOpenErrorCode> {
  readonly permanent: boolean;
  readonly transient: boolean;
  /** Distinct `host:port` strings tried, in order. */
  readonly hosts: readonly string[];
  constructor(
    code: SmtpOpenErrorCode,
    readonly domain: string,
    readonly binding: string,
    readonly attempts: readonly SmtpAttempt[],
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = 'SmtpOpenError';
    this.permanent = code === 'ERR_SMTP_NULL_MX' || code === 'ERR_SMTP_NXDOMAIN' || code === 'ERR_SMTP_NO_ADDRESS';
    this.transient = !this.permanent;
    this.hosts = [...new Set(attempts.map((a) => hostPort(a.host, a.port)))];
  }
}

/**
 * SmtpSendError's code: ERR_CLOSED or ERR_REENTRANT for a send() misused, else nodemailer's code for
 * the broken session (the usual ones listed; any other string nodemailer or the socket reports).
 */
export type SmtpSendErrorCode =
  | 'ERR_CLOSED'
  | 'ERR_REENTRANT'
  | 'ECONNECTION'
  | 'ETIMEDOUT'
  | 'ESOCKET'
  | 'EPROTOCOL'
  | 'ETLS'
  | (string & {});

/**
 * Why send() rejected: the session broke during the message (connection dropped, a reply timed
 * out, a protocol error), or send() was misused (`ERR_CLOSED`: the session is not usable;
 * `ERR_REENTRANT`: another send() is in flight). `code` is nodemailer's for a broken session
 * (ECONNECTION, ETIMEDOUT, ESOCKET, EPROTOCOL, ETLS). Always transient.
 */
export class SmtpSendError extends MailQueueError<SmtpSendErrorCode> {
  readonly transient = true as const;
  readonly permanent = false as const;
  constructor(
    code: SmtpSendErrorCode,
    readonly messageId: number,
    readonly host: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = 'SmtpSendError';
  }
}

export type SmtpError = SMTPConnection.SMTPError & { timeoutType?: string };

export function asSmtpError(err: unknown): SmtpError {
  if (err instanceof Error) return err as SmtpError;
  return new Error(String(err)) as SmtpError;
}

export function codedError(code: string, message: string): SmtpError {
  const e = new Error(message) as SmtpError;
  e.code = code;
  return e;
}
