// The crossing floor: what one JS -> native call costs before any work, and what the lib/core.ts
// layer adds per call. Benchmark.js, one op = one call (plus Benchmark's own call of the test).
import Benchmark from 'benchmark';

import { MailQueueCore } from '../../dist/lib/core.js';
import { native } from '../../dist/lib/native.js';
import { emit, keep, log, quick } from '../common.js';
import { DOMAIN, FAR, rawCore, rawDomain } from '../competitors.js';

const maxTime = quick() ? 0.3 : 1;
const { h } = rawCore();
const d = rawDomain(h);
const core = new MailQueueCore({ bindings: ['b0'], clock: () => FAR });
core.enqueueBatch(DOMAIN, 'b0', Float64Array.of(1)); // makes the domain; queue then emptied
core.take(DOMAIN, 0, 1);
core.settle(1);
const buf = new Float64Array(16);
let acc = 0;

function jsNoop(x: number): number {
  return x + 1;
}

const cases: [string, string, () => void][] = [
  [
    'js function call',
    'a plain JS function (the JIT may inline it: a lower bound)',
    () => {
      acc = jsNoop(acc);
    },
  ],
  [
    'native.noop()',
    'module-level N-API function, no arguments, returns undefined',
    () => {
      native.noop();
    },
  ],
  [
    'native.activeSize(h, d, b)',
    '3 numbers in (core handle lookup, range checks), 1 number out',
    () => {
      acc += native.activeSize(h, d, 0);
    },
  ],
  [
    'native.cancel(h, unknownId)',
    'id check + hash probe miss, boolean out',
    () => {
      if (native.cancel(h, 12345)) acc++;
    },
  ],
  [
    'core.cancel(unknownId)',
    'the same through lib/core.ts',
    () => {
      if (core.cancel(12345)) acc++;
    },
  ],
  [
    'native.removeActive(h, d, b, unknownId)',
    '4 numbers in, hash probe miss, number out',
    () => {
      if (native.removeActive(h, d, 0, 12345)) acc++;
    },
  ],
  [
    'native.drainExpired(h, buf)',
    '1 Float64Array in (typed-array checks), nothing to drain',
    () => {
      acc += native.drainExpired(h, buf);
    },
  ],
  [
    'native.take(h, d, b, now, buf) empty',
    "3 numbers and a typed array in, number out (the counters are the core's own memory: no copy)",
    () => {
      acc += native.take(h, d, 0, FAR, buf);
    },
  ],
  [
    'core.takeInto(domain, 0, buf) empty',
    'the same through lib/core.ts (domain name lookup, checks, clock)',
    () => {
      acc += core.takeInto(DOMAIN, 0, buf);
    },
  ],
];

const rows: { op: string; note: string; nsPerCall: number; rme: number }[] = [];
for (const [op, note, fn] of cases) {
  const b = new Benchmark(op, fn, { maxTime, minSamples: 5 });
  b.run();
  if (b.error) throw b.error;
  rows.push({ op, note, nsPerCall: 1e9 / b.hz, rme: b.stats.rme });
  log(`  ${op}: ${(1e9 / b.hz).toFixed(1)} ns`);
}
keep(acc);
core.close();
native.destroyCore(h);
emit({ rows });
