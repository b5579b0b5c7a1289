// `npm run soak`: messages through a started core, over real SMTP, to loopback servers that inject
// faults at random, in a bounded time. Not part of CI. 1,000,000 messages by default (the million of
// issue 5), about 4-8 minutes on the shared 2-core machine it was written on; `-- --messages 200000`
// for a shorter run. See docs/soak.md for what it checks and the figures of a run.
//
// The servers run in a worker thread (bench/soak/servers.ts) and count their own connections; they
// also count them from the kernel's side (/proc/net/tcp), which does not depend on their event loop
// seeing anything: one of them (issue 12) stops reading the body of a message's first attempt.
// Messages are submitted in a bounded pipeline: at most --window of them are submitted and not yet
// final, and the submitter waits for outcomes when the window is full (enqueue-side flow control),
// so memory has a steady state. Every 250 ms the run samples core.stats(), the servers' own open
// counts and RSS; at the end it checks the books and exits non-zero when any check fails:
//
//   books        at every sample and at the end: submitted = delivered + bounced + still queued
//                (active + delayed + in flight); after draining, still queued = 0
//   outcomes     every message has exactly one final outcome (delivered or bounced), no event for an
//                id that was never submitted, no deferral after a final outcome; core.summary() agrees
//   once         no id was accepted (250 after the final dot) more than once by the servers, and the
//                servers accepted exactly the messages reported delivered
//   leases       after stop(): no connection, nothing in flight, opened = released, the core's
//                invariants hold, the store is empty, and the servers count no open connection;
//                within 2 s of stop() and transport.close(), the receivers' kernels have none either
//   limits       the core's own counts (at every sample and every grant) and the servers' counts (at
//                every sample) within the ceiling, the capped binding and each server's limit; the
//                servers' live peaks, kept at every TCP accept, too (live: not counting connections
//                the server has ended itself, see servers.ts); the tight server never refused a
//                connection for being over its limit; the receivers' kernel counts, read once a
//                second and at every accept of the tight and stall servers, within the same limits;
//                the transport never has more sockets open than the core has leases
//   rss          RSS is flat after warm-up: the slope of RSS over messages done, on samples taken
//                after a forced gc during the second half, is under --rss-slope-limit
//   errors       no 'error' event from the core, no anomaly in the servers (a body whose X-Id does
//                not match its envelope), no listener error
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import {
  FileSpool,
  LogSpool,
  MailQueueCore,
  MemoryStore,
  SmtpTransport,
  type CoreConfig,
  type Grant,
  type MessageStore,
  type ScopeOptions,
} from '../../lib/index.js';
import {
  prng,
  senderFor,
  type AllStats,
  type Counts,
  type FromWorker,
  type ToWorker,
  type WorkerInit,
} from './protocol.js';
import {
  BINDINGS,
  CEILING,
  DEAD,
  PER_PAIR,
  RESERVE,
  SERVERS,
  SERVER_MAX,
  STALL,
  STALL_BODY,
  STALL_MS,
  makeWorkload,
  parseArgs,
  serverLimit,
} from './scenario.js';
import { exitIfStuck, freePort, shutDown, workerRpc } from '../../examples/demo/harness.js';

const SAMPLE_MS = 250;
const RSS_MIN_MESSAGES = 400_000;
const GC_MS = 2000;
const gc = (globalThis as { gc?: () => void }).gc;

let opts: ReturnType<typeof parseArgs>;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
const o = opts;
const N = o.messages;
const work = makeWorkload(o);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const mb = (bytes: number) => bytes / (1024 * 1024);

// ---- servers (worker thread) ----------------------------------------------------------------------

// The limits the servers' counts must stay within: the core's ceiling in total, the capped
// binding's cap from its source address, and per server what its domains' limits add up to.
const limits = new Map(SERVERS.map((s) => [s.name, serverLimit(work, s.name)]));
const capped = BINDINGS.find((b) => b.cap !== undefined)!;
const workerInit: WorkerInit = {
  servers: SERVERS,
  faults: work.faults,
  seed: o.seed,
  maxId: N,
  sampleMs: SAMPLE_MS,
  gcMs: GC_MS,
  limits: { total: CEILING, byServer: Object.fromEntries(limits), bySource: { [capped.localAddress]: capped.cap! } },
};
// The worker loads servers.ts through tsx's loader, registered in the worker itself (a loader
// registered by --import in the main thread does not reach a worker's entry module on Node 20).
const workerEntry = new URL('./servers.ts', import.meta.url).href;
const worker = new Worker(
  `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(workerEntry)}); })`,
  { eval: true, workerData: workerInit },
);

// The servers' own counts, sampled by the worker every SAMPLE_MS, checked against the limits here.
const serverSampled = {
  samples: 0,
  maxTotal: 0,
  maxByServer: {} as Record<string, number>,
  maxBySource: {} as Record<string, number>,
  maxLiveTotal: 0,
};
// Counts above a limit: the core's own (at samples and grants), and the servers' (at samples).
const breaches = { core: [] as string[], coreCount: 0, server: [] as string[], serverCount: 0 };
function breach(kind: 'core' | 'server', text: string): void {
  if (kind === 'core') {
    breaches.coreCount++;
    if (breaches.core.length < 10) breaches.core.push(text);
  } else {
    breaches.serverCount++;
    if (breaches.server.length < 10) breaches.server.push(text);
  }
}
let lastKernel: Counts['kernel'] | undefined;
function onServerSample(at: number, c: Counts): void {
  serverSampled.samples++;
  lastKernel = c.kernel;
  serverSampled.maxTotal = Math.max(serverSampled.maxTotal, c.total);
  serverSampled.maxLiveTotal = Math.max(serverSampled.maxLiveTotal, c.liveTotal);
  if (c.total > CEILING)
    breach(
      'server',
      `${new Date(at).toISOString()}: the servers count ${c.total} open connections > ceiling ${CEILING}`,
    );
  for (const [s, n] of Object.entries(c.byServer)) {
    serverSampled.maxByServer[s] = Math.max(serverSampled.maxByServer[s] ?? 0, n);
    if (n > limits.get(s)!)
      breach(
        'server',
        `${new Date(at).toISOString()}: server ${s} counts ${n} open connections > its limit ${limits.get(s)}`,
      );
  }
  for (const [src, n] of Object.entries(c.bySource)) {
    serverSampled.maxBySource[src] = Math.max(serverSampled.maxBySource[src] ?? 0, n);
    if (src === capped.localAddress && n > capped.cap!)
      breach(
        'server',
        `${new Date(at).toISOString()}: the servers count ${n} connections from ${src} > ${capped.name}'s cap ${capped.cap}`,
      );
  }
}

