// `npm start`: mail-queue-core delivering real SMTP on loopback.
//
// Local SMTP servers (smtp-server, in a worker thread) play several destinations: two fast ones, a
// slow one (the reply to the final dot comes 20-60 ms late), a flaky one (451 to 20% of messages),
// a tight one that refuses with 421 any connection beyond N open ones, and a domain whose MX is
// down (its port has no listener). A seeded workload (default 30,000 messages over 300 domains and
// 3 bindings bound to 127.0.0.1-3 with their own EHLO names) is submitted to a started core with
// the SMTP transport and one passive TypeScript hook registered first, which counts what it sees
// and returns 0 so that the native default does the work. A progress bar runs until every message
// has an outcome; then a summary: outcomes, throughput, and per server the peak of concurrent
// connections that the server itself counted, next to the limit the configuration implies.
//
// The tight server plays three domains (sibling domains: same route, so connections migrate
// between them). maxOutboundConnections is per binding::domain, so it alone would let bindings x N
// connections through; each tight domain also gets scopeMaxOutboundConnections (the domain across
// all bindings), and the three caps add up to exactly the N the server accepts. The domain whose
// MX is down has messageExpiration --expire (10 s), so its mail ends as 'expired' bounces.
//
// Exit code 0 only when: every submitted message got exactly one final outcome (delivered or
// bounced), the servers accepted exactly the delivered messages, once each; after stop() the core
// holds no message and no connection and the store is empty; no server-counted peak passed its
// limit, nor did the server-counted total or any source address pass the core's ceilings; the
// core's own counts, sampled at every new connection, never passed them either; EHLO names matched
// their source address; and no 'error' event came.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import {
  FileSpool,
  LogSpool,
  MailQueueCore,
  MemoryStore,
  type MessageStore,
  SmtpTransport,
  serveAdmin,
  type ActiveQueue,
  type CoreConfig,
  type DomainRecord,
  type Grant,
  type ScopeOptions,
  type Qshape,
} from '../lib/index.js';
import { qshapeText } from '../lib/cli/text_table.js';
import { senderFor, type AllStats, type FromWorker, type ToWorker, type WorkerInit } from './demo/protocol.js';
import { DOWN, UNKNOWN_USER, makeBindings, makeWorkload, parseArgs, type Options } from './demo/workload.js';
import { exitIfStuck, freePort, shutDown, workerRpc } from './demo/harness.js';

// ---- scenario -----------------------------------------------------------------------------------

let opts: Options;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
const o = opts;
const bindings = makeBindings(o.bindings);
const work = makeWorkload(o, bindings.length);

const SERVER_MAX = 150;
const RESERVE = 20;
const CEILING = SERVER_MAX + RESERVE;
const PER_PAIR = 4; // maxOutboundConnections, global
const SLOW_PER_PAIR = 8; // the slow server's domains need more connections for the same rate
// The last binding (when there are 3 or more) has a cap of its own, checked like the others.
const capped = bindings.length >= 3 ? bindings[bindings.length - 1] : undefined;
const BINDING_CAP = 40;

const domainScopes: Record<string, ScopeOptions> = {};
for (const d of work.domains) {
  if (d.server === 'tight')
    domainScopes[d.name] = { maxOutboundConnections: d.scopeMax!, scopeMaxOutboundConnections: d.scopeMax! };
  else if (d.server === 'slow') domainScopes[d.name] = { maxOutboundConnections: SLOW_PER_PAIR };
  else if (d.server === DOWN) domainScopes[d.name] = { messageExpiration: o.expire };
}
const config: CoreConfig = {
  global: {
    maxOutboundConnections: PER_PAIR,
    serverMaxOutboundConnections: SERVER_MAX,
    serverReserveOutboundConnections: RESERVE,
    retryInterval: 0.5,
    maxRetryInterval: 1,
    idleTimeout: 0.3,
    delayedQueueScanInterval: 0.25,
    hostFailureRetry: 1,
  },
  domains: domainScopes,
  bindings: capped ? { [capped.name]: { serverMaxOutboundConnections: BINDING_CAP } } : undefined,
  bindingGroups: bindings.some((b) => b.group) ? { pool: { connectionAllocationAggressiveness: 'high' } } : undefined,
};

