// Delivery limits, observed by the receivers. A started core (the real addon, SmtpTransport,
// MemoryStore) delivers to smtp-servers on loopback that count their own connections (see
// test/support/smtp_servers.ts); each binding connects from its own source address 127.0.0.(i+1),
// so a server tells bindings apart by the peer address. Every limit is asserted twice: it was
// never exceeded (peak <= limit), and the scenario actually pushed against it (peak == limit), so
// a test that never came near its limit fails instead of passing vacuously.
//
// Mail is submitted before start() where the point is the connection ceiling, so the first pass
// sees the whole queue and the goal is the limit (aggressiveness 1).
import { afterEach, describe, expect, test } from 'vitest';

import { MailQueueCore, MemoryStore, SmtpTransport, type BindingSpec, type CoreConfig } from '../../lib/index.js';
import {
  Books,
  CoreLog,
  bindingAddress,
  maxInWindow,
  sleep,
  submitMany,
  testBody,
  testMessage,
  waitFor,
} from '../support/harness.js';
import { ConnectionWatch, startServer, type Behavior, type TestServer } from '../support/smtp_servers.js';

interface Rig {
  core: MailQueueCore;
  log: CoreLog;
  store: MemoryStore;
  watch: ConnectionWatch;
  servers: Record<string, TestServer>;
}

const rigs: Rig[] = [];

afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await r.core.stop();
    r.core.close();
    await Promise.all(Object.values(r.servers).map((s) => s.close()));
  }
});

/** One server per entry of `routes` (domain -> server name; domains may share a server). */
async function rig(options: {
  bindings?: BindingSpec[];
  config: CoreConfig;
  routes: Record<string, string>;
  behavior?: Behavior;
  watch?: ConnectionWatch;
}): Promise<Rig> {
  const specs = options.bindings ?? ['b0'];
  const bindings = specs.map((b) => (typeof b === 'string' ? b : b.name));
  const watch = options.watch ?? new ConnectionWatch();
  const servers: Record<string, TestServer> = {};
  for (const name of new Set(Object.values(options.routes))) {
    servers[name] = await startServer({ name, watch, behavior: { ...options.behavior } });
  }
  const transport = new SmtpTransport({
    routes: Object.fromEntries(
      Object.entries(options.routes).map(([d, s]) => [d, { host: '127.0.0.1', port: servers[s].port }]),
    ),
    bindings: Object.fromEntries(
      bindings.map((b, i) => [b, { localAddress: bindingAddress(i), ehloName: `${b}.mta.test` }]),
    ),
    timeouts: { connect: 5000, greeting: 5000, command: 5000, message: 10_000, quit: 1000 },
  });
  const store = new MemoryStore();
  const core = new MailQueueCore({ bindings: specs, config: options.config, transport, store });
  const r = { core, log: new CoreLog(core), store, watch, servers };
  rigs.push(r);
  return r;
}

/** Waits until every id is delivered, then checks the exactly-once rules for them. */
async function allDelivered(r: Rig, ids: number[], timeoutMs = 30_000): Promise<void> {
  await waitFor(
    () => r.log.isDone(ids),
    `${ids.length} final outcomes`,
    timeoutMs,
    () => ({ done: r.log.final.size, stats: r.core.stats(), watch: r.watch.snapshot() }),
  );
  expect(r.log.violations).toEqual([]);
  expect(r.log.bounced.map((b) => b.event)).toEqual([]);
  expect(new Set(r.log.deliveredIds())).toEqual(new Set(ids));
  const accepted = Object.values(r.servers).flatMap((s) => s.accepted);
  expect(accepted.length).toBe(ids.length);
  expect(new Set(accepted)).toEqual(new Set(ids));
  for (const s of Object.values(r.servers)) expect(s.anomalies).toEqual([]);
  expect(r.log.errors).toEqual([]);
}

async function quiesce(r: Rig): Promise<void> {
  await waitFor(
    () => r.core.stats().connections === 0 && r.watch.open() === 0,
    'every connection closed',
    20_000,
    () => ({ stats: r.core.stats(), watch: r.watch.snapshot() }),
  );
  const s = r.core.stats();
  expect(s).toMatchObject({ connections: 0, active: 0, delayed: 0, inFlight: 0 });
  expect(s.released).toBe(s.opened);
  expect(r.core.checkInvariants()).toBe(true);
}

