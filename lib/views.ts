// Live views handed to hook providers and operators: a DomainRecord (one destination) and an
// ActiveQueue (one domain's active queue for one binding). They hold indices, not copies; every
// read goes to the native core, so a view is never stale, and none allocates per message.
import { codedError } from './errors.js';
import { native, Place } from './native.js';
import { checkId, checkInt } from './validate.js';

/** The arrays the native calls of a core's views write into, shared by all its views: a view is
 *  used synchronously, reads what the call wrote before anything else can call, and never hands
 *  one out. One buffer; each array is as long as its call expects (peekActive takes as many ids
 *  as its array holds). Arrays of their own per view were about 40 % of the lib's heap per domain. */
export class ViewScratch {
  /** domainInfo: [activeTotal, delayed, connections, then per binding: active, connections, suspended] */
  readonly info: Float64Array;
  /** locate: [domain, binding, place, priority, attempts, nextAttempt, expiresAt] */
  readonly where: Float64Array;
  /** peekActive of the head */
  readonly one: Float64Array;

  constructor(bindings: number) {
    const buf = new Float64Array(Math.max(3 + 3 * bindings, 7));
    this.info = buf.subarray(0, 3 + 3 * bindings);
    this.where = buf.subarray(0, 7);
    this.one = buf.subarray(0, 1);
  }
}

/** What a view needs from its core. */
export interface ViewHost {
  readonly bindingNames: readonly string[];
  readonly scratch: ViewScratch;
  /** The native handle; throws ERR_CLOSED after close(). */
  handle(): number;
  /** A binding slot from a name or a slot number; throws RangeError for an unknown one. */
  bindingSlot(binding: unknown, name: string): number;
}

export interface DomainSnapshot {
  name: string;
  active: Record<string, number>;
  delayed: number;
  connections: Record<string, number>;
  suspended: Record<string, boolean>;
}

export class DomainRecord {
  readonly #host: ViewHost;
  readonly #index: number;
  #forgotten = false;

  constructor(
    host: ViewHost,
    readonly name: string,
    index: number,
  ) {
    this.#host = host;
    this.#index = index;
  }

  /** @internal the domain's index in the native core (read-only: a record cannot be pointed at
   *  another domain). ERR_DOMAIN_FORGOTTEN once the core forgot the domain: its index may name
   *  another domain by then. */
  get index(): number {
    if (this.#forgotten) throw forgottenDomain(this.name);
    return this.#index;
  }

  /** True once the core forgot this domain (idle for forgetIdleDomainsAfter, or
   *  forgetIdleDomains()): every call on the record, and every call given it, throws
   *  ERR_DOMAIN_FORGOTTEN. A later message for the name makes a new record (core.domain(name)). */
  get forgotten(): boolean {
    return this.#forgotten;
  }

  /** @internal the domain table forgot the domain: the record refuses from now on. */
  static forget(dr: DomainRecord): void {
    dr.#forgotten = true;
  }

  /** @internal this record's index when it belongs to `host`, else -1: reads the record alone (the
   *  hot paths that take a DomainRecord check it this way, not through the core's list).
   *  ERR_DOMAIN_FORGOTTEN for a record of a domain the core forgot. */
  static indexIn(dr: DomainRecord, host: ViewHost): number {
    if (!(#host in dr) || dr.#host !== host) return -1;
    if (dr.#forgotten) throw forgottenDomain(dr.name);
    return dr.#index;
  }

  /** The core's shared scratch, filled for this domain: read it before any other view call. */
  #read(): Float64Array {
    const info = this.#host.scratch.info;
    native.domainInfo(this.#host.handle(), this.index, info);
    return info;
  }

  /** Messages in the active queue of one binding, or of all bindings when none is named. */
  activeSize(binding?: string | number): number {
    if (binding === undefined) return this.#read()[0];
    const b = this.#host.bindingSlot(binding, 'binding');
    return native.activeSize(this.#host.handle(), this.index, b);
  }

  /** Messages in the domain's delayed queue. */
  get delayedSize(): number {
    return native.delayedSize(this.#host.handle(), this.index);
  }

  /** Connections open or opening for one binding, or for the whole domain. */
  connections(binding?: string | number): number {
    const info = this.#read();
    if (binding === undefined) return info[2];
    return info[4 + 3 * this.#host.bindingSlot(binding, 'binding')];
  }

  /** Whether new connections for (this domain, binding) are suspended. */
  suspended(binding: string | number): boolean {
    return this.#read()[5 + 3 * this.#host.bindingSlot(binding, 'binding')] !== 0;
  }

  toJSON(): DomainSnapshot {
    const info = this.#read();
    const snap: DomainSnapshot = { name: this.name, active: {}, delayed: info[1], connections: {}, suspended: {} };
    this.#host.bindingNames.forEach((b, i) => {
      snap.active[b] = info[3 + 3 * i];
      snap.connections[b] = info[4 + 3 * i];
      snap.suspended[b] = info[5 + 3 * i] !== 0;
    });
    return snap;
  }
}

const MAX_LIST = 10_000_000;

export class ActiveQueue {
  readonly #host: ViewHost;

  constructor(
    host: ViewHost,
    readonly domain: DomainRecord,
    readonly bindingSlot: number,
  ) {
    this.#host = host;
  }

  get binding(): string {
    return this.#host.bindingNames[this.bindingSlot];
  }

  get size(): number {
    return native.activeSize(this.#host.handle(), this.domain.index, this.bindingSlot);
  }

  /** The id at the head of the queue (the next one a connection takes), or undefined. */
  peek(): number | undefined {
    const one = this.#host.scratch.one;
    const n = native.peekActive(this.#host.handle(), this.domain.index, this.bindingSlot, 0, one);
    return n === 0 ? undefined : one[0];
  }

  /** Up to `limit` ids in queue order, starting at `offset`. */
  toArray(limit = 1000, offset = 0): number[] {
    checkInt(limit, 'limit', 0, MAX_LIST);
    checkInt(offset, 'offset', 0, Number.MAX_SAFE_INTEGER);
    const h = this.#host.handle();
    const out = new Float64Array(limit);
    const n = native.peekActive(h, this.domain.index, this.bindingSlot, offset, out);
    return Array.from(out.subarray(0, n));
  }

  /** Removes a message from this queue (and from the core); false when it is not in this queue. */
  remove(id: number): boolean {
    checkId(id, 'id');
    return native.removeActive(this.#host.handle(), this.domain.index, this.bindingSlot, id);
  }

  /** Whether the message is queued in this active queue. */
  has(id: number): boolean {
    checkId(id, 'id');
    const where = this.#host.scratch.where;
    const place = native.locate(this.#host.handle(), id, where);
    return place === Place.Active && where[0] === this.domain.index && where[1] === this.bindingSlot;
  }
}

/** A DomainRecord (or one of its ActiveQueue views) used after the core forgot its domain. */
export function forgottenDomain(name: string): Error {
  return codedError(
    'ERR_DOMAIN_FORGOTTEN',
    `domain: ${JSON.stringify(name)} was forgotten after it was idle; its next message makes it again ` +
      '(get the new record with core.domain(name))',
  );
}

export function unknownDomain(name: string): Error {
  const e = codedError('ERR_UNKNOWN_DOMAIN', `domain: no mail has been queued for ${JSON.stringify(name)}`);
  return e;
}