// The most connections the configuration lets the core hold to one server: per domain the smaller
// of its scope cap and the sum of its per-binding limits; all of it under the global ceiling.
function configuredLimit(server: string): number {
  return Math.min(domainCapSum(server), CEILING);
}
function domainCapSum(server: string): number {
  let sum = 0;
  for (const d of work.domains) {
    if (d.server !== server) continue;
    const perBinding = d.server === 'tight' ? d.scopeMax! : d.server === 'slow' ? SLOW_PER_PAIR : PER_PAIR;
    sum += Math.min(d.scopeMax ?? Infinity, perBinding * bindings.length);
  }
  return sum;
}

// ---- servers (worker thread) ----------------------------------------------------------------------

const workerInit: WorkerInit = {
  servers: work.servers,
  seed: o.seed,
  ehloBySource: Object.fromEntries(bindings.map((b) => [b.localAddress, b.ehloName])),
  unknownUser: UNKNOWN_USER,
};
const worker = new Worker(new URL('./demo/servers.js', import.meta.url), { workerData: workerInit });
const rpc = workerRpc<FromWorker, ToWorker>(worker);
const workerErrors = rpc.errors;
const ask = rpc.ask;
async function serverStats(withIds: boolean): Promise<AllStats> {
  return (await ask('stats', { type: 'stats', withIds })).stats;
}

const ready = await ask('ready');
rpc.serversUp();
// The domain whose MX is down: a loopback port nobody listens on.
const downPort = await freePort();

const routes: Record<string, { host: string; port: number }> = {};
for (const d of work.domains)
  routes[d.name] = { host: '127.0.0.1', port: d.server === DOWN ? downPort : ready.ports[d.server] };

// ---- the core -----------------------------------------------------------------------------------

const transport = new SmtpTransport({
  routes,
  bindings: Object.fromEntries(bindings.map((b) => [b.name, { localAddress: b.localAddress, ehloName: b.ehloName }])),
  timeouts: { connect: 2000, greeting: 2000, command: 5000, message: 10_000, idle: 10_000, quit: 1000 },
  hostFailureRetry: 1000,
});
// --store file|log: a durable store in a temporary directory (removed at the end).
const spoolDir = o.store === 'memory' ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), `mqc-demo-${o.store}-`));
const store: MessageStore =
  spoolDir === undefined ? new MemoryStore() : o.store === 'file' ? new FileSpool(spoolDir) : new LogSpool(spoolDir);
const core = new MailQueueCore({
  bindings: bindings.map((b) => (b.group ? { name: b.name, group: b.group } : b.name)),
  config,
  transport,
  store,
  deliveryTimeout: 15_000,
});

// The passive provider, registered first: it sees every __mail_queue_maintain call and returns 0,
// so the rest of the chain (here only the native default) decides.
const seen = { calls: 0, passes: 0, lastNow: -1, domains: new Set<string>(), maxQueue: 0, quietPairCalls: 0 };
core.hooks.mailQueueMaintain.registerFirst(
  (c: typeof seen, dr: DomainRecord, _slot: number, sl: ActiveQueue, now: number, _goalsz: number, reserve: number) => {
    c.calls++;
    if (now !== c.lastNow) {
      c.passes++;
      c.lastNow = now;
    }
    c.domains.add(dr.name);
    const q = sl.size;
    if (q > c.maxQueue) c.maxQueue = q;
    if (reserve === 0) c.quietPairCalls++;
    return 0;
  },
  seen,
);

// ---- outcome and limit tracking -----------------------------------------------------------------

