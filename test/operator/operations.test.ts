// Operator actions and views on a started core delivering over real SMTP on loopback (the real
// addon, SmtpTransport, MemoryStore): suspend/resume of a domain, a binding and a binding::domain
// (observed by the server: no new connection while suspended), flush, fail, retry, the views
// summary(), domainView() and listQueue() (numbers that agree with each other, with the events and
// with what the servers saw), and bad input to each of these methods (a clear error, nothing changed).
import { afterEach, describe, expect, test } from 'vitest';

import { MailQueueCore, MemoryStore, SmtpTransport, type CoreConfig, type MessageInfo } from '../../lib/index.js';
import { CoreLog, bindingAddress, sleep, testBody, testMessage, waitFor } from '../support/harness.js';
import { ConnectionWatch, startServer, type Behavior, type TestServer } from '../support/smtp_servers.js';

interface Rig {
  core: MailQueueCore;
  log: CoreLog;
  store: MemoryStore;
  servers: Record<string, TestServer>;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const base = {
  idleTimeout: 0.1,
  delayedQueueScanInterval: 0.05,
  retryInterval: 60,
  maxRetryInterval: 60,
  hostFailureRetry: 0.2,
};

async function rig(options: {
  bindings?: string[];
  config?: CoreConfig;
  routes: Record<string, string>;
  behavior?: Behavior;
}): Promise<Rig> {
  const bindings = options.bindings ?? ['b0'];
  const watch = new ConnectionWatch();
  const servers: Record<string, TestServer> = {};
  for (const name of new Set(Object.values(options.routes))) {
    servers[name] = await startServer({ name, watch, behavior: { ...options.behavior } });
    cleanups.push(() => servers[name].close());
  }
  const transport = new SmtpTransport({
    routes: Object.fromEntries(
      Object.entries(options.routes).map(([d, s]) => [d, { host: '127.0.0.1', port: servers[s].port }]),
    ),
    bindings: Object.fromEntries(bindings.map((b, i) => [b, { localAddress: bindingAddress(i) }])),
    hostFailureRetry: 0,
  });
  const store = new MemoryStore();
  const core = new MailQueueCore({ bindings, config: options.config ?? { global: base }, transport, store });
  cleanups.push(async () => {
    await core.stop();
    core.close();
  });
  return { core, log: new CoreLog(core), store, servers };
}

async function submit(
  r: Rig,
  ids: number[],
  domain: string,
  extra: Parameters<typeof testMessage>[2] & { nextAttempt?: number } = {},
): Promise<void> {
  for (const id of ids) await r.core.submit({ ...testMessage(id, domain), ...extra }, testBody(id));
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

async function finals(r: Rig, ids: number[], timeoutMs = 15_000): Promise<void> {
  await waitFor(
    () => r.log.isDone(ids),
    `final outcomes of ${ids.length} messages`,
    timeoutMs,
    () => ({ missing: ids.filter((id) => !r.log.final.has(id)).slice(0, 20), stats: r.core.stats() }),
  );
  expect(r.log.violations).toEqual([]);
}

const acceptedBy = (r: Rig) => Object.values(r.servers).flatMap((s) => s.accepted);

describe('suspend and resume, observed by the server', () => {
  test('suspend(domain): no connection at all while suspended, mail stays queued; resume delivers it', async () => {
    const r = await rig({ routes: { 's.test': 's1', 'o.test': 's2' } });
    r.core.suspend('s.test'); // before the domain has mail: applies when its first message arrives
    r.core.start();
    await submit(r, range(1, 5), 's.test');
    await submit(r, range(11, 2), 'o.test');
    await finals(r, [11, 12]); // another domain is not held
    await sleep(400); // eight scan intervals
    expect(r.servers.s1.connections.length).toBe(0);
    expect(r.log.grants.filter((g) => g.event.domain === 's.test')).toEqual([]);
    const view = r.core.domainView('s.test');
    expect(view.bindings.b0).toEqual({ active: 5, delayed: 0, connections: 0, suspended: true });
    r.core.resume('s.test');
    await finals(r, range(1, 5));
    expect(r.servers.s1.accepted.sort((a, b) => a - b)).toEqual(range(1, 5));
    expect(r.core.domainView('s.test').bindings.b0.suspended).toBe(false);
  });

  test('suspend(domain) while connections run: they finish, no new one opens (maxDeliveriesPerConnection forces new ones); resume goes on', async () => {
    const r = await rig({
      config: { global: { ...base, maxOutboundConnections: 2, maxDeliveriesPerConnection: 2 } },
      routes: { 's.test': 's1' },
      behavior: { dataDelayMs: 60 },
    });
    r.core.start();
    const ids = range(1, 20);
    await submit(r, ids, 's.test');
    await waitFor(() => r.servers.s1.txns.length >= 1, 'the first transaction');
    r.core.suspend('s.test');
    const grantsAtSuspend = r.log.grants.length;
    // Connections granted before the suspension may still be on their way; afterwards none comes.
    await waitFor(() => r.core.domainView('s.test').connections === 0, 'the running connections to finish', 5000);
    const seen = r.servers.s1.connections.length;
    const delivered = r.log.delivered.length;
    await sleep(400);
    expect(r.log.grants.length).toBe(grantsAtSuspend);
    expect(r.servers.s1.connections.length).toBe(seen);
    expect(r.servers.s1.connections.length).toBe(grantsAtSuspend);
    expect(r.log.delivered.length).toBe(delivered);
    expect(delivered).toBeLessThan(20); // mail was left behind for new connections to take
    expect(r.core.domainView('s.test').bindings.b0.active).toBe(20 - delivered);
    r.core.resume('s.test');
    await finals(r, ids);
    expect(acceptedBy(r).sort((a, b) => a - b)).toEqual(ids);
    expect(r.servers.s1.connections.length).toBeGreaterThan(seen);
  });

  test('suspend(domain) with an idle connection open: mail submitted after the suspension stays queued', async () => {
    const r = await rig({ config: { global: { ...base, idleTimeout: 3 } }, routes: { 's.test': 's1' } });
    r.core.start();
    await submit(r, [1], 's.test');
    await finals(r, [1]);
    expect(r.core.domainView('s.test').connections).toBe(1); // idle
    r.core.suspend('s.test');
    await submit(r, [2, 3], 's.test');
    await sleep(400);
    expect(r.log.final.has(2) || r.log.final.has(3)).toBe(false);
    expect(r.core.domainView('s.test').bindings.b0.active).toBe(2);
    r.core.resume('s.test');
    await finals(r, [2, 3]);
  });

  test('suspendBinding(binding): no connection from that binding to any domain, also domains first seen later; resumeBinding delivers', async () => {
    const r = await rig({ bindings: ['b0', 'b1'], routes: { 'd1.test': 's1', 'd2.test': 's2' } });
    r.core.suspendBinding('b1');
    r.core.start();
    await submit(r, range(1, 3), 'd1.test', { binding: 'b0' });
    await submit(r, range(11, 3), 'd1.test', { binding: 'b1' });
    await submit(r, range(21, 3), 'd2.test', { binding: 'b1' }); // a domain first seen after the suspension
    await finals(r, range(1, 3));
    await sleep(400);
    const fromB1 = () =>
      Object.values(r.servers)
        .flatMap((s) => s.connections)
        .filter((c) => c.address === bindingAddress(1));
    expect(fromB1()).toEqual([]);
    const sum = r.core.summary();
    expect(sum.bindings.b1).toEqual({ connections: 0, active: 6, suspended: true });
    expect(sum.bindings.b0.suspended).toBe(false);
    expect(r.core.domainView('d2.test').bindings.b1.suspended).toBe(true);
    r.core.resumeBinding('b1');
    await finals(r, [...range(11, 3), ...range(21, 3)]);
    expect(fromB1().length).toBeGreaterThan(0);
    for (const s of Object.values(r.servers)) {
      for (const t of s.txns) expect(t.conn.address).toBe(bindingAddress(t.id < 10 ? 0 : 1));
    }
    expect(r.core.summary().bindings.b1.suspended).toBe(false);
  });

  test('suspend(domain, binding): only that pair waits; suspensions combine (pair + binding), lifting one leaves the other', async () => {
    const r = await rig({ bindings: ['b0', 'b1'], routes: { 'd1.test': 's1', 'd2.test': 's2' } });
    r.core.suspend('d1.test', 'b1');
    r.core.suspendBinding('b1');
    r.core.start();
    await submit(r, range(1, 2), 'd1.test', { binding: 'b0' });
    await submit(r, range(11, 2), 'd1.test', { binding: 'b1' }); // the pair: held by both
    await submit(r, range(21, 2), 'd2.test', { binding: 'b1' }); // held by the binding only
    await finals(r, range(1, 2));
    r.core.resumeBinding('b1');
    await finals(r, range(21, 2));
    await sleep(400);
    expect(r.log.final.has(11) || r.log.final.has(12)).toBe(false);
    expect(r.servers.s1.connections.filter((c) => c.address === bindingAddress(1))).toEqual([]);
    expect(r.core.domainView('d1.test').bindings).toMatchObject({
      b0: { suspended: false, active: 0 },
      b1: { suspended: true, active: 2, connections: 0 },
    });
    r.core.resume('d1.test', 'b1');
    await finals(r, range(11, 2));
    expect(r.servers.s1.connections.some((c) => c.address === bindingAddress(1))).toBe(true);
  });
});

describe('stop() and start() again', () => {
  test('stop() while delivering: busy connections finish their message, every lease is released, queued mail waits; start() again delivers the rest once', async () => {
    const r = await rig({
      config: { global: { ...base, maxOutboundConnections: 2, connectionAllocationAggressiveness: 1 } },
      routes: { 's.test': 's1' },
      behavior: { dataDelayMs: 150 },
    });
    r.core.start();
    const ids = range(1, 12);
    await submit(r, ids, 's.test');
    await waitFor(() => r.servers.s1.txns.length >= 2, 'two transactions under way');
    const busy = r.core.stats().connections;
    const deliveredBefore = r.log.delivered.length;
    await r.core.stop();
    expect(r.core.started).toBe(false);
    expect(r.core.stats()).toMatchObject({ connections: 0, inFlight: 0 });
    expect(r.core.domainView('s.test').connections).toBe(0);
    // each busy connection finished the message it was sending (none was cut off), and took no other
    expect(r.servers.s1.txns.map((t) => t.outcome).filter((o) => o !== 'accepted')).toEqual([]);
    expect(r.log.delivered.length).toBe(r.servers.s1.txns.length);
    expect(r.log.delivered.length - deliveredBefore).toBeLessThanOrEqual(busy);
    expect(r.log.delivered.length).toBeGreaterThanOrEqual(2);
    expect(r.core.stats().active).toBe(12 - r.log.delivered.length);
    await waitFor(() => r.servers.s1.open() === 0, 'the server to see every connection closed', 5000);
    const txns = r.servers.s1.txns.length;
    await sleep(300);
    expect(r.servers.s1.txns.length).toBe(txns);
    expect(r.servers.s1.connections.every((c) => c.closedAt !== undefined)).toBe(true);
    r.core.start();
    await finals(r, ids);
    expect(r.servers.s1.accepted.sort((a, b) => a - b)).toEqual(ids);
    expect(r.log.delivered.length).toBe(12);
  });
});

describe('flush, fail, retry', () => {
  // retryInterval 60 s: a deferred message would wait a minute; these tests end long before.
  const firstAttemptFails: Behavior = { data: (_id, attempt) => (attempt === 1 ? { code: 451 } : 'accept') };

  test('flush(domain): the delayed mail of that domain becomes due now; other domains keep waiting', async () => {
    const r = await rig({ routes: { 'f.test': 's1', 'g.test': 's2' }, behavior: firstAttemptFails });
    r.core.start();
    await submit(r, range(1, 3), 'f.test');
    await submit(r, [9], 'g.test');
    await waitFor(() => r.log.deferred.length === 4, 'four deferrals');
    expect(r.core.domainView('f.test')).toMatchObject({ delayed: 3, deferred: 3 });
    expect(
      r.core
        .listQueue('f.test', { queue: 'delayed' })
        .map((m) => m.id)
        .sort(),
    ).toEqual([1, 2, 3]);
    expect(r.core.flush('f.test')).toBe(3);
    await finals(r, range(1, 3));
    expect(r.servers.s1.accepted.sort()).toEqual([1, 2, 3]);
    expect(r.core.domainView('f.test')).toMatchObject({ delayed: 0, delivered: 3, deferred: 3 });
    expect(r.core.message(9)).toMatchObject({ state: 'delayed', attempts: 1 });
    expect(r.core.flush('f.test')).toBe(0); // nothing delayed any more
  });

  test('fail(domain): every queued message (active and delayed) bounces "failed", once, and leaves the store; other domains untouched', async () => {
    const r = await rig({ routes: { 'x.test': 's1', 'y.test': 's2' } });
    r.core.suspend('x.test');
    r.core.suspend('y.test');
    r.core.start();
    const later = Date.now() + 60_000;
    await submit(r, range(1, 4), 'x.test');
    await submit(r, range(5, 2), 'x.test', { nextAttempt: later });
    await submit(r, [9], 'y.test');
    expect(r.core.domainView('x.test')).toMatchObject({ delayed: 2, bindings: { b0: { active: 4 } } });
    expect(r.core.fail('x.test')).toBe(6);
    // With a store, each event waits for a read of the message's envelope, for a DSN.
    await waitFor(() => r.log.bounced.length === 6, 'the six bounces');
    const failed = r.log.bounced.map((b) => b.event);
    expect(failed.map((b) => b.id).sort()).toEqual(range(1, 6));
    for (const b of failed) {
      expect(b).toMatchObject({ domain: 'x.test', reason: 'failed' });
      expect(b.recipients).toEqual(
        b.envelope?.to.map((recipient) => ({ recipient, diagnostic: 'failed by the operator' })),
      );
      expect(b.recipients).toHaveLength(1);
    }
    await sleep(10);
    for (const id of range(1, 6)) {
      expect(await r.store.get(id)).toBeUndefined();
      expect(r.core.message(id)).toBeUndefined();
    }
    expect(r.store.size).toBe(1);
    expect(r.core.domainView('x.test')).toMatchObject({ delayed: 0, bindings: { b0: { active: 0 } } });
    expect(r.core.listQueue('x.test')).toEqual([]);
    expect(r.core.listQueue('x.test', { queue: 'delayed' })).toEqual([]);
    expect(r.core.fail('x.test')).toBe(0);
    expect(r.log.bounced.length).toBe(6);
    expect(r.core.stats()).toMatchObject({ active: 1, delayed: 0, inFlight: 0 });
    r.core.resume('y.test');
    r.core.resume('x.test');
    await finals(r, [9]);
    await sleep(200);
    expect(r.servers.s1.connections).toEqual([]); // nothing of x.test ever went out
    expect(acceptedBy(r)).toEqual([9]);
  });

  test('fail(domain) while messages are in flight: those end with their delivery, the queued ones bounce; each id once', async () => {
    const r = await rig({
      config: { global: { ...base, maxOutboundConnections: 1, outboundThrottleMessages: '1000/1' } }, // one message per take
      routes: { 'x.test': 's1' },
      behavior: { dataDelayMs: 150 },
    });
    r.core.start();
    const ids = range(1, 8);
    await submit(r, ids, 'x.test');
    await waitFor(() => r.servers.s1.txns.length >= 1, 'the first transaction');
    const inFlight = ids.filter((id) => r.core.message(id)?.state === 'in-flight');
    expect(inFlight.length).toBeGreaterThanOrEqual(1);
    const n = r.core.fail('x.test');
    expect(n).toBe(8 - inFlight.length);
    await finals(r, ids);
    const delivered = r.log.deliveredIds().sort((a, b) => a - b);
    expect(delivered).toEqual(inFlight);
    expect(r.log.bounced.map((b) => b.event.id).sort((a, b) => a - b)).toEqual(
      ids.filter((id) => !inFlight.includes(id)),
    );
    expect(r.servers.s1.accepted.sort((a, b) => a - b)).toEqual(inFlight);
    await waitFor(() => r.store.size === 0, 'an empty store', 2000);
  });

  test('retry(id): one delayed message becomes due now; false for an id that is not delayed', async () => {
    const r = await rig({ routes: { 'r.test': 's1', 'q.test': 's2' }, behavior: firstAttemptFails });
    r.core.suspend('q.test');
    r.core.start();
    await submit(r, [1, 2], 'r.test');
    await submit(r, [3], 'q.test'); // active (suspended), not delayed
    await waitFor(() => r.log.deferred.length === 2, 'two deferrals');
    expect(r.core.retry(1)).toBe(true);
    await finals(r, [1]);
    await sleep(200);
    expect(r.core.message(2)).toMatchObject({ state: 'delayed', attempts: 1 });
    expect(r.core.listQueue('r.test', { queue: 'delayed' }).map((m) => m.id)).toEqual([2]);
    expect(r.core.retry(3)).toBe(false);
    expect(r.core.message(3)).toMatchObject({ state: 'active' });
    expect(r.core.retry(1)).toBe(false); // delivered: the core no longer holds it
    expect(r.core.retry(424242)).toBe(false);
    expect(r.servers.s1.accepted).toEqual([1]);
    expect(r.core.retry(2)).toBe(true);
    await finals(r, [2]);
    expect(r.servers.s1.accepted).toEqual([1, 2]);
  });
});

describe('views: summary(), domainView(), listQueue()', () => {
  test('listQueue lists each queue in order (priority, then FIFO; delayed by next attempt), pages with limit and offset, and agrees with domainView and summary', async () => {
    const r = await rig({ bindings: ['b0', 'b1'], routes: { 'v.test': 's1' } });
    r.core.suspend('v.test');
    const t0 = Date.now();
    for (const id of range(1, 10))
      await r.core.submit(
        { ...testMessage(id, 'v.test', { binding: 'b0', priority: id === 4 || id === 7 ? 1 : 0 }) },
        testBody(id),
      );
    await submit(r, range(11, 5), 'v.test', { binding: 'b1' });
    // delayed, in reverse order of their next attempts
    for (const id of [16, 17, 18]) {
      await r.core.submit(
        { ...testMessage(id, 'v.test', { binding: id === 17 ? 'b1' : 'b0' }), nextAttempt: t0 + 100_000 - id * 1000 },
        testBody(id),
      );
    }
    const b0 = r.core.listQueue('v.test', { binding: 'b0' });
    expect(b0.map((m) => m.id)).toEqual([4, 7, 1, 2, 3, 5, 6, 8, 9, 10]);
    expect(b0[0]).toMatchObject<Partial<MessageInfo>>({
      id: 4,
      domain: 'v.test',
      binding: 'b0',
      state: 'active',
      priority: 1,
      attempts: 0,
    });
    expect(r.core.listQueue('v.test', { binding: 'b1' }).map((m) => m.id)).toEqual(range(11, 5));
    expect(r.core.listQueue('v.test', { binding: 1 }).map((m) => m.id)).toEqual(range(11, 5));
    expect(r.core.listQueue('v.test').map((m) => m.id)).toEqual(b0.map((m) => m.id)); // binding defaults to the first
    // pages
    const pages: number[] = [];
    for (let offset = 0; offset < 12; offset += 3)
      pages.push(...r.core.listQueue('v.test', { binding: 'b0', limit: 3, offset }).map((m) => m.id));
    expect(pages).toEqual(b0.map((m) => m.id));
    expect(r.core.listQueue('v.test', { binding: 'b0', limit: 2, offset: 3 }).map((m) => m.id)).toEqual([2, 3]);
    expect(r.core.listQueue('v.test', { binding: 'b0', offset: 10 })).toEqual([]);
    expect(r.core.listQueue('v.test', { binding: 'b0', limit: 0 })).toEqual([]);
    const delayed = r.core.listQueue('v.test', { queue: 'delayed' });
    expect(delayed.map((m) => m.id)).toEqual([18, 17, 16]);
    expect(delayed.map((m) => m.state)).toEqual(['delayed', 'delayed', 'delayed']);
    expect(delayed.map((m) => m.binding)).toEqual(['b0', 'b1', 'b0']);
    expect(delayed[0].nextAttempt).toBe(t0 + 100_000 - 18_000);
    expect(r.core.listQueue('v.test', { queue: 'delayed', limit: 1, offset: 1 }).map((m) => m.id)).toEqual([17]);

    const view = r.core.domainView('v.test');
    expect(view).toMatchObject({
      name: 'v.test',
      connections: 0,
      delayed: 3,
      delivered: 0,
      deferred: 0,
      bounced: 0,
      connectFailures: 0,
      bindings: {
        b0: { active: 10, delayed: 2, connections: 0, suspended: true },
        b1: { active: 5, delayed: 1, connections: 0, suspended: true },
      },
    });
    const sum = r.core.summary();
    expect(sum).toMatchObject({
      active: 15,
      delayed: 3,
      inFlight: 0,
      connections: 0,
      domains: 1,
      started: false,
      delivered: 0,
      deferred: 0,
      bounced: 0,
      bindings: {
        b0: { active: 10, connections: 0, suspended: false },
        b1: { active: 5, connections: 0, suspended: false },
      },
    });
  });

  test('while delivering: summary equals the sum of domainViews at every instant, and the tallies equal the events and the servers', async () => {
    const r = await rig({
      bindings: ['b0', 'b1'],
      config: { global: { ...base, retryInterval: 0.05, maxRetryInterval: 0.05, maxOutboundConnections: 2 } },
      routes: { 'w1.test': 's1', 'w2.test': 's2', 'w3.test': 's2' },
      behavior: {
        rcpt: (id) => (id % 11 === 0 ? { code: 550 } : 'accept'),
        data: (id, attempt) => (id % 4 === 0 && attempt === 1 ? { code: 451 } : 'accept'),
        dataDelayMs: 3,
      },
    });
    const domains = ['w1.test', 'w2.test', 'w3.test'];
    const mismatches: string[] = [];
    let samples = 0;
    const sample = () => {
      const sum = r.core.summary();
      const views = r.core.domains().map((d) => r.core.domainView(d));
      const add = (f: (v: (typeof views)[number]) => number) => views.reduce((a, v) => a + f(v), 0);
      const perBinding = (b: string, k: 'active' | 'connections') => add((v) => v.bindings[b][k]);
      const checks: Array<[string, number, number]> = [
        ['active', sum.active, add((v) => v.bindings.b0.active + v.bindings.b1.active)],
        ['delayed', sum.delayed, add((v) => v.delayed)],
        ['delayed by binding', sum.delayed, add((v) => v.bindings.b0.delayed + v.bindings.b1.delayed)],
        ['connections', sum.connections, add((v) => v.connections)],
        ['connections by binding', sum.connections, sum.bindings.b0.connections + sum.bindings.b1.connections],
        ['b0 active', sum.bindings.b0.active, perBinding('b0', 'active')],
        ['b1 connections', sum.bindings.b1.connections, perBinding('b1', 'connections')],
        ['delivered', sum.delivered, add((v) => v.delivered)],
        ['deferred', sum.deferred, add((v) => v.deferred)],
        ['bounced', sum.bounced, add((v) => v.bounced)],
        ['delivered events', sum.delivered, r.log.delivered.length],
        ['deferred events', sum.deferred, r.log.deferred.length],
        ['bounce events', sum.bounced, r.log.bounced.length],
      ];
      samples++;
      for (const [what, a, b] of checks)
        if (a !== b && mismatches.length < 20) mismatches.push(`${what}: summary ${a} vs ${b}`);
    };
    const timer = setInterval(sample, 2);
    r.core.start();
    const ids = range(1, 120);
    try {
      for (const id of ids)
        await r.core.submit(testMessage(id, domains[id % 3], { binding: id % 2 ? 'b0' : 'b1' }), testBody(id));
      await finals(r, ids);
      await waitFor(() => r.core.stats().connections === 0, 'idle connections to close');
      sample();
    } finally {
      clearInterval(timer);
    }
    expect(mismatches).toEqual([]);
    expect(samples).toBeGreaterThan(10);
    const bounced = ids.filter((id) => id % 11 === 0);
    const deferred = ids.filter((id) => id % 4 === 0 && id % 11 !== 0);
    const sum = r.core.summary();
    expect(sum).toMatchObject({
      delivered: 120 - bounced.length,
      bounced: bounced.length,
      deferred: deferred.length,
      active: 0,
      delayed: 0,
      connections: 0,
    });
    for (const d of domains) {
      const v = r.core.domainView(d);
      const mine = ids.filter((id) => domains[id % 3] === d);
      expect(v.delivered).toBe(mine.filter((id) => !bounced.includes(id)).length);
      expect(v.bounced).toBe(mine.filter((id) => bounced.includes(id)).length);
      expect(v.deferred).toBe(mine.filter((id) => deferred.includes(id)).length);
    }
    expect(acceptedBy(r).length).toBe(sum.delivered);
    expect(new Set(acceptedBy(r)).size).toBe(sum.delivered);
  });
});

describe('bad input: a clear error, and nothing changes', () => {
  const store = () => new MemoryStore();

  test('the constructor refuses a transport or store that is not one, and a bad deliveryTimeout', () => {
    expect(() => new MailQueueCore({ transport: {} as never, store: store() })).toThrow(TypeError);
    expect(() => new MailQueueCore({ transport: {} as never, store: store() })).toThrow(/options\.transport/);
    expect(() => new MailQueueCore({ store: { put: () => undefined } as never })).toThrow(/options\.store/);
    expect(() => new MailQueueCore({ deliveryTimeout: 0 })).toThrow(RangeError);
    expect(() => new MailQueueCore({ deliveryTimeout: '1000' as never })).toThrow(TypeError);
    expect(() => new MailQueueCore({ deliveryTimeout: 1.5 })).toThrow(/options\.deliveryTimeout/);
  });

  test('start, submit and recover without a transport or store: ERR_CONFIG, and the core stays stopped', async () => {
    const noTransport = new MailQueueCore({ store: store() });
    const noStore = new MailQueueCore({ transport: new SmtpTransport() });
    cleanups.push(() => {
      noTransport.close();
      noStore.close();
    });
    for (const core of [noTransport, noStore]) {
      expect(() => core.start()).toThrow(
        expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(/transport and store/) }),
      );
      expect(core.started).toBe(false);
    }
    await expect(noStore.submit(testMessage(1, 'a.test'), testBody(1))).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    await expect(noStore.recover()).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    expect(noStore.stats()).toMatchObject({ active: 0, delayed: 0, domains: 0 });
    await noTransport.stop(); // stop() of a core that never started: nothing to do
  });

  test('submit: bad message, bad body, duplicate id, a bad field caught after the store took it: rejected, store and queues unchanged', async () => {
    const st = store();
    const core = new MailQueueCore({ bindings: ['b0'], transport: new SmtpTransport(), store: st });
    cleanups.push(() => core.close());
    await core.submit(testMessage(1, 'a.test'), testBody(1));
    const state = () => ({
      stats: core.stats(),
      size: st.size,
      domains: core.domains(),
      queue: core.listQueue('a.test').map((m) => m.id),
    });
    const snap = state();
    const cases: Array<[string, () => Promise<void>, object | (new (...a: never[]) => Error), RegExp?]> = [
      ['message null', () => core.submit(null as never, testBody(2)), TypeError, /^message must be an object/],
      [
        'id a string',
        () => core.submit({ ...testMessage(2, 'a.test'), id: '2' as never }, testBody(2)),
        TypeError,
        /^message\.id/,
      ],
      [
        'id negative',
        () => core.submit({ ...testMessage(2, 'a.test'), id: -2 }, testBody(2)),
        RangeError,
        /^message\.id/,
      ],
      [
        'id fractional',
        () => core.submit({ ...testMessage(2, 'a.test'), id: 2.5 }, testBody(2)),
        RangeError,
        /^message\.id/,
      ],
      ['domain empty', () => core.submit(testMessage(2, ''), testBody(2)), RangeError, /^message\.domain/],
      [
        'domain a number',
        () => core.submit({ ...testMessage(2, 'a.test'), domain: 7 as never }, testBody(2)),
        TypeError,
        /^message\.domain/,
      ],
      [
        'binding unknown',
        () => core.submit(testMessage(2, 'b.test', { binding: 'nope' }), testBody(2)),
        RangeError,
        /binding/,
      ],
      [
        'body a string',
        () => core.submit(testMessage(2, 'b.test'), 'hello' as never),
        TypeError,
        /^body must be a Buffer/,
      ],
      ['body missing', () => core.submit(testMessage(2, 'b.test'), undefined as never), TypeError, /^body/],
      ['envelope missing', () => core.submit({ id: 2, domain: 'b.test' } as never, testBody(2)), TypeError, /envelope/],
      [
        'no recipients',
        () => core.submit({ ...testMessage(2, 'b.test'), envelope: { from: 'a@b.test', to: [] } }, testBody(2)),
        RangeError,
        /envelope\.to/,
      ],
      [
        'unknown key',
        () => core.submit({ ...testMessage(2, 'b.test'), colour: 'red' } as never, testBody(2)),
        RangeError,
        /colour/,
      ],
      ['priority 2', () => core.submit(testMessage(2, 'b.test', { priority: 2 }), testBody(2)), RangeError, /priority/],
      [
        'nextAttempt a string (refused after the store took it: taken back)',
        () => core.submit({ ...testMessage(2, 'b.test'), nextAttempt: 'soon' as never }, testBody(2)),
        TypeError,
        /nextAttempt/,
      ],
      [
        'nextAttempt NaN',
        () => core.submit({ ...testMessage(2, 'b.test'), nextAttempt: NaN }, testBody(2)),
        RangeError,
        /nextAttempt/,
      ],
      ['duplicate id', () => core.submit(testMessage(1, 'c.test'), testBody(1)), { code: 'ERR_DUPLICATE_ID' }, /1/],
    ];
    for (const [what, run, err, msg] of cases) {
      const p = run();
      if (typeof err === 'function') await expect(p, what).rejects.toThrow(err);
      else await expect(p, what).rejects.toMatchObject(err);
      if (msg) await expect(p, what).rejects.toThrow(msg);
      expect(state(), what).toEqual(snap);
      expect(await st.get(2), what).toBeUndefined();
      expect(core.hasDomain('b.test'), what).toBe(false);
    }
    // the duplicate did not replace the original
    expect((await st.get(1))?.domain).toBe('a.test');
    // and good input does change the state: the checks above can fail
    await core.submit(testMessage(2, 'b.test'), testBody(2));
    expect(state()).not.toEqual(snap);
  });

  test('listQueue, flush, fail, retry, domainView, suspend/resume, suspendBinding/resumeBinding, recover: bad arguments refused, state unchanged', async () => {
    const st = store();
    const core = new MailQueueCore({ bindings: ['b0', 'b1'], transport: new SmtpTransport(), store: st });
    cleanups.push(() => core.close());
    await core.submit(testMessage(1, 'a.test'), testBody(1));
    await core.submit({ ...testMessage(2, 'a.test'), nextAttempt: Date.now() + 60_000 }, testBody(2));
    const state = () => ({
      stats: core.stats(),
      view: core.domainView('a.test'),
      summary: core.summary(),
      size: st.size,
      active: core.listQueue('a.test').map((m) => m.id),
      delayed: core.listQueue('a.test', { queue: 'delayed' }).map((m) => m.id),
      domains: core.domains(),
    });
    const snap = state();
    const unknown = { code: 'ERR_UNKNOWN_DOMAIN' };
    const cases: Array<[string, () => unknown, object | (new (...a: never[]) => Error), RegExp?]> = [
      ['listQueue unknown domain', () => core.listQueue('zz.test'), unknown, /zz\.test/],
      ['listQueue domain a number', () => core.listQueue(5 as never), TypeError, /^domain/],
      ['listQueue options null', () => core.listQueue('a.test', null as never), TypeError, /^options/],
      [
        'listQueue queue bad',
        () => core.listQueue('a.test', { queue: 'deferred' as never }),
        RangeError,
        /options\.queue/,
      ],
      ['listQueue limit -1', () => core.listQueue('a.test', { limit: -1 }), RangeError, /options\.limit/],
      ['listQueue limit 1.5', () => core.listQueue('a.test', { limit: 1.5 }), RangeError, /options\.limit/],
      ['listQueue limit huge', () => core.listQueue('a.test', { limit: 1e9 }), RangeError, /options\.limit/],
      [
        'listQueue offset a string',
        () => core.listQueue('a.test', { offset: '1' as never }),
        TypeError,
        /options\.offset/,
      ],
      ['listQueue binding unknown', () => core.listQueue('a.test', { binding: 'b9' }), RangeError, /binding/],
      ['listQueue binding slot 2', () => core.listQueue('a.test', { binding: 2 }), RangeError, /binding/],
      [
        'listQueue delayed with a binding',
        () => core.listQueue('a.test', { queue: 'delayed', binding: 'b0' }),
        RangeError,
        /options\.binding/,
      ],
      ['listQueue unknown option', () => core.listQueue('a.test', { sort: 'id' } as never), RangeError, /sort/],
      ['flush unknown domain', () => core.flush('zz.test'), unknown, /zz\.test/],
      ['flush not a string', () => core.flush(42 as never), TypeError, /^domain/],
      ['flush not a domain name', () => core.flush('a b'), RangeError, /^domain/],
      ['fail unknown domain', () => core.fail('zz.test'), unknown],
      ['fail null', () => core.fail(null as never), TypeError, /^domain/],
      ['retry a string', () => core.retry('2' as never), TypeError, /^id/],
      ['retry negative', () => core.retry(-2), RangeError, /^id/],
      ['retry NaN', () => core.retry(NaN), RangeError, /^id/],
      ['domainView unknown', () => core.domainView('zz.test'), unknown],
      ['domainView a number', () => core.domainView(1 as never), TypeError, /^domain/],
      ['suspend a number', () => core.suspend(42 as never), TypeError, /^domain/],
      ['suspend unknown binding', () => core.suspend('a.test', 'b9'), RangeError, /binding/],
      ['suspend binding slot 2', () => core.suspend('a.test', 2), RangeError, /binding/],
      ['resume unknown binding', () => core.resume('a.test', 'b9'), RangeError, /binding/],
      ['resume bad domain', () => core.resume('', 'b0'), RangeError, /^domain/],
      ['suspendBinding unknown', () => core.suspendBinding('b9'), RangeError, /binding/],
      ['suspendBinding 1.5', () => core.suspendBinding(1.5), RangeError, /binding/],
      ['resumeBinding an object', () => core.resumeBinding({} as never), TypeError, /binding/],
    ];
    for (const [what, run, err, msg] of cases) {
      if (typeof err === 'function') expect(run, what).toThrow(err);
      else expect(run, what).toThrow(expect.objectContaining(err));
      if (msg) expect(run, what).toThrow(msg);
      expect(state(), what).toEqual(snap);
    }
    await expect(core.recover('x' as never)).rejects.toThrow(TypeError);
    expect(state()).toEqual(snap);
    // the same calls with good arguments do change the state
    core.suspendBinding('b1');
    expect(state()).not.toEqual(snap);
    core.resumeBinding('b1');
    expect(state()).toEqual(snap);
    expect(core.flush('a.test')).toBe(1);
    expect(state()).not.toEqual(snap);
  });

  test('after close(): every operator method throws ERR_CLOSED', async () => {
    const core = new MailQueueCore({ transport: new SmtpTransport(), store: store() });
    await core.submit(testMessage(1, 'a.test'), testBody(1));
    core.close();
    const closed = expect.objectContaining({ code: 'ERR_CLOSED' });
    for (const run of [
      () => core.start(),
      () => core.flush('a.test'),
      () => core.fail('a.test'),
      () => core.retry(1),
      () => core.summary(),
      () => core.domainView('a.test'),
      () => core.listQueue('a.test'),
      () => core.suspend('a.test'),
      () => core.resume('a.test'),
      () => core.suspendBinding(0),
      () => core.resumeBinding(0),
    ])
      expect(run).toThrow(closed);
    await expect(core.submit(testMessage(2, 'a.test'), testBody(2))).rejects.toEqual(closed);
    await expect(core.recover()).rejects.toEqual(closed);
  });
});
