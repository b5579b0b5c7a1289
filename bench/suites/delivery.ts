// Issue 20: what the delivery layer costs over the SMTP client it wraps. One child process per
// implementation and round; each starts its own receiver (bench/smtp_sink.ts, a child process of
// its own, so that its CPU is not counted here) and sends --n messages of --size bytes over --conns
// connections to it:
//   --impl plain    nodemailer's SMTPConnection alone: --conns connections, each sending the next
//                   message from the callback of the last one (the loop an application would write);
//                   one buffer per message, made before the clock starts (--bodies one: the same
//                   buffer every time)
//   --impl memory   the library: submit() to a MemoryStore (untimed), then start() and wait until
//                   every message is delivered (maxOutboundConnections: --conns, one route)
//   --impl spool    the same with a FileSpool in a fresh directory under os.tmpdir()
//   --impl log      the same with a LogSpool (group commit) in a fresh directory
//   --impl plain-again
//                   the same as plain: a second process of it in each round, an A/A control that
//                   shows how far two runs of the same code part on this machine
//   --impl plain-spool, plain-log
//                   the plain loop over the same store, what an application that keeps its mail
//                   durable writes without the library: the messages put (untimed) to a FileSpool
//                   or LogSpool, then each connection loads the next one from the store, sends it
//                   and removes it once the receiver took it (the next send does not wait for the
//                   removal; the run ends when every removal has finished). The library's cost over
//                   a store is its run against this one (decision 54)
//   --logger LEVEL  the library with options.logger: a pino logger at LEVEL writing to /dev/null
//                   (what a logger costs the hot path; none by default)
// A warm-up of --warm messages runs first the same way (a core started, drained and stopped), so the
// timed run measures a JIT-warm process. Timed: from connect (plain) or start() (library) until the
// last message is delivered, wall time and process.cpuUsage() (all threads of this process). The
// receiver's count of accepted messages must equal --n, or the run fails.
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import pino from 'pino';

import {
  FileSpool,
  LogSpool,
  MailQueueCore,
  MemoryStore,
  SmtpTransport,
  type MessageStore,
  type StoredMessage,
} from '../../dist/lib/index.js';
import { arg, BENCH_DIR, emit, gc, log, numArg } from '../common.js';

const impl = arg('impl');
const n = numArg('n', 20_000);
const warm = numArg('warm', 2_000);
const conns = numArg('conns', 8);
const size = numArg('size', 2048);
const bodiesMode = arg('bodies', 'distinct');
const loggerLevel = arg('logger', '');
const blocks = numArg('blocks', 10);
const blockSize = numArg('block', 2000);
const DOMAIN = 'sink.test';
export const RECEIVER = 'raw-socket SMTP sink (bench/smtp_sink.ts) in a child process, PIPELINING';

/** A message of `bytes` bytes: a few headers and 76-character lines of ASCII, CRLF line ends. */
function makeBody(bytes: number): Buffer {
  const head = `From: bench@example.net\r\nTo: rcpt@${DOMAIN}\r\nSubject: delivery bench\r\nMessage-ID: <bench@example.net>\r\n\r\n`;
  let text = head;
  const line = `${'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(3).slice(0, 74)}\r\n`;
  while (text.length + line.length <= bytes) text += line;
  text += 'x'.repeat(Math.max(0, bytes - text.length - 2));
  return Buffer.from(`${text}\r\n`.slice(0, bytes), 'latin1');
}
const body = makeBody(size);
const envelope = { from: 'bench@example.net', to: [`rcpt@${DOMAIN}`] };

// --- the receiver -----------------------------------------------------------------------------------

interface SinkCount {
  accepted: number;
  bytes: number;
  connections: number;
  cpuMs: number;
}
class Sink {
  constructor(
    readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static async start(): Promise<Sink> {
    const child = fork(path.join(BENCH_DIR, 'smtp_sink.ts'), ['0'], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { port: number }) => resolve(m.port));
      child.once('exit', (code) => reject(new Error(`the sink exited (${code})`)));
    });
    return new Sink(child, port);
  }

  count(): Promise<SinkCount> {
    return new Promise((resolve) => {
      this.child.once('message', (m: SinkCount) => resolve(m));
      this.child.send({ op: 'count' });
    });
  }

  stop(): void {
    this.child.send({ op: 'exit' });
    this.child.disconnect();
  }
}

// --- the plain client loop --------------------------------------------------------------------------

function connect(port: number): Promise<SMTPConnection> {
  return new Promise((resolve, reject) => {
    const c = new SMTPConnection({ host: '127.0.0.1', port, name: 'bench.invalid', logger: false });
    c.on('error', reject);
    c.connect((err) => (err ? reject(err) : resolve(c)));
  });
}