const N = o.messages;
const outcome = new Uint8Array(N + 1); // 0 none, 1 delivered, 2 bounced
let finals = 0;
let delivered = 0;
const bounced: Record<string, number> = {};
let deferredEvents = 0;
const deferredByCode: Record<string, number> = {};
const duplicates: string[] = [];
const strangers: number[] = [];
let deferredAfterFinal = 0;
const errors: string[] = [];
let submitted = 0;
let tDone = 0;
let resolveDone!: () => void;
const done = new Promise<void>((r) => {
  resolveDone = r;
});

function final(id: number, kind: 1 | 2, label: string): void {
  if (!Number.isInteger(id) || id < 1 || id > N) {
    strangers.push(id);
    return;
  }
  if (outcome[id] !== 0) {
    duplicates.push(`#${id}: ${outcome[id] === 1 ? 'delivered' : 'bounced'} then ${label}`);
    return;
  }
  outcome[id] = kind;
  finals++;
  if (finals === N) {
    tDone = performance.now();
    resolveDone();
  }
}

core.on('delivered', (e: { id: number }) => {
  delivered++;
  final(e.id, 1, 'delivered');
});
core.on('bounce', (e: { id: number; reason: string }) => {
  bounced[e.reason] = (bounced[e.reason] ?? 0) + 1;
  final(e.id, 2, `bounce (${e.reason})`);
});
const serverOf = new Map(work.domains.map((d) => [d.name, d.server]));
core.on('deferred', (e: { id: number; domain: string; code?: number }) => {
  deferredEvents++;
  const k = `${serverOf.get(e.domain) ?? '?'} ${e.code ?? 'no reply'}`;
  deferredByCode[k] = (deferredByCode[k] ?? 0) + 1;
  if (e.id >= 1 && e.id <= N && outcome[e.id] !== 0) deferredAfterFinal++;
});
core.on('error', (err: unknown) => {
  if (errors.length < 20) errors.push(err instanceof Error ? err.message : String(err));
  else errors.length++;
});

// Limits as the core counts them, sampled at every new connection.
const tightDomains = work.domains.filter((d) => d.server === 'tight');
const iTotal = core.counterIndex.connections;
const iCapped = capped ? core.counterIndex[`connections:${capped.name}`] : -1;
let corePeak = 0;
let coreCappedPeak = 0;
let coreTightPeak = 0;
const coreBreaches: string[] = [];
let grants = 0;
core.on('connection', (g: Grant) => {
  grants++;
  const total = core.counters[iTotal];
  corePeak = Math.max(corePeak, total);
  if (total > CEILING) coreBreaches.push(`${total} connections > serverMax + reserve ${CEILING}`);
  if (iCapped >= 0) {
    const c = core.counters[iCapped];
    coreCappedPeak = Math.max(coreCappedPeak, c);
    if (c > BINDING_CAP) coreBreaches.push(`${c} connections on ${capped!.name} > its cap ${BINDING_CAP}`);
  }
  if (g.domain.startsWith('tight-')) {
    let sum = 0;
    for (const d of tightDomains) {
      if (!core.hasDomain(d.name)) continue; // no mail for it yet
      const n = core.domain(d.name).connections();
      if (n > d.scopeMax!) coreBreaches.push(`${n} connections to ${d.name} > its scope cap ${d.scopeMax}`);
      sum += n;
    }
    coreTightPeak = Math.max(coreTightPeak, sum);
  }
});

// ---- progress -----------------------------------------------------------------------------------

