// Error shapes of the public API: TypeError for a wrong type, RangeError for a value out of range,
// and an Error with a `code` for a state (closed, re-entrant call, duplicate id, ...). Messages
// name the argument first, so a log line says what was wrong without a stack trace.

export type ErrorCode =
  | 'ERR_CLOSED'
  | 'ERR_REENTRANT'
  | 'ERR_DUPLICATE_ID'
  | 'ERR_UNKNOWN_ID'
  | 'ERR_IN_FLIGHT'
  | 'ERR_NOT_IN_FLIGHT'
  | 'ERR_UNKNOWN_DOMAIN'
  | 'ERR_UNKNOWN_CONNECTION'
  | 'ERR_HOOK_FAILED'
  | 'ERR_CONFIG'
  | 'ERR_SPOOL_CORRUPT';

export interface CodedError extends Error {
  code: ErrorCode;
}

export function codedError(code: ErrorCode, message: string): CodedError {
  const e = new Error(message) as CodedError;
  e.code = code;
  return e;
}

/** A provider that threw, returned a Promise or returned a non-number: reported, then skipped. */
export class HookError extends Error {
  readonly code = 'ERR_HOOK_FAILED' as const;
  constructor(
    readonly hook: string,
    readonly domain: string | undefined,
    readonly binding: string | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HookError';
  }
}
