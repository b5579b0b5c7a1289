// `npm start`: the core driving a simulated outbound side in one process. Messages for many domains
// over several bindings are queued; every pass the core grants connections within its limits; each
// connection takes a run of messages, "delivers" them (90%) or defers them for a retry (10%), then
// gives its lease back. A passive provider registered first counts what it sees and returns 0, so the
// native default does the work. Ends with a summary; exits 0 only when every message was delivered
// and no connection count ever passed its limit. (Real SMTP delivery arrives with the transport.)
import { MailQueueCore, type Grant } from '../lib/index.js';

function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`--${name} must be a positive integer`);
  return v;
}

const MESSAGES = flag('messages', 50_000);
const DOMAINS = flag('domains', 300);
const MAX_PER_PAIR = 8;
const SERVER_MAX = 400;
const RESERVE = 20;

let now = Date.UTC(2026, 10, 28);
const core = new MailQueueCore({
  bindings: [{ name: 'mta1', group: 'pool' }, { name: 'mta2', group: 'pool' }, 'transactional'],
  config: {
    global: { maxOutboundConnections: MAX_PER_PAIR, serverMaxOutboundConnections: SERVER_MAX, serverReserveOutboundConnections: RESERVE },
    domains: { 'domain0.example': { maxOutboundConnections: 2, outboundThrottleConnections: '4/1' } },
    bindingGroups: { pool: { connectionAllocationAggressiveness: 'high' } },
  },
  clock: () => now,
});

let hookCalls = 0;
core.hooks.mailQueueMaintain.registerFirst((counter: { seen: number }) => {
  counter.seen++;
  hookCalls++;
  return 0; // passive: the native default runs
}, { seen: 0 });

const bindings = core.bindings;
let nextId = 1;
for (let i = 0; i < MESSAGES; i++) {
  // A skewed workload: a few big domains, a long tail of small ones.
  const d = Math.floor(DOMAINS * Math.pow((i * 7919) % MESSAGES / MESSAGES, 3));
  core.enqueue({ id: nextId++, domain: `domain${d}.example`, binding: bindings[i % bindings.length], priority: i % 50 === 0 ? 1 : 0 });
}

let delivered = 0;
let deferred = 0;
let passes = 0;
let peakTotal = 0;
let limitBreaches = 0;
const open = new Map<number, Grant>();
const started = process.hrtime.bigint();
const out = new Float64Array(10);
let rng = 42;
let lastPct = -10;
const random = () => ((rng = (rng * 1103515245 + 12345) >>> 0) / 4294967296);

while (delivered < MESSAGES) {
  const { grants } = core.maintain(now);
  passes++;
  for (const g of grants) open.set(g.connectionId, g);
  peakTotal = Math.max(peakTotal, core.stats().connections);
  for (const g of grants) {
    if (core.domain(g.domain).connections(g.binding) > MAX_PER_PAIR) limitBreaches++;
  }
  if (core.stats().connections > SERVER_MAX + RESERVE) limitBreaches++;
  // Every open connection delivers one run of messages this tick, then closes.
  for (const [id, g] of open) {
    const n = core.takeInto(g.domain, g.binding, out);
    for (let i = 0; i < n; i++) {
      if (random() < 0.9) { core.settle(out[i]); delivered++; }
      else { core.defer(out[i], now + 5_000); deferred++; }
    }
    core.releaseConnection(id);
    open.delete(id);
  }
  now += 100;
  const pct = Math.floor((100 * delivered) / MESSAGES);
  if (process.stdout.isTTY ? passes % 20 === 0 || delivered === MESSAGES : pct >= lastPct + 10 || delivered === MESSAGES) {
    const bar = '#'.repeat(Math.floor(pct / 4)).padEnd(25, '.');
    const line = `[${bar}] ${pct}% delivered ${delivered}/${MESSAGES}  deferred ${deferred}  passes ${passes}`;
    process.stdout.write(process.stdout.isTTY ? `\r${line}` : `${line}\n`);
    lastPct = pct;
  }
  if (passes > 1_000_000) throw new Error('demo did not converge');
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
process.stdout.write('\n\n');
const s = core.stats();
console.table({
  delivered: { value: delivered },
  'deferred (then retried)': { value: deferred },
  'still queued': { value: s.active + s.delayed + s.inFlight },
  'maintenance passes': { value: passes },
  'hook provider calls': { value: hookCalls },
  'connections granted': { value: s.opened },
  'peak concurrent connections': { value: peakTotal },
  'limit (server max + reserve)': { value: SERVER_MAX + RESERVE },
  'limit breaches': { value: limitBreaches },
  'messages per second (wall clock)': { value: Math.round(delivered / seconds) },
});
const ok = delivered === MESSAGES && limitBreaches === 0 && s.connections === 0 && core.checkInvariants();
core.close();
process.exit(ok ? 0 : 1);