const rpc = workerRpc<FromWorker, ToWorker>(worker, (m) => {
  if (m.type !== 'sample') return false;
  onServerSample(m.at, m.counts);
  return true;
});
const workerErrors = rpc.errors;
const ask = rpc.ask;
async function serverStats(withIds: boolean): Promise<AllStats> {
  return (await ask('stats', { type: 'stats', withIds })).stats;
}

const ready = await ask('ready');
rpc.serversUp();
const deadPort = await freePort();
const routes: Record<string, { host: string; port: number }> = {};
for (const d of work.domains)
  routes[d.name] = { host: '127.0.0.1', port: d.server === DEAD ? deadPort : ready.ports[d.server] };

// ---- the core -----------------------------------------------------------------------------------

const domainScopes: Record<string, ScopeOptions> = {};
for (const d of work.domains) {
  if (d.scopeMax !== undefined)
    domainScopes[d.name] = { maxOutboundConnections: d.perPair, scopeMaxOutboundConnections: d.scopeMax };
  else if (d.server === DEAD) domainScopes[d.name] = { messageExpiration: o.deadExpire };
}
const config: CoreConfig = {
  global: {
    maxOutboundConnections: PER_PAIR,
    serverMaxOutboundConnections: SERVER_MAX,
    serverReserveOutboundConnections: RESERVE,
    retryInterval: 0.5,
    maxRetryInterval: 2,
    messageExpiration: o.expire,
    idleTimeout: 0.5,
    delayedQueueScanInterval: 0.25,
    hostFailureRetry: 1,
    maxDeliveriesPerConnection: o.maxDeliveries,
  },
  domains: domainScopes,
  bindings: { [capped.name]: { serverMaxOutboundConnections: capped.cap! } },
};
const TIMEOUTS = { connect: 1000, greeting: 2000, command: 2000, message: 10_000, idle: 10_000, quit: 1000 };
const transport = new SmtpTransport({
  routes,
  bindings: Object.fromEntries(BINDINGS.map((b) => [b.name, { localAddress: b.localAddress, ehloName: b.ehloName }])),
  timeouts: TIMEOUTS,
  hostFailureRetry: 1000,
});
let spoolDir: string | undefined;
let store: MessageStore;
if (o.store !== 'memory') {
  spoolDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-soak-'));
  store = o.store === 'file' ? new FileSpool(spoolDir) : new LogSpool(spoolDir);
} else {
  store = new MemoryStore();
}
const core = new MailQueueCore({
  bindings: BINDINGS.map((b) => b.name),
  config,
  transport,
  store,
  deliveryTimeout: 15_000,
});

// ---- outcomes -----------------------------------------------------------------------------------

const outcome = new Uint8Array(N + 1); // 0 none, 1 delivered, 2 bounced
const expiredIds = new Uint8Array(N + 1); // 1: bounced with reason 'expired'
const pairOf = new Uint32Array(N + 1); // domain index * bindings + binding index, per id
let started = 0; // ids handed to a submitter
let submitted = 0; // submit() resolved
let finals = 0;
let delivered = 0;
let bouncedTotal = 0;
const bounced: Record<string, number> = {};
let deferredEvents = 0;
const deferredByCode: Record<string, number> = {};
let deferredAfterFinal = 0;
const duplicateOutcomes: string[] = [];
let duplicateOutcomeCount = 0;
const strangers: number[] = [];
const errors: string[] = [];
let errorCount = 0;
let resolveDrained!: () => void;
const drained = new Promise<void>((r) => {
  resolveDrained = r;
});
const roomWaiters: Array<() => void> = [];
const LOW_WATER = Math.max(1, o.window - Math.max(100, Math.floor(o.window / 50)));

function final(id: number, kind: 1 | 2, label: string): void {
  if (!Number.isInteger(id) || id < 1 || id > N) {
    if (strangers.length < 10) strangers.push(id);
    return;
  }
  if (outcome[id] !== 0) {
    duplicateOutcomeCount++;
    if (duplicateOutcomes.length < 10)
      duplicateOutcomes.push(`#${id}: ${outcome[id] === 1 ? 'delivered' : 'bounced'} then ${label}`);
    return;
  }
  outcome[id] = kind;
  finals++;
  if (roomWaiters.length > 0 && started - finals <= LOW_WATER) for (const w of roomWaiters.splice(0)) w();
  if (finals === N) resolveDrained();
}

core.on('delivered', (e: { id: number }) => {
  delivered++;
  final(e.id, 1, 'delivered');
});
const serverOfDomain = new Map(work.domains.map((d) => [d.name, d.server]));
const bouncedByServer: Record<string, Record<string, number>> = {};
core.on('bounce', (e: { id: number; reason: string; domain?: string }) => {
  bouncedTotal++;
  bounced[e.reason] = (bounced[e.reason] ?? 0) + 1;
  if (e.reason === 'expired' && e.id >= 1 && e.id <= N) expiredIds[e.id] = 1;
  const server = serverOfDomain.get(e.domain ?? '') ?? '?';
  const b = (bouncedByServer[server] ??= {});
  b[e.reason] = (b[e.reason] ?? 0) + 1;
  final(e.id, 2, `bounce (${e.reason})`);
});
core.on('deferred', (e: { id: number; code?: number }) => {
  deferredEvents++;
  const k = e.code === undefined ? 'no reply' : String(e.code);
  deferredByCode[k] = (deferredByCode[k] ?? 0) + 1;
  if (e.id >= 1 && e.id <= N && outcome[e.id] !== 0) deferredAfterFinal++;
});
core.on('error', (err: unknown) => {
  errorCount++;
  if (errors.length < 10) errors.push(err instanceof Error ? err.message : String(err));
});

// The core's own counts at every new connection.
const iTotal = core.counterIndex.connections;
const iCapped = core.counterIndex[`connections:${capped.name}`];
// The domains with a scope cap (tight-*, stall-*), by server: at a grant to one of them, the core's
// counts for each and for their server's sum.
const scopedByServer = new Map<string, typeof work.domains>();
for (const d of work.domains)
  if (d.scopeMax !== undefined) scopedByServer.set(d.server, [...(scopedByServer.get(d.server) ?? []), d]);
