// configure() on a core that delivers, observed by the receiver: a started core (the real addon,
// SmtpTransport, MemoryStore) delivers to a slow smtp-server on loopback that counts its own
// connections. Lowering the domain's cap while it delivers makes the count the receiver sees fall
// to the new cap and stay there (the connections above it finish their message and close);
// raising it lets the count rise again; every message is delivered exactly once.
import { afterEach, expect, test } from 'vitest';

import { type CoreConfig, MailQueueCore, MemoryStore, SmtpTransport } from '../../lib/index.js';
import { CoreLog, bindingAddress, testBody, testMessage, waitFor } from '../support/harness.js';
import { ConnectionWatch, type ConnRecord, startServer, type TestServer } from '../support/smtp_servers.js';

/** A watch that also keeps, in order, the server's open count after every accept and close. */
class TimedWatch extends ConnectionWatch {
  readonly changes: { at: number; open: number }[] = [];
  override opened(c: ConnRecord): void {
    super.opened(c);
    this.changes.push({ at: performance.now(), open: this.open() });
  }
  override closed(c: ConnRecord): void {
    super.closed(c);
    this.changes.push({ at: performance.now(), open: this.open() });
  }
  /** The most connections open at once from `from` (a time when `openAt` were open) to `to`. */
  peakBetween(from: number, to: number, openAt: number): number {
    let peak = openAt;
    for (const c of this.changes) if (c.at > from && c.at <= to) peak = Math.max(peak, c.open);
    return peak;
  }
  /** The fewest connections open at once in the same span. */
  lowBetween(from: number, to: number, openAt: number): number {
    let low = openAt;
    for (const c of this.changes) if (c.at > from && c.at <= to) low = Math.min(low, c.open);
    return low;
  }
}

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

const DOMAIN = 'slow.test';
const base: CoreConfig['global'] = {
  connectionAllocationAggressiveness: 1,
  idleTimeout: 0.2,
  delayedQueueScanInterval: 0.1,
};

test('a cap lowered while the domain delivers: the receiver sees the count fall to it and stay; raised, it rises', async () => {
  const watch = new TimedWatch();
  const server: TestServer = await startServer({ name: 's', watch, behavior: { dataDelayMs: 40 } });
  const transport = new SmtpTransport({
    routes: { [DOMAIN]: { host: '127.0.0.1', port: server.port } },
    bindings: { b0: { localAddress: bindingAddress(0), ehloName: 'b0.mta.test' } },
    timeouts: { connect: 5000, greeting: 5000, command: 5000, message: 10_000, quit: 1000 },
  });
  const core = new MailQueueCore({
    bindings: ['b0'],
    config: { global: { ...base, maxOutboundConnections: 6 } },
    transport,
    store: new MemoryStore(),
  });
  cleanup = async () => {
    await core.stop();
    core.close();
    await server.close();
  };
  const log = new CoreLog(core);
  const ids = Array.from({ length: 240 }, (_, i) => i + 1);
  for (const id of ids) await core.submit(testMessage(id, DOMAIN), testBody(id));
  core.start();
  const describe = () => ({ open: watch.open(), stats: core.stats(), done: log.final.size });

  // At the first cap, as the receiver counts.
  await waitFor(() => watch.open() === 6, 'six connections open at the receiver', 10_000, describe);

  core.configure({
    global: { ...base, maxOutboundConnections: 6 },
    domains: { [DOMAIN]: { maxOutboundConnections: 2 } },
  });
  await waitFor(() => watch.open() <= 2, 'the receiver count to fall to 2', 10_000, describe);
  const fell = performance.now();
  const openAtFall = watch.open();
  // Still delivering: the fall is the new cap at work, not the queue running dry.
  expect(ids.length - log.final.size).toBeGreaterThan(60);
  await new Promise((r) => setTimeout(r, 1000));
  const raisedAt = performance.now();
  expect(watch.peakBetween(fell, raisedAt, openAtFall), JSON.stringify(describe())).toBeLessThanOrEqual(2);
  expect(watch.peakBetween(fell, raisedAt, openAtFall), 'it delivered at the new cap').toBe(2);
  // Only the connections above the cap closed: those already closing were counted out, so the
  // count went down to 2, not past it (a session that breaks would also close; none does here).
  let configuredAt = 0; // the last time six were open, before configure()
  for (const c of watch.changes) if (c.open === 6) configuredAt = c.at;
  expect(watch.lowBetween(configuredAt, raisedAt, 6), JSON.stringify(watch.changes.slice(-40))).toBe(2);
  expect(ids.length - log.final.size).toBeGreaterThan(20);

  core.configure({
    global: { ...base, maxOutboundConnections: 6 },
    domains: { [DOMAIN]: { maxOutboundConnections: 5 } },
  });
  await waitFor(() => watch.open() === 5, 'the receiver count to rise to 5', 10_000, describe);

  await waitFor(() => log.isDone(ids), 'every message delivered', 30_000, describe);
  expect(watch.peakBetween(raisedAt, performance.now(), 2)).toBeLessThanOrEqual(5);
  expect(watch.peak()).toBe(6);
  expect(log.violations).toEqual([]);
  expect(log.bounced).toEqual([]);
  expect(log.errors).toEqual([]);
  expect(server.duplicates()).toEqual([]);
  expect(new Set(server.accepted)).toEqual(new Set(ids));
  expect(server.accepted).toHaveLength(ids.length);
  await waitFor(() => core.stats().connections === 0 && watch.open() === 0, 'every connection closed', 10_000);
  expect(core.stats()).toMatchObject({ active: 0, delayed: 0, inFlight: 0 });
  expect(core.checkInvariants()).toBe(true);
});
