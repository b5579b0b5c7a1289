import { native } from '../../dist/lib/native.js';
import { MailQueueCore } from '../../dist/lib/core.js';
const D = 10000, B = 4;
let now = 1.7e12;
const core = new MailQueueCore({ bindings: ['b0','b1','b2','b3'], clock: () => now, config: { global: { messageExpiration: 86400 } } });
const h = (core as any).__h;
const names = Array.from({ length: D }, (_, d) => `d${d}.example`);
const ids = new Float64Array(16); const prios = new Uint8Array(16);
let next = 1;
for (let d = 0; d < D; d++) for (let b = 0; b < B; b++) for (let k = 0; k < 25; k += 16) { for (let i = 0; i < 16; i++) ids[i] = next++; core.enqueueBatch(names[d], `b${b}`, ids, prios); }
const recs = names.map((n) => core.domain(n));
const bn = ['b0','b1','b2','b3'];
let seed = 1; const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
const N = 20000;
const pairs = Array.from({ length: N }, () => [Math.floor(rnd() * D), Math.floor(rnd() * B)]);
function run(kind: string) {
  const t = process.hrtime.bigint();
  for (let j = 0; j < N; j++) {
    const [d, b] = pairs[j];
    for (let i = 0; i < 16; i++) ids[i] = next++;
    if (kind === 'name') core.enqueueBatch(names[d], bn[b], ids, prios);
    else if (kind === 'rec') core.enqueueBatch(recs[d], bn[b], ids, prios);
    else if (kind === 'recslot') core.enqueueBatch(recs[d], b as any, ids, prios);
    else native.enqueueBatch(h, d, b, ids, prios, now, now + 86400000, now);
    native.cancelBatch(h, ids);
  }
  return Number(process.hrtime.bigint() - t) / N;
}
for (let r = 0; r < 6; r++) console.log(['name','rec','recslot','raw'].map((k) => `${k} ${run(k).toFixed(0)}`).join('  '), 'ns/call');
