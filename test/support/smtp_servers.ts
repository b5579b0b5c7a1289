// Loopback SMTP servers for the delivery integration tests (test/delivery/, test/operator/, and
// test/pass/grant-list.test.ts). Each server is a real smtp-server listening on 127.0.0.1 that
// keeps its own books, from its side of the wire:
//
// - connections: accepted at the TCP level ('connection' on the listening socket, the earliest a
//   server can know of one) and counted closed at the first of 'end' (the client's FIN), 'error',
//   'close', or the server dropping the socket itself. Concurrent counts and their peaks are kept
//   per server, per client address (a binding, when the transport gives each binding its own
//   source address 127.0.0.x), per (server, address) and in total, in a ConnectionWatch that
//   several servers may share, so limits that span domains (a binding's total, the server total)
//   are observed where they matter: at the receivers.
// - transactions: every MAIL FROM starts one; the message id is read from the envelope sender
//   (id-<n>@...) and checked against the body's X-Id header. A message counts as *accepted* only
//   when the server sent its 250 after the final dot on a socket that was still open; a message
//   the server dropped, refused or never answered is not accepted.
//
// Behaviour is chosen per stage and can be changed while the server runs (server.behavior):
// greeting (accept, a 4xx/5xx reply, hang = never greet), RCPT (accept or a reply), DATA (accept,
// a reply, 'drop' = destroy the socket on the first chunk of the message, before the final dot,
// so the server has NOT accepted it, 'hang' = read the message and never answer), a delay before
// the reply to the final dot, and a cap beyond which new connections get 421 at the greeting.
// `stall` makes a connection stop *reading* for good at one stage (see StallStage): the client's
// bytes then pile up in the socket buffers, and its FIN is never read either.
//
// A stalled socket emits no 'end' and no 'close' (nothing reads it), so the books above keep it
// open until close() destroys it (or smtp-server's own 30 s socket timeout ends it), whatever
// the client did: for those tests the ground truth is
// the kernel's view of the receiver, server.kernelOpen() / KernelGauge: the sockets whose local
// port is the server's and whose peer is a connection this server accepted (or one still in
// SYN_RECV), in a state where the receiving host still holds the connection for its application
// (SYN_RECV, ESTABLISHED, CLOSE_WAIT; read from /proc/net/tcp and tcp6, so Linux only). The peer
// filter matters: a listener bound to port 0 may get a port that an unrelated client socket
// (another test's, or a leftover) still uses as its local port. A client that closes gracefully (FIN) leaves a stalled receiver in CLOSE_WAIT, and
// one whose FIN sits behind unsent data leaves it ESTABLISHED: both still count, as a real server
// would count them. Only a reset (RST) takes the connection out of the receiver's kernel.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

export interface Reply {
  code: number;
  message?: string;
}

export type GreetAction = 'accept' | 'hang' | Reply;
export type RcptAction = 'accept' | Reply;
export type DataAction = 'accept' | 'drop' | 'hang' | Reply;

/**
 * Where a stalled connection stops reading (and never writes again):
 * - 'connect': at once, before the greeting (a peer that hangs the greeting and reads nothing);
 * - 'greeting': right after sending the 220 greeting (EHLO is never read, so never answered);
 * - 'data': after the 354 reply to DATA (the message body fills the socket buffers);
 * - 'reply': after the 250 reply to the final dot (the next command, QUIT or MAIL, is never read).
 */
export type StallStage = 'connect' | 'greeting' | 'data' | 'reply';

export interface Behavior {
  /** What to do when a connection is ready for its greeting (default: accept). */
  greet?: (c: ConnRecord) => GreetAction;
  /** Per recipient (default: accept). `id` is the transaction's message id. */
  rcpt?: (id: number, address: string, c: ConnRecord) => RcptAction;
  /** Per message, once its first chunk arrives (default: accept). `attempt` counts this server's
   *  transactions for the id, from 1. */
  data?: (id: number, attempt: number, c: ConnRecord) => DataAction;
  /** Delay before the reply to the final dot, ms (number or per message). */
  dataDelayMs?: number | ((id: number) => number);
  /** Connections beyond this many open ones (not counting refused ones) get 421 at the greeting. */
  maxConnections?: number;
  /** Stop reading the connection for good at `stage` when this returns true (default never).
   *  A stall at 'connect' comes before maxConnections and greet are consulted. */
  stall?: (stage: StallStage, c: ConnRecord) => boolean;
}

