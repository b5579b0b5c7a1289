// Bad input to MailQueueCore's own methods: the constructor and its options, the config scopes,
// enqueue/enqueueBatch, the batched calls, cancel/message/settle/defer/untake, take/takeInto/takeFor,
// domain/hasDomain/activeQueue, suspend/resume, maintain/maintainDomain (their options),
// openConnections/releaseConnection, and every one of them after close(). The rows, the fixture
// they run against (one core with mail in every state) and the checks after each row (nothing
// changed, no prototype polluted) are in test/support/bad_input.ts, shared with the other
// bad-input files:
//
//   test/pass/hooks-and-views.bad-input.test.ts  hook points, DomainRecord/ActiveQueue views, connectionGoal()
//   test/pass/grant-list.bad-input.test.ts       a bad GrantList passed to maintain()
//   test/core/raw-addon.bad-input.test.ts        garbage into the raw addon functions
import { describe, expect, test } from 'vitest';

import { DomainRecord, MailQueueCore, MailQueueError, type MailQueueCoreOptions } from '../../lib/index.js';
import {
  any,
  assertNoPollution,
  type Ctx,
  makeCtx,
  MAX_SAFE,
  MB,
  protoSnapshot,
  type Row,
  rowTests,
  stateOf,
  T0,
  TWO53,
} from '../support/bad_input.js';

const ctor = (options: unknown) => () => new MailQueueCore(options as MailQueueCoreOptions);
const cfg = (config: unknown, bindings: unknown = ['a', 'b']) => ctor({ bindings, config });
const msg = (extra: Record<string, unknown>) => (c: Ctx) =>
  c.core.enqueue({ id: 100, domain: 'x.com', ...extra } as never);

