import { CoreScheduler } from '../scheduler.js';
const domains = 25000, bindings = 4, pairs = domains * bindings;
const NOW = Date.UTC(2026, 0, 2);
const s = new CoreScheduler(domains, bindings, { maxConnections: 32, serverMax: 4 * pairs });
s.setNow(NOW);
const ids = new Float64Array(1); const prios = new Uint8Array(1); let id = 1;
for (let d = 0; d < domains; d++) for (let b = 0; b < bindings; b++) { ids[0] = id++; s.enqueue(d, b, ids, prios); }
const list = s.core.grantList();
const out: number[] = [];
for (let r = 0; r < 40; r++) {
  const t0 = process.hrtime.bigint();
  const opened = s.core.maintain(NOW, { into: list }).opened;
  const ns = Number(process.hrtime.bigint() - t0) / pairs;
  if (opened !== pairs) throw new Error('grants');
  for (let i = 0; i < list.length; i++) s.core.releaseConnection(list.connectionId(i));
  if (r > 0) out.push(ns);
}
out.sort((a, b) => a - b);
console.log('js open-1 median', out[out.length >> 1].toFixed(1), 'min', out[0].toFixed(1));
