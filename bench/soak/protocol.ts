// The messages between the soak run (main thread) and its SMTP servers (a worker thread, so that
// the servers count their connections on their own event loop and not on the core's).

/** Per-transaction and per-connection fault rates (each a probability, 0..1). */
export interface FaultRates {
  /** At the greeting: 421, 554, or no greeting at all (the client's greeting timeout ends it). */
  greet421: number;
  greet554: number;
  greetHang: number;
  /** At RCPT TO: 451, 550, or no reply (the client's command timeout ends the session). */
  rcpt451: number;
  rcpt550: number;
  rcptStall: number;
  /** The socket is destroyed on the first chunk of the message, before the final dot. */
  dataDrop: number;
  /** After the final dot: 451, 554, or no reply (command timeout). */
  data451: number;
  data554: number;
  dataStall: number;
}

export const DEFAULT_FAULTS: Readonly<FaultRates> = Object.freeze({
  greet421: 0.02,
  greet554: 0.003,
  greetHang: 0.002,
  rcpt451: 0.02,
  rcpt550: 0.005,
  rcptStall: 0.0005,
  dataDrop: 0.005,
  data451: 0.02,
  data554: 0.005,
  dataStall: 0.0005,
});

export function scaleFaults(f: Readonly<FaultRates>, k: number): FaultRates {
  const out = { ...f };
  for (const key of Object.keys(out) as Array<keyof FaultRates>) out[key] = Math.min(1, out[key] * k);
  return out;
}

export interface ServerSpec {
  name: string;
  /** Inject the random faults of FaultRates. */
  faults: boolean;
  /** A connection beyond this many open ones gets 421 at the greeting (the server's own limit). */
  refuseAbove?: number;
  /** The listening port is closed for [min, max] ms after every [min, max] ms open (connection
   *  refused), then opened again on the same port. */
  flap?: { openMs: [number, number]; closedMs: [number, number] };
  /** A receiver that stops reading: after its 354 to DATA it does not consume the body of a
   *  message's first `attempts` transactions (the socket is paused, the kernel buffers fill, the
   *  client's writes block) for `ms`, then reads on and answers 451. It never accepts a stalled
   *  transaction. While it does not read, it cannot see the client's FIN or RST: a stalled
   *  connection the client resets is found gone in the kernel's table (see KernelCounts) and
   *  dropped; a FIN waits in the kernel (CLOSE_WAIT) until the receiver reads again. */
  stall?: { attempts: number; ms: number };
}

export interface WorkerInit {
  servers: ServerSpec[];
  faults: FaultRates;
  seed: number;
  /** Highest message id; ids are 1..maxId. */
  maxId: number;
  /** The limits the servers' counts are checked against (for the over-limit diagnostics). */
  limits: { total: number; byServer: Record<string, number>; bySource: Record<string, number> };
  /** Push a snapshot of the open counts this often (ms). */
  sampleMs: number;
  /** Run gc() (when exposed) this often (ms), so that a heap sample is taken on a collected heap. */
  gcMs: number;
}

/** Open connections: accepted at the TCP level and not yet closed by the client (its FIN, an
 *  error or the socket's close, as this server sees them). `live` leaves out the connections the
 *  server has already ended itself (after its 221 to QUIT, or a 421/554 greeting) and that only
 *  wait for the client's FIN. */
export interface Counts {
  total: number;
  byServer: Record<string, number>;
  bySource: Record<string, number>;
  liveTotal: number;
  liveByServer: Record<string, number>;
  liveBySource: Record<string, number>;
  /** The same at the same moment, as the receiving kernel has it. */
  kernel: KernelCounts;
}

/** Connections to the servers as the receiving kernel has them (/proc/net/tcp, the servers'
 *  listening ports): SYN_RECV, ESTABLISHED (the accept queue included) and CLOSE_WAIT (the client
 *  sent its FIN, the receiver has not closed). This count does not depend on the servers' event
 *  loop seeing anything: a paused socket never emits 'end', and not even 'close' when the client
 *  resets it, but the kernel drops a reset connection at once and keeps one whose FIN is stuck
 *  behind data the receiver does not read. */
export interface KernelCounts {
  total: number;
  byServer: Record<string, number>;
  bySource: Record<string, number>;
  /** Of total, in CLOSE_WAIT. */
  closeWait: number;
}

/** A kernel count over its limit: when, which scope, and the states of the scope's connections. */
export interface KernelOverLimit {
  at: number;
  /** 'accept' (read at a TCP accept of a server marked for it), 'sample', or 'timing' (a read
   *  10 ms later, backing off to every 500 ms, while a scope is over its limit). */
  when: string;
  scope: string;
  count: number;
  /** The most the scope counted before it was back within its limit, and how long that took (ms;
   *  -1: not back by the end of the run). */
  peak: number;
  lastedMs: number;
  /** Connections open at the start that had closed when the count was back within the limit (the
   *  first 3): what the server's books say of them. */
  gone: string[];
  limit: number;
  established: number;
  closeWait: number;
  synRecv: number;
  /** Of the server's connections, those the server had stalled (it was not reading them). */
  stalled: number;
  /** The counted connections as the server's own books had them at that read: open (and not
   *  ended by the server), ended by the server (its last reply and FIN on their way), not yet
   *  accepted (in the accept queue), and already closed in its books (how and how many ms before,
   *  for the first few). */
  inBooks: { open: number; endedByServer: number; notAccepted: number; closed: number; closedHow: string[] };
  /** The states of the clients' ends of the counted connections ('gone': the client's kernel no
   *  longer has it), e.g. "ESTABLISHED 80, gone 1". */
  clientSide: string;
}

