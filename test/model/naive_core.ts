// A deliberately naive TypeScript model of MailQueueCore (docs/architecture.md §4-§8), for property tests
// that run the same random operations against the real addon and compare after every step.
//
// Nothing here is clever: messages live in one Map and every queue is recomputed by filtering and
// sorting; connection counts are recomputed from the list of open grants; a throttle keeps every
// grant time it ever recorded. Configuration is resolved from the raw CoreConfig object by walking
// the chain of docs/architecture.md §8, without lib/config.ts, so a resolution bug there shows up as a
// disagreement instead of being copied.
//
// Where the docs leave a detail open the model copies what native/core does, so that the
// comparison can be exact:
// - a message whose next attempt is at or after its expiry bounces at once, at enqueue as at defer;
//   a delayed message otherwise expires when it comes due (promotion) or when a pass or take meets it;
// - maintain() visits the due domains from a rotating start (the rotation advances once per pass
//   that has any due domain), and each visited domain visits the bindings that have mail from its
//   own rotating start (advanced once per visit with two or more such bindings);
// - a call that may dip into the server reserve (reserve < serverReserve) takes at most one
//   connection beyond serverMax;
// - a rate throttle never runs backwards: a `now` earlier than the last recorded grant counts as
//   that grant's time.
import fc from 'fast-check';

import type { BindingSpec, CoreConfig, NestedScope, ScopeOptions } from '../../lib/config.js';

export type MsgState = 'active' | 'delayed' | 'in-flight';

export interface NaiveMessage {
  id: number;
  domain: string;
  binding: number;
  priority: number;
  nextAttempt: number;
  seq: number;
  expiresAt: number;
  attempts: number;
  state: MsgState;
}

export interface NaiveGrant {
  connectionId: number;
  domain: string;
  binding: string;
}

export interface NaiveMessageInfo {
  id: number;
  domain: string;
  binding: string;
  state: MsgState;
  priority: number;
  attempts: number;
  nextAttempt: number;
  expiresAt: number;
}

export interface NaiveStats {
  connections: number;
  active: number;
  delayed: number;
  inFlight: number;
  domains: number;
  opened: number;
  released: number;
  expired: number;
  /** Messages that left an active queue (taken, cancelled, removed, expired from it). */
  activeRemoved: number;
}

/** A refusal the model predicts; `code` is the error code the real core must throw. */
export class ModelError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

// --- configuration ------------------------------------------------------------------------------

export const DEFAULT_MAX = 32;
export const DEFAULT_SERVER_MAX = 20000;
export const DEFAULT_RESERVE = 200;
export const DEFAULT_EXPIRATION_S = 86400;

export interface NaivePair {
  max: number;
  aggressiveness: number;
  expiryMs: number;
  suspended: boolean;
  /** The scope object that sets outboundThrottleConnections (the bucket is shared by reference). */
  throttleScope: ScopeOptions | undefined;
}

export interface NaiveRate {
  count: number;
  windowMs: number;
}

export function naiveRate(v: string | number): NaiveRate {
  if (typeof v === 'number') return { count: v, windowMs: 1000 };
  const parts = v.split('/');
  const count = Number(parts[0].trim());
  const secs = parts.length > 1 ? Number(parts[1].trim()) : 1;
  return { count, windowMs: secs * 1000 };
}

function aggressivenessOf(v: unknown): number {
  if (v === 'normal') return 0.3;
  if (v === 'high') return 0.75;
  return v as number;
}

/** Limits of a configuration, resolved most specific first, straight from the raw config object. */
export class NaiveLimits {
  readonly bindingNames: string[] = [];
  readonly groupNames: string[] = [];
  /** Group index of each binding, -1 for none. */
  readonly groupOf: number[] = [];

  constructor(
    bindings: BindingSpec[],
    readonly config: CoreConfig,
  ) {
    for (const spec of bindings) {
      const name = typeof spec === 'string' ? spec : spec.name;
      const group = typeof spec === 'string' ? undefined : spec.group;
      this.bindingNames.push(name);
      if (group === undefined) {
        this.groupOf.push(-1);
      } else {
        if (!this.groupNames.includes(group)) this.groupNames.push(group);
        this.groupOf.push(this.groupNames.indexOf(group));
      }
    }
  }

