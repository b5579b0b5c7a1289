// Loopback SMTP servers for the delivery integration tests (test/13..16). Each server is a real
// smtp-server listening on 127.0.0.1 that keeps its own books, from its side of the wire:
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
import net from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

export interface Reply {
  code: number;
  message?: string;
}

export type GreetAction = 'accept' | 'hang' | Reply;
export type RcptAction = 'accept' | Reply;
export type DataAction = 'accept' | 'drop' | 'hang' | Reply;

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
}

export type TxnOutcome = 'accepted' | 'refused' | 'dropped' | 'hung' | 'aborted';

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
    close: () => new Promise<void>((resolve) => {
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
      const b = self.behavior;
      const accepting = self.open() - refusedOpen - 1; // the others, refused ones not counted
      let action: GreetAction = b.greet ? b.greet(rec) : 'accept';
      if (action === 'accept' && b.maxConnections !== undefined && accepting >= b.maxConnections) {
        action = { code: 421, message: `too many connections (${b.maxConnections})` };
      }
      if (action === 'accept') {
        cb();
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
      const chunks: Buffer[] = [];
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
        chunks.push(chunk);
      });
      stream.on('end', () => {
        if (decided === 'drop') return;
        t.dataEndAt = Date.now();
        const text = Buffer.concat(chunks).toString('latin1');
        const x = X_ID.exec(text);
        if (!x || Number(x[1]) !== t.id) anomalies.push(`${name}: message ${t.id} carries body X-Id ${x ? x[1] : 'none'}`);
        if (decided === 'hang') {
          t.outcome = 'hung';
          return; // never answer
        }
        const d = self.behavior.dataDelayMs;
        const delay = typeof d === 'function' ? d(t.id) : d ?? 0;
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

/** A port nothing listens on (it was free a moment ago). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
