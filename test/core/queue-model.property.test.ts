// Model-based property test: random sequences of queue and connection operations run against the
// real addon (through MailQueueCore) and against test/model/naive_core.ts, a plain-array model of
// docs/architecture.md §4-§8. After every operation the two must agree on: the result of the operation
// (return value or error code), the bounce events it caused, the grants a maintenance pass made
// (connection id, domain, binding: the model copies the native rotation of domains and bindings),
// every active queue's order, every delayed queue's size, every message's MessageInfo, the
// connection counts per pair, domain and binding, core.stats(), the per-binding counters, and
// core.checkInvariants().
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';

import { MailQueueCore } from '../../lib/index.js';
import { arbSetup, ModelError, NaiveCore, type Setup } from '../model/naive_core.js';

const T0 = 1_700_000_000_000;
const NUM_RUNS = Number(process.env.MODEL_RUNS ?? 400);
const LONG_RUNS = Number(process.env.MODEL_LONG_RUNS ?? 120);

type Op =
  // above: the runner uses an id above every id so far instead (an MTA's sequence), which the core
  // stages on the JavaScript side until its next call (lib/core/arrival_stage.ts).
  | {
      k: 'enqueue';
      id: number;
      dom: number;
      bind: number;
      prio?: number;
      next?: number;
      exp?: number | 'inf';
      upper: boolean;
      above: boolean;
    }
  | { k: 'batch'; dom: number; bind: number; ids: number[]; prios?: number[]; fresh?: boolean }
  // enqueueMany: entry i is ids[i] for doms[i], binds[i], prios[i]; records: domains known by then
  // are named by their DomainRecord.
  | { k: 'many'; ids: number[]; doms: number[]; binds: number[]; prios: number[]; fresh: boolean; records: boolean }
  | { k: 'cancel'; id: number; inFlight: boolean; pick: number }
  // ids, then maybe a message in flight (picked when the op runs) and a bad id inserted at *At.
  | { k: 'cancelMany'; ids: number[]; inFlight?: number; inFlightAt: number; bad?: number; badAt: number }
  | { k: 'take'; dom: number; bind: number; n: number }
  | { k: 'settle'; pick: number; stray?: number }
  | { k: 'defer'; pick: number; rel: number; atExpiry?: 0 | 1; stray?: number }
  | { k: 'untake'; pick: number; stray?: number }
  | { k: 'remove'; dom: number; bind: number; pick: number; mode: 'own' | 'other' | 'stray' }
  | { k: 'advance'; ms: number }
  | { k: 'maintain'; back?: number }
  | { k: 'maintainDomain'; dom: number; goalsz: number }
  | { k: 'release'; pick: number; stray: boolean }
  // forgetIdleDomains(): the idle domains go; their names come back with their next message, in
  // the slot forgotten last (the pass order follows the slots). Records held from before refuse.
  // clear: first cancel every queued message of that domain (on both), so that it has a chance to
  // be idle.
  | { k: 'forget'; clear?: number };

interface Shape {
  /** ids are 0 .. idRange-1: small, so that duplicates and reuse of freed ids happen all the time. */
  idRange: number;
  /** Largest batch, and largest take. Queues longer than 64 span several skiplist runs. */
  batchMax: number;
  takeMax: number;
  /** Weights of the operations that differ from the defaults. */
  weights?: Partial<Record<Op['k'], number>>;
}

/** Times move in steps of 250 ms (throttle windows are multiples of 500 ms): events land exactly
 *  on expiry times and window edges often, where off-by-one mistakes show. */
const ms = (min: number, max: number) => fc.integer({ min: min / 250, max: max / 250 }).map((x) => x * 250);

