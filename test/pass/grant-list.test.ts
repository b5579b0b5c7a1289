// maintain(now, { into: list }) writes a pass's grants into a GrantList (numbers, no object per
// grant). These tests hold it to the object form: on twin cores driven alike, the list holds exactly
// the grants that maintain() without `into` returns, in the same order, with and without providers,
// in whole passes and in slices; listeners and providers see what they saw before; bad lists are
// refused before anything happens.
import fc from 'fast-check';
import { afterEach, describe, expect, test } from 'vitest';

import {
  type GrantList,
  MailQueueCore,
  MemoryStore,
  SmtpTransport,
  type CoreConfig,
  type Grant,
} from '../../lib/index.js';
import { testBody, testMessage, waitFor } from '../support/harness.js';
import { startServer } from '../support/smtp_servers.js';

const T0 = 1_700_000_000_000;
const live: MailQueueCore[] = [];
afterEach(() => {
  for (const c of live.splice(0)) if (!c.closed) c.close();
});

function make(bindings: string[], config: CoreConfig = {}): MailQueueCore {
  const core = new MailQueueCore({ bindings, config, clock: () => T0 });
  live.push(core);
  return core;
}

const ids = (from: number, n: number) => Float64Array.from({ length: n }, (_, i) => from + i);

describe('GrantList against Grant objects', () => {
  test('random queues, limits, providers and slices: the same grants in the same order', () => {
    fc.assert(
      fc.property(
        fc.record({
          domains: fc.integer({ min: 1, max: 8 }),
          bindings: fc.integer({ min: 1, max: 3 }),
          maxConn: fc.integer({ min: 1, max: 5 }),
          serverMax: fc.integer({ min: 1, max: 40 }),
          provider: fc.constantFrom('none', 'passive', 'opens-one', 'stops-b0'),
          slice: fc.option(
            fc.record({ maxDomains: fc.integer({ min: 1, max: 4 }), maxGrants: fc.integer({ min: 1, max: 6 }) }),
            { nil: undefined },
          ),
          steps: fc.array(
            fc.oneof(
              fc.record({
                op: fc.constant('enqueue' as const),
                d: fc.nat(7),
                b: fc.nat(2),
                n: fc.integer({ min: 1, max: 50 }),
              }),
              fc.record({ op: fc.constant('release' as const), i: fc.nat(40) }),
              fc.record({ op: fc.constant('maintain' as const) }),
            ),
            { minLength: 1, maxLength: 20 },
          ),
        }),
        (p) => {
          const names = Array.from({ length: p.bindings }, (_, i) => `b${i}`);
          const config: CoreConfig = {
            global: { maxOutboundConnections: p.maxConn, serverMaxOutboundConnections: p.serverMax },
          };
          const a = make(names, config); // Grant objects
          const b = make(names, config); // a GrantList
          for (const core of [a, b]) {
            if (p.provider === 'passive') core.hooks.mailQueueMaintain.registerLast(() => 0);
            if (p.provider === 'opens-one') {
              // Opens one connection itself (through openConnections) and stops the chain.
              core.hooks.mailQueueMaintain.registerFirst(
                (_c, dr, slot) => core.openConnections(dr.name, slot, 1).length,
              );
            }
            if (p.provider === 'stops-b0')
              core.hooks.mailQueueMaintain.registerFirst((_c, _dr, slot) => (slot === 0 ? 1 : 0));
          }
          const list = b.grantList();
          const heldA: number[] = [];
          const heldB: number[] = [];
          let next = 1;
          for (const s of p.steps) {
            if (s.op === 'enqueue') {
              const d = `d${s.d % p.domains}.example`;
              const bn = names[s.b % p.bindings];
              a.enqueueBatch(d, bn, ids(next, s.n));
              b.enqueueBatch(d, bn, ids(next, s.n));
              next += s.n;
            } else if (s.op === 'release') {
              if (heldA.length === 0) continue;
              const k = s.i % heldA.length;
              a.releaseConnection(heldA.splice(k, 1)[0]);
              b.releaseConnection(heldB.splice(k, 1)[0]);
            } else {
              const ra = a.maintain(T0, p.slice ?? {});
              const rb = b.maintain(T0, { ...(p.slice ?? {}), into: list });
              expect(rb.grants).toEqual([]);
              expect(rb.opened).toBe(list.length);
              expect(rb.opened).toBe(ra.opened);
              expect([rb.visited, rb.remaining]).toEqual([ra.visited, ra.remaining]);
              const fromList = list.toArray();
              // Connection ids are the core's own numbering: the same on twins driven alike.
              expect(fromList).toEqual(ra.grants);
              for (let i = 0; i < list.length; i++) {
                expect(list.connectionId(i)).toBe(ra.grants[i].connectionId);
                expect(list.domain(i)).toBe(ra.grants[i].domain);
                expect(list.binding(i)).toBe(ra.grants[i].binding);
                expect(list.bindingSlot(i)).toBe(names.indexOf(ra.grants[i].binding));
              }
              heldA.push(...ra.grants.map((g) => g.connectionId));
              for (let i = 0; i < list.length; i++) heldB.push(list.connectionId(i));
            }
            expect(b.stats()).toEqual(a.stats());
          }
          expect(b.checkInvariants()).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  test('the list is cleared by each call and grows past its first room', () => {
    const core = make(['b0'], { global: { maxOutboundConnections: 1, serverMaxOutboundConnections: 5000 } });
    for (let d = 0; d < 700; d++) core.enqueueBatch(`d${d}.example`, 'b0', ids(d * 10 + 1, 1));
    const list = core.grantList();
    expect(list.length).toBe(0);
    const r = core.maintain(T0, { into: list });
    expect(r.opened).toBe(700);
    expect(list.length).toBe(700);
    expect(new Set(Array.from({ length: 700 }, (_, i) => list.domain(i))).size).toBe(700);
    // Every pair holds its one connection: the next pass opens nothing and empties the list.
    expect(core.maintain(T0, { into: list }).opened).toBe(0);
    expect(list.length).toBe(0);
    list.clear();
    expect(list.length).toBe(0);
  });

  test("'connection' listeners get every grant as an object, as without a list", () => {
    const core = make(['b0', 'b1'], { global: { maxOutboundConnections: 2 } });
    core.enqueueBatch('a.example', 'b0', ids(1, 5));
    core.enqueueBatch('b.example', 'b1', ids(10, 5));
    const seen: Grant[] = [];
    core.on('connection', (g: Grant) => seen.push(g));
    const list = core.grantList();
    core.maintain(T0, { into: list });
    expect(seen).toEqual(list.toArray());
    expect(seen.length).toBe(4);
  });

  test('a provider that opens connections gets its own grants; the list gets every grant of the pass', () => {
    const core = make(['b0', 'b1'], { global: { maxOutboundConnections: 3 } });
    core.enqueueBatch('a.example', 'b0', ids(1, 50));
    core.enqueueBatch('a.example', 'b1', ids(100, 50));
    const own: Grant[][] = [];
    core.hooks.mailQueueMaintain.registerFirst((_c, dr, slot) => {
      if (slot !== 1) return 0; // b0: the default runs
      const g = core.openConnections(dr.name, slot, 1);
      own.push(g);
      return g.length;
    });
    const list = core.grantList();
    const r = core.maintain(T0, { into: list });
    const all = list.toArray();
    expect(own.length).toBe(1);
    expect(own[0].map((g) => g.binding)).toEqual(['b1']);
    expect(all.filter((g) => g.binding === 'b1')).toEqual(own[0]);
    expect(all.filter((g) => g.binding === 'b0').length).toBe(3);
    expect(r.opened).toBe(4);
    expect(core.stats().connections).toBe(4);
  });

  test('a pass that unwinds carries the grants it made, from the list as from objects', () => {
    for (const withList of [false, true]) {
      const core = make(['b0'], { global: { maxOutboundConnections: 2 } });
      core.enqueueBatch('a.example', 'b0', ids(1, 10));
      core.enqueueBatch('b.example', 'b0', ids(100, 10));
      // A provider's throw is reported; an 'error' listener that throws itself unwinds the pass.
      core.hooks.mailQueueMaintain.registerFirst((_c, dr) => {
        if (dr.name === 'b.example') throw new Error('provider failed');
        return 0;
      });
      core.on('error', (e: Error) => {
        throw new Error(`listener: ${e.message}`);
      });
      const list = core.grantList();
      let caught: (Error & { grants?: Grant[] }) | undefined;
      try {
        core.maintain(T0, withList ? { into: list } : {});
      } catch (err) {
        caught = err as Error & { grants?: Grant[] };
      }
      expect(caught?.message).toMatch(/^listener: /);
      // Whichever domain came first, the grants made before the failure are real leases.
      const held = core.stats().connections;
      expect(caught?.grants?.length).toBe(held);
      expect(new Set(caught?.grants?.map((g) => g.connectionId)).size).toBe(held);
      if (withList) expect(list.toArray()).toEqual(caught?.grants);
    }
  });
});

describe('with the delivery layer', () => {
  test('grants of passes written into a list still become SMTP connections: everything delivered, no lease left', async () => {
    // A started core runs its own passes; the test runs more, into a list, while mail arrives. A
    // grant the delivery layer never heard of would be a lease that is never released. The server
    // counts its own connections.
    const server = await startServer();
    try {
      const core = new MailQueueCore({
        bindings: ['a'],
        config: { global: { maxOutboundConnections: 3, idleTimeout: 0.05, delayedQueueScanInterval: 0.05 } },
        transport: new SmtpTransport({ routes: { 'x.test': [{ host: server.host, port: server.port }] } }),
        store: new MemoryStore(),
      });
      const list = core.grantList();
      core.start();
      const N = 40;
      let fromList = 0;
      for (let id = 1; id <= N; id++) {
        await core.submit(testMessage(id, 'x.test'), testBody(id));
        fromList += core.maintain(undefined, { into: list }).opened;
        expect(core.stats().connections).toBeLessThanOrEqual(3);
      }
      await waitFor(() => server.accepted.length >= N, `${N} messages accepted`);
      await core.stop();
      expect(fromList).toBeGreaterThan(0); // the list path was taken at least once
      expect(new Set(server.accepted).size).toBe(N);
      expect(server.duplicates()).toEqual([]);
      expect(server.peak()).toBeLessThanOrEqual(3);
      expect(server.anomalies).toEqual([]);
      expect(core.stats()).toMatchObject({ active: 0, delayed: 0, inFlight: 0, connections: 0 });
      expect(core.stats().opened).toBe(core.stats().released);
      core.close();
    } finally {
      await server.close();
    }
  }, 30_000);
});

describe('bad input', () => {
  test('into must be a GrantList of this core; the pass does not start otherwise', () => {
    const a = make(['b0']);
    const b = make(['b0']);
    a.enqueueBatch('a.example', 'b0', ids(1, 3));
    const before = a.stats();
    expect(() => a.maintain(T0, { into: [] as unknown as GrantList })).toThrow(TypeError);
    expect(() => a.maintain(T0, { into: [] as unknown as GrantList })).toThrow(/^options\.into must be a GrantList/);
    expect(() => a.maintain(T0, { into: null as unknown as GrantList })).toThrow(TypeError);
    expect(() => a.maintain(T0, { into: b.grantList() })).toThrow(RangeError);
    expect(() => a.maintain(T0, { into: b.grantList() })).toThrow(/^options\.into: a GrantList of another core/);
    expect(a.stats()).toEqual(before);
  });

  test('an index outside the list is a RangeError naming it', () => {
    const core = make(['b0']);
    core.enqueueBatch('a.example', 'b0', ids(1, 3));
    const list = core.grantList();
    core.maintain(T0, { into: list });
    expect(list.length).toBe(1);
    for (const bad of [-1, 1, 0.5, NaN, Infinity, '0' as unknown as number, undefined as unknown as number]) {
      expect(() => list.connectionId(bad)).toThrow(RangeError);
      expect(() => list.domain(bad)).toThrow(/^i: no grant/);
      expect(() => list.binding(bad)).toThrow(RangeError);
      expect(() => list.bindingSlot(bad)).toThrow(RangeError);
    }
  });

  test('grantList() on a closed core throws ERR_CLOSED', () => {
    const core = make(['b0']);
    core.close();
    expect(() => core.grantList()).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
  });
});
