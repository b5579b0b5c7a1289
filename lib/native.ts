// The only file that loads the compiled addon; it declares the binding's interface once, and
// everything else imports from here. Functions take a numeric core handle first (module-level
// functions cost about a third of wrapped-object methods) and move data through typed arrays that
// the caller owns.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

import { MailQueueError } from './errors.js';

export interface NativeBinding {
  createCore(
    config: Float64Array,
    groupOfBinding: Int32Array,
    bindingMax: Float64Array,
    groupMax: Float64Array,
  ): number;
  /** An ArrayBuffer over the core's counters, which the core writes in place. */
  countersBuffer(core: number): ArrayBuffer;
  /** The core's flight table (messages in flight by id), written in place by the core. */
  flightBuffer(core: number): ArrayBuffer;
  /** Keep the flight table from now on (takes write it, outcomes clear it). */
  trackFlight(core: number): void;
  destroyCore(core: number): boolean;
  addThrottle(core: number, count: number, windowMs: number): number;
  addDomain(core: number, pairs: Float64Array, scopeMax: number, groupScopeMax: Float64Array): number;
  setSuspended(core: number, domain: number, binding: number, suspended: boolean): void;
  // Live reconfiguration (lib/core/reconfigure.ts): limits set in place, counts left alone.
  setDomainLimits(
    core: number,
    domain: number,
    pairs: Float64Array,
    scopeMax: number,
    groupScopeMax: Float64Array,
  ): void;
  setServerLimits(core: number, limits: Float64Array, bindingMax: Float64Array, groupMax: Float64Array): void;
  setThrottleRate(core: number, throttle: number, count: number, windowMs: number): void;
  /** false for an unknown connection; else out[0..5]: how far the pair, domain, group::domain,
   *  group, binding and server counts behind the lease are above their limits. */
  leaseExcess(core: number, connectionId: number, out: Float64Array): boolean;
  enqueue(
    core: number,
    domain: number,
    binding: number,
    id: number,
    priority: number,
    nextAttempt: number,
    expiresAt: number,
    now: number,
  ): void;
  enqueueBatch(
    core: number,
    domain: number,
    binding: number,
    ids: Float64Array,
    priorities: Uint8Array | null,
    nextAttempt: number | Float64Array,
    expiresAt: number,
    now: number,
  ): void;
  enqueueArrivals(core: number, entries: Float64Array, n: number, now: number): void;
  /** Staged settles and defers, [handle, id, nextAttempt or NaN] each; returns how many named no
   *  message in flight (skipped). */
  applyOutcomes(core: number, entries: Float64Array, n: number, now: number): number;
  cancel(core: number, id: number): boolean;
  /** cancelled (room for ids.length): receives the ids cancelled, in batch order. */
  cancelBatch(core: number, ids: Float64Array, cancelled?: Float64Array): number;
  locate(core: number, id: number, out: Float64Array): number;
  activeSize(core: number, domain: number, binding: number): number;
  delayedSize(core: number, domain: number): number;
  peekActive(core: number, domain: number, binding: number, offset: number, out: Float64Array): number;
  peekDelayed(core: number, domain: number, offset: number, out: Float64Array): number;
  removeActive(core: number, domain: number, binding: number, id: number): boolean;
  take(core: number, domain: number, binding: number, now: number, out: Float64Array): number;
  takeFor(core: number, connectionId: number, now: number, out: Float64Array): number;
  settle(core: number, id: number): void;
  settleBatch(core: number, ids: Float64Array): void;
  deferBatch(core: number, ids: Float64Array, nextAttempt: number, now: number): void;
  defer(core: number, id: number, nextAttempt: number, now: number): void;
  untake(core: number, id: number): void;
  setAttempts(core: number, id: number, attempts: number): void;
  dueDomains(core: number, now: number, out: Uint32Array): number;
  /** 0 forgotten, 1 in use (mail or a connection), 2 held (suspended, or not drained yet). */
  forgetDomain(core: number, domain: number): number;
  drainIdle(core: number, out: Uint32Array): number;
  computeGoal(core: number, domain: number, binding: number, goalsz: number): number;
  openConnections(core: number, domain: number, binding: number, goal: number, reserve: number, now: number): number;
  defaultMaintain(core: number, domain: number, binding: number, now: number, goalsz: number, reserve: number): number;
  maintainDomain(core: number, domain: number, now: number, goalsz: number, reserve: number): number;
  maintainSlice(
    core: number,
    now: number,
    maxDomains: number,
    fresh: boolean,
    maxGrants: number,
    out: Float64Array,
  ): number;
  prepareVisit(core: number, domain: number, now: number, goalsz: number, out: Uint32Array): number;
  visitDefault(core: number, binding: number, reserve: number): number;
  nextSlice(core: number, now: number, maxDomains: number, fresh: boolean, out: Uint32Array): number;
  unvisitSlice(core: number, k: number): number;
  reserveFor(core: number, domain: number, binding: number): number;
  releaseConnection(core: number, connectionId: number): void;
  drainGrants(core: number, out: Float64Array, offset?: number): number;
  /** out[d] = connections of domain d; returns how many domains it wrote. */
  connectionsByDomain(core: number, out: Float64Array): number;
  ageShape(core: number, now: number, expirationMs: Float64Array, edges: Float64Array, out: Float64Array): number;
  drainExpired(core: number, out: Float64Array, domains?: Float64Array): number;
  pending(core: number, out: Float64Array): void;
  domainInfo(core: number, domain: number, out: Float64Array): void;
  groupDomainCounts(core: number, domain: number, out: Float64Array): void;
  groupCount(core: number, group: number): number;
  setMessageThrottle(core: number, domain: number, binding: number, throttle: number): void;
  /** The slots of a fleet-wide cap this node holds (domain -1: server-wide; binding -1: the
   *  domain; held -1: not cluster-capped). */
  setClusterHeld(core: number, domain: number, binding: number, held: number): void;
  /** A pair's buckets of fleet-wide throttles (connections, messages; -1: none). */
  setClusterThrottles(core: number, domain: number, binding: number, connections: number, messages: number): void;
  /** The grants a bucket may make in its window (0 to its count): a fleet-wide throttle's slots held. */
  setThrottleAllowance(core: number, throttle: number, allowance: number): void;
  messageNextAllowedAt(core: number, domain: number, binding: number, now: number): number;
  migrateConnection(core: number, connectionId: number, domain: number): boolean;
  // The Host scope (decision 47): host records, a domain's MX hosts, a lease's host charge.
  addHost(core: number, maxConnections: number, bindingMax: Float64Array): number;
  setDomainHosts(core: number, domain: number, hosts: Uint32Array): void;
  claimHost(core: number, connectionId: number, host: number): boolean;
  connectionHost(core: number, connectionId: number): number;
  hostCount(core: number, host: number): number;
  nextDueAt(core: number): number;
  flushDomain(core: number, domain: number, now: number): number;
  failDomain(core: number, domain: number, out: Float64Array): number;
  retryNow(core: number, id: number, now: number): boolean;
  delayedByBinding(core: number, domain: number, out: Float64Array): void;
  checkInvariants(core: number): boolean;
  bytesReserved(core: number): number;
  goalCurve(maxConnections: number, queued: number, aggressiveness: number): number;
  counterNames(): string[];
  noop(): void;
  /** The core's limits that JavaScript applies before a call (frozen). */
  readonly limits: {
    readonly maxDomainHosts: number;
    readonly flightSetBits: number;
    readonly flightWays: number;
    readonly flightStride: number;
  };
  /** The class of the addon's coded errors in this environment: `new errorClass(code, message)`. */
  setErrorClass(errorClass: new (code: string, message: string) => Error): void;
}

