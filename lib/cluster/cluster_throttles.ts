// The fleet-wide throttles of one core (clusterOutboundThrottleConnections and
// clusterOutboundThrottleMessages; docs/architecture.md §7, decision 51). A throttle "N/secs" is a
// cap of N *rate slots* in Redis, leased with the caps' script (lease_scripts.ts); a node that holds
// k of them lets its own bucket for that throttle (a native RateThrottle of count N, shared by
// reference by the pairs that resolve to the scope) grant at most k in any window. The fleet's k
// add up to at most N at every instant, and at most N grants fall in any window because:
// - raising k: the leases come first, the bucket's allowance is raised after Redis's reply;
// - lowering k: the allowance drops at once, and the slots are given back only one window later
//   (renewed until then), so nobody uses a slot while this node's grants under it are in the window;
// - a slot's lease lives leaseTtl + the window in Redis, so one whose holder stalls (its allowance
//   drops to 0 at 0.9 x leaseTtl without a sync, as the caps do) outlives the holder's grants.
// The bucket keeps every grant of its window whatever the allowance (RateThrottle::setAllowance).
// ClusterCaps runs the loop and sends these syncs in the same pipeline as the caps'.
import type { PairSettings } from '../config.js';
import type { Rate } from '../config_values.js';
import type { CoreContext } from '../core/core_context.js';
import type { DomainTable } from '../core/domain_table.js';
import { native } from '../native.js';
import { scopesOf } from './cluster_options.js';
import type { LeaseReply, LeaseSync } from './lease_manager.js';

type Kind = 'connections' | 'messages';

/** One fleet-wide throttle: the scope that sets it, its Redis key, its native bucket. */
interface Slots {
  key: string;
  cap: number;
  windowMs: number;
  bucket: number;
  /** The pairs (d * bindings + b) that resolve to this throttle. */
  pairs: Set<number>;
  /** The leases this node holds in Redis (as of the last reply). */
  leases: string[];
  /** What the native bucket may grant in its window now. */
  allowance: number;
  /** Allowances lowered: keep that many leases until `until` (performance.now() ms). */
  holds: { until: number; n: number }[];
  share: number;
  deficient: boolean;
}

/** One sync of the loop: the throttles sent, in order, with the target each asked for. */
export interface ThrottlePlan {
  slots: Slots[];
  targets: number[];
  syncs: LeaseSync[];
}

const OPTION: Record<Kind, 'clusterOutboundThrottleConnections' | 'clusterOutboundThrottleMessages'> = {
  connections: 'clusterOutboundThrottleConnections',
  messages: 'clusterOutboundThrottleMessages',
};

export class ClusterThrottles {
  // By kind, then by the scope's place in the configuration (Scope.where).
  readonly #slots: Record<Kind, Map<string, Slots>> = { connections: new Map(), messages: new Map() };

  constructor(
    private readonly ctx: CoreContext,
    private readonly domains: DomainTable,
    private readonly prefix: string,
    private readonly ttlMs: number,
  ) {}

  /** A domain was made: its pairs draw from the throttles their scopes resolve to. */
  domainCreated(d: number, settings: readonly PairSettings[]): void {
    const nb = settings.length;
    settings.forEach((p, b) => {
      const conn = this.#for('connections', p.clusterThrottle);
      const msgs = this.#for('messages', p.clusterMessageThrottle);
      if (conn === undefined && msgs === undefined) return;
      conn?.pairs.add(d * nb + b);
      msgs?.pairs.add(d * nb + b);
      native.setClusterThrottles(this.ctx.handle, d, b, conn?.bucket ?? -1, msgs?.bucket ?? -1);
    });
  }

  /** A forgotten domain's pairs leave their throttles (the native ledger clears the slot on reuse). */
  domainForgotten(d: number): void {
    const nb = this.ctx.bindings.length;
    for (const kind of ['connections', 'messages'] as const)
      for (const s of this.#slots[kind].values()) for (let b = 0; b < nb; b++) s.pairs.delete(d * nb + b);
  }

  // The throttle of a scope, made with its bucket (allowance 0: no slot yet) on first use.
  #for(kind: Kind, where: string): Slots | undefined {
    if (where === '') return undefined;
    let s = this.#slots[kind].get(where);
    if (s !== undefined) return s;
    const rate = scopesOf(this.ctx.config).find((x) => x.where === where)?.values[OPTION[kind]] as Rate | undefined;
    if (rate === undefined) return undefined;
    const bucket = native.addThrottle(this.ctx.handle, rate.count, rate.windowMs);
    native.setThrottleAllowance(this.ctx.handle, bucket, 0);
    const key = `${this.prefix}:throttle:${kind}:${where.replace(/^config\./, '')}`;
    s = {
      key,
      cap: rate.count,
      windowMs: rate.windowMs,
      bucket,
      pairs: new Set(),
      leases: [],
      allowance: 0,
      holds: [],
      share: rate.count,
      deficient: false,
    };
    this.#slots[kind].set(where, s);
    return s;
  }

