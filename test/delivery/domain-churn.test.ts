// Domains that come and go, delivered over SMTP: waves of mail for new domains (a few names of an
// earlier wave come back after they were forgotten), with forgetIdleDomainsAfter 0, so every
// domain is forgotten at the end of the first pass after its last message and connection left.
// Every message reaches the receivers exactly once; the limits hold where the receivers count
// them (connections open at once in all, and per domain, from the recipients of each connection's
// transactions); the native domain slots are reused (far fewer slots than distinct domains).
import { afterEach, expect, test } from 'vitest';

import { MailQueueCore, MemoryStore, SmtpTransport } from '../../lib/index.js';
import { CoreLog, testBody, testMessage, waitFor } from '../support/harness.js';
import { ConnectionWatch, startServer, type TestServer } from '../support/smtp_servers.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const WAVES = 6;
const NEW_PER_WAVE = 10;
const MESSAGES_PER_DOMAIN = 3;
const SERVER_MAX = 4;
const PER_DOMAIN = 1;

/** The most connections open at once among `intervals` ([open, close] in ms). */
function peakOverlap(intervals: Array<[number, number]>): number {
  const events = intervals.flatMap(
    ([a, b]): Array<[number, number]> => [
      [a, 1],
      [b, -1],
    ],
  );
  events.sort((x, y) => x[0] - y[0] || x[1] - y[1]); // a close before an open at the same instant
  let open = 0;
  let peak = 0;
  for (const [, delta] of events) peak = Math.max(peak, (open += delta));
  return peak;
}

test('waves of new domains: each message delivered once, limits held at the receivers, slots reused', async () => {
  const watch = new ConnectionWatch();
  const servers: TestServer[] = [];
  for (const name of ['s0', 's1']) servers.push(await startServer({ name, watch, behavior: { dataDelayMs: 10 } }));
  cleanup.push(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });
  const transport = new SmtpTransport({
    routes: {
      '*.s0.test': { host: '127.0.0.1', port: servers[0].port },
      '*.s1.test': { host: '127.0.0.1', port: servers[1].port },
    },
    timeouts: { connect: 5000, greeting: 5000, command: 5000, message: 10_000, quit: 1000 },
  });
  const core = new MailQueueCore({
    config: {
      global: {
        maxOutboundConnections: PER_DOMAIN,
        serverMaxOutboundConnections: SERVER_MAX,
        serverReserveOutboundConnections: 0,
        connectionAllocationAggressiveness: 1,
        idleTimeout: 0.05,
        delayedQueueScanInterval: 0.05,
        migrateConnectionsBetweenSiblingDomains: false,
      },
    },
    transport,
    store: new MemoryStore(),
    forgetIdleDomainsAfter: 0,
  });
  cleanup.push(async () => {
    await core.stop();
    core.close();
  });
  const log = new CoreLog(core);
  core.start();

  const distinct = new Set<string>();
  const all: number[] = [];
  let id = 1;
  let maxSlots = 0;
  for (let w = 0; w < WAVES; w++) {
    // New names, and from the third wave on three names of the wave before last (forgotten by now).
    const names = Array.from({ length: NEW_PER_WAVE }, (_, i) => `w${w}-d${i}.s${i % 2}.test`);
    if (w >= 2) names.push(`w${w - 2}-d0.s0.test`, `w${w - 2}-d1.s1.test`, `w${w - 2}-d2.s0.test`);
    const wave: number[] = [];
    for (const name of names) {
      distinct.add(name);
      for (let k = 0; k < MESSAGES_PER_DOMAIN; k++, id++) {
        await core.submit(testMessage(id, name), testBody(id));
        wave.push(id);
      }
    }
    all.push(...wave);
    await waitFor(
      () => log.isDone(wave),
      `wave ${w} delivered`,
      30_000,
      () => ({ stats: core.stats() }),
    );
    maxSlots = Math.max(maxSlots, core.connectionsByDomain().length);
    // Its domains go once their connections have closed.
    await waitFor(
      () => core.stats().domains === 0,
      `wave ${w} forgotten`,
      20_000,
      () => ({ stats: core.stats(), domains: core.domains() }),
    );
  }

  // Exactly once, at the receivers and in the events.
  expect(log.violations).toEqual([]);
  expect(log.errors).toEqual([]);
  expect(new Set(log.deliveredIds())).toEqual(new Set(all));
  const accepted = servers.flatMap((s) => s.accepted);
  expect(accepted.length).toBe(all.length);
  expect(new Set(accepted)).toEqual(new Set(all));
  for (const s of servers) expect(s.anomalies).toEqual([]);

  // The limits, as the receivers saw them: in all, and per domain (the domain of a connection is
  // that of its transactions' recipients).
  expect(watch.peak(), JSON.stringify(watch.snapshot())).toBeLessThanOrEqual(SERVER_MAX);
  expect(watch.peak(), 'the server ceiling was reached').toBe(SERVER_MAX);
  const byDomain = new Map<string, Array<[number, number]>>();
  for (const c of watch.connections) {
    const domains = new Set(c.txns.flatMap((t) => t.rcpt.map((r) => r.slice(r.indexOf('@') + 1))));
    // One domain a connection (no migration here), sent to that domain's own server: a message
    // queued under a slot that another domain reuses would travel with that domain's mail.
    expect(domains.size, `connection ${c.seq} carried ${[...domains]}`).toBeLessThanOrEqual(1);
    for (const d of domains) expect(d.endsWith(`.${c.server}.test`), `${d} on ${c.server}`).toBe(true);
    for (const d of domains) {
      let list = byDomain.get(d);
      if (!list) byDomain.set(d, (list = []));
      list.push([c.openedAt, c.closedAt ?? Number.POSITIVE_INFINITY]);
    }
  }
  expect(byDomain.size).toBe(distinct.size);
  for (const [d, list] of byDomain) expect(peakOverlap(list), d).toBeLessThanOrEqual(PER_DOMAIN);

  // Slots were reused: never more than about two waves' worth, against 6 waves of new names.
  expect(distinct.size).toBe(WAVES * NEW_PER_WAVE);
  expect(all.length).toBe((WAVES * NEW_PER_WAVE + 3 * (WAVES - 2)) * MESSAGES_PER_DOMAIN);
  expect(maxSlots).toBeLessThanOrEqual(2 * (NEW_PER_WAVE + 3));
  expect(core.stats().domains).toBe(0);
  expect(core.checkInvariants()).toBe(true);
});
