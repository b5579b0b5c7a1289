// Bad input across the whole public API, and garbage into the raw addon functions.
//
// Each row of the public table is one bad call. It says which error class it must throw (exactly
// TypeError, RangeError or Error), the `code` where there is one, and a regex that the message must
// match (the message names the argument). After every row the core must be exactly as it was
// (stats, the counters view, every active queue, every message, the domain records, the native
// invariant check) and Object.prototype must be untouched. A few rows are "reported" rows: the call
// must NOT throw, and the failure must arrive as an 'error' event (providers that fail).
//
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, test } from 'vitest';

import {
  connectionGoal, HookError, MailQueueCore,
  type ActiveQueue, DomainRecord, type MailQueueCoreOptions,
} from '../lib/index.js';
import { native } from '../lib/native.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ADDON = path.join(here, '..', 'build', 'Release', 'mail_queue_core.node');

const T0 = 1_700_000_000_000;
const MB = 'a'.repeat(1 << 20);
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const TWO53 = 2 ** 53;

type ErrorClass = typeof TypeError | typeof RangeError | typeof Error;

// --- Object.prototype pollution ------------------------------------------------------------------

function protoSnapshot(): unknown {
  const names = (o: object) => Reflect.ownKeys(o).map(String).sort();
  return {
    object: names(Object.prototype),
    func: names(Function.prototype),
    array: names(Array.prototype),
    // The keys that the polluting payloads below would set.
    probes: [({} as Record<string, unknown>).x, ({} as Record<string, unknown>).polluted, Object.prototype.toString === Object.prototype.toString],
  };
}

function assertNoPollution(before: unknown): void {
  expect(protoSnapshot()).toEqual(before);
  expect(({} as Record<string, unknown>).x).toBeUndefined();
  expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'x')).toBe(false);
}

// --- the fixture: one core with mail in every state ----------------------------------------------

interface Ctx {
  core: MailQueueCore;
  /** 'error' events (reported hook failures) of `core`. */
  events: unknown[];
  dr: DomainRecord;
  qa: ActiveQueue;
  qb: ActiveQueue;
  /** ids: ACTIVE queued on x.com/a, DELAYED waiting on x.com, IN_FLIGHT taken from x.com/a. */
  active: number;
  delayed: number;
  inFlight: number;
  conn: number;
  /** A second core with the same domain, for "a DomainRecord of another core". */
  other: MailQueueCore;
  otherDr: DomainRecord;
  otherQ: ActiveQueue;
  /** A closed core, and views taken from it before close(). */
  closed: MailQueueCore;
  closedDr: DomainRecord;
  closedQ: ActiveQueue;
}

const IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100, MAX_SAFE];

function makeCtx(): Ctx {
  const clock = () => T0;
  const core = new MailQueueCore({
    bindings: [{ name: 'a', group: 'g' }, 'b'],
    config: { global: { maxOutboundConnections: 8 }, domains: { 'y.com': { maxOutboundConnections: 2 } } },
    clock,
  });
  const events: unknown[] = [];
  core.on('error', (e) => events.push(e));
  core.enqueueBatch('x.com', 'a', Float64Array.of(1, 2, 3, 4), Uint8Array.of(0, 1, 0, 0));
  core.enqueue({ id: 5, domain: 'x.com', binding: 'b' });
  core.enqueue({ id: 6, domain: 'x.com', binding: 'a', nextAttempt: T0 + 3_600_000 });
  core.enqueue({ id: 7, domain: 'y.com', binding: 'b', priority: 1, expiresAt: Infinity });
  const { grants } = core.maintain();
  expect(grants.length).toBeGreaterThan(0);
  const [inFlight] = core.take('x.com', 'a', 1);
  expect(inFlight).toBe(2); // the urgent one
  const other = new MailQueueCore({ bindings: ['a', 'b'], clock });
  other.enqueue({ id: 1, domain: 'x.com' });
  const closed = new MailQueueCore({ bindings: ['a'], clock });
  closed.enqueue({ id: 1, domain: 'x.com' });
  const closedDr = closed.domain('x.com');
  const closedQ = closed.activeQueue('x.com', 'a');
  closed.close();
  return {
    core, events, dr: core.domain('x.com'), qa: core.activeQueue('x.com', 'a'), qb: core.activeQueue('x.com', 'b'),
    active: 1, delayed: 6, inFlight, conn: grants[0].connectionId,
    other, otherDr: other.domain('x.com'), otherQ: other.activeQueue('x.com', 'a'),
    closed, closedDr, closedQ,
  };
}

function stateOf(core: MailQueueCore): unknown {
  return {
    stats: core.stats(),
    counters: Array.from(core.counters),
    domains: core.domains(),
    records: core.domains().map((d) => core.domain(d).toJSON()),
    queues: core.domains().flatMap((d) => core.bindings.map((b) => [d, b, core.activeQueue(d, b).toArray()])),
    messages: IDS.map((id) => core.message(id) ?? null),
    hooks: Object.values(core.hooks).map((h) => h.size),
    invariants: core.checkInvariants(),
  };
}

// --- rows ----------------------------------------------------------------------------------------

interface ThrowsRow {
  api: string;
  what: string;
  run: (c: Ctx) => unknown;
  throws: ErrorClass;
  code?: string;
  message?: RegExp;
}
interface ReportedRow {
  api: string;
  what: string;
  run: (c: Ctx) => unknown;
  /** The call returns this, and exactly one HookError event matching `reported` is emitted. */
  returns: unknown;
  reported: RegExp;
}
type Row = ThrowsRow | ReportedRow;

const ctor = (options: unknown) => () => new MailQueueCore(options as MailQueueCoreOptions);
const cfg = (config: unknown, bindings: unknown = ['a', 'b']) => ctor({ bindings, config });
const msg = (extra: Record<string, unknown>) => (c: Ctx) => c.core.enqueue({ id: 100, domain: 'x.com', ...extra } as never);
const any = (v: unknown) => v as never;
/** A hook point whose call() takes anything, to pass it garbage. */
const loose = (hook: object) => hook as unknown as { call(...args: unknown[]): number };

