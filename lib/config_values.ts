// The values of configuration options, each checked where it is read (lib/config.ts's RULES):
// limits, timer intervals, seconds, retries, aggressiveness and rates. A bad value is a TypeError
// or RangeError naming where it was found.
import { typeName } from './validate.js';

export const MAX_LIMIT = 4294967294;

export function limit(value: unknown, where: string): number {
  if (typeof value !== 'number') throw new TypeError(`${where} must be a number, got ${typeName(value)}`);
  if (!Number.isInteger(value) || value < 0 || value > MAX_LIMIT) {
    throw new RangeError(`${where} must be an integer from 0 to ${MAX_LIMIT}, got ${value}`);
  }
  return value;
}

// Times that become timers: setTimeout fires at once for anything above 2^31 - 1 ms.
export const MAX_TIMER_SECONDS = 2147483;

export function timerSeconds(value: unknown, where: string, allowZero: boolean): number {
  if (typeof value !== 'number') throw new TypeError(`${where} must be a number of seconds, got ${typeName(value)}`);
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0) || value > MAX_TIMER_SECONDS) {
    throw new RangeError(
      `${where} must be a number of seconds from ${allowZero ? 0 : 'above 0'} to ${MAX_TIMER_SECONDS}, got ${value}`,
    );
  }
  return value;
}

export const secondsOrZero = (value: unknown, where: string) => timerSeconds(value, where, true);
export const timerInterval = (value: unknown, where: string) => timerSeconds(value, where, false);

export function bool(value: unknown, where: string): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${where} must be a boolean, got ${typeName(value)}`);
  return value;
}

export function retries(value: unknown, where: string): number {
  if (value === 'auto') return Infinity;
  if (typeof value !== 'number')
    throw new TypeError(`${where} must be a whole number or 'auto', got ${typeName(value)}`);
  // The attempt count is 16 bits in the native message table.
  if (!Number.isInteger(value) || value < 0 || value > 65534)
    throw new RangeError(`${where} must be an integer from 0 to 65534 or 'auto', got ${value}`);
  return value;
}

export function seconds(value: unknown, where: string): number {
  if (typeof value !== 'number') throw new TypeError(`${where} must be a number of seconds, got ${typeName(value)}`);
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`${where} must be a positive number of seconds, got ${value}`);
  return value;
}

export function parseAggressiveness(value: unknown, where: string): number {
  if (value === 'normal') return 0.3;
  if (value === 'high') return 0.75;
  if (typeof value === 'number') {
    if (!(value > 0 && value <= 1))
      throw new RangeError(`${where} must be 'normal', 'high' or a number in (0, 1], got ${value}`);
    return value;
  }
  throw new TypeError(`${where} must be 'normal', 'high' or a number in (0, 1], got ${typeName(value)}`);
}

export interface Rate {
  count: number;
  windowMs: number;
}

/** "N" (per second), "N/secs", or a number N: at most N in any window of secs seconds. */
export function parseRate(value: unknown, where: string): Rate {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 1 || value > 1_000_000) {
      throw new RangeError(`${where} must be a whole number from 1 to 1000000 per second, got ${value}`);
    }
    return { count: value, windowMs: 1000 };
  }
  if (typeof value !== 'string') throw new TypeError(`${where} must be "N" or "N/secs", got ${typeName(value)}`);
  const m = /^\s*(\d+)\s*(?:\/\s*(\d+(?:\.\d+)?)\s*)?$/.exec(value);
  if (!m) throw new RangeError(`${where} must be "N" or "N/secs", got ${JSON.stringify(value.slice(0, 40))}`);
  const count = Number(m[1]);
  const secs = m[2] === undefined ? 1 : Number(m[2]);
  if (count < 1 || count > 1_000_000) throw new RangeError(`${where}: N must be from 1 to 1000000, got ${count}`);
  if (!(secs > 0 && secs <= 86400)) throw new RangeError(`${where}: secs must be in (0, 86400], got ${secs}`);
  return { count, windowMs: secs * 1000 };
}