const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

describe('connection ceilings, counted by the receivers', () => {
  test('maxOutboundConnections per binding::domain, resolved from binding::domain, domain and global scopes', async () => {
    const r = await rig({
      bindings: ['b0', 'b1'],
      config: {
        global: {
          maxOutboundConnections: 4,
          connectionAllocationAggressiveness: 1,
          idleTimeout: 0.1,
          delayedQueueScanInterval: 0.1,
        },
        domains: { 'd2.test': { maxOutboundConnections: 2 } },
        bindings: { b1: { domains: { 'd1.test': { maxOutboundConnections: 1 } } } },
      },
      routes: { 'd1.test': 's1', 'd2.test': 's2' },
      behavior: { dataDelayMs: 25 },
    });
    // pair -> limit: (b0, d1) global 4, (b1, d1) binding::domain 1, (b0|b1, d2) domain 2
    const pairs: Array<[string, string, number]> = [
      ['b0', 'd1.test', 4],
      ['b1', 'd1.test', 1],
      ['b0', 'd2.test', 2],
      ['b1', 'd2.test', 2],
    ];
    let id = 1;
    const all: number[] = [];
    for (const [binding, domain] of pairs) {
      for (let i = 0; i < 24; i++, id++) {
        await r.core.submit(testMessage(id, domain, { binding }), testBody(id));
        all.push(id);
      }
    }
    r.core.start();
    await allDelivered(r, all);
    await quiesce(r);
    const snap = r.watch.snapshot();
    for (const [binding, domain, limit] of pairs) {
      const key = `pair:${domain === 'd1.test' ? 's1' : 's2'}|${bindingAddress(binding === 'b0' ? 0 : 1)}`;
      expect(r.watch.peak(key), `${binding}::${domain} ${JSON.stringify(snap)}`).toBeLessThanOrEqual(limit);
      expect(r.watch.peak(key), `${binding}::${domain} reached its limit`).toBe(limit);
    }
    // Every message went out on its own binding.
    for (const s of Object.values(r.servers)) {
      for (const t of s.txns)
        expect(t.conn.address).toBe(bindingAddress(t.id <= 24 || (t.id > 48 && t.id <= 72) ? 0 : 1));
    }
  });

  test('serverMaxOutboundConnections of a binding caps that binding across all domains, not the others', async () => {
    const r = await rig({
      bindings: ['b0', 'b1'],
      config: {
        global: {
          maxOutboundConnections: 4,
          connectionAllocationAggressiveness: 1,
          idleTimeout: 0.1,
          delayedQueueScanInterval: 0.1,
        },
        bindings: { b0: { serverMaxOutboundConnections: 3 } },
      },
      routes: { 'd1.test': 's1', 'd2.test': 's2', 'd3.test': 's3' },
      behavior: { dataDelayMs: 25 },
    });
    const domains = ['d1.test', 'd2.test', 'd3.test'];
    const all = ids(1, 120);
    // ids 1..60 on b0, 61..120 on b1, spread over the three domains
    for (const i of all)
      await r.core.submit(testMessage(i, domains[i % 3], { binding: i <= 60 ? 'b0' : 'b1' }), testBody(i));
    r.core.start();
    await allDelivered(r, all);
    await quiesce(r);
    const b0 = `addr:${bindingAddress(0)}`;
    const b1 = `addr:${bindingAddress(1)}`;
    expect(r.watch.peak(b0), JSON.stringify(r.watch.snapshot())).toBeLessThanOrEqual(3);
    expect(r.watch.peak(b0)).toBe(3);
    // b1 has no binding cap: 3 domains x 4 each.
    expect(r.watch.peak(b1)).toBeGreaterThan(3);
    expect(r.watch.peak(b1)).toBeLessThanOrEqual(12);
  });

  // b0 and b1 in group "pool", b2 alone; a watch with gauges for the pool's connections.
  const poolBindings: BindingSpec[] = [{ name: 'b0', group: 'pool' }, { name: 'b1', group: 'pool' }, 'b2'];
  const poolWatch = () => {
    const pool = new Set([bindingAddress(0), bindingAddress(1)]);
    return new ConnectionWatch((c) => (pool.has(c.address) ? ['pool', `pool:${c.server}`] : []));
  };
  const capGlobal = {
    maxOutboundConnections: 4,
    connectionAllocationAggressiveness: 1,
    idleTimeout: 0.1,
    delayedQueueScanInterval: 0.1,
  } as const;
  /** 30 messages for every (binding, domain) pair, submitted before start(). */
  async function fill(r: Rig, domains: string[], bindings: string[]): Promise<number[]> {
    const all: number[] = [];
    let id = 1;
    for (const d of domains)
      for (const b of bindings)
        for (let i = 0; i < 30; i++, id++) {
          await r.core.submit(testMessage(id, d, { binding: b }), testBody(id));
          all.push(id);
        }
    return all;
  }

  test('scopeMaxOutboundConnections of a domain (Global::Domain) caps the domain across all its bindings', async () => {
    const r = await rig({
      bindings: ['b0', 'b1', 'b2'],
      config: { global: capGlobal, domains: { 'd1.test': { scopeMaxOutboundConnections: 5 } } },
      routes: { 'd1.test': 's1' },
      behavior: { dataDelayMs: 25 },
    });
    const all = await fill(r, ['d1.test'], ['b0', 'b1', 'b2']);
    r.core.start();
    await allDelivered(r, all);
    await quiesce(r);
    expect(r.watch.peak('server:s1'), JSON.stringify(r.watch.snapshot())).toBeLessThanOrEqual(5);
    expect(r.watch.peak('server:s1')).toBe(5);
    for (let b = 0; b < 3; b++) expect(r.watch.peak(`addr:${bindingAddress(b)}`)).toBeLessThanOrEqual(4);
  });

  test("scopeMaxOutboundConnections of a group's domain (Binding_Group::Domain) caps the group's bindings there, not the others", async () => {
    const r = await rig({
      bindings: poolBindings,
      config: {
        global: capGlobal,
        bindingGroups: { pool: { domains: { 'd2.test': { scopeMaxOutboundConnections: 3 } } } },
      },
      routes: { 'd2.test': 's2' },
      behavior: { dataDelayMs: 25 },
      watch: poolWatch(),
    });
    const all = await fill(r, ['d2.test'], ['b0', 'b1', 'b2']);
    r.core.start();
    await allDelivered(r, all);
    await quiesce(r);
    expect(r.watch.peak('pool:s2'), JSON.stringify(r.watch.snapshot())).toBeLessThanOrEqual(3);
    expect(r.watch.peak('pool:s2')).toBe(3);
    expect(r.watch.peak(`addr:${bindingAddress(2)}`)).toBe(4); // b2: only its own maximum
  });

  test("serverMaxOutboundConnections of a binding group caps the group's total across domains, not bindings outside it", async () => {
    const r = await rig({
      bindings: poolBindings,
      config: { global: capGlobal, bindingGroups: { pool: { serverMaxOutboundConnections: 5 } } },
      routes: { 'd1.test': 's1', 'd2.test': 's2' },
      behavior: { dataDelayMs: 25 },
      watch: poolWatch(),
    });
    const all = await fill(r, ['d1.test', 'd2.test'], ['b0', 'b1', 'b2']);
    r.core.start();
    await allDelivered(r, all);
    await quiesce(r);
    expect(r.watch.peak('pool'), JSON.stringify(r.watch.snapshot())).toBeLessThanOrEqual(5);
    expect(r.watch.peak('pool')).toBe(5);
    expect(r.watch.peak(`addr:${bindingAddress(2)}`)).toBeGreaterThan(5); // b2: 4 per domain
    expect(r.watch.peak(`addr:${bindingAddress(2)}`)).toBeLessThanOrEqual(8);
  });

  test('the server total stays within serverMax + serverReserve; the reserve lets connectionless domains in', async () => {
    const domains = ['d1.test', 'd2.test', 'd3.test', 'd4.test', 'd5.test'];
    const r = await rig({
      config: {
        global: {
          maxOutboundConnections: 4,
          connectionAllocationAggressiveness: 1,
          idleTimeout: 0.1,
          delayedQueueScanInterval: 0.1,
          serverMaxOutboundConnections: 3,
          serverReserveOutboundConnections: 2,
        },
      },
      routes: Object.fromEntries(domains.map((d, i) => [d, `s${i + 1}`])),
      behavior: { dataDelayMs: 20 },
    });
    const all = ids(1, 100);
    for (const i of all) await r.core.submit(testMessage(i, domains[i % 5]), testBody(i));
    let corePeak = 0;
    const sampler = setInterval(() => {
      corePeak = Math.max(corePeak, r.core.stats().connections);
    }, 2);
    r.core.start();
    try {
      await allDelivered(r, all);
      await quiesce(r);
    } finally {
      clearInterval(sampler);
    }
    expect(r.watch.peak('total'), JSON.stringify(r.watch.snapshot())).toBeLessThanOrEqual(5);
    expect(r.watch.peak('total')).toBe(5);
    expect(corePeak).toBeLessThanOrEqual(5);
    // The reserve is one connection per connectionless pair, so a single pair never holds more
    // than serverMax + 1 = 4 (its own maximum here too); what matters is that no more than
    // serverMax + reserve are open in all.
    for (let i = 1; i <= 5; i++) expect(r.watch.peak(`server:s${i}`)).toBeGreaterThanOrEqual(1);
  });
});

