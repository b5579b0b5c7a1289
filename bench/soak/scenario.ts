// The soak run's scenario: arguments, servers, domains, and which message goes where. Everything
// random comes from --seed, so a run can be repeated (timing aside).
import fs from 'node:fs';
import { skewedShares, WeightedPick } from '../../examples/demo/harness.js';
import { DEFAULT_FAULTS, prng, scaleFaults, type FaultRates, type ServerSpec } from './protocol.js';

/** The server that stops reading: a message's first transaction there stalls after 354, for
 *  STALL_MS; its two domains are capped at STALL_CAP connections each. Their bodies are STALL_BODY
 *  bytes, more than the kernel buffers of both ends take in, so that the client's writes block and
 *  its FIN would queue behind them: the sender's buffer grows to the most of net.ipv4.tcp_wmem (4
 *  MiB by default), the receiver's stays near 64 KiB while nothing is read, and smtp-server holds
 *  some 50 KiB; 1 MiB over the first covers the others. No larger than that: every stall message
 *  is held in the store (and copied for each attempt) until it is delivered, and RSS carries it. */
export const STALL = 'stall';
export const STALL_CAP = 2;
export const STALL_MS = 30_000;
export const STALL_BODY = senderBufferMax() + 1024 * 1024;

function senderBufferMax(): number {
  try {
    const most = Number(fs.readFileSync('/proc/sys/net/ipv4/tcp_wmem', 'latin1').trim().split(/\s+/)[2]);
    if (Number.isInteger(most) && most > 0) return most;
  } catch {
    // not Linux, or no /proc: the kernel default
  }
  return 4 * 1024 * 1024;
}

export interface Options {
  messages: number;
  /** At most this many messages submitted and not yet final (queued, delayed or in flight). */
  window: number;
  domains: number;
  seed: number;
  /** Multiplies every fault rate (0: no faults). */
  faults: number;
  /** messageExpiration of ordinary domains, and of the dead domain, seconds. */
  expire: number;
  deadExpire: number;
  store: 'memory' | 'file' | 'log';
  /** Give up when the queue has not drained this many seconds after the last submission. */
  drainTimeout: number;
  /** Fail when RSS grows faster than this over the second half, MB per million messages. */
  rssSlopeLimit: number;
  /** Seconds between progress lines. */
  progress: number;
  /** Write the figures as JSON here ('' for none). */
  json: string;
  /** maxDeliveriesPerConnection (0: no limit). */
  maxDeliveries: number;
  /** Zipf exponent of the ordinary domains' shares of the mail (0: all equal). */
  skew: number;
  /** Per cent of the mail that goes to the domains of the server that stops reading (0: none). */
  stallShare: number;
}

export const DEFAULTS: Options = {
  messages: 1_000_000,
  window: 20_000,
  domains: 100,
  seed: 1,
  faults: 1,
  expire: 60,
  deadExpire: 10,
  store: 'memory',
  drainTimeout: 300,
  rssSlopeLimit: 64,
  progress: 5,
  json: 'bench/soak/results/last-run.json',
  maxDeliveries: 100,
  skew: 0,
  stallShare: 0.005,
};

export const HELP = `usage: npm run soak -- [options]
  --messages N        messages to submit (default ${DEFAULTS.messages.toLocaleString('en-US')})
  --window N          at most N messages submitted and not yet final, 1000..200000 (default ${DEFAULTS.window})
  --domains N         destination domains, at least 10 (default ${DEFAULTS.domains})
  --seed N            scenario and fault randomness (default ${DEFAULTS.seed})
  --faults X          multiply every fault rate by X, 0..20 (default ${DEFAULTS.faults}; 0: no faults)
  --expire S          messageExpiration of ordinary domains, seconds (default ${DEFAULTS.expire})
  --dead-expire S     messageExpiration of the domain whose port is closed, seconds (default ${DEFAULTS.deadExpire})
  --store memory|file|log MemoryStore, or a FileSpool or LogSpool in a temporary directory (default ${DEFAULTS.store})
  --drain-timeout S   fail when the queue has not drained S seconds after the last submission (default ${DEFAULTS.drainTimeout})
  --rss-slope-limit M fail when RSS grows more than M MB per million messages over the second half (default ${DEFAULTS.rssSlopeLimit})
  --progress S        seconds between progress lines (default ${DEFAULTS.progress})
  --max-deliveries N  maxDeliveriesPerConnection, 0 for no limit (default ${DEFAULTS.maxDeliveries})
  --skew X            Zipf exponent of the ordinary domains' shares of the mail, 0..2 (default ${DEFAULTS.skew}: equal shares)
  --stall-share P     per cent of the mail to the two domains whose server stops reading their first attempts,
                      0..1 (default ${DEFAULTS.stallShare}; their bodies are ${+(STALL_BODY / 1048576).toFixed(1)} MiB each)
  --json FILE         write the figures as JSON to FILE, '' for none (default ${DEFAULTS.json})`;

const LIMITS: Partial<Record<keyof Options, [number, number]>> = {
  messages: [1, 100_000_000],
  window: [1000, 200_000],
  domains: [10, 100_000],
  seed: [0, 2 ** 32 - 1],
  faults: [0, 20],
  expire: [1, 86_400],
  deadExpire: [1, 86_400],
  drainTimeout: [1, 86_400],
  rssSlopeLimit: [0, 1e6],
  progress: [0.25, 3600],
  maxDeliveries: [0, 1_000_000],
  skew: [0, 2],
  stallShare: [0, 1],
};
const INTEGER = new Set<keyof Options>(['messages', 'window', 'domains', 'seed', 'maxDeliveries']);

