// Intake: new messages into the core. It checks each message in full at the call and queues it,
// one at a time (enqueue) or many for one pair (enqueueBatch); a single message with a new id for
// a known domain is staged (lib/core/arrival_stage.ts, decision 30) instead of crossing at once.
// Every refusal (a bad field, a duplicate id) happens here, at the call.
import type { DeliveryService } from '../delivery/service.js';
import { codedError, MailQueueError } from '../errors.js';
import { native, Place } from '../native.js';
import {
  checkDomainName,
  checkExpiry,
  checkId,
  checkInt,
  checkKeys,
  checkObject,
  checkPriority,
  checkTime,
  checkTypedArray,
  MAX_TIME,
  typeName,
} from '../validate.js';
import { DomainRecord } from '../views.js';
import type { CoreContext } from './core_context.js';
import type { DomainTable } from './domain_table.js';
import type { Outbox } from './outbox.js';
import type { DomainRef, Message } from './types.js';

const MESSAGE_KEYS = new Set(['id', 'domain', 'binding', 'priority', 'nextAttempt', 'expiresAt', 'attempts']);

/** Whether k is one of MESSAGE_KEYS, by a switch: the per-message key check allocates nothing. */
function isMessageKey(k: string): boolean {
  switch (k) {
    case 'id':
    case 'domain':
    case 'binding':
    case 'priority':
    case 'nextAttempt':
    case 'expiresAt':
    case 'attempts':
      return true;
    default:
      return false;
  }
}

export class Intake {
  readonly #ctx: CoreContext;
  readonly #domains: DomainTable;
  readonly #outbox: Outbox;
  readonly #service: DeliveryService;
  /** A maintenance pass runs or a provider is being called: nothing is staged then. */
  readonly #busy: () => boolean;

  constructor(ctx: CoreContext, domains: DomainTable, outbox: Outbox, service: DeliveryService, busy: () => boolean) {
    this.#ctx = ctx;
    this.#domains = domains;
    this.#outbox = outbox;
    this.#service = service;
    this.#busy = busy;
  }