function arbOp({ idRange, batchMax, takeMax, weights = {} }: Shape): fc.Arbitrary<Op> {
  const w = (k: Op['k'], dflt: number) => weights[k] ?? dflt;
  const id = fc.integer({ min: 0, max: idRange - 1 });
  // Lower domain and binding indices more often, so that queues get several messages.
  const dom = fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: 1 }), weight: 2 },
    { arbitrary: fc.integer({ min: 0, max: 3 }), weight: 1 },
  );
  const bind = fc.oneof(
    { arbitrary: fc.constant(0), weight: 1 },
    { arbitrary: fc.integer({ min: 0, max: 2 }), weight: 1 },
  );
  const pick = fc.nat({ max: 100000 });
  // Mostly a message in flight; sometimes any id (unknown, queued or in flight) for the refusals.
  const stray = fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: id, weight: 1 });
  // A batch: a run of consecutive ids (often fresh), sometimes with a repeated id inside.
  const batchIds = fc
    .tuple(id, fc.integer({ min: 0, max: batchMax }), fc.option(fc.nat(), { nil: undefined, freq: 4 }))
    .map(([first, n, dup]) => {
      const ids = Array.from({ length: n }, (_, i) => (first + i) % idRange);
      if (dup !== undefined && n > 1) ids.push(ids[dup % n]);
      return ids;
    });
  return fc.oneof(
    {
      arbitrary: fc.record(
        {
          k: fc.constant('enqueue' as const),
          id,
          dom,
          bind,
          prio: fc.option(fc.constantFrom(0, 1), { nil: undefined }),
          next: fc.option(fc.oneof(ms(-1000, 1000), ms(-3000, 6000)), { nil: undefined }),
          exp: fc.option(fc.oneof(fc.constant('inf' as const), ms(-500, 3000), ms(-500, 15000)), { nil: undefined }),
          upper: fc.boolean(),
          above: fc.boolean(),
        },
        { requiredKeys: ['k', 'id', 'dom', 'bind', 'upper', 'above'] },
      ),
      weight: w('enqueue', 8),
    },
    {
      arbitrary: fc.record(
        {
          k: fc.constant('batch' as const),
          dom,
          bind,
          ids: batchIds,
          prios: fc.option(fc.array(fc.constantFrom(0, 1), { minLength: batchMax + 1, maxLength: batchMax + 1 }), {
            nil: undefined,
          }),
          // fresh: the runner swaps in ids that are not queued, so that long batches get through.
          fresh: fc.boolean(),
        },
        { requiredKeys: ['k', 'dom', 'bind', 'ids', 'fresh'] },
      ),
      weight: w('batch', 3),
    },
    {
      arbitrary: fc.record({
        k: fc.constant('many' as const),
        ids: batchIds,
        doms: fc.array(dom, { minLength: batchMax + 1, maxLength: batchMax + 1 }),
        binds: fc.array(bind, { minLength: batchMax + 1, maxLength: batchMax + 1 }),
        prios: fc.array(fc.constantFrom(0, 1), { minLength: batchMax + 1, maxLength: batchMax + 1 }),
        fresh: fc.boolean(),
        records: fc.boolean(),
      }),
      weight: w('many', 3),
    },
    { arbitrary: fc.record({ k: fc.constant('cancel' as const), id, inFlight: fc.boolean(), pick }), weight: 2 },
    // A run of ids (queued, unknown or repeated), now and then with an id in flight or a bad id,
    // either of which refuses the whole batch.
    {
      arbitrary: fc.record(
        {
          k: fc.constant('cancelMany' as const),
          ids: batchIds,
          inFlight: fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: pick, weight: 1 }),
          inFlightAt: fc.nat(),
          bad: fc.oneof(
            { arbitrary: fc.constant(undefined), weight: 7 },
            { arbitrary: fc.constantFrom(NaN, -1, 0.5, 2 ** 53, Infinity, -Infinity), weight: 1 },
          ),
          badAt: fc.nat(),
        },
        { requiredKeys: ['k', 'ids', 'inFlightAt', 'badAt'] },
      ),
      weight: w('cancelMany', 2),
    },
    {
      arbitrary: fc.record({ k: fc.constant('take' as const), dom, bind, n: fc.integer({ min: 1, max: takeMax }) }),
      weight: w('take', 5),
    },
    {
      arbitrary: fc.record({ k: fc.constant('settle' as const), pick, stray }, { requiredKeys: ['k', 'pick'] }),
      weight: 2,
    },
    {
      arbitrary: fc.record(
        {
          k: fc.constant('defer' as const),
          pick,
          rel: fc.oneof(fc.constant(0), ms(-1000, 1000), ms(-2000, 8000)),
          atExpiry: fc.option(fc.constantFrom(0 as const, 1 as const), { nil: undefined, freq: 3 }),
          stray,
        },
        { requiredKeys: ['k', 'pick', 'rel'] },
      ),
      weight: 3,
    },
    {
      arbitrary: fc.record({ k: fc.constant('untake' as const), pick, stray }, { requiredKeys: ['k', 'pick'] }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        k: fc.constant('remove' as const),
        dom,
        bind,
        pick,
        mode: fc.constantFrom('own' as const, 'other' as const, 'stray' as const),
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        k: fc.constant('advance' as const),
        ms: fc.oneof(fc.constant(0), ms(250, 1500), ms(1500, 20000)),
      }),
      weight: w('advance', 4),
    },
    { arbitrary: fc.constant({ k: 'maintain' as const }), weight: w('maintain', 5) },
    // maintain(now) with a `now` behind the clock (a clock step back, or a pass that sampled its time
    // early): queues and throttles must not run backwards.
    { arbitrary: fc.record({ k: fc.constant('maintain' as const), back: ms(250, 1500) }), weight: 1 },
    {
      arbitrary: fc.record({ k: fc.constant('maintainDomain' as const), dom, goalsz: fc.integer({ min: -1, max: 3 }) }),
      weight: 1,
    },
    { arbitrary: fc.record({ k: fc.constant('release' as const), pick, stray: fc.boolean() }), weight: 3 },
    {
      arbitrary: fc.record({ k: fc.constant('forget' as const), clear: dom }, { requiredKeys: ['k'] }),
      weight: w('forget', 2),
    },
  );
}

