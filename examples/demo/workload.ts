// The demo's scenario: which servers exist, which domains each one plays, and which messages go
// where. Everything comes from --seed, so a run can be repeated.
import { skewedShares, WeightedPick } from './harness.js';
import { prng, type ServerSpec } from './protocol.js';

export interface Options {
  messages: number;
  domains: number;
  bindings: number;
  seed: number;
  /** The tight server refuses connections beyond this many. */
  tight: number;
  /** messageExpiration of the domain whose MX is down, seconds. */
  expire: number;
  /** Give up waiting for outcomes after this many seconds. */
  timeout: number;
  /** Where the messages are kept: MemoryStore, FileSpool or LogSpool (in a temporary directory). */
  store: StoreKind;
}

export const STORES = ['memory', 'file', 'log'] as const;
export type StoreKind = (typeof STORES)[number];

export const DEFAULTS: Options = {
  messages: 30_000,
  domains: 300,
  bindings: 3,
  seed: 1,
  tight: 6,
  expire: 10,
  timeout: 120,
  store: 'memory',
};

const HELP = `usage: npm start -- [--messages N] [--domains N] [--bindings N] [--seed N] [--tight N] [--expire S] [--timeout S] [--store memory|file|log]
  --messages  messages to submit (default ${DEFAULTS.messages})
  --domains   destination domains, at least 8 (default ${DEFAULTS.domains})
  --bindings  source bindings 1..9, bound to 127.0.0.1..127.0.0.N (default ${DEFAULTS.bindings})
  --seed      workload and server randomness (default ${DEFAULTS.seed})
  --tight     connections the tight server accepts before it refuses with 421 (default ${DEFAULTS.tight})
  --expire    message expiration of the domain whose MX is down, seconds (default ${DEFAULTS.expire})
  --timeout   give up when not every message has an outcome after this many seconds (default ${DEFAULTS.timeout})
  --store     where messages are kept: memory (MemoryStore), file (FileSpool: a file per message) or
              log (LogSpool: a segment log with group commit), the last two durable in a temporary
              directory removed at the end (default ${DEFAULTS.store})`;

export function parseArgs(argv: string[]): Options {
  const o = { ...DEFAULTS };
  const limits: Record<Exclude<keyof Options, 'store'>, [number, number]> = {
    messages: [1, 10_000_000],
    domains: [8, 100_000],
    bindings: [1, 9],
    seed: [0, 2 ** 32 - 1],
    tight: [3, 1000],
    expire: [1, 3600],
    timeout: [1, 86_400],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      console.log(HELP);
      process.exit(0);
    }
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(a);
    if (m?.[1] === 'store') {
      const raw = m[2] ?? argv[++i];
      if (!STORES.includes(raw as StoreKind))
        throw new RangeError(`--store must be one of ${STORES.join(', ')}, got ${JSON.stringify(raw)}`);
      o.store = raw as StoreKind;
      continue;
    }
    const key = m?.[1] as Exclude<keyof Options, 'store'> | undefined;
    if (!m || key === undefined || !(key in limits))
      throw new RangeError(`unknown argument ${JSON.stringify(a)}\n${HELP}`);
    const raw = m[2] ?? argv[++i];
    const v = Number(raw);
    const [lo, hi] = limits[key];
    if (raw === undefined || !Number.isInteger(v) || v < lo || v > hi) {
      throw new RangeError(`--${key} must be an integer from ${lo} to ${hi}, got ${JSON.stringify(raw)}`);
    }
    o[key] = v;
  }
  return o;
}

export interface Binding {
  name: string;
  group?: string;
  localAddress: string;
  ehloName: string;
}

export function makeBindings(n: number): Binding[] {
  // The first two share a group ('pool'); the others stand alone, like a transactional VIP.
  return Array.from({ length: n }, (_, i) => ({
    name: `mta${i + 1}`,
    group: i < 2 && n > 1 ? 'pool' : undefined,
    localAddress: `127.0.0.${i + 1}`,
    ehloName: `mta${i + 1}.out.demo.test`,
  }));
}

export interface DomainPlan {
  name: string;
  /** A ServerSpec name, or 'down' for the domain whose MX accepts no connection. */
  server: string;
  /** scopeMaxOutboundConnections for the domain (tight server only). */
  scopeMax?: number;
}

export interface Workload {
  servers: ServerSpec[];
  domains: DomainPlan[];
  /** Message i (0-based, id i + 1): its domain index, binding index, priority, and whether its recipient is unknown. */
  domainOf: Uint32Array;
  bindingOf: Uint8Array;
  priorityOf: Uint8Array;
  unknownRcpt: Uint8Array;
}

export const UNKNOWN_USER = 'nobody';
export const DOWN = 'down';

export function makeWorkload(o: Options, bindings: number): Workload {
  const random = prng(o.seed);
  const servers: ServerSpec[] = [
    { name: 'fast-a', kind: 'fast' },
    { name: 'fast-b', kind: 'fast' },
    { name: 'slow', kind: 'slow', delayMs: [20, 60] },
    { name: 'flaky', kind: 'flaky', failRate: 0.2 },
    { name: 'tight', kind: 'tight', refuseAbove: o.tight },
  ];

  // Three domains share the tight server; their scope limits add up to exactly its limit, so the
  // core's own accounting is what keeps the server from refusing (sibling migration included).
  const domains: DomainPlan[] = [];
  const tightShares = [Math.ceil(o.tight / 3), Math.ceil((o.tight - Math.ceil(o.tight / 3)) / 2)];
  tightShares.push(o.tight - tightShares[0] - tightShares[1]);
  tightShares.forEach((s, i) => {
    domains.push({ name: `tight-${i + 1}.example`, server: 'tight', scopeMax: s });
  });
  domains.push({ name: 'down.example', server: DOWN });
  const spread = ['fast-a', 'fast-b', 'slow', 'flaky'];
  const counters: Record<string, number> = {};
  for (let i = domains.length; i < o.domains; i++) {
    const server = spread[(i - 4) % spread.length];
    counters[server] = (counters[server] ?? 0) + 1;
    domains.push({ name: `${server}-${counters[server]}.example`, server });
  }

  // Message weights: the tight domains and the dead one get a fixed share (1% each); the others a
  // Zipf-like skew over a random order, so a few domains are big and most are small.
  const special = 4;
  const weights = new Float64Array(o.domains);
  weights.set(skewedShares(random, o.domains - special, 0.9, 0.96), special);
  for (let i = 0; i < special; i++) weights[i] = 0.01;
  const picker = new WeightedPick(weights);

  const n = o.messages;
  const domainOf = new Uint32Array(n);
  const bindingOf = new Uint8Array(n);
  const priorityOf = new Uint8Array(n);
  const unknownRcpt = new Uint8Array(n);
  for (let m = 0; m < n; m++) {
    domainOf[m] = picker.pick(random());
    bindingOf[m] = Math.floor(random() * bindings);
    priorityOf[m] = random() < 0.02 ? 1 : 0;
    unknownRcpt[m] = random() < 0.005 ? 1 : 0;
  }
  return { servers, domains, domainOf, bindingOf, priorityOf, unknownRcpt };
}
