// Sibling domains: domains whose MX set is the same (the transport's mxKey), so that a connection
// with nothing left for its own domain may carry theirs. The index remembers which domains were
// seen behind each key; a domain not seen yet is asked about only among those that have mail now,
// at most SIBLING_SCAN of them, so an idle connection never scans a huge domain table.
import type { CoreContext } from '../core/core_context.js';
import type { DomainTable } from '../core/domain_table.js';
import { native } from '../native.js';
import type { Transport } from '../transport/transport.js';

const SIBLING_SCAN = 1000;

export class SiblingIndex {
  readonly #byKey = new Map<string, Set<string>>(); // mxKey -> domains seen behind it
  readonly #keyOf = new Map<string, string>(); // domain -> the mxKey it was last seen behind
  #dueBuf = new Uint32Array(64);

  constructor(
    private readonly ctx: CoreContext,
    private readonly domains: DomainTable,
    private readonly transport: Transport,
  ) {}

  /** A domain behind mxKey other than `domain` that `fits` accepts, or undefined. */
  find(domain: string, mxKey: string, fits: (other: string) => boolean): string | undefined {
    const set = this.#add(mxKey, domain);
    for (const other of set) if (fits(other)) return other;
    const keyOf = this.transport.mxKey?.bind(this.transport);
    if (!keyOf) return undefined;
    for (const other of this.#domainsWithMail(SIBLING_SCAN)) {
      if (set.has(other)) continue;
      const key = keyOf(other);
      if (key === undefined) continue;
      this.#add(key, other);
      if (key === mxKey && fits(other)) return other;
    }
    return undefined;
  }

  /** Lets go of a domain the core forgot. */
  forget(domain: string): void {
    const key = this.#keyOf.get(domain);
    if (key === undefined) return;
    this.#keyOf.delete(domain);
    const set = this.#byKey.get(key);
    set?.delete(domain);
    if (set?.size === 0) this.#byKey.delete(key);
  }

  // The set of mxKey with domain in it (out of the set of the key it was behind before, if another).
  #add(mxKey: string, domain: string): Set<string> {
    const old = this.#keyOf.get(domain);
    if (old !== undefined && old !== mxKey) this.forget(domain);
    this.#keyOf.set(domain, mxKey);
    let set = this.#byKey.get(mxKey);
    if (!set) this.#byKey.set(mxKey, (set = new Set()));
    set.add(domain);
    return set;
  }

  /** Up to max domains that have mail now. */
  #domainsWithMail(max: number): string[] {
    const h = this.ctx.live();
    const records = this.domains.records;
    if (this.#dueBuf.length < records.length) this.#dueBuf = new Uint32Array(records.length * 2);
    const n = native.dueDomains(h, this.ctx.now(), this.#dueBuf);
    const out: string[] = [];
    for (let i = 0; i < n && out.length < max; i++) out.push(records[this.#dueBuf[i]].name);
    return out;
  }
}