/**
 * `count` messages over `conns` connections, each sending the next from the last one's callback.
 * `bodies` holds one buffer per message (made before the clock starts, as the library's messages
 * are submitted before it), or one buffer sent every time with --bodies one.
 */
/** Runs `loop` on each of --conns connections to the receiver; `done` quits the connection. */
async function overConnections(
  port: number,
  loop: (c: SMTPConnection, done: () => void, fail: (err: unknown) => void) => void,
): Promise<void> {
  const loops: Promise<void>[] = [];
  for (let i = 0; i < conns; i++)
    loops.push(
      connect(port).then(
        (c) =>
          new Promise<void>((resolve, reject) =>
            loop(
              c,
              () => {
                c.quit();
                resolve();
              },
              reject,
            ),
          ),
      ),
    );
  await Promise.all(loops);
}

async function plainLoop(port: number, count: number, bodies: Buffer[]): Promise<void> {
  let left = count;
  await overConnections(port, (c, done, fail) => {
    const next = (): void => {
      if (left <= 0) {
        done();
        return;
      }
      const b = bodies[--left % bodies.length];
      // A fresh envelope each time: nodemailer keeps its per-message state on the object.
      c.send({ from: envelope.from, to: [envelope.to[0]], size: b.length }, b, (err) => (err ? fail(err) : next()));
    };
    next();
  });
}

let nextId = 1;

/**
 * The plain loop over a store: `ids` were put to `store` before the clock starts. Each connection
 * takes the next id, loads the message (one load() as the library does, or get() and body()), sends
 * it, then removes it from the store and goes on without waiting for the removal.
 */
async function plainStoreLoop(port: number, ids: number[], store: MessageStore): Promise<void> {
  let next = 0;
  const removals: Promise<void>[] = [];
  const load = async (id: number): Promise<Buffer> => {
    const m = store.load ? await store.load(id) : { body: await store.body(id) };
    if (!m || !Buffer.isBuffer(m.body)) throw new Error(`message ${id}: no body in the store`);
    return m.body;
  };
  await overConnections(port, (c, done, fail) => {
    const step = (): void => {
      if (next >= ids.length) {
        done();
        return;
      }
      const id = ids[next++];
      load(id).then((b) => {
        c.send({ from: envelope.from, to: [envelope.to[0]], size: b.length }, b, (err) => {
          if (err) {
            fail(err);
            return;
          }
          removals.push(store.remove(id));
          step();
        });
      }, fail);
    };
    step();
  });
  await Promise.all(removals);
}

/**
 * Stores `count` new messages through `put` (a store's put or the core's submit), in slices, so
 * that a FileSpool's fsyncs overlap without thousands of files open at once; returns their ids.
 */
async function storeAll(count: number, put: (m: StoredMessage, b: Buffer) => Promise<void>): Promise<number[]> {
  const ids: number[] = [];
  const SLICE = 256;
  for (let done = 0; done < count; ) {
    const k = Math.min(SLICE, count - done);
    const puts: Promise<void>[] = [];
    for (let i = 0; i < k; i++) {
      const id = nextId++;
      ids.push(id);
      puts.push(put({ id, domain: DOMAIN, envelope }, body));
    }
    await Promise.all(puts);
    done += k;
  }
  return ids;
}

const putAll = (store: MessageStore, count: number): Promise<number[]> => storeAll(count, (m, b) => store.put(m, b));

// --- the library ------------------------------------------------------------------------------------

async function submitAll(core: MailQueueCore, count: number): Promise<void> {
  await storeAll(count, (m, b) => core.submit(m, b));
}

/** start(), then resolves once every queued message has an outcome (polled every 5 ms through the
 *  counters, which cost nothing: no event listener, which the plain loop does not have either),
 *  and checks that they were all delivered. */