const tty = process.stdout.isTTY === true;
let lastDecile = -1;
function progressLine(): string {
  const pct = Math.floor((100 * finals) / N);
  const width = 24;
  const fill = Math.floor((width * finals) / N);
  const s = core.closed ? undefined : core.stats();
  const bounce = Object.values(bounced).reduce((a, b) => a + b, 0);
  const line =
    `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(pct).padStart(3)}%  ` +
    `submitted ${submitted}  delivered ${delivered}  bounced ${bounce}  deferrals ${deferredEvents}` +
    (s ? `  queued ${s.active + s.delayed + s.inFlight}  conns ${s.connections}` : '') +
    `  ${((performance.now() - t0) / 1000).toFixed(1)}s`;
  // One terminal line, or \r cannot redraw it.
  return tty && process.stdout.columns > 20 ? line.slice(0, process.stdout.columns - 1) : line;
}
function drawProgress(force = false): void {
  if (tty) {
    process.stdout.write(`\r${progressLine()}\x1b[K`);
    return;
  }
  const decile = Math.floor((10 * finals) / N);
  if (decile > lastDecile || force) {
    lastDecile = decile;
    process.stdout.write(`${progressLine()}\n`);
  }
}

// ---- run ----------------------------------------------------------------------------------------

console.log(
  `mail-queue-core demo: ${N} messages, ${o.domains} domains, ${bindings.length} binding(s) ` +
    `(${bindings.map((b) => `${b.name}@${b.localAddress}`).join(', ')}), seed ${o.seed}`,
);
console.log(
  `servers on 127.0.0.1: ${work.servers.map((s) => `${s.name}:${ready.ports[s.name]}`).join(', ')}; ` +
    `${work.domains.find((d) => d.server === DOWN)!.name} -> 127.0.0.1:${downPort} (nothing listens)\n`,
);

// The admin API while the demo runs (loopback, a free port): try the command line against it.
const admin = await serveAdmin(core);
console.log(
  `admin API: ${admin.url} (while this runs: MQC_ADMIN_URL=${admin.url} node dist/lib/cli/mqc.js summary; or curl ${admin.url}/metrics)\n`,
);

const t0 = performance.now();
const elu0 = performance.eventLoopUtilization();
core.start();
// The queue's shape (qshape) at its busiest moment, printed at the end; the demo lasts under a
// minute, so its buckets are seconds (5, 10, 20, 40 s) where an MTA's are minutes.
const DEMO_MINUTES = [5 / 60, 10 / 60, 20 / 60, 40 / 60];
let busiest: { held: number; at: number; shape: Qshape } | undefined;
const shapeSampler = setInterval(() => {
  const st = core.stats();
  const held = st.active + st.delayed + st.inFlight;
  if (held > 0 && (busiest === undefined || held > busiest.held))
    busiest = { held, at: performance.now() - t0, shape: core.qshape({ top: 8, minutes: DEMO_MINUTES }) };
}, 250);
const ticker = setInterval(() => drawProgress(), tty ? 100 : 250);
const watchdog = setTimeout(() => resolveDone(), o.timeout * 1000);
// A durable store commits each submit before it resolves: 64 submitters at once, as an MTA's
// concurrent SMTP sessions would, so that LogSpool's group commit has groups to make.
const SUBMITTERS = o.store === 'memory' ? 1 : 64;
async function submitOne(m: number): Promise<void> {
  const id = m + 1;
  const d = work.domains[work.domainOf[m]];
  const rcpt = `${work.unknownRcpt[m] ? UNKNOWN_USER : `user${id % 1000}`}@${d.name}`;
  const b = bindings[work.bindingOf[m]];
  await core.submit(
    {
      id,
      domain: d.name,
      binding: b.name,
      priority: work.priorityOf[m],
      envelope: { from: senderFor(id), to: [rcpt] },
    },
    Buffer.from(
      `From: <${senderFor(id)}>\r\nTo: <${rcpt}>\r\nSubject: demo message ${id}\r\n` +
        `Message-ID: <${id}@demo.test>\r\n\r\nHello from ${b.name}.\r\n`,
    ),
  );
  submitted++;
}
let lastYield = 0;
for (let m = 0; m < N; m += SUBMITTERS) {
  const batch: Promise<void>[] = [];
  for (let j = m; j < Math.min(N, m + SUBMITTERS); j++) batch.push(submitOne(j));
  await Promise.all(batch);
  // Let connections start while the rest is still being submitted, as an MTA's intake would.
  if (submitted - lastYield >= 2000) {
    lastYield = submitted;
    await yieldToLoop();
  }
}
const submitSeconds = (performance.now() - t0) / 1000;
await done;
clearTimeout(watchdog);
clearInterval(ticker);
clearInterval(shapeSampler);
drawProgress(true);
if (tty) process.stdout.write('\n');
const busy = performance.eventLoopUtilization(elu0).utilization;
const timedOut = finals < N;
const elapsed = ((tDone || performance.now()) - t0) / 1000;

