// The destination side of the soak run, in a worker thread: one smtp-server per ServerSpec on
// 127.0.0.1, each behind a listening socket of our own (so that a "flapping" server can close its
// port and open it again, which the client sees as connection refused). Faults are drawn at random
// per connection (421 / 554 / no greeting) and per transaction (451 / 550 / no reply at RCPT; drop
// the socket on the first chunk of the message, before the final dot; 451 / 554 / no reply after the
// final dot).
//
// The books are the servers' own, per server, per source address (a binding) and in total, with
// peaks kept at every accept:
// - open (strict): from the TCP accept (the earliest a server can know of a connection) to the
//   first of 'end' (the client's FIN), 'error' or 'close' on its socket;
// - live: the same, but a connection also stops counting when the server ends the session itself
//   (smtp-server's socket.end() after its 221 to QUIT, or after a refused greeting), as a real MTA
//   stops counting a session whose process has finished. Such a connection only waits for the
//   client's FIN, and the client cannot make that FIN reach the server before its next SYN (the
//   server may process a later accept first), so the limits are checked on live counts and the
//   strict ones are reported next to them.
// A message counts as accepted only when the server sent 250 after the final dot on a socket that
// was still open.
// Memory is bounded whatever the number of messages: per-id counts live in two Uint8Arrays sized
// once at start, and nothing else grows with the number of connections or messages.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import {
  idFromSender, prng, type AllStats, type Counts, type FromWorker, type OverLimit, type ServerSpec, type ServerStats, type ToWorker,
  type WorkerInit,
} from './protocol.js';

const init = workerData as WorkerInit;
const port = parentPort!;
const random = prng(init.seed ^ 0x50a4);
const F = init.faults;
const gc = (globalThis as { gc?: () => void }).gc;

const acceptedById = new Uint8Array(init.maxId + 1);
const attemptsById = new Uint8Array(init.maxId + 1);
const anomalies: string[] = [];
let anomalyCount = 0;
function anomaly(text: string): void {
  anomalyCount++;
  if (anomalies.length < 20) anomalies.push(text);
}

// Open counts per key ('total', 'server:<name>', 'source:<address>'), strict (until the client's FIN
// as this server sees it) and live (until the server ended the session itself, or that FIN).
interface Gauge { open: number; peak: number; live: number; livePeak: number; limit: number }
const gauges = new Map<string, Gauge>();
function gauge(key: string): Gauge {
  let g = gauges.get(key);
  if (!g) {
    const [kind, name] = key.split(':');
    const limit = kind === 'total' ? init.limits.total
      : kind === 'server' ? init.limits.byServer[name] ?? Infinity
      : init.limits.bySource[name] ?? Infinity;
    gauges.set(key, (g = { open: 0, peak: 0, live: 0, livePeak: 0, limit }));
  }
  return g;
}
const overLimit: OverLimit[] = [];
let overLimitCount = 0;
let liveOverLimitCount = 0;

interface Conn {
  server: Running;
  keys: string[];
  closed: boolean;
  /** When the server ended the session itself (socket.end() after its last reply: 221 to QUIT, a
   *  refused greeting); from then on the connection only waits for the client's FIN. 0: not. */
  endedAt: number;
  /** Refused at the greeting (by the limit or a fault): not counted against refuseAbove. */
  refused: boolean;
  /** Where the session is, as the server last saw it (for the over-limit diagnostics). */
  phase: string;
  socket: net.Socket;
}

// Over-limit accepts waiting to learn which open connection of their scope closes first.
const watching: Array<{ entry: OverLimit; conns: Set<Conn> }> = [];

interface Running {
  spec: ServerSpec;
  smtp: SMTPServer;
  port: number;
  listener: net.Server | undefined;
  stats: ServerStats;
  /** Sessions by "address|port" (what smtp-server's session tells us) -> the connection. */
  conns: Map<string, Conn>;
  /** Live connections refused at the greeting (not counted against refuseAbove): those that got
   *  no greeting at all; a refused greeting ends the session at once. */
  refusedLive: number;
  closing: boolean;
  flapTimer: NodeJS.Timeout | undefined;
}

function smtpError(code: number, text: string): Error {
  const e = new Error(text) as Error & { responseCode: number };
  e.responseCode = code;
  return e;
}

const keyOf = (address: string | undefined, p: number | undefined) => `${address}|${p}`;
const sessionKey = (s: SMTPServerSession) => keyOf(s.remoteAddress, s.remotePort);

