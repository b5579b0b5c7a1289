// Forgetting idle domains (docs/architecture.md §4, decision 46): a domain with no message, no
// connection and no suspension for forgetIdleDomainsAfter ms is forgotten, its native slot freed
// for the next new domain, and its name, record, settings and tallies dropped here; its next
// message makes it again, with its configuration resolved again.
//
// Found without walking the domains: the native core notes each domain once when it becomes idle
// (its last message or connection left); each sweep drains those notes into a queue in time order
// (one time per drain, so the queue stays sorted) and forgets the ones at its front that have been
// idle long enough. A note is stale when the domain was noted again later (it got mail and emptied
// again: the later note counts) and is skipped; a domain busy again refuses the forget and is noted
// anew when it empties; a suspended one (or one whose grant or expiry is not drained yet) is put
// back at the end of the queue to be asked again one idle period later.
import { native } from '../native.js';
import type { CoreContext } from './core_context.js';
import type { DomainTable } from './domain_table.js';

const FORGOTTEN = 0;
const HELD = 2;

export class IdleDomains {
  // The queue: domain slot and the time it was noted idle, from head to the end.
  #slots: number[] = [];
  #times: number[] = [];
  #head = 0;
  // The time of each slot's latest note (a note with another time is stale).
  readonly #notedAt: number[] = [];
  #buf = new Uint32Array(256);

  constructor(
    private readonly ctx: CoreContext,
    private readonly domains: DomainTable,
    /** ms a domain stays idle before it is forgotten; Infinity: never (the notes are dropped). */
    private readonly after: number,
  ) {}

  /** Forgets the domains idle for `after` ms or more at `now`; returns how many. */
  sweep(now: number): number {
    const h = this.ctx.live(); // hands staged arrivals over first: a staged message is mail
    this.#collect(h, now);
    if (this.after === Number.POSITIVE_INFINITY) return 0;
    let n = 0;
    const end = this.#slots.length;
    while (this.#head < end && this.#times[this.#head] + this.after <= now) n += this.#tryHead(h, now);
    this.#compact();
    return n;
  }

  /** Forgets every domain idle now (no message, no connection, no suspension), however short its
   *  idle time: for tests and operators. Walks every domain; returns how many it forgot. */
  forgetAll(): number {
    const h = this.ctx.live();
    this.#collect(h, this.ctx.now());
    let n = 0;
    const records = this.domains.records;
    for (let d = 0; d < records.length; d++) {
      if (!this.domains.live(d)) continue;
      if (native.forgetDomain(h, d) === FORGOTTEN) {
        this.domains.forget(d);
        n++;
      }
    }
    return n;
  }

  // The native notes since the last drain, into the queue at `now` (unless forgetting is off).
  #collect(h: number, now: number): void {
    const keep = this.after !== Number.POSITIVE_INFINITY;
    for (;;) {
      const k = native.drainIdle(h, this.#buf);
      if (keep) {
        for (let i = 0; i < k; i++) {
          const d = this.#buf[i];
          this.#slots.push(d);
          this.#times.push(now);
          this.#notedAt[d] = now;
        }
      }
      if (k < this.#buf.length) return;
    }
  }

  // The queue's head: forgotten (1), or skipped, dropped or put back (0).
  #tryHead(h: number, now: number): number {
    const d = this.#slots[this.#head];
    const t = this.#times[this.#head++];
    // A stale note (noted again since), or a slot freed by forgetAll() and not made again.
    if (this.#notedAt[d] !== t || !this.domains.live(d)) return 0;
    const r = native.forgetDomain(h, d);
    if (r === FORGOTTEN) {
      this.domains.forget(d);
      return 1;
    }
    if (r === HELD) {
      this.#slots.push(d);
      this.#times.push(now);
      this.#notedAt[d] = now;
    }
    return 0;
  }

  // Drops the entries before the head once they are most of the arrays.
  #compact(): void {
    if (this.#head < 1024 || this.#head * 2 < this.#slots.length) return;
    this.#slots = this.#slots.slice(this.#head);
    this.#times = this.#times.slice(this.#head);
    this.#head = 0;
  }

  /** Domains waiting in the queue (notes not yet due or stale), for tests. */
  get queued(): number {
    return this.#slots.length - this.#head;
  }
}