// MODEL_STATS=1 prints how often each operation succeeded or was refused, and queue lengths: a
// check that the generators reach the interesting cases.
const STATS = new Map<string, number>();
afterAll(() => {
  if (process.env.MODEL_STATS) console.log([...STATS].sort());
});

type Outcome = { ok: true; value: unknown } | { ok: false; code: string };

function outcome(f: () => unknown): Outcome {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string') throw e; // a TypeError/RangeError here is a defect on either side
    return { ok: false, code };
  }
}

/** outcome() for a batch call whose refusal names the entry (ids[i]): the code, or RangeError,
 *  with that entry, so that the index is compared too. */
function batchOutcome(f: () => unknown): Outcome {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    if (e instanceof ModelError) return { ok: false, code: e.code };
    const at = /^ids\[\d+\]/.exec((e as Error).message)?.[0] ?? `(no ids[i] in "${(e as Error).message}")`;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return { ok: false, code: `${code} ${at}` };
    if (e instanceof RangeError) return { ok: false, code: `RangeError ${at}` };
    throw e;
  }
}

/** cancelMany on the model: the first id that is not an id or is in flight refuses the batch
 *  (nothing changes); else the model's cancel() per id, counting the ones it cancelled. */
function modelCancelMany(model: NaiveCore, ids: number[]): number {
  ids.forEach((id, i) => {
    if (!Number.isSafeInteger(id) || id < 0) throw new ModelError(`RangeError ids[${i}]`);
    if (model.messages.get(id)?.state === 'in-flight') throw new ModelError(`ERR_IN_FLIGHT ids[${i}]`);
  });
  let n = 0;
  for (const id of ids) if (model.cancel(id)) n++;
  return n;
}

const sorted = (a: number[]) => [...a].sort((x, y) => x - y);