/** An accept that took a live count over its limit, and what the other open connections were doing. */
export interface OverLimit {
  at: number;
  scope: string;
  open: number;
  live: number;
  limit: number;
  /** Open connections of the scope that the server had ended (sent its last reply and FIN). */
  ending: number;
  /** Of those, ms since the server ended them (the oldest). */
  oldestEndingMs: number;
  /** The first connection of the scope (open at that accept) to close afterwards: how long after,
   *  how the server saw it close, where its session was, and how long before the server had
   *  ended it itself (-1: it had not). */
  firstToClose?: { msAfter: number; how: string; phase: string; endedByServerMsBefore: number };
}

/** How many times each fault was injected, by the same names as the rates. */
export type FaultTallies = Record<keyof FaultRates, number>;

export interface ServerStats extends FaultTallies {
  name: string;
  /** TCP connections accepted. */
  connections: number;
  peak: number;
  open: number;
  /** Greetings refused by the limit (refuseAbove), not by a fault. */
  refusedByLimit: number;
  transactions: number;
  accepted: number;
  /** Times the listener closed (flap), and re-listens that had to be retried (EADDRINUSE). */
  flaps: number;
  relistenRetries: number;
  /** Stalled transactions (stall), those the server dropped because the kernel no longer had
   *  their connection (the client reset it), and those the server read on after stall.ms. */
  stalled: number;
  stallsReset: number;
  stallsResumed: number;
  /** Peak of the server's kernel count (KernelCounts), at samples and, for servers with a stall
   *  or a refuseAbove, at every accept. */
  kernelPeak: number;
  /** Connections the client had reset before the server accepted them (not counted). */
  resetBeforeAccept: number;
}

export interface AllStats {
  servers: ServerStats[];
  globalPeak: number;
  globalOpen: number;
  peakBySource: Record<string, number>;
  /** The same peaks for live connections (see Counts). */
  liveGlobalPeak: number;
  livePeakByServer: Record<string, number>;
  livePeakBySource: Record<string, number>;
  /** Accepts that took a strict count over its limit, and of those, the accepts that took the
   *  live count over too (how many, and the first 20 in detail). */
  overLimitCount: number;
  liveOverLimitCount: number;
  overLimit: OverLimit[];
  /** Things that must never happen (a body whose X-Id does not match its envelope, ...). */
  anomalies: string[];
  anomalyCount: number;
  /** Peaks of the kernel counts (KernelCounts), the counts now, how many times the table was read,
   *  and the reads that found a count over its limit (how many, the first 20 in detail). */
  kernelPeak: { total: number; bySource: Record<string, number> };
  kernelNow: KernelCounts;
  kernelReads: number;
  /** Time the worker spent reading and parsing the table (ms, in all), and lines dropped because
   *  they listed a connection a second time in one read. */
  kernelReadMs: number;
  kernelDuplicates: number;
  kernelOverLimitCount: number;
  /** Times a scope went over its limit (each timed until it was back within), and reads that
   *  found a scope over its limit which the read right after did not confirm (see kernelCheck). */
  kernelEpisodes: number;
  kernelUnconfirmed: number;
  kernelOverLimit: KernelOverLimit[];
  /** The worker's own event-loop utilization since start, and its heap after the last gc. */
  elu: number;
  heapUsed: number;
  /** Per id: how many times a server accepted it (250 after the final dot), saturating at 255;
   *  and how many transactions (MAIL FROM) a server saw for it. Only with withIds. */
  acceptedById?: Uint8Array;
  attemptsById?: Uint8Array;
}

export type ToWorker =
  | { type: 'stats'; withIds: boolean }
  | { type: 'kernelDrain'; waitMs: number }
  | { type: 'close' };
export type FromWorker =
  | { type: 'ready'; ports: Record<string, number> }
  | { type: 'sample'; at: number; counts: Counts }
  | { type: 'stats'; stats: AllStats }
  /** The kernel count, polled until it is 0 or waitMs have passed: the count then, how long it
   *  took, and the connections left (server, source, state, and whether the server stalled it). */
  | { type: 'kernelDrain'; open: number; waitedMs: number; left: string[] }
  | { type: 'closed' }
  | { type: 'error'; message: string };

/** The message id travels in the envelope sender, and again in the body's X-Id header. */
export function senderFor(id: number): string {
  return `s-${id}@sender.soak.test`;
}

const SENDER = /^s-(\d+)@sender\.soak\.test$/;
export function idFromSender(from: string): number | undefined {
  const m = SENDER.exec(from);
  return m ? Number(m[1]) : undefined;
}

/** mulberry32, the demo's seeded PRNG (one copy in the project), so that --seed repeats a scenario. */
export { prng } from '../../examples/demo/protocol.js';
