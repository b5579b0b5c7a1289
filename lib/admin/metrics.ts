// Prometheus metrics of one core, with prom-client: a Registry an MTA can serve or merge into its
// own (prom-client's Registry.merge). Nothing here walks every domain on a scrape: the queue and
// connection figures are read from the counters the native core keeps in shared memory, outcomes
// are counted as their events happen, and the one figure that needs the domains (connections of
// the busiest domains) is cached and refreshed at most every `topDomainsRefreshMs`.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

import { type ClusterState, clusterState } from '../cluster/cluster_caps.js';
import type { MailQueueCore } from '../core.js';
import { checkInt, checkKeys, checkObject } from '../validate.js';

export interface MetricsOptions {
  /** Prefix of every metric name (default 'mqc_'). */
  prefix?: string;
  /** How many domains get their own label in <prefix>domain_connections (default 10); the others
   *  are summed under domain="other", so the label set stays bounded at any number of domains. */
  topDomains?: number;
  /** How long the busiest-domains figure is reused between scrapes, ms (default 10,000). */
  topDomainsRefreshMs?: number;
}

const OPTION_KEYS = new Set(['prefix', 'topDomains', 'topDomainsRefreshMs']);

/** A deferral's class: the SMTP reply class, or 'connection' when the session broke or timed out
 *  without a reply. */
function deferralClass(code: number | undefined): string {
  if (code === undefined) return 'connection';
  return code >= 400 && code < 500 ? '4xx' : code >= 500 && code < 600 ? '5xx' : 'other';
}

