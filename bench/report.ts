// Markdown tables from bench/results/*.json: every suite side by side with its pure-JS competitors,
// as ratios, and the issue-4 targets with how far each is met or missed.
import { type ChartBar, ratioChart } from './chart.js';
import fs from 'node:fs';
import path from 'node:path';

import type { EnvInfo } from './common.js';
import { deliverySection, type DeliveryRun } from './report_delivery.js';
import { type StoreData, storeSection } from './store_report.js';
import type { Target } from './target.js';

interface OpRow {
  op: string;
  api: string;
  rate: number;
  samples: number[];
  rme?: number;
}
interface QRun {
  variant: string;
  n: number;
  candidate: string;
  kind: string;
  rows: OpRow[];
}
interface CrossRow {
  op: string;
  note: string;
  nsPerCall: number;
  rme: number;
}
interface PassRow {
  impl: string;
  provider: string;
  scenario: string;
  nsPerPair: number;
  rounds?: number[];
}
interface CycleRun {
  impl: string;
  result: {
    rate: number;
    ms: number;
    fillMs: number;
    resident: number;
    outcomes: number;
    maxSyncMs?: number;
    ticks?: { ms: number; maintainMs: number; pullMs: number; arriveMs: number; outcomes: number; opened: number }[];
    phaseMs?: { maintain: number; pull: number; arrive: number };
  };
  ticksRun: number;
}
interface MemRun {
  impl: string;
  resident: number;
  note?: string;
  bytesPerMessage: { rss: number; heap?: number; reserved?: number; rssWithDomains?: number };
  eventLoopDelay?: { maxMs: number; p99Ms: number };
  maxSyncMs?: number;
  maxMaintainMs?: number;
  gc?: { maxPauseMs: number; maxPauseKind?: string; totalMs: number; majorCount?: number };
  result?: { rate: number };
}

interface ArrivalsPhases {
  pass: number;
  take: number;
  outcome: number;
  release: number;
  arrive: number;
  total: number;
}
interface ArrivalsRun {
  impl: string;
  mode: string;
  /** The id policy (bench/arrivals.ts IdPolicy); runs saved before it existed drew random ids. */
  ids?: string;
  round?: number;
  result: {
    rate: number;
    phasedRate: number;
    fillMs: number;
    resident: number;
    checksum: string;
    cpuRate?: number;
    phasedCpuRate?: number;
    phases: ArrivalsPhases;
    phasesCpu?: ArrivalsPhases;
    interleaved: { pass: number; conn: number; arrive: number; total: number };
    interleavedCpu?: { pass: number; conn: number; arrive: number; total: number };
    perRound: { grants: number; busy: number; outcomes: number; arrived: number };
  };
}
interface ArrivalsMicroRun {
  ids?: string;
  round?: number;
  result: {
    n: number;
    median: Record<string, Record<string, number>>;
    medianCpu?: Record<string, Record<string, number>>;
  };
}

export interface Results {
  env: EnvInfo;
  quick: boolean;
  crossing?: { rows: CrossRow[] };
  queueOps?: QRun[];
  cycle?: CycleRun[];
  pass?: { js: { rows: PassRow[] } | null; cpp: { rows: PassRow[] } | null };
  memory?: MemRun[];
  arrivals?: { cycle: ArrivalsRun[]; micro: ArrivalsMicroRun[] };
  metrics?: MetricsRun;
  delivery?: DeliveryRun[];
  store?: StoreData;
}

interface MetricsRun {
  domains: number;
  connections: number;
  scrapeCachedMs: number;
  scrapeRefreshedMs: number;
  perSecondMs: number;
}

interface SuiteFile {
  suite: string;
  quick: boolean;
  env: EnvInfo;
  data: unknown;
}

/** Every suite's latest JSON (bench/results/<suite>.json). */
export function loadResults(dir: string): Results | null {
  const read = (s: string): SuiteFile | null => {
    const f = path.join(dir, `${s}.json`);
    return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as SuiteFile) : null;
  };
  const files = [
    'crossing',
    'queue-ops',
    'cycle',
    'maintain-pass',
    'memory',
    'arrivals',
    'metrics',
    'delivery',
    'store',
  ].map(read);
  const first = files.find((f) => f !== null);
  if (!first) return null;
  const [crossing, q, cycle, pass, memory, arrivals, metrics, delivery, store] = files;
  return {
    env: first.env,
    quick: files.some((f) => f?.quick),
    crossing: crossing?.data as Results['crossing'],
    queueOps: q?.data as QRun[] | undefined,
    cycle: cycle?.data as CycleRun[] | undefined,
    pass: pass?.data as Results['pass'],
    memory: memory?.data as MemRun[] | undefined,
    arrivals: arrivals?.data as Results['arrivals'],
    metrics: metrics?.data as MetricsRun | undefined,
    delivery: delivery?.data as DeliveryRun[] | undefined,
    store: store?.data as StoreData | undefined,
  };
}

