// Garbage into the raw addon functions (lib/native.ts's `native`): every entry point that takes
// arguments, with made-up, dead and malformed handles, out-of-range indices and values, wrong and
// detached typed arrays. Each call must throw exactly the class it names (TypeError, RangeError or
// MailQueueError with a code: lib/native.ts hands the class to the addon), never crash, and change
// nothing (the counters, the domain, every place of every id, the queues, the native invariant
// check), and Object.prototype must be untouched.
// The public API's bad-input tables are in test/core/core-api.bad-input.test.ts and
// test/pass/*.bad-input.test.ts.
import { spawnSync } from 'node:child_process';

import { describe, expect, test } from 'vitest';

import { MailQueueCore, MailQueueError } from '../../lib/index.js';
import { native } from '../../lib/native.js';
import { any, assertNoPollution, type ErrorClass, MAX_SAFE, protoSnapshot, T0, TWO53 } from '../support/bad_input.js';
import { ADDON } from '../support/compiled_lib.js';

type Fn = (...args: unknown[]) => unknown;
const raw = native as unknown as Record<string, Fn>;

interface RawCtx {
  h: number;
  d: number;
  counters: Float64Array;
  /** a handle that was valid and has been destroyed */
  dead: number;
  conn: number;
}

function detached(
  kind: 'f64' | 'u8' | 'u32' | 'i32' = 'f64',
  n = 8,
): Float64Array | Uint8Array | Uint32Array | Int32Array {
  const a =
    kind === 'f64'
      ? new Float64Array(n)
      : kind === 'u8'
        ? new Uint8Array(n)
        : kind === 'u32'
          ? new Uint32Array(n)
          : new Int32Array(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  expect(a.buffer.byteLength).toBe(0);
  return a;
}

function makeRaw(): RawCtx {
  const h = native.createCore(
    Float64Array.of(2, 1, 100, 10),
    Int32Array.of(0, -1),
    Float64Array.of(Infinity, 50),
    Float64Array.of(Infinity),
  );
  const counters = new Float64Array(native.countersBuffer(h));
  const d = native.addDomain(h, Float64Array.of(32, 0.3, -1, 0, 32, 0.3, -1, 0), Infinity, Float64Array.of(Infinity));
  native.enqueueBatch(h, d, 0, Float64Array.of(1, 2, 3), null, T0, Infinity, T0);
  native.enqueue(h, d, 1, 4, 1, T0, Infinity, T0);
  native.enqueue(h, d, 0, 5, 0, T0 + 1e6, Infinity, T0);
  expect(native.take(h, d, 0, T0, new Float64Array(1))).toBe(1);
  expect(native.openConnections(h, d, 1, 1, 0, T0)).toBe(1);
  const grants = new Float64Array(30);
  expect(native.drainGrants(h, grants)).toBe(1);
  const dead = native.createCore(
    Float64Array.of(1, 0, 10, 0),
    Int32Array.of(-1),
    Float64Array.of(Infinity),
    new Float64Array(0),
  );
  expect(native.destroyCore(dead)).toBe(true);
  return { h, d, counters, dead, conn: grants[0] };
}

function rawState(r: RawCtx): unknown {
  const where = new Float64Array(7);
  const info = new Float64Array(9);
  native.domainInfo(r.h, r.d, info);
  const q0 = new Float64Array(16);
  const q1 = new Float64Array(16);
  const dl = new Float64Array(16);
  return {
    counters: Array.from(r.counters),
    info: Array.from(info),
    places: [0, 1, 2, 3, 4, 5, 6].map((id) => [native.locate(r.h, id, where), ...where]),
    active0: Array.from(q0.subarray(0, native.peekActive(r.h, r.d, 0, 0, q0))),
    active1: Array.from(q1.subarray(0, native.peekActive(r.h, r.d, 1, 0, q1))),
    delayed: Array.from(dl.subarray(0, native.peekDelayed(r.h, r.d, 0, dl))),
    invariants: native.checkInvariants(r.h),
  };
}

interface RawRow {
  what: string;
  run: (r: RawCtx) => unknown;
  throws: ErrorClass;
  code?: string;
  message?: RegExp;
}

const cc =
  (...a: unknown[]) =>
  () =>
    raw.createCore(...a);
const F = Float64Array;
const goodCfg = () => F.of(1, 0, 10, 0);

const rawRows: RawRow[] = [
  // createCore
  { what: 'createCore()', run: cc(), throws: TypeError, message: /^config must be a Float64Array/ },
  {
    what: 'createCore: config a Float32Array',
    run: cc(Float32Array.of(1, 0, 10, 0), Int32Array.of(-1), F.of(Infinity), new F(0), new F(16)),
    throws: TypeError,
    message: /^config/,
  },
  {
    what: 'createCore: config of 3 entries',
    run: cc(F.of(1, 0, 10), Int32Array.of(-1), F.of(Infinity), new F(0), new F(16)),
    throws: RangeError,
    message: /^config must have 4 entries/,
  },
  {
    what: 'createCore: 0 bindings',
    run: cc(F.of(0, 0, 10, 0), new Int32Array(0), new F(0), new F(0), new F(16)),
    throws: RangeError,
    message: /^bindings/,
  },
  {
    what: 'createCore: NaN bindings',
    run: cc(F.of(NaN, 0, 10, 0), Int32Array.of(-1), F.of(Infinity), new F(0), new F(16)),
    throws: RangeError,
    message: /^bindings/,
  },
  {
    what: 'createCore: 1e6 bindings',
    run: cc(F.of(1e6, 0, 10, 0), Int32Array.of(-1), F.of(Infinity), new F(0), new F(16)),
    throws: RangeError,
    message: /^bindings/,
  },
  {
    what: 'createCore: serverMax -1',
    run: cc(F.of(1, 0, -1, 0), Int32Array.of(-1), F.of(Infinity), new F(0), new F(16)),
    throws: RangeError,
    message: /^serverMax/,
  },
  {
    what: 'createCore: groupOfBinding a Uint32Array',
    run: cc(goodCfg(), Uint32Array.of(0), F.of(Infinity), new F(0), new F(16)),
    throws: TypeError,
    message: /^groupOfBinding must be a Int32Array/,
  },
  {
    what: 'createCore: groupOfBinding names a missing group',
    run: cc(goodCfg(), Int32Array.of(5), F.of(Infinity), new F(0), new F(16)),
    throws: RangeError,
    message: /^groupOfBinding/,
  },
  {
    what: 'createCore: groupOfBinding of the wrong length',
    run: cc(goodCfg(), Int32Array.of(-1, -1), F.of(Infinity), new F(0), new F(16)),
    throws: RangeError,
    message: /groupOfBinding/,
  },
  {
    what: 'createCore: bindingMax -1',
    run: cc(goodCfg(), Int32Array.of(-1), F.of(-1), new F(0), new F(16)),
    throws: RangeError,
    message: /^bindingMax/,
  },
  {
    what: 'createCore: bindingMax NaN',
    run: cc(goodCfg(), Int32Array.of(-1), F.of(NaN), new F(0), new F(16)),
    throws: RangeError,
    message: /^bindingMax/,
  },
  {
    what: 'createCore: config detached',
    run: () => raw.createCore(detached('f64', 4), Int32Array.of(-1), F.of(Infinity), new F(0), new F(16)),
    throws: TypeError,
    message: /^config is detached/,
  },
  {
    what: 'countersBuffer on a destroyed core',
    run: (r) => raw.countersBuffer(r.dead),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'countersBuffer on a made-up handle',
    run: () => raw.countersBuffer(12345),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'countersBuffer on handle a string',
    run: () => raw.countersBuffer('0'),
    throws: TypeError,
    message: /^core handle must be a number/,
  },
  {
    what: 'countersBuffer with no handle',
    run: () => raw.countersBuffer(),
    throws: TypeError,
    message: /^core handle must be a number/,
  },
  {
    what: 'flightBuffer on a destroyed core',
    run: (r) => raw.flightBuffer(r.dead),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'trackFlight on a destroyed core',
    run: (r) => raw.trackFlight(r.dead),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'trackFlight with no handle',
    run: () => raw.trackFlight(),
    throws: TypeError,
    message: /^core handle must be a number/,
  },
  {
    what: 'flightBuffer on handle a string',
    run: () => raw.flightBuffer('0'),
    throws: TypeError,
    message: /^core handle must be a number/,
  },
  // made-up, dead and malformed handles
  {
    what: 'enqueue on a made-up handle 12345',
    run: () => raw.enqueue(12345, 0, 0, 100, 0, T0, Infinity, T0),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'enqueue on handle -1',
    run: () => raw.enqueue(-1, 0, 0, 100, 0, T0, Infinity, T0),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'enqueue on handle NaN',
    run: () => raw.enqueue(NaN, 0, 0, 100, 0, T0, Infinity, T0),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'enqueue on handle Infinity',
    run: () => raw.enqueue(Infinity, 0, 0, 100, 0, T0, Infinity, T0),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'enqueue on handle 2^53',
    run: () => raw.enqueue(TWO53, 0, 0, 100, 0, T0, Infinity, T0),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'enqueue on a fractional handle',
    run: (r) => raw.enqueue(r.h + 0.5, 0, 0, 100, 0, T0, Infinity, T0),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'enqueue on a destroyed core',
    run: (r) => raw.enqueue(r.dead, 0, 0, 100, 0, T0, Infinity, T0),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'enqueue on the next generation of a live slot',
    run: (r) => raw.enqueue(r.h + 1048576, 0, 0, 100, 0, T0, Infinity, T0),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'enqueue on handle a string',
    run: () => raw.enqueue('0', 0, 0, 100, 0, T0, Infinity, T0),
    throws: TypeError,
    message: /^core handle must be a number/,
  },
  {
    what: 'enqueue on handle an object',
    run: () => raw.enqueue({ valueOf: () => 0 }, 0, 0, 100, 0, T0, Infinity, T0),
    throws: TypeError,
    message: /^core handle/,
  },
  {
    what: 'checkInvariants on handle a BigInt',
    run: () => raw.checkInvariants(0n),
    throws: TypeError,
    message: /^core handle/,
  },
  {
    what: 'bytesReserved on a made-up handle',
    run: () => raw.bytesReserved(777),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'destroyCore("x")',
    run: () => raw.destroyCore('x'),
    throws: TypeError,
    message: /^core handle must be a number/,
  },
  {
    what: 'destroyCore(NaN)',
    run: () => raw.destroyCore(NaN),
    throws: RangeError,
    message: /^core handle must not be NaN/,
  },
  // out-of-range indices and values
  {
    what: 'enqueue: domain 999',
    run: (r) => raw.enqueue(r.h, 999, 0, 100, 0, T0, Infinity, T0),
    throws: RangeError,
    message: /^domain: unknown domain index 999/,
  },
  {
    what: 'enqueue: domain -1',
    run: (r) => raw.enqueue(r.h, -1, 0, 100, 0, T0, Infinity, T0),
    throws: RangeError,
    message: /^domain must be an integer/,
  },
  {
    what: 'enqueue: domain 2^32',
    run: (r) => raw.enqueue(r.h, 2 ** 32, 0, 100, 0, T0, Infinity, T0),
    throws: RangeError,
    message: /^domain must be an integer/,
  },
  {
    what: 'enqueue: binding 2',
    run: (r) => raw.enqueue(r.h, r.d, 2, 100, 0, T0, Infinity, T0),
    throws: RangeError,
    message: /^binding: unknown binding slot 2/,
  },
  {
    what: 'enqueue: binding 0.5',
    run: (r) => raw.enqueue(r.h, r.d, 0.5, 100, 0, T0, Infinity, T0),
    throws: RangeError,
    message: /^binding must be an integer/,
  },
  {
    what: 'enqueue: binding 65536',
    run: (r) => raw.enqueue(r.h, r.d, 65536, 100, 0, T0, Infinity, T0),
    throws: RangeError,
    message: /^binding must be an integer/,
  },
  {
    what: 'enqueue: id 2^53',
    run: (r) => raw.enqueue(r.h, r.d, 0, TWO53, 0, T0, Infinity, T0),
    throws: RangeError,
    message: /^id must be an integer/,
  },
  {
    what: 'enqueue: id -1',
    run: (r) => raw.enqueue(r.h, r.d, 0, -1, 0, T0, Infinity, T0),
    throws: RangeError,
    message: /^id must be an integer/,
  },
  {
    what: 'enqueue: priority 2',
    run: (r) => raw.enqueue(r.h, r.d, 0, 100, 2, T0, Infinity, T0),
    throws: RangeError,
    message: /^priority/,
  },
  {
    what: 'enqueue: priority -1 (no Uint32 wrap)',
    run: (r) => raw.enqueue(r.h, r.d, 0, 100, -1, T0, Infinity, T0),
    throws: RangeError,
    message: /^priority/,
  },
  {
    what: 'enqueue: nextAttempt Infinity',
    run: (r) => raw.enqueue(r.h, r.d, 0, 100, 0, Infinity, Infinity, T0),
    throws: RangeError,
    message: /^nextAttempt must be finite/,
  },
  {
    what: 'enqueue: nextAttempt past the range of a Date',
    run: (r) => raw.enqueue(r.h, r.d, 0, 100, 0, 9e15, Infinity, T0),
    throws: RangeError,
    message: /^nextAttempt must be finite and within ±8\.64e15 ms/,
  },
  {
    what: 'enqueue: now past the range of a Date',
    run: (r) => raw.enqueue(r.h, r.d, 0, 100, 0, T0, Infinity, -9e15),
    throws: RangeError,
    message: /^now must be finite and within/,
  },
  {
    what: 'enqueue: expiresAt NaN',
    run: (r) => raw.enqueue(r.h, r.d, 0, 100, 0, T0, NaN, T0),
    throws: RangeError,
    message: /^expiresAt must not be NaN/,
  },
  {
    what: 'enqueue: now a string',
    run: (r) => raw.enqueue(r.h, r.d, 0, 100, 0, T0, Infinity, 'now'),
    throws: TypeError,
    message: /^now must be a number/,
  },
  {
    what: 'enqueue: missing arguments',
    run: (r) => raw.enqueue(r.h),
    throws: TypeError,
    message: /^domain must be a number/,
  },
  {
    what: 'enqueue: duplicate id',
    run: (r) => raw.enqueue(r.h, r.d, 1, 1, 0, T0, Infinity, T0),
    throws: MailQueueError,
    code: 'ERR_DUPLICATE_ID',
  },
  {
    what: 'enqueueBatch: ids a Float32Array',
    run: (r) => raw.enqueueBatch(r.h, r.d, 0, Float32Array.of(100), null, T0, Infinity, T0),
    throws: TypeError,
    message: /^ids must be a Float64Array/,
  },
  {
    what: 'enqueueBatch: priorities an Int8Array',
    run: (r) => raw.enqueueBatch(r.h, r.d, 0, F.of(100), Int8Array.of(0), T0, Infinity, T0),
    throws: TypeError,
    message: /^priorities must be a Uint8Array/,
  },
  {
    what: 'enqueueBatch: priorities of the wrong length',
    run: (r) => raw.enqueueBatch(r.h, r.d, 0, F.of(100, 101), Uint8Array.of(0), T0, Infinity, T0),
    throws: RangeError,
    message: /^priorities must have as many entries as ids/,
  },
  {
    what: 'enqueueBatch: priorities detached',
    run: (r) => raw.enqueueBatch(r.h, r.d, 0, F.of(100), detached('u8', 1), T0, Infinity, T0),
    throws: TypeError,
    message: /^priorities is detached/,
  },
  {
    what: 'enqueueBatch: NaN id',
    run: (r) => raw.enqueueBatch(r.h, r.d, 0, F.of(100, NaN), null, T0, Infinity, T0),
    throws: RangeError,
    message: /ids\[1\]/,
  },
  {
    what: 'enqueueBatch: duplicate inside the batch',
    run: (r) => raw.enqueueBatch(r.h, r.d, 0, F.of(100, 100), null, T0, Infinity, T0),
    throws: MailQueueError,
    code: 'ERR_DUPLICATE_ID',
    message: /^ids\[1\]/,
  },
  {
    what: 'enqueueBatch: duplicate against the queue',
    run: (r) => raw.enqueueBatch(r.h, r.d, 1, F.of(100, 3), null, T0, Infinity, T0),
    throws: MailQueueError,
    code: 'ERR_DUPLICATE_ID',
    message: /^ids\[1\]/,
  },
  {
    what: 'enqueueArrivals: entries a Float32Array',
    run: (r) => raw.enqueueArrivals(r.h, new Float32Array(5), 1, T0),
    throws: TypeError,
    message: /^entries must be a Float64Array/,
  },
  {
    what: 'enqueueArrivals: n past the entries',
    run: (r) => raw.enqueueArrivals(r.h, F.of(r.d, 0, 100, T0, Infinity), 2, T0),
    throws: RangeError,
    message: /^n must be an integer from 0 to 1/,
  },
  {
    what: 'enqueueArrivals: now NaN',
    run: (r) => raw.enqueueArrivals(r.h, F.of(r.d, 0, 100, T0, Infinity), 1, NaN),
    throws: RangeError,
    message: /^now/,
  },
  {
    what: 'enqueueArrivals: unknown domain',
    run: (r) => raw.enqueueArrivals(r.h, F.of(r.d, 0, 100, T0, Infinity, 99, 0, 101, T0, Infinity), 2, T0),
    throws: RangeError,
    message: /^entries\[5\]: unknown domain/,
  },
  {
    what: 'enqueueArrivals: binding 99',
    run: (r) => raw.enqueueArrivals(r.h, F.of(r.d, 99, 100, T0, Infinity), 1, T0),
    throws: RangeError,
    message: /^entries\[0\]: unknown binding/,
  },
  {
    what: 'enqueueArrivals: priority 2',
    run: (r) => raw.enqueueArrivals(r.h, F.of(r.d, 2 * 65536, 100, T0, Infinity), 1, T0),
    throws: RangeError,
    message: /^entries\[0\]: unknown binding/,
  },
  {
    what: 'enqueueArrivals: id NaN',
    run: (r) => raw.enqueueArrivals(r.h, F.of(r.d, 0, NaN, T0, Infinity), 1, T0),
    throws: RangeError,
    message: /^entries\[0\]: an id, time or expiry out of range/,
  },
  {
    what: 'enqueueArrivals: duplicate against the queue',
    run: (r) => raw.enqueueArrivals(r.h, F.of(r.d, 0, 100, T0, Infinity, r.d, 1, 3, T0, Infinity), 2, T0),
    throws: MailQueueError,
    code: 'ERR_DUPLICATE_ID',
    message: /^entries\[5\]/,
  },
  {
    what: 'enqueueArrivals: duplicate inside the entries',
    run: (r) => raw.enqueueArrivals(r.h, F.of(r.d, 0, 100, T0, Infinity, r.d, 1, 100, T0, Infinity), 2, T0),
    throws: MailQueueError,
    code: 'ERR_DUPLICATE_ID',
    message: /^entries\[5\]/,
  },
  {
    what: 'applyOutcomes: entries a Float32Array',
    run: (r) => raw.applyOutcomes(r.h, new Float32Array(3), 1, T0),
    throws: TypeError,
    message: /^entries must be a Float64Array/,
  },
  {
    what: 'applyOutcomes: n past the entries',
    run: (r) => raw.applyOutcomes(r.h, F.of(0, 1, NaN), 2, T0),
    throws: RangeError,
    message: /^n must be an integer from 0 to 1/,
  },
  {
    what: 'applyOutcomes: now NaN',
    run: (r) => raw.applyOutcomes(r.h, F.of(0, 1, NaN), 1, NaN),
    throws: RangeError,
    message: /^now/,
  },
  {
    what: 'applyOutcomes: n a string',
    run: (r) => raw.applyOutcomes(r.h, F.of(0, 1, NaN), '1', T0),
    throws: TypeError,
    message: /^n must be a number/,
  },
  { what: 'cancel: id NaN', run: (r) => raw.cancel(r.h, NaN), throws: RangeError, message: /^id must not be NaN/ },
  {
    what: 'locate: out a Float32Array',
    run: (r) => raw.locate(r.h, 1, new Float32Array(7)),
    throws: TypeError,
    message: /^out must be a Float64Array/,
  },
  {
    what: 'locate: out of 3 entries',
    run: (r) => raw.locate(r.h, 1, new F(3)),
    throws: RangeError,
    message: /^out must have 7 entries/,
  },
  {
    what: 'locate: out detached',
    run: (r) => raw.locate(r.h, 1, detached('f64', 7)),
    throws: TypeError,
    message: /^out is detached/,
  },
  { what: 'activeSize: binding 99', run: (r) => raw.activeSize(r.h, r.d, 99), throws: RangeError, message: /^binding/ },
  { what: 'delayedSize: domain 1.5', run: (r) => raw.delayedSize(r.h, 1.5), throws: RangeError, message: /^domain/ },
  {
    what: 'peekActive: offset 2^53',
    run: (r) => raw.peekActive(r.h, r.d, 0, TWO53, new F(4)),
    throws: RangeError,
    message: /^offset must be an integer/,
  },
  {
    what: 'peekActive: offset -1',
    run: (r) => raw.peekActive(r.h, r.d, 0, -1, new F(4)),
    throws: RangeError,
    message: /^offset/,
  },
  {
    what: 'peekActive: out a Uint32Array',
    run: (r) => raw.peekActive(r.h, r.d, 0, 0, new Uint32Array(4)),
    throws: TypeError,
    message: /^out must be a Float64Array/,
  },
  {
    what: 'peekDelayed: offset NaN',
    run: (r) => raw.peekDelayed(r.h, r.d, NaN, new F(4)),
    throws: RangeError,
    message: /^offset/,
  },
  {
    what: 'removeActive: id Infinity',
    run: (r) => raw.removeActive(r.h, r.d, 0, Infinity),
    throws: RangeError,
    message: /^id must be finite/,
  },
  {
    what: 'take: out a Uint8Array',
    run: (r) => raw.take(r.h, r.d, 0, T0, new Uint8Array(8)),
    throws: TypeError,
    message: /^out must be a Float64Array/,
  },
  { what: 'take: now NaN', run: (r) => raw.take(r.h, r.d, 0, NaN, new F(1)), throws: RangeError, message: /^now/ },
  { what: 'settle: unknown id', run: (r) => raw.settle(r.h, 99_999), throws: MailQueueError, code: 'ERR_UNKNOWN_ID' },
  {
    what: 'defer: nextAttempt NaN',
    run: (r) => raw.defer(r.h, 1, NaN, T0),
    throws: RangeError,
    message: /^nextAttempt/,
  },
  { what: 'untake: id a string', run: (r) => raw.untake(r.h, '1'), throws: TypeError, message: /^id must be a number/ },
  {
    what: 'setAttempts: attempts 65536',
    run: (r) => raw.setAttempts(r.h, 1, 65536),
    throws: RangeError,
    message: /^attempts must be an integer from 0 to 65535/,
  },
  {
    what: 'setAttempts: attempts -1',
    run: (r) => raw.setAttempts(r.h, 1, -1),
    throws: RangeError,
    message: /^attempts/,
  },
  {
    what: 'setAttempts: attempts a string',
    run: (r) => raw.setAttempts(r.h, 1, '2'),
    throws: TypeError,
    message: /^attempts must be a number/,
  },
  {
    what: 'setAttempts: unknown id',
    run: (r) => raw.setAttempts(r.h, 99_999, 1),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_ID',
  },
  {
    what: 'forgetDomain: domain index out of range',
    run: (r) => raw.forgetDomain(r.h, 99),
    throws: RangeError,
    message: /^domain: unknown domain index 99/,
  },
  {
    what: 'forgetDomain: domain a string',
    run: (r) => raw.forgetDomain(r.h, '0'),
    throws: TypeError,
    message: /^domain must be a number/,
  },
  {
    what: 'drainIdle: out a Float64Array',
    run: (r) => raw.drainIdle(r.h, new F(4)),
    throws: TypeError,
    message: /^out must be a Uint32Array/,
  },
  {
    what: 'dueDomains: out an Int32Array',
    run: (r) => raw.dueDomains(r.h, T0, new Int32Array(4)),
    throws: TypeError,
    message: /^out must be a Uint32Array/,
  },
  {
    what: 'dueDomains: out a Float64Array',
    run: (r) => raw.dueDomains(r.h, T0, new F(4)),
    throws: TypeError,
    message: /^out must be a Uint32Array/,
  },
  {
    what: 'computeGoal: goalsz 2^31',
    run: (r) => raw.computeGoal(r.h, r.d, 0, 2 ** 31),
    throws: RangeError,
    message: /^goalsz/,
  },
  {
    what: 'openConnections: goal 2^60',
    run: (r) => raw.openConnections(r.h, r.d, 0, 2 ** 60, 0, T0),
    throws: RangeError,
    message: /^goal must be an integer/,
  },
  {
    what: 'openConnections: reserve -1 (no Uint32 wrap)',
    run: (r) => raw.openConnections(r.h, r.d, 0, 1, -1, T0),
    throws: RangeError,
    message: /^reserve/,
  },
  {
    what: 'openConnections: reserve 2^32',
    run: (r) => raw.openConnections(r.h, r.d, 0, 1, 2 ** 32, T0),
    throws: RangeError,
    message: /^reserve/,
  },
  {
    what: 'defaultMaintain: reserve NaN',
    run: (r) => raw.defaultMaintain(r.h, r.d, 0, T0, 0, NaN),
    throws: RangeError,
    message: /^reserve/,
  },
  {
    what: 'maintainDomain: reserve -2',
    run: (r) => raw.maintainDomain(r.h, r.d, T0, 0, -2),
    throws: RangeError,
    message: /^reserve/,
  },
  {
    what: 'maintainSlice: maxDomains 0',
    run: (r) => raw.maintainSlice(r.h, T0, 0, false, Infinity, new Float64Array(2)),
    throws: RangeError,
    message: /^maxDomains/,
  },
  {
    what: 'maintainSlice: maxDomains 1.5',
    run: (r) => raw.maintainSlice(r.h, T0, 1.5, false, Infinity, new Float64Array(2)),
    throws: RangeError,
    message: /^maxDomains/,
  },
  {
    what: 'maintainSlice: fresh a number',
    run: (r) => raw.maintainSlice(r.h, T0, 10, any(1), Infinity, new Float64Array(2)),
    throws: TypeError,
    message: /^fresh must be a boolean/,
  },
  {
    what: 'maintainSlice: out too short',
    run: (r) => raw.maintainSlice(r.h, T0, 10, false, Infinity, new Float64Array(1)),
    throws: RangeError,
    message: /^out must have 2 entries/,
  },
  {
    what: 'maintainSlice: maxGrants 0',
    run: (r) => raw.maintainSlice(r.h, T0, 10, false, 0, new Float64Array(2)),
    throws: RangeError,
    message: /^maxGrants must be a whole number from 1/,
  },
  {
    what: 'maintainSlice: maxGrants 2.5',
    run: (r) => raw.maintainSlice(r.h, T0, 10, false, 2.5, new Float64Array(2)),
    throws: RangeError,
    message: /^maxGrants/,
  },
  {
    what: 'maintainSlice: maxGrants a string',
    run: (r) => raw.maintainSlice(r.h, T0, 10, false, any('9'), new Float64Array(2)),
    throws: TypeError,
    message: /^maxGrants must be a number/,
  },
  {
    what: 'maintainSlice: now NaN',
    run: (r) => raw.maintainSlice(r.h, NaN, 10, false, Infinity, new Float64Array(2)),
    throws: RangeError,
    message: /^now/,
  },
  {
    what: 'unvisitSlice: k -1',
    run: (r) => raw.unvisitSlice(r.h, -1),
    throws: RangeError,
    message: /^k must be an integer/,
  },
  {
    what: 'nextSlice: out too short',
    run: (r) => raw.nextSlice(r.h, T0, 10, false, new Uint32Array(1)),
    throws: RangeError,
    message: /^out must have at least 2 entries/,
  },
  {
    what: 'nextSlice: out a Float64Array',
    run: (r) => raw.nextSlice(r.h, T0, 10, false, any(new Float64Array(4))),
    throws: TypeError,
    message: /^out must be a Uint32Array/,
  },
  {
    what: 'nextSlice: maxDomains -1',
    run: (r) => raw.nextSlice(r.h, T0, -1, false, new Uint32Array(4)),
    throws: RangeError,
    message: /^maxDomains/,
  },
  {
    what: 'prepareVisit: domain 999',
    run: (r) => raw.prepareVisit(r.h, 999, T0, 0, new Uint32Array(6)),
    throws: RangeError,
    message: /^domain: unknown domain index/,
  },
  {
    what: 'prepareVisit: now NaN',
    run: (r) => raw.prepareVisit(r.h, r.d, NaN, 0, new Uint32Array(6)),
    throws: RangeError,
    message: /^now/,
  },
  {
    what: 'prepareVisit: goalsz 2^31',
    run: (r) => raw.prepareVisit(r.h, r.d, T0, 2 ** 31, new Uint32Array(6)),
    throws: RangeError,
    message: /^goalsz/,
  },
  {
    what: 'prepareVisit: out too short',
    run: (r) => raw.prepareVisit(r.h, r.d, T0, 0, new Uint32Array(5)),
    throws: RangeError,
    message: /^out must have three entries per binding/,
  },
  {
    what: 'visitDefault: before any prepareVisit',
    run: (r) => raw.visitDefault(r.h, 0, 0),
    throws: MailQueueError,
    code: 'ERR_NO_VISIT',
  },
  {
    what: 'visitDefault: binding 2 of 2',
    run: (r) => raw.visitDefault(r.h, 2, 0),
    throws: RangeError,
    message: /^binding: unknown binding slot/,
  },
  {
    what: 'visitDefault: binding -1',
    run: (r) => raw.visitDefault(r.h, -1, 0),
    throws: RangeError,
    message: /^binding/,
  },
  {
    what: 'visitDefault: reserve 2^32',
    run: (r) => raw.visitDefault(r.h, 0, 2 ** 32),
    throws: RangeError,
    message: /^reserve/,
  },
  {
    what: 'visitDefault: reserve a string',
    run: (r) => raw.visitDefault(r.h, 0, any('1')),
    throws: TypeError,
    message: /^reserve/,
  },
  {
    what: 'visitDefault on a destroyed core',
    run: (r) => raw.visitDefault(r.dead, 0, 0),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'prepareVisit: out a Float64Array',
    run: (r) => raw.prepareVisit(r.h, r.d, T0, 0, any(new Float64Array(6))),
    throws: TypeError,
    message: /^out must be a Uint32Array/,
  },
  { what: 'reserveFor: binding 99', run: (r) => raw.reserveFor(r.h, r.d, 99), throws: RangeError, message: /^binding/ },
  {
    what: 'releaseConnection: id 0',
    run: (r) => raw.releaseConnection(r.h, 0),
    throws: RangeError,
    message: /^connectionId/,
  },
  {
    what: 'releaseConnection: unknown id',
    run: (r) => raw.releaseConnection(r.h, r.conn + 1000),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_CONNECTION',
  },
  {
    what: 'connectionsByDomain: out a plain array',
    run: (r) => raw.connectionsByDomain(r.h, any([0, 0])),
    throws: TypeError,
    message: /^out must be a Float64Array/,
  },
  {
    what: 'connectionsByDomain: out missing',
    run: (r) => raw.connectionsByDomain(r.h),
    throws: TypeError,
    message: /^out must be a Float64Array/,
  },
  {
    what: 'ageShape: now not a time',
    run: (r) => raw.ageShape(r.h, Number.NaN, new Float64Array(1e5), new Float64Array(0), new Float64Array(1e5)),
    throws: RangeError,
    message: /^now/,
  },
  {
    what: 'ageShape: expirationMs a plain array',
    run: (r) => raw.ageShape(r.h, 1000, any([0]), new Float64Array(0), new Float64Array(1e5)),
    throws: TypeError,
    message: /^expirationMs must be a Float64Array/,
  },
  {
    what: 'ageShape: edges descending',
    run: (r) => raw.ageShape(r.h, 1000, new Float64Array(1e5), Float64Array.of(5, 1), new Float64Array(1e5)),
    throws: RangeError,
    message: /^ageShape \(edges ascending/,
  },
  {
    what: 'ageShape: out too short',
    run: (r) => raw.ageShape(r.h, 1000, new Float64Array(1e5), Float64Array.of(5), new Float64Array(0)),
    throws: RangeError,
    message: /^ageShape \(edges ascending/,
  },
  {
    what: 'ageShape: expirationMs too short',
    run: (r) => raw.ageShape(r.h, 1000, new Float64Array(0), Float64Array.of(5), new Float64Array(1e5)),
    throws: RangeError,
    message: /^ageShape \(edges ascending/,
  },
  {
    what: 'drainGrants: offset past out',
    run: (r) => raw.drainGrants(r.h, new Float64Array(6), 3),
    throws: RangeError,
    message: /^offset/,
  },
  {
    what: 'drainGrants: offset -1',
    run: (r) => raw.drainGrants(r.h, new Float64Array(6), -1),
    throws: RangeError,
    message: /^offset/,
  },
  {
    what: 'drainGrants: offset fractional',
    run: (r) => raw.drainGrants(r.h, new Float64Array(6), 0.5),
    throws: RangeError,
    message: /^offset/,
  },
  {
    what: 'drainGrants: offset a string',
    run: (r) => raw.drainGrants(r.h, new Float64Array(6), any('1')),
    throws: TypeError,
    message: /^offset/,
  },
  {
    what: 'drainGrants: out a Uint32Array',
    run: (r) => raw.drainGrants(r.h, new Uint32Array(3)),
    throws: TypeError,
    message: /^out must be a Float64Array/,
  },
  {
    what: 'drainExpired: out an object',
    run: (r) => raw.drainExpired(r.h, { length: 8 }),
    throws: TypeError,
    message: /^out must be a Float64Array/,
  },
  {
    what: 'pending: out of 1 entry',
    run: (r) => raw.pending(r.h, new F(1)),
    throws: RangeError,
    message: /^out must have 2 entries/,
  },
  {
    what: 'pending: out detached',
    run: (r) => raw.pending(r.h, detached('f64', 2)),
    throws: TypeError,
    message: /^out is detached/,
  },
  {
    what: 'domainInfo: out too short',
    run: (r) => raw.domainInfo(r.h, r.d, new F(4)),
    throws: RangeError,
    message: /^out is too short/,
  },
  {
    what: 'domainInfo: out detached',
    run: (r) => raw.domainInfo(r.h, r.d, detached('f64', 9)),
    throws: TypeError,
    message: /^out is detached/,
  },
  {
    what: 'groupDomainCounts: out an Int32Array',
    run: (r) => raw.groupDomainCounts(r.h, r.d, new Int32Array(1)),
    throws: TypeError,
    message: /^out must be a Float64Array/,
  },
  {
    what: 'setMessageThrottle: throttle 7 (none made)',
    run: (r) => raw.setMessageThrottle(r.h, r.d, 0, 7),
    throws: RangeError,
    message: /^throttle: unknown throttle/,
  },
  {
    what: 'setMessageThrottle: throttle -2',
    run: (r) => raw.setMessageThrottle(r.h, r.d, 0, -2),
    throws: RangeError,
    message: /^throttle must be an integer/,
  },
  {
    what: 'setMessageThrottle: binding 9',
    run: (r) => raw.setMessageThrottle(r.h, r.d, 9, -1),
    throws: RangeError,
    message: /^binding/,
  },
  {
    what: 'setClusterHeld: domain 999',
    run: (r) => raw.setClusterHeld(r.h, 999, 0, 1),
    throws: RangeError,
    message: /^domain: unknown domain/,
  },
  {
    what: 'setClusterHeld: binding 9',
    run: (r) => raw.setClusterHeld(r.h, r.d, 9, 1),
    throws: RangeError,
    message: /^binding: unknown binding/,
  },
  {
    what: 'setClusterHeld: a binding with domain -1 (server-wide)',
    run: (r) => raw.setClusterHeld(r.h, -1, 0, 1),
    throws: RangeError,
    message: /^binding: must be -1/,
  },
  {
    what: 'setClusterHeld: held -2',
    run: (r) => raw.setClusterHeld(r.h, r.d, 0, -2),
    throws: RangeError,
    message: /^held must be an integer/,
  },
  {
    what: 'setClusterHeld: held 1.5',
    run: (r) => raw.setClusterHeld(r.h, r.d, 0, 1.5),
    throws: RangeError,
    message: /^held must be an integer/,
  },
  {
    what: 'setClusterHeld: domain a string',
    run: (r) => raw.setClusterHeld(r.h, 'x' as unknown as number, 0, 1),
    throws: TypeError,
    message: /^domain/,
  },
  {
    what: 'setClusterThrottles: connections 0 (none made)',
    run: (r) => raw.setClusterThrottles(r.h, r.d, 0, 0, -1),
    throws: RangeError,
    message: /^connections, messages: unknown throttle index/,
  },
  {
    what: 'setClusterThrottles: messages -2',
    run: (r) => raw.setClusterThrottles(r.h, r.d, 0, -1, -2),
    throws: RangeError,
    message: /^messages must be an integer/,
  },
  {
    what: 'setClusterThrottles: domain 999',
    run: (r) => raw.setClusterThrottles(r.h, 999, 0, -1, -1),
    throws: RangeError,
    message: /^domain/,
  },
  {
    what: 'setClusterThrottles: binding 9',
    run: (r) => raw.setClusterThrottles(r.h, r.d, 9, -1, -1),
    throws: RangeError,
    message: /^binding/,
  },
  {
    what: 'setThrottleAllowance: throttle 0 (none made)',
    run: (r) => raw.setThrottleAllowance(r.h, 0, 0),
    throws: RangeError,
    message: /^throttle: unknown throttle index/,
  },
  {
    what: 'setThrottleAllowance: allowance -1',
    run: (r) => raw.setThrottleAllowance(r.h, 0, -1),
    throws: RangeError,
    message: /^allowance must be an integer/,
  },
  {
    what: 'setThrottleAllowance: allowance 1.5',
    run: (r) => raw.setThrottleAllowance(r.h, 0, 1.5),
    throws: RangeError,
    message: /^allowance must be an integer/,
  },
  {
    what: 'messageNextAllowedAt: now NaN',
    run: (r) => raw.messageNextAllowedAt(r.h, r.d, 0, NaN),
    throws: RangeError,
    message: /^now/,
  },
  {
    what: 'messageNextAllowedAt: domain 999',
    run: (r) => raw.messageNextAllowedAt(r.h, 999, 0, T0),
    throws: RangeError,
    message: /^domain/,
  },
  {
    what: 'takeFor: unknown connection',
    run: (r) => raw.takeFor(r.h, 424242, T0, new Float64Array(1)),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_CONNECTION',
    message: /^connectionId 424242/,
  },
  {
    what: 'takeFor: now NaN',
    run: (r) => raw.takeFor(r.h, r.conn, NaN, new Float64Array(1)),
    throws: RangeError,
    message: /^now must not be NaN/,
  },
  {
    what: 'takeFor: now past the time range',
    run: (r) => raw.takeFor(r.h, r.conn, 9e15, new Float64Array(1)),
    throws: RangeError,
    message: /^now/,
  },
  {
    what: 'takeFor: out an Int32Array',
    run: (r) => raw.takeFor(r.h, r.conn, T0, any(new Int32Array(2))),
    throws: TypeError,
    message: /^out must be a Float64Array/,
  },
  {
    what: 'takeFor: on a destroyed core',
    run: (r) => raw.takeFor(r.dead, r.conn, T0, new Float64Array(1)),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'migrateConnection: unknown connection',
    run: (r) => raw.migrateConnection(r.h, 424242, r.d),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_CONNECTION',
    message: /^connectionId 424242/,
  },
  {
    what: 'migrateConnection: connectionId 0.5',
    run: (r) => raw.migrateConnection(r.h, 0.5, r.d),
    throws: RangeError,
    message: /^connectionId must be an integer/,
  },
  {
    what: 'migrateConnection: domain 999',
    run: (r) => raw.migrateConnection(r.h, 1, 999),
    throws: RangeError,
    message: /^domain/,
  },
  {
    what: 'nextDueAt: a made-up handle',
    run: () => raw.nextDueAt(123456789),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
    message: /closed/,
  },
  {
    what: 'flushDomain: now Infinity',
    run: (r) => raw.flushDomain(r.h, r.d, Infinity),
    throws: RangeError,
    message: /^now must be finite/,
  },
  { what: 'flushDomain: domain -1', run: (r) => raw.flushDomain(r.h, -1, T0), throws: RangeError, message: /^domain/ },
  {
    what: 'failDomain: out a Uint32Array',
    run: (r) => raw.failDomain(r.h, r.d, any(new Uint32Array(4))),
    throws: TypeError,
    message: /^out must be a Float64Array/,
  },
  {
    what: 'failDomain: domain 999',
    run: (r) => raw.failDomain(r.h, 999, new Float64Array(4)),
    throws: RangeError,
    message: /^domain/,
  },
  {
    what: 'retryNow: id -1',
    run: (r) => raw.retryNow(r.h, -1, T0),
    throws: RangeError,
    message: /^id must be an integer/,
  },
  {
    what: 'retryNow: now a string',
    run: (r) => raw.retryNow(r.h, 1, any('now')),
    throws: TypeError,
    message: /^now must be a number/,
  },
  {
    what: 'delayedByBinding: out too short',
    run: (r) => raw.delayedByBinding(r.h, r.d, new Float64Array(0)),
    throws: RangeError,
    message: /^out must have one entry per binding/,
  },
  {
    what: 'delayedByBinding: domain 999',
    run: (r) => raw.delayedByBinding(r.h, 999, new Float64Array(4)),
    throws: RangeError,
    message: /^domain/,
  },
  {
    what: 'deferBatch: ids a plain array',
    run: (r) => raw.deferBatch(r.h, any([1, 2]), T0, T0),
    throws: TypeError,
    message: /^ids must be a Float64Array/,
  },
  {
    what: 'deferBatch: nextAttempt NaN',
    run: (r) => raw.deferBatch(r.h, Float64Array.of(1), NaN, T0),
    throws: RangeError,
    message: /^nextAttempt/,
  },
  {
    what: 'deferBatch: now Infinity',
    run: (r) => raw.deferBatch(r.h, Float64Array.of(1), T0, Infinity),
    throws: RangeError,
    message: /^now/,
  },
  {
    what: 'deferBatch: an id never queued',
    run: (r) => raw.deferBatch(r.h, Float64Array.of(424242), T0, T0),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_ID',
    message: /^ids\[0\]/,
  },
  {
    what: 'enqueueBatch: nextAttempt array of another length',
    run: (r) => raw.enqueueBatch(r.h, r.d, 0, Float64Array.of(900, 901), null, Float64Array.of(T0), Infinity, T0),
    throws: RangeError,
    message: /^nextAttempts must have as many entries as ids/,
  },
  {
    what: 'enqueueBatch: nextAttempt a Float32Array',
    run: (r) => raw.enqueueBatch(r.h, r.d, 0, Float64Array.of(900), null, any(Float32Array.of(T0)), Infinity, T0),
    throws: TypeError,
    message: /^nextAttempts must be a Float64Array/,
  },
  {
    what: 'enqueueBatch: nextAttempt[0] NaN',
    run: (r) => raw.enqueueBatch(r.h, r.d, 0, Float64Array.of(900), null, Float64Array.of(NaN), Infinity, T0),
    throws: RangeError,
    message: /^nextAttempts\[0\] must be a finite number/,
  },
  {
    what: 'settleBatch: ids a plain array',
    run: (r) => raw.settleBatch(r.h, any([1, 2])),
    throws: TypeError,
    message: /^ids must be a Float64Array/,
  },
  {
    what: 'settleBatch: an id never queued',
    run: (r) => raw.settleBatch(r.h, Float64Array.of(424242)),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_ID',
    message: /^ids\[0\]/,
  },
  {
    what: 'settleBatch: id fractional',
    run: (r) => raw.settleBatch(r.h, Float64Array.of(1.5)),
    throws: RangeError,
    message: /^ids\[0\] must be a safe integer/,
  },
  {
    what: 'cancelBatch: ids a plain array',
    run: (r) => raw.cancelBatch(r.h, any([2, 3])),
    throws: TypeError,
    message: /^ids must be a Float64Array/,
  },
  {
    what: 'cancelBatch: ids missing',
    run: (r) => raw.cancelBatch(r.h),
    throws: TypeError,
    message: /^ids must be a Float64Array/,
  },
  {
    what: 'cancelBatch: ids a Float32Array',
    run: (r) => raw.cancelBatch(r.h, Float32Array.of(2)),
    throws: TypeError,
    message: /^ids must be a Float64Array/,
  },
  {
    what: 'cancelBatch: cancelled a plain array',
    run: (r) => raw.cancelBatch(r.h, Float64Array.of(2), any([0])),
    throws: TypeError,
    message: /^cancelled must be a Float64Array/,
  },
  {
    what: 'cancelBatch: cancelled shorter than ids',
    run: (r) => raw.cancelBatch(r.h, Float64Array.of(2, 3), new Float64Array(1)),
    throws: RangeError,
    message: /^cancelled must have room for every id of ids/,
  },
  {
    what: 'cancelBatch: ids detached',
    run: (r) => raw.cancelBatch(r.h, detached('f64', 2)),
    throws: TypeError,
    message: /^ids is detached/,
  },
  {
    what: 'cancelBatch on a made-up handle',
    run: () => raw.cancelBatch(12345, F.of(2)),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'cancelBatch on a destroyed core',
    run: (r) => raw.cancelBatch(r.dead, F.of(2)),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'cancelBatch on handle a string',
    run: (r) => raw.cancelBatch(String(r.h), F.of(2)),
    throws: TypeError,
    message: /^core handle must be a number/,
  },
  {
    what: 'cancelBatch: id fractional',
    run: (r) => raw.cancelBatch(r.h, F.of(2, 1.5)),
    throws: RangeError,
    message: /^ids\[1\] must be a safe integer/,
  },
  {
    what: 'cancelBatch: an id in flight',
    run: (r) => raw.cancelBatch(r.h, F.of(2, 1, 5)),
    throws: MailQueueError,
    code: 'ERR_IN_FLIGHT',
    message: /^ids\[1\]/,
  },
  {
    what: 'groupCount: group 5',
    run: (r) => raw.groupCount(r.h, 5),
    throws: RangeError,
    message: /^group: unknown group/,
  },
  {
    what: 'groupCount: group 2^16',
    run: (r) => raw.groupCount(r.h, 2 ** 16),
    throws: RangeError,
    message: /^group must be an integer/,
  },
  {
    what: 'setSuspended: flag 1 (not a boolean)',
    run: (r) => raw.setSuspended(r.h, r.d, 0, 1),
    throws: TypeError,
    message: /^suspended must be a boolean/,
  },
  {
    what: 'addThrottle: count 0',
    run: (r) => raw.addThrottle(r.h, 0, 1000),
    throws: RangeError,
    message: /throttle count/,
  },
  {
    what: 'addThrottle: count 2e6',
    run: (r) => raw.addThrottle(r.h, 2e6, 1000),
    throws: RangeError,
    message: /^count/,
  },
  {
    what: 'addThrottle: windowMs Infinity',
    run: (r) => raw.addThrottle(r.h, 1, Infinity),
    throws: RangeError,
    message: /^windowMs must be finite/,
  },
  {
    what: 'addThrottle: windowMs -1',
    run: (r) => raw.addThrottle(r.h, 1, -1),
    throws: RangeError,
    message: /window must be positive/,
  },
  {
    what: 'addDomain: pairs of the wrong length',
    run: (r) => raw.addDomain(r.h, F.of(32, 0.3, -1, 0), Infinity, F.of(Infinity)),
    throws: RangeError,
    message: /^pairs\/groupScopeMax lengths/,
  },
  {
    what: 'addDomain: pairs a Float32Array',
    run: (r) => raw.addDomain(r.h, new Float32Array(8), Infinity, F.of(Infinity)),
    throws: TypeError,
    message: /^pairs must be a Float64Array/,
  },
  {
    what: 'addDomain: pairs detached',
    run: (r) => raw.addDomain(r.h, detached('f64', 8), Infinity, F.of(Infinity)),
    throws: TypeError,
    message: /^pairs is detached/,
  },
  {
    what: 'addDomain: aggressiveness 2',
    run: (r) => raw.addDomain(r.h, F.of(32, 2, -1, 0, 32, 0.3, -1, 0), Infinity, F.of(Infinity)),
    throws: RangeError,
    message: /^aggressiveness/,
  },
  {
    what: 'addDomain: throttle index 99',
    run: (r) => raw.addDomain(r.h, F.of(32, 0.3, 99, 0, 32, 0.3, -1, 0), Infinity, F.of(Infinity)),
    throws: RangeError,
    message: /^throttle index/,
  },
  {
    what: 'addDomain: maxConnections -1',
    run: (r) => raw.addDomain(r.h, F.of(-1, 0.3, -1, 0, 32, 0.3, -1, 0), Infinity, F.of(Infinity)),
    throws: RangeError,
    message: /^maxConnections/,
  },
  {
    what: 'addDomain: scopeMax NaN',
    run: (r) => raw.addDomain(r.h, F.of(32, 0.3, -1, 0, 32, 0.3, -1, 0), NaN, F.of(Infinity)),
    throws: RangeError,
    message: /^scopeMax/,
  },
  {
    what: 'addDomain: groupScopeMax -1',
    run: (r) => raw.addDomain(r.h, F.of(32, 0.3, -1, 0, 32, 0.3, -1, 0), Infinity, F.of(-1)),
    throws: RangeError,
    message: /^groupScopeMax/,
  },
  // Live reconfiguration (lib/core/reconfigure.ts): limits set in place, refused whole.
  {
    what: 'setDomainLimits: domain 999',
    run: (r) => raw.setDomainLimits(r.h, 999, F.of(1, 0.3, -1, 0, 1, 0.3, -1, 0), 5, F.of(5)),
    throws: RangeError,
    message: /^domain: unknown domain index 999/,
  },
  {
    what: 'setDomainLimits: pairs of the wrong length',
    run: (r) => raw.setDomainLimits(r.h, r.d, F.of(1, 0.3, -1, 0), 5, F.of(5)),
    throws: RangeError,
    message: /^pairs\/groupScopeMax lengths/,
  },
  {
    what: 'setDomainLimits: throttle 3 (none made)',
    run: (r) => raw.setDomainLimits(r.h, r.d, F.of(1, 0.3, -1, 0, 1, 0.3, 3, 0), 5, F.of(5)),
    throws: RangeError,
    message: /^throttle index out of range/,
  },
  {
    what: 'setDomainLimits: aggressiveness 0 in the second pair',
    run: (r) => raw.setDomainLimits(r.h, r.d, F.of(1, 0.3, -1, 0, 1, 0, -1, 0), 5, F.of(5)),
    throws: RangeError,
    message: /^aggressiveness must be in/,
  },
  {
    what: 'setDomainLimits: scopeMax -1',
    run: (r) => raw.setDomainLimits(r.h, r.d, F.of(1, 0.3, -1, 0, 1, 0.3, -1, 0), -1, F.of(5)),
    throws: RangeError,
    message: /^scopeMax out of range/,
  },
  {
    what: 'setDomainLimits: groupScopeMax a Float32Array',
    run: (r) => raw.setDomainLimits(r.h, r.d, F.of(1, 0.3, -1, 0, 1, 0.3, -1, 0), 5, new Float32Array(1)),
    throws: TypeError,
    message: /^groupScopeMax must be a Float64Array/,
  },
  {
    what: 'setServerLimits: limits of 3 entries',
    run: (r) => raw.setServerLimits(r.h, F.of(10, 1, 1), F.of(5, 5), F.of(5)),
    throws: RangeError,
    message: /^limits must have 2 entries/,
  },
  {
    what: 'setServerLimits: bindingMax one short',
    run: (r) => raw.setServerLimits(r.h, F.of(10, 1), F.of(5), F.of(5)),
    throws: RangeError,
    message: /^bindingMax\/groupMax lengths/,
  },
  {
    what: 'setServerLimits: serverMax Infinity',
    run: (r) => raw.setServerLimits(r.h, F.of(Infinity, 1), F.of(5, 5), F.of(5)),
    throws: RangeError,
    message: /^serverMax and serverReserve must be finite/,
  },
  {
    what: 'setServerLimits: groupMax 0.5',
    run: (r) => raw.setServerLimits(r.h, F.of(10, 1), F.of(5, 5), F.of(0.5)),
    throws: RangeError,
    message: /^groupMax out of range/,
  },
  {
    what: 'setThrottleRate: throttle 0 (none made)',
    run: (r) => raw.setThrottleRate(r.h, 0, 1, 1000),
    throws: RangeError,
    message: /^throttle: unknown throttle index/,
  },
  {
    what: 'setThrottleRate: count 0',
    run: (r) => raw.setThrottleRate(r.h, 0, 0, 1000),
    throws: RangeError,
    message: /throttle count and window/,
  },
  {
    what: 'setThrottleRate: windowMs NaN',
    run: (r) => raw.setThrottleRate(r.h, 0, 1, NaN),
    throws: RangeError,
    message: /^windowMs must not be NaN/,
  },
  {
    what: 'leaseExcess: out of 5 entries',
    run: (r) => raw.leaseExcess(r.h, r.conn, new Float64Array(5)),
    throws: RangeError,
    message: /^out must have 6 entries/,
  },
  {
    what: 'leaseExcess: connectionId 0',
    run: (r) => raw.leaseExcess(r.h, 0, new Float64Array(6)),
    throws: RangeError,
    message: /^connectionId must be an integer/,
  },
  {
    what: 'leaseExcess: out detached',
    run: (r) => raw.leaseExcess(r.h, r.conn, detached('f64', 6)),
    throws: TypeError,
    message: /^out is detached/,
  },
  {
    what: 'goalCurve: maxConnections NaN',
    run: () => raw.goalCurve(NaN, 1, 0.3),
    throws: RangeError,
    message: /^maxConnections/,
  },
  {
    what: 'goalCurve: no arguments',
    run: () => raw.goalCurve(),
    throws: TypeError,
    message: /^maxConnections must be a number/,
  },
  // The Host scope (decision 47)
  {
    what: 'addHost: bindingMax of the wrong length',
    run: (r) => raw.addHost(r.h, 3, F.of(1)),
    throws: RangeError,
    message: /^bindingMax length/,
  },
  {
    what: 'addHost: maxConnections -1',
    run: (r) => raw.addHost(r.h, -1, F.of(1, 1)),
    throws: RangeError,
    message: /^maxConnections out of range/,
  },
  {
    what: 'addHost: bindingMax NaN',
    run: (r) => raw.addHost(r.h, 3, F.of(1, NaN)),
    throws: RangeError,
    message: /^bindingMax out of range/,
  },
  {
    what: 'addHost: bindingMax an Int32Array',
    run: (r) => raw.addHost(r.h, 3, Int32Array.of(1, 1)),
    throws: TypeError,
    message: /^bindingMax must be a Float64Array/,
  },
  {
    what: 'setDomainHosts: a host index never added',
    run: (r) => raw.setDomainHosts(r.h, r.d, Uint32Array.of(0)),
    throws: RangeError,
    message: /^hosts: unknown or repeated/,
  },
  {
    what: 'setDomainHosts: hosts a Float64Array',
    run: (r) => raw.setDomainHosts(r.h, r.d, F.of(0)),
    throws: TypeError,
    message: /^hosts must be a Uint32Array/,
  },
  {
    what: 'setDomainHosts: domain 999',
    run: (r) => raw.setDomainHosts(r.h, 999, new Uint32Array(0)),
    throws: RangeError,
    message: /^domain/,
  },
  {
    what: 'claimHost: a host index never added',
    run: (r) => raw.claimHost(r.h, r.conn, 0),
    throws: RangeError,
    message: /^host: unknown host index/,
  },
  {
    what: 'claimHost: connectionId 0.5',
    run: (r) => raw.claimHost(r.h, 0.5, 0),
    throws: RangeError,
    message: /^connectionId must be an integer/,
  },
  {
    what: 'connectionHost: unknown connection',
    run: (r) => raw.connectionHost(r.h, 424242),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_CONNECTION',
    message: /^connectionId 424242/,
  },
  {
    what: 'connectionHost: a made-up handle',
    run: () => raw.connectionHost(12345, 1),
    throws: MailQueueError,
    code: 'ERR_CLOSED',
  },
  {
    what: 'hostCount: a host index never added',
    run: (r) => raw.hostCount(r.h, 0),
    throws: RangeError,
    message: /^host: unknown host index/,
  },
  {
    what: 'hostCount: host -1',
    run: (r) => raw.hostCount(r.h, -1),
    throws: RangeError,
    message: /^host must be an integer/,
  },
  {
    what: 'setErrorClass: not a function',
    run: () => raw.setErrorClass({ prototype: Error.prototype }),
    throws: TypeError,
    message: /^errorClass must be a function$/,
  },
  {
    what: 'setErrorClass: no argument',
    run: () => raw.setErrorClass(),
    throws: TypeError,
    message: /^errorClass must be a function$/,
  },
];

describe('raw addon functions: garbage throws TypeError / RangeError / MailQueueError, never crashes, changes nothing', () => {
  test('there are raw rows for every entry point that takes arguments', () => {
    for (const name of Object.keys(native)) {
      if (name === 'counterNames' || name === 'noop') continue; // they take no arguments
      if (name === 'limits') continue; // a frozen object of numbers, no function (tested below)
      expect(
        rawRows.some((r) => new RegExp(`^${name}\\b`).test(r.what)),
        name,
      ).toBe(true);
    }
  });

  test("limits is a frozen object of the core's limits", () => {
    expect(native.limits).toEqual({ maxDomainHosts: 256, flightSetBits: 14, flightWays: 4, flightStride: 4 });
    expect(Object.isFrozen(native.limits)).toBe(true);
    expect(() => {
      (native.limits as { maxDomainHosts: number }).maxDomainHosts = 1;
    }).toThrow(TypeError);
  });

  for (const row of rawRows) {
    test(row.what, () => {
      const r = makeRaw();
      const proto = protoSnapshot();
      const before = rawState(r);
      try {
        let thrown: unknown;
        let threw = false;
        try {
          row.run(r);
        } catch (e) {
          threw = true;
          thrown = e;
        }
        expect(threw, 'the call must throw').toBe(true);
        const err = thrown as Error & { code?: unknown };
        expect(err).toBeInstanceOf(Error);
        expect(err.constructor, `${err.constructor.name}: ${err.message}`).toBe(row.throws);
        if (row.code !== undefined) expect(err.code).toBe(row.code);
        if (row.message) expect(err.message).toMatch(row.message);
        expect(rawState(r)).toEqual(before);
        assertNoPollution(proto);
      } finally {
        expect(native.destroyCore(r.h)).toBe(true);
      }
    });
  }

  test('valid extremes are not errors: offset 2^53-1 reads nothing, destroyCore of a dead or made-up handle is false', () => {
    const r = makeRaw();
    try {
      expect(native.peekActive(r.h, r.d, 0, MAX_SAFE, new Float64Array(4))).toBe(0);
      expect(native.peekDelayed(r.h, r.d, MAX_SAFE, new Float64Array(4))).toBe(0);
      expect(native.destroyCore(r.dead)).toBe(false);
      expect(native.destroyCore(123_456_789)).toBe(false);
      expect(native.destroyCore(-1)).toBe(false);
      expect(native.destroyCore(Infinity)).toBe(false);
      expect(native.checkInvariants(r.h)).toBe(true);
    } finally {
      native.destroyCore(r.h);
    }
    // A destroyed handle stays dead, even once its slot is reused by a new core.
    const again = native.createCore(
      Float64Array.of(1, 0, 10, 0),
      Int32Array.of(-1),
      Float64Array.of(Infinity),
      new Float64Array(0),
    );
    try {
      expect(again).not.toBe(r.h);
      expect(again % 1048576).toBe(r.h % 1048576);
      expect(() => native.checkInvariants(r.h)).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    } finally {
      native.destroyCore(again);
    }
  });

  test("the counters buffer is the core's own memory: a transfer cannot detach it, and it outlives the core", () => {
    const r = makeRaw();
    const active = native.counterNames().indexOf('active');
    const n = r.counters.length;
    let last: number[] = [];
    try {
      // Node keeps a buffer over native memory attached: a transfer leaves the view in place (and
      // current) and hands the receiver a copy.
      const moved = structuredClone(r.counters, { transfer: [r.counters.buffer as ArrayBuffer] });
      expect(r.counters.length).toBe(n);
      const before = r.counters[active];
      expect(moved[active]).toBe(before);
      native.enqueue(r.h, r.d, 0, 100, 0, T0, Infinity, T0);
      expect(r.counters[active]).toBe(before + 1);
      expect(moved[active]).toBe(before);
      expect(native.activeSize(r.h, r.d, 0)).toBe(3);
      expect(native.checkInvariants(r.h)).toBe(true);
      // A second buffer over the same memory.
      const again = new Float64Array(native.countersBuffer(r.h));
      expect(Array.from(again)).toEqual(Array.from(r.counters));
    } finally {
      last = Array.from(r.counters);
      native.destroyCore(r.h);
    }
    // The core is gone; its counters' memory is not (each buffer holds a share): the last values.
    expect(Array.from(r.counters)).toEqual(last);
    expect(r.counters[active]).toBeGreaterThan(0);
  });

  test('a detached typed array is refused with a TypeError naming the argument', () => {
    const core = new MailQueueCore({ clock: () => T0 });
    try {
      core.enqueue({ id: 1, domain: 'x.com' });
      expect(() => core.enqueueBatch('x.com', undefined, detached('f64', 2) as Float64Array)).toThrow(TypeError);
      expect(() => core.takeInto('x.com', 0, detached('f64', 2) as Float64Array)).toThrow(TypeError);
      expect(core.stats().active).toBe(1);
    } finally {
      core.close();
    }
    const r = makeRaw();
    try {
      const calls: Array<[string, () => unknown]> = [
        ['ids', () => native.enqueueBatch(r.h, r.d, 0, detached('f64', 2) as Float64Array, null, T0, Infinity, T0)],
        ['out', () => native.take(r.h, r.d, 0, T0, detached('f64', 2) as Float64Array)],
        ['out', () => native.peekActive(r.h, r.d, 0, 0, detached('f64', 2) as Float64Array)],
        ['out', () => native.peekDelayed(r.h, r.d, 0, detached('f64', 2) as Float64Array)],
        ['out', () => native.drainGrants(r.h, detached('f64', 3) as Float64Array)],
        ['out', () => native.drainExpired(r.h, detached('f64', 2) as Float64Array)],
        ['out', () => native.dueDomains(r.h, T0, detached('u32', 2) as Uint32Array)],
        ['out', () => native.groupDomainCounts(r.h, r.d, detached('f64', 2) as Float64Array)],
      ];
      for (const [name, call] of calls) expect(call).toThrow(new RegExp(`^${name} is detached`));
    } finally {
      native.destroyCore(r.h);
    }
  });

  test('a counters view sent to a worker, the core destroyed and collected meanwhile: no crash, the values arrive', () => {
    // The main thread makes a core, sends its counters view to a worker (listed for transfer: Node
    // sends a copy of a buffer over native memory), destroys the core and collects; the worker reads
    // the values, then exits and collects. Under the ASan build (npm run test:asan) a use after
    // free here is a report, not a silent pass.
    const script = `
      const { Worker } = require('node:worker_threads');
      const addon = require(${JSON.stringify(process.env.MAIL_QUEUE_CORE_BINDING || ADDON)});
      const h = addon.createCore(Float64Array.of(1, 0, 100, 10), Int32Array.of(-1), Float64Array.of(Infinity), new Float64Array(0));
      const d = addon.addDomain(h, Float64Array.of(32, 0.3, -1, 0), Infinity, new Float64Array(0));
      for (let i = 0; i < 100; i++) addon.enqueue(h, d, 0, i, 0, 0, Infinity, 0);
      const view = new Float64Array(addon.countersBuffer(h));
      const w = new Worker('const { parentPort } = require("node:worker_threads"); parentPort.once("message", (v) => { setTimeout(() => { parentPort.postMessage(Array.from(v)); }, 50); });', { eval: true });
      w.postMessage(view, [view.buffer]);
      addon.destroyCore(h);
      if (global.gc) global.gc();
      w.once('message', (vals) => { console.log('active', vals[1]); w.terminate().then(() => { if (global.gc) global.gc(); console.log('done'); }); });
    `;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/active 100\n/);
    expect(r.stdout).toMatch(/done/);
  });
});
