// takeFor(connectionId, out) takes for an open connection from the (domain, binding) its lease
// names, and enqueueBatch/takeInto/take accept a DomainRecord where they accept a domain name.
// Twin cores driven alike, one by names and one by connection ids and records, must hand out the
// same messages in the same order; takeFor refuses a connection that is not open.
import fc from 'fast-check';
import { afterEach, expect, test } from 'vitest';

import { MailQueueCore } from '../../lib/index.js';

const T0 = 1_700_000_000_000;
const live: MailQueueCore[] = [];
afterEach(() => {
  for (const c of live.splice(0)) if (!c.closed) c.close();
});

function make(bindings: string[], maxConn = 3): MailQueueCore {
  const core = new MailQueueCore({
    bindings,
    clock: () => T0,
    config: { global: { maxOutboundConnections: maxConn } },
  });
  live.push(core);
  return core;
}

test('takeFor and DomainRecords hand out what takeInto by name does, in the same order', () => {
  fc.assert(
    fc.property(
      fc.record({
        domains: fc.integer({ min: 1, max: 4 }),
        bindings: fc.integer({ min: 1, max: 3 }),
        steps: fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant('enqueue' as const),
              d: fc.nat(3),
              b: fc.nat(2),
              n: fc.integer({ min: 1, max: 30 }),
              urgent: fc.boolean(),
            }),
            fc.record({ op: fc.constant('maintain' as const) }),
            fc.record({ op: fc.constant('take' as const), i: fc.nat(20), k: fc.integer({ min: 1, max: 8 }) }),
            fc.record({ op: fc.constant('release' as const), i: fc.nat(20) }),
          ),
          { minLength: 1, maxLength: 30 },
        ),
      }),
      (p) => {
        const names = Array.from({ length: p.bindings }, (_, i) => `b${i}`);
        const byName = make(names);
        const byRef = make(names);
        const listA = byName.grantList();
        const listB = byRef.grantList();
        // The open connections, alike on both cores: [id on byName, domain, binding, id on byRef].
        const open: [number, string, string, number][] = [];
        let next = 1;
        for (const s of p.steps) {
          if (s.op === 'enqueue') {
            const domain = `d${s.d % p.domains}.test`;
            const binding = names[s.b % p.bindings];
            const ids = Float64Array.from({ length: s.n }, () => next++);
            const prios = new Uint8Array(s.n).fill(s.urgent ? 1 : 0);
            byName.enqueueBatch(domain, binding, ids, prios);
            // The record when the domain exists, its name when this batch makes it.
            byRef.enqueueBatch(byRef.hasDomain(domain) ? byRef.domain(domain) : domain, binding, ids, prios);
          } else if (s.op === 'maintain') {
            byName.maintain(T0, { into: listA });
            byRef.maintain(T0, { into: listB });
            expect(listB.length).toBe(listA.length);
            for (let i = 0; i < listA.length; i++) {
              expect([listB.domain(i), listB.binding(i)]).toEqual([listA.domain(i), listA.binding(i)]);
              open.push([listA.connectionId(i), listA.domain(i), listA.binding(i), listB.connectionId(i)]);
            }
          } else if (open.length > 0) {
            const [idA, domain, binding, idB] = open[s.i % open.length];
            if (s.op === 'take') {
              const a = new Float64Array(s.k);
              const b = new Float64Array(s.k);
              const n = byName.takeInto(domain, binding, a);
              expect(byRef.takeFor(idB, b)).toBe(n);
              expect(Array.from(b.subarray(0, n))).toEqual(Array.from(a.subarray(0, n)));
              byName.settleMany(a.subarray(0, n));
              byRef.settleMany(b.subarray(0, n));
            } else {
              open.splice(s.i % open.length, 1);
              byName.releaseConnection(idA);
              byRef.releaseConnection(idB);
              expect(() => byRef.takeFor(idB, new Float64Array(1))).toThrow(
                expect.objectContaining({ code: 'ERR_UNKNOWN_CONNECTION' }),
              );
            }
          }
        }
        expect(byRef.stats()).toEqual(byName.stats());
        expect(byRef.checkInvariants()).toBe(true);
        byName.close();
        byRef.close();
      },
    ),
    { numRuns: 150 },
  );
});

test('takeInto and take by DomainRecord; the record stays good for the life of the core', () => {
  const core = make(['a', 'b']);
  core.enqueueBatch('x.test', 'b', Float64Array.of(1, 2, 3));
  const dr = core.domain('x.test');
  core.enqueueBatch(dr, 'b', Float64Array.of(4, 5));
  core.enqueueBatch(dr, 'a', Float64Array.of(6));
  expect(dr.activeSize('b')).toBe(5);
  const out = new Float64Array(2);
  expect(core.takeInto(dr, 'b', out)).toBe(2);
  expect(Array.from(out)).toEqual([1, 2]);
  expect(core.take(dr, 1, 10)).toEqual([3, 4, 5]);
  expect(core.take(dr, 'a', 10)).toEqual([6]);
  expect(core.domains()).toEqual(['x.test']);
  expect(core.stats()).toMatchObject({ inFlight: 6, active: 0 });
});

test('a refused takeFor changes nothing; takeFor respects the message throttle as takeInto does', () => {
  const core = new MailQueueCore({
    bindings: ['a'],
    clock: () => T0,
    config: { global: { maxOutboundConnections: 2 }, domains: { 'slow.test': { outboundThrottleMessages: '2/60' } } },
  });
  live.push(core);
  core.enqueueBatch(
    'slow.test',
    'a',
    Float64Array.from({ length: 5 }, (_, i) => i + 1),
  );
  const grants = core.maintain(T0);
  expect(grants.grants.length).toBeGreaterThan(0);
  const id = grants.grants[0].connectionId;
  const before = core.stats();
  expect(() => core.takeFor(id + 100, new Float64Array(4))).toThrow(
    expect.objectContaining({ code: 'ERR_UNKNOWN_CONNECTION' }),
  );
  expect(() => core.takeFor(id, new Float32Array(4) as unknown as Float64Array)).toThrow(TypeError);
  expect(core.stats()).toEqual(before);
  const out = new Float64Array(4);
  expect(core.takeFor(id, out)).toBe(2); // two a minute
  expect(core.takeFor(id, out)).toBe(0);
  expect(core.stats()).toMatchObject({ inFlight: 2, active: 3 });
});
