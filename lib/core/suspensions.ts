// Suspensions and cool-downs: why a (domain, binding) pair opens no connection. Four sources
// combine, and lifting one leaves the others in force:
// - configuration (suspendDelivery, in the pair's settings) and the operator (suspend(domain,
//   binding?), suspendBinding(binding)): no new connections, and open connections stop taking mail;
// - a pause for a while (pause(), what a response rule asks for): the same, lifted by itself;
// - a cool-down after a failed connection attempt (host_failure_retry): no new connections only.
// The native core is told the combined state of a pair whenever one of them changes.
import { native } from '../native.js';
import { checkDomainName, typeName } from '../validate.js';

/** The longest pause: what a timer can wait (2^31 - 1 ms, about 24.8 days). */
const MAX_PAUSE_MS = 2 ** 31 - 1;
import type { CoreContext } from './core_context.js';
import type { DomainTable } from './domain_table.js';

export class Suspensions {
  readonly #byDomain = new Map<string, Set<number>>(); // operator: domain -> binding slots
  readonly #bindings = new Set<number>(); // operator: every domain of these bindings
  readonly #cooling = new Map<string, { until: number; timer: NodeJS.Timeout }>(); // host_failure_retry
  readonly #paused = new Map<string, { until: number; timer: NodeJS.Timeout }>(); // pause(): policies

  constructor(
    private readonly ctx: CoreContext,
    private readonly domains: DomainTable,
    /** Asks for a maintenance pass soon (a pair may open connections again). */
    private readonly poke: () => void,
  ) {}

  /** Suspends or resumes a domain (all bindings, or one), seen or not yet seen. */
  set(domain: string, binding: string | number | undefined, flag: boolean): void {
    this.ctx.live();
    const name = checkDomainName(domain, 'domain');
    const slots =
      binding === undefined ? this.ctx.bindings.map((_, i) => i) : [this.domains.bindingSlot(binding, 'binding')];
    let set = this.#byDomain.get(name);
    if (flag) {
      if (!set) this.#byDomain.set(name, (set = new Set()));
      for (const s of slots) set.add(s);
    } else if (set) {
      for (const s of slots) set.delete(s);
    }
    const d = this.domains.byName.get(name);
    if (d !== undefined) for (const s of slots) this.apply(d, s);
    if (!flag) this.poke();
  }

  /** Suspends or resumes a binding on every domain, now and for domains seen later. */
  setBinding(binding: string | number, flag: boolean): void {
    this.ctx.live();
    const b = this.domains.bindingSlot(binding, 'binding');
    if (flag) this.#bindings.add(b);
    else this.#bindings.delete(b);
    for (let d = 0; d < this.domains.records.length; d++)
      if (this.domains.live(d)) for (let s = 0; s < this.ctx.bindings.length; s++) this.apply(d, s);
    if (!flag) this.poke();
  }

  /** Suspended by the operator, for a domain that may not exist yet (its creation asks). */
  operatorSuspended(name: string, b: number): boolean {
    return this.#bindings.has(b) || (this.#byDomain.get(name)?.has(b) ?? false);
  }

  bindingSuspended(b: number): boolean {
    return this.#bindings.has(b);
  }

  // A pair opens no connection while the configuration, the operator (for the pair, the domain or
  // the binding) or a recent connection failure says so. Resuming one of them leaves the others.
  isSuspended(d: number, b: number): boolean {
    return this.deliverySuspended(d, b) || this.#cooling.has(`${d}:${b}`);
  }

  // Suspended by configuration or by the operator: open connections stop taking messages too. (A
  // connect-failure cool-down only holds back new connections.)
  deliverySuspended(d: number, b: number): boolean {
    return (
      this.domains.pair(d, b).suspended ||
      this.operatorSuspended(this.domains.records[d].name, b) ||
      (this.#paused.size > 0 && this.#paused.has(`${d}:${b}`))
    );
  }

  cooling(d: number, b: number): boolean {
    return this.#cooling.has(`${d}:${b}`);
  }

  apply(d: number, b: number): void {
    native.setSuspended(this.ctx.handle, d, b, this.isSuspended(d, b));
    this.ctx.limitsEpoch++; // a pair's limits changed: a pass's view of later bindings is stale
  }

  /** (d, b) opens no new connection until `until` (ms since the epoch). */
  cool(d: number, b: number, until: number): void {
    this.#until(this.#cooling, d, b, until);
  }

  /** (d, b) delivers nothing until `until`: no new connection, and open ones take no message. A
   *  later pause of the same pair replaces it (`until` in the past lifts it). */
  pause(d: number, b: number, until: number): void {
    this.#until(this.#paused, d, b, until);
  }

  /** pause() by names, for `durationMs` from now (0 lifts it); false when the domain has no record. */
  pauseFor(domain: string, binding: string | number, durationMs: number): boolean {
    this.ctx.live();
    const name = checkDomainName(domain, 'domain');
    const b = this.domains.bindingSlot(binding, 'binding');
    if (typeof durationMs !== 'number') throw new TypeError(`durationMs must be a number, got ${typeName(durationMs)}`);
    if (!(durationMs >= 0) || durationMs > MAX_PAUSE_MS)
      throw new RangeError(`durationMs must be from 0 to ${MAX_PAUSE_MS} ms, got ${durationMs}`);
    const d = this.domains.byName.get(name);
    if (d === undefined) return false;
    this.pause(d, b, this.ctx.now() + durationMs);
    return true;
  }

  /** When a pause of (d, b) ends, or undefined. */
  pausedUntil(d: number, b: number): number | undefined {
    return this.#paused.get(`${d}:${b}`)?.until;
  }

  #until(map: Map<string, { until: number; timer: NodeJS.Timeout }>, d: number, b: number, until: number): void {
    const key = `${d}:${b}`;
    const old = map.get(key);
    if (old) clearTimeout(old.timer);
    const lift = () => {
      map.delete(key);
      if (this.ctx.closed) return;
      this.apply(d, b);
      this.poke();
    };
    const wait = until - this.ctx.now();
    if (!(wait > 0)) {
      if (old) lift();
      return;
    }
    const timer = setTimeout(lift, wait);
    timer.unref();
    map.set(key, { until, timer });
    this.apply(d, b);
  }

  /** Drops the cool-down and pause timers (the core is closing). */
  clear(): void {
    for (const m of [this.#cooling, this.#paused]) {
      for (const c of m.values()) clearTimeout(c.timer);
      m.clear();
    }
  }
}
