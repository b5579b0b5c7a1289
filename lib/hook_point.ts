// A hook point in the style of Momentum's EC_DECLARE_HOOK: providers registered first or last,
// each called with the closure it registered plus the call's arguments.
//
// - 'chain' hooks (__mail_queue_maintain): the first provider that returns a non-zero number ends
//   the chain and that value is returned; when every provider returns 0 (or none is registered),
//   the fallback (the native default) runs and its result is returned.
// - 'void' hooks (connection_goal, pre/post domain maintenance): every provider runs; return values
//   are ignored, results travel through the mutable box argument (last writer wins).
//
// A provider that throws, returns a Promise (providers are synchronous) or returns something that
// is not a number does not stop maintenance: it is reported and the chain goes on as if it had
// returned 0. call() from inside one of this point's own providers is refused (ERR_REENTRANT).
import { codedError, HookError } from './errors.js';
import { checkFunction } from './validate.js';

// The closure's type is the registrant's choice: with `unknown`, a provider typed `(closure: string, ...)`
// would not be assignable (strictFunctionTypes), and an untyped one could not use its closure.
// biome-ignore lint/suspicious/noExplicitAny: the closure's type is the registrant's (see above)
export type Provider<A extends unknown[]> = (closure: any, ...args: A) => unknown;

interface Entry<A extends unknown[]> {
  readonly fn: Provider<A>;
  readonly closure: unknown;
}

export interface HookPointOptions<A extends unknown[]> {
  kind: 'chain' | 'void';
  /** Runs when every provider returned 0 ('chain' only). */
  fallback?: (...args: A) => number;
  /** Checks call()'s arguments before anything runs (throws TypeError/RangeError). */
  checkArgs?: (args: A) => void;
  /** Throws when the owner can no longer be used (closed). */
  guard?: () => void;
  /** Where a failing provider is reported. */
  report: (err: HookError) => void;
  /** Names the domain and binding of a call, for reports. */
  describe?: (args: A) => { domain?: string; binding?: string };
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    (typeof v === 'object' || typeof v === 'function') &&
    v !== null &&
    typeof (v as { then?: unknown }).then === 'function'
  );
}

// The hooks' arities spelled out: a call with a spread argument list costs several times a plain one.
type AnyFn = (...rest: unknown[]) => unknown;
function apply(fn: AnyFn, first: unknown, withFirst: boolean, a: unknown[]): unknown {
  if (!withFirst) {
    switch (a.length) {
      case 3:
        return fn(a[0], a[1], a[2]);
      case 4:
        return fn(a[0], a[1], a[2], a[3]);
      case 6:
        return fn(a[0], a[1], a[2], a[3], a[4], a[5]);
      default:
        return fn(...a);
    }
  }
  switch (a.length) {
    case 3:
      return fn(first, a[0], a[1], a[2]);
    case 4:
      return fn(first, a[0], a[1], a[2], a[3]);
    case 6:
      return fn(first, a[0], a[1], a[2], a[3], a[4], a[5]);
    default:
      return fn(first, ...a);
  }
}

/** The key of HookPoint's unchecked call, for lib/core/maintenance_pass.ts only (not exported by the package). */
export const callTrusted: unique symbol = Symbol('HookPoint.callTrusted');

export class HookPoint<A extends unknown[]> {
  // Replaced, never mutated, on (un)registration: a call iterates the list it started with, so a
  // provider may register or unregister during a call without skipping or repeating anyone.
  #entries: readonly Entry<A>[] = [];
  #calling = false;
  readonly #options: HookPointOptions<A>;

  constructor(
    readonly name: string,
    options: HookPointOptions<A>,
  ) {
    this.#options = options;
  }

  /** True when at least one provider is registered. */
  has(): boolean {
    return this.#entries.length > 0;
  }

  /** True while call() runs (providers or the fallback). */
  get calling(): boolean {
    return this.#calling;
  }

  get size(): number {
    return this.#entries.length;
  }

  /** Puts a provider at the front of the chain; returns a function that unregisters it. */
  registerFirst(fn: Provider<A>, closure?: unknown): () => void {
    return this.#register(fn, closure, true);
  }

  /** Puts a provider at the end of the chain; returns a function that unregisters it. */
  registerLast(fn: Provider<A>, closure?: unknown): () => void {
    return this.#register(fn, closure, false);
  }

  #register(fn: Provider<A>, closure: unknown, first: boolean): () => void {
    this.#options.guard?.();
    checkFunction(fn, 'fn');
    const entry: Entry<A> = { fn, closure };
    this.#entries = first ? [entry, ...this.#entries] : [...this.#entries, entry];
    return () => {
      this.#entries = this.#entries.filter((e) => e !== entry);
    };
  }

  /** Runs the chain (and the fallback) with these arguments. */
  call(...args: A): number {
    this.#options.guard?.();
    this.#refuseReentry();
    this.#options.checkArgs?.(args);
    return this.#run(args);
  }

  /**
   * call() for the owner's own passes, whose arguments are right by construction and whose owner
   * is known to be open: the argument checks and the guard are skipped (they cost more than a
   * passive provider itself). Re-entrancy is still refused. The owner passes the arguments as an
   * array it reuses from call to call (no array made per call; the chain never keeps it). Keyed by
   * a symbol the package does not export, so it is not part of the public API.
   */
  [callTrusted](args: A): number {
    return this.#run(args);
  }

  #refuseReentry(): void {
    if (this.#calling) {
      throw codedError('ERR_REENTRANT', `${this.name}.call() was called from inside one of its own providers`);
    }
  }

  #run(args: A): number {
    this.#refuseReentry();
    this.#calling = true;
    try {
      const entries = this.#entries;
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i];
        let result: unknown;
        try {
          result = apply(entry.fn as AnyFn, entry.closure, true, args);
        } catch (err) {
          this.#fail(args, 'threw', err);
          continue;
        }
        if (result === 0 || result === undefined) continue;
        if (isThenable(result)) {
          // Swallow the eventual rejection: the provider has already been reported.
          Promise.resolve(result).catch(() => undefined);
          this.#fail(args, 'returned a Promise (providers must be synchronous)');
          continue;
        }
        if (this.#options.kind === 'void') continue;
        if (typeof result !== 'number' || Number.isNaN(result)) {
          this.#fail(args, `returned ${typeof result === 'number' ? 'NaN' : typeof result}, not a number`);
          continue;
        }
        return result;
      }
      const fallback = this.#options.fallback;
      return fallback ? (apply(fallback as AnyFn, undefined, false, args) as number) : 0;
    } finally {
      this.#calling = false;
    }
  }

  #fail(args: A, what: string, cause?: unknown): void {
    const where = this.#options.describe?.(args) ?? {};
    const detail = cause instanceof Error ? `: ${cause.message}` : cause === undefined ? '' : `: ${String(cause)}`;
    const at = [where.domain, where.binding].filter((x) => x !== undefined).join('/');
    const err = new HookError(
      this.name,
      where.domain,
      where.binding,
      `${this.name} provider ${what}${at ? ` (${at})` : ''}${detail}`,
      cause === undefined ? undefined : { cause },
    );
    this.#options.report(err);
  }
}