  *#all(): Iterable<Slots> {
    yield* this.#slots.connections.values();
    yield* this.#slots.messages.values();
  }

  /** Leases held, for clusterState(). */
  leasesHeld(): number {
    let n = 0;
    for (const s of this.#all()) n += s.leases.length;
    return n;
  }

  /**
   * The syncs of one loop turn, at `now` (performance.now()): per throttle with mail, leases or
   * holds, a target of min(N, the mail queued for its pairs), no more than the fair share while
   * another node is short. An allowance above the target drops now; leases beyond the target and
   * the holds still running are given back.
   */
  plan(now: number): ThrottlePlan {
    const plan: ThrottlePlan = { slots: [], targets: [], syncs: [] };
    const nb = this.ctx.bindings.length;
    for (const s of this.#all()) {
      let demand = 0;
      for (const pi of s.pairs) {
        demand += this.domains.records[Math.floor(pi / nb)].activeSize(pi % nb);
        if (demand >= s.cap) break;
      }
      let target = Math.min(s.cap, demand);
      if (s.deficient) target = Math.min(target, s.share);
      if (target < s.allowance) this.#setAllowance(s, target, now);
      let hold = 0;
      s.holds = s.holds.filter((h) => h.until > now);
      for (const h of s.holds) hold = Math.max(hold, h.n);
      if (target === 0 && s.leases.length === 0) continue;
      const keep = Math.max(target, hold);
      plan.slots.push(s);
      plan.targets.push(target);
      plan.syncs.push({
        key: s.key,
        cap: s.cap,
        target,
        renew: s.leases.slice(0, keep),
        release: s.leases.slice(keep),
        ttlMs: this.ttlMs + s.windowMs,
      });
    }
    return plan;
  }

  /** Redis answered the plan's syncs: the leases held now, and each allowance raised (or lowered)
   *  to them. `late`: the reply came after the leases were certainly alive (nothing is raised).
   *  True when some allowance went up (a pass should run soon). */
  apply(plan: ThrottlePlan, replies: readonly LeaseReply[], late: boolean, now: number): boolean {
    let more = false;
    plan.slots.forEach((s, i) => {
      const r = replies[i];
      s.leases = r.held;
      s.share = r.share;
      s.deficient = r.deficient;
      const allowance = late ? 0 : Math.min(r.held.length, plan.targets[i]);
      if (allowance > s.allowance) more = true;
      this.#setAllowance(s, allowance, now);
    });
    return more;
  }

  /** Fail closed: no sync for 0.9 x leaseTtl, so every allowance drops to 0 (the leases are kept,
   *  and renewed once Redis answers, until one window after the drop). */
  dropAll(now: number): void {
    for (const s of this.#all()) this.#setAllowance(s, 0, now);
  }

  /** The core closes: the leases no grant of the last window used go back now, the others one
   *  window later (in the background; if the process ends first, they expire in Redis). */
  closing(now: number): { now: { key: string; leases: string[] }[]; later: { key: string; leases: string[] }[] } {
    const out = { now: [] as { key: string; leases: string[] }[], later: [] as { key: string; leases: string[] }[] };
    for (const s of this.#all()) {
      this.#setAllowance(s, 0, now);
      let hold = 0;
      for (const h of s.holds) if (h.until > now) hold = Math.max(hold, h.n);
      if (s.leases.length > hold) out.now.push({ key: s.key, leases: s.leases.slice(hold) });
      if (hold > 0) out.later.push({ key: s.key, leases: s.leases.slice(0, hold) });
      s.leases = [];
    }
    return out;
  }

  /** The longest window of the throttles (how long closing() asks the later leases to wait). */
  longestWindow(): number {
    let w = 0;
    for (const s of this.#all()) w = Math.max(w, s.windowMs);
    return w;
  }

  // A new allowance for the bucket; a lowered one is remembered for a window (its slots are kept).
  #setAllowance(s: Slots, n: number, now: number): void {
    if (n === s.allowance) return;
    if (n < s.allowance) s.holds.push({ until: now + s.windowMs, n: s.allowance });
    s.allowance = n;
    native.setThrottleAllowance(this.ctx.handle, s.bucket, n);
  }
}