function opened(r: Running, socket: net.Socket): void {
  const source = socket.remoteAddress ?? '?';
  const keys = ['total', `server:${r.spec.name}`, `source:${source}`];
  const c: Conn = { server: r, keys, closed: false, endedAt: 0, refused: false, phase: 'accepted', socket };
  r.conns.set(keyOf(socket.remoteAddress, socket.remotePort), c);
  r.stats.connections++;
  for (const k of keys) {
    const g = gauge(k);
    g.open++;
    g.live++;
    if (g.open > g.peak) g.peak = g.open;
    if (g.live > g.livePeak) g.livePeak = g.live;
    if (g.open > g.limit) noteOverLimit(c, k, g);
  }
  // smtp-server ends a session with socket.end() (after 221 to QUIT, or a refused greeting).
  const end = socket.end;
  socket.end = function (this: net.Socket, ...args: unknown[]) {
    serverEnded(c);
    return (end as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof socket.end;
  socket.once('end', () => closed(c, 'end'));
  socket.once('error', () => closed(c, 'error'));
  socket.once('close', () => closed(c, 'close'));
}

function noteOverLimit(c: Conn, key: string, g: Gauge): void {
  overLimitCount++;
  if (g.live <= g.limit) return; // only connections the server had ended itself put it over
  liveOverLimitCount++;
  if (overLimit.length >= 20) return;
  let ending = 0;
  let oldest = 0;
  const now = Date.now();
  const conns = new Set<Conn>();
  for (const r of running) {
    for (const other of r.conns.values()) {
      if (other === c || other.closed || !other.keys.includes(key)) continue;
      conns.add(other);
      if (other.endedAt === 0) continue;
      ending++;
      oldest = Math.max(oldest, now - other.endedAt);
    }
  }
  const entry: OverLimit = { at: now, scope: key, open: g.open, live: g.live, limit: g.limit, ending, oldestEndingMs: oldest };
  overLimit.push(entry);
  watching.push({ entry, conns });
}

function serverEnded(c: Conn): void {
  if (c.closed || c.endedAt !== 0) return;
  c.endedAt = Date.now();
  if (c.refused) c.server.refusedLive--;
  for (const k of c.keys) gauge(k).live--;
}

function closed(c: Conn, how: string): void {
  if (c.closed) return;
  c.closed = true;
  for (let i = watching.length - 1; i >= 0; i--) {
    const w = watching[i];
    if (!w.conns.has(c)) continue;
    // The first connection of the scope to close after the over-limit accept: what was it doing?
    const now = Date.now();
    w.entry.firstToClose = {
      msAfter: now - w.entry.at, how, phase: c.phase, endedByServerMsBefore: c.endedAt === 0 ? -1 : now - c.endedAt,
    };
    watching.splice(i, 1);
  }
  const r = c.server;
  if (c.refused && c.endedAt === 0) r.refusedLive--;
  for (const k of c.keys) {
    const g = gauge(k);
    g.open--;
    if (c.endedAt === 0) g.live--;
  }
  r.conns.delete(keyOf(c.socket.remoteAddress, c.socket.remotePort));
}

function listen(r: Running, onReady?: () => void): void {
  const l = net.createServer((socket) => {
    socket.on('error', () => undefined);
    opened(r, socket);
    // Hand the socket to smtp-server as if its own listener had accepted it.
    r.smtp.server.emit('connection', socket);
  });
  l.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EADDRINUSE' && !r.closing) {
      // An outgoing socket took the port as its source port while it was closed: try again.
      r.stats.relistenRetries++;
      setTimeout(() => listen(r, onReady), 50);
      return;
    }
    port.postMessage({ type: 'error', message: `${r.spec.name}: listener: ${err.message}` } satisfies FromWorker);
  });
  l.listen(r.port, '127.0.0.1', () => {
    r.port = (l.address() as net.AddressInfo).port;
    r.listener = l;
    onReady?.();
    if (r.spec.flap) scheduleFlap(r, 'close');
  });
}

function between([lo, hi]: [number, number]): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

function scheduleFlap(r: Running, next: 'close' | 'open'): void {
  const f = r.spec.flap!;
  if (r.closing) return;
  if (next === 'close') {
    r.flapTimer = setTimeout(() => {
      if (r.closing) return;
      r.stats.flaps++;
      // Stops accepting; the connections already open go on (they are smtp-server's now).
      r.listener?.close();
      r.listener = undefined;
      scheduleFlap(r, 'open');
    }, between(f.openMs));
  } else {
    r.flapTimer = setTimeout(() => {
      if (!r.closing) listen(r);
    }, between(f.closedMs));
  }
}

