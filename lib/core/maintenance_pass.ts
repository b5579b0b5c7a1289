// The maintenance pass: the four hook points (__mail_queue_maintain, connection_goal and the
// pre/post domain hooks) and the passes that run them. When no JavaScript provider is registered,
// a whole pass (or a slice of one) is one native call; otherwise the pass runs here, domain by
// domain, calling the hook chains with the native default behind them. A JS-driven pass skips the
// native default where nothing moved since the visit began and the pair wants no more than it has.
import { codedError, HookError } from '../errors.js';
import { GrantList, ownerOf } from '../grant_list.js';
import { callTrusted, HookPoint } from '../hook_point.js';
import { native } from '../native.js';
import { checkInt, checkKeys, checkObject, checkTime, typeName } from '../validate.js';
import { ActiveQueue, DomainRecord } from '../views.js';
import type { CoreContext } from './core_context.js';
import type { DomainTable } from './domain_table.js';
import type { Grant, Outbox } from './outbox.js';

const MAINTAIN_OPTIONS: ReadonlySet<string> = new Set(['maxDomains', 'maxGrants', 'into']);
const MAINTAIN_DOMAIN_OPTIONS: ReadonlySet<string> = new Set(['now', 'goalsz', 'reserve']);
const OPEN_CONNECTIONS_OPTIONS: ReadonlySet<string> = new Set(['now', 'reserve']);

export type MailQueueMaintainArgs = [
  dr: DomainRecord,
  bindingSlot: number,
  sl: ActiveQueue,
  now: number,
  goalsz: number,
  reserve: number,
];
export type ConnectionGoalArgs = [dr: DomainRecord, bindingSlot: number, sl: ActiveQueue, goal: { value: number }];
export type DomainHookArgs = [dr: DomainRecord, now: number, rv: { value: number }];

export interface CoreHooks {
  /** __mail_queue_maintain: (closure, dr, bindingSlot, sl, now, goalsz, reserve) => number */
  readonly mailQueueMaintain: HookPoint<MailQueueMaintainArgs>;
  /** connection_goal: (closure, dr, bindingSlot, sl, goal: { value }) => void; last writer wins */
  readonly connectionGoal: HookPoint<ConnectionGoalArgs>;
  /** pre_mail_queue_maintain_domain: (closure, dr, now, rv: { value }) => void */
  readonly preMailQueueMaintainDomain: HookPoint<DomainHookArgs>;
  /** post_mail_queue_maintain_domain: (closure, dr, now, rv: { value }) => void; rv.value is the
   *  sum of the positive __mail_queue_maintain results of the domain's pass */
  readonly postMailQueueMaintainDomain: HookPoint<DomainHookArgs>;
}

export interface MaintainResult {
  /** Connections opened in this pass (grants.length). */
  opened: number;
  grants: Grant[];
}

export interface MaintainOptions {
  /** Visit at most this many due domains (a slice of a pass). */
  maxDomains?: number;
  /** End the slice once it has opened this many connections (after the domain that reached it). */
  maxGrants?: number;
  /** Write the grants into this list (from grantList()) instead of Grant objects; the result's
   *  `grants` is then empty and `opened` counts the list's entries. */
  into?: GrantList;
}

/** What maintain() returns: a pass, or a slice of one (options.maxDomains). */
export interface PassResult extends MaintainResult {
  /** Due domains this call visited. */
  visited: number;
  /** Due domains this call did not visit (0 after a whole pass). */
  remaining: number;
}

export class MaintenancePass {
  readonly hooks: CoreHooks;
  #inPass = false;
  readonly #order: Uint32Array;
  #dueBuf = new Uint32Array(64);
  readonly #sliceOut = new Float64Array(2);
  // The argument arrays of the trusted hook calls of a JS-driven pass, reused from call to call.
  readonly #maintainArgs = [] as unknown as MailQueueMaintainArgs;
  readonly #domainHookArgs = [] as unknown as DomainHookArgs;
  // What the counters said when a JS-driven pass last learned a domain's binding order and reserves
  // (see #maintainDomainJs): while they say the same, no queue emptied and no count changed.
  #visitRemoved = 0;
  #visitActive = 0;
  #visitOpened = 0;
  #visitReleased = 0;
  #visitDomain = -1;
  #visitEpoch = 0;
  #visitGoalsz = 0;
  #visitNow = 0;