describe('rate throttles, counted by the receivers', () => {
  // The core grants by its own clock; a receiver sees each grant a little later (the pass, the TCP
  // connect, smtp-server's accept). Two grants exactly one window apart can therefore reach the
  // server slightly less than a window apart when the first took longer to arrive. The receivers
  // count in windows shortened by SLACK_MS to absorb that latency; a throttle that lets more than N
  // through a window (a token bucket refilled at N/secs lets up to 2N through a window straddling a
  // burst) still shows.
  const SLACK_MS = 150;
  const win = (secs: number) => secs * 1000 - SLACK_MS;

  test('outboundThrottleConnections "N/secs": connections opened in any window, global bucket shared by two domains, domain bucket of its own', async () => {
    const r = await rig({
      config: {
        global: {
          maxOutboundConnections: 10,
          connectionAllocationAggressiveness: 1,
          maxDeliveriesPerConnection: 1,
          idleTimeout: 0.05,
          delayedQueueScanInterval: 0.05,
          outboundThrottleConnections: '3/1',
        },
        domains: { 'd3.test': { outboundThrottleConnections: '2/1.2' } },
      },
      routes: { 'd1.test': 's1', 'd2.test': 's2', 'd3.test': 's3' },
    });
    const shared = ids(1, 10); // d1 and d2 alternate: one global bucket
    const own = ids(101, 6); // d3: its own bucket
    for (const i of shared) await r.core.submit(testMessage(i, i % 2 ? 'd1.test' : 'd2.test'), testBody(i));
    for (const i of own) await r.core.submit(testMessage(i, 'd3.test'), testBody(i));
    r.core.start();
    await allDelivered(r, [...shared, ...own]);
    await quiesce(r);
    const opens = (names: string[]) => names.flatMap((n) => r.servers[n].connections.map((c) => c.openedAt));
    const g = opens(['s1', 's2']);
    const d = opens(['s3']);
    // maxDeliveriesPerConnection 1: a connection per message.
    expect(g.length).toBe(shared.length);
    expect(d.length).toBe(own.length);
    expect(maxInWindow(g, win(1)), `global opens ${JSON.stringify(g.map((t) => t - g[0]))}`).toBeLessThanOrEqual(3);
    expect(maxInWindow(g, win(1))).toBe(3);
    expect(maxInWindow(d, win(1.2)), `d3 opens ${JSON.stringify(d.map((t) => t - d[0]))}`).toBeLessThanOrEqual(2);
    expect(maxInWindow(d, win(1.2))).toBe(2);
  });

  test('outboundThrottleMessages "N/secs": messages started in any window, one domain bucket across two bindings', async () => {
    const r = await rig({
      bindings: ['b0', 'b1'],
      config: {
        global: {
          maxOutboundConnections: 3,
          connectionAllocationAggressiveness: 1,
          idleTimeout: 0.3,
          delayedQueueScanInterval: 0.05,
        },
        domains: { 'd1.test': { outboundThrottleMessages: '5/1' } },
      },
      routes: { 'd1.test': 's1', 'd2.test': 's2' },
    });
    const throttled = ids(1, 20);
    const free = ids(101, 20); // d2: no message throttle, goes as fast as it goes
    for (const i of throttled)
      await r.core.submit(testMessage(i, 'd1.test', { binding: i % 2 ? 'b0' : 'b1' }), testBody(i));
    for (const i of free) await r.core.submit(testMessage(i, 'd2.test'), testBody(i));
    r.core.start();
    await allDelivered(r, [...throttled, ...free]);
    await quiesce(r);
    const starts = r.servers.s1.txns.map((t) => t.mailAt);
    expect(starts.length).toBe(20);
    // both bindings drew from the one bucket
    expect(new Set(r.servers.s1.connections.map((c) => c.address))).toEqual(
      new Set([bindingAddress(0), bindingAddress(1)]),
    );
    expect(
      maxInWindow(starts, win(1)),
      `d1 message starts ${JSON.stringify(starts.map((t) => t - starts[0]))}`,
    ).toBeLessThanOrEqual(5);
    expect(maxInWindow(starts, win(1))).toBe(5);
    // The unthrottled domain is not held to it (all 20 well inside one window would be typical,
    // but all we claim is that it got more than the throttled rate somewhere).
    expect(
      maxInWindow(
        r.servers.s2.txns.map((t) => t.mailAt),
        win(1),
      ),
    ).toBeGreaterThan(5);
  });
});