function start(spec: ServerSpec): Promise<Running> {
  const stats: ServerStats = {
    name: spec.name, connections: 0, peak: 0, open: 0, refusedByLimit: 0,
    greet421: 0, greet554: 0, greetHang: 0, rcpt451: 0, rcpt550: 0, rcptStall: 0,
    dataDrop: 0, data451: 0, data554: 0, dataStall: 0, transactions: 0, accepted: 0, flaps: 0, relistenRetries: 0,
  };
  const faults = spec.faults;
  const r: Running = {
    spec, stats, port: 0, listener: undefined, conns: new Map(), refusedLive: 0, closing: false, flapTimer: undefined,
    smtp: undefined as unknown as SMTPServer,
  };
  r.smtp = new SMTPServer({
    name: `${spec.name}.mx.soak.test`,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 200,
    // Longer than any client timeout: the client always gives up first on a stall.
    socketTimeout: 60_000,

    onConnect(session: SMTPServerSession, cb: (err?: Error | null) => void) {
      const c = r.conns.get(sessionKey(session));
      if (!c) {
        cb(smtpError(421, 'gone')); // closed before smtp-server got this far
        return;
      }
      c.phase = 'greeting';
      const mark = () => {
        c.refused = true;
        r.refusedLive++;
      };
      // Its own limit, on its live connections (those it has ended are not counted, see Counts).
      if (spec.refuseAbove !== undefined && gauge(`server:${spec.name}`).live - r.refusedLive > spec.refuseAbove) {
        stats.refusedByLimit++;
        mark();
        c.phase = 'refused (limit)';
        cb(smtpError(421, `4.7.0 ${spec.name}: too many connections (more than ${spec.refuseAbove})`));
        return;
      }
      if (faults) {
        const x = random();
        if (x < F.greet421) {
          stats.greet421++;
          c.phase = 'refused 421';
          mark();
          cb(smtpError(421, '4.3.2 service not available, try later'));
          return;
        }
        if (x < F.greet421 + F.greet554) {
          stats.greet554++;
          c.phase = 'refused 554';
          mark();
          cb(smtpError(554, '5.3.2 no service here'));
          return;
        }
        if (x < F.greet421 + F.greet554 + F.greetHang) {
          stats.greetHang++;
          c.phase = 'no greeting';
          mark();
          return; // never greet: the client's greeting timeout ends it
        }
      }
      c.phase = 'greeted';
      cb();
    },

    onMailFrom(address, session, cb) {
      const c = r.conns.get(sessionKey(session));
      if (c) c.phase = 'MAIL';
      const id = idFromSender(address.address);
      if (id === undefined || id < 1 || id > init.maxId) {
        anomaly(`${spec.name}: MAIL FROM without a known id: ${address.address}`);
        cb(smtpError(451, 'no id'));
        return;
      }
      stats.transactions++;
      if (attemptsById[id] < 255) attemptsById[id]++;
      cb();
    },

    onRcptTo(_address, session, cb) {
      const c = r.conns.get(sessionKey(session));
      if (c) c.phase = 'RCPT';
      if (faults) {
        const x = random();
        if (x < F.rcpt451) {
          stats.rcpt451++;
          cb(smtpError(451, '4.2.1 mailbox busy, try later'));
          return;
        }
        if (x < F.rcpt451 + F.rcpt550) {
          stats.rcpt550++;
          cb(smtpError(550, '5.1.1 no such user'));
          return;
        }
        if (x < F.rcpt451 + F.rcpt550 + F.rcptStall) {
          stats.rcptStall++;
          if (c) c.phase = 'RCPT stalled';
          return; // no reply: the client's command timeout ends the session
        }
      }
      cb();
    },

    onData(stream: SMTPServerDataStream, session, cb) {
      const key = sessionKey(session);
      const c = r.conns.get(key);
      stream.on('error', () => undefined);
      if (c) c.phase = 'DATA';
      const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
      const id = idFromSender(from) ?? 0;
      let decided = false;
      let dropped = false;
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => {
        if (!decided) {
          decided = true;
          if (faults && random() < F.dataDrop) {
            // Mid-DATA: the final dot has not been read and nothing was replied.
            stats.dataDrop++;
            dropped = true;
            if (c) c.socket.destroy();
            else anomaly(`${spec.name}: no connection record for a DATA stream`);
            return;
          }
        }
        if (!dropped) chunks.push(chunk);
      });
      stream.on('end', () => {
        if (dropped) return;
        const text = Buffer.concat(chunks).toString('latin1');
        const m = /^X-Id: (\d+)\r?$/m.exec(text);
        if (!m || Number(m[1]) !== id) anomaly(`${spec.name}: message ${id} carries body X-Id ${m ? m[1] : 'none'}`);
        if (faults) {
          const x = random();
          if (x < F.data451) {
            stats.data451++;
            if (c) c.phase = 'replied 451';
            cb(smtpError(451, '4.3.0 temporary failure, try again later'));
            return;
          }
          if (x < F.data451 + F.data554) {
            stats.data554++;
            if (c) c.phase = 'replied 554';
            cb(smtpError(554, '5.6.0 message refused'));
            return;
          }
          if (x < F.data451 + F.data554 + F.dataStall) {
            stats.dataStall++;
            if (c) c.phase = 'final dot stalled';
            return; // no reply to the final dot: the client's command timeout ends the session
          }
        }
        if (!c || c.closed || c.socket.destroyed) {
          cb(smtpError(421, 'gone')); // no 250 on a dead socket: not accepted
          return;
        }
        stats.accepted++;
        c.phase = 'replied 250';
        if (id > 0 && acceptedById[id] < 255) acceptedById[id]++;
        cb(null, `2.0.0 queued as ${id}`);
      });
    },

    onClose(session) {
      const c = r.conns.get(sessionKey(session));
      if (c) closed(c, 'onClose');
    },
  });
  r.smtp.on('error', () => undefined); // client resets and our own drops are expected here
  return new Promise((resolve) => listen(r, () => resolve(r)));
}