const scopedServerOf = new Map(work.domains.filter((d) => d.scopeMax !== undefined).map((d) => [d.name, d.server]));
const coreAtGrant = { grants: 0, peakTotal: 0, peakCapped: 0, peakScoped: {} as Record<string, number> };
core.on('connection', (g: Grant) => {
  coreAtGrant.grants++;
  checkCoreCounts('at a grant');
  const server = scopedServerOf.get(g.domain);
  if (server !== undefined) {
    let sum = 0;
    for (const d of scopedByServer.get(server)!) {
      if (!core.hasDomain(d.name)) continue;
      const n = core.domain(d.name).connections();
      if (n > d.scopeMax!)
        breach('core', `the core counts ${n} connections to ${d.name} > its scope cap ${d.scopeMax}`);
      sum += n;
    }
    coreAtGrant.peakScoped[server] = Math.max(coreAtGrant.peakScoped[server] ?? 0, sum);
    if (sum > limits.get(server)!)
      breach('core', `the core counts ${sum} connections to the ${server} server's domains > ${limits.get(server)}`);
  }
});
// The transport's own sockets, against the core's leases. The transport connects with net.connect()
// (a property of node:net looked up at each call), so wrapping it here sees every socket it opens,
// until the socket's 'close'. A lease must outlive its socket: when a new socket is created, the
// sockets not yet closed can be at most as many as the leases, in total and from the capped
// binding's address (the new lease is already counted). More sockets than leases means a lease
// went back while its socket was still open, which a receiver counts as one connection too many.
const liveSockets = { total: 0, capped: 0 };
const socketsOverLeases = { count: 0, first: [] as string[], checked: 0 };
{
  const original = net.connect;
  (net as unknown as { connect: (...a: unknown[]) => net.Socket }).connect = function (
    this: unknown,
    ...args: unknown[]
  ) {
    const socket = (original as (...a: unknown[]) => net.Socket).apply(this, args);
    const capped_ = (args[0] as { localAddress?: string } | undefined)?.localAddress === capped.localAddress;
    liveSockets.total++;
    if (capped_) liveSockets.capped++;
    socket.once('close', () => {
      liveSockets.total--;
      if (capped_) liveSockets.capped--;
    });
    if (!core.closed) {
      socketsOverLeases.checked++;
      const leases = core.counters[iTotal];
      const cappedLeases = core.counters[iCapped];
      if (liveSockets.total > leases || liveSockets.capped > cappedLeases) {
        socketsOverLeases.count++;
        if (socketsOverLeases.first.length < 10) {
          socketsOverLeases.first.push(
            `${new Date().toISOString().slice(11, 23)}: ${liveSockets.total} sockets / ${leases} leases, ` +
              `${liveSockets.capped} / ${cappedLeases} on ${capped.name}`,
          );
        }
      }
    }
    return socket;
  };
}

function checkCoreCounts(when: string): void {
  const total = core.counters[iTotal];
  const c = core.counters[iCapped];
  coreAtGrant.peakTotal = Math.max(coreAtGrant.peakTotal, total);
  coreAtGrant.peakCapped = Math.max(coreAtGrant.peakCapped, c);
  if (total > CEILING) breach('core', `${when}: the core counts ${total} connections > ceiling ${CEILING}`);
  if (c > capped.cap!)
    breach('core', `${when}: the core counts ${c} connections on ${capped.name} > its cap ${capped.cap}`);
}

// ---- sampling -----------------------------------------------------------------------------------

interface Sample {
  t: number; // s since start
  submitted: number;
  finals: number;
  queued: number;
  connections: number;
  rss: number; // bytes
  heapUsed: number;
  /** heapTotal + external (Buffers, ArrayBuffers): what V8 and Node account for; RSS minus this is
   *  native memory (the addon, libuv, the allocator) and code. */
  v8AndExternal: number;
  afterGc: boolean;
}
const samples: Sample[] = [];
const booksBreaks: string[] = [];
let booksBreakCount = 0;
let maxQueued = 0;
let maxCoreConnections = 0;

function takeSample(afterGc: boolean): void {
  if (core.closed) return;
  const s = core.stats();
  const queued = s.active + s.delayed + s.inFlight;
  maxQueued = Math.max(maxQueued, queued);
  maxCoreConnections = Math.max(maxCoreConnections, s.connections);
  checkCoreCounts('at a sample');
  if (submitted !== delivered + bouncedTotal + queued) {
    booksBreakCount++;
    if (booksBreaks.length < 10) {
      booksBreaks.push(
        `t=${((performance.now() - t0) / 1000).toFixed(2)}s: submitted ${submitted} != delivered ${delivered} + bounced ${bouncedTotal} + queued ${queued} (active ${s.active}, delayed ${s.delayed}, in flight ${s.inFlight})`,
      );
    }
  }
  const m = process.memoryUsage();
  samples.push({
    t: (performance.now() - t0) / 1000,
    submitted,
    finals,
    queued,
    connections: s.connections,
    rss: m.rss,
    heapUsed: m.heapUsed,
    v8AndExternal: m.heapTotal + m.external,
    afterGc,
  });
}

// ---- progress -----------------------------------------------------------------------------------

let lastLine = { t: 0, finals: 0 };
function progress(): void {
  const t = (performance.now() - t0) / 1000;
  const s = core.closed ? undefined : core.stats();
  const rate = (finals - lastLine.finals) / Math.max(1e-3, t - lastLine.t);
  lastLine = { t, finals };
  console.log(
    `${t.toFixed(0).padStart(5)}s  submitted ${fmt(submitted).padStart(9)}  delivered ${fmt(delivered).padStart(9)}  ` +
      `bounced ${fmt(bouncedTotal).padStart(6)}  deferrals ${fmt(deferredEvents).padStart(7)}` +
      (s
        ? `  queued ${fmt(s.active + s.delayed + s.inFlight).padStart(6)}  conns ${String(s.connections).padStart(3)}`
        : '') +
      (lastKernel
        ? `  at receivers ${String(lastKernel.total).padStart(3)} (${STALL} ${lastKernel.byServer[STALL] ?? 0})`
        : '') +
      `  ${fmt(rate).padStart(5)}/s  rss ${mb(process.memoryUsage.rss()).toFixed(0)} MB`,
  );
}

// ---- run ----------------------------------------------------------------------------------------

console.log(
  `mail-queue-core soak: ${fmt(N)} messages, window ${fmt(o.window)}, ${o.domains} domains, ${BINDINGS.length} bindings, ` +
    `faults x${o.faults}, store ${o.store}, seed ${o.seed}; node ${process.version}, ${os.cpus().length} CPUs` +
    (gc ? '' : '  (no --expose-gc: RSS samples are taken without a forced gc)'),
);
console.log(
  `servers on 127.0.0.1: ${SERVERS.map((s) => `${s.name}:${ready.ports[s.name]}`).join(', ')}; dead.example -> 127.0.0.1:${deadPort} (nothing listens)`,
);
console.log(
  `${STALL} server: ${work.domains
    .filter((d) => d.server === STALL)
    .map((d) => `${d.name} (cap ${d.scopeMax})`)
    .join(', ')}, ${o.stallShare}% of the mail, ` +
    `${+(STALL_BODY / 1048576).toFixed(1)} MiB bodies; it stops reading a message's first transaction after 354 for ${STALL_MS / 1000} s`,
);
console.log(
  `transport timeouts (ms): ${JSON.stringify(TIMEOUTS)}; messageExpiration ${o.expire} s (dead domain ${o.deadExpire} s)\n`,
);