  #bindingScope(b: number): NestedScope | undefined {
    return this.config.bindings?.[this.bindingNames[b]];
  }

  #groupScope(g: number): NestedScope | undefined {
    return g < 0 ? undefined : this.config.bindingGroups?.[this.groupNames[g]];
  }

  /** binding::domain > binding_group::domain > binding > binding_group > domain > global. */
  chain(b: number, domain: string): ScopeOptions[] {
    const bs = this.#bindingScope(b);
    const gs = this.#groupScope(this.groupOf[b]);
    const out: (ScopeOptions | undefined)[] = [
      bs?.domains?.[domain],
      gs?.domains?.[domain],
      bs,
      gs,
      this.config.domains?.[domain],
      this.config.global,
    ];
    return out.filter((s): s is ScopeOptions => s !== undefined);
  }

  pair(b: number, domain: string): NaivePair {
    const chain = this.chain(b, domain);
    const find = <K extends keyof ScopeOptions>(key: K): ScopeOptions | undefined =>
      chain.find((s) => s[key] !== undefined);
    return {
      max: find('maxOutboundConnections')?.maxOutboundConnections ?? DEFAULT_MAX,
      aggressiveness: aggressivenessOf(
        find('connectionAllocationAggressiveness')?.connectionAllocationAggressiveness ?? 'normal',
      ),
      expiryMs: (find('messageExpiration')?.messageExpiration ?? DEFAULT_EXPIRATION_S) * 1000,
      suspended: find('suspendDelivery')?.suspendDelivery ?? false,
      throttleScope: find('outboundThrottleConnections'),
    };
  }

  /** scope_max_outbound_connections of Global::Domain. */
  domainScopeMax(domain: string): number {
    return this.config.domains?.[domain]?.scopeMaxOutboundConnections ?? Infinity;
  }

  /** scope_max_outbound_connections of Binding_Group::Domain. */
  groupDomainScopeMax(g: number, domain: string): number {
    return this.#groupScope(g)?.domains?.[domain]?.scopeMaxOutboundConnections ?? Infinity;
  }

  groupServerMax(g: number): number {
    return this.#groupScope(g)?.serverMaxOutboundConnections ?? Infinity;
  }

  bindingServerMax(b: number): number {
    return this.#bindingScope(b)?.serverMaxOutboundConnections ?? Infinity;
  }

  get serverMax(): number {
    return this.config.global?.serverMaxOutboundConnections ?? DEFAULT_SERVER_MAX;
  }

  get serverReserve(): number {
    return this.config.global?.serverReserveOutboundConnections ?? DEFAULT_RESERVE;
  }
}

/** The default goal curve: min(M, max(1, ceil(M * (1 - exp(-a * q / M))))), 0 when M or q is 0. */
export function naiveGoal(M: number, q: number, a: number): number {
  if (M === 0 || q === 0) return 0;
  const raw = M * (1 - Math.exp((-a * q) / M));
  return Math.min(M, Math.max(1, Math.ceil(raw - 1e-9)));
}

// --- the model ----------------------------------------------------------------------------------

interface Bucket {
  rate: NaiveRate;
  times: number[];
  last: number;
}

interface Connection {
  connectionId: number;
  domain: string;
  binding: number;
}

export class NaiveCore {
  readonly limits: NaiveLimits;
  /** Domain slots in index order (the native core's): a forgotten domain's slot is undefined until
   *  the next new domain takes it, the slot forgotten last first. */
  readonly #slots: (string | undefined)[] = [];
  readonly #freeSlots: number[] = [];
  readonly messages = new Map<number, NaiveMessage>();
  readonly connections: Connection[] = [];
  /** Ids of bounced (expired) messages, in the order the model expired them; the test drains it. */
  bounces: number[] = [];
  #seq = 1;
  #nextConnectionId = 1;
  #domainRotation = 0;
  readonly #bindingRotation = new Map<string, number>();
  readonly #buckets = new Map<ScopeOptions, Bucket>();
  #opened = 0;
  #released = 0;
  #expired = 0;
  #activeRemoved = 0;

  constructor(bindings: BindingSpec[], config: CoreConfig) {
    this.limits = new NaiveLimits(bindings, config);
  }

  get bindingNames(): string[] {
    return this.limits.bindingNames;
  }