describe('connection lifetime', () => {
  test('maxDeliveriesPerConnection: a receiver never sees more messages on one connection', async () => {
    const r = await rig({
      config: {
        global: {
          maxOutboundConnections: 2,
          maxDeliveriesPerConnection: 3,
          idleTimeout: 0.1,
          delayedQueueScanInterval: 0.05,
        },
      },
      routes: { 'd1.test': 's1' },
    });
    const all = ids(1, 20);
    await submitMany(r.core, all, () => 'd1.test');
    r.core.start();
    await allDelivered(r, all);
    await quiesce(r);
    const perConn = r.servers.s1.connections.map((c) => c.txns.filter((t) => t.outcome === 'accepted').length);
    expect(Math.max(...perConn), JSON.stringify(perConn)).toBeLessThanOrEqual(3);
    expect(Math.max(...perConn)).toBe(3);
    expect(perConn.reduce((a, b) => a + b, 0)).toBe(20);
    expect(r.servers.s1.connections.length).toBeGreaterThanOrEqual(Math.ceil(20 / 3));
    expect(r.watch.peak('total')).toBeLessThanOrEqual(2);
  });

  test('idleTimeout: an idle connection waits for mail (and counts against the limit), then closes', async () => {
    const IDLE = 1000;
    const r = await rig({
      config: { global: { maxOutboundConnections: 1, idleTimeout: IDLE / 1000, delayedQueueScanInterval: 0.05 } },
      routes: { 'd1.test': 's1' },
    });
    r.core.start();
    await r.core.submit(testMessage(1, 'd1.test'), testBody(1));
    await allDelivered(r, [1]);
    await sleep(100);
    // still open and idle: the next message takes it, no second connection
    expect(r.servers.s1.open()).toBe(1);
    expect(r.core.stats().connections).toBe(1);
    expect(r.core.domainView('d1.test').connections).toBe(1);
    await r.core.submit(testMessage(2, 'd1.test'), testBody(2));
    await allDelivered(r, [1, 2]);
    expect(r.servers.s1.connections.length).toBe(1);
    const conn = r.servers.s1.connections[0];
    await waitFor(() => conn.closedAt !== undefined, 'the idle connection to close', 10_000);
    const lastReply = Math.max(...conn.txns.map((t) => t.repliedAt ?? 0));
    // The connection's idle wait starts after it read our 250; timers may fire a millisecond early
    // by the wall clock.
    expect(conn.closedAt! - lastReply).toBeGreaterThanOrEqual(IDLE - 2);
    await quiesce(r);
    expect(r.servers.s1.connections.length).toBe(1);
  });
});