const rssStart = process.memoryUsage.rss();
const t0 = performance.now();
const elu0 = performance.eventLoopUtilization();
const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();
core.start();
const sampler = setInterval(() => takeSample(false), SAMPLE_MS);
const collector = setInterval(() => {
  if (!gc) return;
  gc();
  takeSample(true);
}, GC_MS);
const ticker = setInterval(progress, o.progress * 1000);

const random = prng(o.seed ^ 0xb0d1);
const padding = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore. ';
// The stall server's messages are STALL_BODY bytes: more than the kernel buffers of both ends take
// in, so that the client's writes block while the server does not read.
const stallPadding = Buffer.from(`${padding}\r\n`.repeat(Math.ceil(STALL_BODY / (padding.length + 2))));
let stallMessages = 0;
async function submitOne(id: number): Promise<void> {
  const di = work.picker.pick(random());
  // The capped binding carries a fifth of the mail: less than its share of the connections
  // (80 of 300), so that it keeps up, but it still reaches its cap whenever it has a backlog.
  const bi = random() < 0.8 ? 0 : 1;
  const d = work.domains[di];
  const b = BINDINGS[bi];
  pairOf[id] = di * BINDINGS.length + bi;
  const rcpt = `user${id % 997}@${d.name}`;
  const lines = 1 + Math.floor(random() * 8);
  const head = `From: <${senderFor(id)}>\r\nTo: <${rcpt}>\r\nSubject: soak ${id}\r\nMessage-ID: <${id}@soak.test>\r\nX-Id: ${id}\r\n\r\n`;
  let body: Buffer;
  if (d.server === STALL) {
    stallMessages++;
    body = Buffer.concat([Buffer.from(head), stallPadding]);
  } else {
    body = Buffer.from(head + `${padding}\r\n`.repeat(lines));
  }
  await core.submit({ id, domain: d.name, binding: b.name, envelope: { from: senderFor(id), to: [rcpt] } }, body);
  submitted++;
}

// Submitters: one for the memory store (submit() settles in microtasks), several for the durable
// stores (each put() waits for its sync; LogSpool's concurrent puts share one).
const submitters = o.store === 'memory' ? 1 : o.store === 'file' ? 32 : 64;
const submitErrors: string[] = [];
async function submitter(): Promise<void> {
  let sinceYield = 0;
  while (started < N && submitErrors.length === 0) {
    if (started - finals >= o.window) {
      await new Promise<void>((r) => roomWaiters.push(r));
      continue;
    }
    const id = ++started;
    try {
      await submitOne(id);
    } catch (err) {
      submitErrors.push(`#${id}: ${(err as Error).message}`);
      return;
    }
    // Let the connections run while the submitter works, as an MTA's intake would.
    if (++sinceYield >= 256) {
      sinceYield = 0;
      await yieldToLoop();
    }
  }
}
const submitting = Promise.all(Array.from({ length: submitters }, () => submitter()));
await submitting;
const tSubmitted = performance.now();
if (submitErrors.length) resolveDrained();
let drainTimer: NodeJS.Timeout | undefined;
await Promise.race([
  drained,
  new Promise<void>((r) => {
    drainTimer = setTimeout(r, o.drainTimeout * 1000);
  }),
]);
clearTimeout(drainTimer);
const tDrained = performance.now();
clearInterval(ticker);
clearInterval(collector);
takeSample(false);
clearInterval(sampler);
progress();
lag.disable();
const busy = performance.eventLoopUtilization(elu0).utilization;
const timedOut = finals < N;
const elapsed = (tDrained - t0) / 1000;

const stuck: string[] = [];
if (timedOut) {
  for (let id = 1; id <= N && stuck.length < 10; id++) {
    if (outcome[id] === 0) stuck.push(`#${id} ${JSON.stringify(core.message(id) ?? 'not in the core')}`);
  }
}
const beforeStop = core.stats();
// shutDown() asks for the servers' stats first right after stop() and transport.close(): that first
// ask also polls the receivers' kernel counts until they are 0, at most KERNEL_DRAIN_MS.
const KERNEL_DRAIN_MS = 2000;
let kernelAfterStop: Extract<FromWorker, { type: 'kernelDrain' }> | undefined;
const { hangs, stopMs, after, summary, invariantsOk, srv } = await shutDown(
  core,
  transport,
  async (withIds) => {
    kernelAfterStop ??= await ask('kernelDrain', { type: 'kernelDrain', waitMs: KERNEL_DRAIN_MS });
    return serverStats(withIds);
  },
  20_000,
  100,
);
let storeLeft = 0;
if (store instanceof MemoryStore) storeLeft = store.size;
else for await (const _ of store.list()) storeLeft++;
core.close();
await store.close?.();
await ask('closed', { type: 'close' });
await worker.terminate();
if (spoolDir) fs.rmSync(spoolDir, { recursive: true, force: true });

// ---- RSS ----------------------------------------------------------------------------------------

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return NaN;
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) * (x - mx);
  }
  return den === 0 ? NaN : num / den;
}
// The second half: from N/2 messages submitted until the last submission (the window is full, the
// run is in its steady state). x is messages done (final outcomes), in millions; y is MB.
const steady = samples.filter((s) => s.submitted >= N / 2 && s.t <= (tSubmitted - t0) / 1000);
const steadyGc = steady.filter((s) => s.afterGc);
const slopeRssGc = slope(steadyGc.map((s) => [s.finals / 1e6, mb(s.rss)]));
const slopeRssAll = slope(steady.map((s) => [s.finals / 1e6, mb(s.rss)]));
const slopeHeapGc = slope(steadyGc.map((s) => [s.finals / 1e6, mb(s.heapUsed)]));
const slopeNativeGc = slope(steadyGc.map((s) => [s.finals / 1e6, mb(s.rss - s.v8AndExternal)]));
const rssForCheck = Number.isFinite(slopeRssGc) && steadyGc.length >= 5 ? slopeRssGc : slopeRssAll;
const rssPeak = samples.reduce((a, s) => Math.max(a, s.rss), 0);
const rssAtHalf = steady.length ? steady[0].rss : NaN;
const rssAtEndOfSubmit = steady.length ? steady[steady.length - 1].rss : NaN;
const rssEnd = process.memoryUsage.rss();
// A coarse RSS series: the first sample after each tenth of the messages submitted.
const rssSeries: Array<{ submitted: number; t: number; rssMB: number; heapMB: number }> = [];
for (let k = 1; k <= 10; k++) {
  const s = samples.find((x) => x.submitted >= (k * N) / 10);
  if (s)
    rssSeries.push({
      submitted: s.submitted,
      t: Math.round(s.t),
      rssMB: Math.round(mb(s.rss)),
      heapMB: Math.round(mb(s.heapUsed)),
    });
}

