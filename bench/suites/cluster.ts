// The cost of a cluster cap (decision 48) in a maintenance pass, and the Redis traffic it makes.
// Two cores with P (domain, binding) pairs (default 5k domains x 4 bindings), each pair with one
// queued message, passed by core.maintain(now) as in suite 3 (at-limit: every pair holds its one
// connection, the pass opens nothing; open-1: every pair opens one, released untimed after each
// pass): one with local caps only, one where every pair is also cluster-capped
// (clusterMaxOutboundConnections) through a real redis-server started here, its leases held. The
// passes of the two alternate; ns per pair is the median, and the ratio cluster / local is the
// figure (target at most 1.5). Then the lease loop's traffic: Redis commands this node sends per
// second with every pair holding a lease, at the default leaseTtl (10 s: a sync every 3.3 s).
// Last, a fleet-wide throttle (clusterOutboundThrottleConnections, decision 51) against the same
// throttle kept locally (outboundThrottleConnections): global, THROTTLE per second; every pair asks
// for one connection a pass, THROTTLE of them open, the others are refused by the throttle; each
// pass a window after the last.
import { Redis } from 'ioredis';

import { clusterState, MailQueueCore } from '../../dist/lib/index.js';
import { RedisServer } from '../../test/support/redis_server.js';
import { emit, gc, keep, log, median, nowNs, numArg, quick, sinceMs } from '../common.js';

const domains = numArg('domains', 5_000);
const bindings = numArg('bindings', 4);
const reps = numArg('reps', quick() ? 5 : 15);
const pairs = domains * bindings;
const NOW = Date.UTC(2026, 0, 2);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const THROTTLE = Math.min(5_000, pairs);

const server = await RedisServer.start();
const redis = new Redis(server.port, '127.0.0.1');
// No grace after an empty start: the bench measures the held caps, not the first lease life.
await redis.set('bench:boot', '0');

function makeCore(clustered: boolean, maxConnections: number, throttle?: 'local' | 'fleet'): MailQueueCore {
  const names = Array.from({ length: bindings }, (_, b) => `b${b}`);
  const rate = `${THROTTLE}/1`;
  const core = new MailQueueCore({
    bindings: names,
    clock: () => NOW,
    config: {
      global: {
        maxOutboundConnections: maxConnections,
        serverMaxOutboundConnections: 4 * pairs,
        ...(clustered ? { clusterMaxOutboundConnections: 1_000 } : {}),
        ...(throttle === 'local' ? { outboundThrottleConnections: rate } : {}),
        ...(throttle === 'fleet' ? { clusterOutboundThrottleConnections: rate } : {}),
      },
    },
    ...(clustered || throttle === 'fleet'
      ? { cluster: { redis, node: `bench${maxConnections}${throttle ?? ''}`, leaseTtl: 10, prefix: 'bench' } }
      : {}),
  });
  let id = 1;
  for (let d = 0; d < domains; d++)
    for (let b = 0; b < bindings; b++) core.enqueueBatch(`d${d}.bench`, names[b], Float64Array.of(id++));
  return core;
}

async function leased(core: MailQueueCore, want: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((clusterState(core)?.leasesHeld ?? 0) < want) {
    if (Date.now() > deadline) throw new Error(`only ${clusterState(core)?.leasesHeld} of ${want} leases after 60 s`);
    await sleep(50);
  }
}

function pass(core: MailQueueCore, list: ReturnType<MailQueueCore['grantList']>, expect: number, now = NOW): number {
  const t0 = nowNs();
  const opened = core.maintain(now, { into: list }).opened;
  const ns = (sinceMs(t0) * 1e6) / pairs;
  if (opened !== expect) throw new Error(`expected ${expect} grants, got ${opened}`);
  for (let i = 0; i < list.length; i++) core.releaseConnection(list.connectionId(i));
  keep(opened);
  return ns;
}

const rows: { scenario: string; localNs: number; clusterNs: number; ratio: number }[] = [];
for (const scenario of ['at-limit', 'open-1'] as const) {
  const max = scenario === 'at-limit' ? 1 : 32;
  const local = makeCore(false, max);
  const clustered = makeCore(true, max);
  // A first pass asks for leases (refused:cluster), the loop gets them.
  clustered.maintain(NOW);
  await leased(clustered, pairs);
  const lists = [local.grantList(), clustered.grantList()];
  if (scenario === 'at-limit') {
    // Every pair takes its one connection and keeps it (untimed).
    if (local.maintain(NOW).opened !== pairs || clustered.maintain(NOW).opened !== pairs)
      throw new Error('at-limit: not every pair opened its connection');
  }
  const expect = scenario === 'at-limit' ? 0 : pairs;
  const l: number[] = [];
  const c: number[] = [];
  gc();
  for (let r = 0; r <= reps; r++) {
    // Each goes first in every other round.
    const a = r % 2 === 0 ? pass(local, lists[0], expect) : 0;
    const b = pass(clustered, lists[1], expect);
    const a2 = r % 2 === 0 ? a : pass(local, lists[0], expect);
    if (r > 0) {
      l.push(a2);
      c.push(b);
    }
  }
  const row = { scenario, localNs: median(l), clusterNs: median(c), ratio: median(c) / median(l) };
  rows.push(row);
  log(
    `  ${scenario}: local ${row.localNs.toFixed(0)} ns/pair, cluster ${row.clusterNs.toFixed(0)} ns/pair, x${row.ratio.toFixed(2)}`,
  );
  local.close();
  clustered.close();
}

// The lease loop's traffic at the default leaseTtl, every pair holding one lease (the cycle's
// load: every pair with mail), over two syncs.
let core = makeCore(true, 1);
core.maintain(NOW);
await leased(core, pairs);
const c0 = clusterState(core)?.commands ?? 0;
const t0 = Date.now();
await sleep(quick() ? 7_000 : 10_000);
const commandsPerSecond = (((clusterState(core)?.commands ?? 0) - c0) * 1000) / (Date.now() - t0);
log(`  lease loop: ${commandsPerSecond.toFixed(0)} Redis commands/s for ${pairs} cluster-capped pairs (leaseTtl 10 s)`);
core.close();

// The fleet-wide throttle: its slots leased (THROTTLE of them, one Redis command a sync).
const local = makeCore(false, 32, 'local');
core = makeCore(false, 32, 'fleet');
core.maintain(NOW);
await leased(core, THROTTLE);
const lists = [local.grantList(), core.grantList()];
const l: number[] = [];
const c: number[] = [];
gc();
for (let r = 0; r <= reps; r++) {
  const now = NOW + 1000 * (r + 1); // a window after the last pass
  const a = r % 2 === 0 ? pass(local, lists[0], THROTTLE, now) : 0;
  const b = pass(core, lists[1], THROTTLE, now);
  const a2 = r % 2 === 0 ? a : pass(local, lists[0], THROTTLE, now);
  if (r > 0) {
    l.push(a2);
    c.push(b);
  }
}
const throttleRow = { scenario: 'throttle', localNs: median(l), clusterNs: median(c), ratio: median(c) / median(l) };
log(
  `  throttle ${THROTTLE}/1 s: local ${throttleRow.localNs.toFixed(0)} ns/pair, fleet-wide ${throttleRow.clusterNs.toFixed(0)} ns/pair, x${throttleRow.ratio.toFixed(2)}`,
);
local.close();
core.close();
redis.disconnect();
await server.kill();
emit({
  domains,
  bindings,
  pairs,
  reps,
  rows: [...rows, throttleRow],
  leaseTtl: 10,
  commandsPerSecond,
  throttle: THROTTLE,
});
process.exit(0);
