#!/usr/bin/env node
// Writes the seed corpus of the core fuzzer (native/fuzz/corpus/) from readable descriptions.
// The byte layout mirrors the decoder in core_fuzz.cpp (Fuzz::run and the op* functions): keep the
// two in step when either changes. Any byte string is a valid input, so a stale seed still runs; it
// only stops meaning what its name says.
//
//   node native/fuzz/make_seeds.mjs [name ...]    (names given: write only those seeds)
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const OPS = [
  'enqueue',
  'enqueueBatch',
  'cancel',
  'take',
  'settle',
  'defer',
  'untake',
  'removeActive',
  'promoteDue',
  'expireActive',
  'goalOpen',
  'defaultMaintain',
  'maintainDomain',
  'maintainAll',
  'release',
  'migrate',
  'flush',
  'fail',
  'retryNow',
  'drainGrants',
  'drainExpired',
  'time',
  'setSuspended',
  'setMessageThrottle',
  'addDomain',
  'query',
  'settleBatch',
  // appended later, so the older seeds keep their meaning
  'enqueueBatchAt',
  'deferBatch',
  'maintainSlice',
  'prepareVisit',
  'cancelMany',
  'cancelBatch',
  'visitDefault',
  'maintainSliceCapped',
  'enqueueArrivals',
  'setAttempts',
  // the Host scope (decision 47)
  'addHost',
  'setDomainHosts',
  'claimHost',
  // forgetting idle domains (decision 46)
  'forgetDomain',
  // staged single outcomes through the flight table (decision 55)
  'applyOutcomes',
];
const UNLIMITED = 0xff; // any byte >= 0xc0 reads as kUnlimited

// A pair: maxConnections byte (value % 7, 6 = 32), aggressiveness byte ((v + 1) / 256), flags byte
// (bits 0-1 connection throttle, bits 2-3 message throttle, bits 4-5 both set = suspended).
function pair({ max = 3, aggr = 76, throttle = 0, msgThrottle = 0, suspended = false } = {}) {
  return [max, aggr, (throttle & 3) | ((msgThrottle & 3) << 2) | (suspended ? 0x30 : 0)];
}

// The configuration prefix.
// teardown: false destroys the core with everything still in it at the end of the input.
// serverMax: a byte, 0-15 as is (value % 16 below 0xf0), 0xf0..0xff = 16 * (v - 0xef), 16-256.
function config({
  bindings = 1,
  groups = 0,
  autoDrain = true,
  teardown = true,
  groupOf = [],
  bindingMax = [],
  groupMax = [],
  serverMax = 10,
  serverReserve = 2,
  throttles = [],
  domains = [{}],
}) {
  const out = [(bindings - 1) | (groups << 2) | (teardown ? 0 : 0x10) | (autoDrain ? 0 : 0xc0)];
  for (let b = 0; b < bindings; b++) out.push((groupOf[b] ?? -1) + 1, bindingMax[b] ?? UNLIMITED);
  for (let g = 0; g < groups; g++) out.push(groupMax[g] ?? UNLIMITED);
  out.push(serverMax, serverReserve, throttles.length);
  for (const [count, windowMs] of throttles) out.push(count - 1, windowMs / 100 - 1);
  out.push(domains.length - 1);
  for (const d of domains) {
    out.push(d.scopeMax ?? UNLIMITED);
    for (let g = 0; g < groups; g++) out.push(d.groupScopeMax?.[g] ?? UNLIMITED);
    for (let b = 0; b < bindings; b++) out.push(...pair(d.pairs?.[b]));
  }
  return out;
}

// One operation: its opcode byte and argument bytes (see the op* functions for their meaning).
function op(name, ...args) {
  const code = OPS.indexOf(name);
  if (code < 0) throw new Error(`unknown op ${name}`);
  return [code, ...args];
}

// enqueue args: domain, binding, id mode (<160 fresh), pick/priority (bit 0), next attempt
// (relative: (v - 40) * 10 ms for v < 200), expiry (< 112 never).
const enq = (d = 0, b = 0, prio = 0, next = 40, exp = 0) => op('enqueue', d, b, 0, prio, next, exp);
// enqueueBatch: count byte (n % 9, or 240.. = (n - 239) * 16 fresh ids with no element bytes), flags
// (bit 0: pass priorities, bit 1: allow a bad priority), then [mode, pick] per element (mode < 150
// fresh, < 190 a duplicate of an earlier element, < 240 a known id, else a bogus id).
const batch = (d, b, count, flags, next, exp, elems = []) =>
  op('enqueueBatch', d, count, flags, next, exp, b, ...elems.flat());
// enqueueBatchAt: domain, binding (>= 252 a bad one), count (as enqueueBatch; 240.. fresh ids at
// spread times), flags, expiry, then [mode, pick, time] per element (mode < 140 fresh, < 165 a
// repeat, < 200 a lately cancelled id, < 245 a known id, else bogus; time as enqueue's next
// attempt, 250..254 bad or extreme).
const batchAt = (d, b, count, flags, exp, elems = []) => op('enqueueBatchAt', d, b, count, flags, exp, ...elems.flat());
// settleBatch / deferBatch ids: count byte (n % 7 with [mode, pick] each; 250.. every message in
// flight; deferBatch 240..249: all in flight with the last spoilt, one pick byte after).
// deferBatch: count, next attempt, then the ids' bytes.
const deferBatch = (count, next, ...rest) => op('deferBatch', count, next, ...rest.flat());
// maintainSlice: mode (% 8: maxDomains 0, 1, 1, 2, 3, all (v odd: 2^32 - 1), domains + v % 3;
// 7 = nextDomainStart with dueCount (mode >> 3) % 6, v unused), v. Bits of modes 0-6: FRESH
// abandons the pass in progress, NEXT calls nextSlice instead of maintainSlice, VISIT (two more
// bytes: goalsz, prepareVisit mode) visits each domain nextSlice hands out as the JS pass does,
// more(k) makes k = 0-3 more calls right after, alternating nextSlice / maintainSlice, not fresh.
const FRESH = 0x08,
  NEXT = 0x10,
  VISIT = 0x20;
