// The operator's verbs and views (Momentum's console): flush, fail and retry, and the summary,
// domain view and queue listing. They act through the same native calls as the rest of the core
// and announce what they end through the outbox.
import type { DomainTally } from '../delivery/events.js';
import { native, Place } from '../native.js';
import { checkId, checkInt, checkKeys, checkObject } from '../validate.js';
import type { CoreContext } from './core_context.js';
import type { DomainTable } from './domain_table.js';
import type { Outbox } from './outbox.js';
import type { Suspensions } from './suspensions.js';
import type { MessageInfo, Stats } from './types.js';

const LIST_QUEUE_OPTIONS: ReadonlySet<string> = new Set(['binding', 'queue', 'limit', 'offset']);

export type Summary = Stats & {
  started: boolean;
  delivered: number;
  deferred: number;
  bounced: number;
  connectFailures: number;
  /** Bytes the native core holds for its tables (messages, queues, domain slots, ledger). */
  bytesReserved: number;
  bindings: Record<string, { connections: number; active: number; suspended: boolean }>;
};

export type DomainView = {
  name: string;
  connections: number;
  delayed: number;
  bindings: Record<string, { active: number; delayed: number; connections: number; suspended: boolean }>;
} & DomainTally;

export interface ListQueueOptions {
  binding?: string | number;
  queue?: 'active' | 'delayed';
  limit?: number;
  offset?: number;
}

/** What the verbs read from the facade. */
export interface VerbHost {
  stats(): Stats;
  readonly started: boolean;
  /** Mail became due for (d, b): wake idle connections there, or ask for a pass. */
  mailArrived(d: number, b: number, count?: number): void;
}

export class OperatorVerbs {
  constructor(
    private readonly ctx: CoreContext,
    private readonly domains: DomainTable,
    private readonly suspensions: Suspensions,
    private readonly outbox: Outbox,
    private readonly host: VerbHost,
  ) {}

  /** flush domain: every delayed message of the domain becomes due now. Returns how many. */
  flush(domain: string): number {
    const h = this.ctx.live();
    const d = this.domains.known(domain);
    const n = native.flushDomain(h, d, this.ctx.now());
    this.outbox.drainExpired();
    if (n > 0) {
      for (let b = 0; b < this.ctx.bindings.length; b++) {
        const q = native.activeSize(h, d, b);
        if (q > 0) this.host.mailArrived(d, b, q);
      }
    }
    return n;
  }

  /** Where a message is, or undefined when the core does not hold it (MailQueueCore.message). */
  message(id: number): MessageInfo | undefined {
    const h = this.ctx.live();
    checkId(id, 'id');
    const w = this.ctx.where;
    const place = native.locate(h, id, w);
    if (place === Place.None) return undefined;
    return {
      id,
      domain: this.domains.records[w[0]].name,
      binding: this.ctx.bindings[w[1]],
      state: place === Place.Active ? 'active' : place === Place.Delayed ? 'delayed' : 'in-flight',
      priority: w[3],
      attempts: w[4],
      nextAttempt: w[5],
      expiresAt: w[6],
    };
  }

  /** fail domain: bounces every queued (active and delayed) message of the domain ('bounce' events
   *  with reason 'failed'); messages in flight end with their delivery. Returns how many. */
  fail(domain: string): number {
    const h = this.ctx.live();
    const d = this.domains.known(domain);
    const name = this.domains.records[d].name;
    const out = new Float64Array(1024);
    let total = 0;
    let n: number;
    while ((n = native.failDomain(h, d, out)) > 0) {
      for (let i = 0; i < n; i++) {
        const id = out[i];
        void this.outbox.bounce({ id, domain: name, reason: 'failed', response: 'failed by the operator' });
      }
      total += n;
    }
    if (total > 0) this.outbox.tally(name).bounced += total;
    return total;
  }