/** Where a message is, as `locate` reports it. */
// biome-ignore lint/suspicious/noConstEnum: tsc inlines Place.* as literals in the hot locate() checks
export const enum Place {
  None = 0,
  Active = 1,
  Delayed = 2,
  InFlight = 3,
}

function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`mail-queue-core: package.json not found above ${dir}`);
    dir = up;
  }
  return dir;
}

function load(): NativeBinding {
  const require = createRequire(import.meta.url);
  const root = packageRoot();
  const candidates = [
    process.env.MAIL_QUEUE_CORE_BINDING,
    path.join(root, 'build', 'Release', 'mail_queue_core.node'),
    path.join(root, 'build', 'Debug', 'mail_queue_core.node'),
    // What the package ships (scripts/prebuild.mjs): used when nothing was built here.
    path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'mail-queue-core.node'),
  ].filter((p): p is string => typeof p === 'string' && p.length > 0);
  const tried: string[] = [];
  for (const file of candidates) {
    if (!fs.existsSync(file)) {
      tried.push(`${file} (missing)`);
      continue;
    }
    return require(file) as NativeBinding;
  }
  throw new Error(
    'mail-queue-core: the native addon is not built. Tried:\n  ' +
      tried.join('\n  ') +
      '\nRun `npm run build:native` (needs python3, make and a C++17 compiler): no prebuilt addon ships for this platform.',
  );
}

export const native: NativeBinding = load();
// Once per environment (each worker thread loads its own copy of this module and of the addon):
// the addon's coded errors are MailQueueErrors from here on.
native.setErrorClass(MailQueueError);
