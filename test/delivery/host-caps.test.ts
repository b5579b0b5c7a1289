// The Host scope (decision 47), counted where the receiver counts: several domains whose MX (or
// route) is one server, with a cap on that host below what the domains' own caps would open
// together. A started core (the real addon, SmtpTransport, MemoryStore) delivers to an smtp-server
// on loopback that counts its own connections (test/support/smtp_servers.ts); each binding connects
// from its own source address 127.0.0.(i+1). As in limits.test.ts, each cap is asserted twice: never
// exceeded (peak <= cap) and reached (peak == cap), so a scenario that never pushed against it fails.
import { describe, expect, test } from 'vitest';

import {
  type CoreConfig,
  MailQueueCore,
  MemoryStore,
  SmtpTransport,
  type SmtpTransportOptions,
} from '../../lib/index.js';
import type { DnsResolver } from '../../lib/transport/smtp.js';
import { CoreLog, bindingAddress, testBody, testMessage, waitFor } from '../support/harness.js';
import { ConnectionWatch, startServer, type TestServer } from '../support/smtp_servers.js';
import { tornDownAfterEach } from '../support/teardown.js';

interface Rig {
  core: MailQueueCore;
  log: CoreLog;
  watch: ConnectionWatch;
  server: TestServer;
}

const { cores, servers } = tornDownAfterEach();

const DOMAINS = ['d1.test', 'd2.test', 'd3.test', 'd4.test'];
const TIMEOUTS = { connect: 5000, greeting: 5000, command: 5000, message: 10_000, quit: 1000 };
// Each domain may open 4 per binding: 16 together on one binding, far above the host caps below.
const GLOBAL = {
  maxOutboundConnections: 4,
  connectionAllocationAggressiveness: 1,
  idleTimeout: 0.1,
  delayedQueueScanInterval: 0.1,
} as const;

/** One receiver for every domain; `transport` says how the domains reach it. */
async function rig(
  bindings: string[],
  config: CoreConfig,
  transport: (port: number) => SmtpTransportOptions,
): Promise<Rig> {
  const watch = new ConnectionWatch();
  const server = await startServer({ name: 's', watch, behavior: { dataDelayMs: 25 } });
  servers.push(server);
  const smtp = new SmtpTransport({
    ...transport(server.port),
    bindings: Object.fromEntries(
      bindings.map((b, i) => [b, { localAddress: bindingAddress(i), ehloName: `${b}.mta.test` }]),
    ),
    timeouts: TIMEOUTS,
  });
  const core = new MailQueueCore({ bindings, config, transport: smtp, store: new MemoryStore() });
  cores.push(core);
  return { core, log: new CoreLog(core), watch, server };
}

/** Every domain's MX is mx.shared.test, which is 127.0.0.1. */
function sharedMx(): DnsResolver {
  const none = (name: string) => Promise.reject(Object.assign(new Error(`ENODATA ${name}`), { code: 'ENODATA' }));
  return {
    resolveMx: (name) =>
      DOMAINS.includes(name) ? Promise.resolve([{ exchange: 'MX.Shared.test.', priority: 10 }]) : none(name),
    resolve4: (name) => (name === 'mx.shared.test' ? Promise.resolve(['127.0.0.1']) : none(name)),
    resolve6: (name) => none(name),
  };
}

/** `perPair` messages for every (domain, binding), submitted before start() so the first pass
 *  sees the whole queue. */
async function fill(r: Rig, bindings: string[], perPair: number): Promise<number[]> {
  const all: number[] = [];
  let id = 1;
  for (const d of DOMAINS)
    for (const b of bindings)
      for (let i = 0; i < perPair; i++, id++) {
        await r.core.submit(testMessage(id, d, { binding: b }), testBody(id));
        all.push(id);
      }
  return all;
}

/** Every id delivered exactly once, nothing bounced, then every connection closed. */
async function deliveredOnce(r: Rig, ids: number[]): Promise<void> {
  await waitFor(
    () => r.log.isDone(ids),
    `${ids.length} final outcomes`,
    60_000,
    () => ({ done: r.log.final.size, stats: r.core.stats(), watch: r.watch.snapshot() }),
  );
  expect(r.log.violations).toEqual([]);
  expect(r.log.bounced.map((b) => b.event)).toEqual([]);
  expect(new Set(r.log.deliveredIds())).toEqual(new Set(ids));
  expect(r.server.accepted.length).toBe(ids.length);
  expect(r.server.duplicates()).toEqual([]);
  expect(r.server.anomalies).toEqual([]);
  expect(r.log.errors).toEqual([]);
  await waitFor(() => r.core.stats().connections === 0 && r.watch.open() === 0, 'every connection closed');
  const s = r.core.stats();
  expect(s).toMatchObject({ connections: 0, active: 0, delayed: 0, inFlight: 0 });
  expect(s.released).toBe(s.opened);
  expect(r.core.checkInvariants()).toBe(true);
}

