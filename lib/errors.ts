// Error shapes of the public API: TypeError for a wrong type, RangeError for a value out of range,
// and a MailQueueError with a `code` for a state (closed, re-entrant call, duplicate id, ...). Messages
// name the argument first, so a log line says what was wrong without a stack trace.
//
// MailQueueError is the one error class of the package: lib/ throws it (codedError() and the
// subclasses below, SpoolCorruptError, SmtpOpenError, SmtpSendError), and lib/native.ts hands it to
// the addon at load (setErrorClass), so the native core's coded errors are MailQueueErrors too.

/**
 * Every code the package throws or reports (docs/api.md#errors says when each one is thrown).
 * test/core/errors.test.ts scans lib/ and native/ for ERR_* strings and fails on one missing here.
 */
export const ERROR_CODES = [
  'ERR_CLOSED',
  'ERR_REENTRANT',
  'ERR_CONFIG',
  'ERR_DUPLICATE_ID',
  'ERR_UNKNOWN_ID',
  'ERR_IN_FLIGHT',
  'ERR_NOT_IN_FLIGHT',
  'ERR_UNKNOWN_DOMAIN',
  'ERR_UNKNOWN_CONNECTION',
  'ERR_TOO_MANY',
  'ERR_NO_VISIT',
  'ERR_INTERNAL',
  'ERR_HOOK_FAILED',
  'ERR_SPOOL_CORRUPT',
  'ERR_SMTP_CONNECT',
  'ERR_SMTP_DNS',
  'ERR_SMTP_NULL_MX',
  'ERR_SMTP_NXDOMAIN',
  'ERR_SMTP_NO_ADDRESS',
  'ERR_SMTP_ROUTE',
  'ERR_HOST_CAP',
  'ERR_DOMAIN_FORGOTTEN',
  'ERR_DOMAIN_IN_USE',
  'ERR_DOMAIN_HELD',
  'ERR_CLUSTER',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * The package's error with a `code`. `C` is the code's type: one of ErrorCode by default, a
 * narrower union for the subclasses; SmtpSendError's also admits nodemailer's codes (ECONNECTION,
 * ETIMEDOUT, ...), which are not the package's own.
 */
export class MailQueueError<C extends string = ErrorCode> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'MailQueueError';
  }
}

/** The shape of a coded error (a MailQueueError is one). */
export interface CodedError extends Error {
  code: ErrorCode;
}

export function codedError(code: ErrorCode, message: string): MailQueueError {
  return new MailQueueError(code, message);
}

/** A provider that threw, returned a Promise or returned a non-number: reported, then skipped. */
export class HookError extends MailQueueError<'ERR_HOOK_FAILED'> {
  constructor(
    readonly hook: string,
    readonly domain: string | undefined,
    readonly binding: string | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_HOOK_FAILED', message, options);
    this.name = 'HookError';
  }
}
