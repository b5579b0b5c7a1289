// The grants of a maintenance pass as numbers in one typed array, for a caller that opens many
// connections a pass: maintain(now, { into: list }) writes them here instead of making a Grant
// object for each (100k objects held until their connections start cost more than the pass that
// granted them: the young-generation collector copies every one of them). The list is reused from
// pass to pass; it grows, never shrinks.
import { native } from './native.js';
import type { Grant } from './core/outbox.js';

/** Keys the core uses to fill a list; not part of the package's exports. */
export const fillFromCore: unique symbol = Symbol('GrantList.fillFromCore');
export const appendGrant: unique symbol = Symbol('GrantList.append');
export const ownerOf: unique symbol = Symbol('GrantList.owner');

const MIN_ROOM = 256; // grants of room made before each native drain

export class GrantList {
  /** (connectionId, domain index, binding slot) per grant. */
  #buf = new Float64Array(3 * MIN_ROOM);
  #n = 0;
  readonly #owner: object;
  readonly #domainName: (index: number) => string;
  readonly #bindings: readonly string[];

  /** Made by MailQueueCore.grantList(): the list resolves names through the core that fills it. */
  constructor(owner: object, domainName: (index: number) => string, bindings: readonly string[]) {
    this.#owner = owner;
    this.#domainName = domainName;
    this.#bindings = bindings;
  }

  /** Grants in the list (those of the last maintain() call that wrote into it). */
  get length(): number {
    return this.#n;
  }

  connectionId(i: number): number {
    return this.#buf[3 * this.#index(i)];
  }

  domain(i: number): string {
    return this.#domainName(this.#buf[3 * this.#index(i) + 1]);
  }

  binding(i: number): string {
    return this.#bindings[this.#buf[3 * this.#index(i) + 2]];
  }

  bindingSlot(i: number): number {
    return this.#buf[3 * this.#index(i) + 2];
  }

  /** The grants as objects (as maintain() returns them without `into`). */
  toArray(): Grant[] {
    const out: Grant[] = [];
    for (let i = 0; i < this.#n; i++)
      out.push({ connectionId: this.connectionId(i), domain: this.domain(i), binding: this.binding(i) });
    return out;
  }

  clear(): void {
    this.#n = 0;
  }

  #index(i: number): number {
    if (typeof i !== 'number' || !(i >= 0 && i < this.#n) || Math.floor(i) !== i) {
      throw new RangeError(`i: no grant ${String(i)} (the list holds ${this.#n})`);
    }
    return i;
  }

  #room(k: number): void {
    if (this.#buf.length >= 3 * (this.#n + k)) return;
    const next = new Float64Array(Math.max(2 * this.#buf.length, 3 * (this.#n + k)));
    next.set(this.#buf.subarray(0, 3 * this.#n));
    this.#buf = next;
  }

  /** Moves every pending grant of the core into the list; returns the index of the first one. */
  [fillFromCore](handle: number): number {
    const from = this.#n;
    for (;;) {
      this.#room(MIN_ROOM);
      const room = this.#buf.length / 3 - this.#n;
      const k = native.drainGrants(handle, this.#buf, this.#n);
      this.#n += k;
      if (k < room) return from;
    }
  }

  [appendGrant](connectionId: number, domain: number, bindingSlot: number): void {
    this.#room(1);
    const j = 3 * this.#n++;
    this.#buf[j] = connectionId;
    this.#buf[j + 1] = domain;
    this.#buf[j + 2] = bindingSlot;
  }

  get [ownerOf](): object {
    return this.#owner;
  }
}
