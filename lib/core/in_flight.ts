// Outcomes of messages in flight: settle (delivered, or bounced by the caller), defer (a transient
// failure: to the delayed queue until a time) and untake (not attempted: back where it was taken
// from), one at a time or many in one native call. The facade (lib/core.ts) delegates to it.
import type { DeliveryService } from '../delivery/service.js';
import { native } from '../native.js';
import { checkId, checkTime, checkTypedArray } from '../validate.js';
import type { CoreContext } from './core_context.js';
import type { Outbox } from './outbox.js';

export class InFlight {
  constructor(
    private readonly ctx: CoreContext,
    private readonly outbox: Outbox,
    private readonly service: DeliveryService,
  ) {}

  settle(id: number): void {
    const h = this.ctx.live();
    checkId(id, 'id');
    native.settle(h, id);
  }

  settleMany(ids: Float64Array): void {
    const h = this.ctx.live();
    checkTypedArray(ids, Float64Array, 'Float64Array', 'ids');
    native.settleBatch(h, ids);
  }

  defer(id: number, nextAttempt: number): void {
    const h = this.ctx.live();
    checkId(id, 'id');
    checkTime(nextAttempt, 'nextAttempt');
    native.defer(h, id, nextAttempt, this.ctx.now());
    this.outbox.drainExpired();
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
