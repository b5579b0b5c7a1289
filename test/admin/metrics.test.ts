// The Prometheus metrics of a core that delivers to a real SMTP receiver on loopback: what a scrape
// says must match the core's own stats() and what the receiver itself counted, the busiest-domains
// figure must keep its label set bounded, and bad options are refused.
import { afterAll, expect, test } from 'vitest';

import { createMetrics, MailQueueCore, MemoryStore, SmtpTransport } from '../../lib/index.js';
import { startServer, type TestServer } from '../support/smtp_servers.js';

const closers: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c();
});

type Sample = { labels: Record<string, string | number>; value: number };
async function scrape(core: MailQueueCore): Promise<Map<string, Sample[]>> {
  const json = (await core.metrics().getMetricsAsJSON()) as unknown as { name: string; values: Sample[] }[];
  return new Map(json.map((m) => [m.name, m.values]));
}
const value = (m: Map<string, Sample[]>, name: string, labels: Record<string, string> = {}): number => {
  const rows = m.get(name) ?? [];
  const row = rows.find((r) => Object.entries(labels).every(([k, v]) => String(r.labels[k]) === v));
  return row?.value ?? Number.NaN;
};

test('a scrape agrees with stats() and with what the receiver counted', async () => {
  const srv: TestServer = await startServer({
    behavior: {
      // Every 5th message is deferred once (451), every 7th refused for good (550).
      data: (id, attempt) =>
        id % 7 === 0
          ? { code: 550, message: '550 no' }
          : id % 5 === 0 && attempt === 1
            ? { code: 451, message: '451 later' }
            : 'accept',
    },
  });
  closers.push(() => srv.close());
  const core = new MailQueueCore({
    bindings: ['b0', 'b1'],
    config: {
      global: {
        maxOutboundConnections: 2,
        retryInterval: 0.05,
        maxRetryInterval: 0.1,
        idleTimeout: 0.05,
        delayedQueueScanInterval: 0.05,
      },
    },
    transport: new SmtpTransport({ routes: { '*': { host: '127.0.0.1', port: srv.port } } }),
    store: new MemoryStore(),
  });
  closers.push(() => core.close());
  const registry = core.metrics({ topDomains: 3, topDomainsRefreshMs: 0 });
  expect(core.metrics()).toBe(registry);
  const ends: number[] = [];
  let deferred = 0;
  core.on('delivered', (e) => ends.push(e.id));
  core.on('bounce', (e) => ends.push(e.id));
  core.on('deferred', () => deferred++);
  const N = 70;
  for (let id = 1; id <= N; id++) {
    await core.submit(
      {
        id,
        domain: `d${id % 12}.test`,
        binding: id % 2 ? 'b1' : 'b0',
        envelope: { from: `id-${id}@src.test`, to: [`r@d${id % 12}.test`] },
      },
      Buffer.from(`X-Id: ${id}\r\n\r\nhello\r\n`),
    );
  }
  core.start();
  // While it delivers: the busiest-domains figure has at most topDomains + 1 labels.
  let sampled = 0;
  while (ends.length < N) {
    const m = await scrape(core);
    const domains = m.get('mqc_domain_connections') ?? [];
    expect(domains.length).toBeLessThanOrEqual(4);
    // Each domain holds at most 2 connections a binding, 2 bindings; 'other' sums the 9 others.
    for (const r of domains) expect(r.value).toBeLessThanOrEqual(r.labels.domain === 'other' ? 9 * 4 : 4);
    sampled++;
    await new Promise((r) => setTimeout(r, 5));
  }
  await core.stop();
  expect(sampled).toBeGreaterThan(0);

  const m = await scrape(core);
  const stats = core.stats();
  const refused = Array.from({ length: N }, (_, i) => i + 1).filter((id) => id % 7 === 0).length;
  // The receiver's own count of accepted messages, and the refusals it sent.
  expect(value(m, 'mqc_outcomes_total', { kind: 'delivered' })).toBe(srv.accepted.length);
  expect(srv.accepted.length).toBe(N - refused);
  expect(value(m, 'mqc_outcomes_total', { kind: 'bounced' })).toBe(refused);
  expect(value(m, 'mqc_bounces_total', { reason: 'permanent' })).toBe(refused);
  expect(value(m, 'mqc_outcomes_total', { kind: 'deferred' })).toBe(deferred);
  expect(value(m, 'mqc_deferrals_total', { class: '4xx' })).toBe(deferred);
  expect(deferred).toBeGreaterThan(0);
  // The counters the core keeps.
  expect(value(m, 'mqc_messages', { state: 'active' })).toBe(stats.active);
  expect(value(m, 'mqc_messages', { state: 'delayed' })).toBe(stats.delayed);
  expect(value(m, 'mqc_messages', { state: 'in_flight' })).toBe(stats.inFlight);
  expect(value(m, 'mqc_connections')).toBe(0);
  expect(value(m, 'mqc_connections_opened_total')).toBe(stats.opened);
  expect(value(m, 'mqc_connections_released_total')).toBe(stats.released);
  expect(stats.opened).toBeGreaterThan(0);
  expect(value(m, 'mqc_domains')).toBe(12);
  expect(value(m, 'mqc_binding_connections', { binding: 'b1' })).toBe(0);
  // Passes ran (the maintainer's) and were timed.
  const passes = (m.get('mqc_pass_duration_seconds') ?? []).find((r) => String(r.labels.le) === '+Inf');
  expect(passes?.value ?? 0).toBeGreaterThan(0);
  // The text format serves as is.
  const text = await registry.metrics();
  expect(text).toMatch(/^# HELP mqc_messages /m);
  expect(text).toMatch(/^mqc_outcomes_total\{kind="delivered"\} \d+$/m);
});

test('bad options are refused, naming them; a prefix renames every metric', async () => {
  const core = new MailQueueCore();
  closers.push(() => core.close());
  expect(() => createMetrics(core, { prefix: '1x' })).toThrow(RangeError);
  expect(() => createMetrics(core, { prefix: '1x' })).toThrow(/^options\.prefix must be a Prometheus name prefix/);
  expect(() => createMetrics(core, { topDomains: -1 })).toThrow(
    /^options\.topDomains must be an integer from 0 to 1000/,
  );
  expect(() => createMetrics(core, { topDomainsRefreshMs: 1.5 })).toThrow(/^options\.topDomainsRefreshMs/);
  expect(() => createMetrics(core, { nope: 1 } as never)).toThrow(/^options: unknown option "nope"/);
  const r = createMetrics(core, { prefix: 'mta_queue_' });
  core.enqueue({ id: 1, domain: 'x.test' });
  const text = await r.metrics();
  expect(text).toMatch(/^mta_queue_messages\{state="active"\} 1$/m);
  expect(text).not.toMatch(/^mqc_/m);
});

test('connectionsByDomain: every domain in one call, in domains() order, into a given array or a new one', () => {
  const core = new MailQueueCore({ clock: () => 1000, config: { global: { maxOutboundConnections: 3 } } });
  closers.push(() => core.close());
  core.enqueueBatch('a.test', undefined, Float64Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
  core.enqueue({ id: 11, domain: 'b.test' });
  core.enqueue({ id: 12, domain: 'c.test', nextAttempt: 60_000 });
  core.maintain(1000);
  const byDomain = core.connectionsByDomain();
  expect(core.domains()).toEqual(['a.test', 'b.test', 'c.test']);
  expect([...byDomain]).toEqual(core.domains().map((d) => core.domain(d).connections()));
  expect(byDomain[0]).toBeGreaterThan(0);
  expect(byDomain[2]).toBe(0);
  const out = new Float64Array(8).fill(-1);
  expect(core.connectionsByDomain(out)).toBe(out);
  expect([...out.subarray(0, 3)]).toEqual([...byDomain]);
  expect(core.connectionsByDomain(new Float64Array(1))).toHaveLength(3);
  expect(() => core.connectionsByDomain([0] as never)).toThrow(/^out must be a Float64Array/);
});

test('outcomes that happened before the registry was made are counted in it', async () => {
  const core = new MailQueueCore({ clock: () => 1000, config: { global: { messageExpiration: 1 } } });
  closers.push(() => core.close());
  core.enqueue({ id: 1, domain: 'x.test', expiresAt: 1500 });
  core.enqueue({ id: 2, domain: 'x.test', expiresAt: 1500 });
  core.maintain(2000); // both expire: two bounces before any registry
  const r = createMetrics(core);
  expect(await r.metrics()).toMatch(/^mqc_outcomes_total\{kind="bounced"\} 2$/m);
});

test('connection refusals by scope: what a pass wanted and the server ceiling held back', async () => {
  // 3 domains that want 2 connections each; the server allows 3 (no reserve).
  const core = new MailQueueCore({
    clock: () => 1000,
    config: {
      global: { maxOutboundConnections: 2, serverMaxOutboundConnections: 3, serverReserveOutboundConnections: 0 },
    },
  });
  closers.push(() => core.close());
  for (let i = 1; i <= 99; i++) core.enqueue({ id: i, domain: `d${i % 3}.test` });
  const zero = await scrape(core);
  for (const scope of ['pair', 'domain', 'group_domain', 'group', 'binding', 'server', 'throttle', 'suspended', 'host'])
    expect(value(zero, 'mqc_connection_refusals_total', { scope })).toBe(0);
  core.maintain(1000);
  expect(core.stats().connections).toBe(3);
  const after = await scrape(core);
  expect(value(after, 'mqc_connection_refusals_total', { scope: 'server' })).toBe(3);
  expect(value(after, 'mqc_connection_refusals_total', { scope: 'pair' })).toBe(0);
  // The next pass asks again for what is still missing: 3 more held back.
  core.maintain(1000);
  expect(value(await scrape(core), 'mqc_connection_refusals_total', { scope: 'server' })).toBe(6);
  expect(core.counters[core.counterIndex['refused:server']]).toBe(6);
});
