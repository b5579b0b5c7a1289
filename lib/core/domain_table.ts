// The domain table: every destination domain the core has seen, by name and by index, with its
// DomainRecord, its ActiveQueue views (made on first request), and the resolved settings of each of
// its (domain, binding) pairs; and the binding slots by name. A domain is created in the native core
// when its first message arrives, with the limits its configuration resolves to. A domain forgotten
// (idle_domains.ts) leaves its slot free: records[d] is then FORGOTTEN until a new domain reuses d.
import type { PairSettings } from '../config.js';
import { native } from '../native.js';
import { checkDomainName, checkTypedArray, typeName } from '../validate.js';
import { ActiveQueue, DomainRecord, unknownDomain, ViewScratch, type ViewHost } from '../views.js';
import type { CoreContext } from './core_context.js';

export class DomainTable {
  /** Domain index by (normalised) name. */
  readonly byName = new Map<string, number>();
  /** The record of each domain slot; a free slot (its domain forgotten) holds `free`. */
  readonly records: DomainRecord[] = [];
  /** What a free slot of `records` holds (forgotten, named ''). */
  readonly free: DomainRecord;
  /** Called with each domain forgotten (name and its former index), for the per-domain state kept
   *  elsewhere (tallies, the sibling index). */
  readonly onForget: Array<(name: string, d: number) => void> = [];
  /** What the views of this core share (DomainRecord and ActiveQueue check ownership by it). */
  readonly host: ViewHost;
  // A domain's ActiveQueue views, made on first request (most are never asked for): a row per
  // domain, undefined until one of its views is.
  readonly #queues: (ActiveQueue[] | undefined)[] = [];
  // The settings of pair (d, b) at d * bindings + b; identical settings are one frozen object.
  readonly #pairs: PairSettings[] = [];
  readonly #interned = new Map<string, PairSettings>();

  constructor(
    private readonly ctx: CoreContext,
    /** Whether the operator has suspended (name, binding slot) before the domain exists. */
    private readonly operatorSuspended: (name: string, b: number) => boolean,
  ) {
    this.host = {
      bindingNames: ctx.bindings,
      scratch: new ViewScratch(ctx.bindings.length),
      handle: () => ctx.live(),
      bindingSlot: (b, name) => this.bindingSlot(b, name),
    };
    this.free = new DomainRecord(this.host, '', -1);
    DomainRecord.forget(this.free);
  }

  /** Whether slot d holds a domain (not forgotten). */
  live(d: number): boolean {
    return this.records[d] !== this.free;
  }

  /** The native core has forgotten domain d: its name, record, views and settings go too. */
  forget(d: number): void {
    const rec = this.records[d];
    this.byName.delete(rec.name);
    DomainRecord.forget(rec);
    this.records[d] = this.free;
    this.#queues[d] = undefined;
    for (const f of this.onForget) f(rec.name, d);
  }

  create(name: string): number {
    const ctx = this.ctx;
    const h = ctx.handle;
    const cfg = ctx.config;
    const nb = ctx.bindings.length;
    const { pairs, settings } = this.#resolve(name);
    const d = native.addDomain(h, pairs, cfg.domainScopeMax(name), Float64Array.from(cfg.groupDomainScopeMax(name)));
    for (let b = 0; b < nb; b++)
      if (settings[b].messageThrottle >= 0) native.setMessageThrottle(h, d, b, settings[b].messageThrottle);
    this.byName.set(name, d);
    // A new slot, or a forgotten domain's slot again (its entries are overwritten in place).
    this.records[d] = new DomainRecord(this.host, name, d);
    this.#queues[d] = undefined;
    for (let b = 0; b < nb; b++) this.#pairs[d * nb + b] = settings[b];
    ctx.cluster?.domainCreated(d, name, settings);
    return d;
  }

  /** Resolves domain d's settings again from ctx.config (live reconfiguration, lib/core/
   *  reconfigure.ts) and sets its limits in the native core in place. */
  relimit(d: number): void {
    const ctx = this.ctx;
    const h = ctx.handle;
    const cfg = ctx.config;
    const nb = ctx.bindings.length;
    const name = this.records[d].name;
    const { pairs, settings } = this.#resolve(name);
    native.setDomainLimits(h, d, pairs, cfg.domainScopeMax(name), Float64Array.from(cfg.groupDomainScopeMax(name)));
    for (let b = 0; b < nb; b++) {
      native.setMessageThrottle(h, d, b, settings[b].messageThrottle);
      this.#pairs[d * nb + b] = settings[b];
    }
  }