  /** Queues one message: active when nextAttempt <= now, else delayed. */
  enqueue(message: Message): void {
    const ctx = this.#ctx;
    if (ctx.closed) throw codedError('ERR_CLOSED', 'the core is closed');
    const m = checkObject(message, 'message');
    // An unknown own key is refused by checkKeys, with its usual message.
    for (const k in m) if (!isMessageKey(k) && Object.hasOwn(m, k)) checkKeys(m, MESSAGE_KEYS, 'message');
    const id = checkId(m.id, 'message.id');
    // A name already known is valid and normalised: the Map lookup is the whole check.
    let d = typeof m.domain === 'string' ? this.#domains.byName.get(m.domain) : undefined;
    const domain = d === undefined ? checkDomainName(m.domain, 'message.domain') : (m.domain as string);
    const b = m.binding === undefined ? 0 : this.#domains.bindingSlot(m.binding, 'message.binding');
    const priority = m.priority === undefined ? 0 : checkPriority(m.priority, 'message.priority');
    const now = this.#ctx.now();
    const nextAttempt = m.nextAttempt === undefined ? now : checkTime(m.nextAttempt, 'message.nextAttempt');
    if (d === undefined) d = this.#domains.byName.get(domain);
    const expiresAt =
      m.expiresAt !== undefined
        ? checkExpiry(m.expiresAt, 'message.expiresAt')
        : now +
          (d !== undefined ? this.#domains.pair(d, b).messageExpirationMs : this.#domains.defaultExpiryMs(domain, b));
    const attempts = m.attempts === undefined ? 0 : checkInt(m.attempts, 'message.attempts', 0, 65535);
    const stage = ctx.arrivals;
    if (d !== undefined && attempts === 0 && nextAttempt < expiresAt && !this.#busy() && stage.fresh(id)) {
      // A new id for a known domain: staged, handed to the core with the next call into it.
      stage.add(d, b, priority, id, nextAttempt, expiresAt, now);
      if (nextAttempt <= now) this.#service.mailArrived(d, b);
      else this.#service.scheduleAt(nextAttempt);
      return;
    }
    const h = ctx.live();
    if (d === undefined) {
      // A refused message must not leave a new domain behind: check the id before creating it.
      if (native.locate(h, id, this.#ctx.where) !== Place.None)
        throw codedError('ERR_DUPLICATE_ID', `message.id ${id} is already queued`);
      d = this.#domains.create(domain);
    }
    native.enqueue(h, d, b, id, priority, nextAttempt, expiresAt, now);
    // Not a queue key, so set after the fact (only recovery passes it): the message is queued.
    if (attempts > 0) native.setAttempts(h, id, attempts);
    this.#outbox.drainExpired();
    if (nextAttempt <= now) this.#service.mailArrived(d, b);
    else this.#service.scheduleAt(nextAttempt);
  }

  /** MailQueueCore.enqueueBatch (its comment says what it takes); a new domain is made only
   *  once the batch is known to be good. */
  enqueueBatch(
    domain: DomainRef,
    binding: string | undefined,
    ids: Float64Array,
    priorities?: Uint8Array,
    nextAttempts?: Float64Array,
  ): void {
    const h = this.#ctx.live();
    // A name already known is valid and normalised: the Map lookup is the whole check. A new name
    // makes its domain below, once the batch is known to be good.
    let d: number | undefined;
    let name = '';
    if (typeof domain === 'string') {
      d = this.#domains.byName.get(domain);
      if (d === undefined) name = checkDomainName(domain, 'domain');
    } else {
      d = this.#domains.ref(domain);
    }
    const b = binding === undefined ? 0 : this.#domains.bindingSlot(binding, 'binding');
    checkTypedArray(ids, Float64Array, 'Float64Array', 'ids');
    if (priorities !== undefined) {
      checkTypedArray(priorities, Uint8Array, 'Uint8Array', 'priorities');
      if (priorities.length !== ids.length) {
        throw new RangeError(`priorities must have as many entries as ids (${ids.length}), got ${priorities.length}`);
      }
    }
    if (nextAttempts !== undefined) {
      checkTypedArray(nextAttempts, Float64Array, 'Float64Array', 'nextAttempts');
      if (nextAttempts.length !== ids.length) {
        throw new RangeError(
          `nextAttempts must have as many entries as ids (${ids.length}), got ${nextAttempts.length}`,
        );
      }
    }
    if (ids.length === 0) return;
    const now = this.#ctx.now();
    if (d === undefined) d = this.#domains.byName.get(name);
    if (d === undefined) {
      this.#precheckBatch(h, ids, priorities, nextAttempts);
      d = this.#domains.create(name);
    }
    native.enqueueBatch(
      h,
      d,
      b,
      ids,
      priorities ?? null,
      nextAttempts ?? now,
      now + this.#domains.pair(d, b).messageExpirationMs,
      now,
    );
    this.#outbox.drainExpired();
    if (nextAttempts === undefined) {
      this.#service.mailArrived(d, b, ids.length);
      return;
    }
    let due = 0;
    let soonest = Infinity;
    for (let i = 0; i < nextAttempts.length; i++) {
      const t = nextAttempts[i];
      if (t <= now) due++;
      else if (t < soonest) soonest = t;
    }
    if (due > 0) this.#service.mailArrived(d, b, due);
    if (soonest !== Infinity) this.#service.scheduleAt(soonest);
  }

  /** MailQueueCore.enqueueMany: many arrivals for any pairs in one native call. */
  enqueueMany(
    domains: readonly DomainRef[],
    bindings: Uint8Array | undefined,
    ids: Float64Array,
    priorities?: Uint8Array,
  ): void {
    const h = this.#ctx.live();
    checkTypedArray(ids, Float64Array, 'Float64Array', 'ids');
    const n = ids.length;
    if (!Array.isArray(domains))
      throw new TypeError(`domains must be an array of domain names or DomainRecords, got ${typeName(domains)}`);
    if (domains.length !== n)
      throw new RangeError(`domains must have as many entries as ids (${n}), got ${domains.length}`);
    const nb = this.#ctx.bindings.length;
    if (bindings !== undefined) {
      checkTypedArray(bindings, Uint8Array, 'Uint8Array', 'bindings');
      if (bindings.length !== n)
        throw new RangeError(`bindings must have as many entries as ids (${n}), got ${bindings.length}`);
    }
    if (priorities !== undefined) {
      checkTypedArray(priorities, Uint8Array, 'Uint8Array', 'priorities');
      if (priorities.length !== n)
        throw new RangeError(`priorities must have as many entries as ids (${n}), got ${priorities.length}`);
    }
    if (n === 0) return;
    const now = this.#ctx.now();
    const table = this.#domains;
    const e = this.#manyEntries(n);
    // Names not seen before: made into domains only once the whole batch is known to be good.
    let fresh: Map<string, number[]> | undefined;
    for (let i = 0; i < n; i++) {
      const dr = domains[i];
      let d: number | undefined;
      if (typeof dr === 'string') {
        d = table.byName.get(dr);
        if (d === undefined) {
          const name = checkDomainName(dr, `domains[${i}]`);
          d = table.byName.get(name);
          if (d === undefined) {
            fresh ??= new Map();
            const at = fresh.get(name);
            if (at === undefined) fresh.set(name, [i]);
            else at.push(i);
          }
        }
      } else if (dr instanceof DomainRecord) {
        d = table.recordIndex(dr, `domains[${i}]`);
      } else {
        throw new TypeError(`domains[${i}] must be a string or a DomainRecord, got ${typeName(dr)}`);
      }
      const b = bindings === undefined ? 0 : bindings[i];
      if (b >= nb) throw new RangeError(`bindings[${i}]: no binding slot ${b} (there are ${nb})`);
      const p = priorities === undefined ? 0 : priorities[i];
      if (p > 1) throw new RangeError(`priorities[${i}] must be 0 or 1, got ${p}`);
      const id = ids[i];
      if (!Number.isSafeInteger(id) || id < 0)
        throw new RangeError(`ids[${i}] must be a safe integer from 0 to 2^53-1, got ${id}`);
      const o = 5 * i;
      e[o] = d ?? 0;
      e[o + 1] = b + 65536 * p;
      e[o + 2] = id;
      e[o + 3] = now;
      e[o + 4] = now + (d !== undefined ? table.pair(d, b).messageExpirationMs : 0);
    }
    if (fresh !== undefined) {
      this.#firstDuplicate(h, ids);
      for (const [name, at] of fresh) {
        const d = table.create(name);
        for (const i of at) {
          e[5 * i] = d;
          e[5 * i + 4] = now + table.pair(d, e[5 * i + 1] % 65536).messageExpirationMs;
        }
      }
    }
    try {
      native.enqueueArrivals(h, e, n, now);
    } catch (err) {
      // The native refusal names an entry of its own array; name the caller's ids[i] instead.
      if (err instanceof MailQueueError && err.code === 'ERR_DUPLICATE_ID') this.#firstDuplicate(h, ids);
      throw err;
    }
    this.#outbox.drainExpired();
    // One wake-up per run of arrivals for one pair, with its count.
    for (let i = 0, run = 1; i < n; i++, run++) {
      const o = 5 * i;
      const b = e[o + 1] % 65536;
      if (i + 1 < n && e[o + 5] === e[o] && e[o + 6] % 65536 === b) continue;
      this.#service.mailArrived(e[o], b, run);
      run = 0;
    }
  }

  #many = new Float64Array(0);
  /** The entry array of enqueueMany (5 doubles a message), kept between calls. */
  #manyEntries(n: number): Float64Array {
    if (this.#many.length < 5 * n) this.#many = new Float64Array(5 * Math.max(n, 64));
    return this.#many;
  }

  /** Throws ERR_DUPLICATE_ID naming the first ids[i] that the core holds or that came before in
   *  the batch; returns when there is none. */
  #firstDuplicate(h: number, ids: Float64Array): void {
    const seen = new Set<number>();
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (seen.has(id) || native.locate(h, id, this.#ctx.where) !== Place.None)
        throw codedError('ERR_DUPLICATE_ID', `ids[${i}]: id ${id} is already queued`);
      seen.add(id);
    }
  }

  // The native call checks the same things; this runs only before a new domain is created, so that
  // a refused batch leaves no domain behind.
  #precheckBatch(
    h: number,
    ids: Float64Array,
    priorities: Uint8Array | undefined,
    nextAttempts: Float64Array | undefined,
  ): void {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isSafeInteger(id) || id < 0)
        throw new RangeError(`ids[${i}] must be a safe integer from 0 to 2^53-1, got ${id}`);
      if (priorities !== undefined && priorities[i] > 1)
        throw new RangeError(`priorities[${i}] must be 0 or 1, got ${priorities[i]}`);
      if (nextAttempts !== undefined && !(Math.abs(nextAttempts[i]) <= MAX_TIME)) {
        throw new RangeError(`nextAttempts[${i}] must be a finite number within ±8.64e15 ms`);
      }
    }
    this.#firstDuplicate(h, ids);
  }
}