const rows: Row[] = [
  // constructor and options
  { api: 'constructor', what: 'options null', run: ctor(null), throws: TypeError, message: /^options must be an object/ },
  { api: 'constructor', what: 'options a number', run: ctor(42), throws: TypeError, message: /^options must be an object/ },
  { api: 'constructor', what: 'options an array', run: ctor([]), throws: TypeError, message: /^options must be an object/ },
  { api: 'constructor', what: 'unknown option', run: ctor({ bogus: 1 }), throws: RangeError, message: /^options: unknown option "bogus"/ },
  { api: 'constructor', what: 'options.__proto__ (JSON)', run: ctor(JSON.parse('{"__proto__": {"x": 1}}')), throws: RangeError, message: /^options: unknown option "__proto__"/ },
  { api: 'constructor', what: 'clock not a function', run: ctor({ clock: 5 }), throws: TypeError, message: /^options\.clock must be a function/ },
  { api: 'constructor', what: 'bindings a string', run: ctor({ bindings: 'a' }), throws: TypeError, message: /^bindings must be an array/ },
  { api: 'constructor', what: 'bindings empty', run: ctor({ bindings: [] }), throws: RangeError, message: /^bindings must have 1 to 65535 entries/ },
  { api: 'constructor', what: 'binding listed twice', run: ctor({ bindings: ['a', 'a'] }), throws: Error, code: 'ERR_CONFIG', message: /^bindings\[1\]: binding a is listed twice/ },
  { api: 'constructor', what: 'binding a number', run: ctor({ bindings: [5] }), throws: TypeError, message: /^bindings\[0\] must be a name/ },
  { api: 'constructor', what: 'binding name of 1 MB', run: ctor({ bindings: [MB] }), throws: RangeError, message: /^bindings\[0\] must be 1 to 64/ },
  { api: 'constructor', what: 'binding spec with a constructor key', run: ctor({ bindings: [{ name: 'a', constructor: 1 }] }), throws: Error, code: 'ERR_CONFIG', message: /^bindings\[0\]: unknown option "constructor"/ },
  { api: 'constructor', what: 'binding spec with a __proto__ key (JSON)', run: ctor({ bindings: [JSON.parse('{"name": "a", "__proto__": {"x": 1}}')] }), throws: Error, code: 'ERR_CONFIG', message: /^bindings\[0\]: unknown option "__proto__"/ },
  { api: 'constructor', what: 'binding group of 1 MB', run: ctor({ bindings: [{ name: 'a', group: MB }] }), throws: RangeError, message: /^bindings\[0\]\.group must be 1 to 64/ },

  // config scopes
  { api: 'config', what: 'config a number', run: cfg(5), throws: TypeError, message: /^config must be a plain object/ },
  { api: 'config', what: 'config a Map', run: cfg(new Map()), throws: TypeError, message: /^config must be a plain object/ },
  { api: 'config', what: 'unknown scope', run: cfg({ bogus: {} }), throws: Error, code: 'ERR_CONFIG', message: /^config: unknown scope "bogus"/ },
  { api: 'config', what: '__proto__ scope (JSON)', run: cfg(JSON.parse('{"__proto__": {"x": 1}}')), throws: Error, code: 'ERR_CONFIG', message: /^config: unknown scope "__proto__"/ },
  { api: 'config', what: 'constructor scope', run: cfg({ constructor: {} }), throws: Error, code: 'ERR_CONFIG', message: /^config: unknown scope "constructor"/ },
  { api: 'config', what: 'prototype scope', run: cfg({ prototype: {} }), throws: Error, code: 'ERR_CONFIG', message: /^config: unknown scope "prototype"/ },
  { api: 'config', what: 'global: __proto__ key (JSON)', run: cfg({ global: JSON.parse('{"__proto__": {"x": 1}}') }), throws: Error, code: 'ERR_CONFIG', message: /^config\.global: unknown option "__proto__"/ },
  { api: 'config', what: 'global: constructor key', run: cfg({ global: { constructor: 1 } }), throws: Error, code: 'ERR_CONFIG', message: /^config\.global: unknown option "constructor"/ },
  { api: 'config', what: 'global: prototype key', run: cfg({ global: { prototype: 1 } }), throws: Error, code: 'ERR_CONFIG', message: /^config\.global: unknown option "prototype"/ },
  { api: 'config', what: 'global not a plain object (class instance)', run: cfg({ global: new (class X {})() }), throws: TypeError, message: /^config\.global must be a plain object/ },
  { api: 'config', what: 'domains: __proto__ scope carrying a bad key (JSON)', run: cfg({ domains: JSON.parse('{"__proto__": {"x": 1}}') }), throws: Error, code: 'ERR_CONFIG', message: /^config\.domains\.__proto__: unknown option "x"/ },
  { api: 'config', what: 'domains: constructor scope carrying a bad key', run: cfg({ domains: { constructor: { polluted: 1 } } }), throws: Error, code: 'ERR_CONFIG', message: /^config\.domains\.constructor: unknown option "polluted"/ },
  { api: 'config', what: 'bindings: __proto__ binding (JSON)', run: cfg({ bindings: JSON.parse('{"__proto__": {}}') }), throws: Error, code: 'ERR_CONFIG', message: /^config\.bindings: binding "__proto__" is not declared/ },
  { api: 'config', what: 'bindingGroups: constructor group', run: cfg({ bindingGroups: { constructor: {} } }), throws: Error, code: 'ERR_CONFIG', message: /^config\.bindingGroups: binding group "constructor" is not declared/ },
  { api: 'config', what: 'bindings.a.domains.__proto__ bad key (JSON)', run: cfg({ bindings: { a: { domains: JSON.parse('{"__proto__": {"x": 1}}') } } }), throws: Error, code: 'ERR_CONFIG', message: /^config\.bindings\.a\.domains\.__proto__: unknown option "x"/ },
  { api: 'config', what: 'maxOutboundConnections negative', run: cfg({ global: { maxOutboundConnections: -1 } }), throws: RangeError, message: /^config\.global\.maxOutboundConnections must be an integer/ },
  { api: 'config', what: 'maxOutboundConnections NaN', run: cfg({ global: { maxOutboundConnections: NaN } }), throws: RangeError, message: /^config\.global\.maxOutboundConnections/ },
  { api: 'config', what: 'maxOutboundConnections Infinity', run: cfg({ domains: { 'x.com': { maxOutboundConnections: Infinity } } }), throws: RangeError, message: /^config\.domains\.x\.com\.maxOutboundConnections/ },
  { api: 'config', what: 'maxOutboundConnections fractional', run: cfg({ bindings: { a: { maxOutboundConnections: 1.5 } } }), throws: RangeError, message: /^config\.bindings\.a\.maxOutboundConnections/ },
  { api: 'config', what: 'maxOutboundConnections a string', run: cfg({ global: { maxOutboundConnections: '5' } }), throws: TypeError, message: /^config\.global\.maxOutboundConnections must be a number/ },
  { api: 'config', what: 'outboundThrottleConnections malformed "N/secs"', run: cfg({ global: { outboundThrottleConnections: '5/x' } }), throws: RangeError, message: /^config\.global\.outboundThrottleConnections must be "N" or "N\/secs"/ },
  { api: 'config', what: 'outboundThrottleConnections -Infinity', run: cfg({ global: { outboundThrottleConnections: -Infinity } }), throws: RangeError, message: /^config\.global\.outboundThrottleConnections/ },
  { api: 'config', what: 'outboundThrottleConnections "0/1"', run: cfg({ global: { outboundThrottleConnections: '0/1' } }), throws: RangeError, message: /^config\.global\.outboundThrottleConnections: N must be/ },
  { api: 'config', what: 'aggressiveness unknown word', run: cfg({ global: { connectionAllocationAggressiveness: 'extreme' } }), throws: TypeError, message: /^config\.global\.connectionAllocationAggressiveness/ },
  { api: 'config', what: 'aggressiveness 0', run: cfg({ global: { connectionAllocationAggressiveness: 0 } }), throws: RangeError, message: /^config\.global\.connectionAllocationAggressiveness/ },
  { api: 'config', what: 'messageExpiration negative', run: cfg({ global: { messageExpiration: -1 } }), throws: RangeError, message: /^config\.global\.messageExpiration must be a positive number/ },
  { api: 'config', what: 'suspendDelivery a string', run: cfg({ global: { suspendDelivery: 'yes' } }), throws: TypeError, message: /^config\.global\.suspendDelivery must be a boolean/ },
  { api: 'config', what: 'global-only option in a domain scope', run: cfg({ domains: { 'x.com': { serverReserveOutboundConnections: 1 } } }), throws: Error, code: 'ERR_CONFIG', message: /^config\.domains\.x\.com: serverReserveOutboundConnections is not valid in domain scope/ },
  { api: 'config', what: 'domain key of 1 MB', run: cfg({ domains: { [MB]: {} } }), throws: RangeError, message: /^config\.domains key must be 1 to 253 characters/ },
  { api: 'config', what: 'domain key not a domain', run: cfg({ domains: { 'not a domain': {} } }), throws: RangeError, message: /^config\.domains key is not a domain name/ },

  // enqueue
  { api: 'enqueue', what: 'message null', run: (c) => c.core.enqueue(any(null)), throws: TypeError, message: /^message must be an object/ },
  { api: 'enqueue', what: 'message a string', run: (c) => c.core.enqueue(any('x.com')), throws: TypeError, message: /^message must be an object/ },
  { api: 'enqueue', what: 'unknown message key', run: msg({ bogus: 1 }), throws: RangeError, message: /^message: unknown key "bogus"/ },
  { api: 'enqueue', what: 'message key __proto__ (JSON)', run: (c) => c.core.enqueue(JSON.parse('{"id": 100, "domain": "x.com", "__proto__": {"x": 1}}')), throws: RangeError, message: /^message: unknown key "__proto__"/ },
  { api: 'enqueue', what: 'message key constructor', run: msg({ constructor: 1 }), throws: RangeError, message: /^message: unknown key "constructor"/ },
  { api: 'enqueue', what: 'id a string', run: msg({ id: '100' }), throws: TypeError, message: /^message\.id must be a number/ },
  { api: 'enqueue', what: 'id a BigInt', run: msg({ id: 100n }), throws: TypeError, message: /^message\.id must be a number/ },
  { api: 'enqueue', what: 'id missing', run: (c) => c.core.enqueue(any({ domain: 'x.com' })), throws: TypeError, message: /^message\.id must be a number/ },
  { api: 'enqueue', what: 'id NaN', run: msg({ id: NaN }), throws: RangeError, message: /^message\.id must be a safe integer/ },
  { api: 'enqueue', what: 'id Infinity', run: msg({ id: Infinity }), throws: RangeError, message: /^message\.id must be a safe integer/ },
  { api: 'enqueue', what: 'id -Infinity', run: msg({ id: -Infinity }), throws: RangeError, message: /^message\.id must be a safe integer/ },
  { api: 'enqueue', what: 'id negative', run: msg({ id: -1 }), throws: RangeError, message: /^message\.id must be a safe integer/ },
  { api: 'enqueue', what: 'id fractional', run: msg({ id: 1.5 }), throws: RangeError, message: /^message\.id must be a safe integer/ },
  { api: 'enqueue', what: 'id 2^53 (above 2^53-1)', run: msg({ id: TWO53 }), throws: RangeError, message: /^message\.id must be a safe integer/ },
  { api: 'enqueue', what: 'id 2^64', run: msg({ id: 2 ** 64 }), throws: RangeError, message: /^message\.id must be a safe integer/ },
  { api: 'enqueue', what: 'domain a number', run: msg({ domain: 5 }), throws: TypeError, message: /^message\.domain must be a string/ },
  { api: 'enqueue', what: 'domain empty', run: msg({ domain: '' }), throws: RangeError, message: /^message\.domain must be 1 to 253 characters/ },
  { api: 'enqueue', what: 'domain of 1 MB', run: msg({ domain: MB }), throws: RangeError, message: /^message\.domain must be 1 to 253 characters, got 1048576/ },
  { api: 'enqueue', what: 'domain not a domain name', run: msg({ domain: 'x .com' }), throws: RangeError, message: /^message\.domain is not a domain name/ },
  { api: 'enqueue', what: 'unknown binding name', run: msg({ binding: 'nope' }), throws: RangeError, message: /^message\.binding: unknown binding "nope"/ },
  { api: 'enqueue', what: 'binding slot out of range', run: msg({ binding: 2 }), throws: RangeError, message: /^message\.binding: no binding slot 2/ },
  { api: 'enqueue', what: 'binding slot fractional', run: msg({ binding: 0.5 }), throws: RangeError, message: /^message\.binding: no binding slot/ },
  { api: 'enqueue', what: 'binding an object', run: msg({ binding: {} }), throws: TypeError, message: /^message\.binding must be a binding name or slot/ },
  { api: 'enqueue', what: 'binding name of 1 MB', run: msg({ binding: MB }), throws: RangeError, message: /^message\.binding: unknown binding "a{80}"$/ },
  { api: 'enqueue', what: 'priority 2', run: msg({ priority: 2 }), throws: RangeError, message: /^message\.priority must be an integer from 0 to 1/ },
  { api: 'enqueue', what: 'priority NaN', run: msg({ priority: NaN }), throws: RangeError, message: /^message\.priority/ },
  { api: 'enqueue', what: 'priority a boolean', run: msg({ priority: true }), throws: TypeError, message: /^message\.priority must be a number/ },
  { api: 'enqueue', what: 'nextAttempt NaN', run: msg({ nextAttempt: NaN }), throws: RangeError, message: /^message\.nextAttempt must be finite/ },
  { api: 'enqueue', what: 'nextAttempt Infinity', run: msg({ nextAttempt: Infinity }), throws: RangeError, message: /^message\.nextAttempt must be finite/ },
  { api: 'enqueue', what: 'nextAttempt past the range of a Date', run: msg({ nextAttempt: 8.64e15 + 1 }), throws: RangeError, message: /^message\.nextAttempt must be finite and within ±8\.64e15 ms/ },
  { api: 'enqueue', what: 'nextAttempt a Date', run: msg({ nextAttempt: new Date(T0) }), throws: TypeError, message: /^message\.nextAttempt must be a number/ },
  { api: 'enqueue', what: 'expiresAt NaN', run: msg({ expiresAt: NaN }), throws: RangeError, message: /^message\.expiresAt must be a time or Infinity/ },
  { api: 'enqueue', what: 'expiresAt -Infinity', run: msg({ expiresAt: -Infinity }), throws: RangeError, message: /^message\.expiresAt must be a time or Infinity/ },
  { api: 'enqueue', what: 'duplicate of an active id', run: (c) => c.core.enqueue({ id: c.active, domain: 'x.com' }), throws: Error, code: 'ERR_DUPLICATE_ID', message: /\bid 1\b/ },
  { api: 'enqueue', what: 'duplicate id, on another binding', run: (c) => c.core.enqueue({ id: c.active, domain: 'x.com', binding: 'b' }), throws: Error, code: 'ERR_DUPLICATE_ID', message: /\bid 1\b/ },
  { api: 'enqueue', what: 'duplicate of a delayed id', run: (c) => c.core.enqueue({ id: c.delayed, domain: 'y.com' }), throws: Error, code: 'ERR_DUPLICATE_ID', message: /\bid 6\b/ },
  { api: 'enqueue', what: 'duplicate of an in-flight id', run: (c) => c.core.enqueue({ id: c.inFlight, domain: 'x.com' }), throws: Error, code: 'ERR_DUPLICATE_ID', message: /\bid 2\b/ },
  { api: 'enqueue', what: 'duplicate id for a new domain (no domain is left behind)', run: (c) => c.core.enqueue({ id: c.active, domain: 'new.example' }), throws: Error, code: 'ERR_DUPLICATE_ID', message: /^message\.id 1 is already queued/ },

  // enqueueBatch
  { api: 'enqueueBatch', what: 'domain a number', run: (c) => c.core.enqueueBatch(any(5), 'a', Float64Array.of(100)), throws: TypeError, message: /^domain must be a string/ },
  { api: 'enqueueBatch', what: 'domain of 1 MB', run: (c) => c.core.enqueueBatch(MB, 'a', Float64Array.of(100)), throws: RangeError, message: /^domain must be 1 to 253 characters/ },
  { api: 'enqueueBatch', what: 'unknown binding', run: (c) => c.core.enqueueBatch('x.com', 'zz', Float64Array.of(100)), throws: RangeError, message: /^binding: unknown binding "zz"/ },
  { api: 'enqueueBatch', what: 'binding null', run: (c) => c.core.enqueueBatch('x.com', any(null), Float64Array.of(100)), throws: TypeError, message: /^binding must be a binding name or slot/ },
  { api: 'enqueueBatch', what: 'ids a Float32Array', run: (c) => c.core.enqueueBatch('x.com', 'a', any(Float32Array.of(100))), throws: TypeError, message: /^ids must be a Float64Array/ },
  { api: 'enqueueBatch', what: 'ids a BigInt64Array', run: (c) => c.core.enqueueBatch('x.com', 'a', any(BigInt64Array.of(100n))), throws: TypeError, message: /^ids must be a Float64Array/ },
  { api: 'enqueueBatch', what: 'ids a plain array', run: (c) => c.core.enqueueBatch('x.com', 'a', any([100])), throws: TypeError, message: /^ids must be a Float64Array, got an array/ },
  { api: 'enqueueBatch', what: 'priorities an Int8Array', run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100), any(Int8Array.of(0))), throws: TypeError, message: /^priorities must be a Uint8Array/ },
  { api: 'enqueueBatch', what: 'priorities a Uint8ClampedArray', run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100), any(Uint8ClampedArray.of(0))), throws: TypeError, message: /^priorities must be a Uint8Array/ },
  { api: 'enqueueBatch', what: 'priorities shorter than ids', run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100, 101), Uint8Array.of(0)), throws: RangeError, message: /^priorities must have as many entries as ids \(2\), got 1/ },
  { api: 'enqueueBatch', what: 'priorities longer than ids', run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100), Uint8Array.of(0, 1)), throws: RangeError, message: /^priorities must have as many entries as ids \(1\), got 2/ },
  { api: 'enqueueBatch', what: 'priorities longer than an empty ids', run: (c) => c.core.enqueueBatch('x.com', 'a', new Float64Array(0), Uint8Array.of(0)), throws: RangeError, message: /^priorities must have as many entries as ids \(0\)/ },
  { api: 'enqueueBatch', what: 'priority 2 (known domain)', run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100, 101), Uint8Array.of(0, 2)), throws: RangeError, message: /priorities\[1\]/ },
  { api: 'enqueueBatch', what: 'priority 2 (new domain)', run: (c) => c.core.enqueueBatch('new.example', 'a', Float64Array.of(100, 101), Uint8Array.of(0, 2)), throws: RangeError, message: /^priorities\[1\] must be 0 or 1/ },
  { api: 'enqueueBatch', what: 'NaN id (known domain)', run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100, NaN)), throws: RangeError, message: /^ids\[1\]/ },
  { api: 'enqueueBatch', what: 'negative id (new domain)', run: (c) => c.core.enqueueBatch('new.example', 'b', Float64Array.of(100, -1)), throws: RangeError, message: /^ids\[1\] must be a safe integer/ },
  { api: 'enqueueBatch', what: 'id 2^53 (known domain)', run: (c) => c.core.enqueueBatch('x.com', 'b', Float64Array.of(TWO53)), throws: RangeError, message: /^ids\[0\]/ },
  { api: 'enqueueBatch', what: 'fractional id (known domain)', run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100, 101, 0.5)), throws: RangeError, message: /^ids\[2\]/ },
  { api: 'enqueueBatch', what: 'Infinity id (new domain)', run: (c) => c.core.enqueueBatch('new.example', 'a', Float64Array.of(Infinity)), throws: RangeError, message: /^ids\[0\] must be a safe integer/ },
  { api: 'enqueueBatch', what: 'duplicate inside the batch (known domain)', run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100, 101, 100)), throws: Error, code: 'ERR_DUPLICATE_ID', message: /^ids\[2\]/ },
  { api: 'enqueueBatch', what: 'duplicate inside the batch (new domain)', run: (c) => c.core.enqueueBatch('new.example', 'a', Float64Array.of(100, 100)), throws: Error, code: 'ERR_DUPLICATE_ID', message: /^ids\[1\]: id 100 is already queued/ },
  { api: 'enqueueBatch', what: 'duplicate against the queue (known domain)', run: (c) => c.core.enqueueBatch('x.com', 'b', Float64Array.of(100, c.active)), throws: Error, code: 'ERR_DUPLICATE_ID', message: /^ids\[1\]/ },
  { api: 'enqueueBatch', what: 'duplicate of an in-flight id (new domain)', run: (c) => c.core.enqueueBatch('new.example', 'a', Float64Array.of(100, c.inFlight)), throws: Error, code: 'ERR_DUPLICATE_ID', message: /^ids\[1\]: id 2 is already queued/ },

  { api: 'enqueueBatch', what: 'nextAttempts a plain array', run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100), undefined, any([T0])), throws: TypeError, message: /^nextAttempts must be a Float64Array/ },
  { api: 'enqueueBatch', what: 'nextAttempts shorter than ids', run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100, 101), undefined, Float64Array.of(T0)), throws: RangeError, message: /^nextAttempts must have as many entries as ids \(2\), got 1/ },
  { api: 'enqueueBatch', what: 'nextAttempts NaN (known domain)', run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100, 101), undefined, Float64Array.of(T0, NaN)), throws: RangeError, message: /^nextAttempts\[1\] must be a finite number/ },
  { api: 'enqueueBatch', what: 'nextAttempts Infinity (new domain)', run: (c) => c.core.enqueueBatch('new.example', 'a', Float64Array.of(100), undefined, Float64Array.of(Infinity)), throws: RangeError, message: /^nextAttempts\[0\] must be a finite number/ },
  { api: 'enqueueBatch', what: 'nextAttempts 1e300 (known domain)', run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100), undefined, Float64Array.of(1e300)), throws: RangeError, message: /^nextAttempts\[0\] must be a finite number within ±8\.64e15 ms/ },
  { api: 'enqueueBatch', what: 'nextAttempts -1e300 (new domain)', run: (c) => c.core.enqueueBatch('new.example', 'a', Float64Array.of(100), undefined, Float64Array.of(-1e300)), throws: RangeError, message: /^nextAttempts\[0\] must be a finite number within ±8\.64e15 ms/ },
  // deferMany
  { api: 'deferMany', what: 'ids a plain array', run: (c) => c.core.deferMany(any([c.inFlight]), T0 + 1000), throws: TypeError, message: /^ids must be a Float64Array/ },
  { api: 'deferMany', what: 'nextAttempt NaN', run: (c) => c.core.deferMany(Float64Array.of(c.inFlight), NaN), throws: RangeError, message: /^nextAttempt must be finite/ },
  { api: 'deferMany', what: 'nextAttempt before the range of a Date', run: (c) => c.core.deferMany(Float64Array.of(c.inFlight), -9e15), throws: RangeError, message: /^nextAttempt must be finite and within/ },
  { api: 'deferMany', what: 'a queued id', run: (c) => c.core.deferMany(Float64Array.of(c.inFlight, c.active), T0 + 1000), throws: Error, code: 'ERR_NOT_IN_FLIGHT', message: /^ids\[1\]/ },
  { api: 'deferMany', what: 'an id twice', run: (c) => c.core.deferMany(Float64Array.of(c.inFlight, c.inFlight), T0 + 1000), throws: Error, code: 'ERR_DUPLICATE_ID', message: /^ids\[1\]/ },
  { api: 'deferMany', what: 'an unknown id', run: (c) => c.core.deferMany(Float64Array.of(424242), T0 + 1000), throws: Error, code: 'ERR_UNKNOWN_ID', message: /^ids\[0\]/ },
  { api: 'deferMany', what: 'a fractional id', run: (c) => c.core.deferMany(Float64Array.of(1.5), T0 + 1000), throws: RangeError, message: /^ids\[0\] must be a safe integer/ },
  // cancelMany (unknown and repeated ids are skipped, so only these refuse a batch)
  { api: 'cancelMany', what: 'ids a plain array', run: (c) => c.core.cancelMany(any([c.active])), throws: TypeError, message: /^ids must be a Float64Array, got an array/ },
  { api: 'cancelMany', what: 'ids a Float32Array', run: (c) => c.core.cancelMany(any(Float32Array.of(c.active))), throws: TypeError, message: /^ids must be a Float64Array/ },
  { api: 'cancelMany', what: 'ids undefined', run: (c) => c.core.cancelMany(any(undefined)), throws: TypeError, message: /^ids must be a Float64Array, got undefined/ },
  { api: 'cancelMany', what: 'ids a number', run: (c) => c.core.cancelMany(any(c.active)), throws: TypeError, message: /^ids must be a Float64Array/ },
  { api: 'cancelMany', what: 'a fractional id', run: (c) => c.core.cancelMany(Float64Array.of(c.active, 1.5)), throws: RangeError, message: /^ids\[1\] must be a safe integer/ },
  { api: 'cancelMany', what: 'NaN id', run: (c) => c.core.cancelMany(Float64Array.of(NaN, c.active)), throws: RangeError, message: /^ids\[0\] must be a safe integer/ },
  { api: 'cancelMany', what: 'negative id', run: (c) => c.core.cancelMany(Float64Array.of(c.delayed, c.active, -1)), throws: RangeError, message: /^ids\[2\] must be a safe integer/ },
  { api: 'cancelMany', what: 'id 2^53', run: (c) => c.core.cancelMany(Float64Array.of(c.active, TWO53)), throws: RangeError, message: /^ids\[1\] must be a safe integer/ },
  { api: 'cancelMany', what: 'id Infinity after an unknown id', run: (c) => c.core.cancelMany(Float64Array.of(424242, Infinity)), throws: RangeError, message: /^ids\[1\] must be a safe integer/ },
  { api: 'cancelMany', what: 'an in-flight id at index 1', run: (c) => c.core.cancelMany(Float64Array.of(c.active, c.inFlight, c.delayed)), throws: Error, code: 'ERR_IN_FLIGHT', message: /^ids\[1\]/ },
  { api: 'cancelMany', what: 'an in-flight id after a repeated one', run: (c) => c.core.cancelMany(Float64Array.of(c.delayed, c.delayed, 100, c.inFlight)), throws: Error, code: 'ERR_IN_FLIGHT', message: /^ids\[3\]: the message is in flight/ },

  { api: 'maintain', what: 'options.maxGrants 0', run: (c) => c.core.maintain(undefined, { maxGrants: 0 }), throws: RangeError, message: /^options.maxGrants must be an integer from 1/ },
  { api: 'maintain', what: 'options.maxGrants NaN', run: (c) => c.core.maintain(undefined, { maxGrants: NaN }), throws: RangeError, message: /^options.maxGrants/ },
  { api: 'maintain', what: 'options.maxDomains 0', run: (c) => c.core.maintain(undefined, { maxDomains: 0 }), throws: RangeError, message: /^options.maxDomains must be an integer from 1/ },
  { api: 'maintain', what: 'options.maxDomains a string', run: (c) => c.core.maintain(undefined, { maxDomains: any('5') }), throws: TypeError, message: /^options.maxDomains must be a number/ },
  { api: 'maintain', what: 'options.into an array', run: (c) => c.core.maintain(undefined, { into: any([]) }), throws: TypeError, message: /^options.into must be a GrantList/ },
  { api: 'maintain', what: 'options.into null', run: (c) => c.core.maintain(undefined, { into: any(null) }), throws: TypeError, message: /^options.into must be a GrantList/ },
  { api: 'maintain', what: 'options.into of another core', run: (c) => c.core.maintain(undefined, { into: c.other.grantList() }), throws: RangeError, message: /^options.into: a GrantList of another core/ },
  { api: 'maintain', what: 'options unknown key', run: (c) => c.core.maintain(undefined, any({ maxdomains: 5 })), throws: RangeError, message: /^options: unknown option "maxdomains"/ },
  { api: 'maintain', what: 'options null', run: (c) => c.core.maintain(undefined, any(null)), throws: TypeError, message: /^options must be an object/ },
  // cancel, message, settle, defer, untake
  { api: 'cancel', what: 'id a string', run: (c) => c.core.cancel(any('1')), throws: TypeError, message: /^id must be a number/ },
  { api: 'cancel', what: 'id negative', run: (c) => c.core.cancel(-1), throws: RangeError, message: /^id must be a safe integer/ },
  { api: 'cancel', what: 'id NaN', run: (c) => c.core.cancel(NaN), throws: RangeError, message: /^id must be a safe integer/ },
  { api: 'cancel', what: 'id in flight', run: (c) => c.core.cancel(c.inFlight), throws: Error, code: 'ERR_IN_FLIGHT', message: /\bid 2\b/ },
  { api: 'message', what: 'id fractional', run: (c) => c.core.message(1.5), throws: RangeError, message: /^id must be a safe integer/ },
  { api: 'message', what: 'id 2^53', run: (c) => c.core.message(TWO53), throws: RangeError, message: /^id must be a safe integer/ },
  { api: 'message', what: 'id Infinity', run: (c) => c.core.message(Infinity), throws: RangeError, message: /^id must be a safe integer/ },
  { api: 'message', what: 'id undefined', run: (c) => c.core.message(any(undefined)), throws: TypeError, message: /^id must be a number, got undefined/ },
  { api: 'settle', what: 'unknown id', run: (c) => c.core.settle(100), throws: Error, code: 'ERR_UNKNOWN_ID', message: /\bid 100\b/ },
  { api: 'settle', what: 'an active (not taken) id', run: (c) => c.core.settle(c.active), throws: Error, code: 'ERR_NOT_IN_FLIGHT', message: /\bid 1\b/ },
  { api: 'settle', what: 'id -0.5', run: (c) => c.core.settle(-0.5), throws: RangeError, message: /^id must be a safe integer/ },
  { api: 'settle', what: 'id -Infinity', run: (c) => c.core.settle(-Infinity), throws: RangeError, message: /^id must be a safe integer/ },
  { api: 'defer', what: 'nextAttempt NaN', run: (c) => c.core.defer(c.inFlight, NaN), throws: RangeError, message: /^nextAttempt must be finite/ },
  { api: 'defer', what: 'nextAttempt Infinity', run: (c) => c.core.defer(c.inFlight, Infinity), throws: RangeError, message: /^nextAttempt must be finite/ },
  { api: 'defer', what: 'nextAttempt a string', run: (c) => c.core.defer(c.inFlight, any('soon')), throws: TypeError, message: /^nextAttempt must be a number/ },
  { api: 'defer', what: 'an active (not taken) id', run: (c) => c.core.defer(c.active, T0 + 1000), throws: Error, code: 'ERR_NOT_IN_FLIGHT', message: /\bid 1\b/ },
  { api: 'defer', what: 'id 2^53', run: (c) => c.core.defer(TWO53, T0), throws: RangeError, message: /^id must be a safe integer/ },
  { api: 'untake', what: 'unknown id', run: (c) => c.core.untake(MAX_SAFE), throws: Error, code: 'ERR_UNKNOWN_ID', message: /\bid 9007199254740991\b/ },
  { api: 'untake', what: 'a delayed id', run: (c) => c.core.untake(c.delayed), throws: Error, code: 'ERR_NOT_IN_FLIGHT', message: /\bid 6\b/ },
  { api: 'untake', what: 'id undefined', run: (c) => c.core.untake(any(undefined)), throws: TypeError, message: /^id must be a number/ },

  // take, takeInto
  { api: 'take', what: 'unknown domain', run: (c) => c.core.take('nope.example', 'a'), throws: Error, code: 'ERR_UNKNOWN_DOMAIN', message: /^domain: .*"nope\.example"/ },
  { api: 'take', what: 'domain a number', run: (c) => c.core.take(any(5), 'a'), throws: TypeError, message: /^domain must be a string/ },
  { api: 'take', what: 'domain of 1 MB', run: (c) => c.core.take(MB, 'a'), throws: RangeError, message: /^domain must be 1 to 253 characters/ },
  { api: 'take', what: 'unknown binding', run: (c) => c.core.take('x.com', 'zz'), throws: RangeError, message: /^binding: unknown binding "zz"/ },
  { api: 'take', what: 'binding slot -1', run: (c) => c.core.take('x.com', -1), throws: RangeError, message: /^binding: no binding slot -1/ },
  { api: 'take', what: 'k = 0', run: (c) => c.core.take('x.com', 'a', 0), throws: RangeError, message: /^k must be an integer from 1/ },
  { api: 'take', what: 'k fractional', run: (c) => c.core.take('x.com', 'a', 1.5), throws: RangeError, message: /^k must be an integer/ },
  { api: 'take', what: 'k NaN', run: (c) => c.core.take('x.com', 'a', NaN), throws: RangeError, message: /^k must be an integer/ },
  { api: 'take', what: 'k huge (1e7)', run: (c) => c.core.take('x.com', 'a', 1e7), throws: RangeError, message: /^k must be an integer from 1 to 1000000/ },
  { api: 'take', what: 'k a string', run: (c) => c.core.take('x.com', 'a', any('2')), throws: TypeError, message: /^k must be a number/ },
  { api: 'takeInto', what: 'out a Float32Array', run: (c) => c.core.takeInto('x.com', 'a', any(new Float32Array(4))), throws: TypeError, message: /^out must be a Float64Array/ },
  { api: 'takeInto', what: 'out a BigInt64Array', run: (c) => c.core.takeInto('x.com', 'a', any(new BigInt64Array(4))), throws: TypeError, message: /^out must be a Float64Array/ },
  { api: 'takeInto', what: 'out a plain array', run: (c) => c.core.takeInto('x.com', 'a', any([0, 0])), throws: TypeError, message: /^out must be a Float64Array, got an array/ },
  { api: 'takeInto', what: 'out a DataView', run: (c) => c.core.takeInto('x.com', 'a', any(new DataView(new ArrayBuffer(16)))), throws: TypeError, message: /^out must be a Float64Array/ },
  { api: 'takeInto', what: 'domain a DomainRecord of another core', run: (c) => c.core.takeInto(c.otherDr, 'a', new Float64Array(1)), throws: TypeError, message: /^domain must be a DomainRecord of this core/ },
  { api: 'takeInto', what: 'domain a plain object', run: (c) => c.core.takeInto(any({ name: 'x.com', index: 0 }), 'a', new Float64Array(1)), throws: TypeError, message: /^domain must be a string or a DomainRecord, got/ },
  { api: 'takeInto', what: 'domain an object with DomainRecord\'s prototype', run: (c) => c.core.takeInto(Object.create(DomainRecord.prototype), 'a', new Float64Array(1)), throws: TypeError, message: /^domain must be a DomainRecord of this core/ },
  { api: 'takeInto', what: 'domain a number', run: (c) => c.core.takeInto(any(0), 'a', new Float64Array(1)), throws: TypeError, message: /^domain must be a string or a DomainRecord, got number/ },
  { api: 'enqueueBatch', what: 'domain a DomainRecord of another core', run: (c) => c.core.enqueueBatch(c.otherDr, 'a', Float64Array.of(100)), throws: TypeError, message: /^domain must be a DomainRecord of this core/ },
  { api: 'enqueueBatch', what: 'domain a DomainRecord of a closed core', run: (c) => c.core.enqueueBatch(c.closedDr, 'a', Float64Array.of(100)), throws: TypeError, message: /^domain must be a DomainRecord of this core/ },

  // takeFor
  { api: 'takeFor', what: 'connection never opened', run: (c) => c.core.takeFor(424242, new Float64Array(1)), throws: Error, code: 'ERR_UNKNOWN_CONNECTION', message: /^connectionId 424242/ },
  { api: 'takeFor', what: 'connectionId 0', run: (c) => c.core.takeFor(0, new Float64Array(1)), throws: RangeError, message: /^connectionId must be an integer from 1 to 9007199254740991, got 0/ },
  { api: 'takeFor', what: 'connectionId 1.5', run: (c) => c.core.takeFor(1.5, new Float64Array(1)), throws: RangeError, message: /^connectionId must be an integer/ },
  { api: 'takeFor', what: 'connectionId NaN', run: (c) => c.core.takeFor(NaN, new Float64Array(1)), throws: RangeError, message: /^connectionId must be an integer from 1 to 9007199254740991, got NaN/ },
  { api: 'takeFor', what: 'connectionId a string', run: (c) => c.core.takeFor(any('1'), new Float64Array(1)), throws: TypeError, message: /^connectionId must be a number/ },
  { api: 'takeFor', what: 'connectionId not issued yet', run: (c) => c.core.takeFor(c.conn + 1000, new Float64Array(1)), throws: Error, code: 'ERR_UNKNOWN_CONNECTION' },
  { api: 'takeFor', what: 'out a Float32Array', run: (c) => c.core.takeFor(c.conn, any(new Float32Array(4))), throws: TypeError, message: /^out must be a Float64Array/ },
  { api: 'takeFor', what: 'out missing', run: (c) => c.core.takeFor(c.conn, any(undefined)), throws: TypeError, message: /^out must be a Float64Array/ },
  { api: 'takeFor', what: 'connectionId bad and out bad: the id is named first', run: (c) => c.core.takeFor(-1, any([])), throws: RangeError, message: /^connectionId/ },
  { api: 'DomainRecord', what: 'index reassigned', run: (c) => { (c.dr as unknown as { index: number }).index = 1; }, throws: TypeError, message: /index/ },

  // domain, hasDomain, DomainRecord
  { api: 'domain', what: 'unknown domain', run: (c) => c.core.domain('nope.example'), throws: Error, code: 'ERR_UNKNOWN_DOMAIN', message: /^domain: .*"nope\.example"/ },
  { api: 'domain', what: 'domain of 1 MB', run: (c) => c.core.domain(MB), throws: RangeError, message: /^domain must be 1 to 253 characters/ },
  { api: 'domain', what: 'domain a symbol', run: (c) => c.core.domain(any(Symbol('x'))), throws: TypeError, message: /^domain must be a string/ },
  { api: 'hasDomain', what: 'name null', run: (c) => c.core.hasDomain(any(null)), throws: TypeError, message: /^name must be a string, got null/ },
  { api: 'hasDomain', what: 'name of 1 MB', run: (c) => c.core.hasDomain(MB), throws: RangeError, message: /^name must be 1 to 253 characters, got 1048576/ },
  { api: 'hasDomain', what: 'name not a domain name', run: (c) => c.core.hasDomain('a..b'), throws: RangeError, message: /^name is not a domain name/ },
  { api: 'DomainRecord', what: 'activeSize of an unknown binding', run: (c) => c.dr.activeSize('zz'), throws: RangeError, message: /^binding: unknown binding "zz"/ },
  { api: 'DomainRecord', what: 'connections of slot 99', run: (c) => c.dr.connections(99), throws: RangeError, message: /^binding: no binding slot 99/ },
  { api: 'DomainRecord', what: 'suspended(undefined)', run: (c) => c.dr.suspended(any(undefined)), throws: TypeError, message: /^binding must be a binding name or slot/ },

  // activeQueue and its methods
  { api: 'activeQueue', what: 'unknown domain', run: (c) => c.core.activeQueue('nope.example', 'a'), throws: Error, code: 'ERR_UNKNOWN_DOMAIN', message: /"nope\.example"/ },
  { api: 'activeQueue', what: 'binding slot out of range', run: (c) => c.core.activeQueue('x.com', 2), throws: RangeError, message: /^binding: no binding slot 2/ },
  { api: 'activeQueue', what: 'binding NaN', run: (c) => c.core.activeQueue('x.com', NaN), throws: RangeError, message: /^binding: no binding slot NaN/ },
  { api: 'activeQueue.toArray', what: 'limit -1', run: (c) => c.qa.toArray(-1), throws: RangeError, message: /^limit must be an integer from 0/ },
  { api: 'activeQueue.toArray', what: 'limit 1e8', run: (c) => c.qa.toArray(1e8), throws: RangeError, message: /^limit must be an integer from 0 to 10000000/ },
  { api: 'activeQueue.toArray', what: 'limit a string', run: (c) => c.qa.toArray(any('10')), throws: TypeError, message: /^limit must be a number/ },
  { api: 'activeQueue.toArray', what: 'offset -1', run: (c) => c.qa.toArray(10, -1), throws: RangeError, message: /^offset must be an integer/ },
  { api: 'activeQueue.toArray', what: 'offset 2^53', run: (c) => c.qa.toArray(10, TWO53), throws: RangeError, message: /^offset must be an integer/ },
  { api: 'activeQueue.toArray', what: 'offset fractional', run: (c) => c.qa.toArray(10, 0.5), throws: RangeError, message: /^offset must be an integer/ },
  { api: 'activeQueue.remove', what: 'id NaN', run: (c) => c.qa.remove(NaN), throws: RangeError, message: /^id must be a safe integer/ },
  { api: 'activeQueue.remove', what: 'id a string', run: (c) => c.qa.remove(any('1')), throws: TypeError, message: /^id must be a number/ },
  { api: 'activeQueue.has', what: 'id -1', run: (c) => c.qa.has(-1), throws: RangeError, message: /^id must be a safe integer/ },
  { api: 'activeQueue.has', what: 'id 2^53', run: (c) => c.qa.has(TWO53), throws: RangeError, message: /^id must be a safe integer/ },

  // suspend, resume
  { api: 'suspend', what: 'domain a number', run: (c) => c.core.suspend(any(5)), throws: TypeError, message: /^domain must be a string/ },
  { api: 'suspend', what: 'domain of 1 MB', run: (c) => c.core.suspend(MB), throws: RangeError, message: /^domain must be 1 to 253 characters/ },
  { api: 'suspend', what: 'unknown binding', run: (c) => c.core.suspend('x.com', 'zz'), throws: RangeError, message: /^binding: unknown binding "zz"/ },
  { api: 'resume', what: 'binding slot fractional', run: (c) => c.core.resume('x.com', 1.5), throws: RangeError, message: /^binding: no binding slot 1\.5/ },
  { api: 'resume', what: 'domain null', run: (c) => c.core.resume(any(null)), throws: TypeError, message: /^domain must be a string, got null/ },

  // maintain, maintainDomain
  { api: 'maintain', what: 'now NaN', run: (c) => c.core.maintain(NaN), throws: RangeError, message: /^now must be finite/ },
  { api: 'maintain', what: 'now Infinity', run: (c) => c.core.maintain(Infinity), throws: RangeError, message: /^now must be finite/ },
  { api: 'maintain', what: 'now past the range of a Date', run: (c) => c.core.maintain(1e16), throws: RangeError, message: /^now must be finite and within ±8\.64e15 ms/ },
  { api: 'maintain', what: 'now a string', run: (c) => c.core.maintain(any('now')), throws: TypeError, message: /^now must be a number/ },
  { api: 'maintainDomain', what: 'unknown domain', run: (c) => c.core.maintainDomain('nope.example'), throws: Error, code: 'ERR_UNKNOWN_DOMAIN', message: /"nope\.example"/ },
  { api: 'maintainDomain', what: 'options null', run: (c) => c.core.maintainDomain('x.com', any(null)), throws: TypeError, message: /^options must be an object/ },
  { api: 'maintainDomain', what: 'unknown option', run: (c) => c.core.maintainDomain('x.com', any({ bogus: 1 })), throws: RangeError, message: /^options: unknown option "bogus"/ },
  { api: 'maintainDomain', what: 'options.now -Infinity', run: (c) => c.core.maintainDomain('x.com', { now: -Infinity }), throws: RangeError, message: /^options\.now must be finite/ },
  { api: 'maintainDomain', what: 'options.goalsz fractional', run: (c) => c.core.maintainDomain('x.com', { goalsz: 1.5 }), throws: RangeError, message: /^options\.goalsz must be an integer/ },
  { api: 'maintainDomain', what: 'options.goalsz 2^31', run: (c) => c.core.maintainDomain('x.com', { goalsz: 2 ** 31 }), throws: RangeError, message: /^options\.goalsz must be an integer/ },
  { api: 'maintainDomain', what: 'options.reserve -1', run: (c) => c.core.maintainDomain('x.com', { reserve: -1 }), throws: RangeError, message: /^options\.reserve must be an integer from 0/ },

  // openConnections, releaseConnection
  { api: 'openConnections', what: 'count -1', run: (c) => c.core.openConnections('x.com', 'a', -1), throws: RangeError, message: /^count must be an integer from 0/ },
  { api: 'openConnections', what: 'count NaN', run: (c) => c.core.openConnections('x.com', 'a', NaN), throws: RangeError, message: /^count must be an integer/ },
  { api: 'openConnections', what: 'count fractional', run: (c) => c.core.openConnections('x.com', 'a', 1.5), throws: RangeError, message: /^count must be an integer/ },
  { api: 'openConnections', what: 'count Infinity', run: (c) => c.core.openConnections('x.com', 'a', Infinity), throws: RangeError, message: /^count must be an integer/ },
  { api: 'openConnections', what: 'options.now NaN', run: (c) => c.core.openConnections('x.com', 'a', 1, { now: NaN }), throws: RangeError, message: /^options\.now must be finite/ },
  { api: 'openConnections', what: 'options.reserve -1', run: (c) => c.core.openConnections('x.com', 'a', 1, { reserve: -1 }), throws: RangeError, message: /^options\.reserve must be an integer/ },
  { api: 'openConnections', what: 'options null', run: (c) => c.core.openConnections('x.com', 'a', 1, any(null)), throws: TypeError, message: /^options must be an object/ },
  { api: 'openConnections', what: 'unknown domain', run: (c) => c.core.openConnections('nope.example', 'a', 1), throws: Error, code: 'ERR_UNKNOWN_DOMAIN', message: /"nope\.example"/ },
  { api: 'openConnections', what: 'unknown binding', run: (c) => c.core.openConnections('x.com', 'zz', 1), throws: RangeError, message: /^binding: unknown binding "zz"/ },
  {
    api: 'openConnections', what: 'unknown option (a typo of reserve)', run: (c) => c.core.openConnections('x.com', 'a', 1, any({ reserv: 0 })),
    throws: RangeError, message: /^options: unknown option "reserv"/,
  },
  { api: 'releaseConnection', what: 'connectionId 0', run: (c) => c.core.releaseConnection(0), throws: RangeError, message: /^connectionId must be an integer from 1/ },
  { api: 'releaseConnection', what: 'connectionId negative', run: (c) => c.core.releaseConnection(-1), throws: RangeError, message: /^connectionId must be an integer/ },
  { api: 'releaseConnection', what: 'connectionId fractional', run: (c) => c.core.releaseConnection(c.conn + 0.5), throws: RangeError, message: /^connectionId must be an integer/ },
  { api: 'releaseConnection', what: 'connectionId 2^53', run: (c) => c.core.releaseConnection(TWO53), throws: RangeError, message: /^connectionId must be an integer/ },
  { api: 'releaseConnection', what: 'connectionId a string', run: (c) => c.core.releaseConnection(any(String(c.conn))), throws: TypeError, message: /^connectionId must be a number/ },
  { api: 'releaseConnection', what: 'unknown connection', run: (c) => c.core.releaseConnection(999_999), throws: Error, code: 'ERR_UNKNOWN_CONNECTION', message: /^connectionId 999999/ },

  // defaultMailQueueMaintain
  { api: 'defaultMailQueueMaintain', what: 'dr a plain object', run: (c) => c.core.defaultMailQueueMaintain(any({ index: 0 }), 0, c.qa, T0, 0, 0), throws: TypeError, message: /^dr must be a DomainRecord of this core/ },
  { api: 'defaultMailQueueMaintain', what: 'dr of another core', run: (c) => c.core.defaultMailQueueMaintain(c.otherDr, 0, c.qa, T0, 0, 0), throws: TypeError, message: /^dr must be a DomainRecord of this core/ },
  { api: 'defaultMailQueueMaintain', what: 'bindingSlot 5', run: (c) => c.core.defaultMailQueueMaintain(c.dr, 5, c.qa, T0, 0, 0), throws: RangeError, message: /^bindingSlot must be an integer from 0 to 1/ },
  { api: 'defaultMailQueueMaintain', what: 'sl of another binding', run: (c) => c.core.defaultMailQueueMaintain(c.dr, 0, c.qb, T0, 0, 0), throws: TypeError, message: /^sl must be the ActiveQueue of \(dr, bindingSlot\)/ },
  { api: 'defaultMailQueueMaintain', what: 'sl of another core', run: (c) => c.core.defaultMailQueueMaintain(c.dr, 0, c.otherQ, T0, 0, 0), throws: TypeError, message: /^sl must be the ActiveQueue/ },
  { api: 'defaultMailQueueMaintain', what: 'now NaN', run: (c) => c.core.defaultMailQueueMaintain(c.dr, 0, c.qa, NaN, 0, 0), throws: RangeError, message: /^now must be finite/ },
  { api: 'defaultMailQueueMaintain', what: 'goalsz fractional', run: (c) => c.core.defaultMailQueueMaintain(c.dr, 0, c.qa, T0, 0.5, 0), throws: RangeError, message: /^goalsz must be an integer/ },
  { api: 'defaultMailQueueMaintain', what: 'reserve -1', run: (c) => c.core.defaultMailQueueMaintain(c.dr, 0, c.qa, T0, 0, -1), throws: RangeError, message: /^reserve must be an integer from 0/ },

  // hooks
  { api: 'hooks.mailQueueMaintain.registerFirst', what: 'fn a number', run: (c) => c.core.hooks.mailQueueMaintain.registerFirst(any(5)), throws: TypeError, message: /^fn must be a function, got number/ },
  { api: 'hooks.mailQueueMaintain.registerLast', what: 'fn a string', run: (c) => c.core.hooks.mailQueueMaintain.registerLast(any('provider')), throws: TypeError, message: /^fn must be a function, got string/ },
  { api: 'hooks.connectionGoal.registerFirst', what: 'fn null', run: (c) => c.core.hooks.connectionGoal.registerFirst(any(null)), throws: TypeError, message: /^fn must be a function, got null/ },
  { api: 'hooks.preMailQueueMaintainDomain.registerLast', what: 'fn an object', run: (c) => c.core.hooks.preMailQueueMaintainDomain.registerLast(any({ call() { return 0; } })), throws: TypeError, message: /^fn must be a function, got object/ },
  { api: 'hooks.postMailQueueMaintainDomain.registerFirst', what: 'fn undefined', run: (c) => c.core.hooks.postMailQueueMaintainDomain.registerFirst(any(undefined)), throws: TypeError, message: /^fn must be a function, got undefined/ },
  { api: 'hooks.mailQueueMaintain.call', what: 'no arguments', run: (c) => loose(c.core.hooks.mailQueueMaintain).call(), throws: TypeError, message: /^dr must be a DomainRecord/ },
  { api: 'hooks.mailQueueMaintain.call', what: 'now NaN', run: (c) => c.core.hooks.mailQueueMaintain.call(c.dr, 0, c.qa, NaN, 0, 0), throws: RangeError, message: /^now must be finite/ },
  { api: 'hooks.mailQueueMaintain.call', what: 'bindingSlot -1', run: (c) => c.core.hooks.mailQueueMaintain.call(c.dr, -1, c.qa, T0, 0, 0), throws: RangeError, message: /^bindingSlot must be an integer/ },
  {
    api: 'hooks.connectionGoal.call', what: 'garbage arguments',
    run: (c) => loose(c.core.hooks.connectionGoal).call({}, 'x', null, 5),
    throws: TypeError, message: /^dr must be a DomainRecord/,
  },
  {
    api: 'hooks.mailQueueMaintain.call', what: 'call() from inside a provider',
    run: (c) => {
      const hook = c.core.hooks.mailQueueMaintain;
      let inner: unknown = 'provider did not run';
      const off = hook.registerFirst(() => {
        try {
          hook.call(c.dr, 0, c.qa, T0, 0, 0);
          inner = 'no error';
        } catch (e) {
          inner = e;
        }
        return -1; // stop the chain without opening anything
      });
      try {
        expect(hook.call(c.dr, 0, c.qa, T0, 0, 0)).toBe(-1);
      } finally {
        off();
      }
      throw inner;
    },
    throws: Error, code: 'ERR_REENTRANT', message: /^mailQueueMaintain\.call\(\) was called from inside one of its own providers/,
  },
  {
    api: 'hooks.connectionGoal.call', what: 'call() from inside its own provider',
    run: (c) => {
      const hook = c.core.hooks.connectionGoal;
      let inner: unknown = 'provider did not run';
      const off = hook.registerLast((_cl, dr, slot, sl, goal) => {
        try {
          hook.call(dr, slot, sl, goal);
          inner = 'no error';
        } catch (e) {
          inner = e;
        }
      });
      try {
        hook.call(c.dr, 0, c.qa, { value: 1 });
      } finally {
        off();
      }
      throw inner;
    },
    throws: Error, code: 'ERR_REENTRANT', message: /^connectionGoal\.call\(\)/,
  },
  {
    api: 'maintain', what: 'maintain() from inside a provider',
    run: (c) => {
      let inner: unknown = 'provider did not run';
      const off = c.core.hooks.mailQueueMaintain.registerFirst(() => {
        try {
          c.core.maintain();
          inner = 'no error';
        } catch (e) {
          inner = e;
        }
        return -1;
      });
      try {
        expect(c.core.maintain().opened).toBe(0);
      } finally {
        off();
      }
      throw inner;
    },
    throws: Error, code: 'ERR_REENTRANT', message: /^maintain\(\) was called from inside a maintenance hook/,
  },
  {
    api: 'close', what: 'close() from inside a provider',
    run: (c) => {
      let inner: unknown = 'provider did not run';
      const off = c.core.hooks.mailQueueMaintain.registerFirst(() => {
        try {
          c.core.close();
          inner = 'no error';
        } catch (e) {
          inner = e;
        }
        return -1;
      });
      try {
        c.core.maintain();
      } finally {
        off();
      }
      expect(c.core.closed).toBe(false);
      throw inner;
    },
    throws: Error, code: 'ERR_REENTRANT', message: /^close\(\) was called (?:from inside a maintenance hook|during a maintenance pass)/,
  },
  {
    api: 'close', what: 'close() from inside a provider of a direct hooks.connectionGoal.call()',
    run: (c) => {
      let inner: unknown = 'provider did not run';
      const off = c.core.hooks.connectionGoal.registerFirst(() => {
        try {
          c.core.close();
          inner = 'no error';
        } catch (e) {
          inner = e;
        }
      });
      try {
        c.core.hooks.connectionGoal.call(c.dr, 0, c.qa, { value: 1 });
      } finally {
        off();
      }
      expect(c.core.closed).toBe(false);
      throw inner;
    },
    throws: Error, code: 'ERR_REENTRANT', message: /^close\(\) was called from inside a maintenance hook/,
  },
  {
    api: 'hooks.mailQueueMaintain', what: 'a provider that returns a Promise (reported, not thrown)',
    run: (c) => {
      const hook = c.core.hooks.mailQueueMaintain;
      const offs = [hook.registerLast(async () => 5), hook.registerLast(() => -1)];
      try {
        return hook.call(c.dr, 0, c.qa, T0, 0, 0);
      } finally {
        offs.forEach((off) => off());
      }
    },
    returns: -1, reported: /^mailQueueMaintain provider returned a Promise \(providers must be synchronous\) \(x\.com\/a\)/,
  },
  {
    api: 'hooks.mailQueueMaintain', what: 'a provider that throws (reported, not thrown)',
    run: (c) => {
      const hook = c.core.hooks.mailQueueMaintain;
      const offs = [hook.registerFirst(() => { throw new TypeError('boom'); }), hook.registerLast(() => -1)];
      try {
        return hook.call(c.dr, 1, c.qb, T0, 0, 0);
      } finally {
        offs.forEach((off) => off());
      }
    },
    returns: -1, reported: /^mailQueueMaintain provider threw \(x\.com\/b\): boom/,
  },
  {
    api: 'hooks.mailQueueMaintain', what: 'a provider that returns a string (reported, not thrown)',
    run: (c) => {
      const hook = c.core.hooks.mailQueueMaintain;
      const offs = [hook.registerFirst(() => 'lots'), hook.registerLast(() => -1)];
      try {
        return hook.call(c.dr, 0, c.qa, T0, 0, 0);
      } finally {
        offs.forEach((off) => off());
      }
    },
    returns: -1, reported: /^mailQueueMaintain provider returned string, not a number/,
  },
  {
    api: 'hooks.preMailQueueMaintainDomain', what: 'a provider that returns a Promise during maintain() (reported)',
    run: (c) => {
      const offs = [
        c.core.hooks.preMailQueueMaintainDomain.registerFirst(() => Promise.reject(new Error('late'))),
        c.core.hooks.mailQueueMaintain.registerLast(() => -1),
      ];
      try {
        return c.core.maintainDomain('x.com').opened;
      } finally {
        offs.forEach((off) => off());
      }
    },
    returns: 0, reported: /^preMailQueueMaintainDomain provider returned a Promise/,
  },

  // connectionGoal()
  { api: 'connectionGoal()', what: 'maxConnections a string', run: () => connectionGoal(any('32'), 1, 0.3), throws: TypeError, message: /^maxConnections must be a number/ },
  { api: 'connectionGoal()', what: 'maxConnections -1', run: () => connectionGoal(-1, 1, 0.3), throws: RangeError, message: /^maxConnections must be an integer/ },
  { api: 'connectionGoal()', what: 'maxConnections Infinity', run: () => connectionGoal(Infinity, 1, 0.3), throws: RangeError, message: /^maxConnections must be finite/ },
  { api: 'connectionGoal()', what: 'queued -1', run: () => connectionGoal(32, -1, 0.3), throws: RangeError, message: /^queued must be an integer/ },
  { api: 'connectionGoal()', what: 'queued 2^53', run: () => connectionGoal(32, TWO53, 0.3), throws: RangeError, message: /^queued must be an integer/ },
  { api: 'connectionGoal()', what: 'aggressiveness 0', run: () => connectionGoal(32, 1, 0), throws: RangeError, message: /^aggressiveness must be in \(0, 1\]/ },
  { api: 'connectionGoal()', what: 'aggressiveness NaN', run: () => connectionGoal(32, 1, NaN), throws: RangeError, message: /^aggressiveness must not be NaN/ },
  { api: 'connectionGoal()', what: 'aggressiveness 1.5', run: () => connectionGoal(32, 1, 1.5), throws: RangeError, message: /^aggressiveness must be in \(0, 1\]/ },

  // anything after close()
  ...([
    ['enqueue', (c: Ctx) => c.closed.enqueue({ id: 2, domain: 'x.com' })],
    ['enqueueBatch', (c: Ctx) => c.closed.enqueueBatch('x.com', 'a', Float64Array.of(2))],
    ['cancel', (c: Ctx) => c.closed.cancel(1)],
    ['cancelMany', (c: Ctx) => c.closed.cancelMany(Float64Array.of(1))],
    ['message', (c: Ctx) => c.closed.message(1)],
    ['take', (c: Ctx) => c.closed.take('x.com', 'a')],
    ['takeInto', (c: Ctx) => c.closed.takeInto('x.com', 'a', new Float64Array(1))],
    ['takeFor', (c: Ctx) => c.closed.takeFor(1, new Float64Array(1))],
    ['settle', (c: Ctx) => c.closed.settle(1)],
    ['defer', (c: Ctx) => c.closed.defer(1, T0)],
    ['untake', (c: Ctx) => c.closed.untake(1)],
    ['domain', (c: Ctx) => c.closed.domain('x.com')],
    ['domains', (c: Ctx) => c.closed.domains()],
    ['hasDomain', (c: Ctx) => c.closed.hasDomain('x.com')],
    ['activeQueue', (c: Ctx) => c.closed.activeQueue('x.com', 'a')],
    ['suspend', (c: Ctx) => c.closed.suspend('x.com')],
    ['resume', (c: Ctx) => c.closed.resume('x.com')],
    ['maintain', (c: Ctx) => c.closed.maintain()],
    ['maintainDomain', (c: Ctx) => c.closed.maintainDomain('x.com')],
    ['openConnections', (c: Ctx) => c.closed.openConnections('x.com', 'a', 1)],
    ['releaseConnection', (c: Ctx) => c.closed.releaseConnection(1)],
    ['defaultMailQueueMaintain', (c: Ctx) => c.closed.defaultMailQueueMaintain(c.closedDr, 0, c.closedQ, T0, 0, 0)],
    ['stats', (c: Ctx) => c.closed.stats()],
    ['checkInvariants', (c: Ctx) => c.closed.checkInvariants()],
    ['hooks.mailQueueMaintain.registerFirst', (c: Ctx) => c.closed.hooks.mailQueueMaintain.registerFirst(() => 0)],
    ['hooks.connectionGoal.registerLast', (c: Ctx) => c.closed.hooks.connectionGoal.registerLast(() => undefined)],
    ['hooks.mailQueueMaintain.call', (c: Ctx) => c.closed.hooks.mailQueueMaintain.call(c.closedDr, 0, c.closedQ, T0, 0, 0)],
    ['hooks.postMailQueueMaintainDomain.call', (c: Ctx) => c.closed.hooks.postMailQueueMaintainDomain.call(c.closedDr, T0, { value: 0 })],
    ['DomainRecord.activeSize', (c: Ctx) => c.closedDr.activeSize()],
    ['DomainRecord.delayedSize', (c: Ctx) => c.closedDr.delayedSize],
    ['DomainRecord.toJSON', (c: Ctx) => c.closedDr.toJSON()],
    ['ActiveQueue.size', (c: Ctx) => c.closedQ.size],
    ['ActiveQueue.peek', (c: Ctx) => c.closedQ.peek()],
    ['ActiveQueue.toArray', (c: Ctx) => c.closedQ.toArray()],
    ['ActiveQueue.remove', (c: Ctx) => c.closedQ.remove(1)],
    ['ActiveQueue.has', (c: Ctx) => c.closedQ.has(1)],
  ] as const).map(([api, run]): Row => ({ api, what: 'after close()', run, throws: Error, code: 'ERR_CLOSED', message: /^the core is closed/ })),
];

