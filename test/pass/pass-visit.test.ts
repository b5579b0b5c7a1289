// The JS-driven pass (any provider registered) learns each domain's binding order, reserves and
// wanted connections in one native call (prepareVisit) and skips the native default where the pair
// wants nothing more, as long as nothing has moved since. These tests hold it to the native pass:
// with a passive provider the grants must be exactly those of the pass with no provider, and a
// provider that changes queues or connections of a later binding must be seen by that binding.
import fc from 'fast-check';
import { afterEach, describe, expect, test } from 'vitest';

import { MailQueueCore, type CoreConfig, type Grant } from '../../lib/index.js';

const T0 = 1_700_000_000_000;
const live: MailQueueCore[] = [];
afterEach(() => {
  for (const c of live.splice(0)) if (!c.closed) c.close();
});

function make(bindings: string[], config: CoreConfig): { core: MailQueueCore; clock: { t: number } } {
  const clock = { t: T0 };
  const core = new MailQueueCore({ bindings, config, clock: () => clock.t });
  live.push(core);
  return { core, clock };
}

const key = (g: Grant) => `${g.domain}/${g.binding}`;
function tally(grants: Grant[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const g of grants) out[key(g)] = (out[key(g)] ?? 0) + 1;
  return out;
}

describe('a passive provider changes nothing', () => {
  test('random queues, limits and passes: the same grants per pair as the native pass', () => {
    fc.assert(
      fc.property(
        fc.record({
          domains: fc.integer({ min: 1, max: 6 }),
          bindings: fc.integer({ min: 1, max: 4 }),
          maxConn: fc.integer({ min: 1, max: 6 }),
          serverMax: fc.integer({ min: 1, max: 40 }),
          reserve: fc.integer({ min: 0, max: 3 }),
          steps: fc.array(
            fc.oneof(
              fc.record({
                op: fc.constant('enqueue' as const),
                d: fc.nat(5),
                b: fc.nat(3),
                n: fc.integer({ min: 1, max: 120 }),
              }),
              fc.record({
                op: fc.constant('take' as const),
                d: fc.nat(5),
                b: fc.nat(3),
                n: fc.integer({ min: 1, max: 60 }),
              }),
              fc.record({ op: fc.constant('release' as const), i: fc.nat(50) }),
              fc.record({ op: fc.constant('maintain' as const) }),
            ),
            { minLength: 1, maxLength: 25 },
          ),
        }),
        (p) => {
          const names = Array.from({ length: p.bindings }, (_, i) => `b${i}`);
          const config: CoreConfig = {
            global: {
              maxOutboundConnections: p.maxConn,
              serverMaxOutboundConnections: p.serverMax,
              serverReserveOutboundConnections: p.reserve,
            },
          };
          const a = make(names, config).core; // no provider: the native pass
          const b = make(names, config).core; // a passive provider: the JS-driven pass
          b.hooks.mailQueueMaintain.registerLast(() => 0);
          const conns: number[][] = [[], []];
          let id = 1;
          for (const s of p.steps) {
            if (s.op === 'enqueue') {
              const ids = Float64Array.from({ length: s.n }, () => id++);
              const dom = `d${s.d % p.domains}.example`;
              for (const c of [a, b]) c.enqueueBatch(dom, names[s.b % p.bindings], ids);
            } else if (s.op === 'take') {
              const dom = `d${s.d % p.domains}.example`;
              if (!a.hasDomain(dom)) continue;
              const ta = a.take(dom, s.b % p.bindings, s.n);
              const tb = b.take(dom, s.b % p.bindings, s.n);
              expect(tb).toEqual(ta);
              a.settleMany(Float64Array.from(ta));
              b.settleMany(Float64Array.from(tb));
            } else if (s.op === 'release') {
              if (conns[0].length === 0) continue;
              const i = s.i % conns[0].length;
              a.releaseConnection(conns[0].splice(i, 1)[0]);
              b.releaseConnection(conns[1].splice(i, 1)[0]);
            } else {
              const ra = a.maintain();
              const rb = b.maintain();
              expect(tally(rb.grants)).toEqual(tally(ra.grants));
              expect(rb.grants.map(key)).toEqual(ra.grants.map(key));
              conns[0].push(...ra.grants.map((g) => g.connectionId));
              conns[1].push(...rb.grants.map((g) => g.connectionId));
            }
            expect(b.stats()).toEqual(a.stats());
          }
          expect(a.checkInvariants()).toBe(true);
          expect(b.checkInvariants()).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('a provider that changes a later binding is seen by it', () => {
  // One domain, two bindings, max 2 connections a pair; each pair holds what its queue asks for.
  function setup() {
    const { core } = make(['b0', 'b1'], {
      global: { maxOutboundConnections: 2, serverMaxOutboundConnections: 100, serverReserveOutboundConnections: 0 },
    });
    core.enqueueBatch('x.example', 'b0', Float64Array.of(1));
    core.enqueueBatch('x.example', 'b1', Float64Array.of(2));
    const first = core.maintain();
    expect(tally(first.grants)).toEqual({ 'x.example/b0': 1, 'x.example/b1': 1 });
    expect(core.maintain().opened).toBe(0); // at the goal: one message, one connection
    return { core, first };
  }

  test('mail added to a later pair by an earlier provider raises its goal', () => {
    const { core } = setup();
    let id = 100;
    core.hooks.mailQueueMaintain.registerFirst((_c, dr, slot) => {
      if (slot === 0 && id === 100) {
        const ids = Float64Array.from({ length: 200 }, () => id++);
        core.enqueueBatch(dr.name, 'b1', ids);
      }
      return 0;
    });
    const r = core.maintain();
    expect(tally(r.grants)).toEqual({ 'x.example/b1': 1 });
  });

  test('a later pair emptied by an earlier provider is not offered to the providers', () => {
    const { core } = setup();
    const seen: number[] = [];
    core.hooks.mailQueueMaintain.registerFirst((_c, dr, slot) => {
      seen.push(slot);
      if (slot !== 1) core.settleMany(Float64Array.from(core.take(dr.name, 'b1', 10)));
      return 0;
    });
    const r = core.maintain();
    // The visit order rotates: when b1 comes first it is offered (and emptied after); when b0 comes
    // first, b1 is empty by its turn and skipped.
    expect(seen).toEqual(seen[0] === 1 ? [1, 0] : [0]);
    expect(r.opened).toBe(0);
    expect(core.activeQueue('x.example', 'b1').size).toBe(0);
  });

  test('a connection released by an earlier provider leaves room for a later pair', () => {
    const { core, first } = setup();
    // Raise b1's goal to 2 without a pass, then fill its room with an extra connection.
    core.enqueueBatch(
      'x.example',
      'b1',
      Float64Array.from({ length: 200 }, (_, i) => 1000 + i),
    );
    const extra = core.openConnections('x.example', 'b1', 1);
    expect(extra).toHaveLength(1);
    expect(core.maintain().opened).toBe(0); // b1 holds 2 of 2
    const b1First = first.grants.find((g) => g.binding === 'b1')!;
    let seen: number[] = [];
    let released = false;
    core.hooks.mailQueueMaintain.registerFirst((_c, _dr, slot) => {
      seen.push(slot);
      // Release one of b1's connections from b0's provider, in a visit where b0 comes first.
      if (slot === 0 && seen.length === 1 && !released) {
        released = true;
        core.releaseConnection(b1First.connectionId);
      }
      return 0;
    });
    for (let pass = 0; pass < 2 && !released; pass++) {
      seen = [];
      core.maintain();
    }
    expect(released).toBe(true);
    expect(seen).toEqual([0, 1]);
    // b1 came after the release in the same visit: it took its room back at once.
    expect(core.domain('x.example').connections(1)).toBe(2);
  });

  test('a later pair resumed by an earlier provider gets its connection in the same visit', () => {
    const { core } = make(['b0', 'b1'], { global: { maxOutboundConnections: 2, serverMaxOutboundConnections: 100 } });
    core.suspend('x.example', 'b1');
    core.enqueueBatch('x.example', 'b0', Float64Array.of(1));
    core.enqueueBatch('x.example', 'b1', Float64Array.of(2));
    core.hooks.mailQueueMaintain.registerFirst((_c, dr, slot) => {
      if (slot === 0) core.resume(dr.name, 'b1');
      return 0;
    });
    // b1 comes first in one of the two rotations: run until a visit starts with b0.
    let r = core.maintain();
    if (r.grants.length < 2) r = core.maintain();
    expect(core.domain('x.example').connections(1)).toBe(1);
    expect(core.domain('x.example').connections(0)).toBe(1);
  });

  test('goalsz of maintainDomain reaches pairs at their default goal', () => {
    const { core } = setup();
    core.hooks.mailQueueMaintain.registerLast(() => 0);
    const r = core.maintainDomain('x.example', { goalsz: 1 });
    expect(tally(r.grants)).toEqual({ 'x.example/b0': 1, 'x.example/b1': 1 });
  });
});

describe('maintain({ maxDomains }): a pass in slices', () => {
  for (const provider of [false, true]) {
    test(`slices visit every domain of the pass once, even when domains stop being due between slices${provider ? ' (with a passive provider)' : ''}`, () => {
      const config: CoreConfig = { global: { maxOutboundConnections: 1, serverMaxOutboundConnections: 1000 } };
      const whole = make(['b0'], config).core;
      const sliced = make(['b0'], config).core;
      if (provider) sliced.hooks.mailQueueMaintain.registerLast(() => 0);
      for (let d = 0; d < 23; d++) {
        for (const c of [whole, sliced]) c.enqueueBatch(`d${d}.example`, 'b0', Float64Array.of(100 + d, 200 + d));
      }
      expect(whole.maintain()).toMatchObject({ opened: 23, visited: 23, remaining: 0 });
      const first = sliced.maintain(undefined, { maxDomains: 5 });
      expect(first).toMatchObject({ visited: 5, remaining: 18 });
      const seen = new Set(first.grants.map((g) => g.domain));
      // Every domain visited so far delivers its mail: it is no longer due, and must not shift the
      // rest of the pass (each slice continues the pass's snapshot).
      const drain = () => {
        for (const dom of seen) {
          const ids = sliced.take(dom, 'b0', 10);
          if (ids.length) sliced.settleMany(Float64Array.from(ids));
        }
      };
      drain();
      let left = first.remaining;
      let slices = 1;
      while (left > 0) {
        const r = sliced.maintain(undefined, { maxDomains: 5 });
        expect(r.visited).toBe(Math.min(5, left));
        expect(r.remaining).toBe(left - r.visited);
        for (const g of r.grants) {
          expect(seen.has(g.domain)).toBe(false);
          seen.add(g.domain);
        }
        left = r.remaining;
        slices++;
        drain();
      }
      expect(slices).toBe(5);
      expect(seen.size).toBe(23);
      // No domain has mail left: the next pass has nothing to visit.
      expect(sliced.maintain(undefined, { maxDomains: 5 })).toMatchObject({ opened: 0, visited: 0, remaining: 0 });
      expect(sliced.checkInvariants()).toBe(true);
    });
  }

  test('a whole pass abandons a sliced pass in progress', () => {
    const { core } = make(['b0'], { global: { maxOutboundConnections: 1, serverMaxOutboundConnections: 1000 } });
    for (let d = 0; d < 6; d++) core.enqueueBatch(`d${d}.example`, 'b0', Float64Array.of(1 + d));
    expect(core.maintain(undefined, { maxDomains: 2 })).toMatchObject({ visited: 2, remaining: 4 });
    expect(core.maintain()).toMatchObject({ opened: 4, visited: 6, remaining: 0 });
    expect(core.maintain(undefined, { maxDomains: 2 })).toMatchObject({ opened: 0, visited: 2, remaining: 4 });
  });
});

describe('maintain({ maxGrants }): a slice ends once it opened that many connections', () => {
  for (const provider of [false, true]) {
    test(`the pass continues where the cap stopped it, and opens what a whole pass opens${provider ? ' (with a passive provider)' : ''}`, () => {
      // Ten domains wanting two connections each (max 2, mail enough for a goal of 2).
      const config: CoreConfig = {
        global: {
          maxOutboundConnections: 2,
          serverMaxOutboundConnections: 1000,
          connectionAllocationAggressiveness: 1,
        },
      };
      const whole = make(['b0'], config).core;
      const capped = make(['b0'], config).core;
      if (provider) capped.hooks.mailQueueMaintain.registerLast(() => 0);
      for (let d = 0; d < 10; d++) {
        const ids = Float64Array.from({ length: 50 }, (_, i) => d * 100 + i + 1);
        for (const c of [whole, capped]) c.enqueueBatch(`d${d}.example`, 'b0', ids);
      }
      const all = whole.maintain();
      expect(all.opened).toBe(20);
      const got: Grant[] = [];
      let r = capped.maintain(undefined, { maxGrants: 5 });
      // The domain that reached the cap finishes its visit: 6 grants, 3 domains.
      expect(r).toMatchObject({ opened: 6, visited: 3, remaining: 7 });
      got.push(...r.grants);
      while (r.remaining > 0) {
        r = capped.maintain(undefined, { maxGrants: 5 });
        expect(r.opened).toBeLessThanOrEqual(6);
        got.push(...r.grants);
      }
      expect(tally(got)).toEqual(tally(all.grants));
      // Every pair holds its goal now: nothing opens, so nothing stops the next pass early.
      expect(capped.maintain(undefined, { maxGrants: 5 })).toMatchObject({ opened: 0, visited: 10, remaining: 0 });
      expect(capped.checkInvariants()).toBe(true);
    });
  }
});
