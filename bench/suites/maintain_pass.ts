// Suite 3: one maintenance pass over P (domain, binding) pairs (default 25k domains x 4 bindings =
// 100k pairs), each pair with one queued message, through core.maintain(now):
//   at-limit  max_outbound_connections 1 and every pair already holds its connection: the pass
//             visits every pair (promote, expire check, goal, clip) and opens nothing
//   open-1    every pair opens one connection (grants drained into a GrantList); released, untimed, after
//             each pass
// each with no JS provider (one native call) and with one passive provider (registerLast(() => 0),
// so the pass runs domain by domain from lib/core.ts). Also the plain-TS scheduler's pass over the
// same pairs, for scale.
import { emit, gc, keep, log, median, nowNs, numArg, quick, sinceMs } from '../common.js';
import { ConnList, CoreScheduler, TsScheduler, type Scheduler } from '../scheduler.js';

const domains = numArg('domains', 25_000);
const bindings = numArg('bindings', 4);
const reps = numArg('reps', quick() ? 3 : 7);
const pairs = domains * bindings;
const NOW = Date.UTC(2026, 0, 2);

function fill(s: Scheduler): void {
  s.setNow(NOW);
  const ids = new Float64Array(1);
  const prios = new Uint8Array(1);
  let id = 1;
  for (let d = 0; d < domains; d++) {
    for (let b = 0; b < bindings; b++) {
      ids[0] = id++;
      s.enqueue(d, b, ids, prios);
    }
  }
}

// One timed pass: returns the grants (opened) and a function that releases them (untimed).
type Pass = () => { opened: number; release: () => void };

// The grants go into a reused GrantList (numbers, no object per grant), as a caller that opens
// many connections a pass would take them.
function corePass(s: CoreScheduler): Pass {
  const list = s.core.grantList();
  return () => {
    const opened = s.core.maintain(NOW, { into: list }).opened;
    return {
      opened,
      release: () => {
        for (let i = 0; i < list.length; i++) s.core.releaseConnection(list.connectionId(i));
      },
    };
  };
}

function tsPass(s: TsScheduler): Pass {
  return () => {
    const out = new ConnList();
    s.maintain(NOW, out);
    return {
      opened: out.n,
      release: () => {
        for (let i = 0; i < out.n; i++) s.release(out.a[i]);
      },
    };
  };
}

function passes(name: string, pass: Pass, scenario: 'at-limit' | 'open-1'): { nsPerPair: number; samples: number[] } {
  const samples: number[] = [];
  if (scenario === 'at-limit') {
    const first = pass(); // every pair takes its one connection, untimed, and keeps it
    if (first.opened !== pairs) throw new Error(`${name}: expected ${pairs} connections, got ${first.opened}`);
  }
  // Back-to-back passes (warm caches), as the C++ floor runs them; a GC between passes would evict
  // the core's tables from cache and roughly double the native cost per pair.
  gc();
  for (let r = 0; r < reps + 1; r++) {
    const t0 = nowNs();
    const p = pass();
    const ms = sinceMs(t0);
    const want = scenario === 'at-limit' ? 0 : pairs;
    if (p.opened !== want) throw new Error(`${name} ${scenario}: expected ${want} grants, got ${p.opened}`);
    if (r > 0) samples.push((ms * 1e6) / pairs); // the first pass warms up
    p.release();
    keep(p.opened);
  }
  return { nsPerPair: median(samples), samples };
}

const rows: { impl: string; provider: string; scenario: string; nsPerPair: number; samples: number[] }[] = [];
for (const scenario of ['at-limit', 'open-1'] as const) {
  const maxConnections = scenario === 'at-limit' ? 1 : 32;
  const serverMax = 4 * pairs;
  for (const provider of ['none', 'passive'] as const) {
    const s = new CoreScheduler(domains, bindings, { maxConnections, serverMax });
    fill(s);
    if (provider === 'passive') s.core.hooks.mailQueueMaintain.registerLast(() => 0);
    const r = passes('core', corePass(s), scenario);
    s.close();
    rows.push({ impl: 'core', provider, scenario, nsPerPair: r.nsPerPair, samples: r.samples });
    log(`  core ${scenario} provider=${provider}: ${r.nsPerPair.toFixed(0)} ns/pair`);
  }
  const t = new TsScheduler(domains, bindings, { maxConnections, serverMax });
  fill(t);
  const r = passes('ts', tsPass(t), scenario);
  t.close();
  rows.push({ impl: 'ts', provider: 'none', scenario, nsPerPair: r.nsPerPair, samples: r.samples });
  log(`  ts ${scenario}: ${r.nsPerPair.toFixed(0)} ns/pair`);
}
emit({ domains, bindings, pairs, reps, rows });
