// Issue 14's MTA cycle (bench/arrivals.ts), one child process per implementation and arrival mode:
//   --impl plain --mode enqueue   the plain-JS scheduler, one enqueue a message
//   --impl core  --mode enqueue   the public API, one core.enqueue({ id, domain, binding }) a message
//   --impl core  --mode batched   the public API, the fastest arrival path (CoreImpl.arriveFast)
//   --impl micro                  one enqueue / settle / defer at 1M resident, both implementations
//                                 in this one process, interleaved
import { arg, emit, gc, log, numArg, quick } from '../common.js';
import { CoreImpl, type IdPolicy, PlainScheduler, runMicro, runMta, type MtaImpl } from '../arrivals.js';

const impl = arg('impl');
const domains = numArg('domains', 10_000);
const bindings = numArg('bindings', 4);
const perPair = numArg('per-pair', 25);
const urgentShare = numArg('urgent-share', 0.05);
const ids = arg('ids', 'rising') as IdPolicy;
if (ids !== 'rising' && ids !== 'random') throw new RangeError(`--ids must be rising or random, got ${ids}`);

if (impl === 'micro') {
  const n = numArg('n', 32_768);
  const rounds = numArg('rounds', quick() ? 3 : 7);
  const r = runMicro({ domains, bindings, perPair, urgentShare, n, rounds, ids }, gc);
  for (const [op, by] of Object.entries(r.median)) {
    const c = r.medianCpu[op];
    log(
      `  ${op}: core ${by.core.toFixed(0)} ns, plain JS ${by.plain.toFixed(0)} ns (plain ÷ core ${(by.plain / by.core).toFixed(2)}); CPU ${c.core.toFixed(0)} / ${c.plain.toFixed(0)} ns (${(c.plain / c.core).toFixed(2)})`,
    );
  }
  emit({ impl, ids, domains, bindings, perPair, urgentShare, result: r });
} else {
  const mode = arg('mode', 'enqueue') as 'enqueue' | 'batched';
  const warm = numArg('warm', quick() ? 3 : 5);
  const rounds = numArg('rounds', quick() ? 12 : 40);
  const phasedWarm = numArg('phased-warm', 2);
  const phased = numArg('phased', quick() ? 6 : 20);
  const s: MtaImpl = impl === 'core' ? new CoreImpl(domains, bindings) : new PlainScheduler(bindings);
  const r = runMta(s, { domains, bindings, perPair, urgentShare, warm, rounds, phasedWarm, phased, mode, ids });
  if (s instanceof CoreImpl && !s.checkInvariants()) throw new Error('core: checkInvariants() failed after the cycle');
  s.close();
  const p = r.phases;
  log(
    `  ${impl}/${mode}: ${(r.rate / 1e6).toFixed(2)} M msg/s, ${(r.cpuRate / 1e6).toFixed(2)} M per CPU-s (phased ${(r.phasedRate / 1e6).toFixed(2)}, ${(r.phasedCpuRate / 1e6).toFixed(2)}); ${r.perRound.grants.toFixed(0)} grants, ` +
      `${r.perRound.outcomes.toFixed(0)} outcomes a round; phases ms: pass ${p.pass.toFixed(2)}, take ${p.take.toFixed(2)}, ` +
      `settle/defer ${p.outcome.toFixed(2)}, release ${p.release.toFixed(2)}, arrive ${p.arrive.toFixed(2)}; checksum ${r.checksum}`,
  );
  emit({
    impl,
    mode,
    ids,
    domains,
    bindings,
    perPair,
    urgentShare,
    warm,
    roundsRun: rounds,
    phasedWarm,
    phasedRun: phased,
    result: r,
  });
}
