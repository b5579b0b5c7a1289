// Connections above a lowered limit (configure(), lib/core/reconfigure.ts). The native ledger never
// closes a connection: a count above its new limit only stops new grants. Here an open connection,
// at its next message after configure(), asks whether its lease is above a limit, and closes if so
// (it finishes the message on the wire first and keeps its lease until its session is gone).
//
// Connections that decided to close still hold their leases for a moment (QUIT takes a round
// trip), and the counts still include them: without counting them, every connection that looked
// in that moment would close too, and far more than the excess would go. So the excess of each
// scope is reduced by the closing connections in that scope before a connection decides.
import type { CoreContext } from '../core/core_context.js';
import { native } from '../native.js';

/** What shedding needs to know of a connection. */
export interface Shed {
  readonly connectionId: number;
  readonly domain: string;
  readonly binding: string;
  readonly bindingSlot: number;
}

export class Shedding {
  /** Connections closing for a lowered limit whose lease is not released yet. */
  readonly #closing = new Set<Shed>();
  // leaseExcess()'s output: pair, domain, group::domain, group, binding, server.
  readonly #excess = new Float64Array(6);

  constructor(private readonly ctx: CoreContext) {}

  /** Whether c is above a limit once the connections already closing are counted out; if so, c
   *  is counted as closing from now on (until gone()). */
  shouldClose(c: Shed): boolean {
    const ex = this.#excess;
    if (!native.leaseExcess(this.ctx.live(), c.connectionId, ex)) return false;
    if (ex[0] + ex[1] + ex[2] + ex[3] + ex[4] + ex[5] === 0) return false;
    const groupOf = this.ctx.config.groupOfBinding;
    const group = groupOf[c.bindingSlot];
    for (const o of this.#closing) {
      const sameDomain = o.domain === c.domain;
      const sameGroup = group >= 0 && groupOf[o.bindingSlot] === group;
      if (sameDomain && o.bindingSlot === c.bindingSlot) ex[0]--;
      if (sameDomain) ex[1]--;
      if (sameDomain && sameGroup) ex[2]--;
      if (sameGroup) ex[3]--;
      if (o.bindingSlot === c.bindingSlot) ex[4]--;
      ex[5]--;
    }
    if (!(ex[0] > 0 || ex[1] > 0 || ex[2] > 0 || ex[3] > 0 || ex[4] > 0 || ex[5] > 0)) return false;
    this.#closing.add(c);
    return true;
  }

  /** c released its lease. */
  gone(c: Shed): void {
    this.#closing.delete(c);
  }
}