  // A domain's settings per binding slot from ctx.config, and its pairs' limits as the native
  // core takes them: [max, aggressiveness, throttle, suspended] per binding.
  #resolve(name: string): { pairs: Float64Array; settings: PairSettings[] } {
    const cfg = this.ctx.config;
    const nb = this.ctx.bindings.length;
    const pairs = new Float64Array(4 * nb);
    const settings: PairSettings[] = [];
    for (let b = 0; b < nb; b++) {
      const p = this.#intern(cfg.pair(b, name));
      settings.push(p);
      pairs[4 * b] = p.maxConnections;
      pairs[4 * b + 1] = p.aggressiveness;
      pairs[4 * b + 2] = p.throttle;
      pairs[4 * b + 3] = p.suspended || this.operatorSuspended(name, b) ? 1 : 0;
    }
    return { pairs, settings };
  }

  // Nearly every pair resolves to the same settings: one frozen object for each distinct set
  // instead of one per pair. Nothing writes them (here or in the delivery layer): a set never
  // changes once made (configure() points a pair at another set).
  #intern(p: PairSettings): PairSettings {
    const key = Object.values(p).join();
    let shared = this.#interned.get(key);
    if (shared === undefined) this.#interned.set(key, (shared = Object.freeze(p)));
    return shared;
  }

  pair(d: number, b: number): PairSettings {
    return this.#pairs[d * this.ctx.bindings.length + b];
  }

  /** The names of the domains held, in slot order (free slots left out). */
  names(): string[] {
    const out: string[] = [];
    for (const r of this.records) if (r !== this.free) out.push(r.name);
    return out;
  }

  /** See MailQueueCore.connectionsByDomain: entry i is names()[i]. */
  connectionsByDomain(out?: Float64Array): Float64Array {
    const h = this.ctx.live();
    const n = this.records.length;
    if (out !== undefined) checkTypedArray(out, Float64Array, 'Float64Array', 'out');
    const into = out !== undefined && out.length >= n ? out : new Float64Array(n);
    native.connectionsByDomain(h, into);
    // The native core writes one entry per slot: the free slots' (always 0) are squeezed out.
    let j = 0;
    for (let d = 0; d < n; d++) if (this.records[d] !== this.free) into[j++] = into[d];
    return into;
  }

  /** The ActiveQueue view of (d, b), the same object every time. */
  queue(d: number, b: number): ActiveQueue {
    let row = this.#queues[d];
    if (row === undefined) this.#queues[d] = row = new Array<ActiveQueue>(this.ctx.bindings.length);
    return (row[b] ??= new ActiveQueue(this.host, this.records[d], b));
  }

  /** The view of (d, b) if one was handed out, else undefined (a view not made yet is not one). */
  madeQueue(d: number, b: number): ActiveQueue | undefined {
    return this.#queues[d]?.[b];
  }

  // A domain by name or by its DomainRecord (no name to look up: a caller on a hot path keeps the
  // record), for the methods that take a DomainRef.
  ref(domain: unknown): number {
    if (domain instanceof DomainRecord) return this.recordIndex(domain);
    if (typeof domain !== 'string')
      throw new TypeError(`domain must be a string or a DomainRecord, got ${typeName(domain)}`);
    return this.known(domain);
  }

  /** The index of a domain the core has seen (ERR_UNKNOWN_DOMAIN otherwise). */
  known(name: unknown): number {
    // A name already known is valid and normalised: the Map lookup is the whole check.
    if (typeof name === 'string') {
      const known = this.byName.get(name);
      if (known !== undefined) return known;
    }
    const n = checkDomainName(name, 'domain');
    const d = this.byName.get(n);
    if (d === undefined) throw unknownDomain(n);
    return d;
  }

  // The record's index when it is one of this core's (the one check for every argument that
  // takes a DomainRecord).
  recordIndex(dr: DomainRecord, name = 'domain'): number {
    const d = DomainRecord.indexIn(dr, this.host);
    if (d < 0) throw new TypeError(`${name} must be a DomainRecord of this core`);
    return d;
  }

  bindingSlot(binding: unknown, name: string): number {
    const bindings = this.ctx.bindings;
    if (typeof binding === 'number') {
      if (!Number.isInteger(binding) || binding < 0 || binding >= bindings.length) {
        throw new RangeError(`${name}: no binding slot ${binding} (there are ${bindings.length})`);
      }
      return binding;
    }
    if (typeof binding !== 'string')
      throw new TypeError(`${name} must be a binding name or slot, got ${typeName(binding)}`);
    const i = bindings.indexOf(binding);
    if (i < 0) throw new RangeError(`${name}: unknown binding ${JSON.stringify(binding.slice(0, 80))}`);
    return i;
  }

  /** message_expiration for (domain, binding) in ms, for a domain seen or not yet seen. */
  defaultExpiryMs(domain: string, b: number): number {
    const d = this.byName.get(domain);
    return d === undefined ? this.ctx.config.pair(b, domain).messageExpirationMs : this.pair(d, b).messageExpirationMs;
  }
}
