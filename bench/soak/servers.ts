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
//
// Those are the servers' own books, kept from what their event loop sees. A receiver that stops
// reading (a ServerSpec with `stall`) sees nothing of its paused sockets: no 'end', and not even
// 'close' or 'error' when the client resets one (tried: a paused server socket stays silent after
// the client's resetAndDestroy(), while the kernel drops the connection at once; after end() or
// destroy() with data still unsent, the kernel keeps it ESTABLISHED, the FIN stuck behind that
// data). So the servers also count from the kernel: every sample, and every accept of a server
// with a stall or a refuseAbove, reads /proc/net/tcp and counts the connections to the listening
// ports in SYN_RECV, ESTABLISHED or CLOSE_WAIT (KernelCounts in protocol.ts). The same read drops
// the stalled connections the kernel no longer has (the client reset them), before the accept or
// the sample is counted, so that the servers' own books do not keep them either.
// Memory is bounded whatever the number of messages: per-id counts live in two Uint8Arrays sized
// once at start, and nothing else grows with the number of connections or messages.
import fs from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import {
  idFromSender,
  prng,
  type AllStats,
  type Counts,
  type FromWorker,
  type KernelCounts,
  type KernelOverLimit,
  type OverLimit,
  type ServerSpec,
  type ServerStats,
  type ToWorker,
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
interface Gauge {
  open: number;
  peak: number;
  live: number;
  livePeak: number;
  limit: number;
}
const gauges = new Map<string, Gauge>();
function gauge(key: string): Gauge {
  let g = gauges.get(key);
  if (!g) {
    const [kind, name] = key.split(':');
    const limit =
      kind === 'total'
        ? init.limits.total
        : kind === 'server'
          ? (init.limits.byServer[name] ?? Infinity)
          : (init.limits.bySource[name] ?? Infinity);
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
  /** The connection's remote end, as the kernel's table names it ("<server port>|<address>|<port>"). */
  tuple: string;
  /** The server stopped reading it (stall): until it reads on, or the kernel no longer has it. */
  stallTimer: NodeJS.Timeout | undefined;
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
  /** Connections whose body the server is not reading (stall). */
  stalled: Set<Conn>;
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
  const c: Conn = {
    server: r,
    keys,
    closed: false,
    endedAt: 0,
    refused: false,
    phase: 'accepted',
    socket,
    tuple: `${r.port}|${source}|${socket.remotePort}`,
    stallTimer: undefined,
  };
  r.conns.set(keyOf(socket.remoteAddress, socket.remotePort), c);
  r.stats.connections++;
  let over = false;
  for (const k of keys) {
    const g = gauge(k);
    g.open++;
    g.live++;
    if (g.open > g.limit) over = true;
  }
  // Over a limit: first make sure the books are not behind the kernel. A client that gives up on
  // a connection resets it and may connect again at once; the reset is in the kernel before the
  // new SYN, but this loop can handle the accept before the old socket's 'error'. The connections
  // the kernel no longer has, or has in CLOSE_WAIT (the client's FIN is in), are closed in the
  // books first (see reconcile()).
  if (over) reconcile();
  for (const k of keys) {
    const g = gauge(k);
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
  const entry: OverLimit = {
    at: now,
    scope: key,
    open: g.open,
    live: g.live,
    limit: g.limit,
    ending,
    oldestEndingMs: oldest,
  };
  overLimit.push(entry);
  watching.push({ entry, conns });
}

function serverEnded(c: Conn): void {
  if (c.closed || c.endedAt !== 0) return;
  c.endedAt = Date.now();
  if (c.refused) c.server.refusedLive--;
  for (const k of c.keys) gauge(k).live--;
}

// Connections the server's books closed lately, by tuple: when and how (for the kernel's
// over-limit diagnostics). Bounded: the oldest go first.
const recentlyClosed = new Map<string, { at: number; how: string }>();

function closed(c: Conn, how: string): void {
  if (c.closed) return;
  c.closed = true;
  recentlyClosed.set(c.tuple, { at: Date.now(), how: `${how}, ${c.phase}` });
  if (recentlyClosed.size > 4096) recentlyClosed.delete(recentlyClosed.keys().next().value!);
  for (let i = watching.length - 1; i >= 0; i--) {
    const w = watching[i];
    if (!w.conns.has(c)) continue;
    // The first connection of the scope to close after the over-limit accept: what was it doing?
    const now = Date.now();
    w.entry.firstToClose = {
      msAfter: now - w.entry.at,
      how,
      phase: c.phase,
      endedByServerMsBefore: c.endedAt === 0 ? -1 : now - c.endedAt,
    };
    watching.splice(i, 1);
  }
  const r = c.server;
  if (c.stallTimer !== undefined) {
    clearTimeout(c.stallTimer);
    c.stallTimer = undefined;
    r.stalled.delete(c);
  }
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
    if (socket.remoteAddress === undefined) {
      // Reset by the client before this accept: it is no connection any more.
      r.stats.resetBeforeAccept++;
      socket.destroy();
      return;
    }
    // The servers with a limit of their own (refuseAbove) or a stall are counted from the kernel
    // at every accept; the read first drops stalled connections the client has reset.
    if (r.spec.stall !== undefined || r.spec.refuseAbove !== undefined) kernelCheck('accept');
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
    name: spec.name,
    connections: 0,
    peak: 0,
    open: 0,
    refusedByLimit: 0,
    greet421: 0,
    greet554: 0,
    greetHang: 0,
    rcpt451: 0,
    rcpt550: 0,
    rcptStall: 0,
    dataDrop: 0,
    data451: 0,
    data554: 0,
    dataStall: 0,
    transactions: 0,
    accepted: 0,
    flaps: 0,
    relistenRetries: 0,
    stalled: 0,
    stallsReset: 0,
    stallsResumed: 0,
    kernelPeak: 0,
    resetBeforeAccept: 0,
  };
  const faults = spec.faults;
  const r: Running = {
    spec,
    stats,
    port: 0,
    listener: undefined,
    conns: new Map(),
    refusedLive: 0,
    closing: false,
    flapTimer: undefined,
    stalled: new Set(),
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
      if (spec.stall !== undefined && c && id > 0 && attemptsById[id] <= spec.stall.attempts) {
        // Stop reading: the stream is left paused, smtp-server's parser waits for it to drain and
        // its pipe pauses the socket, so the kernel buffers fill and the client's writes block.
        stats.stalled++;
        c.phase = 'DATA stalled';
        r.stalled.add(c);
        c.stallTimer = setTimeout(() => {
          // The receiver reads again: the rest of the body (if the client is still there), then 451.
          c.stallTimer = undefined;
          r.stalled.delete(c);
          if (c.closed) return;
          stats.stallsResumed++;
          c.phase = 'DATA stalled, reading again';
          stream.on('end', () => cb(smtpError(451, '4.3.0 timed out reading the message, try again later')));
          stream.resume();
        }, spec.stall.ms);
        return;
      }
      let decided = false;
      let dropped = false;
      // Only the head of the body is kept, for its X-Id header (bodies run to a few MiB).
      const chunks: Buffer[] = [];
      let kept = 0;
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
        if (!dropped && kept < 8192) {
          chunks.push(chunk);
          kept += chunk.length;
        }
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

// ---- the receiving kernel's view (/proc/net/tcp) ----------------------------------------------------

const ST_ESTABLISHED = 0x01;
const ST_SYN_RECV = 0x03;
const ST_CLOSE_WAIT = 0x08;
const STATE_NAMES: Record<number, string> = {
  1: 'ESTABLISHED',
  2: 'SYN_SENT',
  3: 'SYN_RECV',
  4: 'FIN_WAIT1',
  5: 'FIN_WAIT2',
  6: 'TIME_WAIT',
  7: 'CLOSE',
  8: 'CLOSE_WAIT',
  9: 'LAST_ACK',
  10: 'LISTEN',
  11: 'CLOSING',
};
const LOOPBACK = '0100007F'; // 127.0.0.1 as the table has it
const TCP_LINE = /^\s*\d+: ([0-9A-F]{8}):([0-9A-F]{4}) ([0-9A-F]{8}):([0-9A-F]{4}) ([0-9A-F]{2})/gm;
let kernelReads = 0;
const kernelPeak = { total: 0, bySource: {} as Record<string, number> };
let kernelOverLimitCount = 0;
let kernelEpisodes = 0;
const kernelOverLimit: KernelOverLimit[] = [];
let kernelLast: KernelCounts = { total: 0, byServer: {}, bySource: {}, closeWait: 0 };
/** Scopes over their limit right now: the record of each such episode, and the scope's open
 *  connections when it started (to tell, when it ends, which of them closed). */
const episodes = new Map<string, { entry: KernelOverLimit; tuples: Map<string, KernelConn> } | undefined>();
let episodeTimer: NodeJS.Timeout | undefined;
let timingDelay = 10;

interface KernelConn {
  server: Running;
  source: string;
  tuple: string;
  state: number;
}
interface KernelTable {
  /** The servers' ends of their connections, in any state. */
  conns: KernelConn[];
  /** The clients' ends of the same connections, by the same tuple: their state. */
  clientSide: Map<string, number>;
}

/** '0100007F' (the table's byte order) -> '127.0.0.1'. */
function dotted(hex: string): string {
  const n = parseInt(hex, 16);
  return `${n & 255}.${(n >>> 8) & 255}.${(n >>> 16) & 255}.${n >>> 24}`;
}

let kernelReadMs = 0;
/** Lines of one read that repeat a connection already listed. The kernel writes the table out a
 *  few KiB at a time and resumes each time at a saved position (bucket and offset in it); when the
 *  chain of that bucket changed in between, it lists some connections twice (or skips some). Runs
 *  of the fixed library saw a count one to three over a limit in single reads this way, with both
 *  ends of every listed connection ESTABLISHED, while the transport never had more sockets than
 *  leases: those were duplicates. */
let kernelDuplicates = 0;

/** The connections to the servers' ports on 127.0.0.1 that the kernel has, in any state, and the
 *  clients' ends of them. Both ends of a loopback connection are in the table; an entry whose
 *  remote port is a listening port is the client's end (its local port an ephemeral one that
 *  happens to be a flapping server's port while that one is closed: nothing can take a port that
 *  is listening). */
function kernelTable(): KernelTable {
  kernelReads++;
  const t0 = performance.now();
  const byPort = new Map<number, Running>();
  const listening = new Set<number>();
  for (const r of running) {
    byPort.set(r.port, r);
    if (!r.spec.flap) listening.add(r.port);
  }
  const conns: KernelConn[] = [];
  const seen = new Set<string>();
  const clientSide = new Map<string, number>();
  const text = fs.readFileSync('/proc/net/tcp', 'latin1');
  TCP_LINE.lastIndex = 0;
  for (let m = TCP_LINE.exec(text); m !== null; m = TCP_LINE.exec(text)) {
    const localPort = parseInt(m[2], 16);
    const remotePort = parseInt(m[4], 16);
    if (m[1] === LOOPBACK && byPort.has(localPort) && remotePort !== 0 && !listening.has(remotePort)) {
      const r = byPort.get(localPort)!;
      const source = dotted(m[3]);
      const tuple = `${r.port}|${source}|${remotePort}`;
      // The same connection can be listed twice in one read (see kernelDuplicates).
      if (seen.has(tuple)) {
        kernelDuplicates++;
        continue;
      }
      seen.add(tuple);
      conns.push({ server: r, source, tuple, state: parseInt(m[5], 16) });
    } else if (m[3] === LOOPBACK && byPort.has(remotePort) && !listening.has(localPort)) {
      clientSide.set(`${remotePort}|${dotted(m[1])}|${localPort}`, parseInt(m[5], 16));
    }
  }
  kernelReadMs += performance.now() - t0;
  return { conns, clientSide };
}

/** Closes in the books every connection the kernel has closed or half-closed: gone from the table
 *  (reset), or in CLOSE_WAIT (the client's FIN is in) unless the server is not reading it (a
 *  stalled connection does not see its FIN). Their own events are on their way; this only puts
 *  them in order before an accept. */
function reconcile(table = kernelTable()): KernelTable {
  const state = new Map<string, number>();
  for (const k of table.conns) state.set(k.tuple, k.state);
  for (const r of running) {
    for (const c of r.conns.values()) {
      if (c.closed) continue;
      const st = state.get(c.tuple);
      const stalled = c.stallTimer !== undefined;
      if (st !== undefined && (stalled || st !== ST_CLOSE_WAIT)) continue;
      if (stalled) {
        r.stats.stallsReset++;
        c.phase = 'DATA stalled, reset by the client';
        closed(c, 'reset (seen in the kernel)');
        c.socket.destroy(); // it would never see the reset: it is not reading
      } else {
        closed(c, st === undefined ? 'reset (seen in the kernel first)' : 'FIN (seen in the kernel first)');
      }
    }
  }
  return table;
}

const isOpen = (k: KernelConn) => k.state === ST_ESTABLISHED || k.state === ST_SYN_RECV || k.state === ST_CLOSE_WAIT;

function countOf(open: KernelConn[]): KernelCounts {
  const counts: KernelCounts = { total: open.length, byServer: {}, bySource: {}, closeWait: 0 };
  for (const r of running) counts.byServer[r.spec.name] = 0;
  for (const k of open) {
    counts.byServer[k.server.spec.name]++;
    counts.bySource[k.source] = (counts.bySource[k.source] ?? 0) + 1;
    if (k.state === ST_CLOSE_WAIT) counts.closeWait++;
  }
  return counts;
}

function anyOver(c: KernelCounts): boolean {
  if (c.total > init.limits.total) return true;
  for (const [name, n] of Object.entries(c.byServer)) if (n > (init.limits.byServer[name] ?? Infinity)) return true;
  for (const [src, n] of Object.entries(c.bySource)) if (n > (init.limits.bySource[src] ?? Infinity)) return true;
  return false;
}

let kernelUnconfirmed = 0;

/** Reads the kernel's table: closes in the books what the kernel has closed (reconcile()), counts
 *  the open connections (SYN_RECV, ESTABLISHED, CLOSE_WAIT), keeps the peaks, and notes a count
 *  over its limit: an episode starts, and is timed by more reads (10 ms later, then backing off)
 *  until the count is back within the limit. */
function kernelCheck(when: 'accept' | 'sample' | 'timing'): { counts: KernelCounts; open: KernelConn[] } {
  let table = reconcile();
  let open = table.conns.filter(isOpen);
  let counts = countOf(open);
  if (anyOver(counts)) {
    // /proc/net/tcp is no snapshot (duplicates aside, see kernelDuplicates): it is read bucket by
    // bucket, and a connection that closed after its bucket was read and one that opened before
    // its own was can both be in one read, though never open at once (a reader preempted in the
    // middle makes that window long). Read again at once and count only the connections open in
    // both reads: each of those was open at the moment between the reads, so that count is one
    // the receiver really had at one instant.
    const again = reconcile();
    const stillOpen = new Set(again.conns.filter(isOpen).map((k) => k.tuple));
    open = open.filter((k) => stillOpen.has(k.tuple));
    counts = countOf(open);
    table = { conns: table.conns, clientSide: again.clientSide };
    if (!anyOver(counts)) kernelUnconfirmed++;
  }
  kernelPeak.total = Math.max(kernelPeak.total, counts.total);
  for (const [src, n] of Object.entries(counts.bySource))
    kernelPeak.bySource[src] = Math.max(kernelPeak.bySource[src] ?? 0, n);
  for (const r of running) r.stats.kernelPeak = Math.max(r.stats.kernelPeak, counts.byServer[r.spec.name]);
  const now = Date.now();
  const scopes: Array<{
    scope: string;
    count: number;
    limit: number;
    mine: (k: KernelConn) => boolean;
    stalled: () => number;
  }> = [
    {
      scope: 'total',
      count: counts.total,
      limit: init.limits.total,
      mine: () => true,
      stalled: () => running.reduce((a, r) => a + r.stalled.size, 0),
    },
  ];
  for (const r of running) {
    const limit = init.limits.byServer[r.spec.name];
    if (limit !== undefined) {
      scopes.push({
        scope: `server:${r.spec.name}`,
        count: counts.byServer[r.spec.name],
        limit,
        mine: (k) => k.server === r,
        stalled: () => r.stalled.size,
      });
    }
  }
  for (const [src, limit] of Object.entries(init.limits.bySource)) {
    scopes.push({
      scope: `source:${src}`,
      count: counts.bySource[src] ?? 0,
      limit,
      mine: (k) => k.source === src,
      stalled: () =>
        running.reduce((a, r) => a + [...r.stalled].filter((c) => c.keys.includes(`source:${src}`)).length, 0),
    });
  }
  for (const { scope, count, limit, mine, stalled } of scopes) {
    const episode = episodes.get(scope);
    if (count <= limit) {
      if (episodes.has(scope)) {
        if (episode) ended(episode.entry, episode.tuples, open, now);
        episodes.delete(scope);
      }
      continue;
    }
    kernelOverLimitCount++;
    if (episodes.has(scope)) {
      if (episode) episode.entry.peak = Math.max(episode.entry.peak, count);
      continue;
    }
    kernelEpisodes++;
    if (kernelOverLimit.length >= 20) {
      episodes.set(scope, undefined);
      continue;
    }
    const of = open.filter(mine);
    const entry = describe(when, scope, count, limit, of, table.clientSide, stalled(), now);
    kernelOverLimit.push(entry);
    episodes.set(scope, { entry, tuples: new Map(of.map((k) => [k.tuple, k])) });
  }
  // Time the episodes: read again 10 ms later, backing off to every 500 ms while one lasts (a read
  // costs tens of ms of this thread).
  if (episodes.size === 0) timingDelay = 10;
  else if (episodeTimer === undefined) {
    episodeTimer = setTimeout(() => {
      episodeTimer = undefined;
      kernelCheck('timing');
    }, timingDelay);
    timingDelay = Math.min(500, timingDelay * 2);
  }
  kernelLast = counts;
  return { counts, open };
}

/** An episode is over: how long it lasted, and which of the connections open at its start are
 *  no longer open (what the server's books say of them: how and in what phase they closed). */
function ended(entry: KernelOverLimit, tuples: Map<string, KernelConn>, open: KernelConn[], now: number): void {
  entry.lastedMs = now - entry.at;
  const still = new Set(open.map((k) => k.tuple));
  for (const [tuple, k] of tuples) {
    if (still.has(tuple) || entry.gone.length >= 3) continue;
    const gone = recentlyClosed.get(tuple);
    const [, address, p] = tuple.split('|');
    const c = k.server.conns.get(keyOf(address, Number(p)));
    entry.gone.push(
      `${k.server.spec.name} from ${address}:${p}: ` +
        (gone
          ? `${gone.how}, ${now - gone.at} ms ago`
          : c && !c.closed
            ? `still open in the books (${c.phase})`
            : 'not in the books'),
    );
  }
}

/** What the connections of a scope over its limit were: their states at the server, where the
 *  servers' books had them, and what the client's end of each was. */
function describe(
  when: string,
  scope: string,
  count: number,
  limit: number,
  of: KernelConn[],
  clientSide: Map<string, number>,
  stalled: number,
  now: number,
): KernelOverLimit {
  const inBooks = { open: 0, endedByServer: 0, notAccepted: 0, closed: 0, closedHow: [] as string[] };
  const client: Record<string, number> = {};
  for (const k of of) {
    const cs = clientSide.get(k.tuple);
    const name = cs === undefined ? 'gone' : (STATE_NAMES[cs] ?? String(cs));
    client[name] = (client[name] ?? 0) + 1;
    const [, address, p] = k.tuple.split('|');
    const c = k.server.conns.get(keyOf(address, Number(p)));
    if (c && !c.closed) {
      if (c.endedAt === 0) inBooks.open++;
      else inBooks.endedByServer++;
      continue;
    }
    const gone = recentlyClosed.get(k.tuple);
    if (!gone) {
      inBooks.notAccepted++;
      continue;
    }
    inBooks.closed++;
    if (inBooks.closedHow.length < 3)
      inBooks.closedHow.push(`${STATE_NAMES[k.state]}, closed in the books ${now - gone.at} ms before (${gone.how})`);
  }
  return {
    at: now,
    when,
    scope,
    count,
    peak: count,
    limit,
    lastedMs: -1,
    gone: [],
    established: of.filter((k) => k.state === ST_ESTABLISHED).length,
    closeWait: of.filter((k) => k.state === ST_CLOSE_WAIT).length,
    synRecv: of.filter((k) => k.state === ST_SYN_RECV).length,
    stalled,
    inBooks,
    clientSide: Object.entries(client)
      .sort((x, y) => y[1] - x[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', '),
  };
}

/** After the client let go of everything: polls the kernel until it has no open connection to the
 *  servers, at most waitMs. */
function kernelDrain(waitMs: number): void {
  const t0 = Date.now();
  const poll = () => {
    const { counts, open } = kernelCheck('sample');
    const waited = Date.now() - t0;
    if (counts.total > 0 && waited < waitMs) {
      setTimeout(poll, 20);
      return;
    }
    const stalledTuples = new Set<string>();
    for (const r of running) for (const c of r.stalled) stalledTuples.add(c.tuple);
    const left = open
      .slice(0, 20)
      .map(
        (k) =>
          `${k.server.spec.name} from ${k.tuple.split('|').slice(1).join(':')} ${STATE_NAMES[k.state]}` +
          (stalledTuples.has(k.tuple) ? ' (stalled: the server is not reading it)' : ''),
      );
    port.postMessage({ type: 'kernelDrain', open: counts.total, waitedMs: waited, left } satisfies FromWorker);
  };
  poll();
}

function counts(kernel: KernelCounts): Counts {
  const c: Counts = { total: 0, byServer: {}, bySource: {}, liveTotal: 0, liveByServer: {}, liveBySource: {}, kernel };
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
    servers: running.map((r) => ({
      ...r.stats,
      open: gauge(`server:${r.spec.name}`).open,
      peak: gauge(`server:${r.spec.name}`).peak,
    })),
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
    kernelPeak: { total: kernelPeak.total, bySource: { ...kernelPeak.bySource } },
    kernelNow: kernelLast,
    kernelReads,
    kernelReadMs,
    kernelDuplicates,
    kernelOverLimitCount,
    kernelEpisodes,
    kernelUnconfirmed,
    kernelOverLimit: [...kernelOverLimit],
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
  // The kernel's table is read at every KERNEL_EVERY-th sample (once a second): a read walks the
  // whole established-connections hash, 10-40 ms here, in this thread. The servers with a limit of
  // their own or a stall are read at every accept besides.
  const KERNEL_EVERY = 4;
  let samples = 0;
  const sampler = setInterval(() => {
    if (samples++ % KERNEL_EVERY === 0) kernelCheck('sample');
    port.postMessage({ type: 'sample', at: Date.now(), counts: counts(kernelLast) } satisfies FromWorker);
  }, init.sampleMs);
  const collector = setInterval(() => {
    gc?.();
    heapUsed = process.memoryUsage().heapUsed;
  }, init.gcMs);
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'stats') {
      kernelCheck('sample');
      port.postMessage({ type: 'stats', stats: snapshot(msg.withIds) } satisfies FromWorker);
    } else if (msg.type === 'kernelDrain') {
      kernelDrain(msg.waitMs);
    } else if (msg.type === 'close') {
      clearInterval(sampler);
      clearInterval(collector);
      void Promise.all(
        running.map(
          (r) =>
            new Promise<void>((res) => {
              r.closing = true;
              clearTimeout(r.flapTimer);
              r.listener?.close();
              r.smtp.close(() => res());
            }),
        ),
      ).then(() => {
        port.postMessage({ type: 'closed' } satisfies FromWorker);
        port.close();
      });
    }
  });
  port.postMessage({ type: 'ready', ports } satisfies FromWorker);
}

main().catch((err: unknown) => {
  port.postMessage({
    type: 'error',
    message: err instanceof Error ? (err.stack ?? err.message) : String(err),
  } satisfies FromWorker);
});
