// The cost of the Prometheus metrics (issue 17): a core with 100k domains x 4 bindings, 1M queued
// messages and connections open (one pass granted them), scraped through core.metrics():
//   cached     a scrape while the busiest-domains figure is cached (what most scrapes are)
//   refreshed  a scrape that refreshes it (a call per domain: the one figure that walks them)
// and, from those, what a scrape every second costs with the default refresh (every 10 s): nine
// cached scrapes and one refreshed in ten seconds, as a share of one core's time.
import { createMetrics } from '../../dist/lib/admin/metrics.js';
import { MailQueueCore } from '../../dist/lib/core.js';
import { BASE_TIME, emit, log, numArg, quick } from '../common.js';

const domains = numArg('domains', quick() ? 20_000 : 100_000);
const perDomain = numArg('per-domain', 10);
const rounds = numArg('rounds', quick() ? 5 : 15);
const bindings = ['b0', 'b1', 'b2', 'b3'];

const core = new MailQueueCore({ bindings, clock: () => BASE_TIME, config: { global: { maxOutboundConnections: 2 } } });
let id = 1;
const ids = new Float64Array(perDomain);
for (let d = 0; d < domains; d++) {
  for (let i = 0; i < perDomain; i++) ids[i] = id++;
  core.enqueueBatch(`d${d}.example`, bindings[d % 4], ids);
}
const pass = core.maintain(BASE_TIME, { into: core.grantList() });
const cachedRegistry = core.metrics({ topDomainsRefreshMs: 10_000 });
const refreshRegistry = createMetrics(core, { topDomainsRefreshMs: 0 });
await cachedRegistry.metrics(); // fills the cache
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const cached: number[] = [];
const refreshed: number[] = [];
let bytes = 0;
for (let r = 0; r < rounds; r++) {
  let t0 = process.hrtime.bigint();
  bytes = (await cachedRegistry.metrics()).length;
  cached.push(ms(t0));
  t0 = process.hrtime.bigint();
  await refreshRegistry.metrics();
  refreshed.push(ms(t0));
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const c = med(cached);
const f = med(refreshed);
const result = {
  domains,
  pairs: domains * 4,
  resident: domains * perDomain,
  connections: pass.opened,
  rounds,
  scrapeCachedMs: c,
  scrapeRefreshedMs: f,
  // A scrape a second, the figure refreshed every 10 s: ms of work per second of wall time.
  perSecondMs: (9 * c + f) / 10,
  bytes,
};
log(
  `  metrics at ${domains} domains, ${pass.opened} connections: scrape ${c.toFixed(2)} ms cached, ${f.toFixed(1)} ms refreshed; ` +
    `a scrape a second costs ${result.perSecondMs.toFixed(2)} ms a second (${(result.perSecondMs / 10).toFixed(2)}% of a core)`,
);
core.close();
emit(result);