async function drain(core: MailQueueCore, count: number): Promise<void> {
  const delivered = (): number => (core.domains().includes(DOMAIN) ? core.domainView(DOMAIN).delivered : 0);
  const target = delivered() + count;
  core.start();
  for (;;) {
    const s = core.stats();
    if (s.active + s.inFlight + s.delayed === 0 || s.delayed > 0) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const v = core.domainView(DOMAIN);
  if (v.delivered !== target || v.bounced > 0 || v.deferred > 0)
    throw new Error(`a message was not delivered: ${JSON.stringify(v)}`);
}

// --- the run ----------------------------------------------------------------------------------------

interface Timed {
  wallMs: number;
  cpuMs: number;
  userMs: number;
  systemMs: number;
  /** Times the sending process was taken off a core it wanted (others' load on a shared machine). */
  involuntarySwitches: number;
}

/** With PERF_CTL_FIFO (a `perf record -D -1 --control fifo:PATH` control fifo), the profiler records
 *  the timed window only: `enable` before it, `disable` after. */
function perfControl(cmd: 'enable' | 'disable'): void {
  const fifo = process.env.PERF_CTL_FIFO;
  if (fifo) fs.writeFileSync(fifo, `${cmd}\n`);
}

/**
 * In the A/B runs (`side` given), PERF_SIDE=plain or library records only that side's blocks, and
 * no full collection is forced before a block: one forced between blocks, when no connection
 * object is alive, let V8 collect the maps the optimised stream and nodemailer code held (its
 * "weak objects"), which threw that code away at every block (about 3,600 compilations in a run
 * against 760 without) and left both sides running unoptimised much of the time.
 */
async function timed(run: () => Promise<void>, side?: 'plain' | 'library'): Promise<Timed> {
  const profiled = side === undefined || process.env.PERF_SIDE === undefined || process.env.PERF_SIDE === side;
  if (side === undefined) gc();
  const u0 = process.cpuUsage();
  const r0 = process.resourceUsage();
  const t0 = performance.now();
  if (profiled) perfControl('enable');
  await run();
  if (profiled) perfControl('disable');
  const wallMs = performance.now() - t0;
  const u = process.cpuUsage(u0);
  const invol = process.resourceUsage().involuntaryContextSwitches - r0.involuntaryContextSwitches;
  return {
    wallMs,
    cpuMs: (u.user + u.system) / 1000,
    userMs: u.user / 1000,
    systemMs: u.system / 1000,
    involuntarySwitches: invol,
  };
}

// --- the library and the plain loop in one process, in alternating blocks -------------------------

interface AbBlock {
  plain: Timed;
  library: Timed;
}

/**
 * --impl ab-memory, ab-log: --blocks blocks of --block messages, each sent once by the plain loop
 * (over its own LogSpool for ab-log) and once by the library (MemoryStore or LogSpool), in one
 * process, which goes first alternating from block to block. Whatever slows the machine down for
 * a second or two slows both sides of a block, so the ratio within each block says what the
 * library costs with most of the machine's noise taken out (two processes of the same loop part by
 * far more: the A/A control of the separate-process rows).
 */
async function abRun(port: number, durable: boolean, blocks: number, block: number): Promise<AbBlock[]> {
  const dirs: string[] = [];
  const dir = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-bench-ab-'));
    dirs.push(d);
    return d;
  };
  const plainStore = durable ? new LogSpool(dir()) : undefined;
  const store: MessageStore = durable ? new LogSpool(dir()) : new MemoryStore();
  const transport = new SmtpTransport({
    routes: { [DOMAIN]: { host: '127.0.0.1', port } },
    defaultEhloName: 'bench.invalid',
  });
  const core = new MailQueueCore({ config: { global: { maxOutboundConnections: conns } }, transport, store });
  /** One side's block: timed, or (the warm-up) not. */
  const side = async (name: 'plain' | 'library', run: () => Promise<void>, time: boolean) => {
    if (time) return timed(run, name);
    await run();
    return undefined;
  };
  const plainSide = async (count: number, time: boolean): Promise<Timed | undefined> => {
    if (plainStore) {
      const ids = await putAll(plainStore, count);
      return side('plain', () => plainStoreLoop(port, ids, plainStore), time);
    }
    const bodies = Array.from({ length: count }, () => Buffer.from(body));
    return side('plain', () => plainLoop(port, count, bodies), time);
  };
  const librarySide = async (count: number, time: boolean): Promise<Timed | undefined> => {
    await submitAll(core, count);
    const t = await side('library', () => drain(core, count), time);
    await core.stop();
    return t;
  };
  try {
    await plainSide(warm, false);
    await librarySide(warm, false);
    gc(); // once, before the first block (timed() forces none in these runs)
    const out: AbBlock[] = [];
    for (let i = 0; i < blocks; i++) {
      let p: Timed | undefined;
      let l: Timed | undefined;
      if (i % 2 === 0) {
        p = await plainSide(block, true);
        l = await librarySide(block, true);
      } else {
        l = await librarySide(block, true);
        p = await plainSide(block, true);
      }
      out.push({ plain: p!, library: l! });
    }
    return out;
  } finally {
    core.close();
    await transport.close();
    await store.close?.();
    await plainStore?.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
}

const sink = await Sink.start();
let result: Timed;
let spoolDir: string | undefined;
try {
  if (impl === 'ab-memory' || impl === 'ab-log') {
    const ab = await abRun(sink.port, impl === 'ab-log', blocks, blockSize);
    const count = await sink.count();
    const expected = 2 * (warm + blocks * blockSize);
    if (count.accepted !== expected)
      throw new Error(`the receiver accepted ${count.accepted} messages, expected ${expected}`);
    const ratios = ab.map((b) => ({
      rate: b.plain.wallMs / b.library.wallMs,
      cpu: b.library.cpuMs / b.plain.cpuMs,
    }));
    log(
      `  ${impl}: within each block msg/s ÷ plain ${ratios.map((r) => r.rate.toFixed(2)).join(', ')}; CPU ÷ plain ${ratios.map((r) => r.cpu.toFixed(2)).join(', ')}`,
    );
    emit({ impl, n: blocks * blockSize, warm, conns, size, blocks, block: blockSize, receiver: RECEIVER, ab });
  } else if (impl === 'plain' || impl === 'plain-again') {
    // Distinct buffers by default, as a queue's messages are: one buffer sent over and over stays
    // in the CPU's caches, which no MTA's backlog does.
    const bodies = (count: number) =>
      bodiesMode === 'one' ? [body] : Array.from({ length: count }, () => Buffer.from(body));
    await plainLoop(sink.port, warm, bodies(warm));
    const timedBodies = bodies(n);
    result = await timed(() => plainLoop(sink.port, n, timedBodies));
  } else if (impl === 'plain-spool' || impl === 'plain-log') {
    spoolDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-bench-spool-'));
    const store = impl === 'plain-spool' ? new FileSpool(spoolDir) : new LogSpool(spoolDir);
    await plainStoreLoop(sink.port, await putAll(store, warm), store);
    const ids = await putAll(store, n);
    result = await timed(() => plainStoreLoop(sink.port, ids, store));
    await store.close?.();
  } else {
    if (impl !== 'memory' && impl !== 'spool' && impl !== 'log')
      throw new Error(`--impl ${impl}: plain, plain-again, plain-spool, plain-log, memory, spool or log`);
    let store: MessageStore;
    if (impl === 'spool' || impl === 'log') {
      spoolDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-bench-spool-'));
      store = impl === 'spool' ? new FileSpool(spoolDir) : new LogSpool(spoolDir);
    } else store = new MemoryStore();
    const transport = new SmtpTransport({
      routes: { [DOMAIN]: { host: '127.0.0.1', port: sink.port } },
      defaultEhloName: 'bench.invalid',
    });
    const core = new MailQueueCore({
      config: { global: { maxOutboundConnections: conns } },
      transport,
      store,
      logger: loggerLevel ? pino({ level: loggerLevel }, pino.destination('/dev/null')) : undefined,
    });
    await submitAll(core, warm);
    await drain(core, warm);
    await core.stop();
    const t = performance.now();
    await submitAll(core, n);
    log(`  submitted ${n} in ${(performance.now() - t).toFixed(0)} ms (untimed)`);
    result = await timed(() => drain(core, n));
    await core.stop();
    core.close();
    await transport.close();
    await store.close?.();
  }
  if (!impl.startsWith('ab-')) await report();
} finally {
  sink.stop();
  if (spoolDir) fs.rmSync(spoolDir, { recursive: true, force: true });
}

async function report(): Promise<void> {
  const count = await sink.count();
  if (count.accepted !== warm + n)
    throw new Error(`the receiver accepted ${count.accepted} messages, expected ${warm + n}`);
  const rate = n / (result.wallMs / 1000);
  const cpuUs = (result.cpuMs * 1000) / n;
  log(`  receiver CPU ${((count.cpuMs * 1000) / (warm + n)).toFixed(1)} us/message (whole run)`);
  log(
    `  ${impl}: ${rate.toFixed(0)} msg/s, ${cpuUs.toFixed(1)} us CPU/message (user ${((result.userMs * 1000) / n).toFixed(1)}, system ${((result.systemMs * 1000) / n).toFixed(1)}; ${(result.involuntarySwitches / n).toFixed(2)} involuntary switches/message) (${n} messages, ${result.wallMs.toFixed(0)} ms)`,
  );
  emit({
    impl,
    logger: loggerLevel || undefined,
    n,
    warm,
    conns,
    size,
    receiver: RECEIVER,
    result: {
      ...result,
      rate,
      cpuUsPerMessage: cpuUs,
      accepted: count.accepted,
      receiverConnections: count.connections,
      receiverCpuUsPerMessage: (count.cpuMs * 1000) / (warm + n),
    },
  });
}
