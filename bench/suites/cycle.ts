// Suites 2 and 4, one child process per implementation:
//   --mode cycle   messages per second through the scheduler cycle (bench/scheduler.ts)
//   --mode memory  bytes per resident message after the fill (RSS and heap, after forced GC), then
//                  the worst event-loop delay (perf_hooks.monitorEventLoopDelay), the longest
//                  synchronous stretch and the longest GC pause while the cycle runs
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

import { arg, emit, gc, log, numArg, quick } from '../common.js';
import { CoreScheduler, runCycle, TsScheduler, type Scheduler } from '../scheduler.js';

const impl = arg('impl');
const mode = arg('mode', 'cycle');
const domains = numArg('domains', 10_000);
const bindings = numArg('bindings', 4);
const perPair = numArg('per-pair', 25);
const warm = numArg('warm', quick() ? 2 : 4);
const ticks = numArg('ticks', quick() ? 6 : 20);
const SLICE_DOMAINS = numArg('slice-domains', 250);
const SLICE_GRANTS = numArg('slice-grants', 500);
const YIELD_MESSAGES = numArg('yield-messages', 256);

const make = (): Scheduler =>
  impl === 'core' ? new CoreScheduler(domains, bindings) : new TsScheduler(domains, bindings);

const mem = () => {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
};

if (mode === 'cycle') {
  const s = make();
  const r = await runCycle(s, { domains, bindings, perPair, warmTicks: warm, ticks });
  s.close();
  log(`  ${impl}: ${(r.rate / 1e6).toFixed(2)} M msg/s`);
  emit({ impl, mode, domains, bindings, perPair, warm, ticksRun: ticks, result: r });
} else {
  gc();
  const before = mem();
  let after = before;
  const elu = monitorEventLoopDelay({ resolution: 1 });
  let gcMax = 0;
  let gcMaxKind = '';
  let gcTotal = 0;
  let gcMajor = 0;
  // node:perf_hooks gc entry kinds (constants.NODE_PERFORMANCE_GC_*): 1 minor, 2 major, 4 incremental, 8 weak callbacks
  const kinds: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
      gcTotal += e.duration;
      if (kind === 2) gcMajor++;
      if (e.duration > gcMax) {
        gcMax = e.duration;
        gcMaxKind = kinds[kind] ?? String(kind);
      }
    }
  });
  const s = make();
  // Yield often (every 256 connections or arrival chunks or 256 messages pulled or arrived, and
  // between maintenance slices of at most 250 due domains and 500 connections opened, with the
  // same slicing for both implementations), so the stalls measured are the core's and the
  // collector's, not the driver's chunk size: at 5M resident a message costs a few microseconds of
  // cache and TLB misses, and 256 connections of 64 messages each held the loop for 5-9 ms.
  const r = await runCycle(s, {
    domains,
    bindings,
    perPair,
    warmTicks: warm,
    ticks,
    yieldEvery: 256,
    yieldMessages: YIELD_MESSAGES,
    sliceDomains: SLICE_DOMAINS,
    sliceGrants: SLICE_GRANTS,
    afterFill: () => {
      gc();
      after = mem();
      log(
        `  ${impl}: filled ${domains * bindings * perPair} messages, rss +${((after.rss - before.rss) / 2 ** 20).toFixed(0)} MiB`,
      );
    },
    // Pauses are measured over the timed ticks, after the warm-up ones (as the longest synchronous
    // stretch always was): the first collections after the forced full GC above belong to the
    // measurement of memory, not to the cycle.
    afterWarm: () => {
      obs.observe({ entryTypes: ['gc'] });
      elu.enable();
    },
  });
  elu.disable();
  obs.disconnect();
  const peak = mem();
  const n = r.resident;
  s.close();
  emit({
    impl,
    mode,
    domains,
    bindings,
    perPair,
    warm,
    ticksRun: ticks,
    resident: n,
    before,
    after,
    peak,
    bytesPerMessage: {
      rss: (after.rss - before.rss) / n,
      heap: (after.heapUsed - before.heapUsed) / n,
      external: (after.external - before.external) / n,
    },
    eventLoopDelay: { maxMs: elu.max / 1e6, p99Ms: elu.percentile(99) / 1e6, meanMs: elu.mean / 1e6 },
    maxSyncMs: r.maxSyncMs,
    maxMaintainMs: r.maxMaintainCallMs,
    maintainPassMs: r.maxMaintainMs,
    gc: { maxPauseMs: gcMax, maxPauseKind: gcMaxKind, totalMs: gcTotal, majorCount: gcMajor },
    result: { ...r, ticks: r.ticks.length },
  });
}