const idleBeforeStop = core.stats().connections;
const stuck: string[] = [];
if (timedOut) {
  for (let id = 1; id <= N && stuck.length < 10; id++) {
    if (outcome[id] === 0) stuck.push(`#${id} ${JSON.stringify(core.message(id) ?? 'not in the core')}`);
  }
}
// stop() and close() must finish on their own; a hang is reported, not waited out.
const { hangs, stopMs, after, summary, invariantsOk, srv } = await shutDown(core, transport, serverStats, 15_000, 60);
await admin.close();
core.close();
await ask('closed', { type: 'close' });
await worker.terminate();

// ---- checks -------------------------------------------------------------------------------------

const failures: string[] = [...hangs];
if (timedOut)
  failures.push(
    `only ${finals} of ${N} messages had an outcome after ${o.timeout} s; first without one: ${stuck.join('; ')}`,
  );
if (duplicates.length)
  failures.push(`${duplicates.length} messages had more than one final outcome: ${duplicates.slice(0, 5).join('; ')}`);
if (strangers.length) failures.push(`outcomes for ids never submitted: ${strangers.slice(0, 5).join(', ')}`);
if (after.active + after.delayed + after.inFlight > 0 || after.connections > 0) {
  failures.push(
    `after stop() the core still holds ${after.active} active, ${after.delayed} delayed, ${after.inFlight} in flight, ${after.connections} connections`,
  );
}
let stored = 0;
for await (const _ of store.list()) stored++;
if (stored > 0) failures.push(`the store still holds ${stored} messages`);
await store.close?.();
if (spoolDir !== undefined) fs.rmSync(spoolDir, { recursive: true, force: true });
if (!invariantsOk) failures.push('core.checkInvariants() failed');
if (coreBreaches.length)
  failures.push(
    `the core's own counts passed a limit ${coreBreaches.length} times: ${[...new Set(coreBreaches)].slice(0, 5).join('; ')}`,
  );
if (srv.globalOpen > 0) failures.push(`the servers still count ${srv.globalOpen} open connections after stop()`);
if (srv.globalPeak > CEILING)
  failures.push(`the servers counted ${srv.globalPeak} connections at once > serverMax + reserve ${CEILING}`);
if (capped && (srv.peakBySource[capped.localAddress] ?? 0) > BINDING_CAP) {
  failures.push(
    `the servers counted ${srv.peakBySource[capped.localAddress]} connections at once from ${capped.localAddress} > ${capped.name}'s cap ${BINDING_CAP}`,
  );
}
const limits = new Map(work.servers.map((s) => [s.name, s.refuseAbove ?? configuredLimit(s.name)]));
for (const s of srv.servers) {
  if (s.peak > limits.get(s.name)!)
    failures.push(`server ${s.name}: peak ${s.peak} concurrent connections > limit ${limits.get(s.name)}`);
  if (s.refused > 0) failures.push(`server ${s.name} refused ${s.refused} connections beyond its limit`);
  if (s.ehloMismatches > 0)
    failures.push(
      `server ${s.name}: ${s.ehloMismatches} transactions with an EHLO name not matching the source address`,
    );
}
// What the servers accepted must be exactly what the core reported delivered, once each.
const acceptedCount = new Uint8Array(N + 1);
let serverDuplicates = 0;
let serverUnknown = 0;
for (const id of srv.acceptedIds) {
  if (!(id >= 1 && id <= N)) serverUnknown++;
  else if (acceptedCount[id]++ > 0) serverDuplicates++;
}
let acceptedNotDelivered = 0;
let deliveredNotAccepted = 0;
for (let id = 1; id <= N; id++) {
  if (acceptedCount[id] > 0 && outcome[id] !== 1) acceptedNotDelivered++;
  if (outcome[id] === 1 && acceptedCount[id] === 0) deliveredNotAccepted++;
}
if (serverDuplicates) failures.push(`the servers accepted ${serverDuplicates} messages more than once`);
if (serverUnknown) failures.push(`the servers accepted ${serverUnknown} messages with no known id`);
if (acceptedNotDelivered)
  failures.push(`${acceptedNotDelivered} messages accepted by a server were not reported delivered`);
