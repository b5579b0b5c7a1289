// Messages into and out of flight: takes by pair (take, takeInto; a connection's takeFor stays in
// the facade, on the hot path), cancels of queued messages, and the outcomes of messages in
// flight: settle (delivered, or bounced by the caller), defer (a transient failure: to the delayed
// queue until a time) and untake (not attempted: back where it was taken from), one at a time or
// many in one native call. The facade (lib/core.ts) delegates to it.
import type { DeliveryService } from '../delivery/service.js';
import { native } from '../native.js';
import { checkId, checkInt, checkTime, checkTypedArray } from '../validate.js';
import type { CoreContext } from './core_context.js';
import type { DomainTable } from './domain_table.js';
import type { Outbox } from './outbox.js';
import type { DomainRef } from './types.js';

const MAX_TAKE = 1_000_000;

export class InFlight {
  constructor(
    private readonly ctx: CoreContext,
    private readonly outbox: Outbox,
    private readonly service: DeliveryService,
    private readonly domains: DomainTable,
    private readonly busy: () => boolean,
  ) {}

  take(domain: DomainRef, binding: string | number, k: number): number[] {
    checkInt(k, 'k', 1, MAX_TAKE);
    const out = new Float64Array(k);
    const n = this.takeInto(domain, binding, out);
    return Array.from(out.subarray(0, n));
  }

  takeInto(domain: DomainRef, binding: string | number, out: Float64Array): number {
    const h = this.ctx.live();
    const d = this.domains.ref(domain);
    const b = this.domains.bindingSlot(binding, 'binding');
    checkTypedArray(out, Float64Array, 'Float64Array', 'out');
    const n = native.take(h, d, b, this.ctx.now(), out);
    this.outbox.drainExpired();
    return n;
  }

  cancel(id: number): boolean {
    const h = this.ctx.live();
    checkId(id, 'id');
    const cancelled = native.cancel(h, id);
    if (cancelled && this.ctx.store) this.outbox.unstore(id);
    return cancelled;
  }

  cancelMany(ids: Float64Array): number {
    const h = this.ctx.live();
    checkTypedArray(ids, Float64Array, 'Float64Array', 'ids');
    if (!this.ctx.store) return native.cancelBatch(h, ids);
    // The core names what it cancelled: those leave the store too.
    const cancelled = new Float64Array(ids.length);
    const n = native.cancelBatch(h, ids, cancelled);
    for (let i = 0; i < n; i++) this.outbox.unstore(cancelled[i]);
    return n;
  }

  settle(id: number): void {
    const ctx = this.ctx;
    if (ctx.closed) ctx.live(); // ERR_CLOSED
    checkId(id, 'id');
    // A message a connection holds: staged (lib/core/outcome_stage.ts).
    if (!this.busy() && ctx.outcomes.settle(id)) return;
    native.settle(ctx.live(), id);
  }

  settleMany(ids: Float64Array): void {
    const h = this.ctx.live();
    checkTypedArray(ids, Float64Array, 'Float64Array', 'ids');
    native.settleBatch(h, ids);
  }

  defer(id: number, nextAttempt: number): void {
    const ctx = this.ctx;
    if (ctx.closed) ctx.live(); // ERR_CLOSED
    checkId(id, 'id');
    checkTime(nextAttempt, 'nextAttempt');
    const now = ctx.now();
    if (this.busy() || !ctx.outcomes.defer(id, nextAttempt, now)) {
      native.defer(ctx.live(), id, nextAttempt, now);
      this.outbox.drainExpired();
    }
    this.service.scheduleAt(nextAttempt);
  }

  deferMany(ids: Float64Array, nextAttempt: number): void {
    const h = this.ctx.live();
    checkTypedArray(ids, Float64Array, 'Float64Array', 'ids');
    checkTime(nextAttempt, 'nextAttempt');
    if (ids.length === 0) return;
    native.deferBatch(h, ids, nextAttempt, this.ctx.now());
    this.outbox.drainExpired();
    this.service.scheduleAt(nextAttempt);
  }

  untake(id: number): void {
    const h = this.ctx.live();
    checkId(id, 'id');
    native.untake(h, id);
  }
}