const fmt = (x: number | undefined): string => {
  if (x === undefined || !Number.isFinite(x)) return 'n/a';
  if (x >= 1e6) return `${(x / 1e6).toFixed(x >= 1e8 ? 0 : x >= 1e7 ? 1 : 2)} M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(0)} k`;
  return x.toFixed(0);
};
const ratio = (x: number | undefined, y: number | undefined): string =>
  x === undefined || y === undefined || !(y > 0) ? 'n/a' : `${(x / y).toFixed(x / y >= 10 ? 0 : 2)}x`;
const sizeName = (n: number): string => (n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`);

const JS = ['js-array', 'flatqueue', 'js-sdsl', 'sorted-btree'];
const SORTED = ['js-sdsl', 'sorted-btree'];
const OPS = [
  'enqueue',
  'enqueue 1/call',
  'build from empty',
  'pop 1',
  'pop 16',
  'pop 256',
  'take 1',
  'take 16',
  'take 256',
  'cancel',
  'cancel 1/call',
  'mixed B=16',
];
/** The JS operation a native-only row is compared with. */
const jsOpFor = (op: string): string =>
  op.endsWith(' 1/call') ? op.slice(0, -7) : op.startsWith('take') ? op.replace('take', 'pop') : op;

function rateOf(runs: QRun[], variant: string, n: number, cand: string, op: string): number | undefined {
  return runs.find((r) => r.variant === variant && r.n === n && r.candidate === cand)?.rows.find((x) => x.op === op)
    ?.rate;
}

function best(
  runs: QRun[],
  variant: string,
  n: number,
  names: string[],
  op: string,
): { name: string; rate: number } | undefined {
  let b: { name: string; rate: number } | undefined;
  for (const c of names) {
    const r = rateOf(runs, variant, n, c, op);
    if (r !== undefined && (!b || r > b.rate)) b = { name: c, rate: r };
  }
  return b;
}

export function report(res: Results | null): string {
  return reportWithChart(res).markdown;
}

/** The summary (markdown) and the chart of its comparisons with plain JS (SVG, bench/chart.ts). */
export function reportWithChart(res: Results | null): { markdown: string; svg: string | undefined } {
  if (!res) return { markdown: 'no results', svg: undefined };
  const out: string[] = [];
  const targets: Target[] = [];
  const e = res.env;
  out.push(`# mail-queue-core benchmarks${res.quick ? ' (quick run)' : ''}`);
  out.push('');
  out.push(
    `Node ${e.node} (V8 ${e.v8}), ${e.cpu} x${e.cores}, ${e.memGiB} GiB, ${e.platform}; commit ${e.commit}` +
      `${e.dirty ? ' with uncommitted lib/ or native/ changes' : ''}; addon built ${e.addonBuilt ?? 'n/a'}; ${e.date}.`,
  );
  out.push(
    'Rates are elements (messages) per second, best of the repetitions (the machine is shared; interference only slows a run down); ratios compare within this one run.',
  );

  if (res.arrivals && (res.arrivals.cycle.length || res.arrivals.micro.length))
    for (const ids of ARRIVAL_ID_POLICIES) {
      const pick = <T extends { ids?: string }>(xs: T[]) => xs.filter((r) => (r.ids ?? 'random') === ids);
      const part = { cycle: pick(res.arrivals.cycle), micro: pick(res.arrivals.micro) };
      if (part.cycle.length || part.micro.length) arrivalsSection(part, ids, out, targets);
    }

  if (res.metrics) {
    const m = res.metrics;
    out.push(
      '',
      `## Metrics: a scrape of core.metrics() at ${fmt(m.domains)} domains (${fmt(m.connections)} connections open)`,
      '',
      '| scrape, busiest domains cached | scrape that refreshes them | a scrape a second, refreshed every 10 s |',
      '|---:|---:|---:|',
      `| ${m.scrapeCachedMs.toFixed(2)} ms | ${m.scrapeRefreshedMs.toFixed(1)} ms | ${m.perSecondMs.toFixed(2)} ms a second (${(m.perSecondMs / 10).toFixed(2)}% of a core) |`,
    );
  }

  if (res.crossing) {
    out.push(
      '',
      '## Crossing floor (ns per call, Benchmark.js)',
      '',
      '| call | ns/call | ±% | what |',
      '|---|---:|---:|---|',
    );
    for (const r of res.crossing.rows)
      out.push(`| ${r.op} | ${r.nsPerCall.toFixed(1)} | ${r.rme.toFixed(1)} | ${r.note} |`);
  }

  const q = res.queueOps;
  if (q?.length) {
    const sizes = [...new Set(q.map((r) => r.n))].sort((a, b) => a - b);
    const cands = [...JS, 'core', 'native-raw', 'cpp'].filter((c) => q.some((r) => r.candidate === c));
    const top = Math.max(...sizes);
    out.push('', '## 1. Queue operations');
    out.push(
      '',
      'APIs: `core` = the public MailQueueCore API; `native-raw` = the raw binding of lib/native.ts; `cpp` = mqc::Core in C++ with no JS crossing.',
      'Native `pop k` = takeInto(k) + one settleMany() of the ids taken (the JS structures pop and drop the id from their index, which is the same end state);',
      '`take k` = takeInto alone (messages left in flight), compared with the JS pop of the same k.',
      'Enqueue: prio = enqueueBatch in chunks of 256; ts = enqueueBatch in chunks of 256 with one next-attempt time per message (nextAttempts); `enqueue 1/call` = one core.enqueue({id, domain, priority}) per message.',
      'Cancel: `cancel` = core.cancelMany(ids) in chunks of 256 (the JS structures cancel one id at a time: a loop is their batch); `cancel 1/call` = one core.cancel(id) per message.',
      'Every JS structure keeps an id index (Map) for cancel. Mixed = pop 16 + re-insert 16 with fresh keys (32 element ops a step), Benchmark.js.',
      'Each structure holds N throughout: every timed phase handles M = N/4 messages and is undone untimed (pops and takes refilled, cancels rebuilt); `enqueue` is those refills (M into N - M resident), `build from empty` the first fill.',
    );
    const coreApi = q.find((r) => r.candidate === 'core')?.rows;
    if (coreApi) {
      out.push('', '| op | API used by `core` |', '|---|---|');
      const seen = new Set<string>();
      for (const r of coreApi) {
        const op = r.op.replace(/ \d+$/, ' k');
        if (seen.has(op)) continue;
        seen.add(op);
        out.push(`| ${op} | ${r.api} |`);
      }
    }
    for (const variant of ['prio', 'ts']) {
      for (const n of sizes) {
        const runs = q.filter((r) => r.variant === variant && r.n === n);
        if (!runs.length) continue;
        out.push(
          '',
          `### ${variant === 'prio' ? 'FIFO per priority' : 'next-attempt time'} key, ${sizeName(n)} resident`,
          '',
        );
        out.push(
          `| op | ${cands.join(' | ')} | best JS | core ÷ best JS | best sorted JS | core ÷ best sorted | lib cost (raw ÷ core) | cpp ÷ core |`,
        );
        out.push(`|---|${cands.map(() => '---:').join('|')}|---|---:|---|---:|---:|---:|`);
        for (const op of OPS) {
          const vals = cands.map((c) => rateOf(q, variant, n, c, op));
          if (vals.every((v) => v === undefined)) continue;
          const jop = jsOpFor(op);
          const bj = best(q, variant, n, JS, jop);
          const bs = best(q, variant, n, SORTED, jop);
          const core = rateOf(q, variant, n, 'core', op);
          const raw = rateOf(q, variant, n, 'native-raw', op);
          const cp = rateOf(q, variant, n, 'cpp', op);
          out.push(
            `| ${op} | ${vals.map(fmt).join(' | ')} | ${bj ? `${bj.name}${jop !== op ? ` (${jop})` : ''}` : 'n/a'} | ${ratio(core, bj?.rate)} | ` +
              `${bs?.name ?? 'n/a'} | ${ratio(core, bs?.rate)} | ${ratio(raw, core)} | ${ratio(cp, core)} |`,
          );
          if (
            n === top &&
            core !== undefined &&
            !op.startsWith('take') &&
            !op.endsWith(' 1/call') &&
            op !== 'build from empty'
          ) {
            const label = `queue ${variant} ${op} @${sizeName(n)}`;
            if (bj)
              targets.push({
                what: `${label} vs best JS (${bj.name})`,
                chart: [
                  {
                    group: 'Queue operations at 1M (vs the best JS structure)',
                    label: `${variant} ${op} (vs ${bj.name})`,
                    ratio: core / bj.rate,
                    goal: 1,
                  },
                ],
                goal: '>= 1x',
                got: ratio(core, bj.rate),
                met: core >= bj.rate,
                margin: core >= bj.rate ? '' : `needs ${(bj.rate / core).toFixed(2)}x faster`,
              });
            if (bs)
              targets.push({
                what: `${label} vs best sorted (${bs.name})`,
                goal: '>= 3x',
                got: ratio(core, bs.rate),
                met: core >= 3 * bs.rate,
                margin: core >= 3 * bs.rate ? '' : `needs ${((3 * bs.rate) / core).toFixed(2)}x faster`,
              });
            if (cp !== undefined)
              targets.push({
                what: `${label} vs C++ floor`,
                goal: 'cpp ÷ core <= 1.5',
                got: ratio(cp, core),
                met: cp / core <= 1.5,
                margin: cp / core <= 1.5 ? '' : `${(cp / core / 1.5).toFixed(2)}x over`,
              });
          }
        }
      }
    }
  }

  if (q?.length) {
    out.push(
      '',
      '### Derived: what settling costs (ns per message = 1e9/pop k - 1e9/take k)',
      '',
      '| key | resident | k | core | native-raw | cpp |',
      '|---|---|---:|---:|---:|---:|',
    );
    const sizes = [...new Set(q.map((r) => r.n))].sort((a, b) => a - b);
    for (const variant of ['prio', 'ts']) {
      for (const n of sizes) {
        for (const k of [1, 16]) {
          const cost = (c: string) => {
            const p = rateOf(q, variant, n, c, `pop ${k}`);
            const t = rateOf(q, variant, n, c, `take ${k}`);
            return p && t ? (1e9 / p - 1e9 / t).toFixed(0) : 'n/a';
          };
          out.push(`| ${variant} | ${sizeName(n)} | ${k} | ${cost('core')} | ${cost('native-raw')} | ${cost('cpp')} |`);
        }
      }
    }
  }

  if (res.cycle?.length) {
    out.push(
      '',
      '## 2. Scheduler cycle (1M resident, 10k domains x 4 bindings)',
      '',
      'Per tick (one simulated minute): maintain(now) (due delayed mail promoted, connections granted under the default limits: 32 per pair, 20000 server max + 200 reserve);',
      'every open connection pulls up to 4 batches of 16 (takeFor(connectionId, out): its lease names the pair); each batch ends in one settleMany() (the 90% delivered) and one deferMany(now + 5 min) (the 10% transient failures); a connection closes when its queue runs dry or after 16 batches;',
      "arrivals replace the delivered mail in chunks of 16 (enqueueBatch, by the domain's DomainRecord once it exists) to random (domain, binding) pairs. Messages/s = outcomes / wall time of the timed ticks.",
      '',
      '| impl | messages/s | ms/tick | maintain ms/tick | pull ms/tick | arrive ms/tick | outcomes/tick | fill msg/s |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    );
    const rate: Record<string, number> = {};
    // Each implementation's best round (the runs of one round are interleaved with the others').
    const best = new Map<string, CycleRun>();
    const samples = new Map<string, number[]>();
    for (const r of res.cycle) {
      if (!best.has(r.impl) || r.result.rate > best.get(r.impl)!.result.rate) best.set(r.impl, r);
      samples.set(r.impl, [...(samples.get(r.impl) ?? []), r.result.rate]);
    }
    for (const r of best.values()) {
      const t = r.result;
      const nt = r.ticksRun;
      const ph = t.ticks
        ? {
            maintain: t.ticks.reduce((a, x) => a + x.maintainMs, 0),
            pull: t.ticks.reduce((a, x) => a + x.pullMs, 0),
            arrive: t.ticks.reduce((a, x) => a + x.arriveMs, 0),
          }
        : t.phaseMs!;
      rate[r.impl] = t.rate;
      const name = r.impl === 'core' ? 'core (public API)' : r.impl === 'ts' ? 'plain TypeScript' : 'C++ (no JS)';
      out.push(
        `| ${name} | ${fmt(t.rate)} | ${(t.ms / nt).toFixed(1)} | ${(ph.maintain / nt).toFixed(1)} | ${(ph.pull / nt).toFixed(1)} | ${(ph.arrive / nt).toFixed(1)} | ${fmt(t.outcomes / nt)} | ${fmt(t.resident / (t.fillMs / 1000))} |`,
      );
    }
    const rounds = Math.max(...[...samples.values()].map((s) => s.length));
    if (rounds > 1) {
      out.push(
        '',
        `Best of ${rounds} interleaved rounds; every round's messages/s: ${[...samples].map(([impl, s]) => `${impl} ${s.map(fmt).join(', ')}`).join('; ')}.`,
      );
    }
    out.push('', `core ÷ TS: ${ratio(rate.core, rate.ts)}; C++ ÷ core: ${ratio(rate.cpp, rate.core)}.`);
    if (rate.core && rate.ts)
      targets.push({
        what: 'scheduler cycle vs TS cycle',
        chart: [
          {
            group: 'Scheduler cycle',
            label: 'batched cycle vs the TypeScript cycle',
            ratio: rate.core / rate.ts,
            goal: 3,
          },
        ],
        goal: '>= 3x',
        got: ratio(rate.core, rate.ts),
        met: rate.core >= 3 * rate.ts,
        margin: rate.core >= 3 * rate.ts ? '' : `needs ${((3 * rate.ts) / rate.core).toFixed(2)}x faster`,
      });
    if (rate.core && rate.cpp)
      targets.push({
        what: 'scheduler cycle vs C++ floor',
        goal: 'cpp ÷ core <= 1.5',
        got: ratio(rate.cpp, rate.core),
        met: rate.cpp / rate.core <= 1.5,
        margin: rate.cpp / rate.core <= 1.5 ? '' : `${(rate.cpp / rate.core / 1.5).toFixed(2)}x over`,
      });
  }

  if (res.pass) {
    const rows = [...(res.pass.js?.rows ?? []), ...(res.pass.cpp?.rows ?? [])];
    out.push(
      '',
      '## 3. Maintenance pass over 100k (domain, binding) pairs (ns per pair)',
      '',
      "`at-limit`: every pair holds its one allowed connection, the pass visits each pair and opens nothing (the steady state). `open-1`: every pair opens one connection, grants drained into a GrantList (core.maintain(now, { into }); released untimed between passes). Each cell is the median of a run's passes; the JS suite and the C++ floor run in interleaved rounds and each cell takes its best round (what the provider adds: the median of the rounds' differences, each within one round).",
      '',
      '| scenario | core, no provider | core, one passive provider | added by the provider | plain TS | C++ (no JS) |',
      '|---|---:|---:|---:|---:|---:|',
    );
    for (const sc of ['at-limit', 'open-1']) {
      const row = (impl: string, provider: string) =>
        rows.find((r) => r.impl === impl && r.provider === provider && r.scenario === sc);
      const get = (impl: string, provider: string) => row(impl, provider)?.nsPerPair;
      const none = get('core', 'none');
      const pas = get('core', 'passive');
      const ts = get('ts', 'none');
      const c = get('cpp', 'none');
      // What the provider adds, within each round (the two cells' best rounds may differ): the
      // median of the rounds' differences.
      const rn = row('core', 'none')?.rounds;
      const rp = row('core', 'passive')?.rounds;
      const diffs = rn && rp && rn.length === rp.length ? rn.map((x, i) => rp[i] - x).sort((a, b) => a - b) : undefined;
      const added = diffs
        ? diffs[(diffs.length - 1) >> 1]
        : none !== undefined && pas !== undefined
          ? pas - none
          : undefined;
      const f = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(0));
      out.push(`| ${sc} | ${f(none)} | ${f(pas)} | ${f(added)} | ${f(ts)} | ${f(c)} |`);
      if (none !== undefined)
        targets.push({
          what: `maintenance pass ${sc}, no JS provider`,
          goal: '< 100 ns/pair',
          got: `${none.toFixed(0)} ns`,
          met: none < 100,
          margin: none < 100 ? '' : `${(none / 100).toFixed(2)}x over`,
        });
      if (added !== undefined)
        targets.push({
          what: `maintenance pass ${sc}, added by one passive provider`,
          goal: '< 300 ns/pair',
          got: `${added.toFixed(0)} ns`,
          met: added < 300,
          margin: added < 300 ? '' : `${(added / 300).toFixed(2)}x over`,
        });
      if (none !== undefined && c !== undefined)
        targets.push({
          what: `maintenance pass ${sc} vs C++ floor`,
          goal: 'core ÷ cpp time <= 1.5',
          got: ratio(none, c),
          met: none / c <= 1.5,
          margin: none / c <= 1.5 ? '' : `${(none / c / 1.5).toFixed(2)}x over`,
        });
    }
  }

  if (res.memory?.length) {
    out.push(
      '',
      '## 4. Memory and pauses, 5M resident (10k domains x 4 bindings x 125)',
      '',
      'Bytes per message = (after fill - before) / messages, after forced GC. Pauses while the cycle runs (the driver yields to the event loop between phases, every 256 connections or arrival chunks or 256 messages pulled or arrived, and between maintenance slices of at most 250 due domains and 500 connections opened: core.maintain(now, { maxDomains: 250, maxGrants: 500, into }) and the same slicing in the TS cycle):',
      'worst event-loop delay from perf_hooks.monitorEventLoopDelay (resolution 1 ms), the longest synchronous stretch between yields, and the longest GC pause, all over the timed ticks (after the warm-up ticks); the driver holds connections as slot numbers in a typed array for both implementations (no driver object per connection).',
      '',
      '| impl | RSS B/msg | heap B/msg | worst event-loop delay ms | p99 ms | longest sync stretch ms | longest maintain() call ms | longest GC pause ms | cycle msg/s |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    const by: Record<string, MemRun> = {};
    for (const m of res.memory) {
      const f = (x: number | undefined, d = 1) => (x === undefined ? 'n/a' : x.toFixed(d));
      const name =
        m.impl === 'cpp'
          ? `C++ (no JS)${m.note ? `, ${m.note}` : ''}`
          : m.impl === 'core'
            ? 'core (public API)'
            : 'plain TypeScript';
      if (!m.note) by[m.impl] = m;
      out.push(
        `| ${name} | ${f(m.bytesPerMessage.rss)}${m.bytesPerMessage.reserved ? ` (reserved ${f(m.bytesPerMessage.reserved)})` : ''} | ${f(m.bytesPerMessage.heap)} | ` +
          `${f(m.eventLoopDelay?.maxMs)} | ${f(m.eventLoopDelay?.p99Ms)} | ${f(m.maxSyncMs)} | ${f(m.maxMaintainMs)} | ${f(m.gc?.maxPauseMs)}${m.gc?.maxPauseKind ? ` (${m.gc.maxPauseKind})` : ''} | ${m.result ? fmt(m.result.rate) : 'n/a'} |`,
      );
    }
    const c = by.core;
    const t = by.ts;
    if (c) {
      const b = c.bytesPerMessage.rss;
      targets.push({
        what: 'memory per resident message (RSS)',
        goal: '<= 48 B',
        got: `${b.toFixed(1)} B`,
        met: b <= 48,
        margin: b <= 48 ? '' : `${(b / 48).toFixed(2)}x over`,
      });
      if (t) {
        const tb = t.bytesPerMessage.rss;
        targets.push({
          what: 'memory vs TS cycle',
          goal: '<= 1/3 of TS',
          got: `${(b / tb).toFixed(2)} of TS (${tb.toFixed(0)} B)`,
          met: b <= tb / 3,
          margin: b <= tb / 3 ? '' : `${((3 * b) / tb).toFixed(2)}x over`,
        });
        const cs = c.eventLoopDelay?.maxMs;
        const ts = t.eventLoopDelay?.maxMs;
        if (cs !== undefined && ts !== undefined)
          targets.push({
            what: 'worst event-loop stall vs TS cycle',
            goal: '<= 1/10 of TS',
            got: `${cs.toFixed(1)} ms vs ${ts.toFixed(1)} ms (${(cs / ts).toFixed(2)})`,
            met: cs <= ts / 10,
            margin: cs <= ts / 10 ? '' : `${((10 * cs) / ts).toFixed(2)}x over`,
          });
      }
    }
  }

  if (res.delivery?.length) deliverySection(res.delivery, out, targets);
  if (res.store) {
    const st = storeSection(res.store);
    out.push(...st.lines);
    targets.push(...st.targets);
  }

  if (targets.length) {
    out.push(
      '',
      '## Targets (issues 4, 14, 19 and 20)',
      '',
      '| target | goal | measured | met | miss |',
      '|---|---|---|---|---|',
    );
    for (const t of targets)
      out.push(`| ${t.what} | ${t.goal} | ${t.got} | ${t.met ? 'yes' : '**no**'} | ${t.margin} |`);
    const met = targets.filter((t) => t.met).length;
    out.push('', `${met} of ${targets.length} targets met.`);
  }
  const bars = targets.flatMap((t) => t.chart ?? []);
  const svg = bars.length
    ? ratioChart(
        bars,
        `mail-queue-core vs plain JavaScript (commit ${res.env.commit}${res.quick ? ', quick run' : ''})`,
      )
    : undefined;
  return { markdown: out.join('\n'), svg };
}

const ARRIVAL_IMPLS: [string, string, string][] = [
  ['plain', 'enqueue', 'plain JS (arrays per priority, Map, typed-array heap)'],
  ['core', 'enqueue', 'core, one `enqueue({ id, domain, binding })` a message'],
  ['core', 'batched', 'core, fastest arrival path (`enqueueMany` of the round, `arriveFast`)'],
];

/** The id policies of the arrivals suite, headline first: 'rising' is how an MTA allocates ids (a
 *  counter, so each new id is above every id before it), 'random' the unfriendly case (uniform over
 *  53 bits: no arrival can be staged, every one crosses on its own). */
const ARRIVAL_ID_POLICIES = ['rising', 'random'] as const;
const ID_POLICY_WORDS: Record<string, string> = {
  rising: "rising ids (an MTA's counter: every new id above every id before it; the headline)",
  random: 'random ids (uniform over 53 bits: no arrival is staged, each crosses on its own)',
};

/** Section 0: issue 14's MTA cycle (bench/arrivals.ts) and its single operations, for one id policy. */
function arrivalsSection(a: NonNullable<Results['arrivals']>, ids: string, out: string[], targets: Target[]): void {
  const tag = ` (${ids} ids) (issue 14)`;
  const key = (r: { impl: string; mode: string }) => `${r.impl}/${r.mode}`;
  const bestBy = (f: (r: ArrivalsRun) => number) => {
    const m = new Map<string, ArrivalsRun>();
    for (const r of a.cycle) if (!m.has(key(r)) || f(r) > f(m.get(key(r))!)) m.set(key(r), r);
    return m;
  };
  const best = bestBy((r) => r.result.rate);
  const bestPh = bestBy((r) => r.result.phasedRate);
  const f1 = (x: number | undefined, d = 1) => (x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
  out.push(
    '',
    `## 0${ids === 'rising' ? '' : 'b'}. MTA cycle of issue 14 (1M resident, 10k domains x 4 bindings, 5% priority 1), ${ID_POLICY_WORDS[ids] ?? ids}`,
    '',
    'Each round the simulated clock advances 1 s; one default maintain(now, { into: GrantList }) pass (core defaults: 32 connections a pair, aggressiveness 0.3, 20000 server max + 200 reserve);',
    'every grant takes one batch of up to 64 by its connection id (`takeFor`), 90% of them delivered (one `settleMany`) and 10% deferred by 1-30 s (one `deferMany`, one time a batch), and the connection is released after its batch;',
    'every delivered message is replaced by a new one at a uniformly random (domain, binding). Messages/s = outcomes (delivered + deferred) / wall time of the timed rounds.',
    "Plain JS (issue 14's baseline, bench/arrivals.ts): per pair one array of ids per priority with a head index, one Map id -> pair, one binary heap over typed arrays for the delayed queue (due entries promoted before each pass), the core's goal curve, limits and rotations;",
    'it keeps no expiry, attempts or message state and trusts its caller (settle/defer of an id not in flight, a duplicate id), which the core checks.',
    "Headline: interleaved rounds (take, settle/defer, release one grant after the other). Phases: separate rounds that run each phase as its own loop over the round's grants (batches held in a staging buffer), so each can be timed.",
    '',
  );
  if (a.cycle.length) {
    out.push(
      '| implementation | messages/s | messages per CPU-second | ms/round | pass ms | connections ms (take + settle/defer + release) | arrivals ms | grants/round | grants that took mail | outcomes/round | fill msg/s |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const [impl, mode, label] of ARRIVAL_IMPLS) {
      const r = best.get(`${impl}/${mode}`);
      if (!r) continue;
      const t = r.result;
      out.push(
        `| ${label} | ${fmt(t.rate)} | ${fmt(t.cpuRate)} | ${f1(t.interleaved.total)} | ${f1(t.interleaved.pass)} | ${f1(t.interleaved.conn)} | ${f1(t.interleaved.arrive)} | ` +
          `${fmt(t.perRound.grants)} | ${fmt(t.perRound.busy)} | ${fmt(t.perRound.outcomes)} | ${fmt(t.resident / (t.fillMs / 1000))} |`,
      );
    }
    const rounds = Math.max(...[...new Set(a.cycle.map((r) => r.round ?? 0))].map((x) => x + 1));
    if (rounds > 1) {
      const by = new Map<string, number[]>();
      for (const r of a.cycle) by.set(key(r), [...(by.get(key(r)) ?? []), r.result.rate]);
      out.push(
        '',
        `Best of ${rounds} interleaved rounds (one child process each); every round's messages/s: ${[...by].map(([k, xs]) => `${k} ${xs.map(fmt).join(', ')}`).join('; ')}.`,
      );
    }
    const sums = [...new Set(a.cycle.map((r) => r.result.checksum))];
    out.push(
      '',
      sums.length === 1
        ? `Same decisions: every implementation and arrival mode made the same grants, batches and outcomes in every round (checksum ${sums[0]}).`
        : `**Decisions differ** between implementations (checksums ${a.cycle.map((r) => `${key(r)} ${r.result.checksum}`).join(', ')}): the plain scheduler does not mirror the core's pass.`,
    );

    // Per phase: wall time, then CPU time (on a shared machine the CPU time leaves out the waits
    // for a core that wall time counts), each implementation's best phased round by that clock.
    const bestPhCpu = bestBy((r) => r.result.phasedCpuRate ?? 0);
    for (const cpu of [false, true]) {
      const pick = (impl: string, mode: string) => (cpu ? bestPhCpu : bestPh).get(`${impl}/${mode}`)?.result;
      const phases = (t: ArrivalsRun['result']) => (cpu ? t.phasesCpu : t.phases);
      if (cpu && !a.cycle.some((r) => r.result.phasesCpu)) break;
      out.push(
        '',
        cpu
          ? "The same in CPU time (process.cpuUsage, all threads of the process; each implementation's best phased round by CPU time):"
          : "Per phase (wall ms a round, phased rounds, each implementation's best phased round; ns a grant for take and release, ns a message taken for settle/defer, ns a message arrived for arrivals):",
        '',
        `| implementation | pass | take | settle/defer | release | arrivals | total ms | messages/${cpu ? 'CPU-' : ''}s | take ns/grant | settle/defer ns/msg | release ns/grant | arrival ns/msg |`,
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      );
      for (const [impl, mode, label] of ARRIVAL_IMPLS) {
        const t = pick(impl, mode);
        if (!t || !phases(t)) continue;
        const p = phases(t)!;
        const g = t.perRound.grants;
        const o = t.perRound.outcomes;
        const ar = t.perRound.arrived;
        out.push(
          `| ${label} | ${f1(p.pass, 2)} | ${f1(p.take, 2)} | ${f1(p.outcome, 2)} | ${f1(p.release, 2)} | ${f1(p.arrive, 2)} | ${f1(p.total, 2)} | ${fmt(cpu ? t.phasedCpuRate : t.phasedRate)} | ` +
            `${f1((p.take * 1e6) / g, 0)} | ${f1((p.outcome * 1e6) / o, 0)} | ${f1((p.release * 1e6) / g, 0)} | ${f1((p.arrive * 1e6) / ar, 0)} |`,
        );
      }
      const pl = pick('plain', 'enqueue');
      for (const mode of ['enqueue', 'batched']) {
        const c = pick('core', mode);
        if (!pl || !c || !phases(pl) || !phases(c)) continue;
        const q = (x: number, y: number) => (y > 0 ? `${(x / y).toFixed(2)}x` : 'n/a');
        const P = phases(c)!;
        const L = phases(pl)!;
        out.push(
          `| core (${mode}) time ÷ plain JS time | ${q(P.pass, L.pass)} | ${q(P.take, L.take)} | ${q(P.outcome, L.outcome)} | ${q(P.release, L.release)} | ${q(P.arrive, L.arrive)} | ${q(P.total, L.total)} | | | | | |`,
        );
      }
    }

    const plain = best.get('plain/enqueue')?.result.rate;
    const one = best.get('core/enqueue')?.result.rate;
    const fast = best.get('core/batched')?.result.rate;
    const cpuOf = (k: string) => bestBy((r) => r.result.cpuRate ?? 0).get(k)?.result.cpuRate;
    const [pc, oc, fc] = [cpuOf('plain/enqueue'), cpuOf('core/enqueue'), cpuOf('core/batched')];
    out.push(
      '',
      `core ÷ plain JS (best rounds, wall time): one enqueue a message ${ratio(one, plain)}, fastest arrival path ${ratio(fast, plain)}; ` +
        `in CPU time (best rounds by CPU time): ${ratio(oc, pc)} and ${ratio(fc, pc)}.`,
    );
    if (plain && one)
      targets.push({
        what: `MTA cycle, one enqueue a message (core ÷ plain JS)${tag}`,
        chart: [{ group: `MTA cycle${tag}`, label: 'one enqueue a message', ratio: one / plain, goal: 2 }],
        goal: '>= 2x',
        got: `${ratio(one, plain)} (CPU time ${ratio(oc, pc)})`,
        met: one >= 2 * plain,
        margin: one >= 2 * plain ? '' : `needs ${((2 * plain) / one).toFixed(2)}x faster`,
      });
    if (plain && fast)
      targets.push({
        what: `MTA cycle, fastest arrival path (core ÷ plain JS)${tag}`,
        chart: [{ group: `MTA cycle${tag}`, label: 'fastest arrival path', ratio: fast / plain, goal: 3 }],
        goal: '>= 3x',
        got: `${ratio(fast, plain)} (CPU time ${ratio(fc, pc)})`,
        met: fast >= 3 * plain,
        margin: fast >= 3 * plain ? '' : `needs ${((3 * plain) / fast).toFixed(2)}x faster`,
      });
  }

  if (a.micro.length) {
    // Per op and implementation: the best (lowest) of the rounds' medians.
    const ops = ['enqueue', 'settle', 'defer'];
    const bestNs = (op: string, impl: string, cpu = false): number | undefined => {
      const xs = a.micro
        .map((m) => (cpu ? m.result.medianCpu : m.result.median)?.[op]?.[impl])
        .filter((x): x is number => x !== undefined);
      return xs.length ? Math.min(...xs) : undefined;
    };
    const n = a.micro[0].result.n;
    out.push(
      '',
      `Single operations at 1M resident on random pairs (ns an operation; ${n} operations a sample, both implementations in one process, interleaved, a full GC before each sample; each cell the best round's median of ${a.micro.length} round(s)):`,
      'enqueue = core.enqueue({ id, domain, binding }) vs a name lookup, an array push and a Map.set; settle = core.settle(id) vs Map.delete of a message taken into flight (untimed) from a random pair, in random order; defer = core.defer(id, now + 1-30 s) vs a Map.get and a heap push.',
      '',
      '| op | core ns | plain JS ns | plain ÷ core | core cheaper | core CPU ns | plain JS CPU ns | plain ÷ core, CPU |',
      '|---|---:|---:|---:|---|---:|---:|---:|',
    );
    const got: string[] = [];
    const bars: ChartBar[] = [];
    let allMet = true;
    let any = false;
    for (const op of ops) {
      const c = bestNs(op, 'core');
      const p = bestNs(op, 'plain');
      if (c === undefined || p === undefined) continue;
      any = true;
      const met = c < p;
      allMet &&= met;
      got.push(`${op} ${(p / c).toFixed(2)}x`);
      bars.push({ group: `MTA cycle${tag}`, label: `one ${op} at 1M, random pair (time)`, ratio: p / c, goal: 1 });
      const cc = bestNs(op, 'core', true);
      const pp = bestNs(op, 'plain', true);
      out.push(
        `| ${op} | ${c.toFixed(0)} | ${p.toFixed(0)} | ${(p / c).toFixed(2)}x | ${met ? 'yes' : '**no**'} | ` +
          `${cc === undefined ? 'n/a' : cc.toFixed(0)} | ${pp === undefined ? 'n/a' : pp.toFixed(0)} | ${cc && pp ? `${(pp / cc).toFixed(2)}x` : 'n/a'} |`,
      );
    }
    if (any) {
      targets.push({
        what: `one enqueue / settle / defer at 1M, random pair (plain ÷ core time)${tag}`,
        chart: bars,
        goal: 'core cheaper (> 1x each)',
        got: got.join(', '),
        met: allMet,
        margin: allMet
          ? ''
          : ops
              .filter((op) => {
                const c = bestNs(op, 'core');
                const p = bestNs(op, 'plain');
                return c !== undefined && p !== undefined && c >= p;
              })
              .map((op) => `${op} needs ${(bestNs(op, 'core')! / bestNs(op, 'plain')!).toFixed(2)}x faster`)
              .join(', '),
      });
    }
  }
  const mine = targets.filter((t) => t.what.endsWith(tag));
  if (mine.length) {
    out.push(
      '',
      `### Targets of issue 14, ${ids} ids`,
      '',
      '| target | goal | measured | met | miss |',
      '|---|---|---|---|---|',
    );
    for (const t of mine)
      out.push(`| ${t.what.replace(tag, '')} | ${t.goal} | ${t.got} | ${t.met ? 'yes' : '**no**'} | ${t.margin} |`);
  }
}