// ---- checks -------------------------------------------------------------------------------------

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  skipped?: boolean;
}
const checks: Check[] = [];
const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });

const stillQueued = after.active + after.delayed + after.inFlight;
check(
  'books at every sample',
  booksBreakCount === 0,
  booksBreakCount === 0
    ? `${fmt(samples.length)} samples: submitted = delivered + bounced + queued`
    : `${booksBreakCount} samples off: ${booksBreaks.slice(0, 3).join('; ')}`,
);
check(
  'books at the end',
  submitted === delivered + bouncedTotal + stillQueued && stillQueued === 0 && submitted === N,
  `submitted ${fmt(submitted)} = delivered ${fmt(delivered)} + bounced ${fmt(bouncedTotal)} + still queued ${fmt(stillQueued)}`,
);
check(
  'drained',
  !timedOut && submitErrors.length === 0,
  timedOut
    ? `only ${fmt(finals)} of ${fmt(N)} final after ${o.drainTimeout} s of draining; first without one: ${stuck.join('; ')}` +
        (submitErrors.length ? `; submit failed: ${submitErrors.slice(0, 3).join('; ')}` : '')
    : `every message final ${((tDrained - tSubmitted) / 1000).toFixed(1)} s after the last submission`,
);
check(
  'one outcome per message',
  duplicateOutcomeCount === 0 && strangers.length === 0 && deferredAfterFinal === 0,
  duplicateOutcomeCount || strangers.length || deferredAfterFinal
    ? `${duplicateOutcomeCount} second outcomes (${duplicateOutcomes.slice(0, 3).join('; ')}), events for unknown ids: ${strangers.join(', ') || 'none'}, deferrals after a final outcome: ${deferredAfterFinal}`
    : 'no id had two final outcomes or a deferral after its final one',
);
check(
  'core.summary() agrees',
  summary.delivered === delivered && summary.bounced === bouncedTotal && summary.deferred === deferredEvents,
  `summary delivered/bounced/deferred ${fmt(summary.delivered)}/${fmt(summary.bounced)}/${fmt(summary.deferred)} vs events ${fmt(delivered)}/${fmt(bouncedTotal)}/${fmt(deferredEvents)}`,
);

const acceptedById = srv.acceptedById!;
const attemptsById = srv.attemptsById!;
let acceptedTwice = 0;
let acceptedNotDelivered = 0;
let deliveredNotAccepted = 0;
const twiceIds: number[] = [];
const attemptsHist = new Map<number, number>();
let maxAttempts = 0;
for (let id = 1; id <= N; id++) {
  const a = acceptedById[id];
  if (a > 1) {
    acceptedTwice++;
    if (twiceIds.length < 10) twiceIds.push(id);
  }
  if (a > 0 && outcome[id] !== 1) acceptedNotDelivered++;
  if (outcome[id] === 1 && a === 0) deliveredNotAccepted++;
  const t = attemptsById[id];
  attemptsHist.set(t, (attemptsHist.get(t) ?? 0) + 1);
  if (t > maxAttempts) maxAttempts = t;
}
check(
  'each id delivered at most once',
  acceptedTwice === 0,
  acceptedTwice === 0
    ? 'no id was accepted (250 after the final dot) twice'
    : `${acceptedTwice} ids accepted more than once: ${twiceIds.join(', ')}`,
);
check(
  'servers accepted = delivered',
  acceptedNotDelivered === 0 && deliveredNotAccepted === 0,
  `${acceptedNotDelivered} accepted but not reported delivered; ${deliveredNotAccepted} reported delivered but never accepted`,
);
check(
  'no lease held after stop()',
  after.connections === 0 &&
    after.inFlight === 0 &&
    after.opened === after.released &&
    invariantsOk &&
    hangs.length === 0,
  `connections ${after.connections}, in flight ${after.inFlight}, leases opened ${fmt(after.opened)} / released ${fmt(after.released)}, invariants ${invariantsOk ? 'hold' : 'BROKEN'}` +
    (hangs.length ? `; ${hangs.join('; ')}` : ''),
);
check('store empty', storeLeft === 0, `${storeLeft} messages left in the ${o.store} store`);
check(
  'no connection open at the servers',
  srv.globalOpen === 0,
  `the servers count ${srv.globalOpen} open after stop() and transport.close()`,
);
check(
  'core counts within limits',
  breaches.coreCount === 0,
  breaches.coreCount === 0
    ? `at ${fmt(samples.length)} samples and ${fmt(coreAtGrant.grants)} grants: total <= ${CEILING}, ${capped.name} <= ${capped.cap}, tight and stall domains <= their scope caps`
    : `${breaches.coreCount} times: ${breaches.core.slice(0, 3).join('; ')}`,
);
check(
  'server counts within limits (sampled)',
  breaches.serverCount === 0,
  breaches.serverCount === 0
    ? `at ${fmt(serverSampled.samples)} samples: total, per server and per source address`
    : `${breaches.serverCount} times: ${breaches.server.slice(0, 3).join('; ')}`,
);
// Peaks kept by the servers at every accept, on live connections: a connection the server has
// ended itself (221 to QUIT, a refused greeting) no longer counts, as in a real MTA; it only waits
// for the client's FIN, which the client cannot make reach the server before its next SYN. The
// strict peaks (open until that FIN) are reported next to them.
const peakBreaches: string[] = [];
const livePeakOf = (name: string) => srv.livePeakByServer[name] ?? 0;
if (srv.liveGlobalPeak > CEILING) peakBreaches.push(`total ${srv.liveGlobalPeak} > ${CEILING}`);
for (const s of srv.servers)
  if (livePeakOf(s.name) > limits.get(s.name)!)
    peakBreaches.push(`${s.name} ${livePeakOf(s.name)} > ${limits.get(s.name)}`);