export function parseArgs(argv: string[]): Options {
  const o: Options = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      console.log(HELP);
      process.exit(0);
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    const key = m?.[1].replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof Options | undefined;
    if (!m || key === undefined || !(key in DEFAULTS))
      throw new RangeError(`unknown argument ${JSON.stringify(a)}\n${HELP}`);
    const raw = m[2] ?? argv[++i];
    if (raw === undefined) throw new RangeError(`--${m[1]} needs a value`);
    if (key === 'store') {
      if (raw !== 'memory' && raw !== 'file' && raw !== 'log')
        throw new RangeError(`--store must be memory, file or log, got ${JSON.stringify(raw)}`);
      o.store = raw;
      continue;
    }
    if (key === 'json') {
      o.json = raw;
      continue;
    }
    const v = Number(raw.replace(/_/g, ''));
    const [lo, hi] = LIMITS[key]!;
    if (!Number.isFinite(v) || v < lo || v > hi || (INTEGER.has(key) && !Number.isInteger(v))) {
      throw new RangeError(
        `--${m[1]} must be ${INTEGER.has(key) ? 'an integer' : 'a number'} from ${lo} to ${hi}, got ${JSON.stringify(raw)}`,
      );
    }
    (o as unknown as Record<string, number>)[key] = v;
  }
  return o;
}

export interface Binding {
  name: string;
  localAddress: string;
  ehloName: string;
  /** serverMaxOutboundConnections of the binding, if capped. */
  cap?: number;
}

export const BINDINGS: Binding[] = [
  { name: 'mta1', localAddress: '127.0.0.1', ehloName: 'mta1.out.soak.test' },
  { name: 'mta2', localAddress: '127.0.0.2', ehloName: 'mta2.out.soak.test', cap: 80 },
];

export const SERVER_MAX = 280;
export const RESERVE = 20;
export const CEILING = SERVER_MAX + RESERVE;
export const PER_PAIR = 10;
export const TIGHT = 6;
export const DEAD = 'dead';

export const SERVERS: ServerSpec[] = [
  { name: 'a', faults: true },
  { name: 'b', faults: true },
  { name: 'c', faults: true },
  // Its port is closed for 0.3-1.2 s after every 2-6 s open: connection refused.
  { name: 'flap', faults: true, flap: { openMs: [2000, 6000], closedMs: [300, 1200] } },
  // Refuses with 421 any connection beyond TIGHT open ones; its three domains' scope caps add up
  // to exactly TIGHT, so only the core's own accounting keeps it from refusing.
  { name: 'tight', faults: true, refuseAbove: TIGHT },
  // Stops reading after its 354 to a message's first transaction (STALL_MS, far longer than the
  // client waits), then accepts the message at its next attempt. No random faults.
  { name: STALL, faults: false, stall: { attempts: 1, ms: STALL_MS } },
];

export interface DomainPlan {
  name: string;
  /** A ServerSpec name, or DEAD for the domain whose port has no listener. */
  server: string;
  /** maxOutboundConnections per binding, and scopeMaxOutboundConnections (the domain over all
   *  bindings) when set. */
  perPair: number;
  scopeMax?: number;
}

export interface Workload {
  domains: DomainPlan[];
  faults: FaultRates;
  /** Draws a message's domain by the domains' shares of the mail. */
  picker: WeightedPick;
}

export function makeWorkload(o: Options): Workload {
  const random = prng(o.seed);
  const domains: DomainPlan[] = [];
  const shares = [2, 2, 2];
  shares.forEach((s, i) => {
    domains.push({ name: `tight-${i + 1}.example`, server: 'tight', perPair: s, scopeMax: s });
  });
  domains.push({ name: 'dead.example', server: DEAD, perPair: PER_PAIR });
  for (let i = 1; i <= 2; i++)
    domains.push({ name: `stall-${i}.example`, server: STALL, perPair: STALL_CAP, scopeMax: STALL_CAP });
  const special = domains.length;
  const spread = ['a', 'b', 'c', 'flap'];
  const counters: Record<string, number> = {};
  for (let i = domains.length; i < o.domains; i++) {
    const server = spread[(i - special) % spread.length];
    counters[server] = (counters[server] ?? 0) + 1;
    domains.push({ name: `${server}-${counters[server]}.example`, server, perPair: PER_PAIR });
  }
  // The tight domains get 0.2% of the mail each, the dead one 0.5%; the ordinary ones share the
  // rest, equally by default (--skew 0), or on a Zipf-like skew over a random order. Under the
  // soak's steady overload every pair's queue is long enough for the connection goal to reach its
  // maximum, so connections are shared out by the limits and the passes' rotation, not by queue
  // size: a domain whose share is well above its fair share of the ceiling falls behind for good
  // and its mail expires (docs/soak.md, finding 2). Equal shares keep the default run clear of that.
  // The two stall domains share --stall-share per cent (0.005: 25 messages each in a million).
  const stall = o.stallShare / 100;
  const weights = new Float64Array(o.domains);
  weights.set(skewedShares(random, o.domains - special, o.skew, 0.989 - stall), special);
  weights[0] = weights[1] = weights[2] = 0.002;
  weights[3] = 0.005;
  weights[4] = weights[5] = stall / 2;
  return { domains, faults: scaleFaults(DEFAULT_FAULTS, o.faults), picker: new WeightedPick(weights) };
}

/** The most connections the configuration lets the core hold to one server at once. */
export function serverLimit(w: Workload, server: string): number {
  if (server === 'tight') return TIGHT;
  // The others: what their domains' limits add up to (the stall server: 2 x STALL_CAP).
  let sum = 0;
  for (const d of w.domains) {
    if (d.server === server) sum += Math.min(d.scopeMax ?? Infinity, d.perPair * BINDINGS.length);
  }
  return Math.min(sum, CEILING);
}
