// Live views handed to hook providers and operators: a DomainRecord (one destination) and an
// ActiveQueue (one domain's active queue for one binding). They hold indices, not copies; every
// read goes to the native core, so a view is never stale, and none allocates per message.
import { codedError } from './errors.js';
import { native, Place } from './native.js';
import { checkId, checkInt } from './validate.js';

/** What a view needs from its core. */
export interface ViewHost {
  readonly bindingNames: readonly string[];
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
  readonly #info: Float64Array;
  /** @internal the domain's index in the native core */
  readonly index: number;

  constructor(host: ViewHost, readonly name: string, index: number) {
    this.#host = host;
    this.index = index;
    this.#info = new Float64Array(3 + 3 * host.bindingNames.length);
  }

  #read(): Float64Array {
    native.domainInfo(this.#host.handle(), this.index, this.#info);
    return this.#info;
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
  readonly #one = new Float64Array(1);
  readonly #where = new Float64Array(7);

  constructor(host: ViewHost, readonly domain: DomainRecord, readonly bindingSlot: number) {
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
    const n = native.peekActive(this.#host.handle(), this.domain.index, this.bindingSlot, 0, this.#one);
    return n === 0 ? undefined : this.#one[0];
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
    const place = native.locate(this.#host.handle(), id, this.#where);
    return place === Place.Active && this.#where[0] === this.domain.index && this.#where[1] === this.bindingSlot;
  }
}

export function unknownDomain(name: string): Error {
  const e = codedError('ERR_UNKNOWN_DOMAIN', `domain: no mail has been queued for ${JSON.stringify(name)}`);
  return e;
}