function assertThrows(row: ThrowsRow, c: Ctx): void {
  let thrown: unknown;
  let threw = false;
  try {
    row.run(c);
  } catch (e) {
    threw = true;
    thrown = e;
  }
  expect(threw, 'the call must throw').toBe(true);
  expect(thrown).toBeInstanceOf(Error);
  const err = thrown as Error & { code?: unknown };
  // Exactly the class: a RangeError is not accepted where a TypeError is expected, nor the reverse.
  expect(err.constructor, `${err.constructor.name}: ${err.message}`).toBe(row.throws);
  expect(err.code).toBe(row.code);
  if (row.message) expect(err.message).toMatch(row.message);
  expect(err.message.length, 'the message must not echo megabytes of input').toBeLessThan(500);
}

function runRow(row: Row): void {
  const c = makeCtx();
  const proto = protoSnapshot();
  const before = stateOf(c.core);
  const otherBefore = stateOf(c.other);
  try {
    if ('throws' in row) {
      assertThrows(row, c);
      expect(c.events).toEqual([]);
    } else {
      expect(row.run(c)).toBe(row.returns);
      expect(c.events).toHaveLength(1);
      const ev = c.events[0];
      expect(ev).toBeInstanceOf(HookError);
      expect((ev as HookError).code).toBe('ERR_HOOK_FAILED');
      expect((ev as HookError).domain).toBe('x.com');
      expect((ev as HookError).message).toMatch(row.reported);
    }
    expect(c.core.closed).toBe(false);
    expect(stateOf(c.core)).toEqual(before);
    expect(stateOf(c.other)).toEqual(otherBefore);
    expect(c.closed.closed).toBe(true);
    assertNoPollution(proto);
  } finally {
    c.core.close();
    c.other.close();
  }
}