  constructor(
    private readonly ctx: CoreContext,
    private readonly domains: DomainTable,
    private readonly outbox: Outbox,
    /** The GrantList owner (the facade): a list of another core is refused. */
    private readonly owner: object,
    /** After every pass: idle connections of the delivery layer look for mail that became due. */
    private readonly afterPass: (now: number) => void,
  ) {
    this.#order = new Uint32Array(3 * ctx.bindings.length);
    const bindings = ctx.bindings;
    const guard = () => {
      ctx.live();
    };
    const report = (err: HookError) => outbox.reportError(err);
    const describe = (args: unknown[]) => {
      const dr = args[0];
      const slot = args[1];
      return {
        domain: dr instanceof DomainRecord ? dr.name : undefined,
        binding: typeof slot === 'number' ? bindings[slot] : undefined,
      };
    };
    this.hooks = Object.freeze({
      mailQueueMaintain: new HookPoint<MailQueueMaintainArgs>('mailQueueMaintain', {
        kind: 'chain',
        guard,
        report,
        describe,
        checkArgs: (args) => this.#checkMaintainArgs(args),
        fallback: (dr, slot, sl, now, goalsz, reserve) => {
          // When nothing moved before the default ran, what it opens (for this pair only) does not
          // make the pass's view of the other bindings stale; connectionGoal providers might.
          const clean = !this.hooks.connectionGoal.has() && !this.#countersMoved();
          // Nothing moved since the visit began and the pair wants no more than it holds: the
          // default would open nothing (the native call is most of a passive provider's cost).
          const inVisit = dr.index === this.#visitDomain && goalsz === this.#visitGoalsz && now === this.#visitNow;
          if (clean && inVisit && this.#order[2 * bindings.length + slot] === 0) return 0;
          // The visit's own pair with no connectionGoal provider: the native call takes the domain,
          // now and goalsz from the visit (prepareVisit), three arguments fewer to cross.
          const r =
            inVisit && !this.hooks.connectionGoal.has()
              ? native.visitDefault(ctx.handle, slot, reserve)
              : this.#defaultMaintain(dr, slot, sl, now, goalsz, reserve);
          if (clean) this.#noteVisit();
          return r;
        },
      }),
      connectionGoal: new HookPoint<ConnectionGoalArgs>('connectionGoal', {
        kind: 'void',
        guard,
        report,
        describe,
        checkArgs: ([dr, slot, sl, goal]) => {
          this.#checkPair(dr, slot, sl);
          this.#checkBox(goal, 'goal');
        },
      }),
      preMailQueueMaintainDomain: new HookPoint<DomainHookArgs>('preMailQueueMaintainDomain', {
        kind: 'void',
        guard,
        report,
        describe,
        checkArgs: (args) => this.#checkDomainHookArgs(args),
      }),
      postMailQueueMaintainDomain: new HookPoint<DomainHookArgs>('postMailQueueMaintainDomain', {
        kind: 'void',
        guard,
        report,
        describe,
        checkArgs: (args) => this.#checkDomainHookArgs(args),
      }),
    });
  }

  /** A pass runs, or a provider is being called: close() and new passes are refused. */
  get busy(): boolean {
    const k = this.hooks;
    return (
      this.#inPass ||
      k.mailQueueMaintain.calling ||
      k.connectionGoal.calling ||
      k.preMailQueueMaintainDomain.calling ||
      k.postMailQueueMaintainDomain.calling
    );
  }

  /** See MailQueueCore.maintain. Timed for a 'pass' listener, when there is one. */
  maintain(now?: number, options: MaintainOptions = {}): PassResult {
    if (!this.outbox.listens('pass')) return this.#maintain(now, options);
    const t0 = performance.now();
    const r = this.#maintain(now, options);
    const e = { durationMs: performance.now() - t0, opened: r.opened, visited: r.visited, remaining: r.remaining };
    this.outbox.emitSafely('pass', e);
    return r;
  }

  #maintain(now: number | undefined, options: MaintainOptions): PassResult {
    const ctx = this.ctx;
    const h = ctx.live();
    this.#refuseInPass('maintain');
    const t = now === undefined ? ctx.now() : checkTime(now, 'now');
    checkKeys(checkObject(options, 'options'), MAINTAIN_OPTIONS, 'options', 'option');
    const max =
      options.maxDomains === undefined ? Infinity : checkInt(options.maxDomains, 'options.maxDomains', 1, 4294967295);
    const maxGrants =
      options.maxGrants === undefined ? Infinity : checkInt(options.maxGrants, 'options.maxGrants', 1, 4294967295);
    const into = options.into === undefined ? null : this.#checkGrantList(options.into, 'options.into');
    // A whole pass (neither option) is a fresh slice as large as the number of due domains.
    const whole = max === Infinity && maxGrants === Infinity;
    const outbox = this.outbox;
    if (!this.#anyProvider()) {
      const out = this.#sliceOut;
      native.maintainSlice(h, t, max === Infinity ? 4294967295 : max, whole, maxGrants, out);
      outbox.drainExpired();
      let grants: Grant[];
      if (into === null) {
        grants = outbox.drainGrants(true);
      } else {
        into.clear();
        outbox.into = into;
        try {
          outbox.drainGrants();
        } finally {
          outbox.into = null;
        }
        grants = [];
      }
      this.afterPass(t);
      return { opened: into === null ? grants.length : into.length, grants, visited: out[0], remaining: out[1] };
    }
    let remaining = 0;
    let visited = 0;
    const result = this.#jsPass(into, () => {
      // The domains of this pass (or slice) from the core's snapshot; a whole pass takes a fresh one.
      if (this.#dueBuf.length < this.domains.records.length + 1)
        this.#dueBuf = new Uint32Array(this.domains.records.length * 2 + 1);
      const buf = this.#dueBuf;
      // Grants are drained at the pass's end: count them by the core's counter meanwhile.
      const openedBefore = ctx.counters[ctx.openedSlot];
      const opened = (): number => ctx.counters[ctx.openedSlot] - openedBefore;
      // With a grant cap, domains are asked for a few at a time, so the slice can end where the
      // cap was reached and leave the rest of the pass to the next slice.
      const step = maxGrants === Infinity ? 4294967295 : 16;
      let fresh = whole;
      for (;;) {
        const n = native.nextSlice(h, t, Math.min(step, max - visited), fresh, buf);
        fresh = false;
        remaining = buf[0];
        // Copied: a provider may enqueue to a new domain, and the next pass reuses the buffer.
        const list = Array.from(buf.subarray(1, 1 + n));
        let i = 0;
        while (i < n && opened() < maxGrants) this.#maintainDomainJs(list[i++], t, 0, undefined);
        visited += i;
        if (i < n) {
          // The cap was reached inside this batch: give the unvisited domains back to the pass.
          native.unvisitSlice(h, n - i);
          remaining += n - i;
          break;
        }
        if (remaining === 0 || visited >= max || opened() >= maxGrants || n === 0) break;
      }
    });
    this.afterPass(t);
    return { ...result, visited, remaining };
  }

  /** See MailQueueCore.maintainDomain. */
  maintainDomain(domain: string, options: { now?: number; goalsz?: number; reserve?: number } = {}): MaintainResult {
    const ctx = this.ctx;
    const h = ctx.live();
    this.#refuseInPass('maintainDomain');
    const d = this.domains.known(domain);
    checkKeys(checkObject(options, 'options'), MAINTAIN_DOMAIN_OPTIONS, 'options', 'option');
    const t = options.now === undefined ? ctx.now() : checkTime(options.now, 'options.now');
    const goalsz =
      options.goalsz === undefined ? 0 : checkInt(options.goalsz, 'options.goalsz', -2147483648, 2147483647);
    const reserve =
      options.reserve === undefined ? undefined : checkInt(options.reserve, 'options.reserve', 0, 4294967294);
    if (!this.#anyProvider()) {
      native.maintainDomain(h, d, t, goalsz, reserve ?? -1);
      this.outbox.drainExpired();
      const grants = this.outbox.drainGrants(true);
      return { opened: grants.length, grants };
    }
    return this.#jsPass(null, () => this.#maintainDomainJs(d, t, goalsz, reserve));
  }

  /** See MailQueueCore.openConnections. */
  openConnections(
    domain: string,
    binding: string | number,
    count: number,
    options: { now?: number; reserve?: number } = {},
  ): Grant[] {
    const ctx = this.ctx;
    const h = ctx.live();
    const d = this.domains.known(domain);
    const b = this.domains.bindingSlot(binding, 'binding');
    checkInt(count, 'count', 0, 4294967294);
    checkKeys(checkObject(options, 'options'), OPEN_CONNECTIONS_OPTIONS, 'options', 'option');
    const t = options.now === undefined ? ctx.now() : checkTime(options.now, 'options.now');
    const reserve =
      options.reserve === undefined
        ? native.reserveFor(h, d, b)
        : checkInt(options.reserve, 'options.reserve', 0, 4294967294);
    const cur = this.domains.records[d].connections(b);
    this.outbox.drainGrants(); // grants still pending (the pass's default) are not this caller's
    native.openConnections(h, d, b, cur + count, reserve, t);
    return this.outbox.drainGrants(true);
  }

  /** See MailQueueCore.defaultMailQueueMaintain. */
  defaultMailQueueMaintain(
    dr: DomainRecord,
    bindingSlot: number,
    sl: ActiveQueue,
    now: number,
    goalsz: number,
    reserve: number,
  ): number {
    this.ctx.live();
    this.#checkMaintainArgs([dr, bindingSlot, sl, now, goalsz, reserve]);
    return this.#defaultMaintain(dr, bindingSlot, sl, now, goalsz, reserve);
  }

  #checkGrantList(v: unknown, name: string): GrantList {
    if (!(v instanceof GrantList))
      throw new TypeError(`${name} must be a GrantList (from core.grantList()), got ${typeName(v)}`);
    if (v[ownerOf] !== this.owner) throw new RangeError(`${name}: a GrantList of another core`);
    return v;
  }

  #anyProvider(): boolean {
    const k = this.hooks;
    return (
      k.mailQueueMaintain.has() ||
      k.connectionGoal.has() ||
      k.preMailQueueMaintainDomain.has() ||
      k.postMailQueueMaintainDomain.has()
    );
  }

  #refuseInPass(what: string): void {
    if (this.#inPass) throw codedError('ERR_REENTRANT', `${what}() was called from inside a maintenance hook`);
  }

  /** Runs a JS-driven pass; its grants go into `into` when given (the result's `grants` is then
   *  empty), else into Grant objects. */
  #jsPass(into: GrantList | null, body: () => void): MaintainResult {
    const outbox = this.outbox;
    this.#inPass = true;
    const grants: Grant[] = [];
    outbox.passGrants = grants;
    into?.clear();
    outbox.into = into;
    try {
      body();
      // The pass's grants are drained once, at its end (a provider's openConnections() drains
      // what is pending before it opens its own).
      outbox.drainGrants();
    } catch (err) {
      // Connections granted before the failure are real leases: hand them over with the error.
      outbox.drainGrants();
      if (typeof err === 'object' && err !== null)
        (err as { grants?: Grant[] }).grants = into === null ? grants : into.toArray();
      throw err;
    } finally {
      this.#inPass = false;
      outbox.passGrants = null;
      outbox.into = null;
    }
    return { opened: into === null ? grants.length : into.length, grants };
  }

  #maintainDomainJs(d: number, now: number, goalsz: number, reserve: number | undefined): void {
    const h = this.ctx.handle;
    const dr = this.domains.records[d];
    const { preMailQueueMaintainDomain: pre, postMailQueueMaintainDomain: post, mailQueueMaintain } = this.hooks;
    const rv = pre.has() || post.has() ? { value: 0 } : undefined;
    const da = this.#domainHookArgs;
    if (rv) {
      da[0] = dr;
      da[1] = now;
      da[2] = rv;
    }
    if (pre.has()) pre[callTrusted](da);
    // One native call: promote, expire, the bindings with mail in this visit's order, their reserves.
    const order = this.#order;
    const nb = this.ctx.bindings.length;
    const n = native.prepareVisit(h, d, now, goalsz, order);
    this.outbox.drainExpired();
    this.#noteVisit();
    this.#visitDomain = d;
    this.#visitGoalsz = goalsz;
    this.#visitNow = now;
    let stale = false;
    let sum = 0;
    for (let j = 0; j < n; j++) {
      const b = order[j];
      let r = reserve ?? order[nb + j];
      // A provider of an earlier binding may have emptied this queue or changed its connections:
      // ask the core again once anything moved.
      if (stale || (stale = this.#countersMoved())) {
        if (native.activeSize(h, d, b) === 0) continue;
        if (reserve === undefined) r = native.reserveFor(h, d, b);
      }
      const ma = this.#maintainArgs;
      ma[0] = dr;
      ma[1] = b;
      ma[2] = this.domains.queue(d, b);
      ma[3] = now;
      ma[4] = goalsz;
      ma[5] = r;
      const got = mailQueueMaintain[callTrusted](ma);
      if (got > 0) sum += got;
    }
    this.#visitDomain = -1;
    if (rv) rv.value = sum;
    if (post.has()) post[callTrusted](da);
  }

  #noteVisit(): void {
    const ctx = this.ctx;
    const c = ctx.counters;
    this.#visitEpoch = ctx.limitsEpoch;
    this.#visitRemoved = c[ctx.removedSlot];
    this.#visitActive = c[ctx.activeSlot];
    this.#visitOpened = c[ctx.openedSlot];
    this.#visitReleased = c[ctx.releasedSlot];
  }

  #countersMoved(): boolean {
    const ctx = this.ctx;
    const c = ctx.counters;
    return (
      ctx.limitsEpoch !== this.#visitEpoch ||
      c[ctx.removedSlot] !== this.#visitRemoved ||
      c[ctx.activeSlot] !== this.#visitActive ||
      c[ctx.openedSlot] !== this.#visitOpened ||
      c[ctx.releasedSlot] !== this.#visitReleased
    );
  }

  #defaultMaintain(dr: DomainRecord, b: number, sl: ActiveQueue, now: number, goalsz: number, reserve: number): number {
    const h = this.ctx.handle;
    const d = dr.index;
    let opened: number;
    if (!this.hooks.connectionGoal.has()) {
      opened = native.defaultMaintain(h, d, b, now, goalsz, reserve);
    } else {
      const goal = native.computeGoal(h, d, b, goalsz);
      if (goal < 0) return 0;
      const box = { value: goal };
      this.hooks.connectionGoal.call(dr, b, sl, box);
      let g = box.value;
      if (typeof g !== 'number' || !Number.isFinite(g) || g < 0) {
        this.outbox.reportError(
          new HookError(
            'connectionGoal',
            dr.name,
            this.ctx.bindings[b],
            `connectionGoal providers set goal to ${String(g)}, not a count; the default goal ${goal} is used`,
          ),
        );
        g = goal;
      }
      // The clips bound it anyway; keep it inside what the native call accepts.
      opened = native.openConnections(h, d, b, Math.min(Math.floor(g), 4294967294), reserve, now);
    }
    // Inside a pass the grants wait for the pass's end (one drain a pass, not one a pair);
    // openConnections() drains what is pending before it opens its own.
    if (!this.#inPass) this.outbox.drainGrants();
    return opened;
  }

  /** A hook's `dr` argument: a DomainRecord of this core (TypeError otherwise). */
  checkDomain(dr: unknown): asserts dr is DomainRecord {
    if (!(dr instanceof DomainRecord)) throw new TypeError('dr must be a DomainRecord of this core');
    this.domains.recordIndex(dr, 'dr');
  }

  #checkPair(dr: unknown, slot: unknown, sl: unknown): void {
    this.checkDomain(dr);
    checkInt(slot, 'bindingSlot', 0, this.ctx.bindings.length - 1);
    // A view of the pair was made when it was handed out: one not made yet is not this one.
    if (!(sl instanceof ActiveQueue) || this.domains.madeQueue(dr.index, slot as number) !== sl) {
      throw new TypeError('sl must be the ActiveQueue of (dr, bindingSlot)');
    }
  }

  #checkBox(box: unknown, name: string): void {
    if (typeof box !== 'object' || box === null || typeof (box as { value?: unknown }).value !== 'number') {
      throw new TypeError(`${name} must be an object { value: number }, got ${typeName(box)}`);
    }
  }

  #checkDomainHookArgs([dr, now, rv]: DomainHookArgs): void {
    this.checkDomain(dr);
    checkTime(now, 'now');
    this.#checkBox(rv, 'rv');
  }

  #checkMaintainArgs(args: MailQueueMaintainArgs): void {
    const [dr, slot, sl, now, goalsz, reserve] = args;
    this.#checkPair(dr, slot, sl);
    checkTime(now, 'now');
    checkInt(goalsz, 'goalsz', -2147483648, 2147483647);
    checkInt(reserve, 'reserve', 0, 4294967294);
  }
}