describe('sibling migration (two domains routed to the same host:port)', () => {
  // serverMax 1, reserve 0: while a's connection is open, b cannot get one of its own, so b's mail
  // can only go out on a's connection (migration, which charges no new connection) or after a's
  // connection has idled out and closed.
  const config = (migrate: boolean): CoreConfig => ({
    global: {
      serverMaxOutboundConnections: 1,
      serverReserveOutboundConnections: 0,
      idleTimeout: 0.4,
      delayedQueueScanInterval: 0.05,
      migrateConnectionsBetweenSiblingDomains: migrate,
    },
  });

  // b's first message goes out on a connection of its own, so b is known behind the shared MX
  // before a's connection runs dry.
  async function warmUp(r: Rig): Promise<void> {
    await r.core.submit(testMessage(900, 'b.test'), testBody(900));
    await allDelivered(r, [900]);
    await waitFor(() => r.watch.open() === 0 && r.core.stats().connections === 0, 'the warm-up connection to close');
  }

  async function scenario(r: Rig): Promise<number[]> {
    const aIds = ids(1, 5);
    const bIds = ids(101, 3);
    await submitMany(r.core, aIds, () => 'a.test');
    await waitFor(() => r.servers.s1.txns.some((t) => t.id === aIds[0]), "a's connection to start");
    await submitMany(r.core, bIds, () => 'b.test');
    return [...aIds, ...bIds];
  }

  const domainsOf = (r: Rig) =>
    r.servers.s1.connections.map((c) => [...new Set(c.txns.map((t) => t.rcpt[0]?.split('@')[1]))]);

  test('on: a connection that finished a.test carries b.test (one server connection delivers both)', async () => {
    const r = await rig({
      config: config(true),
      routes: { 'a.test': 's1', 'b.test': 's1' },
      behavior: { dataDelayMs: 40 },
    });
    r.core.start();
    await warmUp(r);
    const all = await scenario(r);
    await allDelivered(r, [900, ...all]);
    await quiesce(r);
    const both = domainsOf(r).filter((d) => d.includes('a.test') && d.includes('b.test'));
    expect(both.length, JSON.stringify(domainsOf(r))).toBe(1);
    expect(r.watch.peak('total')).toBe(1);
  });

  test("off: a connection never carries another domain's mail", async () => {
    const r = await rig({
      config: config(false),
      routes: { 'a.test': 's1', 'b.test': 's1' },
      behavior: { dataDelayMs: 40 },
    });
    r.core.start();
    await warmUp(r);
    const all = await scenario(r);
    await allDelivered(r, [900, ...all]);
    await quiesce(r);
    for (const d of domainsOf(r)) expect(d.length, JSON.stringify(domainsOf(r))).toBe(1);
    expect(r.watch.peak('total')).toBe(1);
  });

  test('on, without a warm-up: b.test has never had a connection of its own', async () => {
    const r = await rig({
      config: config(true),
      routes: { 'a.test': 's1', 'b.test': 's1' },
      behavior: { dataDelayMs: 40 },
    });
    r.core.start();
    const all = await scenario(r);
    await allDelivered(r, all);
    await quiesce(r);
    const both = domainsOf(r).filter((d) => d.includes('a.test') && d.includes('b.test'));
    expect(both.length, JSON.stringify(domainsOf(r))).toBe(1);
  });
});