describe('public API: bad calls throw the documented error and change nothing', () => {
  test('the table has at least 60 rows, and every row names an API and a case', () => {
    expect(rows.length).toBeGreaterThanOrEqual(60);
    for (const r of rows) expect(r.api.length * r.what.length).toBeGreaterThan(0);
    const names = rows.map((r) => `${r.api}: ${r.what}`);
    expect(new Set(names).size).toBe(names.length);
  });

  for (const row of rows) {
    test(`${row.api}: ${row.what}`, () => runRow(row));
  }

  test('the fixture is what the rows assume (so that a row cannot pass by accident)', () => {
    const c = makeCtx();
    try {
      expect(c.core.message(c.active)?.state).toBe('active');
      expect(c.core.message(c.delayed)?.state).toBe('delayed');
      expect(c.core.message(c.inFlight)?.state).toBe('in-flight');
      expect(c.core.message(100)).toBeUndefined();
      expect(c.core.hasDomain('nope.example')).toBe(false);
      expect(c.core.hasDomain('new.example')).toBe(false);
      expect(c.core.stats().connections).toBeGreaterThan(0);
      expect(c.dr.connections('a')).toBeGreaterThan(0);
      // The same calls with good arguments do change the state: the state check can fail.
      const before = stateOf(c.core);
      c.core.enqueue({ id: 100, domain: 'x.com' });
      expect(stateOf(c.core)).not.toEqual(before);
      c.core.enqueueBatch('new.example', 'a', Float64Array.of(101, 102), Uint8Array.of(0, 1));
      expect(c.core.hasDomain('new.example')).toBe(true);
      c.core.releaseConnection(c.conn);
      expect(() => c.core.releaseConnection(c.conn)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_CONNECTION' }));
      expect(c.core.checkInvariants()).toBe(true);
    } finally {
      c.core.close();
      c.other.close();
    }
    // ... and the pollution check sees a polluted Object.prototype.
    const proto = protoSnapshot();
    Object.defineProperty(Object.prototype, 'x', { value: 1, configurable: true, enumerable: false });
    try {
      expect(() => assertNoPollution(proto)).toThrow();
    } finally {
      delete (Object.prototype as Record<string, unknown>).x;
    }
    assertNoPollution(proto);
  });

  test('a config that uses __proto__ / constructor / prototype as domain names is held in a map, not on Object.prototype', () => {
    const proto = protoSnapshot();
    const core = new MailQueueCore({
      config: {
        domains: {
          ...JSON.parse('{"__proto__": {"maxOutboundConnections": 1}}'),
          constructor: { maxOutboundConnections: 2 },
          prototype: { maxOutboundConnections: 3 },
        },
      },
      clock: () => T0,
    });
    try {
      assertNoPollution(proto);
      // Each of these names is an ordinary domain with its own limit.
      const opened = (domain: string, id: number) => {
        core.enqueueBatch(domain, undefined, Float64Array.from({ length: 50 }, (_, i) => id + i));
        return core.maintainDomain(domain, { goalsz: 100 }).opened;
      };
      expect(opened('__proto__', 1000)).toBe(1);
      expect(opened('constructor', 2000)).toBe(2);
      expect(opened('prototype', 3000)).toBe(3);
      expect(opened('other.example', 4000)).toBe(32);
      expect(core.checkInvariants()).toBe(true);
      assertNoPollution(proto);
    } finally {
      core.close();
    }
  });
});

// --- the raw addon --------------------------------------------------------------------------------

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

function detached(kind: 'f64' | 'u8' | 'u32' | 'i32' = 'f64', n = 8): Float64Array | Uint8Array | Uint32Array | Int32Array {
  const a = kind === 'f64' ? new Float64Array(n) : kind === 'u8' ? new Uint8Array(n) : kind === 'u32' ? new Uint32Array(n) : new Int32Array(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  expect(a.buffer.byteLength).toBe(0);
  return a;
}

function makeRaw(): RawCtx {
  const h = native.createCore(Float64Array.of(2, 1, 100, 10), Int32Array.of(0, -1), Float64Array.of(Infinity, 50), Float64Array.of(Infinity));
  const counters = new Float64Array(native.countersBuffer(h));
  const d = native.addDomain(h, Float64Array.of(32, 0.3, -1, 0, 32, 0.3, -1, 0), Infinity, Float64Array.of(Infinity));
  native.enqueueBatch(h, d, 0, Float64Array.of(1, 2, 3), null, T0, Infinity, T0);
  native.enqueue(h, d, 1, 4, 1, T0, Infinity, T0);
  native.enqueue(h, d, 0, 5, 0, T0 + 1e6, Infinity, T0);
  expect(native.take(h, d, 0, T0, new Float64Array(1))).toBe(1);
  expect(native.openConnections(h, d, 1, 1, 0, T0)).toBe(1);
  const grants = new Float64Array(30);
  expect(native.drainGrants(h, grants)).toBe(1);
  const dead = native.createCore(Float64Array.of(1, 0, 10, 0), Int32Array.of(-1), Float64Array.of(Infinity), new Float64Array(0));
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

const cc = (...a: unknown[]) => () => raw.createCore(...a);
const F = Float64Array;
const goodCfg = () => F.of(1, 0, 10, 0);

const rawRows: RawRow[] = [
  // createCore
  { what: 'createCore()', run: cc(), throws: TypeError, message: /^config must be a Float64Array/ },
  { what: 'createCore: config a Float32Array', run: cc(Float32Array.of(1, 0, 10, 0), Int32Array.of(-1), F.of(Infinity), new F(0), new F(16)), throws: TypeError, message: /^config/ },
  { what: 'createCore: config of 3 entries', run: cc(F.of(1, 0, 10), Int32Array.of(-1), F.of(Infinity), new F(0), new F(16)), throws: RangeError, message: /^config must have 4 entries/ },
  { what: 'createCore: 0 bindings', run: cc(F.of(0, 0, 10, 0), new Int32Array(0), new F(0), new F(0), new F(16)), throws: RangeError, message: /^bindings/ },
  { what: 'createCore: NaN bindings', run: cc(F.of(NaN, 0, 10, 0), Int32Array.of(-1), F.of(Infinity), new F(0), new F(16)), throws: RangeError, message: /^bindings/ },
  { what: 'createCore: 1e6 bindings', run: cc(F.of(1e6, 0, 10, 0), Int32Array.of(-1), F.of(Infinity), new F(0), new F(16)), throws: RangeError, message: /^bindings/ },
  { what: 'createCore: serverMax -1', run: cc(F.of(1, 0, -1, 0), Int32Array.of(-1), F.of(Infinity), new F(0), new F(16)), throws: RangeError, message: /^serverMax/ },
  { what: 'createCore: groupOfBinding a Uint32Array', run: cc(goodCfg(), Uint32Array.of(0), F.of(Infinity), new F(0), new F(16)), throws: TypeError, message: /^groupOfBinding must be a Int32Array/ },
  { what: 'createCore: groupOfBinding names a missing group', run: cc(goodCfg(), Int32Array.of(5), F.of(Infinity), new F(0), new F(16)), throws: RangeError, message: /^groupOfBinding/ },
  { what: 'createCore: groupOfBinding of the wrong length', run: cc(goodCfg(), Int32Array.of(-1, -1), F.of(Infinity), new F(0), new F(16)), throws: RangeError, message: /groupOfBinding/ },
  { what: 'createCore: bindingMax -1', run: cc(goodCfg(), Int32Array.of(-1), F.of(-1), new F(0), new F(16)), throws: RangeError, message: /^bindingMax/ },
  { what: 'createCore: bindingMax NaN', run: cc(goodCfg(), Int32Array.of(-1), F.of(NaN), new F(0), new F(16)), throws: RangeError, message: /^bindingMax/ },
  { what: 'createCore: config detached', run: () => raw.createCore(detached('f64', 4), Int32Array.of(-1), F.of(Infinity), new F(0), new F(16)), throws: TypeError, message: /^config is detached/ },
  { what: 'countersBuffer on a destroyed core', run: (r) => raw.countersBuffer(r.dead), throws: Error, code: 'ERR_CLOSED' },
  { what: 'countersBuffer on a made-up handle', run: () => raw.countersBuffer(12345), throws: Error, code: 'ERR_CLOSED' },
  { what: 'countersBuffer on handle a string', run: () => raw.countersBuffer('0'), throws: TypeError, message: /^core handle must be a number/ },
  { what: 'countersBuffer with no handle', run: () => raw.countersBuffer(), throws: TypeError, message: /^core handle must be a number/ },
  // made-up, dead and malformed handles
  { what: 'enqueue on a made-up handle 12345', run: () => raw.enqueue(12345, 0, 0, 100, 0, T0, Infinity, T0), throws: Error, code: 'ERR_CLOSED' },
  { what: 'enqueue on handle -1', run: () => raw.enqueue(-1, 0, 0, 100, 0, T0, Infinity, T0), throws: Error, code: 'ERR_CLOSED' },
  { what: 'enqueue on handle NaN', run: () => raw.enqueue(NaN, 0, 0, 100, 0, T0, Infinity, T0), throws: Error, code: 'ERR_CLOSED' },
  { what: 'enqueue on handle Infinity', run: () => raw.enqueue(Infinity, 0, 0, 100, 0, T0, Infinity, T0), throws: Error, code: 'ERR_CLOSED' },
  { what: 'enqueue on handle 2^53', run: () => raw.enqueue(TWO53, 0, 0, 100, 0, T0, Infinity, T0), throws: Error, code: 'ERR_CLOSED' },
  { what: 'enqueue on a fractional handle', run: (r) => raw.enqueue(r.h + 0.5, 0, 0, 100, 0, T0, Infinity, T0), throws: Error, code: 'ERR_CLOSED' },
  { what: 'enqueue on a destroyed core', run: (r) => raw.enqueue(r.dead, 0, 0, 100, 0, T0, Infinity, T0), throws: Error, code: 'ERR_CLOSED' },
  { what: 'enqueue on the next generation of a live slot', run: (r) => raw.enqueue(r.h + 1048576, 0, 0, 100, 0, T0, Infinity, T0), throws: Error, code: 'ERR_CLOSED' },
  { what: 'enqueue on handle a string', run: () => raw.enqueue('0', 0, 0, 100, 0, T0, Infinity, T0), throws: TypeError, message: /^core handle must be a number/ },
  { what: 'enqueue on handle an object', run: () => raw.enqueue({ valueOf: () => 0 }, 0, 0, 100, 0, T0, Infinity, T0), throws: TypeError, message: /^core handle/ },
  { what: 'checkInvariants on handle a BigInt', run: () => raw.checkInvariants(0n), throws: TypeError, message: /^core handle/ },
  { what: 'bytesReserved on a made-up handle', run: () => raw.bytesReserved(777), throws: Error, code: 'ERR_CLOSED' },
  { what: 'destroyCore("x")', run: () => raw.destroyCore('x'), throws: TypeError, message: /^core handle must be a number/ },
  { what: 'destroyCore(NaN)', run: () => raw.destroyCore(NaN), throws: RangeError, message: /^core handle must not be NaN/ },
  // out-of-range indices and values
  { what: 'enqueue: domain 999', run: (r) => raw.enqueue(r.h, 999, 0, 100, 0, T0, Infinity, T0), throws: RangeError, message: /^domain: unknown domain index 999/ },
  { what: 'enqueue: domain -1', run: (r) => raw.enqueue(r.h, -1, 0, 100, 0, T0, Infinity, T0), throws: RangeError, message: /^domain must be an integer/ },
  { what: 'enqueue: domain 2^32', run: (r) => raw.enqueue(r.h, 2 ** 32, 0, 100, 0, T0, Infinity, T0), throws: RangeError, message: /^domain must be an integer/ },
  { what: 'enqueue: binding 2', run: (r) => raw.enqueue(r.h, r.d, 2, 100, 0, T0, Infinity, T0), throws: RangeError, message: /^binding: unknown binding slot 2/ },
  { what: 'enqueue: binding 0.5', run: (r) => raw.enqueue(r.h, r.d, 0.5, 100, 0, T0, Infinity, T0), throws: RangeError, message: /^binding must be an integer/ },
  { what: 'enqueue: binding 65536', run: (r) => raw.enqueue(r.h, r.d, 65536, 100, 0, T0, Infinity, T0), throws: RangeError, message: /^binding must be an integer/ },
  { what: 'enqueue: id 2^53', run: (r) => raw.enqueue(r.h, r.d, 0, TWO53, 0, T0, Infinity, T0), throws: RangeError, message: /^id must be an integer/ },
  { what: 'enqueue: id -1', run: (r) => raw.enqueue(r.h, r.d, 0, -1, 0, T0, Infinity, T0), throws: RangeError, message: /^id must be an integer/ },
  { what: 'enqueue: priority 2', run: (r) => raw.enqueue(r.h, r.d, 0, 100, 2, T0, Infinity, T0), throws: RangeError, message: /^priority/ },
  { what: 'enqueue: priority -1 (no Uint32 wrap)', run: (r) => raw.enqueue(r.h, r.d, 0, 100, -1, T0, Infinity, T0), throws: RangeError, message: /^priority/ },
  { what: 'enqueue: nextAttempt Infinity', run: (r) => raw.enqueue(r.h, r.d, 0, 100, 0, Infinity, Infinity, T0), throws: RangeError, message: /^nextAttempt must be finite/ },
  { what: 'enqueue: nextAttempt past the range of a Date', run: (r) => raw.enqueue(r.h, r.d, 0, 100, 0, 9e15, Infinity, T0), throws: RangeError, message: /^nextAttempt must be finite and within ±8\.64e15 ms/ },
  { what: 'enqueue: now past the range of a Date', run: (r) => raw.enqueue(r.h, r.d, 0, 100, 0, T0, Infinity, -9e15), throws: RangeError, message: /^now must be finite and within/ },
  { what: 'enqueue: expiresAt NaN', run: (r) => raw.enqueue(r.h, r.d, 0, 100, 0, T0, NaN, T0), throws: RangeError, message: /^expiresAt must not be NaN/ },
  { what: 'enqueue: now a string', run: (r) => raw.enqueue(r.h, r.d, 0, 100, 0, T0, Infinity, 'now'), throws: TypeError, message: /^now must be a number/ },
  { what: 'enqueue: missing arguments', run: (r) => raw.enqueue(r.h), throws: TypeError, message: /^domain must be a number/ },
  { what: 'enqueue: duplicate id', run: (r) => raw.enqueue(r.h, r.d, 1, 1, 0, T0, Infinity, T0), throws: Error, code: 'ERR_DUPLICATE_ID' },
  { what: 'enqueueBatch: ids a Float32Array', run: (r) => raw.enqueueBatch(r.h, r.d, 0, Float32Array.of(100), null, T0, Infinity, T0), throws: TypeError, message: /^ids must be a Float64Array/ },
  { what: 'enqueueBatch: priorities an Int8Array', run: (r) => raw.enqueueBatch(r.h, r.d, 0, F.of(100), Int8Array.of(0), T0, Infinity, T0), throws: TypeError, message: /^priorities must be a Uint8Array/ },
  { what: 'enqueueBatch: priorities of the wrong length', run: (r) => raw.enqueueBatch(r.h, r.d, 0, F.of(100, 101), Uint8Array.of(0), T0, Infinity, T0), throws: RangeError, message: /^priorities must have as many entries as ids/ },
  { what: 'enqueueBatch: priorities detached', run: (r) => raw.enqueueBatch(r.h, r.d, 0, F.of(100), detached('u8', 1), T0, Infinity, T0), throws: TypeError, message: /^priorities is detached/ },
  { what: 'enqueueBatch: NaN id', run: (r) => raw.enqueueBatch(r.h, r.d, 0, F.of(100, NaN), null, T0, Infinity, T0), throws: RangeError, message: /ids\[1\]/ },
  { what: 'enqueueBatch: duplicate inside the batch', run: (r) => raw.enqueueBatch(r.h, r.d, 0, F.of(100, 100), null, T0, Infinity, T0), throws: Error, code: 'ERR_DUPLICATE_ID', message: /^ids\[1\]/ },
  { what: 'enqueueBatch: duplicate against the queue', run: (r) => raw.enqueueBatch(r.h, r.d, 1, F.of(100, 3), null, T0, Infinity, T0), throws: Error, code: 'ERR_DUPLICATE_ID', message: /^ids\[1\]/ },
  { what: 'cancel: id NaN', run: (r) => raw.cancel(r.h, NaN), throws: RangeError, message: /^id must not be NaN/ },
  { what: 'locate: out a Float32Array', run: (r) => raw.locate(r.h, 1, new Float32Array(7)), throws: TypeError, message: /^out must be a Float64Array/ },
  { what: 'locate: out of 3 entries', run: (r) => raw.locate(r.h, 1, new F(3)), throws: RangeError, message: /^out must have 7 entries/ },
  { what: 'locate: out detached', run: (r) => raw.locate(r.h, 1, detached('f64', 7)), throws: TypeError, message: /^out is detached/ },
  { what: 'activeSize: binding 99', run: (r) => raw.activeSize(r.h, r.d, 99), throws: RangeError, message: /^binding/ },
  { what: 'delayedSize: domain 1.5', run: (r) => raw.delayedSize(r.h, 1.5), throws: RangeError, message: /^domain/ },
  { what: 'peekActive: offset 2^53', run: (r) => raw.peekActive(r.h, r.d, 0, TWO53, new F(4)), throws: RangeError, message: /^offset must be an integer/ },
  { what: 'peekActive: offset -1', run: (r) => raw.peekActive(r.h, r.d, 0, -1, new F(4)), throws: RangeError, message: /^offset/ },
  { what: 'peekActive: out a Uint32Array', run: (r) => raw.peekActive(r.h, r.d, 0, 0, new Uint32Array(4)), throws: TypeError, message: /^out must be a Float64Array/ },
  { what: 'peekDelayed: offset NaN', run: (r) => raw.peekDelayed(r.h, r.d, NaN, new F(4)), throws: RangeError, message: /^offset/ },
  { what: 'removeActive: id Infinity', run: (r) => raw.removeActive(r.h, r.d, 0, Infinity), throws: RangeError, message: /^id must be finite/ },
  { what: 'take: out a Uint8Array', run: (r) => raw.take(r.h, r.d, 0, T0, new Uint8Array(8)), throws: TypeError, message: /^out must be a Float64Array/ },
  { what: 'take: now NaN', run: (r) => raw.take(r.h, r.d, 0, NaN, new F(1)), throws: RangeError, message: /^now/ },
  { what: 'settle: unknown id', run: (r) => raw.settle(r.h, 99_999), throws: Error, code: 'ERR_UNKNOWN_ID' },
  { what: 'defer: nextAttempt NaN', run: (r) => raw.defer(r.h, 1, NaN, T0), throws: RangeError, message: /^nextAttempt/ },
  { what: 'untake: id a string', run: (r) => raw.untake(r.h, '1'), throws: TypeError, message: /^id must be a number/ },
  { what: 'setAttempts: attempts 65536', run: (r) => raw.setAttempts(r.h, 1, 65536), throws: RangeError, message: /^attempts must be an integer from 0 to 65535/ },
  { what: 'setAttempts: attempts -1', run: (r) => raw.setAttempts(r.h, 1, -1), throws: RangeError, message: /^attempts/ },
  { what: 'setAttempts: attempts a string', run: (r) => raw.setAttempts(r.h, 1, '2'), throws: TypeError, message: /^attempts must be a number/ },
  { what: 'setAttempts: unknown id', run: (r) => raw.setAttempts(r.h, 99_999, 1), throws: Error, code: 'ERR_UNKNOWN_ID' },
  { what: 'dueDomains: out an Int32Array', run: (r) => raw.dueDomains(r.h, T0, new Int32Array(4)), throws: TypeError, message: /^out must be a Uint32Array/ },
  { what: 'dueDomains: out a Float64Array', run: (r) => raw.dueDomains(r.h, T0, new F(4)), throws: TypeError, message: /^out must be a Uint32Array/ },
  { what: 'computeGoal: goalsz 2^31', run: (r) => raw.computeGoal(r.h, r.d, 0, 2 ** 31), throws: RangeError, message: /^goalsz/ },
  { what: 'openConnections: goal 2^60', run: (r) => raw.openConnections(r.h, r.d, 0, 2 ** 60, 0, T0), throws: RangeError, message: /^goal must be an integer/ },
  { what: 'openConnections: reserve -1 (no Uint32 wrap)', run: (r) => raw.openConnections(r.h, r.d, 0, 1, -1, T0), throws: RangeError, message: /^reserve/ },
  { what: 'openConnections: reserve 2^32', run: (r) => raw.openConnections(r.h, r.d, 0, 1, 2 ** 32, T0), throws: RangeError, message: /^reserve/ },
  { what: 'defaultMaintain: reserve NaN', run: (r) => raw.defaultMaintain(r.h, r.d, 0, T0, 0, NaN), throws: RangeError, message: /^reserve/ },
  { what: 'maintainDomain: reserve -2', run: (r) => raw.maintainDomain(r.h, r.d, T0, 0, -2), throws: RangeError, message: /^reserve/ },
  { what: 'maintainSlice: maxDomains 0', run: (r) => raw.maintainSlice(r.h, T0, 0, false, Infinity, new Float64Array(2)), throws: RangeError, message: /^maxDomains/ },
  { what: 'maintainSlice: maxDomains 1.5', run: (r) => raw.maintainSlice(r.h, T0, 1.5, false, Infinity, new Float64Array(2)), throws: RangeError, message: /^maxDomains/ },
  { what: 'maintainSlice: fresh a number', run: (r) => raw.maintainSlice(r.h, T0, 10, any(1), Infinity, new Float64Array(2)), throws: TypeError, message: /^fresh must be a boolean/ },
  { what: 'maintainSlice: out too short', run: (r) => raw.maintainSlice(r.h, T0, 10, false, Infinity, new Float64Array(1)), throws: RangeError, message: /^out must have 2 entries/ },
  { what: 'maintainSlice: maxGrants 0', run: (r) => raw.maintainSlice(r.h, T0, 10, false, 0, new Float64Array(2)), throws: RangeError, message: /^maxGrants must be a whole number from 1/ },
  { what: 'maintainSlice: maxGrants 2.5', run: (r) => raw.maintainSlice(r.h, T0, 10, false, 2.5, new Float64Array(2)), throws: RangeError, message: /^maxGrants/ },
  { what: 'maintainSlice: maxGrants a string', run: (r) => raw.maintainSlice(r.h, T0, 10, false, any('9'), new Float64Array(2)), throws: TypeError, message: /^maxGrants must be a number/ },
  { what: 'maintainSlice: now NaN', run: (r) => raw.maintainSlice(r.h, NaN, 10, false, Infinity, new Float64Array(2)), throws: RangeError, message: /^now/ },
  { what: 'unvisitSlice: k -1', run: (r) => raw.unvisitSlice(r.h, -1), throws: RangeError, message: /^k must be an integer/ },
  { what: 'nextSlice: out too short', run: (r) => raw.nextSlice(r.h, T0, 10, false, new Uint32Array(1)), throws: RangeError, message: /^out must have at least 2 entries/ },
  { what: 'nextSlice: out a Float64Array', run: (r) => raw.nextSlice(r.h, T0, 10, false, any(new Float64Array(4))), throws: TypeError, message: /^out must be a Uint32Array/ },
  { what: 'nextSlice: maxDomains -1', run: (r) => raw.nextSlice(r.h, T0, -1, false, new Uint32Array(4)), throws: RangeError, message: /^maxDomains/ },
  { what: 'prepareVisit: domain 999', run: (r) => raw.prepareVisit(r.h, 999, T0, 0, new Uint32Array(6)), throws: RangeError, message: /^domain: unknown domain index/ },
  { what: 'prepareVisit: now NaN', run: (r) => raw.prepareVisit(r.h, r.d, NaN, 0, new Uint32Array(6)), throws: RangeError, message: /^now/ },
  { what: 'prepareVisit: goalsz 2^31', run: (r) => raw.prepareVisit(r.h, r.d, T0, 2 ** 31, new Uint32Array(6)), throws: RangeError, message: /^goalsz/ },
  { what: 'prepareVisit: out too short', run: (r) => raw.prepareVisit(r.h, r.d, T0, 0, new Uint32Array(5)), throws: RangeError, message: /^out must have three entries per binding/ },
  { what: 'visitDefault: before any prepareVisit', run: (r) => raw.visitDefault(r.h, 0, 0), throws: Error, code: 'ERR_NO_VISIT' },
  { what: 'visitDefault: binding 2 of 2', run: (r) => raw.visitDefault(r.h, 2, 0), throws: RangeError, message: /^binding: unknown binding slot/ },
  { what: 'visitDefault: binding -1', run: (r) => raw.visitDefault(r.h, -1, 0), throws: RangeError, message: /^binding/ },
  { what: 'visitDefault: reserve 2^32', run: (r) => raw.visitDefault(r.h, 0, 2 ** 32), throws: RangeError, message: /^reserve/ },
  { what: 'visitDefault: reserve a string', run: (r) => raw.visitDefault(r.h, 0, any('1')), throws: TypeError, message: /^reserve/ },
  { what: 'visitDefault on a destroyed core', run: (r) => raw.visitDefault(r.dead, 0, 0), throws: Error, code: 'ERR_CLOSED' },
  { what: 'prepareVisit: out a Float64Array', run: (r) => raw.prepareVisit(r.h, r.d, T0, 0, any(new Float64Array(6))), throws: TypeError, message: /^out must be a Uint32Array/ },
  { what: 'reserveFor: binding 99', run: (r) => raw.reserveFor(r.h, r.d, 99), throws: RangeError, message: /^binding/ },
  { what: 'releaseConnection: id 0', run: (r) => raw.releaseConnection(r.h, 0), throws: RangeError, message: /^connectionId/ },
  { what: 'releaseConnection: unknown id', run: (r) => raw.releaseConnection(r.h, r.conn + 1000), throws: Error, code: 'ERR_UNKNOWN_CONNECTION' },
  { what: 'drainGrants: offset past out', run: (r) => raw.drainGrants(r.h, new Float64Array(6), 3), throws: RangeError, message: /^offset/ },
  { what: 'drainGrants: offset -1', run: (r) => raw.drainGrants(r.h, new Float64Array(6), -1), throws: RangeError, message: /^offset/ },
  { what: 'drainGrants: offset fractional', run: (r) => raw.drainGrants(r.h, new Float64Array(6), 0.5), throws: RangeError, message: /^offset/ },
  { what: 'drainGrants: offset a string', run: (r) => raw.drainGrants(r.h, new Float64Array(6), any('1')), throws: TypeError, message: /^offset/ },
  { what: 'drainGrants: out a Uint32Array', run: (r) => raw.drainGrants(r.h, new Uint32Array(3)), throws: TypeError, message: /^out must be a Float64Array/ },
  { what: 'drainExpired: out an object', run: (r) => raw.drainExpired(r.h, { length: 8 }), throws: TypeError, message: /^out must be a Float64Array/ },
  { what: 'pending: out of 1 entry', run: (r) => raw.pending(r.h, new F(1)), throws: RangeError, message: /^out must have 2 entries/ },
  { what: 'pending: out detached', run: (r) => raw.pending(r.h, detached('f64', 2)), throws: TypeError, message: /^out is detached/ },
  { what: 'domainInfo: out too short', run: (r) => raw.domainInfo(r.h, r.d, new F(4)), throws: RangeError, message: /^out is too short/ },
  { what: 'domainInfo: out detached', run: (r) => raw.domainInfo(r.h, r.d, detached('f64', 9)), throws: TypeError, message: /^out is detached/ },
  { what: 'groupDomainCounts: out an Int32Array', run: (r) => raw.groupDomainCounts(r.h, r.d, new Int32Array(1)), throws: TypeError, message: /^out must be a Float64Array/ },
  { what: 'setMessageThrottle: throttle 7 (none made)', run: (r) => raw.setMessageThrottle(r.h, r.d, 0, 7), throws: RangeError, message: /^throttle: unknown throttle/ },
  { what: 'setMessageThrottle: throttle -2', run: (r) => raw.setMessageThrottle(r.h, r.d, 0, -2), throws: RangeError, message: /^throttle must be an integer/ },
  { what: 'setMessageThrottle: binding 9', run: (r) => raw.setMessageThrottle(r.h, r.d, 9, -1), throws: RangeError, message: /^binding/ },
  { what: 'messageNextAllowedAt: now NaN', run: (r) => raw.messageNextAllowedAt(r.h, r.d, 0, NaN), throws: RangeError, message: /^now/ },
  { what: 'messageNextAllowedAt: domain 999', run: (r) => raw.messageNextAllowedAt(r.h, 999, 0, T0), throws: RangeError, message: /^domain/ },
  { what: 'takeFor: unknown connection', run: (r) => raw.takeFor(r.h, 424242, T0, new Float64Array(1)), throws: Error, code: 'ERR_UNKNOWN_CONNECTION', message: /^connectionId 424242/ },
  { what: 'takeFor: now NaN', run: (r) => raw.takeFor(r.h, r.conn, NaN, new Float64Array(1)), throws: RangeError, message: /^now must not be NaN/ },
  { what: 'takeFor: now past the time range', run: (r) => raw.takeFor(r.h, r.conn, 9e15, new Float64Array(1)), throws: RangeError, message: /^now/ },
  { what: 'takeFor: out an Int32Array', run: (r) => raw.takeFor(r.h, r.conn, T0, any(new Int32Array(2))), throws: TypeError, message: /^out must be a Float64Array/ },
  { what: 'takeFor: on a destroyed core', run: (r) => raw.takeFor(r.dead, r.conn, T0, new Float64Array(1)), throws: Error, code: 'ERR_CLOSED' },
  { what: 'migrateConnection: unknown connection', run: (r) => raw.migrateConnection(r.h, 424242, r.d), throws: Error, code: 'ERR_UNKNOWN_CONNECTION', message: /^connectionId 424242/ },
  { what: 'migrateConnection: connectionId 0.5', run: (r) => raw.migrateConnection(r.h, 0.5, r.d), throws: RangeError, message: /^connectionId must be an integer/ },
  { what: 'migrateConnection: domain 999', run: (r) => raw.migrateConnection(r.h, 1, 999), throws: RangeError, message: /^domain/ },
  { what: 'nextDueAt: a made-up handle', run: () => raw.nextDueAt(123456789), throws: Error, code: 'ERR_CLOSED', message: /closed/ },
  { what: 'flushDomain: now Infinity', run: (r) => raw.flushDomain(r.h, r.d, Infinity), throws: RangeError, message: /^now must be finite/ },
  { what: 'flushDomain: domain -1', run: (r) => raw.flushDomain(r.h, -1, T0), throws: RangeError, message: /^domain/ },
  { what: 'failDomain: out a Uint32Array', run: (r) => raw.failDomain(r.h, r.d, any(new Uint32Array(4))), throws: TypeError, message: /^out must be a Float64Array/ },
  { what: 'failDomain: domain 999', run: (r) => raw.failDomain(r.h, 999, new Float64Array(4)), throws: RangeError, message: /^domain/ },
  { what: 'retryNow: id -1', run: (r) => raw.retryNow(r.h, -1, T0), throws: RangeError, message: /^id must be an integer/ },
  { what: 'retryNow: now a string', run: (r) => raw.retryNow(r.h, 1, any('now')), throws: TypeError, message: /^now must be a number/ },
  { what: 'delayedByBinding: out too short', run: (r) => raw.delayedByBinding(r.h, r.d, new Float64Array(0)), throws: RangeError, message: /^out must have one entry per binding/ },
  { what: 'delayedByBinding: domain 999', run: (r) => raw.delayedByBinding(r.h, 999, new Float64Array(4)), throws: RangeError, message: /^domain/ },
  { what: 'deferBatch: ids a plain array', run: (r) => raw.deferBatch(r.h, any([1, 2]), T0, T0), throws: TypeError, message: /^ids must be a Float64Array/ },
  { what: 'deferBatch: nextAttempt NaN', run: (r) => raw.deferBatch(r.h, Float64Array.of(1), NaN, T0), throws: RangeError, message: /^nextAttempt/ },
  { what: 'deferBatch: now Infinity', run: (r) => raw.deferBatch(r.h, Float64Array.of(1), T0, Infinity), throws: RangeError, message: /^now/ },
  { what: 'deferBatch: an id never queued', run: (r) => raw.deferBatch(r.h, Float64Array.of(424242), T0, T0), throws: Error, code: 'ERR_UNKNOWN_ID', message: /^ids\[0\]/ },
  { what: 'enqueueBatch: nextAttempt array of another length', run: (r) => raw.enqueueBatch(r.h, r.d, 0, Float64Array.of(900, 901), null, Float64Array.of(T0), Infinity, T0), throws: RangeError, message: /^nextAttempts must have as many entries as ids/ },
  { what: 'enqueueBatch: nextAttempt a Float32Array', run: (r) => raw.enqueueBatch(r.h, r.d, 0, Float64Array.of(900), null, any(Float32Array.of(T0)), Infinity, T0), throws: TypeError, message: /^nextAttempts must be a Float64Array/ },
  { what: 'enqueueBatch: nextAttempt[0] NaN', run: (r) => raw.enqueueBatch(r.h, r.d, 0, Float64Array.of(900), null, Float64Array.of(NaN), Infinity, T0), throws: RangeError, message: /^nextAttempts\[0\] must be a finite number/ },
  { what: 'settleBatch: ids a plain array', run: (r) => raw.settleBatch(r.h, any([1, 2])), throws: TypeError, message: /^ids must be a Float64Array/ },
  { what: 'settleBatch: an id never queued', run: (r) => raw.settleBatch(r.h, Float64Array.of(424242)), throws: Error, code: 'ERR_UNKNOWN_ID', message: /^ids\[0\]/ },
  { what: 'settleBatch: id fractional', run: (r) => raw.settleBatch(r.h, Float64Array.of(1.5)), throws: RangeError, message: /^ids\[0\] must be a safe integer/ },
  { what: 'cancelBatch: ids a plain array', run: (r) => raw.cancelBatch(r.h, any([2, 3])), throws: TypeError, message: /^ids must be a Float64Array/ },
  { what: 'cancelBatch: ids missing', run: (r) => raw.cancelBatch(r.h), throws: TypeError, message: /^ids must be a Float64Array/ },
  { what: 'cancelBatch: ids a Float32Array', run: (r) => raw.cancelBatch(r.h, Float32Array.of(2)), throws: TypeError, message: /^ids must be a Float64Array/ },
  { what: 'cancelBatch: ids detached', run: (r) => raw.cancelBatch(r.h, detached('f64', 2)), throws: TypeError, message: /^ids is detached/ },
  { what: 'cancelBatch on a made-up handle', run: () => raw.cancelBatch(12345, F.of(2)), throws: Error, code: 'ERR_CLOSED' },
  { what: 'cancelBatch on a destroyed core', run: (r) => raw.cancelBatch(r.dead, F.of(2)), throws: Error, code: 'ERR_CLOSED' },
  { what: 'cancelBatch on handle a string', run: (r) => raw.cancelBatch(String(r.h), F.of(2)), throws: TypeError, message: /^core handle must be a number/ },
  { what: 'cancelBatch: id fractional', run: (r) => raw.cancelBatch(r.h, F.of(2, 1.5)), throws: RangeError, message: /^ids\[1\] must be a safe integer/ },
  { what: 'cancelBatch: an id in flight', run: (r) => raw.cancelBatch(r.h, F.of(2, 1, 5)), throws: Error, code: 'ERR_IN_FLIGHT', message: /^ids\[1\]/ },
  { what: 'groupCount: group 5', run: (r) => raw.groupCount(r.h, 5), throws: RangeError, message: /^group: unknown group/ },
  { what: 'groupCount: group 2^16', run: (r) => raw.groupCount(r.h, 2 ** 16), throws: RangeError, message: /^group must be an integer/ },
  { what: 'setSuspended: flag 1 (not a boolean)', run: (r) => raw.setSuspended(r.h, r.d, 0, 1), throws: TypeError, message: /^suspended must be a boolean/ },
  { what: 'addThrottle: count 0', run: (r) => raw.addThrottle(r.h, 0, 1000), throws: RangeError, message: /throttle count/ },
  { what: 'addThrottle: count 2e6', run: (r) => raw.addThrottle(r.h, 2e6, 1000), throws: RangeError, message: /^count/ },
  { what: 'addThrottle: windowMs Infinity', run: (r) => raw.addThrottle(r.h, 1, Infinity), throws: RangeError, message: /^windowMs must be finite/ },
  { what: 'addThrottle: windowMs -1', run: (r) => raw.addThrottle(r.h, 1, -1), throws: RangeError, message: /window must be positive/ },
  { what: 'addDomain: pairs of the wrong length', run: (r) => raw.addDomain(r.h, F.of(32, 0.3, -1, 0), Infinity, F.of(Infinity)), throws: RangeError, message: /^pairs\/groupScopeMax lengths/ },
  { what: 'addDomain: pairs a Float32Array', run: (r) => raw.addDomain(r.h, new Float32Array(8), Infinity, F.of(Infinity)), throws: TypeError, message: /^pairs must be a Float64Array/ },
  { what: 'addDomain: pairs detached', run: (r) => raw.addDomain(r.h, detached('f64', 8), Infinity, F.of(Infinity)), throws: TypeError, message: /^pairs is detached/ },
  { what: 'addDomain: aggressiveness 2', run: (r) => raw.addDomain(r.h, F.of(32, 2, -1, 0, 32, 0.3, -1, 0), Infinity, F.of(Infinity)), throws: RangeError, message: /^aggressiveness/ },
  { what: 'addDomain: throttle index 99', run: (r) => raw.addDomain(r.h, F.of(32, 0.3, 99, 0, 32, 0.3, -1, 0), Infinity, F.of(Infinity)), throws: RangeError, message: /^throttle index/ },
  { what: 'addDomain: maxConnections -1', run: (r) => raw.addDomain(r.h, F.of(-1, 0.3, -1, 0, 32, 0.3, -1, 0), Infinity, F.of(Infinity)), throws: RangeError, message: /^maxConnections/ },
  { what: 'addDomain: scopeMax NaN', run: (r) => raw.addDomain(r.h, F.of(32, 0.3, -1, 0, 32, 0.3, -1, 0), NaN, F.of(Infinity)), throws: RangeError, message: /^scopeMax/ },
  { what: 'addDomain: groupScopeMax -1', run: (r) => raw.addDomain(r.h, F.of(32, 0.3, -1, 0, 32, 0.3, -1, 0), Infinity, F.of(-1)), throws: RangeError, message: /^groupScopeMax/ },
  { what: 'goalCurve: maxConnections NaN', run: () => raw.goalCurve(NaN, 1, 0.3), throws: RangeError, message: /^maxConnections/ },
  { what: 'goalCurve: no arguments', run: () => raw.goalCurve(), throws: TypeError, message: /^maxConnections must be a number/ },
];

describe('raw addon functions: garbage throws TypeError / RangeError / Error, never crashes, changes nothing', () => {
  test('there are raw rows for every entry point that takes arguments', () => {
    for (const name of Object.keys(native)) {
      if (name === 'counterNames' || name === 'noop') continue; // they take no arguments
      expect(rawRows.some((r) => new RegExp(`^${name}\\b`).test(r.what)), name).toBe(true);
    }
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
    const again = native.createCore(Float64Array.of(1, 0, 10, 0), Int32Array.of(-1), Float64Array.of(Infinity), new Float64Array(0));
    try {
      expect(again).not.toBe(r.h);
      expect(again % 1048576).toBe(r.h % 1048576);
      expect(() => native.checkInvariants(r.h)).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    } finally {
      native.destroyCore(again);
    }
  });

  test('the counters buffer is the core\'s own memory: a transfer cannot detach it, and it outlives the core', () => {
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

  test('times at both ends of the range of a Date are taken; a clock past it fails the call with a TypeError', () => {
    const core = new MailQueueCore({ clock: () => T0 });
    try {
      core.enqueue({ id: 1, domain: 'x.com', nextAttempt: 8.64e15, expiresAt: Infinity });
      core.enqueue({ id: 2, domain: 'x.com', nextAttempt: -8.64e15 });
      core.enqueueBatch('x.com', undefined, Float64Array.of(3), undefined, Float64Array.of(-8.64e15));
      expect(core.message(1)?.nextAttempt).toBe(8.64e15);
      expect(core.message(3)?.nextAttempt).toBe(-8.64e15);
      expect(core.stats()).toMatchObject({ active: 2, delayed: 1 });
      expect(core.checkInvariants()).toBe(true);
    } finally {
      core.close();
    }
    let t = T0;
    const drifting = new MailQueueCore({ clock: () => t });
    try {
      drifting.enqueue({ id: 1, domain: 'x.com' });
      t = 8.64e15 + 1;
      expect(() => drifting.enqueue({ id: 2, domain: 'x.com' })).toThrow(TypeError);
      expect(() => drifting.maintain()).toThrow(/^options\.clock returned 8640000000000001, not a finite number within ±8\.64e15 ms/);
      expect(drifting.stats().active).toBe(1);
    } finally {
      drifting.close();
    }
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