const rows: Row[] = [
  // constructor and options
  {
    api: 'constructor',
    what: 'options null',
    run: ctor(null),
    throws: TypeError,
    message: /^options must be an object/,
  },
  {
    api: 'constructor',
    what: 'options a number',
    run: ctor(42),
    throws: TypeError,
    message: /^options must be an object/,
  },
  {
    api: 'constructor',
    what: 'options an array',
    run: ctor([]),
    throws: TypeError,
    message: /^options must be an object/,
  },
  {
    api: 'constructor',
    what: 'unknown option',
    run: ctor({ bogus: 1 }),
    throws: RangeError,
    message: /^options: unknown option "bogus"/,
  },
  {
    api: 'constructor',
    what: 'options.__proto__ (JSON)',
    run: ctor(JSON.parse('{"__proto__": {"x": 1}}')),
    throws: RangeError,
    message: /^options: unknown option "__proto__"/,
  },
  {
    api: 'constructor',
    what: 'clock not a function',
    run: ctor({ clock: 5 }),
    throws: TypeError,
    message: /^options\.clock must be a function/,
  },
  {
    api: 'constructor',
    what: 'bindings a string',
    run: ctor({ bindings: 'a' }),
    throws: TypeError,
    message: /^bindings must be an array/,
  },
  {
    api: 'constructor',
    what: 'bindings empty',
    run: ctor({ bindings: [] }),
    throws: RangeError,
    message: /^bindings must have 1 to 65535 entries/,
  },
  {
    api: 'constructor',
    what: 'binding listed twice',
    run: ctor({ bindings: ['a', 'a'] }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^bindings\[1\]: binding a is listed twice/,
  },
  {
    api: 'constructor',
    what: 'binding a number',
    run: ctor({ bindings: [5] }),
    throws: TypeError,
    message: /^bindings\[0\] must be a name/,
  },
  {
    api: 'constructor',
    what: 'binding name of 1 MB',
    run: ctor({ bindings: [MB] }),
    throws: RangeError,
    message: /^bindings\[0\] must be 1 to 64/,
  },
  {
    api: 'constructor',
    what: 'binding spec with a constructor key',
    run: ctor({ bindings: [{ name: 'a', constructor: 1 }] }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^bindings\[0\]: unknown option "constructor"/,
  },
  {
    api: 'constructor',
    what: 'binding spec with a __proto__ key (JSON)',
    run: ctor({ bindings: [JSON.parse('{"name": "a", "__proto__": {"x": 1}}')] }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^bindings\[0\]: unknown option "__proto__"/,
  },
  {
    api: 'constructor',
    what: 'binding group of 1 MB',
    run: ctor({ bindings: [{ name: 'a', group: MB }] }),
    throws: RangeError,
    message: /^bindings\[0\]\.group must be 1 to 64/,
  },

  // config scopes
  { api: 'config', what: 'config a number', run: cfg(5), throws: TypeError, message: /^config must be a plain object/ },
  {
    api: 'config',
    what: 'config a Map',
    run: cfg(new Map()),
    throws: TypeError,
    message: /^config must be a plain object/,
  },
  {
    api: 'config',
    what: 'unknown scope',
    run: cfg({ bogus: {} }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^config: unknown scope "bogus"/,
  },
  {
    api: 'config',
    what: '__proto__ scope (JSON)',
    run: cfg(JSON.parse('{"__proto__": {"x": 1}}')),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^config: unknown scope "__proto__"/,
  },
  {
    api: 'config',
    what: 'constructor scope',
    run: cfg({ constructor: {} }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^config: unknown scope "constructor"/,
  },
  {
    api: 'config',
    what: 'prototype scope',
    run: cfg({ prototype: {} }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^config: unknown scope "prototype"/,
  },
  {
    api: 'config',
    what: 'global: __proto__ key (JSON)',
    run: cfg({ global: JSON.parse('{"__proto__": {"x": 1}}') }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^config\.global: unknown option "__proto__"/,
  },
  {
    api: 'config',
    what: 'global: constructor key',
    run: cfg({ global: { constructor: 1 } }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^config\.global: unknown option "constructor"/,
  },
  {
    api: 'config',
    what: 'global: prototype key',
    run: cfg({ global: { prototype: 1 } }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^config\.global: unknown option "prototype"/,
  },
  {
    api: 'config',
    what: 'global not a plain object (class instance)',
    run: cfg({ global: new (class X {})() }),
    throws: TypeError,
    message: /^config\.global must be a plain object/,
  },
  {
    api: 'config',
    what: 'domains: __proto__ scope carrying a bad key (JSON)',
    run: cfg({ domains: JSON.parse('{"__proto__": {"x": 1}}') }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^config\.domains\.__proto__: unknown option "x"/,
  },
  {
    api: 'config',
    what: 'domains: constructor scope carrying a bad key',
    run: cfg({ domains: { constructor: { polluted: 1 } } }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^config\.domains\.constructor: unknown option "polluted"/,
  },
  {
    api: 'config',
    what: 'bindings: __proto__ binding (JSON)',
    run: cfg({ bindings: JSON.parse('{"__proto__": {}}') }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^config\.bindings: binding "__proto__" is not declared/,
  },
  {
    api: 'config',
    what: 'bindingGroups: constructor group',
    run: cfg({ bindingGroups: { constructor: {} } }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^config\.bindingGroups: binding group "constructor" is not declared/,
  },
  {
    api: 'config',
    what: 'bindings.a.domains.__proto__ bad key (JSON)',
    run: cfg({ bindings: { a: { domains: JSON.parse('{"__proto__": {"x": 1}}') } } }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^config\.bindings\.a\.domains\.__proto__: unknown option "x"/,
  },
  {
    api: 'config',
    what: 'maxOutboundConnections negative',
    run: cfg({ global: { maxOutboundConnections: -1 } }),
    throws: RangeError,
    message: /^config\.global\.maxOutboundConnections must be an integer/,
  },
  {
    api: 'config',
    what: 'maxOutboundConnections NaN',
    run: cfg({ global: { maxOutboundConnections: NaN } }),
    throws: RangeError,
    message: /^config\.global\.maxOutboundConnections/,
  },
  {
    api: 'config',
    what: 'maxOutboundConnections Infinity',
    run: cfg({ domains: { 'x.com': { maxOutboundConnections: Infinity } } }),
    throws: RangeError,
    message: /^config\.domains\.x\.com\.maxOutboundConnections/,
  },
  {
    api: 'config',
    what: 'maxOutboundConnections fractional',
    run: cfg({ bindings: { a: { maxOutboundConnections: 1.5 } } }),
    throws: RangeError,
    message: /^config\.bindings\.a\.maxOutboundConnections/,
  },
  {
    api: 'config',
    what: 'maxOutboundConnections a string',
    run: cfg({ global: { maxOutboundConnections: '5' } }),
    throws: TypeError,
    message: /^config\.global\.maxOutboundConnections must be a number/,
  },
  {
    api: 'config',
    what: 'outboundThrottleConnections malformed "N/secs"',
    run: cfg({ global: { outboundThrottleConnections: '5/x' } }),
    throws: RangeError,
    message: /^config\.global\.outboundThrottleConnections must be "N" or "N\/secs"/,
  },
  {
    api: 'config',
    what: 'outboundThrottleConnections -Infinity',
    run: cfg({ global: { outboundThrottleConnections: -Infinity } }),
    throws: RangeError,
    message: /^config\.global\.outboundThrottleConnections/,
  },
  {
    api: 'config',
    what: 'outboundThrottleConnections "0/1"',
    run: cfg({ global: { outboundThrottleConnections: '0/1' } }),
    throws: RangeError,
    message: /^config\.global\.outboundThrottleConnections: N must be/,
  },
  {
    api: 'config',
    what: 'aggressiveness unknown word',
    run: cfg({ global: { connectionAllocationAggressiveness: 'extreme' } }),
    throws: TypeError,
    message: /^config\.global\.connectionAllocationAggressiveness/,
  },
  {
    api: 'config',
    what: 'aggressiveness 0',
    run: cfg({ global: { connectionAllocationAggressiveness: 0 } }),
    throws: RangeError,
    message: /^config\.global\.connectionAllocationAggressiveness/,
  },
  {
    api: 'config',
    what: 'messageExpiration negative',
    run: cfg({ global: { messageExpiration: -1 } }),
    throws: RangeError,
    message: /^config\.global\.messageExpiration must be a positive number/,
  },
  {
    api: 'config',
    what: 'suspendDelivery a string',
    run: cfg({ global: { suspendDelivery: 'yes' } }),
    throws: TypeError,
    message: /^config\.global\.suspendDelivery must be a boolean/,
  },
  {
    api: 'config',
    what: 'global-only option in a domain scope',
    run: cfg({ domains: { 'x.com': { serverReserveOutboundConnections: 1 } } }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^config\.domains\.x\.com: serverReserveOutboundConnections is not valid in domain scope/,
  },
  // the Host scope (decision 47)
  {
    api: 'config',
    what: 'hosts: an unknown option',
    run: cfg({ hosts: { 'MX.Example.net': { maxConnections: 1 } } }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^config\.hosts\.mx\.example\.net: unknown option "maxConnections"/,
  },
  {
    api: 'config',
    what: 'hosts: a negative cap',
    run: cfg({ hosts: { 'mx.example.net': { maxOutboundConnections: -1 } } }),
    throws: RangeError,
    message: /^config\.hosts\.mx\.example\.net\.maxOutboundConnections must be an integer from 0/,
  },
  {
    api: 'config',
    what: 'hosts: a key that is no host name',
    run: cfg({ hosts: { 'mx example': { maxOutboundConnections: 1 } } }),
    throws: RangeError,
    message: /^config\.hosts key is not a host name or IP address/,
  },
  {
    api: 'config',
    what: 'hosts: one host twice (case)',
    run: cfg({ hosts: { 'mx.example.net': {}, 'MX.example.net.': {} } }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^config\.hosts: host mx\.example\.net is configured twice/,
  },
  {
    api: 'config',
    what: 'hosts: an entry that is not a plain object',
    run: cfg({ hosts: { '192.0.2.1': 3 } }),
    throws: TypeError,
    message: /^config\.hosts\.192\.0\.2\.1 must be a plain object/,
  },
  {
    api: 'config',
    what: 'binding::host: a cap that is a string',
    run: cfg({ bindings: { a: { hosts: { 'mx.example.net': { maxOutboundConnections: '2' } } } } }),
    throws: TypeError,
    message: /^config\.bindings\.a\.hosts\.mx\.example\.net\.maxOutboundConnections must be a number/,
  },
  {
    api: 'config',
    what: 'hosts in a binding group scope',
    run: cfg({ bindingGroups: { g: { hosts: { 'mx.example.net': { maxOutboundConnections: 1 } } } } }, [
      { name: 'a', group: 'g' },
    ]),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^config\.bindingGroups\.g: hosts is not valid in group scope/,
  },
  {
    api: 'config',
    what: 'hosts in a domain scope',
    run: cfg({ domains: { 'x.com': { hosts: {} } } }),
    throws: MailQueueError,
    code: 'ERR_CONFIG',
    message: /^config\.domains\.x\.com: unknown option "hosts"/,
  },
  {
    api: 'config',
    what: 'domain key of 1 MB',
    run: cfg({ domains: { [MB]: {} } }),
    throws: RangeError,
    message: /^config\.domains key must be 1 to 253 characters/,
  },
  {
    api: 'config',
    what: 'domain key not a domain',
    run: cfg({ domains: { 'not a domain': {} } }),
    throws: RangeError,
    message: /^config\.domains key is not a domain name/,
  },

  // enqueue
  {
    api: 'enqueue',
    what: 'message null',
    run: (c) => c.core.enqueue(any(null)),
    throws: TypeError,
    message: /^message must be an object/,
  },
  {
    api: 'enqueue',
    what: 'message a string',
    run: (c) => c.core.enqueue(any('x.com')),
    throws: TypeError,
    message: /^message must be an object/,
  },
  {
    api: 'enqueue',
    what: 'unknown message key',
    run: msg({ bogus: 1 }),
    throws: RangeError,
    message: /^message: unknown key "bogus"/,
  },
  {
    api: 'enqueue',
    what: 'message key __proto__ (JSON)',
    run: (c) => c.core.enqueue(JSON.parse('{"id": 100, "domain": "x.com", "__proto__": {"x": 1}}')),
    throws: RangeError,
    message: /^message: unknown key "__proto__"/,
  },
  {
    api: 'enqueue',
    what: 'message key constructor',
    run: msg({ constructor: 1 }),
    throws: RangeError,
    message: /^message: unknown key "constructor"/,
  },
  {
    api: 'enqueue',
    what: 'id a string',
    run: msg({ id: '100' }),
    throws: TypeError,
    message: /^message\.id must be a number/,
  },
  {
    api: 'enqueue',
    what: 'id a BigInt',
    run: msg({ id: 100n }),
    throws: TypeError,
    message: /^message\.id must be a number/,
  },
  {
    api: 'enqueue',
    what: 'id missing',
    run: (c) => c.core.enqueue(any({ domain: 'x.com' })),
    throws: TypeError,
    message: /^message\.id must be a number/,
  },
  {
    api: 'enqueue',
    what: 'id NaN',
    run: msg({ id: NaN }),
    throws: RangeError,
    message: /^message\.id must be a safe integer/,
  },
  {
    api: 'enqueue',
    what: 'id Infinity',
    run: msg({ id: Infinity }),
    throws: RangeError,
    message: /^message\.id must be a safe integer/,
  },
  {
    api: 'enqueue',
    what: 'id -Infinity',
    run: msg({ id: -Infinity }),
    throws: RangeError,
    message: /^message\.id must be a safe integer/,
  },
  {
    api: 'enqueue',
    what: 'id negative',
    run: msg({ id: -1 }),
    throws: RangeError,
    message: /^message\.id must be a safe integer/,
  },
  {
    api: 'enqueue',
    what: 'id fractional',
    run: msg({ id: 1.5 }),
    throws: RangeError,
    message: /^message\.id must be a safe integer/,
  },
  {
    api: 'enqueue',
    what: 'id 2^53 (above 2^53-1)',
    run: msg({ id: TWO53 }),
    throws: RangeError,
    message: /^message\.id must be a safe integer/,
  },
  {
    api: 'enqueue',
    what: 'id 2^64',
    run: msg({ id: 2 ** 64 }),
    throws: RangeError,
    message: /^message\.id must be a safe integer/,
  },
  {
    api: 'enqueue',
    what: 'domain a number',
    run: msg({ domain: 5 }),
    throws: TypeError,
    message: /^message\.domain must be a string/,
  },
  {
    api: 'enqueue',
    what: 'domain empty',
    run: msg({ domain: '' }),
    throws: RangeError,
    message: /^message\.domain must be 1 to 253 characters/,
  },
  {
    api: 'enqueue',
    what: 'domain of 1 MB',
    run: msg({ domain: MB }),
    throws: RangeError,
    message: /^message\.domain must be 1 to 253 characters, got 1048576/,
  },
  {
    api: 'enqueue',
    what: 'domain not a domain name',
    run: msg({ domain: 'x .com' }),
    throws: RangeError,
    message: /^message\.domain is not a domain name/,
  },
  {
    api: 'enqueue',
    what: 'unknown binding name',
    run: msg({ binding: 'nope' }),
    throws: RangeError,
    message: /^message\.binding: unknown binding "nope"/,
  },
  {
    api: 'enqueue',
    what: 'binding slot out of range',
    run: msg({ binding: 2 }),
    throws: RangeError,
    message: /^message\.binding: no binding slot 2/,
  },
  {
    api: 'enqueue',
    what: 'binding slot fractional',
    run: msg({ binding: 0.5 }),
    throws: RangeError,
    message: /^message\.binding: no binding slot/,
  },
  {
    api: 'enqueue',
    what: 'binding an object',
    run: msg({ binding: {} }),
    throws: TypeError,
    message: /^message\.binding must be a binding name or slot/,
  },
  {
    api: 'enqueue',
    what: 'binding name of 1 MB',
    run: msg({ binding: MB }),
    throws: RangeError,
    message: /^message\.binding: unknown binding "a{80}"$/,
  },
  {
    api: 'enqueue',
    what: 'priority 2',
    run: msg({ priority: 2 }),
    throws: RangeError,
    message: /^message\.priority must be an integer from 0 to 1/,
  },
  {
    api: 'enqueue',
    what: 'priority NaN',
    run: msg({ priority: NaN }),
    throws: RangeError,
    message: /^message\.priority/,
  },
  {
    api: 'enqueue',
    what: 'priority a boolean',
    run: msg({ priority: true }),
    throws: TypeError,
    message: /^message\.priority must be a number/,
  },
  {
    api: 'enqueue',
    what: 'nextAttempt NaN',
    run: msg({ nextAttempt: NaN }),
    throws: RangeError,
    message: /^message\.nextAttempt must be finite/,
  },
  {
    api: 'enqueue',
    what: 'nextAttempt Infinity',
    run: msg({ nextAttempt: Infinity }),
    throws: RangeError,
    message: /^message\.nextAttempt must be finite/,
  },
  {
    api: 'enqueue',
    what: 'nextAttempt past the range of a Date',
    run: msg({ nextAttempt: 8.64e15 + 1 }),
    throws: RangeError,
    message: /^message\.nextAttempt must be finite and within ±8\.64e15 ms/,
  },
  {
    api: 'enqueue',
    what: 'nextAttempt a Date',
    run: msg({ nextAttempt: new Date(T0) }),
    throws: TypeError,
    message: /^message\.nextAttempt must be a number/,
  },
  {
    api: 'enqueue',
    what: 'expiresAt NaN',
    run: msg({ expiresAt: NaN }),
    throws: RangeError,
    message: /^message\.expiresAt must be a time or Infinity/,
  },
  {
    api: 'enqueue',
    what: 'expiresAt -Infinity',
    run: msg({ expiresAt: -Infinity }),
    throws: RangeError,
    message: /^message\.expiresAt must be a time or Infinity/,
  },
  {
    api: 'enqueue',
    what: 'duplicate of an active id',
    run: (c) => c.core.enqueue({ id: c.active, domain: 'x.com' }),
    throws: MailQueueError,
    code: 'ERR_DUPLICATE_ID',
    message: /\bid 1\b/,
  },
  {
    api: 'enqueue',
    what: 'duplicate id, on another binding',
    run: (c) => c.core.enqueue({ id: c.active, domain: 'x.com', binding: 'b' }),
    throws: MailQueueError,
    code: 'ERR_DUPLICATE_ID',
    message: /\bid 1\b/,
  },
  {
    api: 'enqueue',
    what: 'duplicate of a delayed id',
    run: (c) => c.core.enqueue({ id: c.delayed, domain: 'y.com' }),
    throws: MailQueueError,
    code: 'ERR_DUPLICATE_ID',
    message: /\bid 6\b/,
  },
  {
    api: 'enqueue',
    what: 'duplicate of an in-flight id',
    run: (c) => c.core.enqueue({ id: c.inFlight, domain: 'x.com' }),
    throws: MailQueueError,
    code: 'ERR_DUPLICATE_ID',
    message: /\bid 2\b/,
  },
  {
    api: 'enqueue',
    what: 'duplicate id for a new domain (no domain is left behind)',
    run: (c) => c.core.enqueue({ id: c.active, domain: 'new.example' }),
    throws: MailQueueError,
    code: 'ERR_DUPLICATE_ID',
    message: /^message\.id 1 is already queued/,
  },

  // enqueueBatch
  {
    api: 'enqueueBatch',
    what: 'domain a number',
    run: (c) => c.core.enqueueBatch(any(5), 'a', Float64Array.of(100)),
    throws: TypeError,
    message: /^domain must be a string/,
  },
  {
    api: 'enqueueBatch',
    what: 'domain of 1 MB',
    run: (c) => c.core.enqueueBatch(MB, 'a', Float64Array.of(100)),
    throws: RangeError,
    message: /^domain must be 1 to 253 characters/,
  },
  {
    api: 'enqueueBatch',
    what: 'unknown binding',
    run: (c) => c.core.enqueueBatch('x.com', 'zz', Float64Array.of(100)),
    throws: RangeError,
    message: /^binding: unknown binding "zz"/,
  },
  {
    api: 'enqueueBatch',
    what: 'binding null',
    run: (c) => c.core.enqueueBatch('x.com', any(null), Float64Array.of(100)),
    throws: TypeError,
    message: /^binding must be a binding name or slot/,
  },
  {
    api: 'enqueueBatch',
    what: 'ids a Float32Array',
    run: (c) => c.core.enqueueBatch('x.com', 'a', any(Float32Array.of(100))),
    throws: TypeError,
    message: /^ids must be a Float64Array/,
  },
  {
    api: 'enqueueBatch',
    what: 'ids a BigInt64Array',
    run: (c) => c.core.enqueueBatch('x.com', 'a', any(BigInt64Array.of(100n))),
    throws: TypeError,
    message: /^ids must be a Float64Array/,
  },
  {
    api: 'enqueueBatch',
    what: 'ids a plain array',
    run: (c) => c.core.enqueueBatch('x.com', 'a', any([100])),
    throws: TypeError,
    message: /^ids must be a Float64Array, got an array/,
  },
  {
    api: 'enqueueBatch',
    what: 'priorities an Int8Array',
    run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100), any(Int8Array.of(0))),
    throws: TypeError,
    message: /^priorities must be a Uint8Array/,
  },
  {
    api: 'enqueueBatch',
    what: 'priorities a Uint8ClampedArray',
    run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100), any(Uint8ClampedArray.of(0))),
    throws: TypeError,
    message: /^priorities must be a Uint8Array/,
  },
  {
    api: 'enqueueBatch',
    what: 'priorities shorter than ids',
    run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100, 101), Uint8Array.of(0)),
    throws: RangeError,
    message: /^priorities must have as many entries as ids \(2\), got 1/,
  },
  {
    api: 'enqueueBatch',
    what: 'priorities longer than ids',
    run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100), Uint8Array.of(0, 1)),
    throws: RangeError,
    message: /^priorities must have as many entries as ids \(1\), got 2/,
  },
  {
    api: 'enqueueBatch',
    what: 'priorities longer than an empty ids',
    run: (c) => c.core.enqueueBatch('x.com', 'a', new Float64Array(0), Uint8Array.of(0)),
    throws: RangeError,
    message: /^priorities must have as many entries as ids \(0\)/,
  },
  {
    api: 'enqueueBatch',
    what: 'priority 2 (known domain)',
    run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100, 101), Uint8Array.of(0, 2)),
    throws: RangeError,
    message: /priorities\[1\]/,
  },
  {
    api: 'enqueueBatch',
    what: 'priority 2 (new domain)',
    run: (c) => c.core.enqueueBatch('new.example', 'a', Float64Array.of(100, 101), Uint8Array.of(0, 2)),
    throws: RangeError,
    message: /^priorities\[1\] must be 0 or 1/,
  },
  {
    api: 'enqueueBatch',
    what: 'NaN id (known domain)',
    run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100, NaN)),
    throws: RangeError,
    message: /^ids\[1\]/,
  },
  {
    api: 'enqueueBatch',
    what: 'negative id (new domain)',
    run: (c) => c.core.enqueueBatch('new.example', 'b', Float64Array.of(100, -1)),
    throws: RangeError,
    message: /^ids\[1\] must be a safe integer/,
  },
  {
    api: 'enqueueBatch',
    what: 'id 2^53 (known domain)',
    run: (c) => c.core.enqueueBatch('x.com', 'b', Float64Array.of(TWO53)),
    throws: RangeError,
    message: /^ids\[0\]/,
  },
  {
    api: 'enqueueBatch',
    what: 'fractional id (known domain)',
    run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100, 101, 0.5)),
    throws: RangeError,
    message: /^ids\[2\]/,
  },
  {
    api: 'enqueueBatch',
    what: 'Infinity id (new domain)',
    run: (c) => c.core.enqueueBatch('new.example', 'a', Float64Array.of(Infinity)),
    throws: RangeError,
    message: /^ids\[0\] must be a safe integer/,
  },
  {
    api: 'enqueueBatch',
    what: 'duplicate inside the batch (known domain)',
    run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100, 101, 100)),
    throws: MailQueueError,
    code: 'ERR_DUPLICATE_ID',
    message: /^ids\[2\]/,
  },
  {
    api: 'enqueueBatch',
    what: 'duplicate inside the batch (new domain)',
    run: (c) => c.core.enqueueBatch('new.example', 'a', Float64Array.of(100, 100)),
    throws: MailQueueError,
    code: 'ERR_DUPLICATE_ID',
    message: /^ids\[1\]: id 100 is already queued/,
  },
  {
    api: 'enqueueBatch',
    what: 'duplicate against the queue (known domain)',
    run: (c) => c.core.enqueueBatch('x.com', 'b', Float64Array.of(100, c.active)),
    throws: MailQueueError,
    code: 'ERR_DUPLICATE_ID',
    message: /^ids\[1\]/,
  },
  {
    api: 'enqueueBatch',
    what: 'duplicate of an in-flight id (new domain)',
    run: (c) => c.core.enqueueBatch('new.example', 'a', Float64Array.of(100, c.inFlight)),
    throws: MailQueueError,
    code: 'ERR_DUPLICATE_ID',
    message: /^ids\[1\]: id 2 is already queued/,
  },
  {
    api: 'enqueueBatch',
    what: 'nextAttempts a plain array',
    run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100), undefined, any([T0])),
    throws: TypeError,
    message: /^nextAttempts must be a Float64Array/,
  },
  {
    api: 'enqueueBatch',
    what: 'nextAttempts shorter than ids',
    run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100, 101), undefined, Float64Array.of(T0)),
    throws: RangeError,
    message: /^nextAttempts must have as many entries as ids \(2\), got 1/,
  },
  {
    api: 'enqueueBatch',
    what: 'nextAttempts NaN (known domain)',
    run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100, 101), undefined, Float64Array.of(T0, NaN)),
    throws: RangeError,
    message: /^nextAttempts\[1\] must be a finite number/,
  },
  {
    api: 'enqueueBatch',
    what: 'nextAttempts Infinity (new domain)',
    run: (c) => c.core.enqueueBatch('new.example', 'a', Float64Array.of(100), undefined, Float64Array.of(Infinity)),
    throws: RangeError,
    message: /^nextAttempts\[0\] must be a finite number/,
  },
  {
    api: 'enqueueBatch',
    what: 'nextAttempts 1e300 (known domain)',
    run: (c) => c.core.enqueueBatch('x.com', 'a', Float64Array.of(100), undefined, Float64Array.of(1e300)),
    throws: RangeError,
    message: /^nextAttempts\[0\] must be a finite number within ±8\.64e15 ms/,
  },
  {
    api: 'enqueueBatch',
    what: 'nextAttempts -1e300 (new domain)',
    run: (c) => c.core.enqueueBatch('new.example', 'a', Float64Array.of(100), undefined, Float64Array.of(-1e300)),
    throws: RangeError,
    message: /^nextAttempts\[0\] must be a finite number within ±8\.64e15 ms/,
  },

  // deferMany
  {
    api: 'deferMany',
    what: 'ids a plain array',
    run: (c) => c.core.deferMany(any([c.inFlight]), T0 + 1000),
    throws: TypeError,
    message: /^ids must be a Float64Array/,
  },
  {
    api: 'deferMany',
    what: 'nextAttempt NaN',
    run: (c) => c.core.deferMany(Float64Array.of(c.inFlight), NaN),
    throws: RangeError,
    message: /^nextAttempt must be finite/,
  },
  {
    api: 'deferMany',
    what: 'nextAttempt before the range of a Date',
    run: (c) => c.core.deferMany(Float64Array.of(c.inFlight), -9e15),
    throws: RangeError,
    message: /^nextAttempt must be finite and within/,
  },
  {
    api: 'deferMany',
    what: 'a queued id',
    run: (c) => c.core.deferMany(Float64Array.of(c.inFlight, c.active), T0 + 1000),
    throws: MailQueueError,
    code: 'ERR_NOT_IN_FLIGHT',
    message: /^ids\[1\]/,
  },
  {
    api: 'deferMany',
    what: 'an id twice',
    run: (c) => c.core.deferMany(Float64Array.of(c.inFlight, c.inFlight), T0 + 1000),
    throws: MailQueueError,
    code: 'ERR_DUPLICATE_ID',
    message: /^ids\[1\]/,
  },
  {
    api: 'deferMany',
    what: 'an unknown id',
    run: (c) => c.core.deferMany(Float64Array.of(424242), T0 + 1000),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_ID',
    message: /^ids\[0\]/,
  },
  {
    api: 'deferMany',
    what: 'a fractional id',
    run: (c) => c.core.deferMany(Float64Array.of(1.5), T0 + 1000),
    throws: RangeError,
    message: /^ids\[0\] must be a safe integer/,
  },

  // cancelMany (unknown and repeated ids are skipped, so only these refuse a batch)
  {
    api: 'cancelMany',
    what: 'ids a plain array',
    run: (c) => c.core.cancelMany(any([c.active])),
    throws: TypeError,
    message: /^ids must be a Float64Array, got an array/,
  },
  {
    api: 'cancelMany',
    what: 'ids a Float32Array',
    run: (c) => c.core.cancelMany(any(Float32Array.of(c.active))),
    throws: TypeError,
    message: /^ids must be a Float64Array/,
  },
  {
    api: 'cancelMany',
    what: 'ids undefined',
    run: (c) => c.core.cancelMany(any(undefined)),
    throws: TypeError,
    message: /^ids must be a Float64Array, got undefined/,
  },
  {
    api: 'cancelMany',
    what: 'ids a number',
    run: (c) => c.core.cancelMany(any(c.active)),
    throws: TypeError,
    message: /^ids must be a Float64Array/,
  },
  {
    api: 'cancelMany',
    what: 'a fractional id',
    run: (c) => c.core.cancelMany(Float64Array.of(c.active, 1.5)),
    throws: RangeError,
    message: /^ids\[1\] must be a safe integer/,
  },
  {
    api: 'cancelMany',
    what: 'NaN id',
    run: (c) => c.core.cancelMany(Float64Array.of(NaN, c.active)),
    throws: RangeError,
    message: /^ids\[0\] must be a safe integer/,
  },
  {
    api: 'cancelMany',
    what: 'negative id',
    run: (c) => c.core.cancelMany(Float64Array.of(c.delayed, c.active, -1)),
    throws: RangeError,
    message: /^ids\[2\] must be a safe integer/,
  },
  {
    api: 'cancelMany',
    what: 'id 2^53',
    run: (c) => c.core.cancelMany(Float64Array.of(c.active, TWO53)),
    throws: RangeError,
    message: /^ids\[1\] must be a safe integer/,
  },
  {
    api: 'cancelMany',
    what: 'id Infinity after an unknown id',
    run: (c) => c.core.cancelMany(Float64Array.of(424242, Infinity)),
    throws: RangeError,
    message: /^ids\[1\] must be a safe integer/,
  },
  {
    api: 'cancelMany',
    what: 'an in-flight id at index 1',
    run: (c) => c.core.cancelMany(Float64Array.of(c.active, c.inFlight, c.delayed)),
    throws: MailQueueError,
    code: 'ERR_IN_FLIGHT',
    message: /^ids\[1\]/,
  },
  {
    api: 'cancelMany',
    what: 'an in-flight id after a repeated one',
    run: (c) => c.core.cancelMany(Float64Array.of(c.delayed, c.delayed, 100, c.inFlight)),
    throws: MailQueueError,
    code: 'ERR_IN_FLIGHT',
    message: /^ids\[3\]: the message is in flight/,
  },

  // maintain options (a bad options.into is in test/pass/grant-list.bad-input.test.ts)
  {
    api: 'maintain',
    what: 'options.maxGrants 0',
    run: (c) => c.core.maintain(undefined, { maxGrants: 0 }),
    throws: RangeError,
    message: /^options.maxGrants must be an integer from 1/,
  },
  {
    api: 'maintain',
    what: 'options.maxGrants NaN',
    run: (c) => c.core.maintain(undefined, { maxGrants: NaN }),
    throws: RangeError,
    message: /^options.maxGrants/,
  },
  {
    api: 'maintain',
    what: 'options.maxDomains 0',
    run: (c) => c.core.maintain(undefined, { maxDomains: 0 }),
    throws: RangeError,
    message: /^options.maxDomains must be an integer from 1/,
  },
  {
    api: 'maintain',
    what: 'options.maxDomains a string',
    run: (c) => c.core.maintain(undefined, { maxDomains: any('5') }),
    throws: TypeError,
    message: /^options.maxDomains must be a number/,
  },
  {
    api: 'maintain',
    what: 'options unknown key',
    run: (c) => c.core.maintain(undefined, any({ maxdomains: 5 })),
    throws: RangeError,
    message: /^options: unknown option "maxdomains"/,
  },
  {
    api: 'maintain',
    what: 'options null',
    run: (c) => c.core.maintain(undefined, any(null)),
    throws: TypeError,
    message: /^options must be an object/,
  },

  // cancel, message, settle, defer, untake
  {
    api: 'cancel',
    what: 'id a string',
    run: (c) => c.core.cancel(any('1')),
    throws: TypeError,
    message: /^id must be a number/,
  },
  {
    api: 'cancel',
    what: 'id negative',
    run: (c) => c.core.cancel(-1),
    throws: RangeError,
    message: /^id must be a safe integer/,
  },
  {
    api: 'cancel',
    what: 'id NaN',
    run: (c) => c.core.cancel(NaN),
    throws: RangeError,
    message: /^id must be a safe integer/,
  },
  {
    api: 'cancel',
    what: 'id in flight',
    run: (c) => c.core.cancel(c.inFlight),
    throws: MailQueueError,
    code: 'ERR_IN_FLIGHT',
    message: /\bid 2\b/,
  },
  {
    api: 'message',
    what: 'id fractional',
    run: (c) => c.core.message(1.5),
    throws: RangeError,
    message: /^id must be a safe integer/,
  },
  {
    api: 'message',
    what: 'id 2^53',
    run: (c) => c.core.message(TWO53),
    throws: RangeError,
    message: /^id must be a safe integer/,
  },
  {
    api: 'message',
    what: 'id Infinity',
    run: (c) => c.core.message(Infinity),
    throws: RangeError,
    message: /^id must be a safe integer/,
  },
  {
    api: 'message',
    what: 'id undefined',
    run: (c) => c.core.message(any(undefined)),
    throws: TypeError,
    message: /^id must be a number, got undefined/,
  },
  {
    api: 'settle',
    what: 'unknown id',
    run: (c) => c.core.settle(100),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_ID',
    message: /\bid 100\b/,
  },
  {
    api: 'settle',
    what: 'an active (not taken) id',
    run: (c) => c.core.settle(c.active),
    throws: MailQueueError,
    code: 'ERR_NOT_IN_FLIGHT',
    message: /\bid 1\b/,
  },
  {
    api: 'settle',
    what: 'id -0.5',
    run: (c) => c.core.settle(-0.5),
    throws: RangeError,
    message: /^id must be a safe integer/,
  },
  {
    api: 'settle',
    what: 'id -Infinity',
    run: (c) => c.core.settle(-Infinity),
    throws: RangeError,
    message: /^id must be a safe integer/,
  },
  {
    api: 'defer',
    what: 'nextAttempt NaN',
    run: (c) => c.core.defer(c.inFlight, NaN),
    throws: RangeError,
    message: /^nextAttempt must be finite/,
  },
  {
    api: 'defer',
    what: 'nextAttempt Infinity',
    run: (c) => c.core.defer(c.inFlight, Infinity),
    throws: RangeError,
    message: /^nextAttempt must be finite/,
  },
  {
    api: 'defer',
    what: 'nextAttempt a string',
    run: (c) => c.core.defer(c.inFlight, any('soon')),
    throws: TypeError,
    message: /^nextAttempt must be a number/,
  },
  {
    api: 'defer',
    what: 'an active (not taken) id',
    run: (c) => c.core.defer(c.active, T0 + 1000),
    throws: MailQueueError,
    code: 'ERR_NOT_IN_FLIGHT',
    message: /\bid 1\b/,
  },
  {
    api: 'defer',
    what: 'id 2^53',
    run: (c) => c.core.defer(TWO53, T0),
    throws: RangeError,
    message: /^id must be a safe integer/,
  },
  {
    api: 'untake',
    what: 'unknown id',
    run: (c) => c.core.untake(MAX_SAFE),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_ID',
    message: /\bid 9007199254740991\b/,
  },
  {
    api: 'untake',
    what: 'a delayed id',
    run: (c) => c.core.untake(c.delayed),
    throws: MailQueueError,
    code: 'ERR_NOT_IN_FLIGHT',
    message: /\bid 6\b/,
  },
  {
    api: 'untake',
    what: 'id undefined',
    run: (c) => c.core.untake(any(undefined)),
    throws: TypeError,
    message: /^id must be a number/,
  },

  // take, takeInto
  {
    api: 'take',
    what: 'unknown domain',
    run: (c) => c.core.take('nope.example', 'a'),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_DOMAIN',
    message: /^domain: .*"nope\.example"/,
  },
  {
    api: 'take',
    what: 'domain a number',
    run: (c) => c.core.take(any(5), 'a'),
    throws: TypeError,
    message: /^domain must be a string/,
  },
  {
    api: 'take',
    what: 'domain of 1 MB',
    run: (c) => c.core.take(MB, 'a'),
    throws: RangeError,
    message: /^domain must be 1 to 253 characters/,
  },
  {
    api: 'take',
    what: 'unknown binding',
    run: (c) => c.core.take('x.com', 'zz'),
    throws: RangeError,
    message: /^binding: unknown binding "zz"/,
  },
  {
    api: 'take',
    what: 'binding slot -1',
    run: (c) => c.core.take('x.com', -1),
    throws: RangeError,
    message: /^binding: no binding slot -1/,
  },
  {
    api: 'take',
    what: 'k = 0',
    run: (c) => c.core.take('x.com', 'a', 0),
    throws: RangeError,
    message: /^k must be an integer from 1/,
  },
  {
    api: 'take',
    what: 'k fractional',
    run: (c) => c.core.take('x.com', 'a', 1.5),
    throws: RangeError,
    message: /^k must be an integer/,
  },
  {
    api: 'take',
    what: 'k NaN',
    run: (c) => c.core.take('x.com', 'a', NaN),
    throws: RangeError,
    message: /^k must be an integer/,
  },
  {
    api: 'take',
    what: 'k huge (1e7)',
    run: (c) => c.core.take('x.com', 'a', 1e7),
    throws: RangeError,
    message: /^k must be an integer from 1 to 1000000/,
  },
  {
    api: 'take',
    what: 'k a string',
    run: (c) => c.core.take('x.com', 'a', any('2')),
    throws: TypeError,
    message: /^k must be a number/,
  },
  {
    api: 'takeInto',
    what: 'out a Float32Array',
    run: (c) => c.core.takeInto('x.com', 'a', any(new Float32Array(4))),
    throws: TypeError,
    message: /^out must be a Float64Array/,
  },
  {
    api: 'takeInto',
    what: 'out a BigInt64Array',
    run: (c) => c.core.takeInto('x.com', 'a', any(new BigInt64Array(4))),
    throws: TypeError,
    message: /^out must be a Float64Array/,
  },
  {
    api: 'takeInto',
    what: 'out a plain array',
    run: (c) => c.core.takeInto('x.com', 'a', any([0, 0])),
    throws: TypeError,
    message: /^out must be a Float64Array, got an array/,
  },
  {
    api: 'takeInto',
    what: 'out a DataView',
    run: (c) => c.core.takeInto('x.com', 'a', any(new DataView(new ArrayBuffer(16)))),
    throws: TypeError,
    message: /^out must be a Float64Array/,
  },
  {
    api: 'takeInto',
    what: 'domain a DomainRecord of another core',
    run: (c) => c.core.takeInto(c.otherDr, 'a', new Float64Array(1)),
    throws: TypeError,
    message: /^domain must be a DomainRecord of this core/,
  },
  {
    api: 'takeInto',
    what: 'domain a plain object',
    run: (c) => c.core.takeInto(any({ name: 'x.com', index: 0 }), 'a', new Float64Array(1)),
    throws: TypeError,
    message: /^domain must be a string or a DomainRecord, got/,
  },
  {
    api: 'takeInto',
    what: "domain an object with DomainRecord's prototype",
    run: (c) => c.core.takeInto(Object.create(DomainRecord.prototype), 'a', new Float64Array(1)),
    throws: TypeError,
    message: /^domain must be a DomainRecord of this core/,
  },
  {
    api: 'takeInto',
    what: 'domain a number',
    run: (c) => c.core.takeInto(any(0), 'a', new Float64Array(1)),
    throws: TypeError,
    message: /^domain must be a string or a DomainRecord, got number/,
  },
  {
    api: 'enqueueBatch',
    what: 'domain a DomainRecord of another core',
    run: (c) => c.core.enqueueBatch(c.otherDr, 'a', Float64Array.of(100)),
    throws: TypeError,
    message: /^domain must be a DomainRecord of this core/,
  },
  {
    api: 'enqueueBatch',
    what: 'domain a DomainRecord of a closed core',
    run: (c) => c.core.enqueueBatch(c.closedDr, 'a', Float64Array.of(100)),
    throws: TypeError,
    message: /^domain must be a DomainRecord of this core/,
  },

  // takeFor
  {
    api: 'takeFor',
    what: 'connection never opened',
    run: (c) => c.core.takeFor(424242, new Float64Array(1)),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_CONNECTION',
    message: /^connectionId 424242/,
  },
  {
    api: 'takeFor',
    what: 'connectionId 0',
    run: (c) => c.core.takeFor(0, new Float64Array(1)),
    throws: RangeError,
    message: /^connectionId must be an integer from 1 to 9007199254740991, got 0/,
  },
  {
    api: 'takeFor',
    what: 'connectionId 1.5',
    run: (c) => c.core.takeFor(1.5, new Float64Array(1)),
    throws: RangeError,
    message: /^connectionId must be an integer/,
  },
  {
    api: 'takeFor',
    what: 'connectionId NaN',
    run: (c) => c.core.takeFor(NaN, new Float64Array(1)),
    throws: RangeError,
    message: /^connectionId must be an integer from 1 to 9007199254740991, got NaN/,
  },
  {
    api: 'takeFor',
    what: 'connectionId a string',
    run: (c) => c.core.takeFor(any('1'), new Float64Array(1)),
    throws: TypeError,
    message: /^connectionId must be a number/,
  },
  {
    api: 'takeFor',
    what: 'connectionId not issued yet',
    run: (c) => c.core.takeFor(c.conn + 1000, new Float64Array(1)),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_CONNECTION',
  },
  {
    api: 'takeFor',
    what: 'out a Float32Array',
    run: (c) => c.core.takeFor(c.conn, any(new Float32Array(4))),
    throws: TypeError,
    message: /^out must be a Float64Array/,
  },
  {
    api: 'takeFor',
    what: 'out missing',
    run: (c) => c.core.takeFor(c.conn, any(undefined)),
    throws: TypeError,
    message: /^out must be a Float64Array/,
  },
  {
    api: 'takeFor',
    what: 'connectionId bad and out bad: the id is named first',
    run: (c) => c.core.takeFor(-1, any([])),
    throws: RangeError,
    message: /^connectionId/,
  },

  // domain, hasDomain (the DomainRecord view's own methods: test/pass/hooks-and-views.bad-input.test.ts)
  {
    api: 'domain',
    what: 'unknown domain',
    run: (c) => c.core.domain('nope.example'),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_DOMAIN',
    message: /^domain: .*"nope\.example"/,
  },
  {
    api: 'domain',
    what: 'domain of 1 MB',
    run: (c) => c.core.domain(MB),
    throws: RangeError,
    message: /^domain must be 1 to 253 characters/,
  },
  {
    api: 'domain',
    what: 'domain a symbol',
    run: (c) => c.core.domain(any(Symbol('x'))),
    throws: TypeError,
    message: /^domain must be a string/,
  },
  {
    api: 'hasDomain',
    what: 'name null',
    run: (c) => c.core.hasDomain(any(null)),
    throws: TypeError,
    message: /^name must be a string, got null/,
  },
  {
    api: 'hasDomain',
    what: 'name of 1 MB',
    run: (c) => c.core.hasDomain(MB),
    throws: RangeError,
    message: /^name must be 1 to 253 characters, got 1048576/,
  },
  {
    api: 'hasDomain',
    what: 'name not a domain name',
    run: (c) => c.core.hasDomain('a..b'),
    throws: RangeError,
    message: /^name is not a domain name/,
  },

  // activeQueue (the ActiveQueue view's own methods: test/pass/hooks-and-views.bad-input.test.ts)
  {
    api: 'activeQueue',
    what: 'unknown domain',
    run: (c) => c.core.activeQueue('nope.example', 'a'),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_DOMAIN',
    message: /"nope\.example"/,
  },
  {
    api: 'activeQueue',
    what: 'binding slot out of range',
    run: (c) => c.core.activeQueue('x.com', 2),
    throws: RangeError,
    message: /^binding: no binding slot 2/,
  },
  {
    api: 'activeQueue',
    what: 'binding NaN',
    run: (c) => c.core.activeQueue('x.com', NaN),
    throws: RangeError,
    message: /^binding: no binding slot NaN/,
  },

  // suspend, resume
  {
    api: 'suspend',
    what: 'domain a number',
    run: (c) => c.core.suspend(any(5)),
    throws: TypeError,
    message: /^domain must be a string/,
  },
  {
    api: 'suspend',
    what: 'domain of 1 MB',
    run: (c) => c.core.suspend(MB),
    throws: RangeError,
    message: /^domain must be 1 to 253 characters/,
  },
  {
    api: 'suspend',
    what: 'unknown binding',
    run: (c) => c.core.suspend('x.com', 'zz'),
    throws: RangeError,
    message: /^binding: unknown binding "zz"/,
  },
  {
    api: 'resume',
    what: 'binding slot fractional',
    run: (c) => c.core.resume('x.com', 1.5),
    throws: RangeError,
    message: /^binding: no binding slot 1\.5/,
  },
  {
    api: 'resume',
    what: 'domain null',
    run: (c) => c.core.resume(any(null)),
    throws: TypeError,
    message: /^domain must be a string, got null/,
  },

  // maintain, maintainDomain
  {
    api: 'maintain',
    what: 'now NaN',
    run: (c) => c.core.maintain(NaN),
    throws: RangeError,
    message: /^now must be finite/,
  },
  {
    api: 'maintain',
    what: 'now Infinity',
    run: (c) => c.core.maintain(Infinity),
    throws: RangeError,
    message: /^now must be finite/,
  },
  {
    api: 'maintain',
    what: 'now past the range of a Date',
    run: (c) => c.core.maintain(1e16),
    throws: RangeError,
    message: /^now must be finite and within ±8\.64e15 ms/,
  },
  {
    api: 'maintain',
    what: 'now a string',
    run: (c) => c.core.maintain(any('now')),
    throws: TypeError,
    message: /^now must be a number/,
  },
  {
    api: 'maintainDomain',
    what: 'unknown domain',
    run: (c) => c.core.maintainDomain('nope.example'),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_DOMAIN',
    message: /"nope\.example"/,
  },
  {
    api: 'maintainDomain',
    what: 'options null',
    run: (c) => c.core.maintainDomain('x.com', any(null)),
    throws: TypeError,
    message: /^options must be an object/,
  },
  {
    api: 'maintainDomain',
    what: 'unknown option',
    run: (c) => c.core.maintainDomain('x.com', any({ bogus: 1 })),
    throws: RangeError,
    message: /^options: unknown option "bogus"/,
  },
  {
    api: 'maintainDomain',
    what: 'options.now -Infinity',
    run: (c) => c.core.maintainDomain('x.com', { now: -Infinity }),
    throws: RangeError,
    message: /^options\.now must be finite/,
  },
  {
    api: 'maintainDomain',
    what: 'options.goalsz fractional',
    run: (c) => c.core.maintainDomain('x.com', { goalsz: 1.5 }),
    throws: RangeError,
    message: /^options\.goalsz must be an integer/,
  },
  {
    api: 'maintainDomain',
    what: 'options.goalsz 2^31',
    run: (c) => c.core.maintainDomain('x.com', { goalsz: 2 ** 31 }),
    throws: RangeError,
    message: /^options\.goalsz must be an integer/,
  },
  {
    api: 'maintainDomain',
    what: 'options.reserve -1',
    run: (c) => c.core.maintainDomain('x.com', { reserve: -1 }),
    throws: RangeError,
    message: /^options\.reserve must be an integer from 0/,
  },

  // openConnections, releaseConnection
  {
    api: 'openConnections',
    what: 'count -1',
    run: (c) => c.core.openConnections('x.com', 'a', -1),
    throws: RangeError,
    message: /^count must be an integer from 0/,
  },
  {
    api: 'openConnections',
    what: 'count NaN',
    run: (c) => c.core.openConnections('x.com', 'a', NaN),
    throws: RangeError,
    message: /^count must be an integer/,
  },
  {
    api: 'openConnections',
    what: 'count fractional',
    run: (c) => c.core.openConnections('x.com', 'a', 1.5),
    throws: RangeError,
    message: /^count must be an integer/,
  },
  {
    api: 'openConnections',
    what: 'count Infinity',
    run: (c) => c.core.openConnections('x.com', 'a', Infinity),
    throws: RangeError,
    message: /^count must be an integer/,
  },
  {
    api: 'openConnections',
    what: 'options.now NaN',
    run: (c) => c.core.openConnections('x.com', 'a', 1, { now: NaN }),
    throws: RangeError,
    message: /^options\.now must be finite/,
  },
  {
    api: 'openConnections',
    what: 'options.reserve -1',
    run: (c) => c.core.openConnections('x.com', 'a', 1, { reserve: -1 }),
    throws: RangeError,
    message: /^options\.reserve must be an integer/,
  },
  {
    api: 'openConnections',
    what: 'options null',
    run: (c) => c.core.openConnections('x.com', 'a', 1, any(null)),
    throws: TypeError,
    message: /^options must be an object/,
  },
  {
    api: 'openConnections',
    what: 'unknown domain',
    run: (c) => c.core.openConnections('nope.example', 'a', 1),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_DOMAIN',
    message: /"nope\.example"/,
  },
  {
    api: 'openConnections',
    what: 'unknown binding',
    run: (c) => c.core.openConnections('x.com', 'zz', 1),
    throws: RangeError,
    message: /^binding: unknown binding "zz"/,
  },
  {
    api: 'openConnections',
    what: 'unknown option (a typo of reserve)',
    run: (c) => c.core.openConnections('x.com', 'a', 1, any({ reserv: 0 })),
    throws: RangeError,
    message: /^options: unknown option "reserv"/,
  },
  {
    api: 'releaseConnection',
    what: 'connectionId 0',
    run: (c) => c.core.releaseConnection(0),
    throws: RangeError,
    message: /^connectionId must be an integer from 1/,
  },
  {
    api: 'releaseConnection',
    what: 'connectionId negative',
    run: (c) => c.core.releaseConnection(-1),
    throws: RangeError,
    message: /^connectionId must be an integer/,
  },
  {
    api: 'releaseConnection',
    what: 'connectionId fractional',
    run: (c) => c.core.releaseConnection(c.conn + 0.5),
    throws: RangeError,
    message: /^connectionId must be an integer/,
  },
  {
    api: 'releaseConnection',
    what: 'connectionId 2^53',
    run: (c) => c.core.releaseConnection(TWO53),
    throws: RangeError,
    message: /^connectionId must be an integer/,
  },
  {
    api: 'releaseConnection',
    what: 'connectionId a string',
    run: (c) => c.core.releaseConnection(any(String(c.conn))),
    throws: TypeError,
    message: /^connectionId must be a number/,
  },
  {
    api: 'releaseConnection',
    what: 'unknown connection',
    run: (c) => c.core.releaseConnection(999_999),
    throws: MailQueueError,
    code: 'ERR_UNKNOWN_CONNECTION',
    message: /^connectionId 999999/,
  },

  // anything after close() (the hooks and views of a closed core: test/pass/hooks-and-views.bad-input.test.ts)
  ...(
    [
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
      ['stats', (c: Ctx) => c.closed.stats()],
      ['checkInvariants', (c: Ctx) => c.closed.checkInvariants()],
    ] as const
  ).map(
    ([api, run]): Row => ({
      api,
      what: 'after close()',
      run,
      throws: MailQueueError,
      code: 'ERR_CLOSED',
      message: /^the core is closed/,
    }),
  ),
];

describe('MailQueueCore: bad calls throw the documented error and change nothing', () => {
  test('the table has at least 60 rows, and every row names an API and a case', () => {
    expect(rows.length).toBeGreaterThanOrEqual(60);
    for (const r of rows) expect(r.api.length * r.what.length).toBeGreaterThan(0);
    const names = rows.map((r) => `${r.api}: ${r.what}`);
    expect(new Set(names).size).toBe(names.length);
  });

  rowTests(rows);

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
      expect(() => c.core.releaseConnection(c.conn)).toThrow(
        expect.objectContaining({ code: 'ERR_UNKNOWN_CONNECTION' }),
      );
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
        core.enqueueBatch(
          domain,
          undefined,
          Float64Array.from({ length: 50 }, (_, i) => id + i),
        );
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
      expect(() => drifting.maintain()).toThrow(
        /^options\.clock returned 8640000000000001, not a finite number within ±8\.64e15 ms/,
      );
      expect(drifting.stats().active).toBe(1);
    } finally {
      drifting.close();
    }
  });
});
