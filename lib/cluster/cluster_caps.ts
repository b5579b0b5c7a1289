// The fleet-wide caps of one core (docs/architecture.md §7, decision 48). The native ledger treats
// the slots this node holds leases for as one more cap (setClusterHeld), so a pass never waits on
// Redis; this loop keeps the leases: every third of a lease's life it sends one pipeline that, for
// every cap with connections, mail or leases, renews the leases in use, gives back the ones beyond
// open connections plus queued mail, and asks for more up to that (Redis decides, fair share among
// the nodes that want slots). It fails closed: when Redis errs or does not answer, the held caps
// stay only while the leases are certainly alive by the local clock (a lease's life minus a tenth,
// from when the request was sent), then drop to zero; connections already open finish. The
// fleet-wide throttles (cluster_throttles.ts) ride in the same pipeline.
import type { PairSettings } from '../config.js';
import type { CoreContext } from '../core/core_context.js';
import type { DomainTable } from '../core/domain_table.js';
import { codedError } from '../errors.js';
import { native } from '../native.js';
import { type ClusterSettings, clusterScopeMax, clusterServerMax } from './cluster_options.js';
import { ClusterThrottles } from './cluster_throttles.js';
import { LeaseManager, type LeaseSync } from './lease_manager.js';

/** One cluster cap: a pair (domain, binding), a domain (binding -1) or the server (both -1). */
interface Limit {
  key: string;
  cap: number;
  domain: number;
  binding: number;
  /** The leases this node holds in Redis (as of the last reply). */
  leases: string[];
  /** What the native ledger is told this node may open to. */
  held: number;
  share: number;
  deficient: boolean;
}

/** What the loop calls on its core: a slot came (run a pass soon); a failure to report. */
export interface ClusterHost {
  poke(): void;
  report(err: Error): void;
}

export interface ClusterState {
  redisUp: boolean;
  leasesHeld: number;
  /** Redis commands sent since the core was made. */
  commands: number;
}

// The caps of each core that has them, for clusterState(core).
const capsOf = new WeakMap<object, ClusterCaps>();

/** The fleet-wide caps' state of a core (Redis answering, leases held, Redis commands sent);
 *  undefined for a core made without the cluster option. */
export function clusterState(core: object): ClusterState | undefined {
  return capsOf.get(core)?.state();
}

export class ClusterCaps {
  /** The caps of a core made with the cluster option, their loop started; else undefined. */
  static make(
    core: object,
    ctx: CoreContext,
    domains: DomainTable,
    poke: () => void,
    report: (err: Error) => void,
  ): ClusterCaps | undefined {
    if (ctx.clusterSettings === undefined) return undefined;
    const caps = new ClusterCaps(ctx.clusterSettings, ctx, domains, { poke, report });
    capsOf.set(core, caps);
    return caps.start();
  }

  readonly #limits: Limit[] = [];
  readonly #manager: LeaseManager;
  readonly #throttles: ClusterThrottles;
  readonly #tickMs: number;
  #timer: NodeJS.Timeout | undefined;
  #dropTimer: NodeJS.Timeout | undefined;
  #busy = false;
  #redisUp = true;
  #running = false;

  constructor(
    private readonly settings: ClusterSettings,
    private readonly ctx: CoreContext,
    private readonly domains: DomainTable,
    private readonly host: ClusterHost,
  ) {
    this.#manager = new LeaseManager(settings.redis, settings.node, settings.prefix, settings.ttlMs);
    this.#tickMs = Math.max(100, Math.floor(settings.ttlMs / 3));
    this.#throttles = new ClusterThrottles(ctx, domains, settings.prefix, settings.ttlMs);
    const server = clusterServerMax(ctx.config);
    if (server !== Infinity) this.#add('server', server, -1, -1);
  }

  /** A domain was made: its pairs' and its own cluster caps, held at 0 until leases come. */
  domainCreated(d: number, name: string, settings: readonly PairSettings[]): void {
    settings.forEach((p, b) => {
      if (p.clusterMax !== Infinity) this.#add(`pair:${this.ctx.bindings[b]}:${name}`, p.clusterMax, d, b);
    });
    const scope = clusterScopeMax(this.ctx.config, name);
    if (scope !== Infinity) this.#add(`domain:${name}`, scope, d, -1);
    this.#throttles.domainCreated(d, settings);
  }

  /** A forgotten domain's caps go with it (its slot may hold another domain next; the native
   *  ledger resets the slot's held caps on reuse). An idle domain holds no lease by then; any it
   *  still held in Redis expires within leaseTtl. */
  domainForgotten(d: number): void {
    let kept = 0;
    for (const l of this.#limits) if (l.domain !== d) this.#limits[kept++] = l;
    this.#limits.length = kept;
    this.#throttles.domainForgotten(d);
  }

  #add(key: string, cap: number, domain: number, binding: number): void {
    const k = `${this.settings.prefix}:${key}`;
    this.#limits.push({ key: k, cap, domain, binding, leases: [], held: 0, share: cap, deficient: false });
    native.setClusterHeld(this.ctx.handle, domain, binding, 0);
  }