export type TxnOutcome = 'accepted' | 'refused' | 'dropped' | 'hung' | 'stalled' | 'aborted';

export interface Txn {
  id: number;
  conn: ConnRecord;
  mailAt: number;
  rcpt: string[];
  /** This server's transaction count for the id at the time (1 = first). */
  attempt: number;
  dataStartAt?: number;
  dataEndAt?: number;
  repliedAt?: number;
  outcome?: TxnOutcome;
  code?: number;
  /** The message as received (after DATA's dot-unstuffing): its length and SHA-256, hex. Only its
   *  first 64 KiB are held (for the X-Id check), so a large message costs the receiver no memory. */
  bytes?: number;
  sha256?: string;
}

export interface ConnRecord {
  seq: number;
  server: string;
  address: string;
  port: number;
  openedAt: number;
  /** When onConnect ran (smtp-server waits ~100 ms after accept for early talkers). */
  readyAt?: number;
  closedAt?: number;
  /** Refused at the greeting (a reply code) or never greeted ('hang'). */
  refused?: number | 'hang';
  /** The stage at which the connection stopped reading (Behavior.stall). */
  stalled?: StallStage;
  txns: Txn[];
}

interface Gauge {
  open: number;
  peak: number;
}

/** Concurrent-connection books shared by any number of servers. */
export class ConnectionWatch {
  readonly #gauges = new Map<string, Gauge>();
  /** Every connection ever accepted, by any server of this watch, in accept order. */
  readonly connections: ConnRecord[] = [];

  /** `extraKeys` adds gauges of the caller's own (say, a binding group from the peer address). */
  constructor(private readonly extraKeys: (c: ConnRecord) => string[] = () => []) {}