const more = (k) => k << 6;
const slice = (mode, v = 0, ...visit) => op('maintainSlice', mode, v, ...visit);
// release: mode (< 180 an open id, < 200 a released one, < 215 maybe a pending one, < 248 bogus;
// 248..255 lease-table churn: bit 0 of mode - 248 fills every pair first, (mode - 248) >> 1 + 1
// rounds, pick + round selecting the release order), pick.
const churn = (fill, rounds, pick) => op('release', 248 + (fill ? 1 : 0) + ((rounds - 1) << 1), pick);
// cancelMany: domain, binding (the first queue with mail from there), pattern (% 5: all but the
// last arg % 4, keep 1 in 3 + arg % 4, a prefix, ~3 in 4, the back half), arg, take (bit 0, k =
// >> 1), re-enqueue (bit 0; bit 1 same domain, bit 2 same binding, bit 3 urgent, bit 4 due now).
const cancelMany = (d, b, pattern, arg, take = 0, again = 0) => op('cancelMany', d, b, pattern, arg, take, again);
// cancelBatch: count byte, flags (bit 0: enqueue some cancelled ids again, (flags >> 1) % 4 + 1 of
// them, into domain (flags >> 3) % D, binding (flags >> 5) % B, urgent with bit 4, 100 ms later
// with bit 7, and send the batch again). Count < 200: count % 13 entries of [mode, pick] (mode <
// 100 a queued id, < 130 a repeat, < 160 a known id, < 180 one in flight, < 200 a lately
// cancelled id, < 235 an id never enqueued, else bogus). From 200: [pick, spoil], the head of the
// first queue with mail from pair pick and its domain's delayed head (odd count: reversed; (count
// >> 1) % 8 repeats); from 240 one entry inserted at spoil: in flight with bit 1, else bogus.
const cancelBatch = (count, flags, ...rest) => op('cancelBatch', count, flags, ...rest.flat());

// visitDefault: mode, reserve byte, then (mode % 4 < 3) a prepareVisit's domain, goalsz and mode
// bytes first (PREP(d, gz, pm) below; NOPREP for mode % 4 == 3: the last prepareVisit's state, or
// BadArgument before any), with STALE (bit 4) a clock byte (* 7 ms forward) before the calls, and
// the bindings by bits 2-3: ORDER (the prepareVisit order), ALL_B (every binding), LIST (then 1 +
// (mode >> 5) bytes, % (B + 3): B, B + 1 out of range, B + 2 = 2^32-1), SAME (one byte, % (B + 1),
// called 2 + (mode >> 5) % 3 times). The reserve of call i: reserveOf(reserve + i) (0/1 reserveFor,
// 2 zero, 3 serverReserve, 4 one, 5 serverReserve + 1, 6 2^32-2, 7 two).
const NOPREP = 3,
  STALE = 0x10,
  ORDER = 0,
  ALL_B = 1 << 2,
  LIST = 2 << 2,
  SAME = 3 << 2;
const visitDefault = (mode, reserve, ...rest) => op('visitDefault', mode, reserve, ...rest);
// maintainSliceCapped: mode, v, cap (< 224: 1 + cap % 8 grants; < 240: 2^32-1; else SIZE_MAX); the
// mode as maintainSlice's except that 7 is maxDomains 2^32-1; VISIT adds goalsz and prepareVisit
// mode bytes after the cap.
const capped = (mode, v, cap, ...visit) => op('maintainSliceCapped', mode, v, cap, ...visit);
// enqueueArrivals: count byte, flags (& 0x0f == 0x0f: a bad now, by (flags >> 4) % 4 NaN, +inf,
// just past the range of a Date, -inf), then for count < 240 count % 13 entries (arr() below), or
// for count >= 240 (count - 239) * 16 fresh ids over every pair at spread times and two bytes:
// spoil position, flaw (% 8: < 3 none, 3 the id of an earlier entry, 4 a queued or known id, 5 one
// in flight, 6 SPOIL[flaw >> 3], 7 a repeat at the position and SPOIL[flaw >> 3] at position * 7).
const arrivals = (count, flags, ...entries) => op('enqueueArrivals', count, flags, ...entries.flat());
// One entry of a small enqueueArrivals: pair byte (domain (v & 7) % D, binding ((v >> 3) & 3) % B,
// urgent with bit 6), id mode (< 150 fresh, < 170 a repeat of entry pick % i, < 185 a lately
// cancelled id, < 205 a known id, < 215 one in flight, < 225 a queued one, < 232 bogus, 232 + k:
// fresh with spoil k), pick, next attempt and expiry bytes (as enqueue's).
const arr = (d, b, { urgent = false, id = 0, pick = 0, next = 40, exp = 0 } = {}) => [
  (d & 7) | ((b & 3) << 3) | (urgent ? 0x40 : 0),
  id,
  pick,
  next,
  exp,
];
// The spoils (id mode 232 + k, or k in a big batch's flaw byte).
const SPOIL = {
  domainOut: 0,
  domainHalf: 1,
  domainNeg: 2,
  domainNaN: 3,
  domainInf: 4,
  domain2p32: 5,
  domainNegZero: 6,
  bindingOut: 7,
  priority2: 8,
  binding65535: 9,
  bindingHalf: 10,
  bindingNeg: 11,
  bindingNaN: 12,
  bindingNegInf: 13,
  binding1e300: 14,
  bindingNegZero: 15,
  binding2p32: 16,
  nextNaN: 17,
  nextInf: 18,
  expiryNaN: 19,
  expiryNegInf: 20,
  expiryPast: 21,
  idMax: 22,
  idZero: 23,
};
const spoilt = (k) => 232 + k;
// setAttempts: id mode (< 100 a queued one, < 140 one in flight, < 180 a known id, < 200 a lately
// cancelled one, < 220 one never enqueued, < 230 0 (even) or 2^53-1 (odd), else bogus), pick, count
// (< 128: [0, 1, 2, 7, 65533, 65534, 65535, 65535][v % 8], else v * 257 + pick), take (bit 0: then
// take its queue up to it, when it is active).
const setAttempts = (mode, pick, count, take = 0) => op('setAttempts', mode, pick, count, take);