if (deliveredNotAccepted)
  failures.push(`${deliveredNotAccepted} messages reported delivered were never accepted by a server`);
if (errors.length) failures.push(`${errors.length} 'error' events: ${errors.filter(Boolean).slice(0, 5).join('; ')}`);
if (workerErrors.length) failures.push(`server errors: ${workerErrors.slice(0, 5).join('; ')}`);

// ---- summary ------------------------------------------------------------------------------------

const bounceTotal = Object.values(bounced).reduce((a, b) => a + b, 0);
const fmt = (n: number) => n.toLocaleString('en-US');
console.log('\nOutcomes');
console.table({
  'messages submitted': { value: `${fmt(N)} (store: ${store.constructor.name})` },
  delivered: { value: fmt(delivered) },
  'deferred (transient failures, retried)': {
    value: `${fmt(deferredEvents)}  (${Object.entries(deferredByCode)
      .map(([k, v]) => `${k}: ${fmt(v)}`)
      .join(', ')})`,
  },
  bounced: {
    value: `${fmt(bounceTotal)}  (${
      Object.entries(bounced)
        .map(([k, v]) => `${k}: ${fmt(v)}`)
        .join(', ') || 'none'
    })`,
  },
  'still queued after stop()': { value: fmt(after.active + after.delayed + after.inFlight) },
  'elapsed (submit to last outcome)': {
    value: `${elapsed.toFixed(2)} s (submitting took ${submitSeconds.toFixed(2)} s)`,
  },
  'messages per second (outcomes)': { value: fmt(Math.round(finals / elapsed)) },
  'deliveries per second': { value: fmt(Math.round(delivered / elapsed)) },
  'main thread busy (event loop utilization)': { value: `${Math.round(busy * 100)}%` },
  'connections granted by the core': { value: fmt(grants) },
  'core peak connections (sampled) / ceiling': {
    value: `${corePeak} / ${CEILING} (serverMax ${SERVER_MAX} + reserve ${RESERVE})`,
  },
  'servers peak connections (counted) / ceiling': { value: `${srv.globalPeak} / ${CEILING}` },
  'idle connections at the end, closed by stop()': { value: `${idleBeforeStop} in ${stopMs.toFixed(0)} ms` },
  'hook: __mail_queue_maintain calls': { value: fmt(seen.calls) },
  'hook: passes seen (distinct now)': { value: fmt(seen.passes) },
  'hook: domains seen / longest queue': { value: `${seen.domains.size} / ${fmt(seen.maxQueue)}` },
  'hook: calls with reserve 0 (quiet pair)': { value: fmt(seen.quietPairCalls) },
  'core.summary(): delivered/deferred/bounced': {
    value: `${fmt(summary.delivered)} / ${fmt(summary.deferred)} / ${fmt(summary.bounced)}`,
  },
});