describe('every message exactly once, with the books balanced at every sampled instant', () => {
  test('four domains, two bindings, limits and a message throttle: ids delivered once, books balanced', async () => {
    const domains = ['d1.test', 'd2.test', 'd3.test', 'd4.test'];
    const r = await rig({
      bindings: ['b0', 'b1'],
      config: {
        global: {
          maxOutboundConnections: 3,
          idleTimeout: 0.05,
          delayedQueueScanInterval: 0.05,
          maxDeliveriesPerConnection: 5,
        },
        domains: { 'd4.test': { outboundThrottleMessages: '20/0.2' } },
      },
      routes: { 'd1.test': 's1', 'd2.test': 's2', 'd3.test': 's2', 'd4.test': 's3' },
      behavior: { dataDelayMs: (id) => id % 7 },
    });
    const books = new Books(r.core, r.log);
    r.core.start();
    const all = ids(1, 300);
    try {
      for (const i of all) {
        await r.core.submit(
          testMessage(i, domains[i % 4], { binding: i % 3 ? 'b0' : 'b1', priority: i % 5 === 0 ? 1 : 0 }),
          testBody(i),
        );
        books.submitted++;
        if (i % 50 === 0) await sleep(5);
      }
      await allDelivered(r, all);
      await quiesce(r);
      books.check();
    } finally {
      books.stop();
    }
    expect(books.breaches).toEqual([]);
    expect(books.samples).toBeGreaterThan(10);
    expect(r.store.size).toBe(0);
    for (const s of Object.values(r.servers)) expect(s.duplicates()).toEqual([]);
  });
});