  /** The domains held, in slot order. */
  get domains(): string[] {
    return this.#slots.filter((d): d is string => d !== undefined);
  }

  /** forgetIdleDomains(): every domain with no message and no connection (the model has no
   *  suspensions) is forgotten, in slot order; returns how many. */
  forgetIdleDomains(): number {
    let n = 0;
    this.#slots.forEach((d, i) => {
      if (d === undefined) return;
      if ([...this.messages.values()].some((m) => m.domain === d)) return;
      if (this.connections.some((c) => c.domain === d)) return;
      this.#slots[i] = undefined;
      this.#freeSlots.push(i);
      this.#bindingRotation.delete(d);
      n++;
    });
    return n;
  }

  // --- helpers ---

  #slot(binding: string | number | undefined): number {
    if (binding === undefined) return 0;
    if (typeof binding === 'number') return binding;
    const i = this.bindingNames.indexOf(binding);
    if (i < 0) throw new Error(`model: unknown binding ${binding}`);
    return i;
  }

  #known(domain: string): string {
    const d = domain.toLowerCase();
    if (!this.domains.includes(d)) throw new ModelError('ERR_UNKNOWN_DOMAIN');
    return d;
  }

  #expire(m: NaiveMessage): void {
    this.messages.delete(m.id);
    this.bounces.push(m.id);
    this.#expired++;
  }

  #addDomain(d: string): void {
    if (!this.domains.includes(d)) {
      const slot = this.#freeSlots.pop();
      if (slot === undefined) this.#slots.push(d);
      else this.#slots[slot] = d;
      this.#bindingRotation.set(d, 0);
    }
  }

  /** Active queue of (domain, binding): priority desc, nextAttempt asc, seq asc. */
  activeMessages(domain: string, binding: string | number): NaiveMessage[] {
    const d = domain.toLowerCase();
    const b = this.#slot(binding);
    return [...this.messages.values()]
      .filter((m) => m.state === 'active' && m.domain === d && m.binding === b)
      .sort((x, y) => y.priority - x.priority || x.nextAttempt - y.nextAttempt || x.seq - y.seq);
  }

  activeOrder(domain: string, binding: string | number): number[] {
    return this.activeMessages(domain, binding).map((m) => m.id);
  }

  /** Delayed queue of a domain: nextAttempt asc, seq asc. */
  delayedMessages(domain: string): NaiveMessage[] {
    const d = domain.toLowerCase();
    return [...this.messages.values()]
      .filter((m) => m.state === 'delayed' && m.domain === d)
      .sort((x, y) => x.nextAttempt - y.nextAttempt || x.seq - y.seq);
  }

  inFlightIds(): number[] {
    return [...this.messages.values()]
      .filter((m) => m.state === 'in-flight')
      .map((m) => m.id)
      .sort((a, b) => a - b);
  }

  message(id: number): NaiveMessageInfo | undefined {
    const m = this.messages.get(id);
    if (!m) return undefined;
    return {
      id: m.id,
      domain: m.domain,
      binding: this.bindingNames[m.binding],
      state: m.state,
      priority: m.priority,
      attempts: m.attempts,
      nextAttempt: m.nextAttempt,
      expiresAt: m.expiresAt,
    };
  }

  stats(): NaiveStats {
    const all = [...this.messages.values()];
    return {
      connections: this.connections.length,
      active: all.filter((m) => m.state === 'active').length,
      delayed: all.filter((m) => m.state === 'delayed').length,
      inFlight: all.filter((m) => m.state === 'in-flight').length,
      domains: this.domains.length,
      opened: this.#opened,
      released: this.#released,
      expired: this.#expired,
      activeRemoved: this.#activeRemoved,
    };
  }

  // --- connection counts (recomputed from the open grants every time) ---

  pairCount(domain: string, b: number): number {
    return this.connections.filter((c) => c.domain === domain && c.binding === b).length;
  }

  domainCount(domain: string): number {
    return this.connections.filter((c) => c.domain === domain).length;
  }

  groupDomainCount(g: number, domain: string): number {
    return this.connections.filter((c) => c.domain === domain && this.limits.groupOf[c.binding] === g).length;
  }

  bindingCount(b: number): number {
    return this.connections.filter((c) => c.binding === b).length;
  }

  groupCount(g: number): number {
    return this.connections.filter((c) => this.limits.groupOf[c.binding] === g).length;
  }

  total(): number {
    return this.connections.length;
  }

  // --- messages ---

  enqueue(
    msg: { id: number; domain: string; binding?: string; priority?: number; nextAttempt?: number; expiresAt?: number },
    now: number,
  ): void {
    const d = msg.domain.toLowerCase();
    const b = this.#slot(msg.binding);
    if (this.messages.has(msg.id)) throw new ModelError('ERR_DUPLICATE_ID');
    const nextAttempt = msg.nextAttempt ?? now;
    const expiresAt = msg.expiresAt ?? now + this.limits.pair(b, d).expiryMs;
    this.#addDomain(d);
    this.messages.set(msg.id, {
      id: msg.id,
      domain: d,
      binding: b,
      priority: msg.priority ?? 0,
      nextAttempt,
      seq: this.#seq++,
      expiresAt,
      attempts: 0,
      state: nextAttempt > now ? 'delayed' : 'active',
    });
    if (nextAttempt >= expiresAt) this.#expire(this.messages.get(msg.id)!);
  }

  /** All or nothing; every message due now with the pair's default expiry. */
  enqueueBatch(
    domain: string,
    binding: string | undefined,
    ids: number[],
    priorities: number[] | undefined,
    now: number,
  ): void {
    if (ids.length === 0) return;
    const d = domain.toLowerCase();
    const b = this.#slot(binding);
    for (let i = 0; i < ids.length; i++) {
      if (this.messages.has(ids[i]) || ids.indexOf(ids[i]) !== i) throw new ModelError('ERR_DUPLICATE_ID');
    }
    this.#addDomain(d);
    const expiresAt = now + this.limits.pair(b, d).expiryMs;
    ids.forEach((id, i) => {
      this.messages.set(id, {
        id,
        domain: d,
        binding: b,
        priority: priorities?.[i] ?? 0,
        nextAttempt: now,
        seq: this.#seq++,
        expiresAt,
        attempts: 0,
        state: 'active',
      });
    });
  }

  /** enqueueMany: entry i is ids[i] for (domains[i], bindings[i]) at priorities[i]; all due now,
   *  all or nothing, new domains made in the order they first appear. */
  enqueueMany(domains: string[], bindings: number[], ids: number[], priorities: number[], now: number): void {
    for (let i = 0; i < ids.length; i++) {
      if (this.messages.has(ids[i]) || ids.indexOf(ids[i]) !== i) throw new ModelError('ERR_DUPLICATE_ID');
    }
    ids.forEach((id, i) => {
      const d = domains[i].toLowerCase();
      const b = bindings[i];
      this.#addDomain(d);
      this.messages.set(id, {
        id,
        domain: d,
        binding: b,
        priority: priorities[i],
        nextAttempt: now,
        seq: this.#seq++,
        expiresAt: now + this.limits.pair(b, d).expiryMs,
        attempts: 0,
        state: 'active',
      });
    });
  }

  cancel(id: number): boolean {
    const m = this.messages.get(id);
    if (!m) return false;
    if (m.state === 'in-flight') throw new ModelError('ERR_IN_FLIGHT');
    if (m.state === 'active') this.#activeRemoved++;
    this.messages.delete(id);
    return true;
  }

  /** activeQueue(domain, binding).remove(id) */
  removeActive(domain: string, binding: string | number, id: number): boolean {
    const d = this.#known(domain);
    const b = this.#slot(binding);
    const m = this.messages.get(id);
    if (m?.state !== 'active' || m.domain !== d || m.binding !== b) return false;
    this.#activeRemoved++;
    this.messages.delete(id);
    return true;
  }

  take(domain: string, binding: string | number, k: number, now: number): number[] {
    const d = this.#known(domain);
    const out: number[] = [];
    while (out.length < k) {
      const head = this.activeMessages(d, binding)[0];
      if (!head) break;
      this.#activeRemoved++;
      if (head.expiresAt <= now) {
        this.#expire(head);
        continue;
      }
      head.state = 'in-flight';
      if (head.attempts < 0xffff) head.attempts++;
      out.push(head.id);
    }
    return out;
  }

  #inFlight(id: number): NaiveMessage {
    const m = this.messages.get(id);
    if (!m) throw new ModelError('ERR_UNKNOWN_ID');
    if (m.state !== 'in-flight') throw new ModelError('ERR_NOT_IN_FLIGHT');
    return m;
  }

  settle(id: number): void {
    this.#inFlight(id);
    this.messages.delete(id);
  }

  defer(id: number, nextAttempt: number, now: number): void {
    const m = this.#inFlight(id);
    if (nextAttempt >= m.expiresAt) {
      this.#expire(m);
      return;
    }
    m.nextAttempt = nextAttempt;
    m.seq = this.#seq++;
    m.state = nextAttempt > now ? 'delayed' : 'active';
  }

  untake(id: number): void {
    const m = this.#inFlight(id);
    if (m.attempts > 0) m.attempts--;
    m.state = 'active';
  }

  // --- connections ---

  #bucket(scope: ScopeOptions): Bucket {
    let bk = this.#buckets.get(scope);
    if (!bk) {
      bk = { rate: naiveRate(scope.outboundThrottleConnections!), times: [], last: -Infinity };
      this.#buckets.set(scope, bk);
    }
    return bk;
  }

  #throttleAvailable(bk: Bucket, now: number): number {
    const t = Math.max(now, bk.last);
    return bk.rate.count - bk.times.filter((x) => x > t - bk.rate.windowMs).length;
  }

  /** The reserve the maintainer passes: 0 for a pair with no open connection. */
  reserveFor(domain: string, b: number): number {
    return this.pairCount(domain, b) === 0 ? 0 : this.limits.serverReserve;
  }

  /** How many more connections (domain, binding) may open now, every clip applied. */
  headroom(domain: string, b: number, reserve: number, now: number): number {
    const L = this.limits;
    const p = L.pair(b, domain);
    if (p.suspended) return 0;
    const clips: number[] = [];
    clips.push(p.max - this.pairCount(domain, b));
    clips.push(L.domainScopeMax(domain) - this.domainCount(domain));
    const g = L.groupOf[b];
    if (g >= 0) {
      clips.push(L.groupDomainScopeMax(g, domain) - this.groupDomainCount(g, domain));
      clips.push(L.groupServerMax(g) - this.groupCount(g));
    }
    clips.push(L.bindingServerMax(b) - this.bindingCount(b));
    clips.push(L.serverMax + L.serverReserve - reserve - this.total());
    if (reserve < L.serverReserve) clips.push(Math.max(0, L.serverMax - this.total()) + 1);
    let want = Math.max(0, Math.min(...clips));
    if (want > 0 && p.throttleScope) want = Math.min(want, this.#throttleAvailable(this.#bucket(p.throttleScope), now));
    return want;
  }

  /** Opens connections towards `goal` in total for the pair; returns the grants. */
  openTowards(domain: string, b: number, goal: number, reserve: number, now: number): NaiveGrant[] {
    const cur = this.pairCount(domain, b);
    if (goal <= cur) return [];
    const n = Math.min(goal - cur, this.headroom(domain, b, reserve, now));
    if (n <= 0) return [];
    const p = this.limits.pair(b, domain);
    if (p.throttleScope) {
      const bk = this.#bucket(p.throttleScope);
      const t = Math.max(now, bk.last);
      bk.last = t;
      for (let i = 0; i < n; i++) bk.times.push(t);
    }
    const out: NaiveGrant[] = [];
    for (let i = 0; i < n; i++) {
      const c = { connectionId: this.#nextConnectionId++, domain, binding: b };
      this.connections.push(c);
      out.push({ connectionId: c.connectionId, domain, binding: this.bindingNames[b] });
    }
    this.#opened += n;
    return out;
  }

  /** MailQueueCore.openConnections: up to `count` more, reserve by the maintainer's rule. */
  openConnections(
    domain: string,
    binding: string | number,
    count: number,
    now: number,
    reserve?: number,
  ): NaiveGrant[] {
    const d = this.#known(domain);
    const b = this.#slot(binding);
    return this.openTowards(d, b, this.pairCount(d, b) + count, reserve ?? this.reserveFor(d, b), now);
  }

  releaseConnection(connectionId: number): void {
    const i = this.connections.findIndex((c) => c.connectionId === connectionId);
    if (i < 0) throw new ModelError('ERR_UNKNOWN_CONNECTION');
    this.connections.splice(i, 1);
    this.#released++;
  }

  // --- maintenance ---

  isDue(domain: string, now: number): boolean {
    return [...this.messages.values()].some(
      (m) => m.domain === domain && (m.state === 'active' || (m.state === 'delayed' && m.nextAttempt <= now)),
    );
  }

  /** The default goal for a pair: -1 when its queue is empty or it is suspended. */
  goal(domain: string, b: number, goalsz: number): number {
    const q = this.activeMessages(domain, b).length;
    const p = this.limits.pair(b, domain);
    if (q === 0 || p.suspended) return -1;
    if (goalsz > 0) return this.pairCount(domain, b) + goalsz;
    return naiveGoal(p.max, q, p.aggressiveness);
  }

  /** One domain: promote due delayed mail, expire what is past its expiry, then every binding. */
  maintainDomain(domain: string, now: number, goalsz = 0, reserve?: number): NaiveGrant[] {
    const d = this.#known(domain);
    for (const m of this.delayedMessages(d)) {
      if (m.nextAttempt > now) break;
      if (m.expiresAt <= now) this.#expire(m);
      else m.state = 'active';
    }
    for (let b = 0; b < this.bindingNames.length; b++) {
      for (const m of this.activeMessages(d, b)) {
        if (m.expiresAt <= now) {
          this.#activeRemoved++;
          this.#expire(m);
        }
      }
    }
    const withMail: number[] = [];
    for (let b = 0; b < this.bindingNames.length; b++) if (this.activeMessages(d, b).length > 0) withMail.push(b);
    let start = 0;
    if (withMail.length > 1) {
      const rot = this.#bindingRotation.get(d)!;
      this.#bindingRotation.set(d, rot + 1);
      start = rot % withMail.length;
    }
    const grants: NaiveGrant[] = [];
    for (let j = 0; j < withMail.length; j++) {
      const b = withMail[(start + j) % withMail.length];
      const goal = this.goal(d, b, goalsz);
      if (goal < 0) continue;
      grants.push(...this.openTowards(d, b, goal, reserve ?? this.reserveFor(d, b), now));
    }
    return grants;
  }

  /** One pass over the due domains, from a rotating start among them. */
  maintain(now: number): NaiveGrant[] {
    const due = this.domains.filter((d) => this.isDue(d, now));
    const n = due.length;
    if (n === 0) return [];
    const start = this.#domainRotation++ % n;
    const grants: NaiveGrant[] = [];
    for (let i = 0; i < n; i++) grants.push(...this.maintainDomain(due[(start + i) % n], now));
    return grants;
  }
}

// --- random configurations ----------------------------------------------------------------------

export interface Setup {
  bindings: BindingSpec[];
  domains: string[];
  config: CoreConfig;
}

export interface SetupOptions {
  /** Also set messageExpiration and connectionAllocationAggressiveness. */
  expirations: boolean;
  maxDomains: number;
}

/** `arb` with weight `some`, undefined with weight `none`. */
export function optional<T>(arb: fc.Arbitrary<T>, some = 1, none = 1): fc.Arbitrary<T | undefined> {
  return fc.oneof({ arbitrary: arb, weight: some }, { arbitrary: fc.constant(undefined), weight: none });
}

/** Drops keys whose value is undefined; undefined for an object left empty. */
function compact<T extends object>(o: T): T | undefined {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return Object.keys(out).length === 0 ? undefined : (out as T);
}

function compactMap<T extends object>(entries: [string, T | undefined][]): Record<string, T> | undefined {
  const out: Record<string, T> = {};
  for (const [k, v] of entries) if (v !== undefined) out[k] = v;
  return Object.keys(out).length === 0 ? undefined : out;
}

/** outbound_throttle_connections: a number N (per second) or "N/secs"; windows are multiples of
 *  250 ms like the test clocks, so grants land exactly on window edges often. */
export const arbRate: fc.Arbitrary<string | number> = fc.oneof(
  fc.integer({ min: 1, max: 3 }),
  fc.tuple(fc.integer({ min: 1, max: 4 }), fc.constantFrom('0.5', '1', '2', '5')).map(([n, s]) => `${n}/${s}`),
);

/** Small limits everywhere, so that every clip happens often. */
export function arbSetup(opts: SetupOptions): fc.Arbitrary<Setup> {
  return fc
    .record({
      nb: fc.integer({ min: 1, max: 3 }),
      nd: fc.integer({ min: 2, max: opts.maxDomains }),
      groups: fc.array(optional(fc.constantFrom<string>('g0', 'g1')), { minLength: 3, maxLength: 3 }),
    })
    .chain(({ nb, nd, groups }) => {
      const bindings: BindingSpec[] = Array.from({ length: nb }, (_, i) =>
        groups[i] === undefined ? `b${i}` : { name: `b${i}`, group: groups[i] },
      );
      const domains = Array.from({ length: nd }, (_, i) => `d${i}.example`);
      const groupNames = [...new Set(groups.slice(0, nb).filter((g): g is string => g !== undefined))];
      const small = fc.integer({ min: 0, max: 4 });
      const throttle = optional(arbRate, 1, 3);
      const expiration = (some: number, none: number) =>
        opts.expirations ? optional(fc.integer({ min: 1, max: 20 }), some, none) : fc.constant(undefined);
      const global = fc
        .record({
          maxOutboundConnections: optional(fc.integer({ min: 0, max: 6 }), 1, 2),
          serverMaxOutboundConnections: optional(fc.integer({ min: 0, max: 8 }), 3, 1),
          serverReserveOutboundConnections: optional(fc.integer({ min: 0, max: 3 }), 3, 1),
          outboundThrottleConnections: throttle,
          messageExpiration: expiration(1, 1),
          connectionAllocationAggressiveness: opts.expirations
            ? optional(
                fc.oneof(
                  fc.constantFrom('normal' as const, 'high' as const),
                  fc.integer({ min: 1, max: 100 }).map((x) => x / 100),
                ),
                1,
                2,
              )
            : fc.constant(undefined),
        })
        .map(compact);
      const domainScope = fc
        .record({
          maxOutboundConnections: optional(small, 1, 2),
          scopeMaxOutboundConnections: optional(small, 1, 1),
          outboundThrottleConnections: throttle,
          messageExpiration: expiration(1, 3),
        })
        .map(compact);
      const pairScope = fc
        .record({
          maxOutboundConnections: optional(small, 1, 1),
          outboundThrottleConnections: throttle,
        })
        .map(compact);
      const groupDomainScope = fc
        .record({
          maxOutboundConnections: optional(small, 1, 2),
          scopeMaxOutboundConnections: optional(small, 2, 1),
          outboundThrottleConnections: throttle,
        })
        .map(compact);
      const nested = (inner: fc.Arbitrary<object | undefined>) =>
        fc
          .record({
            maxOutboundConnections: optional(small, 1, 2),
            serverMaxOutboundConnections: optional(fc.integer({ min: 0, max: 6 }), 1, 1),
            outboundThrottleConnections: throttle,
            domains: fc
              .array(optional(inner, 1, 1), { minLength: nd, maxLength: nd })
              .map((list) => compactMap(list.map((s, i) => [domains[i], s]))),
          })
          .map((s) => compact(s as NestedScope));
      return fc
        .record({
          global,
          domains: fc.array(optional(domainScope, 1, 1), { minLength: nd, maxLength: nd }),
          bindings: fc.array(optional(nested(pairScope), 1, 1), { minLength: nb, maxLength: nb }),
          bindingGroups: fc.array(optional(nested(groupDomainScope), 2, 1), {
            minLength: groupNames.length,
            maxLength: groupNames.length,
          }),
        })
        .map((raw): Setup => {
          const config: CoreConfig = {};
          if (raw.global) config.global = raw.global;
          const ds = compactMap(raw.domains.map((s, i) => [domains[i], s]));
          if (ds) config.domains = ds;
          const bs = compactMap(raw.bindings.map((s, i) => [`b${i}`, s as NestedScope | undefined]));
          if (bs) config.bindings = bs;
          const gs = compactMap(raw.bindingGroups.map((s, i) => [groupNames[i], s as NestedScope | undefined]));
          if (gs) config.bindingGroups = gs;
          return { bindings, domains, config };
        });
    });
}