console.log('Servers (connections as each server counted them)');
const serverRows: Record<string, Record<string, string | number>> = {};
// Messages and bounces per server, from the workload and the outcomes.
const perServer = new Map<string, { messages: number; bounced: number }>();
for (let m = 0; m < N; m++) {
  const server = work.domains[work.domainOf[m]].server;
  let t = perServer.get(server);
  if (!t) perServer.set(server, (t = { messages: 0, bounced: 0 }));
  t.messages++;
  if (outcome[m + 1] === 2) t.bounced++;
}
for (const s of srv.servers) {
  const spec = work.servers.find((x) => x.name === s.name)!;
  const limit = limits.get(s.name)!;
  const t = perServer.get(s.name) ?? { messages: 0, bounced: 0 };
  serverRows[s.name] = {
    behaviour:
      spec.kind === 'slow'
        ? `reply after ${spec.delayMs![0]}-${spec.delayMs![1]} ms`
        : spec.kind === 'flaky'
          ? `451 to ${Math.round(spec.failRate! * 100)}%`
          : spec.kind === 'tight'
            ? `421 beyond ${spec.refuseAbove} conns`
            : 'accepts at once',
    domains: work.domains.filter((d) => d.server === s.name).length,
    messages: t.messages,
    accepted: s.accepted,
    bounced: t.bounced,
    '451 replies': s.deferred451,
    '550 replies': s.rejected550,
    connections: s.connections,
    'multi-domain sessions': s.multiDomainSessions,
    'peak concurrent': s.peak,
    limit:
      spec.refuseAbove !== undefined
        ? `${limit} (refuses beyond; scope caps sum ${configuredLimit(s.name)})`
        : `${limit} (domain caps ${domainCapSum(s.name)}, ceiling ${CEILING})`,
    check: s.peak <= limit && s.refused === 0 ? 'OK' : 'EXCEEDED',
  };
}
const down = perServer.get(DOWN) ?? { messages: 0, bounced: 0 };
serverRows['(MX down)'] = {
  behaviour: `port ${downPort} refuses`,
  domains: 1,
  messages: down.messages,
  accepted: 0,
  bounced: down.bounced,
  '451 replies': 0,
  '550 replies': 0,
  connections: 0,
  'multi-domain sessions': 0,
  'peak concurrent': 0,
  limit: `expiry ${o.expire} s`,
  check: down.bounced === down.messages ? 'OK' : 'PENDING',
};
console.table(serverRows);

console.log('Bindings (source addresses as the servers saw them)');
const bindingRows: Record<string, Record<string, string | number>> = {};
for (const b of bindings) {
  const tx = srv.servers.reduce((a, s) => a + (s.sources[b.localAddress] ?? 0), 0);
  const peak = srv.peakBySource[b.localAddress] ?? 0;
  const limit = b === capped ? BINDING_CAP : undefined;
  bindingRows[b.name] = {
    'source address': b.localAddress,
    'EHLO name': b.ehloName,
    transactions: tx,
    'peak concurrent': peak,
    limit: limit ?? `- (${b.group ? `group ${b.group}` : 'no cap'})`,
    check: limit === undefined || peak <= limit ? 'OK' : 'EXCEEDED',
  };
}
console.table(bindingRows);

if (busiest !== undefined) {
  console.log(
    `Queue shape at its busiest (${busiest.held} messages held, ${(busiest.at / 1000).toFixed(1)} s in), by seconds since arrival (like Postfix's qshape in minutes; npx mqc qshape):`,
  );
  console.log(`${qshapeText(busiest.shape, 'seconds')}\n`);
}

if (deferredAfterFinal > 0) {
  console.log(
    `note: ${deferredAfterFinal} 'deferred' events came for messages that had already bounced (expired at the retry).`,
  );
}
if (failures.length === 0) {
  console.log(
    `PASS: every message reached exactly one outcome and no limit was passed (wall ${elapsed.toFixed(1)} s).`,
  );
} else {
  console.log('FAIL:');
  for (const f of failures) console.log(`  - ${f}`);
}
process.exitCode = failures.length === 0 ? 0 : 1;

exitIfStuck();