  #gauge(key: string): Gauge {
    let g = this.#gauges.get(key);
    if (!g) this.#gauges.set(key, (g = { open: 0, peak: 0 }));
    return g;
  }

  #keys(c: ConnRecord): string[] {
    return ['total', `server:${c.server}`, `addr:${c.address}`, `pair:${c.server}|${c.address}`, ...this.extraKeys(c)];
  }

  opened(c: ConnRecord): void {
    this.connections.push(c);
    for (const k of this.#keys(c)) {
      const g = this.#gauge(k);
      g.open++;
      if (g.open > g.peak) g.peak = g.open;
    }
  }

  closed(c: ConnRecord): void {
    for (const k of this.#keys(c)) this.#gauge(k).open--;
  }

  open(key = 'total'): number {
    return this.#gauges.get(key)?.open ?? 0;
  }

  peak(key = 'total'): number {
    return this.#gauges.get(key)?.peak ?? 0;
  }

  /** Peaks and current counts of every key, for failure messages. */
  snapshot(): Record<string, Gauge> {
    return Object.fromEntries([...this.#gauges].map(([k, g]) => [k, { ...g }]));
  }
}

export interface TestServer {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly watch: ConnectionWatch;
  behavior: Behavior;
  /** Connections of this server, in accept order. */
  readonly connections: ConnRecord[];
  readonly txns: Txn[];
  /** Ids accepted (250 after the final dot), in order; an id twice means it was received twice. */
  readonly accepted: number[];
  /** Things that must never happen (a body that does not match its envelope, an unparsable id). */
  readonly anomalies: string[];
  open(): number;
  peak(): number;
  acceptedCount(id: number): number;
  /** Ids accepted more than once. */
  duplicates(): number[];
  /** Connections the receiving kernel holds for this server right now (receiverConnections,
   *  limited to peers this server accepted). */
  kernelOpen(): number;
  /** Destroys every socket (no reply), then closes the listener. */
  close(): Promise<void>;
}

export interface ServerOptions {
  name?: string;
  /** Listen on this port (default: any free one). */
  port?: number;
  watch?: ConnectionWatch;
  behavior?: Behavior;
}

const ID_FROM = /^id-(\d+)@/;
const X_ID = /^X-Id: (\d+)\r?$/m;

function smtpError(r: Reply): Error & { responseCode: number } {
  const e = new Error(r.message ?? `${r.code} test server says ${r.code}`) as Error & { responseCode: number };
  e.responseCode = r.code;
  return e;
}

let seqCounter = 0;

export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  const name = options.name ?? `srv${++seqCounter}`;
  const watch = options.watch ?? new ConnectionWatch();
  const connections: ConnRecord[] = [];
  const txns: Txn[] = [];
  const accepted: number[] = [];
  const acceptedCounts = new Map<number, number>();
  const attempts = new Map<number, number>();
  const anomalies: string[] = [];
  const sockets = new Map<string, { socket: net.Socket; rec: ConnRecord }>();
  const current = new Map<string, Txn>(); // connection key -> transaction in progress
  let refusedOpen = 0;

  const keyOf = (address: string | undefined, port: number | undefined) => `${address}|${port}`;
  const sessionKey = (s: SMTPServerSession) => keyOf(s.remoteAddress, s.remotePort);
  const markClosed = (rec: ConnRecord) => {
    if (rec.closedAt !== undefined) return;
    rec.closedAt = Date.now();
    if (rec.refused !== undefined) refusedOpen--;
    watch.closed(rec);
    const key = keyOf(rec.address, rec.port);
    const t = current.get(key);
    if (t && t.outcome === undefined) t.outcome = 'aborted';
    current.delete(key);
    sockets.delete(key);
  };

  /** Stops reading the socket for good: no pipe, no flowing, no resume() (smtp-server resumes a
   *  socket it closes, to read the FIN), and no reads from the kernel either: a paused net.Socket
   *  still reads into its buffer up to the high-water mark, and so would see the client's FIN. */
  const stall = (rec: ConnRecord, stage: StallStage): void => {
    const entry = sockets.get(keyOf(rec.address, rec.port));
    if (!entry) return;
    const socket = entry.socket;
    rec.stalled = stage;
    socket.unpipe();
    socket.pause();
    socket.resume = () => socket;
    const handle = (socket as net.Socket & { _handle?: { reading?: boolean; readStop?: () => number } })._handle;
    if (handle?.readStop) {
      handle.reading = false;
      handle.readStop();
    }
  };
  const stalls = (stage: StallStage, rec: ConnRecord): boolean => self.behavior.stall?.(stage, rec) === true;

  const self: TestServer = {
    name,
    host: '127.0.0.1',
    port: 0,
    watch,
    behavior: options.behavior ?? {},
    connections,
    txns,
    accepted,
    anomalies,
    open: () => watch.open(`server:${name}`),
    peak: () => watch.peak(`server:${name}`),
    acceptedCount: (id) => acceptedCounts.get(id) ?? 0,
    duplicates: () => [...acceptedCounts].filter(([, n]) => n > 1).map(([id]) => id),
    kernelOpen: () => receiverConnections(self.port, new Set(connections.map((c) => c.port))),
    close: () =>
      new Promise<void>((resolve) => {
        for (const { socket, rec } of [...sockets.values()]) {
          socket.destroy();
          markClosed(rec);
        }
        server.close(() => resolve());
      }),
  };

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    disableReverseLookup: true,
    closeTimeout: 50,
    socketTimeout: 30_000,
    onConnect(session, cb) {
      const entry = sockets.get(sessionKey(session));
      if (!entry) {
        // The socket closed before smtp-server got this far; nothing to greet.
        cb(smtpError({ code: 421, message: 'gone' }));
        return;
      }
      const rec = entry.rec;
      rec.readyAt = Date.now();
      if (stalls('connect', rec)) {
        stall(rec, 'connect');
        return; // never greeted, never read
      }
      const b = self.behavior;
      const accepting = self.open() - refusedOpen - 1; // the others, refused ones not counted
      let action: GreetAction = b.greet ? b.greet(rec) : 'accept';
      if (action === 'accept' && b.maxConnections !== undefined && accepting >= b.maxConnections) {
        action = { code: 421, message: `too many connections (${b.maxConnections})` };
      }
      if (action === 'accept') {
        cb(); // writes the greeting
        if (stalls('greeting', rec)) stall(rec, 'greeting');
        return;
      }
      rec.refused = action === 'hang' ? 'hang' : action.code;
      refusedOpen++;
      if (action !== 'hang') cb(smtpError(action));
      // 'hang': never greet; the client's greeting timeout ends it.
    },
    onMailFrom(address, session, cb) {
      const entry = sockets.get(sessionKey(session));
      const m = ID_FROM.exec(address.address);
      if (!entry || !m) {
        if (!m) anomalies.push(`${name}: MAIL FROM without an id: ${address.address}`);
        cb(smtpError({ code: 451, message: 'no id' }));
        return;
      }
      const id = Number(m[1]);
      const attempt = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, attempt);
      const t: Txn = { id, conn: entry.rec, mailAt: Date.now(), rcpt: [], attempt };
      txns.push(t);
      entry.rec.txns.push(t);
      current.set(sessionKey(session), t);
      cb();
    },
    onRcptTo(address, session, cb) {
      const t = current.get(sessionKey(session));
      if (!t) {
        cb(smtpError({ code: 503, message: 'no transaction' }));
        return;
      }
      const action = self.behavior.rcpt ? self.behavior.rcpt(t.id, address.address, t.conn) : 'accept';
      if (action !== 'accept') {
        t.outcome = 'refused';
        t.code = action.code;
        t.repliedAt = Date.now();
        cb(smtpError(action));
        return;
      }
      t.rcpt.push(address.address);
      cb();
    },
    onData(stream: SMTPServerDataStream, session, cb) {
      const key = sessionKey(session);
      const t = current.get(key);
      const entry = sockets.get(key);
      stream.on('error', () => undefined);
      if (!t || !entry) {
        stream.resume();
        cb(smtpError({ code: 451, message: 'no transaction' }));
        return;
      }
      t.dataStartAt = Date.now();
      t.outcome = undefined; // a refused recipient among others does not end the transaction
      t.code = undefined;
      if (stalls('data', t.conn)) {
        // smtp-server sends the 354 right after this returns; the body is never read.
        t.outcome = 'stalled';
        stall(t.conn, 'data');
        return;
      }
      const chunks: Buffer[] = [];
      let held = 0;
      const hash = createHash('sha256');
      let bytes = 0;
      let decided: DataAction | undefined;
      stream.on('data', (chunk: Buffer) => {
        if (decided === undefined) {
          decided = self.behavior.data ? self.behavior.data(t.id, t.attempt, t.conn) : 'accept';
          if (decided === 'drop') {
            // Mid-DATA: the final dot has not been read, no reply was sent.
            t.outcome = 'dropped';
            entry.socket.destroy();
            markClosed(entry.rec);
            return;
          }
        }
        hash.update(chunk);
        bytes += chunk.length;
        if (held < 64 * 1024) {
          chunks.push(chunk);
          held += chunk.length;
        }
      });
      stream.on('end', () => {
        if (decided === 'drop') return;
        t.dataEndAt = Date.now();
        t.bytes = bytes;
        t.sha256 = hash.digest('hex');
        const text = Buffer.concat(chunks).toString('latin1');
        const x = X_ID.exec(text);
        if (!x || Number(x[1]) !== t.id)
          anomalies.push(`${name}: message ${t.id} carries body X-Id ${x ? x[1] : 'none'}`);
        if (decided === 'hang') {
          t.outcome = 'hung';
          return; // never answer
        }
        const d = self.behavior.dataDelayMs;
        const delay = typeof d === 'function' ? d(t.id) : (d ?? 0);
        const reply = () => {
          t.repliedAt = Date.now();
          if (entry.socket.destroyed || entry.rec.closedAt !== undefined) {
            t.outcome = 'aborted';
            cb(smtpError({ code: 421, message: 'gone' }));
            return;
          }
          current.delete(key);
          if (decided !== undefined && decided !== 'accept' && decided !== 'hang' && decided !== 'drop') {
            t.outcome = 'refused';
            t.code = decided.code;
            cb(smtpError(decided));
            return;
          }
          t.outcome = 'accepted';
          t.code = 250;
          accepted.push(t.id);
          acceptedCounts.set(t.id, (acceptedCounts.get(t.id) ?? 0) + 1);
          cb(null, `OK id ${t.id}`);
          if (stalls('reply', t.conn)) stall(t.conn, 'reply');
        };
        if (delay > 0) setTimeout(reply, delay);
        else reply();
      });
    },
    onClose(session) {
      const entry = sockets.get(sessionKey(session));
      if (entry) markClosed(entry.rec);
    },
  });
  server.on('error', () => undefined); // client resets are expected in these tests

  // Our own 'connection' listener runs at accept, before smtp-server's session setup.
  server.server.on('connection', (socket: net.Socket) => {
    const rec: ConnRecord = {
      seq: watch.connections.length + 1,
      server: name,
      address: socket.remoteAddress ?? '?',
      port: socket.remotePort ?? 0,
      openedAt: Date.now(),
      txns: [],
    };
    connections.push(rec);
    watch.opened(rec);
    sockets.set(keyOf(rec.address, rec.port), { socket, rec });
    const done = () => markClosed(rec);
    socket.once('end', done);
    socket.once('error', done);
    socket.once('close', done);
  });

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  (self as { port: number }).port = (server.server.address() as net.AddressInfo).port;
  return self;
}