const liveCapped = srv.livePeakBySource[capped.localAddress] ?? 0;
if (liveCapped > capped.cap!)
  peakBreaches.push(`${capped.localAddress} (${capped.name}) ${liveCapped} > ${capped.cap}`);
const tightRefused = srv.servers.find((s) => s.name === 'tight')!.refusedByLimit;
if (tightRefused > 0) peakBreaches.push(`the tight server refused ${tightRefused} connections beyond its limit`);
const strictPeaks = `strict peaks: total ${srv.globalPeak}, ${capped.localAddress} ${srv.peakBySource[capped.localAddress] ?? 0}, tight ${srv.servers.find((x) => x.name === 'tight')!.peak}, ${STALL} ${srv.servers.find((x) => x.name === STALL)!.peak}`;
check(
  'server peaks within limits (every accept)',
  peakBreaches.length === 0,
  peakBreaches.length === 0
    ? `live peaks at every TCP accept: total ${srv.liveGlobalPeak}/${CEILING}, ${capped.localAddress} ${liveCapped}/${capped.cap}, tight ${livePeakOf('tight')}/${limits.get('tight')}, ${STALL} ${livePeakOf(STALL)}/${limits.get(STALL)} (${strictPeaks})`
    : `live peaks over a limit: ${peakBreaches.join('; ')}; ${fmt(srv.liveOverLimitCount)} accepts took a live count over its limit (the table above says which connection closed next) (${strictPeaks})`,
);
check(
  'transport sockets within leases',
  socketsOverLeases.count === 0,
  socketsOverLeases.count === 0
    ? `at each of ${fmt(socketsOverLeases.checked)} new sockets, the transport's open sockets were no more than the core's leases (in total and on ${capped.name})`
    : `${fmt(socketsOverLeases.count)} of ${fmt(socketsOverLeases.checked)} new sockets found more sockets open than leases: ${socketsOverLeases.first.slice(0, 3).join('; ')}`,
);
// The receivers' own view, from their kernels: read once a second and at every accept of the tight
// and stall servers. A connection the client gave up on counts until the receiving kernel lets go
// of it (an RST; a FIN only once the receiver has read up to it and closed).
const kernelPeaks =
  `total ${srv.kernelPeak.total}/${CEILING}, ${capped.localAddress} ${srv.kernelPeak.bySource[capped.localAddress] ?? 0}/${capped.cap}, ` +
  srv.servers.map((x) => `${x.name} ${x.kernelPeak}/${limits.get(x.name)}`).join(', ');
const lasted = (ms: number) => (ms < 0 ? 'not back within it by the end' : `back within it ${fmt(ms)} ms later`);
check(
  'receiver (kernel) counts within limits',
  srv.kernelOverLimitCount === 0,
  srv.kernelOverLimitCount === 0
    ? `peaks over ${fmt(srv.kernelReads)} reads of /proc/net/tcp: ${kernelPeaks}`
    : `${fmt(srv.kernelEpisodes)} time${srv.kernelEpisodes === 1 ? '' : 's'} over a limit (${fmt(srv.kernelOverLimitCount)} reads), e.g. ` +
        srv.kernelOverLimit
          .slice(0, 3)
          .map(
            (x) =>
              `${x.scope} ${x.peak} > ${x.limit}, ${lasted(x.lastedMs)} (at first ESTABLISHED ${x.established}, CLOSE_WAIT ${x.closeWait}, ` +
              `SYN_RECV ${x.synRecv}, stalled by the server ${x.stalled}; the clients' ends: ${x.clientSide})`,
          )
          .join('; ') +
        `; peaks: ${kernelPeaks}`,
);
const k = kernelAfterStop;
check(
  'no connection left at any receiver after stop()',
  k !== undefined && k.open === 0,
  k === undefined
    ? 'not measured'
    : k.open === 0
      ? `the receivers' kernels had no connection open ${k.waitedMs} ms after stop() and transport.close()`
      : `${k.open} still open at the receivers ${k.waitedMs} ms after stop() and transport.close(): ${k.left.slice(0, 5).join('; ')}${k.open > 5 ? '; ...' : ''}`,
);
if (N < RSS_MIN_MESSAGES) {
  // RSS climbs for the first few hundred thousand messages here (the window's messages, the sockets,
  // V8's heap sizing, the allocator's arenas): a shorter run has no steady second half to judge.
  checks.push({
    name: 'RSS flat after warm-up',
    ok: true,
    skipped: true,
    detail: `not judged below ${fmt(RSS_MIN_MESSAGES)} messages (slope ${Number.isFinite(rssForCheck) ? rssForCheck.toFixed(1) : 'n/a'} MB per million over the second half)`,
  });
} else {
  check(
    'RSS flat after warm-up',
    Number.isFinite(rssForCheck) && rssForCheck <= o.rssSlopeLimit,
    `${Number.isFinite(rssForCheck) ? rssForCheck.toFixed(1) : 'n/a'} MB per million messages over the second half (limit ${o.rssSlopeLimit}; ` +
      `${steadyGc.length >= 5 ? `${steadyGc.length} samples after gc` : `${steady.length} raw samples`})`,
  );
}
check(
  'no errors',
  errorCount === 0 && srv.anomalyCount === 0 && workerErrors.length === 0,
  `${errorCount} 'error' events${errors.length ? ` (${errors.slice(0, 3).join('; ')})` : ''}, ${srv.anomalyCount} server anomalies${srv.anomalies.length ? ` (${srv.anomalies.slice(0, 3).join('; ')})` : ''}, ${workerErrors.length} worker errors${workerErrors.length ? ` (${workerErrors.slice(0, 3).join('; ')})` : ''}`,
);

// ---- report -------------------------------------------------------------------------------------