const running: Running[] = [];

function counts(): Counts {
  const c: Counts = { total: 0, byServer: {}, bySource: {}, liveTotal: 0, liveByServer: {}, liveBySource: {} };
  for (const [key, g] of gauges) {
    const [kind, name] = key.split(':');
    if (kind === 'total') {
      c.total = g.open;
      c.liveTotal = g.live;
    } else if (kind === 'server') {
      c.byServer[name] = g.open;
      c.liveByServer[name] = g.live;
    } else {
      c.bySource[name] = g.open;
      c.liveBySource[name] = g.live;
    }
  }
  return c;
}

function peaks(kind: string, live: boolean): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, g] of gauges) {
    const [k, name] = key.split(':');
    if (k === kind) out[name] = live ? g.livePeak : g.peak;
  }
  return out;
}

let heapUsed = 0;
const elu0 = performance.eventLoopUtilization();

function snapshot(withIds: boolean): AllStats {
  const s: AllStats = {
    servers: running.map((r) => ({ ...r.stats, open: gauge(`server:${r.spec.name}`).open, peak: gauge(`server:${r.spec.name}`).peak })),
    globalPeak: gauge('total').peak,
    globalOpen: gauge('total').open,
    peakBySource: peaks('source', false),
    liveGlobalPeak: gauge('total').livePeak,
    livePeakByServer: peaks('server', true),
    livePeakBySource: peaks('source', true),
    overLimit: [...overLimit],
    overLimitCount,
    liveOverLimitCount,
    anomalies: [...anomalies],
    anomalyCount,
    elu: performance.eventLoopUtilization(elu0).utilization,
    heapUsed,
  };
  if (withIds) {
    s.acceptedById = acceptedById;
    s.attemptsById = attemptsById;
  }
  return s;
}

async function main(): Promise<void> {
  const ports: Record<string, number> = {};
  for (const spec of init.servers) {
    const r = await start(spec);
    running.push(r);
    ports[spec.name] = r.port;
  }
  const sampler = setInterval(() => {
    port.postMessage({ type: 'sample', at: Date.now(), counts: counts() } satisfies FromWorker);
  }, init.sampleMs);
  const collector = setInterval(() => {
    gc?.();
    heapUsed = process.memoryUsage().heapUsed;
  }, init.gcMs);
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'stats') {
      port.postMessage({ type: 'stats', stats: snapshot(msg.withIds) } satisfies FromWorker);
    } else if (msg.type === 'close') {
      clearInterval(sampler);
      clearInterval(collector);
      void Promise.all(running.map((r) => new Promise<void>((res) => {
        r.closing = true;
        clearTimeout(r.flapTimer);
        r.listener?.close();
        r.smtp.close(() => res());
      }))).then(() => {
        port.postMessage({ type: 'closed' } satisfies FromWorker);
        port.close();
      });
    }
  });
  port.postMessage({ type: 'ready', ports } satisfies FromWorker);
}

main().catch((err: unknown) => {
  port.postMessage({ type: 'error', message: err instanceof Error ? err.stack ?? err.message : String(err) } satisfies FromWorker);
});