// ---- the receiving kernel's view --------------------------------------------------------------

// /proc/net/tcp states (include/net/tcp_states.h) in which the receiver still holds a connection
// for its application: SYN_RECV (03, not yet accepted), ESTABLISHED (01), CLOSE_WAIT (08: the
// client sent FIN, the application has not closed). TIME_WAIT, FIN_WAIT*, LAST_ACK and CLOSING
// come after the receiver closed its side; a connection reset by the client is gone altogether.
const HELD_STATES = new Set(['01', '03', '08']);

/** Connections to local `port` that the receiving kernel holds for the server (Linux). With
 *  `peerPorts`, only those from one of these client ports count (and any in SYN_RECV). */
export function receiverConnections(port: number, peerPorts?: ReadonlySet<number>): number {
  // By connection (local and remote endpoint): /proc/net/tcp is read in chunks while the kernel
  // changes the table, so one read can list a connection twice.
  const seen = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'latin1');
    } catch {
      continue; // no IPv6 in this namespace
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      const portOf = (endpoint: string) => Number.parseInt(endpoint.slice(endpoint.lastIndexOf(':') + 1), 16);
      if (portOf(f[1]) !== port || !HELD_STATES.has(f[3])) continue;
      if (peerPorts && f[3] !== '03' && !peerPorts.has(portOf(f[2]))) continue;
      seen.add(`${f[1]} ${f[2]}`);
    }
  }
  return seen.size;
}

/** True where receiverConnections() can work (it reads /proc/net/tcp). */
export const kernelViewAvailable = fs.existsSync('/proc/net/tcp');

/**
 * Samples a server's kernelOpen() every `everyMs` and keeps the peak. A connection that exists
 * for less than a sample period can be missed; those these tests look for last seconds.
 */
export class KernelGauge {
  open = 0;
  peak = 0;
  samples = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(
    private readonly server: TestServer,
    everyMs = 5,
  ) {
    this.sample();
    this.#timer = setInterval(() => this.sample(), everyMs);
  }

  sample(): number {
    this.open = this.server.kernelOpen();
    this.samples++;
    if (this.open > this.peak) this.peak = this.open;
    return this.open;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** A port nothing listens on (it was free a moment ago). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