const steadyRate = (() => {
  if (steady.length < 2) return NaN;
  const a = steady[0];
  const b = steady[steady.length - 1];
  return (b.finals - a.finals) / (b.t - a.t);
})();
const faultTotals: Record<string, number> = {};
for (const s of srv.servers) {
  for (const k of [
    'greet421',
    'greet554',
    'greetHang',
    'rcpt451',
    'rcpt550',
    'rcptStall',
    'dataDrop',
    'data451',
    'data554',
    'dataStall',
  ] as const) {
    faultTotals[k] = (faultTotals[k] ?? 0) + s[k];
  }
}
const transactions = srv.servers.reduce((a, s) => a + s.transactions, 0);
const connectionsTotal = srv.servers.reduce((a, s) => a + s.connections, 0);
const figures: Record<string, string> = {
  'messages submitted': fmt(N),
  delivered: fmt(delivered),
  bounced: `${fmt(bouncedTotal)}  (${
    Object.entries(bounced)
      .map(([k, v]) => `${k} ${fmt(v)}`)
      .join(', ') || 'none'
  })`,
  'still queued after draining': fmt(stillQueued),
  'deferrals (transient failures, retried)': `${fmt(deferredEvents)}  (${Object.entries(deferredByCode)
    .sort((x, y) => y[1] - x[1])
    .map(([k, v]) => `${k}: ${fmt(v)}`)
    .join(', ')})`,
  'elapsed: submitting / until drained': `${((tSubmitted - t0) / 1000).toFixed(1)} s / ${elapsed.toFixed(1)} s`,
  'outcomes per second: whole run / second half': `${fmt(finals / elapsed)} / ${fmt(steadyRate)}`,
  'main thread busy (ELU) / server worker busy': `${Math.round(busy * 100)}% / ${Math.round(srv.elu * 100)}%`,
  'event-loop delay p50 / p99 / max (main)': `${(lag.percentile(50) / 1e6).toFixed(1)} / ${(lag.percentile(99) / 1e6).toFixed(1)} / ${(lag.max / 1e6).toFixed(1)} ms`,
  'most queued at once (active + delayed + in flight)': fmt(maxQueued),
  'SMTP transactions / server connections': `${fmt(transactions)} / ${fmt(connectionsTotal)}`,
  'faults injected': Object.entries(faultTotals)
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(', '),
  'flap server: port closed / re-listen retries': `${srv.servers.find((s) => s.name === 'flap')!.flaps} times / ${srv.servers.find((s) => s.name === 'flap')!.relistenRetries}`,
  'transactions per message: histogram': [...attemptsHist]
    .sort((x, y) => x[0] - y[0])
    .map(([k, v]) => `${k}: ${fmt(v)}`)
    .join(', '),
  'leases granted / released': `${fmt(after.opened)} / ${fmt(after.released)}`,
  'core connections: most at a sample / at a grant / ceiling': `${maxCoreConnections} / ${coreAtGrant.peakTotal} / ${CEILING} (serverMax ${SERVER_MAX} + reserve ${RESERVE})`,
  [`core connections on ${capped.name}: most / cap`]: `${coreAtGrant.peakCapped} / ${capped.cap}`,
  'servers: peak total (every accept) / most at a sample': `${srv.globalPeak} / ${serverSampled.maxTotal}`,
  'servers: peak total of live connections (not ended by the server)': `${srv.liveGlobalPeak}`,
  'servers: accepts over a limit, strict / live': `${fmt(srv.overLimitCount)} / ${fmt(srv.liveOverLimitCount)}`,
  "receivers' kernels: peak total / times over a limit (reads) / not confirmed by a second read": `${srv.kernelPeak.total} / ${fmt(srv.kernelEpisodes)} (${fmt(srv.kernelOverLimitCount)} of ${fmt(srv.kernelReads)} reads) / ${fmt(srv.kernelUnconfirmed)}`,
  "receivers' kernels: time the server worker spent reading /proc/net/tcp / duplicate lines dropped": `${(srv.kernelReadMs / 1000).toFixed(1)} s (${(srv.kernelReadMs / Math.max(1, srv.kernelReads)).toFixed(1)} ms a read) / ${fmt(srv.kernelDuplicates)}`,
  'connections reset by the client before the server accepted them': fmt(
    srv.servers.reduce((a, x) => a + x.resetBeforeAccept, 0),
  ),
  [`${STALL} server: messages / stalled / reset by the client / read on after ${STALL_MS / 1000} s`]: (() => {
    const x = srv.servers.find((y) => y.name === STALL)!;
    return `${fmt(stallMessages)} (${+(STALL_BODY / 1048576).toFixed(1)} MiB each) / ${x.stalled} / ${x.stallsReset} / ${x.stallsResumed}`;
  })(),
  "receivers' kernels after stop(): open / waited": kernelAfterStop
    ? `${kernelAfterStop.open} / ${kernelAfterStop.waitedMs} ms`
    : 'n/a',
  'idle connections closed by stop()': `${beforeStop.connections} in ${stopMs.toFixed(0)} ms`,
  'RSS: start / at N/2 / end of submitting / peak / end': `${mb(rssStart).toFixed(0)} / ${mb(rssAtHalf).toFixed(0)} / ${mb(rssAtEndOfSubmit).toFixed(0)} / ${mb(rssPeak).toFixed(0)} / ${mb(rssEnd).toFixed(0)} MB`,
  'RSS slope, second half (after gc / all samples)': `${slopeRssGc.toFixed(1)} / ${slopeRssAll.toFixed(1)} MB per million messages`,
  'main heap / RSS outside V8 and Buffers: slopes, second half (after gc)': `${slopeHeapGc.toFixed(1)} / ${slopeNativeGc.toFixed(1)} MB per million messages`,
  'server worker heap after gc (end)': `${mb(srv.heapUsed).toFixed(0)} MB`,
};
console.log('\nFigures');
console.table(Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, { value: v }])));