function compareAll(
  core: MailQueueCore,
  model: NaiveCore,
  setup: Setup,
  step: string,
  sample: number[],
  last = false,
): void {
  // First, before any call that would hand staged arrivals to the native core: the counters the
  // core shares count them already.
  const stats = model.stats();
  expect(core.counters[core.counterIndex.active], `${step}: counter active (before any call)`).toBe(stats.active);
  expect(core.counters[core.counterIndex.delayed], `${step}: counter delayed (before any call)`).toBe(stats.delayed);
  for (let b = 0; b < setup.bindings.length; b++) {
    const name = model.bindingNames[b];
    const active = model.domains.reduce((s, d) => s + model.activeOrder(d, b).length, 0);
    expect(
      core.counters[core.counterIndex[`active:${name}`]],
      `${step}: counter active:${name} (before any call)`,
    ).toBe(active);
  }
  expect(core.domains(), `${step}: domains`).toEqual(model.domains);
  for (const d of model.domains) {
    const dr = core.domain(d);
    for (let b = 0; b < setup.bindings.length; b++) {
      // The whole queue: toArray(100000) allocates 800 kB per call, which would dominate the run
      // time; asking for 8 more than the model holds shows any extra entry just as well (and the
      // last comparison of each run reads with toArray(100000)).
      const order = model.activeOrder(d, b);
      const q = core.activeQueue(d, b);
      expect(q.toArray(last ? 100000 : order.length + 8), `${step}: active queue ${d}/${b}`).toEqual(order);
      expect(q.size, `${step}: active size ${d}/${b}`).toBe(order.length);
      if (process.env.MODEL_STATS) {
        const bucket = `queue-len:${order.length > 64 ? '>64' : order.length > 16 ? '17-64' : '<=16'}`;
        STATS.set(bucket, (STATS.get(bucket) ?? 0) + 1);
      }
      expect(q.peek(), `${step}: peek ${d}/${b}`).toBe(order[0]);
      // Slices from inside the queue, across the 64-entry runs of the skiplist.
      for (const off of new Set([1, order.length >> 1, order.length - 1, 63, 64, 65])) {
        if (off >= 1 && off <= order.length) {
          expect(q.toArray(4, off), `${step}: toArray(4, ${off}) of ${d}/${b}`).toEqual(order.slice(off, off + 4));
        }
      }
      expect(dr.connections(b), `${step}: connections ${d}/${b}`).toBe(model.pairCount(d, b));
    }
    expect(dr.connections(), `${step}: connections ${d}`).toBe(model.domainCount(d));
    expect(dr.delayedSize, `${step}: delayed size ${d}`).toBe(model.delayedMessages(d).length);
    const names = model.bindingNames;
    expect(dr.toJSON(), `${step}: snapshot of ${d}`).toEqual({
      name: d,
      active: Object.fromEntries(names.map((n, b) => [n, model.activeOrder(d, b).length])),
      delayed: model.delayedMessages(d).length,
      connections: Object.fromEntries(names.map((n, b) => [n, model.pairCount(d, b)])),
      suspended: Object.fromEntries(names.map((n) => [n, false])),
    });
  }
  expect(core.stats(), `${step}: stats`).toEqual(model.stats());
  for (let b = 0; b < setup.bindings.length; b++) {
    const name = model.bindingNames[b];
    expect(core.counters[core.counterIndex[`connections:${name}`]], `${step}: counter connections:${name}`).toBe(
      model.bindingCount(b),
    );
    const active = model.domains.reduce((s, d) => s + model.activeOrder(d, b).length, 0);
    expect(core.counters[core.counterIndex[`active:${name}`]], `${step}: counter active:${name}`).toBe(active);
  }
  for (const i of sample) expect(core.message(i), `${step}: message(${i})`).toEqual(model.message(i));
  expect(core.checkInvariants(), `${step}: checkInvariants`).toBe(true);
}

