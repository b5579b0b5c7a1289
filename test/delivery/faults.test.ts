// Delivery under faults, over real SMTP on loopback (the real addon, SmtpTransport, MemoryStore):
// a refused connection, 421 at the greeting, a drop in the middle of DATA, a server that never
// answers (at the greeting, after the data), 5xx and 4xx at RCPT and DATA, the retry schedule,
// maxRetries, expiry during retries, and a transport that never settles (deliveryTimeout). In
// every case: the message's outcome is the documented one and it is reached exactly once, the
// server accepts it at most once, no lease leaks (stats().connections and domainView connections
// return to 0, opened == released), and the store forgets what is final.
import { afterEach, describe, expect, test } from 'vitest';

import {
  MailQueueCore,
  MemoryStore,
  SmtpTransport,
  type CoreConfig,
  type OutboundMessage,
  type Outcome,
  type Transport,
  type TransportSession,
} from '../../lib/index.js';
import type { SmtpTimeouts } from '../../lib/transport/smtp.js';
import { Books, CoreLog, sleep, testBody, testMessage, waitFor } from '../support/harness.js';
import { ConnectionWatch, freePort, startServer, type Behavior, type TestServer } from '../support/smtp_servers.js';

interface Rig {
  core: MailQueueCore;
  log: CoreLog;
  store: MemoryStore;
  watch: ConnectionWatch;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(
  behavior: Behavior = {},
  options: { port?: number; watch?: ConnectionWatch } = {},
): Promise<TestServer> {
  const s = await startServer({ behavior, ...options });
  cleanups.push(() => s.close());
  return s;
}

function rig(options: {
  config: CoreConfig;
  routes: Record<string, number>;
  timeouts?: SmtpTimeouts;
  bindings?: string[];
  transport?: Transport;
  deliveryTimeout?: number;
  watch?: ConnectionWatch;
}): Rig {
  const transport =
    options.transport ??
    new SmtpTransport({
      routes: Object.fromEntries(Object.entries(options.routes).map(([d, port]) => [d, { host: '127.0.0.1', port }])),
      timeouts: { connect: 2000, greeting: 2000, command: 2000, message: 5000, quit: 500, ...options.timeouts },
      hostFailureRetry: 0,
    });
  const store = new MemoryStore();
  const core = new MailQueueCore({
    bindings: options.bindings,
    config: options.config,
    transport,
    store,
    deliveryTimeout: options.deliveryTimeout,
  });
  const log = new CoreLog(core);
  cleanups.push(async () => {
    await core.stop();
    core.close();
  });
  return { core, log, store, watch: options.watch ?? new ConnectionWatch() };
}

async function submit(r: Rig, id: number, domain: string, size = 0): Promise<void> {
  await r.core.submit(testMessage(id, domain), testBody(id, size));
}

async function done(r: Rig, ids: number[], timeoutMs = 20_000): Promise<void> {
  await waitFor(
    () => r.log.isDone(ids),
    `final outcomes of ${ids.join(',')}`,
    timeoutMs,
    () => ({ final: [...r.log.final], stats: r.core.stats(), deferred: r.log.deferred.length }),
  );
}

/** No lease left, nothing queued, the store empty, the native books consistent. */
async function clean(r: Rig, domains: string[]): Promise<void> {
  await waitFor(
    () => r.core.stats().connections === 0,
    'every lease released',
    10_000,
    () => r.core.stats(),
  );
  const s = r.core.stats();
  expect(s).toMatchObject({ connections: 0, active: 0, delayed: 0, inFlight: 0 });
  expect(s.released).toBe(s.opened);
  for (const d of domains) expect(r.core.domainView(d).connections).toBe(0);
  await waitFor(
    () => r.store.size === 0,
    'the store to forget final messages',
    2000,
    () => r.store.size,
  );
  expect(r.core.checkInvariants()).toBe(true);
  expect(r.log.violations).toEqual([]);
  expect(r.log.errors).toEqual([]);
}

const base = {
  retryInterval: 0.2,
  maxRetryInterval: 0.2,
  hostFailureRetry: 0.4,
  idleTimeout: 0.1,
  delayedQueueScanInterval: 0.05,
};

describe('a session cannot be opened', () => {
  test('refused (nothing listens): deferred, the pair cools down for hostFailureRetry, no lease leaks; delivered once a server appears', async () => {
    const HFR = 800;
    const port = await freePort();
    const r = rig({
      config: { global: { ...base, retryInterval: 0.3, maxRetryInterval: 0.3, hostFailureRetry: HFR / 1000 } },
      routes: { 'x.test': port },
    });
    r.core.start();
    await submit(r, 1, 'x.test');
    await waitFor(() => r.log.deferred.length >= 1, 'the first deferral');
    const first = r.log.deferred[0];
    expect(first.event).toMatchObject({ id: 1, domain: 'x.test', binding: 'default' });
    expect(first.event.response).toMatch(/connection failed/);
    expect(first.event.response).toMatch(/ECONNREFUSED/);
    // in the cool-down: the pair shows suspended, no lease held, the message waits with 1 attempt
    await waitFor(() => r.core.stats().connections === 0, 'the failed connection to be released', 2000);
    const view = r.core.domainView('x.test');
    expect(view.bindings.default.suspended).toBe(true);
    expect(view.connections).toBe(0);
    expect(view.connectFailures).toBe(1);
    // delayed for 300 ms (then active, waiting for the cool-down to end), with one attempt counted
    expect(r.core.message(1)).toMatchObject({ state: expect.stringMatching(/^(delayed|active)$/), attempts: 1 });
    // Its retry is due after 300 ms, but the pair rests for 800 ms: the next grant comes no sooner.
    await waitFor(() => r.log.deferred.length >= 2, 'the second deferral', 5000);
    const grants = r.log.grants.filter((g) => g.event.domain === 'x.test').map((g) => g.at);
    expect(grants.length).toBeGreaterThanOrEqual(2);
    expect(grants[1] - first.at).toBeGreaterThanOrEqual(HFR - 2);
    expect(r.core.stats().connections).toBeLessThanOrEqual(1);
    // Now a server appears on that port.
    const s = await server({}, { port });
    await done(r, [1]);
    expect(r.log.final.get(1)).toBe('delivered');
    expect(s.accepted).toEqual([1]);
    await clean(r, ['x.test']);
    const tally = r.core.domainView('x.test');
    expect(tally.delivered).toBe(1);
    expect(tally.deferred).toBe(r.log.deferred.length);
    expect(tally.connectFailures).toBe(r.log.deferred.length);
  });

  test('refused until the message expires: one bounce with reason expired, and the store forgets it', async () => {
    const port = await freePort();
    const r = rig({
      config: {
        global: { ...base, hostFailureRetry: 0.15, retryInterval: 0.1, maxRetryInterval: 0.1 },
        domains: { 'y.test': { messageExpiration: 1 } },
      },
      routes: { 'y.test': port },
    });
    r.core.start();
    await submit(r, 7, 'y.test');
    const expiresAt = r.core.message(7)!.expiresAt;
    await done(r, [7], 10_000);
    expect(r.log.bouncesOf(7)).toEqual([expect.objectContaining({ id: 7, domain: 'y.test', reason: 'expired' })]);
    const defs = r.log.deferralsOf(7);
    expect(defs.length).toBeGreaterThanOrEqual(1);
    // a deferral announces a retry before the expiry; the failure whose retry would not be gets the bounce
    for (const d of defs) expect(d.event.nextAttempt).toBeLessThan(expiresAt);
    expect(await r.store.get(7)).toBeUndefined();
    expect(r.core.message(7)).toBeUndefined();
    await clean(r, ['y.test']);
    const view = r.core.domainView('y.test');
    expect(view).toMatchObject({ delivered: 0, bounced: 1, deferred: defs.length });
    // It expired either at a failed attempt (one more connect failure than deferrals) or while
    // waiting out a cool-down (as many).
    expect(view.connectFailures - defs.length).toBeGreaterThanOrEqual(0);
    expect(view.connectFailures - defs.length).toBeLessThanOrEqual(1);
  });

  test('421 at the greeting: deferred with the reply, cool-down, then delivered on a later connection', async () => {
    let refuse = 2;
    const s = await server({
      greet: () => (refuse-- > 0 ? { code: 421, message: 'busy, come back later' } : 'accept'),
    });
    const r = rig({
      config: { global: { ...base, hostFailureRetry: 0.2, retryInterval: 0.05, maxRetryInterval: 0.05 } },
      routes: { 'g.test': s.port },
    });
    r.core.start();
    await submit(r, 1, 'g.test');
    await submit(r, 2, 'g.test');
    await done(r, [1, 2]);
    expect(r.log.final.get(1)).toBe('delivered');
    expect(r.log.final.get(2)).toBe('delivered');
    expect(s.connections.filter((c) => c.refused === 421).length).toBe(2);
    // one message of the pair takes each failed open (CONN_ACTION_REQUEUE1)
    expect(r.log.deferred.length).toBe(2);
    for (const d of r.log.deferred) expect(d.event.response).toMatch(/421/);
    expect(s.accepted.sort()).toEqual([1, 2]);
    expect(s.duplicates()).toEqual([]);
    await clean(r, ['g.test']);
  });

  test('a server that never greets: the greeting timeout ends the attempt, the lease is released, the message is retried', async () => {
    let hang = 1;
    const s = await server({ greet: () => (hang-- > 0 ? 'hang' : 'accept') });
    const r = rig({
      config: { global: { ...base, hostFailureRetry: 0.1, retryInterval: 0.05, maxRetryInterval: 0.05 } },
      routes: { 'h.test': s.port },
      timeouts: { greeting: 300 },
    });
    r.core.start();
    await submit(r, 1, 'h.test');
    await waitFor(() => r.log.deferred.length === 1, 'the deferral after the greeting timeout', 5000);
    expect(r.log.deferred[0].event.response).toMatch(/connection failed/);
    await done(r, [1]);
    expect(r.log.final.get(1)).toBe('delivered');
    expect(s.connections[0].refused).toBe('hang');
    expect(s.connections[0].closedAt).toBeDefined();
    expect(s.accepted).toEqual([1]);
    await clean(r, ['h.test']);
  });
});

describe('a session breaks or stalls during a message', () => {
  test('drop in the middle of DATA (before the final dot): transient, retried, received once complete', async () => {
    const s = await server({ data: (_id, attempt) => (attempt === 1 ? 'drop' : 'accept') });
    const r = rig({
      config: { global: { ...base, maxOutboundConnections: 2, retryInterval: 0.05, maxRetryInterval: 0.05 } },
      routes: { 'm.test': s.port },
    });
    r.core.start();
    const ids = [1, 2, 3, 4, 5];
    // 200 kB bodies: the first chunk arrives well before the end, and the server drops there.
    for (const id of ids) await submit(r, id, 'm.test', 200_000);
    await done(r, ids);
    for (const id of ids) {
      expect(r.log.final.get(id)).toBe('delivered');
      expect(s.txns.filter((t) => t.id === id).map((t) => t.outcome)).toEqual(['dropped', 'accepted']);
      // Each was attempted once before its deferral: messages reserved by a dropped connection
      // but not sent went back without an attempt counted.
      expect(r.log.attemptsAtDeferral.get(id)).toEqual([1]);
      expect(r.log.deferralsOf(id)).toHaveLength(1);
    }
    expect(s.accepted.sort()).toEqual(ids);
    expect(s.anomalies).toEqual([]);
    await clean(r, ['m.test']);
  });

  test('a server that never answers the final dot: the transport times out, the lease is released, the message is retried once', async () => {
    const s = await server({ data: (_id, attempt) => (attempt === 1 ? 'hang' : 'accept') });
    const r = rig({
      config: { global: { ...base, maxOutboundConnections: 1, retryInterval: 0.05, maxRetryInterval: 0.05 } },
      routes: { 'n.test': s.port },
      timeouts: { command: 800, message: 5000 },
    });
    r.core.start();
    await submit(r, 1, 'n.test');
    await waitFor(() => r.log.deferred.length === 1, 'the deferral after the reply timeout', 5000);
    expect(r.log.deferred[0].event.response).toMatch(/delivery failed/);
    await waitFor(() => r.core.domainView('n.test').connections === 0 || r.log.final.has(1), 'the stalled lease to go');
    await done(r, [1]);
    expect(s.txns.map((t) => t.outcome)).toEqual(['hung', 'accepted']);
    expect(s.connections.length).toBe(2);
    expect(s.accepted).toEqual([1]);
    await clean(r, ['n.test']);
  });

  test('releaseConnection of a running connection (an operator): it finishes the message in progress, puts back what it holds, and gives the lease back after its session; the limit holds at the server throughout', async () => {
    const s = await server({ dataDelayMs: (id) => (id === 1 ? 400 : 0) });
    const r = rig({ config: { global: { ...base, maxOutboundConnections: 1 } }, routes: { 'o.test': s.port } });
    r.core.start();
    const ids = Array.from({ length: 20 }, (_, i) => i + 1);
    for (const id of ids) await submit(r, id, 'o.test');
    // While message 1 waits for its reply, the operator releases the connection.
    await waitFor(
      () => s.txns.some((t) => t.id === 1 && t.dataEndAt !== undefined),
      'message 1 sent, its reply pending',
      5000,
    );
    const first = r.log.grants[0].event.connectionId;
    const firstConn = s.txns.find((t) => t.id === 1)!.conn;
    const startedBefore = s.txns.filter((t) => t.conn === firstConn).length;
    r.core.releaseConnection(first);
    // The lease still counts: the session is open.
    expect(r.core.stats().connections).toBe(1);
    await done(r, ids);
    for (const id of ids) expect(r.log.final.get(id)).toBe('delivered');
    expect(s.accepted.sort((a, b) => a - b)).toEqual(ids);
    // The first session started nothing after the request; a second lease carried the rest; the
    // server never saw two sessions at once (the limit is 1).
    expect(s.txns.filter((t) => t.conn === firstConn).length).toBe(startedBefore);
    expect(r.log.grants.length).toBeGreaterThanOrEqual(2);
    expect(s.peak()).toBe(1);
    expect(r.log.errors).toEqual([]);
    // The lease is gone now: a second release is refused as for any unknown connection.
    expect(() => r.core.releaseConnection(first)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_CONNECTION' }));
    await clean(r, ['o.test']);
  });

  test('a transport whose send() never settles is cut off by deliveryTimeout; the session is closed, the lease released', async () => {
    // The one hand-written Transport of these tests. It is the thing that misbehaves (its first
    // send() never settles), not the thing under test: the core's watchdog is.
    const sends: number[] = [];
    const closed: number[] = [];
    let sessions = 0;
    const hanging: Transport = {
      async open(): Promise<TransportSession> {
        const n = ++sessions;
        let usable = true;
        return {
          get usable() {
            return usable;
          },
          send(m: OutboundMessage): Promise<Outcome> {
            sends.push(m.id);
            if (sends.length === 1) return new Promise<Outcome>(() => undefined); // never settles
            return Promise.resolve({ kind: 'delivered', response: '250 ok' });
          },
          async close() {
            usable = false;
            closed.push(n);
          },
        };
      },
    };
    const r = rig({
      config: { global: { ...base, retryInterval: 0.05, maxRetryInterval: 0.05 } },
      routes: {},
      transport: hanging,
      deliveryTimeout: 200,
    });
    r.core.start();
    await submit(r, 1, 't.test');
    await done(r, [1], 10_000);
    expect(r.log.deferralsOf(1)).toHaveLength(1);
    expect(r.log.deferralsOf(1)[0].event.response).toMatch(/no outcome from the transport within 200 ms/);
    expect(r.log.final.get(1)).toBe('delivered');
    expect(sends).toEqual([1, 1]);
    expect(closed).toContain(1); // the stalled session was closed
    await clean(r, ['t.test']);
    expect(new Set(closed)).toEqual(new Set([1, 2]));
    expect(sessions).toBe(2);
  });
});

describe('replies about the message', () => {
  test('5xx at RCPT: bounce "permanent" with the code, removed from core and store; the session carries on', async () => {
    const s = await server({ rcpt: (id) => (id === 1 ? { code: 550, message: '5.1.1 no such user' } : 'accept') });
    const r = rig({ config: { global: { ...base, maxOutboundConnections: 1 } }, routes: { 'p.test': s.port } });
    await submit(r, 1, 'p.test');
    await submit(r, 2, 'p.test');
    r.core.start();
    await done(r, [1, 2]);
    expect(r.log.bouncesOf(1)).toEqual([
      expect.objectContaining({ id: 1, domain: 'p.test', reason: 'permanent', code: 550 }),
    ]);
    expect(r.log.bouncesOf(1)[0].response).toMatch(/no such user/);
    expect(r.log.deferred).toEqual([]);
    expect(r.core.message(1)).toBeUndefined();
    expect(await r.store.get(1)).toBeUndefined();
    expect(r.log.final.get(2)).toBe('delivered');
    expect(s.accepted).toEqual([2]);
    expect(s.connections.length).toBe(1);
    await clean(r, ['p.test']);
    expect(r.core.domainView('p.test')).toMatchObject({ delivered: 1, bounced: 1, deferred: 0 });
  });

  test('4xx: deferred at now + retryInterval * 2^(n-1) capped by maxRetryInterval, n = attempts; maxRetries used up -> retries-exhausted', async () => {
    const RI = 100;
    const MAX = 350;
    const s = await server({ data: () => ({ code: 451, message: '4.3.0 try again later' }) });
    const r = rig({
      config: { global: { ...base, retryInterval: RI / 1000, maxRetryInterval: MAX / 1000, maxRetries: 5 } },
      routes: { 'q.test': s.port },
    });
    r.core.start();
    await submit(r, 1, 'q.test');
    await done(r, [1], 15_000);
    const defs = r.log.deferralsOf(1);
    const tx = s.txns.filter((t) => t.id === 1);
    // 1 attempt + 5 retries, then the bounce
    expect(tx.length).toBe(6);
    expect(defs.length).toBe(5);
    expect(r.log.attemptsAtDeferral.get(1)).toEqual([1, 2, 3, 4, 5]);
    for (let k = 1; k <= 5; k++) {
      const d = defs[k - 1];
      const delay = Math.min(RI * 2 ** (k - 1), MAX);
      expect(d.event.code).toBe(451);
      // The core decided between the server's reply and the event.
      expect(d.event.nextAttempt, `deferral ${k}`).toBeGreaterThanOrEqual(tx[k - 1].repliedAt! + delay);
      expect(d.event.nextAttempt, `deferral ${k}`).toBeLessThanOrEqual(d.at + delay);
      // and the retry did not start before it was due
      expect(tx[k].mailAt, `retry ${k}`).toBeGreaterThanOrEqual(d.event.nextAttempt);
    }
    expect(r.log.bouncesOf(1)).toEqual([expect.objectContaining({ id: 1, reason: 'retries-exhausted', code: 451 })]);
    expect(s.accepted).toEqual([]);
    expect(await r.store.get(1)).toBeUndefined();
    await clean(r, ['q.test']);
  });

  test('maxRetries 2 with 4xx at RCPT: three attempts, then one bounce retries-exhausted', async () => {
    const s = await server({ rcpt: () => ({ code: 452, message: '4.2.2 mailbox full' }) });
    const r = rig({
      config: { global: { ...base, retryInterval: 0.05, maxRetryInterval: 0.05, maxRetries: 2 } },
      routes: { 'r.test': s.port },
    });
    r.core.start();
    await submit(r, 3, 'r.test');
    await done(r, [3]);
    expect(s.txns.filter((t) => t.id === 3).map((t) => t.code)).toEqual([452, 452, 452]);
    expect(r.log.deferralsOf(3).map((d) => d.event.code)).toEqual([452, 452]);
    expect(r.log.bouncesOf(3)).toEqual([expect.objectContaining({ reason: 'retries-exhausted', code: 452 })]);
    await clean(r, ['r.test']);
  });

  const EXP_RI = 200;
  async function expiringRig(): Promise<{ r: Rig; s: TestServer; expiresAt: number }> {
    const s = await server({ data: () => ({ code: 451 }) });
    const r = rig({
      config: {
        global: { ...base, retryInterval: EXP_RI / 1000, maxRetryInterval: 10 },
        domains: { 'e.test': { messageExpiration: 1.5 } },
      },
      routes: { 'e.test': s.port },
    });
    r.core.start();
    await submit(r, 1, 'e.test');
    const expiresAt = r.core.message(1)!.expiresAt;
    await done(r, [1], 10_000);
    await sleep(50);
    return { r, s, expiresAt };
  }

  test('messageExpiration reached during retries: one bounce "expired" instead of a retry past the expiry', async () => {
    const { r, s, expiresAt } = await expiringRig();
    expect(r.log.bouncesOf(1)).toEqual([expect.objectContaining({ id: 1, reason: 'expired' })]);
    const bounceAt = r.log.bounced.find((b) => b.event.id === 1)!.at;
    // Attempts at about 0, 0.2 and 0.6 s (each retry comes on a new connection, so a little later):
    // it bounced at the failure whose retry, 200 ms * 2^(n-1) later, would have come at or after
    // the expiry, and not before.
    const tx = s.txns.filter((t) => t.id === 1);
    const n = tx.length;
    expect(n).toBeGreaterThanOrEqual(2);
    for (const t of tx) expect(t.mailAt).toBeLessThan(expiresAt);
    expect(bounceAt + EXP_RI * 2 ** (n - 1)).toBeGreaterThanOrEqual(expiresAt);
    for (let k = 1; k < n; k++) expect(tx[k - 1].repliedAt! + EXP_RI * 2 ** (k - 1)).toBeLessThan(expiresAt);
    expect(r.log.delivered).toEqual([]);
    expect(await r.store.get(1)).toBeUndefined();
    expect(r.core.message(1)).toBeUndefined();
    await sleep(600); // nothing more reaches the server
    expect(s.txns.filter((t) => t.id === 1).length).toBe(n);
    await clean(r, ['e.test']);
  });

  test('messageExpiration reached during retries: no deferral after the bounce, none past the expiry; tallies count a bounce', async () => {
    const { r, s, expiresAt } = await expiringRig();
    const n = s.txns.filter((t) => t.id === 1).length;
    // A 'deferred' event announces a retry: none may come for a message that bounced, and none
    // may name a retry time at or after the message's expiry.
    for (const d of r.log.deferralsOf(1)) expect(d.event.nextAttempt).toBeLessThan(expiresAt);
    expect(r.log.violations).toEqual([]);
    expect(r.log.deferralsOf(1)).toHaveLength(n - 1);
    await clean(r, ['e.test']);
    expect(r.core.domainView('e.test')).toMatchObject({ delivered: 0, deferred: n - 1, bounced: 1 });
    expect(r.core.summary()).toMatchObject({ delivered: 0, deferred: n - 1, bounced: 1 });
  });
});

describe('the store', () => {
  test('a message the store no longer has bounces "missing" when its turn comes, and is never sent', async () => {
    const s = await server();
    const r = rig({ config: { global: base }, routes: { 'k.test': s.port } });
    r.core.suspend('k.test');
    r.core.start();
    await submit(r, 1, 'k.test');
    await submit(r, 2, 'k.test');
    await r.store.remove(1); // behind the core's back
    r.core.resume('k.test');
    await done(r, [1, 2]);
    expect(r.log.bouncesOf(1)).toEqual([expect.objectContaining({ id: 1, domain: 'k.test', reason: 'missing' })]);
    expect(r.log.final.get(2)).toBe('delivered');
    expect(s.txns.map((t) => t.id)).toEqual([2]);
    await clean(r, ['k.test']);
  });
});

describe('every message exactly once under mixed faults', () => {
  test('drops, 4xx, 5xx, stalls and refused greetings across three domains and two bindings', async () => {
    const watch = new ConnectionWatch();
    let conns = 0;
    const behavior: Behavior = {
      greet: () => (++conns % 7 === 0 ? { code: 421 } : 'accept'),
      rcpt: (id) => (id % 23 === 0 ? { code: 550 } : 'accept'),
      data: (id, attempt) => {
        if (id % 17 === 0) return { code: 554 };
        if (attempt > 1) return 'accept';
        if (id % 10 === 1) return 'drop';
        if (id % 10 === 2) return { code: 451 };
        if (id % 10 === 3 && id % 3 === 0) return 'hang';
        return 'accept';
      },
      dataDelayMs: (id) => id % 5,
    };
    const servers = [
      await server(behavior, { watch }),
      await server(behavior, { watch }),
      await server(behavior, { watch }),
    ];
    const domains = ['f1.test', 'f2.test', 'f3.test'];
    const r = rig({
      bindings: ['b0', 'b1'],
      config: {
        global: {
          ...base,
          maxOutboundConnections: 3,
          retryInterval: 0.05,
          maxRetryInterval: 0.1,
          hostFailureRetry: 0.05,
          idleTimeout: 0.05,
          maxDeliveriesPerConnection: 10,
        },
      },
      routes: Object.fromEntries(domains.map((d, i) => [d, servers[i].port])),
      timeouts: { command: 1000, message: 5000 },
      watch,
    });
    const books = new Books(r.core, r.log);
    r.core.start();
    const ids = Array.from({ length: 200 }, (_, i) => i + 1);
    try {
      for (const id of ids) {
        await r.core.submit(testMessage(id, domains[id % 3], { binding: id % 2 ? 'b0' : 'b1' }), testBody(id));
        books.submitted++;
      }
      await done(r, ids, 40_000);
      books.check();
    } finally {
      books.stop();
    }
    const permanent = ids.filter((id) => id % 23 === 0 || id % 17 === 0);
    const delivered = ids.filter((id) => !permanent.includes(id));
    expect(new Set(r.log.bounced.map((b) => b.event.id))).toEqual(new Set(permanent));
    for (const b of r.log.bounced) expect(b.event.reason).toBe('permanent');
    expect(new Set(r.log.deliveredIds())).toEqual(new Set(delivered));
    expect(r.log.delivered.length + r.log.bounced.length).toBe(ids.length);
    const accepted = servers.flatMap((s) => s.accepted);
    expect(accepted.length).toBe(delivered.length);
    expect(new Set(accepted)).toEqual(new Set(delivered));
    for (const s of servers) {
      expect(s.duplicates()).toEqual([]);
      expect(s.anomalies).toEqual([]);
    }
    // the faults did happen
    const outcomes = servers.flatMap((s) => s.txns.map((t) => t.outcome));
    for (const o of ['dropped', 'hung', 'refused', 'accepted']) expect(outcomes).toContain(o);
    expect(servers.flatMap((s) => s.connections).some((c) => c.refused === 421)).toBe(true);
    expect(books.breaches).toEqual([]);
    expect(books.samples).toBeGreaterThan(10);
    await clean(r, domains);
    expect(watch.open()).toBe(0);
  });
});