  /** message retry: a delayed message becomes due now. False when it is not delayed. */
  retry(id: number): boolean {
    const ctx = this.ctx;
    const h = ctx.live();
    checkId(id, 'id');
    const now = ctx.now();
    if (!native.retryNow(h, id, now)) return false;
    const where = ctx.where;
    native.locate(h, id, where);
    // The store's schedule follows, or a restart would make it wait for the old time again.
    ctx.store
      ?.setRetryState?.(id, { attempts: where[4], nextAttempt: now })
      .catch((err) => this.outbox.reportError(err));
    this.host.mailArrived(where[0], where[1]);
    return true;
  }

  /** The whole core at a glance: counts, connections, and delivery totals since start. */
  summary(): Summary {
    const stats = this.host.stats();
    const t = { delivered: 0, deferred: 0, bounced: 0, connectFailures: 0 };
    for (const v of [this.outbox.forgottenTally, ...this.outbox.tallies.values()]) {
      t.delivered += v.delivered;
      t.deferred += v.deferred;
      t.bounced += v.bounced;
      t.connectFailures += v.connectFailures;
    }
    const { counters, counterIndex } = this.ctx;
    const bindings: Record<string, { connections: number; active: number; suspended: boolean }> = {};
    this.ctx.bindings.forEach((b, i) => {
      bindings[b] = {
        connections: counters[counterIndex[`connections:${b}`]],
        active: counters[counterIndex[`active:${b}`]],
        suspended: this.suspensions.bindingSuspended(i),
      };
    });
    const bytesReserved = native.bytesReserved(this.ctx.live());
    return { ...stats, started: this.host.started, ...t, bytesReserved, bindings };
  }

  /** One domain: connections, active and delayed per binding, and its delivery tallies. */
  domainView(domain: string): DomainView {
    const h = this.ctx.live();
    const d = this.domains.known(domain);
    const record = this.domains.records[d];
    const rec = record.toJSON();
    const names = this.ctx.bindings;
    const delayed = new Float64Array(names.length);
    native.delayedByBinding(h, d, delayed);
    const bindings: Record<string, { active: number; delayed: number; connections: number; suspended: boolean }> = {};
    names.forEach((b, i) => {
      bindings[b] = {
        active: rec.active[b],
        delayed: delayed[i],
        connections: rec.connections[b],
        suspended: rec.suspended[b],
      };
    });
    const tally = { delivered: 0, deferred: 0, bounced: 0, connectFailures: 0, ...this.outbox.tallies.get(rec.name) };
    return { name: rec.name, connections: record.connections(), delayed: rec.delayed, bindings, ...tally };
  }

  /** A listing of one queue: the active queue of (domain, binding) or the domain's delayed queue. */
  listQueue(domain: string, options: ListQueueOptions = {}): MessageInfo[] {
    const h = this.ctx.live();
    const d = this.domains.known(domain);
    checkKeys(checkObject(options, 'options'), LIST_QUEUE_OPTIONS, 'options', 'option');
    const queue = options.queue ?? 'active';
    if (queue !== 'active' && queue !== 'delayed')
      throw new RangeError(`options.queue must be 'active' or 'delayed', got ${String(queue)}`);
    const limit = options.limit === undefined ? 100 : checkInt(options.limit, 'options.limit', 0, 1_000_000);
    const offset =
      options.offset === undefined ? 0 : checkInt(options.offset, 'options.offset', 0, Number.MAX_SAFE_INTEGER);
    const out = new Float64Array(limit);
    let n: number;
    if (queue === 'active') {
      const b = this.domains.bindingSlot(options.binding ?? 0, 'options.binding');
      n = native.peekActive(h, d, b, offset, out);
    } else {
      if (options.binding !== undefined)
        throw new RangeError('options.binding: the delayed queue is per domain; leave binding out');
      n = native.peekDelayed(h, d, offset, out);
    }
    const list: MessageInfo[] = [];
    for (let i = 0; i < n; i++) {
      const info = this.message(out[i]);
      if (info) list.push(info);
    }
    return list;
  }
}