console.log('Servers (their own counts)');
const serverRows: Record<string, Record<string, string | number>> = {};
for (const s of srv.servers) {
  const limit = limits.get(s.name)!;
  serverRows[s.name] = {
    domains: work.domains.filter((d) => d.server === s.name).length,
    connections: s.connections,
    transactions: s.transactions,
    accepted: s.accepted,
    'peak (every accept)': s.peak,
    'live peak': srv.livePeakByServer[s.name] ?? 0,
    'most at a sample': serverSampled.maxByServer[s.name] ?? 0,
    'kernel peak': s.kernelPeak,
    limit,
    'refused over limit': s.refusedByLimit,
    check: livePeakOf(s.name) <= limit && s.kernelPeak <= limit && s.refusedByLimit === 0 ? 'OK' : 'EXCEEDED',
    bounced:
      Object.entries(bouncedByServer[s.name] ?? {})
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || '0',
  };
}
serverRows['(dead port)'] = {
  domains: 1,
  connections: 0,
  transactions: 0,
  accepted: 0,
  'peak (every accept)': 0,
  'live peak': 0,
  'most at a sample': 0,
  'kernel peak': 0,
  limit: '-',
  'refused over limit': 0,
  check: '-',
  bounced:
    Object.entries(bouncedByServer[DEAD] ?? {})
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || '0',
};
console.table(serverRows);
console.log(
  `Sources (bindings): peak (every accept) ${JSON.stringify(srv.peakBySource)}, live peak ${JSON.stringify(srv.livePeakBySource)}; ${capped.name} (${capped.localAddress}) cap ${capped.cap}`,
);
if (srv.kernelOverLimit.length) {
  console.log(
    `Times a receiver's kernel count went over its limit (the first 20 of ${fmt(srv.kernelEpisodes)}): when it was first read over, its most, how long until\n` +
      "it was back within the limit (ms), the states at the first read, where the servers' books had those connections (open / ended by\n" +
      "the server / not accepted yet / closed), and the states of the clients' ends",
  );
  console.table(
    srv.kernelOverLimit.map((x) => ({
      at: new Date(x.at).toISOString().slice(11, 23),
      read: x.when,
      scope: x.scope,
      most: x.peak,
      limit: x.limit,
      'lasted ms': x.lastedMs < 0 ? 'to the end' : x.lastedMs,
      ESTABLISHED: x.established,
      CLOSE_WAIT: x.closeWait,
      SYN_RECV: x.synRecv,
      stalled: x.stalled,
      books: `${x.inBooks.open} / ${x.inBooks.endedByServer} / ${x.inBooks.notAccepted} / ${x.inBooks.closed}`,
      "clients' ends": x.clientSide,
    })),
  );
  for (const x of srv.kernelOverLimit) {
    if (x.gone.length)
      console.log(
        `  ${new Date(x.at).toISOString().slice(11, 23)} ${x.scope}: back within the limit when these closed: ${x.gone.join('; ')}`,
      );
  }
  const closedHow = srv.kernelOverLimit.flatMap((x) =>
    x.inBooks.closedHow.map((h) => `${new Date(x.at).toISOString().slice(11, 23)} ${x.scope}: ${h}`),
  );
  if (closedHow.length) {
    console.log("Of those, connections the servers' books had already closed (the first few per read):");
    for (const h of closedHow.slice(0, 20)) console.log(`  ${h}`);
  }
}
if (kernelAfterStop && kernelAfterStop.open > 0) {
  console.log(
    `Connections the receivers' kernels still had ${kernelAfterStop.waitedMs} ms after stop() (the first 20):`,
  );
  for (const l of kernelAfterStop.left) console.log(`  ${l}`);
}
if (srv.overLimit.length) {
  console.log(
    'Accepts that took a live count over its limit (the first 20): scope, open (strict) / live / limit, open connections of the\n' +
      'scope the server had already ended and the oldest of those (ms), and the first connection of the scope to close afterwards',
  );
  console.table(
    srv.overLimit.map((x) => ({
      at: new Date(x.at).toISOString().slice(11, 23),
      scope: x.scope,
      open: x.open,
      live: x.live,
      limit: x.limit,
      ending: x.ending,
      oldestEndingMs: x.oldestEndingMs,
      'first to close': x.firstToClose
        ? `${x.firstToClose.msAfter} ms later (${x.firstToClose.how}), ${x.firstToClose.phase}` +
          (x.firstToClose.endedByServerMsBefore >= 0
            ? `, ended by the server ${x.firstToClose.endedByServerMsBefore} ms before`
            : '')
        : '-',
    })),
  );
}
// Where mail expired: per (domain, binding), messages, delivered, expired, and expired without a
// single SMTP transaction (it waited in the queue for its whole life).
{
  const P = work.domains.length * BINDINGS.length;
  const msgs = new Uint32Array(P);
  const deliv = new Uint32Array(P);
  const exp = new Uint32Array(P);
  const expUntried = new Uint32Array(P);
  for (let id = 1; id <= N; id++) {
    const p = pairOf[id];
    msgs[p]++;
    if (outcome[id] === 1) deliv[p]++;
    if (expiredIds[id]) {
      exp[p]++;
      if (attemptsById[id] === 0) expUntried[p]++;
    }
  }
  const pairs = Array.from({ length: P }, (_, p) => p).filter(
    (p) => exp[p] > 0 && work.domains[Math.floor(p / BINDINGS.length)].server !== DEAD,
  );
  pairs.sort((x, y) => exp[y] - exp[x]);
  let untried = 0;
  for (const p of pairs) untried += expUntried[p];
  console.log(
    `Expired mail outside the dead domain: ${fmt(pairs.reduce((a, p) => a + exp[p], 0))} messages (${fmt(untried)} never tried) in ${pairs.length} of ${P} (domain, binding) pairs`,
  );
  if (pairs.length) {
    console.table(
      pairs.slice(0, 12).map((p) => {
        const d = work.domains[Math.floor(p / BINDINGS.length)];
        return {
          domain: d.name,
          binding: BINDINGS[p % BINDINGS.length].name,
          'domain order': Math.floor(p / BINDINGS.length),
          messages: msgs[p],
          delivered: deliv[p],
          expired: exp[p],
          'never tried': expUntried[p],
        };
      }),
    );
  }
  figures['expired outside the dead domain (never tried) / pairs'] =
    `${fmt(pairs.reduce((a, p) => a + exp[p], 0))} (${fmt(untried)}) / ${pairs.length} of ${P}`;
}
console.log('RSS over the run');
console.table(rssSeries);

console.log('Checks');
console.table(
  Object.fromEntries(
    checks.map((c) => [c.name, { result: c.skipped ? 'SKIP' : c.ok ? 'PASS' : 'FAIL', detail: c.detail }]),
  ),
);
const failed = checks.filter((c) => !c.ok);

if (o.json) {
  const out = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    options: o,
    figures,
    servers: serverRows,
    rssSeries,
    checks,
    samplesAfterGcColumns: ['s', 'submitted', 'final', 'rss MB', 'heapUsed MB', 'heapTotal + external MB'],
    samplesAfterGc: samples
      .filter((x) => x.afterGc)
      .map((x) => [
        Math.round(x.t),
        x.submitted,
        x.finals,
        Math.round(mb(x.rss)),
        Math.round(mb(x.heapUsed)),
        Math.round(mb(x.v8AndExternal)),
      ]),
    config: { global: config.global, timeouts: TIMEOUTS, faults: work.faults, window: o.window },
  };
  fs.mkdirSync(path.dirname(path.resolve(o.json)), { recursive: true });
  fs.writeFileSync(o.json, `${JSON.stringify(out, null, 2)}\n`);
}
const skipped = checks.filter((c) => c.skipped).length;
if (failed.length === 0)
  console.log(
    `PASS: ${checks.length - skipped} checks${skipped ? `, ${skipped} skipped` : ''} (wall ${elapsed.toFixed(1)} s)`,
  );
else {
  console.log(`FAIL: ${failed.map((c) => c.name).join(', ')}`);
  for (const c of failed) console.log(`  - ${c.name}: ${c.detail}`);
}
process.exitCode = failed.length === 0 ? 0 : 1;
exitIfStuck();