describe('the Host scope, counted by the receiver', () => {
  test('a host cap bounds four domains whose MX is that host together', async () => {
    const r = await rig(
      ['b0'],
      { global: GLOBAL, hosts: { 'mx.shared.test': { maxOutboundConnections: 3 } } },
      (port) => ({ resolver: sharedMx(), port }),
    );
    const all = await fill(r, ['b0'], 25);
    r.core.start();
    await deliveredOnce(r, all);
    expect(r.watch.peak('server:s'), JSON.stringify(r.watch.snapshot())).toBeLessThanOrEqual(3);
    expect(r.watch.peak('server:s')).toBe(3);
    const domainOf = (id: number): string => DOMAINS[Math.floor((id - 1) / 25)];
    const domainsSeen = new Set(r.server.txns.map((t) => domainOf(t.id)));
    expect(domainsSeen.size).toBe(4);
    // Sessions of different domains were open at the host at once: the cap was shared among the
    // domains, not handed to one domain at a time.
    const spans = r.server.connections
      .filter((c) => c.txns.length > 0)
      .map((c) => ({ domain: domainOf(c.txns[0].id), from: c.openedAt, to: c.closedAt ?? Number.POSITIVE_INFINITY }));
    const together = spans.some((a, i) =>
      spans.some((b, j) => j > i && a.domain !== b.domain && a.from < b.to && b.from < a.to),
    );
    expect(together, JSON.stringify(spans)).toBe(true);
    expect(r.core.counters[r.core.counterIndex['refused:host']]).toBeGreaterThan(0);
    // The passes granted within the cap: apart from the first connection of each domain (granted
    // before its MX set was known), no grant was refused at the host.
    expect(r.core.stats().opened - r.server.connections.length).toBeLessThanOrEqual(DOMAINS.length);
  });

  test('MX fallback: a session that falls back to the capped host moves its charge there, or gives way', async () => {
    // The best MX refuses every connection (nothing listens on 127.0.0.9); the second is the
    // receiver, capped at 2. Grants are charged to the dead host first (it has no cap), so every
    // session that falls back must claim the receiver before it connects.
    const zone: Record<string, string> = { 'mx-dead.test': '127.0.0.9', 'mx-live.test': '127.0.0.1' };
    const none = (name: string) => Promise.reject(Object.assign(new Error(`ENODATA ${name}`), { code: 'ENODATA' }));
    const resolver: DnsResolver = {
      resolveMx: (name) =>
        DOMAINS.includes(name)
          ? Promise.resolve([
              { exchange: 'mx-live.test', priority: 20 },
              { exchange: 'mx-dead.test', priority: 10 },
            ])
          : none(name),
      resolve4: (name) => (zone[name] ? Promise.resolve([zone[name]]) : none(name)),
      resolve6: (name) => none(name),
    };
    const r = await rig(
      ['b0'],
      {
        global: { ...GLOBAL, retryInterval: 0.05, maxRetryInterval: 0.2, hostFailureRetry: 0.05 },
        hosts: { 'mx-live.test': { maxOutboundConnections: 2 } },
      },
      (port) => ({ resolver, port, hostFailureRetry: 60_000 }),
    );
    const all = await fill(r, ['b0'], 10);
    r.core.start();
    await deliveredOnce(r, all);
    expect(r.watch.peak('server:s'), JSON.stringify(r.watch.snapshot())).toBeLessThanOrEqual(2);
    expect(r.watch.peak('server:s')).toBe(2);
  });

  test('a binding::host cap bounds that binding at the host (a route), not the other binding', async () => {
    const bindings = ['b0', 'b1'];
    const r = await rig(
      bindings,
      { global: GLOBAL, bindings: { b0: { hosts: { '127.0.0.1': { maxOutboundConnections: 2 } } } } },
      (port) => ({ routes: Object.fromEntries(DOMAINS.map((d) => [d, { host: '127.0.0.1', port }])) }),
    );
    const all = await fill(r, bindings, 15);
    r.core.start();
    await deliveredOnce(r, all);
    const b0 = `addr:${bindingAddress(0)}`;
    const b1 = `addr:${bindingAddress(1)}`;
    expect(r.watch.peak(b0), JSON.stringify(r.watch.snapshot())).toBeLessThanOrEqual(2);
    expect(r.watch.peak(b0)).toBe(2);
    expect(r.watch.peak(b1)).toBeGreaterThan(2); // no cap of its own there: the domains' caps
    expect(r.watch.peak(b1)).toBeLessThanOrEqual(16);
  });
});
