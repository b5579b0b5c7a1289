// The pieces of a run against loopback SMTP servers that the demo (npm start) and the soak test
// (npm run soak) share: request and reply with the servers' worker thread, the shut-down sequence,
// a port nobody listens on, and the exit guard. ask(type, msg) posts msg (if any) and waits for the worker's next
// message of that type; 'error' messages are collected, and fail a pending ask until the servers
// are up; other messages go to `other` first (true: handled). A worker that dies ends the process.
import { performance } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';

import type { MailQueueCore } from '../../lib/index.js';

export interface WorkerRpc<From extends { type: string }, To> {
  ask<T extends From['type']>(type: T, msg?: To): Promise<Extract<From, { type: T }>>;
  /** The worker's 'error' messages, in order. */
  readonly errors: string[];
  /** The servers are up: later 'error' messages are only collected. */
  serversUp(): void;
}

export function workerRpc<From extends { type: string }, To>(
  worker: Worker,
  other?: (m: From) => boolean,
): WorkerRpc<From, To> {
  const errors: string[] = [];
  let pending: { type: string; resolve: (m: From) => void; reject: (e: Error) => void } | undefined;
  let up = false;
  worker.on('message', (m: From) => {
    if (other?.(m)) return;
    if (m.type === 'error') {
      const message = String((m as { message?: unknown }).message);
      errors.push(message);
      if (!up && pending) pending.reject(new Error(`the SMTP servers did not start: ${message}`));
      return;
    }
    if (pending && pending.type === m.type) {
      const p = pending;
      pending = undefined;
      p.resolve(m);
    }
  });
  worker.on('error', (err) => {
    console.error(`server worker failed: ${err.stack ?? err.message}`);
    process.exit(1);
  });
  return {
    errors,
    serversUp: () => {
      up = true;
    },
    ask: <T extends From['type']>(type: T, msg?: To) =>
      new Promise<Extract<From, { type: T }>>((resolve, reject) => {
        pending = { type, resolve: resolve as (m: From) => void, reject };
        if (msg) worker.postMessage(msg);
      }),
  };
}

/** What shutDown() saw: the core right after stop(), and the servers once they had let go. */
export interface ShutDown<S> {
  /** stop() or close() calls that did not finish in time (reported, not waited out). */
  hangs: string[];
  stopMs: number;
  after: ReturnType<MailQueueCore['stats']>;
  summary: ReturnType<MailQueueCore['summary']>;
  invariantsOk: boolean;
  /** The servers' stats with ids, after they counted no open connection (or gave up waiting). */
  srv: S;
}

/**
 * Stops the core and closes the transport, each bounded by `boundMs`, reads the core's books, then
 * polls the servers (they see the last QUITs a moment after the core let go of them) until they
 * count no open connection, at most `polls` times 50 ms.
 */
export async function shutDown<S extends { globalOpen: number }>(
  core: MailQueueCore,
  transport: { close(): Promise<void> },
  serverStats: (withIds: boolean) => Promise<S>,
  boundMs: number,
  polls: number,
): Promise<ShutDown<S>> {
  const hangs: string[] = [];
  const bounded = async (what: string, p: Promise<unknown>): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => {
      timer = setTimeout(() => r('late'), boundMs);
    });
    if ((await Promise.race([p, late])) === 'late') hangs.push(`${what} did not finish within ${boundMs / 1000} s`);
    clearTimeout(timer);
  };
  const tStop = performance.now();
  await bounded('core.stop()', core.stop());
  const stopMs = performance.now() - tStop;
  const after = core.stats();
  const summary = core.summary();
  const invariantsOk = core.checkInvariants();
  await bounded('transport.close()', transport.close());
  let srv = await serverStats(false);
  for (let i = 0; i < polls && srv.globalOpen > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    srv = await serverStats(false);
  }
  srv = await serverStats(true);
  return { hangs, stopMs, after, summary, invariantsOk, srv };
}

/** A loopback port with no listener: bind an ephemeral one and let it go. */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Everything is closed: if something still holds the process after 5 s, say what and leave anyway. */
export function exitIfStuck(): void {
  setTimeout(() => {
    console.error(`the process did not end by itself; still active: ${process.getActiveResourcesInfo().join(', ')}`);
    process.exit(process.exitCode ?? 1);
  }, 5000).unref();
}

/**
 * Shares of `count` things that sum to `total`, on a Zipf-like skew (share of the k-th is
 * proportional to 1 / k^exponent; exponent 0: all equal) over a random order, so which ones are big
 * depends on the seed.
 */
export function skewedShares(random: () => number, count: number, exponent: number, total: number): Float64Array {
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const shares = new Float64Array(count);
  let sum = 0;
  for (let i = 0; i < count; i++) sum += shares[order[i]] = 1 / (i + 1) ** exponent;
  for (let i = 0; i < count; i++) shares[i] *= total / sum;
  return shares;
}

/** Draws an index with probability proportional to its weight. */
export class WeightedPick {
  readonly #cumulative: Float64Array;
  readonly total: number;
  constructor(weights: Float64Array) {
    this.#cumulative = new Float64Array(weights.length);
    let acc = 0;
    for (let i = 0; i < weights.length; i++) this.#cumulative[i] = acc += weights[i];
    this.total = acc;
  }

  /** The index of a draw r in [0, 1). */
  pick(r: number): number {
    const c = this.#cumulative;
    const x = r * this.total;
    let lo = 0;
    let hi = c.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (c[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