  // Connections open and messages active under a cap.
  #load(l: Limit): { open: number; active: number } {
    if (l.domain < 0) {
      const c = this.ctx.counters;
      const i = this.ctx.counterIndex;
      return { open: c[i.connections], active: c[i.active] };
    }
    const r = this.domains.records[l.domain];
    const b = l.binding < 0 ? undefined : l.binding;
    return { open: r.connections(b), active: r.activeSize(b) };
  }

  state(): ClusterState {
    let leases = 0;
    for (const l of this.#limits) leases += l.leases.length;
    leases += this.#throttles.leasesHeld();
    return { redisUp: this.#redisUp, leasesHeld: leases, commands: this.#manager.commands };
  }

  /** Starts the loop (the core's constructor does, with the core's lifetime); returns this. */
  start(): this {
    if (this.#running) return this;
    this.#running = true;
    // A sync starts every third of a lease's life, however long the last one took.
    const run = () => {
      const startedAt = performance.now();
      void this.tick().finally(() => {
        if (!this.#running) return;
        this.#timer = setTimeout(run, Math.max(0, startedAt + this.#tickMs - performance.now()));
        this.#timer.unref();
      });
    };
    run();
    return this;
  }

  /** The core is closing: the loop stops and every lease is given back, in the background (a
   *  failure leaves them to expire within a lease's life). */
  close(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    clearTimeout(this.#dropTimer);
    const batch = this.#limits.filter((l) => l.leases.length > 0).map((l) => ({ key: l.key, leases: l.leases }));
    for (const l of this.#limits) l.leases = [];
    // A throttle's slots that granted within the last window go back one window later.
    const throttles = this.#throttles.closing(performance.now());
    this.#manager.release([...batch, ...throttles.now]).catch(() => undefined);
    if (throttles.later.length > 0)
      setTimeout(
        () => this.#manager.release(throttles.later).catch(() => undefined),
        this.#throttles.longestWindow(),
      ).unref();
  }

  /** One sync of every cap that has connections, mail or leases. */
  async tick(): Promise<void> {
    if (this.#busy || !this.#running) return;
    this.#busy = true;
    const sentAt = performance.now();
    const todo: { limit: Limit; sync: LeaseSync }[] = [];
    for (const l of this.#limits) {
      const { open, active } = this.#load(l);
      let target = Math.min(l.cap, open + active);
      if (l.deficient) target = Math.min(target, Math.max(l.share, 0));
      if (target === 0 && l.leases.length === 0 && open === 0) continue;
      const keep = Math.max(open, target);
      todo.push({
        limit: l,
        sync: { key: l.key, cap: l.cap, target, renew: l.leases.slice(0, keep), release: l.leases.slice(keep) },
      });
    }
    const throttles = this.#throttles.plan(sentAt);
    try {
      // A late reply is still good while the leases are certainly alive: wait that long, not a tick.
      const batch = [...todo.map((t) => t.sync), ...throttles.syncs];
      const replies = await withTimeout(this.#manager.sync(batch), this.settings.ttlMs * 0.8);
      if (!this.#running) return; // closed meanwhile: the native core is gone
      // A reply later than the leases are certainly alive raises nothing (the drop is due now).
      const late = performance.now() >= sentAt + this.settings.ttlMs * 0.9;
      let more = false;
      todo.forEach(({ limit: l, sync }, i) => {
        const r = replies[i];
        l.leases = r.held;
        l.share = r.share;
        l.deficient = r.deficient;
        const held = late ? 0 : Math.min(r.held.length, sync.target);
        if (held > l.held) more = true;
        this.#setHeld(l, held);
      });
      if (this.#throttles.apply(throttles, replies.slice(todo.length), late, performance.now())) more = true;
      this.#armDrop(sentAt);
      if (!this.#redisUp) this.#redisUp = true;
      if (more) this.host.poke();
    } catch (err) {
      if (this.#redisUp && this.#running) {
        this.#redisUp = false;
        this.host.report(clusterError('Redis failed; no new cluster-capped connections until it answers', err));
      }
    } finally {
      this.#busy = false;
    }
  }

  // After a reply, the leases live at least ttl from when the request was sent; a tenth of that is
  // kept back for clocks that run at different rates. If no reply comes by then, the caps drop.
  #armDrop(sentAt: number): void {
    clearTimeout(this.#dropTimer);
    const ms = sentAt + this.settings.ttlMs * 0.9 - performance.now();
    this.#dropTimer = setTimeout(
      () => {
        this.#setAllHeld(0);
        this.#throttles.dropAll(performance.now());
      },
      Math.max(0, ms),
    );
    this.#dropTimer.unref();
  }

  #setAllHeld(n: number): void {
    for (const l of this.#limits) this.#setHeld(l, n);
  }

  #setHeld(l: Limit, n: number): void {
    if (l.held === n) return;
    l.held = n;
    native.setClusterHeld(this.ctx.handle, l.domain, l.binding, n);
  }
}

function clusterError(what: string, cause: unknown): Error {
  const e = codedError(
    'ERR_CLUSTER',
    `cluster caps: ${what}: ${cause instanceof Error ? cause.message : String(cause)}`,
  );
  (e as Error & { cause?: unknown }).cause = cause;
  return e;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no reply within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
