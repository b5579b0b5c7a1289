// The logger a core may be given (options.logger): any object with pino's four methods, each
// taking (obj, msg). The core logs connections and outcomes at debug and the failures it survives
// at error (docs/delivery-api.md#logging). Debug lines cost only when debug is on: a connection
// asks once, when it opens, and formats nothing per message otherwise.
import { typeName } from './validate.js';

/** A pino-compatible logger: pino itself, or anything with these methods. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  /** pino's: whether a level is on. Asked once per connection, when present. */
  isLevelEnabled?(level: string): boolean;
  /** pino's level name, read when isLevelEnabled is absent. */
  level?: string;
}

const METHODS = ['debug', 'info', 'warn', 'error'] as const;
/** pino's level names, lowest first: a level below the logger's is off. */
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** Checks options.logger: undefined, or an object with debug, info, warn and error functions. */
export function checkLogger(value: unknown, name: string): Logger | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null)
    throw new TypeError(`${name} must be a pino-compatible logger (debug, info, warn, error), got ${typeName(value)}`);
  const l = value as Record<string, unknown>;
  for (const m of METHODS) {
    if (typeof l[m] !== 'function')
      throw new TypeError(`${name}.${m} must be a function (a pino-compatible logger), got ${typeName(l[m])}`);
  }
  if (l.isLevelEnabled !== undefined && typeof l.isLevelEnabled !== 'function')
    throw new TypeError(`${name}.isLevelEnabled must be a function when given, got ${typeName(l.isLevelEnabled)}`);
  return value as Logger;
}

/** Whether the logger writes debug lines: isLevelEnabled('debug'), else its level name, else yes. */
export function debugEnabled(logger: Logger | undefined): boolean {
  if (logger === undefined) return false;
  try {
    if (logger.isLevelEnabled) return logger.isLevelEnabled('debug') === true;
    const i = typeof logger.level === 'string' ? LEVELS.indexOf(logger.level) : -1;
    return i < 0 || i <= LEVELS.indexOf('debug');
  } catch {
    return false; // a logger that throws when asked writes nothing of ours
  }
}

/** Calls a logger method, never throwing: a broken logger must not disturb delivery. */
export function logSafely(logger: Logger, level: 'debug' | 'error', obj: object, msg: string): void {
  try {
    logger[level](obj, msg);
  } catch {
    // nothing to do: the log is not where failures are reported (that is the 'error' event)
  }
}