function runScenario(setup: Setup, ops: Op[], { idRange }: Shape): void {
  let now = T0;
  let above = idRange; // the ids of 'enqueue' ops with above: new and rising
  // Domains are forgotten by the 'forget' op only: the idle sweep's timing is not modelled.
  const core = new MailQueueCore({
    bindings: setup.bindings,
    config: setup.config,
    clock: () => now,
    forgetIdleDomainsAfter: Infinity,
  });
  const model = new NaiveCore(setup.bindings, setup.config);
  const bounces: number[] = [];
  core.on('bounce', (e: { id: number; reason: string }) => {
    expect(e.reason).toBe('expired');
    bounces.push(e.id);
  });
  const nb = setup.bindings.length;
  const domainName = (i: number) => setup.domains[i % setup.domains.length];
  const bindingName = (i: number) => model.bindingNames[i % nb];
  const inFlightPick = (p: number, s: number | undefined): number => {
    const f = model.inFlightIds();
    return s !== undefined || f.length === 0 ? (s ?? p % idRange) : f[p % f.length];
  };
  let fresh = 0; // where 'batch' and 'many' with fresh ids look for ids that are not queued
  // Up to n ids that are not queued, from where the last such batch left off.
  const freshIds = (n: number): number[] => {
    const ids: number[] = [];
    for (let i = 0; ids.length < n && i < idRange; i++) {
      const x = (fresh + i) % idRange;
      if (!model.messages.has(x)) ids.push(x);
    }
    fresh = (fresh + n) % idRange;
    return ids;
  };
  // message(id) is compared for every id of a small range; for a large one, for a rotating slice
  // plus every id the operation named.
  const sample = (n: number, touched: number[]): number[] => {
    if (idRange <= 32) return Array.from({ length: idRange }, (_, i) => i);
    const out = new Set(touched);
    for (let i = 0; i < 24; i++) out.add((n * 24 + i) % idRange);
    return [...out];
  };
  try {
    compareAll(core, model, setup, 'start', sample(0, []));
    ops.forEach((op, n) => {
      const step = `op ${n} ${JSON.stringify(op)}`;
      let real: Outcome;
      let want: Outcome;
      const touched: number[] = [];
      switch (op.k) {
        case 'enqueue': {
          const msg = {
            id: op.above ? above++ : op.id,
            domain: op.upper ? domainName(op.dom).toUpperCase() : domainName(op.dom),
            binding: bindingName(op.bind),
            ...(op.prio === undefined ? {} : { priority: op.prio }),
            ...(op.next === undefined ? {} : { nextAttempt: now + op.next }),
            ...(op.exp === undefined ? {} : { expiresAt: op.exp === 'inf' ? Infinity : now + op.exp }),
          };
          want = outcome(() => model.enqueue(msg, now));
          real = outcome(() => core.enqueue(msg));
          break;
        }
        case 'batch': {
          const ids = op.fresh ? freshIds(op.ids.length) : op.ids;
          const prios = op.prios?.slice(0, ids.length);
          want = outcome(() => model.enqueueBatch(domainName(op.dom), bindingName(op.bind), ids, prios, now));
          real = outcome(() =>
            core.enqueueBatch(
              domainName(op.dom),
              bindingName(op.bind),
              Float64Array.from(ids),
              prios === undefined ? undefined : Uint8Array.from(prios),
            ),
          );
          touched.push(...ids);
          break;
        }
        case 'many': {
          const ids = op.fresh ? freshIds(op.ids.length) : op.ids;
          const names = ids.map((_, i) => domainName(op.doms[i]));
          const binds = ids.map((_, i) => op.binds[i] % nb);
          const prios = op.prios.slice(0, ids.length);
          const refs = names.map((d) => (op.records && core.hasDomain(d) ? core.domain(d) : d));
          want = outcome(() => model.enqueueMany(names, binds, ids, prios, now));
          real = outcome(() =>
            core.enqueueMany(refs, Uint8Array.from(binds), Float64Array.from(ids), Uint8Array.from(prios)),
          );
          touched.push(...ids);
          break;
        }
        case 'cancel': {
          const target = op.inFlight ? inFlightPick(op.pick, undefined) : op.id;
          touched.push(target);
          want = outcome(() => model.cancel(target));
          real = outcome(() => core.cancel(target));
          break;
        }
        case 'cancelMany': {
          const ids = [...op.ids];
          const flying = model.inFlightIds();
          if (op.inFlight !== undefined && flying.length > 0)
            ids.splice(op.inFlightAt % (ids.length + 1), 0, flying[op.inFlight % flying.length]);
          if (op.bad !== undefined) ids.splice(op.badAt % (ids.length + 1), 0, op.bad);
          touched.push(...ids.filter((x) => Number.isSafeInteger(x) && x >= 0));
          want = batchOutcome(() => modelCancelMany(model, ids));
          real = batchOutcome(() => core.cancelMany(Float64Array.from(ids)));
          break;
        }
        case 'take':
          want = outcome(() => model.take(domainName(op.dom), bindingName(op.bind), op.n, now));
          real = outcome(() => core.take(domainName(op.dom), bindingName(op.bind), op.n));
          break;
        case 'settle': {
          const target = inFlightPick(op.pick, op.stray);
          touched.push(target);
          want = outcome(() => model.settle(target));
          real = outcome(() => core.settle(target));
          break;
        }
        case 'defer': {
          const target = inFlightPick(op.pick, op.stray);
          touched.push(target);
          const exp = model.messages.get(target)?.expiresAt ?? Infinity;
          const t = op.atExpiry !== undefined && Number.isFinite(exp) ? exp + op.atExpiry : now + op.rel;
          want = outcome(() => model.defer(target, t, now));
          real = outcome(() => core.defer(target, t));
          break;
        }
        case 'untake': {
          const target = inFlightPick(op.pick, op.stray);
          touched.push(target);
          want = outcome(() => model.untake(target));
          real = outcome(() => core.untake(target));
          break;
        }
        case 'remove': {
          let d = domainName(op.dom);
          let b = bindingName(op.bind);
          let target = op.pick % idRange;
          const active = [...model.messages.values()].filter((m) => m.state === 'active');
          if (op.mode !== 'stray' && active.length > 0) {
            const m = active[op.pick % active.length];
            target = m.id;
            if (op.mode === 'own') {
              d = m.domain;
              b = model.bindingNames[m.binding];
            }
          }
          touched.push(target);
          want = outcome(() => model.removeActive(d, b, target));
          real = outcome(() => core.activeQueue(d, b).remove(target));
          break;
        }
        case 'advance':
          now += op.ms;
          want = real = { ok: true, value: undefined };
          break;
        case 'maintain':
          if (op.back === undefined) {
            want = outcome(() => model.maintain(now));
            real = outcome(() => core.maintain().grants);
          } else {
            const t = now - op.back;
            want = outcome(() => model.maintain(t));
            real = outcome(() => core.maintain(t).grants);
          }
          break;
        case 'maintainDomain':
          want = outcome(() => model.maintainDomain(domainName(op.dom), now, op.goalsz));
          real = outcome(() => core.maintainDomain(domainName(op.dom), { goalsz: op.goalsz }).grants);
          break;
        case 'release': {
          const open = model.connections;
          const target = op.stray || open.length === 0 ? 1e9 + (op.pick % 5) : open[op.pick % open.length].connectionId;
          want = outcome(() => model.releaseConnection(target));
          real = outcome(() => core.releaseConnection(target));
          break;
        }
        case 'forget': {
          if (op.clear !== undefined) {
            const name = domainName(op.clear);
            const queued = [...model.messages.values()]
              .filter((m) => m.domain === name && m.state !== 'in-flight')
              .map((m) => m.id);
            for (const id of queued) model.cancel(id);
            expect(core.cancelMany(Float64Array.from(queued)), `${step}: clear ${name}`).toBe(queued.length);
          }
          const held = core.domains().map((d) => core.domain(d));
          want = outcome(() => model.forgetIdleDomains());
          real = outcome(() => core.forgetIdleDomains());
          const kept = new Set(model.domains);
          for (const dr of held) {
            expect(dr.forgotten, `${step}: ${dr.name} forgotten`).toBe(!kept.has(dr.name));
            if (dr.forgotten) {
              expect(() => dr.activeSize(), `${step}: held record of ${dr.name}`).toThrow(/forgotten/);
              expect(() => core.take(dr, 0), `${step}: take(held record of ${dr.name})`).toThrow(/forgotten/);
            }
          }
          break;
        }
      }
      expect(real, `${step}: result`).toEqual(want);
      if (process.env.MODEL_STATS) {
        const key = `${op.k}:${want.ok ? (Array.isArray(want.value) ? (want.value.length > 0 ? 'nonempty' : 'empty') : String(want.value)) : want.code.replace(/ ids\[\d+\]$/, '')}`;
        STATS.set(key, (STATS.get(key) ?? 0) + 1);
        if (model.bounces.length) STATS.set('bounces', (STATS.get('bounces') ?? 0) + model.bounces.length);
      }
      expect(sorted(bounces), `${step}: bounces`).toEqual(sorted(model.bounces));
      bounces.length = 0;
      model.bounces = [];
      touched.push(
        ...(want.ok && Array.isArray(want.value) && typeof want.value[0] === 'number' ? (want.value as number[]) : []),
        ...('id' in op ? [op.id] : []),
        ...model.inFlightIds().slice(0, 8),
      );
      compareAll(core, model, setup, step, sample(n, touched), n === ops.length - 1);
    });
  } finally {
    core.close();
  }
}