const seeds = {
  'basic-lifecycle': [
    ...config({ domains: [{ pairs: [{ max: 3 }] }] }),
    ...enq(),
    ...enq(),
    ...enq(0, 0, 1),
    ...enq(0, 0, 0, 100),
    ...op('take', 0, 0, 2),
    ...op('settle', 0, 0),
    ...op('defer', 0, 1, 90),
    ...op('untake', 0, 0),
    ...op('maintainAll'),
    ...op('release', 0, 0),
    ...op('time', 20),
    ...op('maintainAll'),
    ...op('take', 0, 0, 5),
    ...op('drainExpired', 5),
    ...op('query', 4, 0, 0, 0),
    ...enq(),
    ...enq(),
    ...enq(),
    ...op('take', 0, 0, 3),
    ...op('settleBatch', 2, 100, 0, 0, 0),
    ...op('settleBatch', 2, 100, 0, 100, 1),
    ...op('settleBatch', 250),
  ],
  'connections-groups': [
    ...config({
      bindings: 3,
      groups: 2,
      groupOf: [0, 0, 1],
      bindingMax: [3, UNLIMITED, 2],
      groupMax: [4, UNLIMITED],
      serverMax: 4,
      serverReserve: 2,
      domains: [
        { scopeMax: 5, groupScopeMax: [2, UNLIMITED], pairs: [{ max: 5 }, { max: 2 }, { max: 6 }] },
        { pairs: [{ max: 1 }, { max: 4 }, { max: 0 }] },
        { scopeMax: 2, pairs: [{ max: 3 }, { max: 3 }, { max: 3 }] },
      ],
    }),
    ...enq(0, 0),
    ...enq(0, 1),
    ...enq(0, 2),
    ...enq(1, 0),
    ...enq(1, 1),
    ...enq(2, 2),
    ...op('goalOpen', 0, 0, 3, 5, 0),
    ...op('defaultMaintain', 0, 1, 0, 2),
    ...op('maintainDomain', 1, 0, 0),
    ...op('maintainAll'),
    ...op('migrate', 0, 0, 1),
    ...op('migrate', 0, 1, 2),
    ...op('migrate', 250, 0, 0),
    ...op('release', 0, 1),
    ...op('release', 230, 0),
    ...op('release', 230, 2),
    ...op('release', 185, 0),
    ...op('goalOpen', 2, 2, 9, 5, 3),
    ...op('release', 0, 0),
    ...op('maintainAll'),
    ...op('query', 7, 0, 0, 1),
  ],
  'throttles-time-backwards': [
    ...config({
      bindings: 2,
      serverMax: 6,
      serverReserve: 1,
      throttles: [
        [2, 100],
        [1, 300],
      ],
      teardown: false,
      domains: [
        {
          pairs: [
            { max: 5, throttle: 1, msgThrottle: 2 },
            { max: 5, throttle: 2 },
          ],
        },
        { pairs: [{}, { msgThrottle: 1 }] },
      ],
    }),
    ...batch(0, 0, 7, 0, 40, 0, [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ]),
    ...enq(0, 1),
    ...enq(1, 1),
    ...enq(1, 1),
    ...op('take', 0, 0, 5),
    ...op('time', 240),
    ...op('take', 0, 0, 5),
    ...op('goalOpen', 0, 0, 4, 5, 2),
    ...op('time', 20),
    ...op('maintainAll'),
    ...op('time', 254),
    ...op('maintainAll'),
    ...op('take', 1, 1, 3),
    ...op('setMessageThrottle', 1, 1, 0x81, 1, 1),
    ...op('query', 6, 0, 1, 1),
    ...op('time', 100),
    ...op('take', 1, 1, 3),
  ],
  'batch-duplicates-operator': [
    ...config({ bindings: 2, domains: [{}, {}] }),
    ...batch(0, 1, 248, 1, 40, 0),
    ...batch(1, 0, 6, 3, 150, 0, [
      [0, 0],
      [170, 1],
      [0, 2],
      [200, 0],
      [0, 4],
      [255, 255],
    ]),
    ...batch(1, 1, 4, 0, 150, 0, [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ]),
    ...batch(0, 0, 3, 1, 30, 0, [
      [0, 2],
      [0, 3],
      [170, 0],
    ]),
    ...op('cancel', 200, 3),
    ...op('removeActive', 0, 0, 0, 10),
    ...op('removeActive', 251, 0, 200, 1),
    ...op('retryNow', 0, 0, 1),
    ...op('flush', 1),
    ...op('fail', 0, 205),
    ...op('fail', 1, 4),
    ...op('query', 2, 1, 1, 0),
  ],
  'expiry-promote': [
    ...config({ domains: [{ pairs: [{ max: 2 }] }, {}] }),
    ...op('enqueue', 0, 0, 0, 0, 60, 150),
    ...op('enqueue', 0, 0, 0, 0, 30, 130),
    ...op('enqueue', 1, 0, 0, 1, 120, 0),
    ...op('enqueue', 1, 0, 0, 0, 40, 114),
    ...op('enqueue', 0, 0, 0, 0, 250, 0),
    ...op('time', 90),
    ...op('promoteDue', 0),
    ...op('expireActive', 0),
    ...op('time', 200),
    ...op('maintainDomain', 1, 0, 0),
    ...op('drainExpired', 0x85),
    ...op('query', 1, 0, 0, 0),
  ],
  'reserve-ceiling': [
    ...config({
      bindings: 2,
      serverMax: 2,
      serverReserve: 3,
      domains: [{ pairs: [{ max: 5 }, { max: 5 }] }, { pairs: [{ max: 2 }, { max: 5 }] }],
    }),
    ...enq(0, 0),
    ...enq(0, 1),
    ...enq(1, 0),
    ...enq(1, 1),
    ...op('goalOpen', 0, 0, 4, 0, 2),
    ...op('goalOpen', 0, 1, 9, 0, 0),
    ...op('defaultMaintain', 1, 0, 4, 2),
    ...op('maintainDomain', 1, 4, 3),
    ...op('release', 0, 0),
    ...op('maintainAll'),
    ...op('goalOpen', 1, 1, 9, 5, 6),
  ],
  'zero-limits-suspended': [
    ...config({
      bindings: 2,
      serverMax: 0,
      serverReserve: 0,
      autoDrain: false,
      domains: [{ scopeMax: 0, pairs: [{ max: 0 }, { max: 2, suspended: true }] }, { pairs: [{ max: 1 }, { max: 1 }] }],
    }),
    ...enq(0, 0),
    ...enq(0, 1),
    ...enq(1, 0),
    ...op('maintainAll'),
    ...op('setSuspended', 0, 1, 0),
    ...op('goalOpen', 0, 1, 4, 0, 2),
    ...op('drainGrants', 1),
    ...op('release', 0, 0),
    ...op('release', 210, 0),
    ...op('addDomain', 0, 0, 3, 0, 0, 3, 0, 0),
    ...op('addDomain', 0x0f, 0, 3, 0, 0, 3, 0, 0),
    ...op('query', 5, 0, 0, 0),
  ],
  'lazy-cancel-purge': [
    ...config({ bindings: 2, domains: [{ pairs: [{ max: 3 }, { max: 2 }] }, {}] }),
    ...batch(0, 0, 255, 0, 40, 0),
    ...batch(0, 0, 243, 3, 40, 0),
    ...cancelMany(0, 0, 1, 3, 21),
    ...op('take', 0, 0, 30),
    ...cancelMany(0, 0, 0, 0, 0, 0x17),
    ...op('take', 0, 0, 250),
    ...op('settleBatch', 250),
    ...batch(0, 1, 250, 0, 40, 0),
    ...cancelMany(0, 1, 2, 200, 9, 0x0f),
    ...cancelMany(0, 1, 3, 7, 0, 0x11),
    ...op('query', 1, 200, 0, 1),
    ...op('maintainAll'),
    ...op('take', 0, 1, 251),
    ...cancelMany(0, 1, 4, 0, 1, 0x1f),
    ...batchAt(1, 0, 5, 0, 0, [
      [170, 0, 40],
      [175, 1, 40],
      [0, 2, 40],
      [0, 3, 100],
      [160, 0, 40],
    ]),
    ...op('fail', 0, 200),
    ...op('expireActive', 1),
  ],
  'batch-at-defer': [
    ...config({ bindings: 2, domains: [{ pairs: [{ max: 2 }, { max: 2 }] }, {}] }),
    ...batchAt(0, 0, 4, 1, 0, [
      [0, 0, 40],
      [0, 2, 100],
      [0, 0, 250],
      [0, 0, 40],
    ]),
    ...batchAt(0, 0, 5, 1, 0, [
      [0, 0, 40],
      [0, 2, 30],
      [0, 0, 60],
      [0, 0, 140],
      [0, 2, 230],
    ]),
    ...batchAt(0, 1, 3, 0, 0, [
      [0, 0, 40],
      [150, 0, 40],
      [0, 0, 40],
    ]),
    ...batchAt(1, 252, 2, 0, 0, [
      [0, 0, 40],
      [0, 0, 40],
    ]),
    ...batchAt(1, 1, 248, 5, 160),
    ...op('take', 0, 0, 5),
    ...op('take', 1, 1, 10),
    ...deferBatch(3, 90, [50, 0], [50, 1], [50, 3]),
    ...deferBatch(2, 250, [50, 0], [50, 1]),
    ...deferBatch(3, 90, [50, 0], [20, 0], [50, 1]),
    ...deferBatch(2, 90, [50, 0], [200, 2]),
    ...deferBatch(241, 60, 3),
    ...deferBatch(243, 60, 0),
    ...deferBatch(250, 240),
    ...op('time', 20),
    ...op('maintainAll'),
    ...op('take', 0, 0, 5),
    ...deferBatch(250, 180),
    ...op('take', 1, 1, 10),
    ...deferBatch(250, 40),
  ],
  'slices-prepare-visit': [
    ...config({
      bindings: 3,
      serverMax: 6,
      serverReserve: 1,
      domains: [
        { pairs: [{ max: 2 }, { max: 2 }, { max: 1 }] },
        { pairs: [{ max: 3 }, { max: 0 }, { max: 2 }] },
        { scopeMax: 2, pairs: [{}, {}, { suspended: true }] },
        {},
        { pairs: [{ max: 5, aggr: 255 }, {}, {}] },
      ],
    }),
    ...enq(0, 0),
    ...enq(0, 1),
    ...enq(0, 2),
    ...enq(1, 0),
    ...enq(1, 1),
    ...enq(2, 2),
    ...enq(2, 0),
    ...enq(3, 1, 0, 100),
    ...enq(4, 0),
    ...enq(4, 2),
    ...slice(1),
    ...slice(3),
    ...slice(0),
    ...slice(7 | (3 << 3), 2),
    ...slice(2),
    ...slice(6, 1),
    ...op('prepareVisit', 0, 0, 1),
    ...op('prepareVisit', 0, 4, 3),
    ...op('prepareVisit', 2, 9, 1),
    ...op('release', 0, 0),
    ...op('release', 0, 0),
    ...op('time', 100),
    ...op('prepareVisit', 3, 0, 3),
    ...op('prepareVisit', 4, 0, 1),
    ...slice(5),
    ...op('query', 5, 0, 4, 0),
    ...op('release', 0, 0),
    ...op('prepareVisit', 4, 3, 1),
    ...slice(4),
    ...slice(7, 250),
  ],
  'slice-snapshot': [
    ...config({
      bindings: 2,
      serverMax: 10,
      serverReserve: 1,
      domains: [{ pairs: [{ max: 2 }, { max: 2 }] }, {}, { pairs: [{ max: 1 }, { max: 3 }] }, {}, {}],
    }),
    ...enq(0, 0),
    ...enq(0, 1),
    ...enq(1, 0),
    ...enq(2, 1),
    ...enq(2, 0),
    ...enq(3, 1),
    ...enq(3, 0, 0, 100),
    // A pass in slices taken from one snapshot by both calls; domain 4 becomes due (not in it) and
    // domain 2 stops being due (visited all the same), the rotation moves on in the middle.
    ...slice(1),
    ...slice(1 | NEXT),
    ...enq(4, 0),
    ...op('fail', 2, 200),
    ...slice(7 | (2 << 3)),
    ...slice(3 | more(1)),
    ...slice(2 | NEXT | more(3)),
    // fresh and maintainAll abandon a pass in progress; a fresh slice of 0 only takes a snapshot.
    ...slice(0 | FRESH),
    ...slice(1),
    ...op('maintainAll'),
    ...slice(2 | NEXT),
    ...slice(0 | FRESH | NEXT),
    ...op('time', 60),
    ...slice(4 | NEXT | VISIT | more(2), 0, 0, 2),
    ...slice(5, 1),
    ...op('take', 0, 0, 3),
    ...op('settleBatch', 250),
    ...slice(6 | FRESH | NEXT | VISIT | more(3), 2, 3, 0),
    ...op('addDomain', 0, 3, 0, 0, 3, 0, 0),
    ...enq(5, 1),
    ...slice(1 | more(3)),
    ...slice(5 | FRESH | more(1)),
    ...op('query', 5, 0, 0, 0),
    ...op('query', 5, 0, 3, 0),
  ],
  'cancel-batch': [
    ...config({ bindings: 2, domains: [{ pairs: [{ max: 2 }, { max: 2 }] }, { pairs: [{ max: 1 }, { max: 1 }] }] }),
    ...batch(0, 0, 250, 0, 40, 0),
    ...batch(0, 1, 243, 1, 40, 0),
    ...enq(1, 0, 0, 100),
    ...enq(1, 0, 1, 120),
    ...enq(1, 1),
    ...op('take', 0, 0, 5),
    // Queued, repeated, known, unknown ids: cancelled or skipped; then refusals (in flight, bogus).
    ...cancelBatch(8, 0, [0, 0], [10, 5], [100, 0], [140, 30], [190, 0], [210, 9], [0, 1], [50, 3]),
    ...cancelBatch(4, 0, [0, 0], [170, 0], [0, 2], [240, 0]),
    ...cancelBatch(3, 0, [240, 1], [170, 0], [0, 0]),
    ...cancelBatch(
      11,
      0,
      [0, 4],
      [0, 6],
      [0, 8],
      [0, 10],
      [0, 12],
      [0, 14],
      [0, 16],
      [0, 18],
      [0, 20],
      [0, 22],
      [100, 1],
    ),
    // Whole queue heads: forward, reversed with repeats and ids enqueued again, spoilt.
    ...cancelBatch(242, 0, 0, 3),
    ...cancelBatch(241, 0, 0, 5),
    ...cancelBatch(200, 1, 0, 0),
    ...op('take', 0, 1, 3),
    ...cancelBatch(205, 0x07, 1, 0),
    ...batch(0, 0, 247, 0, 40, 0),
    ...cancelBatch(210, 0x9f, 0, 0),
    ...op('time', 100),
    ...op('maintainAll'),
    ...op('take', 1, 0, 2),
    ...cancelBatch(6, 0, [0, 0], [0, 2], [190, 2], [190, 7], [100, 0], [195, 1]),
    ...op('settleBatch', 250),
    ...cancelBatch(201, 0x21, 2, 0),
    ...cancelMany(0, 0, 0, 0, 1, 0x11),
  ],
  'visit-default': [
    ...config({
      bindings: 3,
      serverMax: 5,
      serverReserve: 2,
      throttles: [[2, 300]],
      domains: [
        { pairs: [{ max: 3 }, { max: 2, throttle: 1 }, { max: 2, suspended: true }] },
        { scopeMax: 3, pairs: [{ max: 5, aggr: 255 }, { max: 0 }, { max: 4 }] },
        {},
      ],
    }),
    // Before any prepareVisit: BadArgument, for a binding in range or not.
    ...visitDefault(NOPREP | LIST | (2 << 5), 0, 0, 3, 5),
    // The throttled pair (2 per 300 ms) takes both grants of its window at a prepareVisit of
    // domain 0 with goalsz 2; they are released, and after 350 ms the defaults of a new
    // prepareVisit must act at its now, when the window is free again.
    ...enq(0, 1),
    ...enq(0, 1),
    ...visitDefault(ORDER, 0, 0, 4, 0),
    ...op('release', 0, 0),
    ...op('release', 0, 0),
    ...op('time', 50),
    ...visitDefault(ORDER, 0, 0, 0, 0),
    ...op('release', 0, 0),
    ...enq(0, 0),
    ...enq(0, 2),
    ...enq(1, 0),
    ...enq(1, 0),
    ...enq(1, 2),
    ...enq(2, 1),
    // prepareVisit of domain 0 (no visit of its own), then the defaults in its order; again with
    // goalsz 2 (each call opens more); a list with out-of-range bindings; the same pair three times.
    ...visitDefault(ORDER, 0, 0, 0, 0),
    ...visitDefault(ALL_B, 1, 0, 4, 0),
    ...visitDefault(LIST | (4 << 5), 2, 1, 0, 2, 0, 3, 4, 5, 2),
    ...visitDefault(SAME | (1 << 5), 3, 1, 3, 0, 2),
    // The state of the last prepareVisit, after its domain's connections were released and the
    // clock moved (the throttled pair's window); a prepareVisit with its own visit, then the calls.
    ...op('release', 0, 0),
    ...op('release', 0, 1),
    ...op('time', 50),
    ...visitDefault(NOPREP | ALL_B, 0),
    ...visitDefault(ORDER | STALE, 3, 0, 0, 1, 60),
    ...op('release', 0, 0),
    ...visitDefault(NOPREP | SAME | (2 << 5), 6, 1),
    ...op('prepareVisit', 2, 0, 1),
    ...visitDefault(NOPREP | LIST | (3 << 5), 0, 1, 0, 2, 6),
    ...op('setSuspended', 0, 0, 1),
    ...visitDefault(SAME, 0, 0, 0, 0, 0),
  ],
  'slice-grant-cap': [
    ...config({
      bindings: 2,
      serverMax: 12,
      serverReserve: 1,
      domains: [
        { pairs: [{ max: 3, aggr: 255 }, { max: 2 }] },
        { pairs: [{ max: 1 }, { max: 1 }] },
        { pairs: [{ max: 4, aggr: 255 }, { max: 0 }] },
        {},
        { pairs: [{ max: 2 }, { max: 2 }] },
      ],
    }),
    ...enq(0, 0),
    ...enq(0, 0),
    ...enq(0, 1),
    ...enq(1, 0),
    ...enq(1, 1),
    ...enq(2, 0),
    ...enq(2, 0),
    ...enq(2, 0),
    ...enq(3, 1, 0, 100),
    ...enq(4, 0),
    ...enq(4, 1),
    // A whole pass under a cap of 1, 2, 3 grants: it stops after the domain that reached the cap
    // and the next slices (capped or not, nextSlice or maintainSlice) continue the snapshot.
    ...capped(5, 0, 0),
    ...capped(5 | more(1), 0, 1),
    ...capped(5 | NEXT | more(2), 0, 2),
    ...op('release', 0, 0),
    ...op('release', 0, 0),
    ...op('time', 100),
    ...enq(3, 0),
    ...capped(7 | FRESH, 0, 2),
    ...capped(3 | more(3), 0, 0),
    ...slice(5),
    // Caps of 8, 2^32-1 and SIZE_MAX (no cap), with the JS visit in between.
    ...op('fail', 0, 200),
    ...enq(0, 1),
    ...capped(6 | FRESH, 1, 7),
    ...capped(5, 1, 230),
    ...capped(5, 0, 250),
    ...op('release', 0, 0),
    ...op('release', 0, 1),
    ...capped(2 | NEXT | VISIT | more(3), 0, 1, 0, 1),
    ...capped(4 | FRESH | more(2), 0, 3),
    ...op('maintainAll'),
    ...capped(1 | more(3), 2, 0),
  ],
  'lease-table-churn': [
    ...config({
      bindings: 3,
      serverMax: 0xff,
      serverReserve: 3,
      domains: [
        { pairs: [{ max: 6 }, { max: 6 }, { max: 6 }] },
        { pairs: [{ max: 6 }, { max: 6 }, { max: 6 }] },
        { pairs: [{ max: 6 }, { max: 6 }, { max: 6 }] },
        { pairs: [{ max: 6 }, { max: 4 }, { max: 6 }] },
      ],
    }),
    ...enq(0, 0),
    ...enq(1, 1),
    ...enq(2, 2),
    ...enq(3, 0),
    ...churn(true, 1, 0),
    ...churn(true, 4, 5),
    ...churn(false, 2, 3),
    ...op('goalOpen', 0, 0, 0, 5, 2),
    ...op('migrate', 0, 3, 1),
    ...op('migrate', 0, 9, 3),
    ...op('migrate', 0, 17, 2),
    ...op('release', 0, 7),
    ...op('release', 100, 13),
    ...op('release', 190, 1),
    ...op('release', 205, 2),
    ...churn(true, 3, 4),
    ...op('maintainAll'),
    ...churn(false, 4, 1),
  ],
  'arrivals-attempts': [
    ...config({
      bindings: 2,
      serverMax: 6,
      serverReserve: 1,
      throttles: [[2, 300]],
      domains: [{ pairs: [{ max: 2 }, { max: 2 }] }, {}, { pairs: [{ max: 1 }, { max: 1, msgThrottle: 1 }] }],
    }),
    ...enq(0, 0),
    ...enq(1, 1),
    // Accepted: many pairs, urgent ones, equal times kept in arrival order, one delayed, one
    // expired at once, a domain field of -0 (domain 0), a binding field of -0 (binding 0, not
    // urgent), and id 0.
    ...arrivals(
      9,
      0,
      arr(0, 0),
      arr(1, 1, { urgent: true }),
      arr(2, 0, { next: 100 }),
      arr(0, 0),
      arr(0, 1, { exp: 116 }),
      arr(0, 0, { urgent: true }),
      arr(1, 1, { id: spoilt(SPOIL.domainNegZero) }),
      arr(1, 1, { id: spoilt(SPOIL.bindingNegZero) }),
      arr(2, 1, { id: spoilt(SPOIL.idZero) }),
    ),
    // Refused whole: a queued id; a repeat of an earlier entry; a repeat before a bad domain (the
    // domain wins); priority 2; binding 65535; a bad expiry; a bad now; then an empty batch.
    ...arrivals(3, 0, arr(0, 0), arr(1, 0), arr(0, 0, { id: 220, pick: 0 })),
    ...arrivals(3, 0, arr(0, 0), arr(1, 0, { id: 160, pick: 0 }), arr(2, 1)),
    ...arrivals(3, 0, arr(0, 0), arr(0, 0, { id: 160, pick: 0 }), arr(1, 0, { id: spoilt(SPOIL.domainOut) })),
    ...arrivals(2, 0, arr(0, 0), arr(1, 1, { id: spoilt(SPOIL.priority2) })),
    ...arrivals(2, 0, arr(0, 1, { id: spoilt(SPOIL.binding65535) }), arr(1, 1)),
    ...arrivals(2, 0, arr(2, 0), arr(2, 1, { id: spoilt(SPOIL.expiryNaN) })),
    ...arrivals(2, 0x0f, arr(0, 0), arr(0, 1)),
    ...arrivals(2, 0x1f, arr(0, 0), arr(0, 1)),
    ...arrivals(0, 0),
    // Big batches: 96 fresh ids; 64 with a repeat; 80 with priority 2 at entry 17; 48 with a
    // repeat at 9 and a bad domain at 15 (the bad field wins); 32 with an id in flight.
    ...arrivals(245, 0, 0, 0),
    ...arrivals(243, 0x10, 50, 3),
    ...arrivals(244, 0x20, 17, 6 | (SPOIL.priority2 << 3)),
    ...arrivals(242, 0x30, 9, 7 | (SPOIL.domainOut << 3)),
    ...op('take', 0, 0, 3),
    ...arrivals(241, 0x40, 5, 5),
    // setAttempts: queued (65535, then taken: it stays 65535; 7; 1), in flight, unknown, bogus,
    // 2^53-1; a take counts on from the count set; an untake counts back.
    ...setAttempts(0, 0, 6, 1),
    ...setAttempts(10, 1, 3, 1),
    ...setAttempts(20, 2, 1),
    ...setAttempts(120, 0, 0),
    ...setAttempts(210, 0, 2),
    ...setAttempts(240, 3, 4),
    ...setAttempts(225, 0, 5),
    ...setAttempts(50, 5, 200, 1),
    ...op('untake', 0, 0),
    ...op('take', 0, 0, 4),
    ...op('take', 0, 1, 4),
    ...op('defer', 0, 0, 100),
    ...op('time', 100),
    ...op('maintainAll'),
    ...setAttempts(0, 4, 5, 1),
    ...op('take', 2, 0, 3),
    // A cancelled id comes back among fresh ones; the largest id; setAttempts on it.
    ...op('cancel', 200, 5),
    ...arrivals(
      12,
      0,
      arr(0, 0),
      arr(1, 0),
      arr(2, 0),
      arr(0, 1),
      arr(1, 1, { id: 175, pick: 0 }),
      arr(2, 1),
      arr(0, 0, { urgent: true }),
      arr(1, 0, { next: 120 }),
      arr(2, 1, { next: 100 }),
      arr(0, 1, { id: spoilt(SPOIL.idMax) }),
      arr(1, 1),
      arr(2, 0),
    ),
    ...setAttempts(225, 0, 2, 1),
    ...arrivals(1, 0, arr(0, 0)),
  ],
  // The Host scope: a host capped at 4 (1 for binding 1) and an uncapped one; domain 0 opens one
  // connection before its MX set is known, then within the cap; claims that move and that are
  // refused (host 0 full for binding 1); a migration to a domain with no set; a repeated host and
  // a bad addHost refused.
  // addHost: cap byte (% 6, >= 0xc0 none), k (>= 250: one binding cap too many), a cap byte per
  // binding (% 4). setDomainHosts: domain, n (% 5 hosts follow, each % hosts, >= 240 unknown).
  // claimHost: mode (< 200 an open lease), pick, host byte (as setDomainHosts').
  'host-caps': [
    ...config({ bindings: 2, serverMax: 12, domains: [{ pairs: [{ max: 2 }, { max: 5 }] }, {}, {}] }),
    ...op('addHost', 4, 0, UNLIMITED, 1),
    ...op('addHost', UNLIMITED, 0, UNLIMITED, UNLIMITED),
    ...enq(0, 0),
    ...enq(0, 0),
    ...enq(0, 0),
    ...enq(0, 1),
    ...enq(1, 0),
    ...enq(2, 0),
    ...op('goalOpen', 0, 0, 3, 5, 0),
    ...op('setDomainHosts', 0, 1, 0),
    ...op('setDomainHosts', 1, 2, 0, 1),
    ...op('goalOpen', 0, 0, 3, 5, 0),
    ...op('goalOpen', 0, 1, 3, 5, 0),
    ...op('maintainAll'),
    ...op('claimHost', 0, 0, 1),
    ...op('claimHost', 0, 1, 0),
    ...op('migrate', 0, 0, 2),
    ...op('setDomainHosts', 0, 2, 0, 0),
    ...op('addHost', 1, 250, 1, 1),
    ...op('claimHost', 0, 2, 245),
    // Binding 1 at host 0 is at its cap of 1: domain 1's binding-1 leases go to host 1, and a claim
    // of host 0 by any of them is refused.
    ...enq(1, 1),
    ...enq(1, 1),
    ...op('goalOpen', 1, 1, 3, 5, 0),
    ...[5, 4, 3, 2, 1, 0].flatMap((k) => op('claimHost', 0, k, 0)),
    ...op('maintainAll'),
  ],
  // forgetDomain: refused with mail and with a connection, then forgotten and made again (a new
  // domain in the slot, limits: scopeMax, then a pair of max 2) in the middle of a sliced pass.
  'forget-domain': [
    ...config({ bindings: 1, domains: [{ pairs: [{ max: 3 }] }, {}, {}] }),
    ...enq(0),
    ...enq(1),
    ...enq(2),
    ...op('forgetDomain', 0, 0, UNLIMITED, ...pair({ max: 2 })),
    ...op('maintainAll'),
    ...op('forgetDomain', 1, 1, UNLIMITED, ...pair({ max: 2 })),
    ...op('take', 0, 0, 4),
    ...op('settle', 0, 0),
    ...op('release', 0, 0),
    ...op('release', 0, 0),
    ...op('forgetDomain', 0, 1, UNLIMITED, ...pair({ max: 2 })),
    ...enq(0),
    ...slice(1, 0),
    ...op('fail', 2, 8),
    ...op('forgetDomain', 2, 0, 3, ...pair({ max: 1 })),
    ...slice(0, 0),
    ...op('forgetDomain', 0, 1, UNLIMITED, ...pair()),
  ],
  // applyOutcomes: staged settles and defers with the table's handle, a garbage handle, an id not
  // in flight, a repeat in the same batch; then more messages taken with the table kept, and a
  // second batch beside settleBatch and a single defer.
  // Entry bytes: mode, pick (an in-flight id when mode < 150), how (bit 0 defer, then a time byte;
  // bits 1-3 a garbage handle; bit 4 the table's handle).
  'staged-outcomes': [
    ...config({ bindings: 1, domains: [{ pairs: [{ max: 3 }] }] }),
    ...enq(),
    ...enq(),
    ...enq(),
    ...enq(),
    ...enq(0, 0, 0, 100),
    ...op('take', 0, 0, 4),
    ...op('applyOutcomes', 5, 0, 0, 0x10, 0, 1, 0x05, 90, 240, 3, 0x10, 0, 0, 0x11, 60, 0, 0, 0x02),
    ...op('take', 0, 0, 4),
    ...op('applyOutcomes', 3, 0, 0, 0x11, 30, 0, 1, 0x10, 0, 1, 0x10),
    ...op('maintainAll'),
    ...op('time', 20),
    ...op('maintainAll'),
    ...op('take', 0, 0, 5),
    ...op('settleBatch', 2, 100, 0, 0, 0),
    ...op('defer', 0, 0, 90),
    ...op('applyOutcomes', 2, 0, 0, 0x10, 0, 0, 0x13, 200),
  ],
};

const dir = join(dirname(fileURLToPath(import.meta.url)), 'corpus');
mkdirSync(dir, { recursive: true });
const only = process.argv.slice(2);
for (const name of only) if (!(name in seeds)) throw new Error(`no seed named ${name}`);
for (const [name, bytes] of Object.entries(seeds)) {
  if (only.length > 0 && !only.includes(name)) continue;
  for (const b of bytes) if (!Number.isInteger(b) || b < 0 || b > 255) throw new Error(`${name}: bad byte ${b}`);
  writeFileSync(join(dir, name), Uint8Array.from(bytes));
  console.log(`${name}: ${bytes.length} bytes`);
}
