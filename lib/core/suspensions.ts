// Suspensions and cool-downs: why a (domain, binding) pair opens no connection. Three sources
// combine, and lifting one leaves the others in force:
// - configuration (suspendDelivery, in the pair's settings) and the operator (suspend(domain,
//   binding?), suspendBinding(binding)): no new connections, and open connections stop taking mail;
// - a cool-down after a failed connection attempt (host_failure_retry): no new connections only.
// The native core is told the combined state of a pair whenever one of them changes.
import { native } from '../native.js';
import { checkDomainName } from '../validate.js';
import type { CoreContext } from './core_context.js';
import type { DomainTable } from './domain_table.js';

export class Suspensions {
  readonly #byDomain = new Map<string, Set<number>>(); // operator: domain -> binding slots
  readonly #bindings = new Set<number>(); // operator: every domain of these bindings
  readonly #cooling = new Map<string, { until: number; timer: NodeJS.Timeout }>(); // host_failure_retry

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
    return this.domains.pair(d, b).suspended || this.operatorSuspended(this.domains.records[d].name, b);
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
    const key = `${d}:${b}`;
    const old = this.#cooling.get(key);
    if (old) clearTimeout(old.timer);
    const timer = setTimeout(
      () => {
        this.#cooling.delete(key);
        if (this.ctx.closed) return;
        this.apply(d, b);
        this.poke();
      },
      Math.max(0, until - this.ctx.now()),
    );
    timer.unref();
    this.#cooling.set(key, { until, timer });
    this.apply(d, b);
  }

  /** Drops the cool-down timers (the core is closing). */
  clear(): void {
    for (const c of this.#cooling.values()) clearTimeout(c.timer);
    this.#cooling.clear();
  }
}