describe('queue model: MailQueueCore against a naive model', () => {
  const seed = process.env.MODEL_SEED ? Number(process.env.MODEL_SEED) : undefined;

  test(
    'random operation sequences agree with the model after every step',
    () => {
      const shape: Shape = { idRange: 16, batchMax: 5, takeMax: 4 };
      fc.assert(
        fc.property(
          arbSetup({ expirations: true, maxDomains: 4 }),
          fc.array(arbOp(shape), { minLength: 1, maxLength: 80, size: 'max' }),
          (setup, ops) => runScenario(setup, ops, shape),
        ),
        { numRuns: NUM_RUNS, seed },
      );
    },
    Math.max(300_000, NUM_RUNS * 500),
  );

  test(
    'long queues (several 64-entry skiplist runs, a growing id index) agree with the model',
    () => {
      const shape: Shape = { idRange: 700, batchMax: 150, takeMax: 90, weights: { batch: 6, advance: 2, maintain: 3 } };
      fc.assert(
        fc.property(
          arbSetup({ expirations: true, maxDomains: 2 }),
          fc.array(arbOp(shape), { minLength: 1, maxLength: 60, size: 'max' }),
          (setup, ops) => runScenario(setup, ops, shape),
        ),
        { numRuns: LONG_RUNS, seed },
      );
    },
    Math.max(300_000, LONG_RUNS * 1_500),
  );

  test('a batch with a duplicate id (inside the batch or already queued) is refused whole', () => {
    fc.assert(
      fc.property(
        arbSetup({ expirations: false, maxDomains: 2 }),
        fc.array(fc.integer({ min: 0, max: 15 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.integer({ min: 0, max: 15 }), { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        (setup, first, second, sameDomain) => {
          let now = T0;
          const core = new MailQueueCore({ bindings: setup.bindings, config: setup.config, clock: () => now });
          try {
            const queued = [...new Set(first)];
            core.enqueueBatch(setup.domains[0], undefined, Float64Array.from(queued));
            now += 10;
            const target = sameDomain ? setup.domains[0] : setup.domains[1];
            const before = {
              stats: core.stats(),
              domains: core.domains(),
              q: core.activeQueue(setup.domains[0], 0).toArray(100),
            };
            const dup = second.some((x, i) => second.indexOf(x) !== i || queued.includes(x));
            const r = outcome(() => core.enqueueBatch(target, undefined, Float64Array.from(second)));
            if (dup) {
              expect(r).toEqual({ ok: false, code: 'ERR_DUPLICATE_ID' });
              expect(core.stats()).toEqual(before.stats);
              expect(core.domains()).toEqual(before.domains);
              expect(core.activeQueue(setup.domains[0], 0).toArray(100)).toEqual(before.q);
              for (const x of second) if (!queued.includes(x)) expect(core.message(x)).toBeUndefined();
            } else {
              expect(r.ok).toBe(true);
              expect(core.stats().active).toBe(before.stats.active + second.length);
              expect(core.activeQueue(target, 0).toArray(100).slice(-second.length)).toEqual(second);
            }
            expect(core.checkInvariants()).toBe(true);
          } finally {
            core.close();
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
