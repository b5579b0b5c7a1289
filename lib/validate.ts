// Argument checks for the public API. Each throws a TypeError or RangeError whose message starts
// with the argument's name; none changes any state.

export const MAX_ID = Number.MAX_SAFE_INTEGER;
const MAX_DOMAIN_LENGTH = 253;

export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}

export function checkId(v: unknown, name: string): number {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeName(v)}`);
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`${name} must be a safe integer from 0 to 2^53-1, got ${v}`);
  }
  return v;
}

/** The largest time (ms since the epoch, either sign) the core takes: the range of a JS Date. */
export const MAX_TIME = 8.64e15;

export function checkTime(v: unknown, name: string): number {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number (ms since the epoch), got ${typeName(v)}`);
  if (!Number.isFinite(v) || Math.abs(v) > MAX_TIME)
    throw new RangeError(`${name} must be finite and within ±8.64e15 ms (the range of a Date), got ${v}`);
  return v;
}

/** A finite time, or Infinity for "never". */
export function checkExpiry(v: unknown, name: string): number {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number (ms since the epoch), got ${typeName(v)}`);
  if (Number.isNaN(v) || v === -Infinity) throw new RangeError(`${name} must be a time or Infinity, got ${v}`);
  return v;
}

export function checkInt(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeName(v)}`);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${v}`);
  }
  return v;
}

export function checkPriority(v: unknown, name: string): number {
  return checkInt(v, name, 0, 1);
}

export function checkFunction(v: unknown, name: string): void {
  if (typeof v !== 'function') throw new TypeError(`${name} must be a function, got ${typeName(v)}`);
}

export function checkObject(v: unknown, name: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new TypeError(`${name} must be an object, got ${typeName(v)}`);
  }
  return v as Record<string, unknown>;
}

/**
 * How checkKeys words an unknown key `k` of `name`: 'key' and 'option' give
 * `${name}: unknown key "k"` / `${name}: unknown option "k"`; 'listed' gives
 * `${name}.k is not a known option (known: a, b, ...)` (the SMTP transport's options).
 */
export type UnknownKeyWording = 'key' | 'option' | 'listed';

/**
 * Throws a RangeError for the first own enumerable key of `obj` that `allowed` lacks, worded as
 * `what` says. The enqueue hot path calls it: it costs what the loop it stands for costs (one
 * Object.keys array, a Set lookup a key; the message is built only on failure).
 */
export function checkKeys(
  obj: object,
  allowed: ReadonlySet<string>,
  name: string,
  what: UnknownKeyWording = 'key',
): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.has(k)) throw unknownKeyError(k, allowed, name, what);
  }
}

/** The first own enumerable key of `obj` that `allowed` lacks, for a caller that throws its own
 *  error (the configuration's ERR_CONFIG); undefined when there is none. */
export function unknownKey(obj: object, allowed: ReadonlySet<string>): string | undefined {
  for (const k of Object.keys(obj)) {
    if (!allowed.has(k)) return k;
  }
  return undefined;
}

function unknownKeyError(k: string, allowed: ReadonlySet<string>, name: string, what: UnknownKeyWording): RangeError {
  if (what === 'listed')
    return new RangeError(`${name}.${k} is not a known option (known: ${[...allowed].join(', ')})`);
  return new RangeError(`${name}: unknown ${what} ${JSON.stringify(k)}`);
}

/**
 * Domain names are compared case-insensitively and stored lower-cased. A name is 1 to 253
 * characters of letters, digits, '-', '_' and '.', or an address literal in brackets.
 */
export function checkDomainName(v: unknown, name: string): string {
  if (typeof v !== 'string') throw new TypeError(`${name} must be a string, got ${typeName(v)}`);
  if (v.length === 0 || v.length > MAX_DOMAIN_LENGTH) {
    throw new RangeError(`${name} must be 1 to ${MAX_DOMAIN_LENGTH} characters, got ${v.length}`);
  }
  const lower = v.toLowerCase();
  if (!/^(?:[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?|\[[0-9a-f.:]+\])$/.test(lower)) {
    throw new RangeError(`${name} is not a domain name: ${JSON.stringify(v.slice(0, 80))}`);
  }
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

export function checkBindingName(v: unknown, name: string): string {
  if (typeof v !== 'string') throw new TypeError(`${name} must be a string, got ${typeName(v)}`);
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(v)) {
    throw new RangeError(`${name} must be 1 to 64 letters, digits or _ . : -, got ${JSON.stringify(v.slice(0, 80))}`);
  }
  return v;
}

/** A detached typed array reports length 0; constructing a view over its buffer throws. */
function isDetached(a: ArrayBufferView): boolean {
  if (a.byteLength !== 0) return false;
  try {
    new Uint8Array(a.buffer);
    return false;
  } catch {
    return true;
  }
}

export function checkTypedArray<T extends ArrayBufferView>(
  v: unknown,
  ctor: abstract new (...args: never[]) => T,
  kind: string,
  name: string,
): T {
  if (!(v instanceof ctor)) throw new TypeError(`${name} must be a ${kind}, got ${typeName(v)}`);
  if (isDetached(v)) throw new TypeError(`${name} is detached (its buffer was transferred)`);
  return v;
}

/** The most delivery attempts a message counts (the core keeps them in 16 bits). */
export const MAX_ATTEMPTS = 65535;

/** Attempts made so far: a whole number from 0 to MAX_ATTEMPTS. */
export function checkAttempts(v: unknown, name: string): number {
  return checkInt(v, name, 0, MAX_ATTEMPTS);
}

const RETRY_STATE_KEYS: ReadonlySet<string> = new Set(['attempts', 'nextAttempt']);

/**
 * A message's retry state, { attempts, nextAttempt } and nothing else: attempts as checkAttempts,
 * nextAttempt a time as checkTime. Returns a copy.
 */
export function checkRetryState(v: unknown, name: string): { attempts: number; nextAttempt: number } {
  const s = checkObject(v, name);
  checkKeys(s, RETRY_STATE_KEYS, name);
  return {
    attempts: checkAttempts(s.attempts, `${name}.attempts`),
    nextAttempt: checkTime(s.nextAttempt, `${name}.nextAttempt`),
  };
}