/** The metrics of `core`, in a Registry of their own. Listens to the core's events from now on. */
export function createMetrics(core: MailQueueCore, options: MetricsOptions = {}): Registry {
  checkKeys(checkObject(options, 'options'), OPTION_KEYS, 'options', 'option');
  const prefix = options.prefix ?? 'mqc_';
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix))
    throw new RangeError(
      `options.prefix must be a Prometheus name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*), got ${String(prefix)}`,
    );
  const top = options.topDomains === undefined ? 10 : checkInt(options.topDomains, 'options.topDomains', 0, 1000);
  const refreshMs =
    options.topDomainsRefreshMs === undefined
      ? 10_000
      : checkInt(options.topDomainsRefreshMs, 'options.topDomainsRefreshMs', 0, 2 ** 31 - 1);

  const registry = new Registry();
  const c = core.counters;
  const idx = core.counterIndex;
  const registers = [registry];

  new Gauge({
    name: `${prefix}messages`,
    help: 'Messages the core holds, by state',
    labelNames: ['state'],
    registers,
    collect() {
      this.set({ state: 'active' }, c[idx.active]);
      this.set({ state: 'delayed' }, c[idx.delayed]);
      this.set({ state: 'in_flight' }, c[idx.inFlight]);
    },
  });
  // Figures read from one counter each, and per binding.
  const single: [string, string, number][] = [
    ['connections', 'Connections open or opening', idx.connections],
    ['domains', 'Domain records the core holds', idx.domains],
  ];
  for (const [name, help, slot] of single) {
    new Gauge({
      name: `${prefix}${name}`,
      help,
      registers,
      collect() {
        this.set(c[slot]);
      },
    });
  }
  const perBinding: [string, string, string][] = [
    ['binding_connections', 'Connections open or opening, by binding', 'connections'],
    ['binding_active_messages', 'Messages in active queues, by binding', 'active'],
  ];
  for (const [name, help, counter] of perBinding) {
    new Gauge({
      name: `${prefix}${name}`,
      help,
      labelNames: ['binding'],
      registers,
      collect() {
        for (const b of core.bindings) this.set({ binding: b }, c[idx[`${counter}:${b}`]]);
      },
    });
  }
  // Totals the core counts since it was made: set from its counters at each scrape.
  const totals: [string, string, number][] = [
    ['connections_opened_total', 'Connections granted', idx.opened],
    ['connections_released_total', 'Connections released', idx.released],
    ['messages_expired_total', 'Messages expired in the queues', idx.expired],
  ];
  for (const [name, help, slot] of totals) {
    new Counter({
      name: `${prefix}${name}`,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(c[slot]);
      },
    });
  }

  // Connections a pass wanted and a limit held back, by the limit that did (the core counts them).
  const scopes = Object.keys(idx)
    .filter((k) => k.startsWith('refused:'))
    .map((k) => [k.slice('refused:'.length), idx[k]] as const);
  new Counter({
    name: `${prefix}connection_refusals_total`,
    help: 'Connections a maintenance pass wanted and a limit held back, by the limit (the first of equal ones)',
    labelNames: ['scope'],
    registers,
    collect() {
      this.reset();
      for (const [scope, slot] of scopes) this.inc({ scope }, c[slot]);
    },
  });

  // Fleet-wide caps (lib/cluster): whether Redis answers, and the leases this node holds.
  if (clusterState(core) !== undefined) {
    const cluster: [string, string, (s: ClusterState) => number][] = [
      [
        'cluster_redis_up',
        'Whether Redis answered the last lease sync (1) or not (0): 0 opens no cluster-capped connection',
        (s) => (s.redisUp ? 1 : 0),
      ],
      ['cluster_leases_held', 'Slots of fleet-wide caps and throttles this node holds leases for', (s) => s.leasesHeld],
    ];
    for (const [name, help, read] of cluster) {
      new Gauge({
        name: `${prefix}${name}`,
        help,
        registers,
        collect() {
          const s = clusterState(core);
          if (s) this.set(read(s));
        },
      });
    }
  }

  // The busiest domains by connections, cached between refreshes.
  let topCache: { at: number; rows: [string, number][]; other: number } | undefined;
  let byDomain: Float64Array = new Float64Array(0);
  new Gauge({
    name: `${prefix}domain_connections`,
    help: `Connections of the ${top} domains with the most, the rest summed as domain="other"`,
    labelNames: ['domain'],
    registers,
    collect() {
      const now = Date.now();
      if (topCache === undefined || now - topCache.at >= refreshMs) {
        const all: [string, number][] = [];
        byDomain = core.connectionsByDomain(byDomain);
        let names: string[] | undefined;
        for (let d = 0; d < byDomain.length; d++) {
          if (byDomain[d] === 0) continue;
          names ??= core.domains();
          if (d < names.length) all.push([names[d], byDomain[d]]);
        }
        all.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
        const rows = all.slice(0, top);
        let other = 0;
        for (let i = top; i < all.length; i++) other += all[i][1];
        topCache = { at: now, rows, other };
      }
      this.reset();
      for (const [domain, n] of topCache.rows) this.set({ domain }, n);
      this.set({ domain: 'other' }, topCache.other);
    },
  });

  // Outcomes, as they happen.
  const outcomes = new Counter({
    name: `${prefix}outcomes_total`,
    help: 'Delivery outcomes, by kind',
    labelNames: ['kind'],
    registers,
  });
  const bounces = new Counter({
    name: `${prefix}bounces_total`,
    help: 'Messages that ended without delivery, by reason',
    labelNames: ['reason'],
    registers,
  });
  const deferrals = new Counter({
    name: `${prefix}deferrals_total`,
    help: 'Transient failures, by class (the SMTP reply class, or connection)',
    labelNames: ['class'],
    registers,
  });
  // The outcomes before the registry was made, from the core's own tallies; the reasons and
  // classes below count from now on.
  const before = core.summary();
  outcomes.inc({ kind: 'delivered' }, before.delivered);
  outcomes.inc({ kind: 'deferred' }, before.deferred);
  outcomes.inc({ kind: 'bounced' }, before.bounced);
  core.on('delivered', () => outcomes.inc({ kind: 'delivered' }));
  core.on('deferred', (e) => {
    outcomes.inc({ kind: 'deferred' });
    deferrals.inc({ class: deferralClass(e.code) });
  });
  core.on('bounce', (e) => {
    outcomes.inc({ kind: 'bounced' });
    bounces.inc({ reason: e.reason });
  });

  const passes = new Histogram({
    name: `${prefix}pass_duration_seconds`,
    help: 'Wall time of maintenance passes',
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
    registers,
  });
  core.on('pass', (e) => passes.observe(e.durationMs / 1000));

  // Event-loop delay since the last scrape (the histogram is reset after each read).
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  new Gauge({
    name: `${prefix}event_loop_delay_seconds`,
    help: 'Event-loop delay since the last scrape',
    labelNames: ['stat'],
    registers,
    collect() {
      this.set({ stat: 'p50' }, loop.count > 0 ? loop.percentile(50) / 1e9 : 0);
      this.set({ stat: 'p99' }, loop.count > 0 ? loop.percentile(99) / 1e9 : 0);
      this.set({ stat: 'max' }, loop.count > 0 ? loop.max / 1e9 : 0);
      loop.reset();
    },
  });
  return registry;
}
