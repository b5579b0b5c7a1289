// Connection limits, observed from outside the core. Random configurations (max_outbound_connections
// in every scope, scope caps for domains and binding_group::domain, server maxima for the server,
// bindings and binding groups, the server reserve, connection-rate throttles) and random sequences of
// enqueue, maintain(now), maintainDomain(d, { goalsz }), openConnections, releaseConnection and clock
// advances. The test keeps every grant it was handed, as a real SMTP server would count its own
// connections, and after every step checks, from those grants alone and limits resolved by the
// naive model's own reading of docs/architecture.md §8:
//   - no count (pair, domain, group::domain, binding, group, total) is above its limit;
//   - total <= serverMax + serverReserve;
//   - no throttle scope granted more than N connections in any window of W ms;
//   - connection ids are never reused; grants go only where they were asked for;
//   - the core's own counts (DomainRecord.connections, stats, counters) equal the observed ones;
//   - a pass never stops short: a visited pair that got fewer connections than its goal has at least
//     one limit at its ceiling, and no pair gets more than its goal.
// Plus the reserve rule (docs/architecture.md §7, decision 4) as explicit tests.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';

import type { ScopeOptions } from '../../lib/config.js';
import { MailQueueCore, type Grant } from '../../lib/index.js';
import { arbSetup, naiveGoal, NaiveLimits, naiveRate, type NaiveRate, type Setup } from '../model/naive_core.js';

const T0 = 1_700_000_000_000;
const NUM_RUNS = Number(process.env.LIMITS_RUNS ?? 400);

type Op =
  | { k: 'enqueue'; dom: number; bind: number; n: number }
  | { k: 'maintain' }
  | { k: 'maintainDomain'; dom: number; goalsz: number; reserve?: number }
  | { k: 'open'; dom: number; bind: number; count: number; reserve?: number }
  | { k: 'release'; pick: number; n: number }
  | { k: 'advance'; ms: number };

const dom = fc.integer({ min: 0, max: 3 });
const bind = fc.integer({ min: 0, max: 2 });
// An explicit reserve (Momentum's _mail_queue_maintain_domain argument) in about half of the calls;
// otherwise the maintainer's rule (0 for a pair with no connection, serverReserve otherwise).
const reserve = fc.integer({ min: 0, max: 4 });
const arbOp: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      k: fc.constant('enqueue' as const),
      dom,
      bind,
      n: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 4, max: 40 })),
    }),
    weight: 4,
  },
  { arbitrary: fc.constant({ k: 'maintain' as const }), weight: 5 },
  {
    arbitrary: fc.record(
      { k: fc.constant('maintainDomain' as const), dom, goalsz: fc.integer({ min: -1, max: 6 }), reserve },
      { requiredKeys: ['k', 'dom', 'goalsz'] },
    ),
    weight: 2,
  },
  {
    arbitrary: fc.record(
      { k: fc.constant('open' as const), dom, bind, count: fc.integer({ min: 0, max: 5 }), reserve },
      { requiredKeys: ['k', 'dom', 'bind', 'count'] },
    ),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      k: fc.constant('release' as const),
      pick: fc.nat({ max: 1000 }),
      n: fc.integer({ min: 1, max: 3 }),
    }),
    weight: 3,
  },
  // Steps of 250 ms: throttle windows are 500 ms to 5 s, so grants land on window edges.
  {
    arbitrary: fc.record({
      k: fc.constant('advance' as const),
      ms: fc.oneof(
        fc.constant(0),
        fc.integer({ min: 1, max: 8 }).map((x) => x * 250),
      ),
    }),
    weight: 3,
  },
);

interface Held {
  domain: string;
  b: number;
}

/** What the test observes: the grants it holds, and when each throttle scope granted. */
class Observer {
  readonly L: NaiveLimits;
  readonly held = new Map<number, Held>();
  readonly ever = new Set<number>();
  readonly queued = new Map<string, number>(); // `${domain}/${b}` -> messages enqueued (never taken)
  readonly known: string[] = [];
  readonly grantTimes = new Map<ScopeOptions, { rate: NaiveRate; times: number[] }>();
  released = 0;

  constructor(readonly setup: Setup) {
    this.L = new NaiveLimits(setup.bindings, setup.config);
  }

  get nb(): number {
    return this.L.bindingNames.length;
  }

  q(domain: string, b: number): number {
    return this.queued.get(`${domain}/${b}`) ?? 0;
  }

  pair(domain: string, b: number): number {
    let n = 0;
    for (const h of this.held.values()) if (h.domain === domain && h.b === b) n++;
    return n;
  }

  domainCount(domain: string): number {
    let n = 0;
    for (const h of this.held.values()) if (h.domain === domain) n++;
    return n;
  }

  groupDomain(g: number, domain: string): number {
    let n = 0;
    for (const h of this.held.values()) if (h.domain === domain && this.L.groupOf[h.b] === g) n++;
    return n;
  }

  binding(b: number): number {
    let n = 0;
    for (const h of this.held.values()) if (h.b === b) n++;
    return n;
  }

  group(g: number): number {
    let n = 0;
    for (const h of this.held.values()) if (this.L.groupOf[h.b] === g) n++;
    return n;
  }

  get total(): number {
    return this.held.size;
  }

  inWindow(scope: ScopeOptions, now: number): number {
    const rec = this.grantTimes.get(scope);
    if (!rec) return 0;
    return rec.times.filter((t) => t > now - rec.rate.windowMs).length;
  }

  /** Records grants; checks each is new and went where it was asked for. */
  accept(grants: Grant[], now: number, where: (g: Grant) => boolean, step: string): void {
    for (const g of grants) {
      expect(this.ever.has(g.connectionId), `${step}: connection id ${g.connectionId} granted twice`).toBe(false);
      expect(where(g), `${step}: grant ${JSON.stringify(g)} went somewhere it was not asked for`).toBe(true);
      const b = this.L.bindingNames.indexOf(g.binding);
      expect(b, `${step}: grant for unknown binding ${g.binding}`).toBeGreaterThanOrEqual(0);
      this.ever.add(g.connectionId);
      this.held.set(g.connectionId, { domain: g.domain, b });
      const scope = this.L.pair(b, g.domain).throttleScope;
      if (scope) {
        let rec = this.grantTimes.get(scope);
        if (!rec)
          this.grantTimes.set(scope, (rec = { rate: naiveRate(scope.outboundThrottleConnections!), times: [] }));
        rec.times.push(now);
      }
    }
  }

  /** True when some limit of (domain, b) is at its ceiling (the reason a request may stop short). */
  saturated(domain: string, b: number, reserve: number, now: number): boolean {
    const L = this.L;
    const p = L.pair(b, domain);
    const g = L.groupOf[b];
    return (
      this.pair(domain, b) >= p.max ||
      this.domainCount(domain) >= L.domainScopeMax(domain) ||
      (g >= 0 && this.groupDomain(g, domain) >= L.groupDomainScopeMax(g, domain)) ||
      (g >= 0 && this.group(g) >= L.groupServerMax(g)) ||
      this.binding(b) >= L.bindingServerMax(b) ||
      this.total >= L.serverMax + L.serverReserve - reserve ||
      // a call that may dip into the reserve takes at most one connection beyond serverMax
      (reserve < L.serverReserve && this.total > L.serverMax) ||
      (p.throttleScope !== undefined &&
        this.inWindow(p.throttleScope, now) >= naiveRate(p.throttleScope.outboundThrottleConnections!).count)
    );
  }

  /** Every limit, from the held grants alone; and the core's own counts agree with them. */
  checkLimits(core: MailQueueCore, now: number, step: string): void {
    const L = this.L;
    for (const d of this.setup.domains) {
      const dc = this.domainCount(d);
      expect(dc, `${step}: ${d} above its scope cap`).toBeLessThanOrEqual(L.domainScopeMax(d));
      for (let b = 0; b < this.nb; b++) {
        expect(
          this.pair(d, b),
          `${step}: ${d}/${L.bindingNames[b]} above max_outbound_connections`,
        ).toBeLessThanOrEqual(L.pair(b, d).max);
      }
      for (let g = 0; g < L.groupNames.length; g++) {
        expect(this.groupDomain(g, d), `${step}: ${L.groupNames[g]}::${d} above its scope cap`).toBeLessThanOrEqual(
          L.groupDomainScopeMax(g, d),
        );
      }
      if (this.known.includes(d)) {
        const dr = core.domain(d);
        expect(dr.connections(), `${step}: core's count for ${d}`).toBe(dc);
        for (let b = 0; b < this.nb; b++)
          expect(dr.connections(b), `${step}: core's count for ${d}/${b}`).toBe(this.pair(d, b));
      } else {
        expect(dc, `${step}: grants for ${d}, which has no mail`).toBe(0);
      }
    }
    for (let b = 0; b < this.nb; b++) {
      const n = this.binding(b);
      expect(n, `${step}: binding ${L.bindingNames[b]} above its server max`).toBeLessThanOrEqual(
        L.bindingServerMax(b),
      );
      expect(
        core.counters[core.counterIndex[`connections:${L.bindingNames[b]}`]],
        `${step}: counter connections:${b}`,
      ).toBe(n);
    }
    for (let g = 0; g < L.groupNames.length; g++) {
      expect(this.group(g), `${step}: group ${L.groupNames[g]} above its server max`).toBeLessThanOrEqual(
        L.groupServerMax(g),
      );
    }
    expect(this.total, `${step}: total above serverMax + serverReserve`).toBeLessThanOrEqual(
      L.serverMax + L.serverReserve,
    );
    for (const [scope, rec] of this.grantTimes) {
      // Times only move forward here, so the newest window is the only one that can have changed.
      expect(
        this.inWindow(scope, now),
        `${step}: throttle ${JSON.stringify(scope.outboundThrottleConnections)} over N in a window`,
      ).toBeLessThanOrEqual(rec.rate.count);
    }
    const s = core.stats();
    expect(s.connections, `${step}: stats.connections`).toBe(this.total);
    expect(s.opened, `${step}: stats.opened`).toBe(this.ever.size);
    expect(s.released, `${step}: stats.released`).toBe(this.released);
    expect(core.checkInvariants(), `${step}: checkInvariants`).toBe(true);
  }
}

function runScenario(setup: Setup, ops: Op[]): void {
  let now = T0;
  let nextId = 1;
  const core = new MailQueueCore({ bindings: setup.bindings, config: setup.config, clock: () => now });
  const obs = new Observer(setup);
  const L = obs.L;
  const nb = obs.nb;
  const R = L.serverReserve;
  const domainName = (i: number) => setup.domains[i % setup.domains.length];
  try {
    ops.forEach((op, n) => {
      const step = `op ${n} ${JSON.stringify(op)} at +${now - T0}`;
      const before = new Map<string, number>();
      for (const d of obs.known) for (let b = 0; b < nb; b++) before.set(`${d}/${b}`, obs.pair(d, b));
      const cur0 = (d: string, b: number) => before.get(`${d}/${b}`) ?? 0;
      const explicit = op.k === 'maintainDomain' || op.k === 'open' ? op.reserve : undefined;
      const reserveAtVisit = (d: string, b: number) => explicit ?? (cur0(d, b) === 0 ? 0 : R);
      // A pass visits every pair of `domains` that has mail: it stops short of a pair's goal only
      // at a limit, and never goes past it.
      const checkPass = (domains: string[], goalOf: (d: string, b: number) => number) => {
        for (const d of domains) {
          for (let b = 0; b < nb; b++) {
            const q = obs.q(d, b);
            const after = obs.pair(d, b);
            if (q === 0) {
              expect(after, `${step}: ${d}/${b} has no mail but got connections`).toBe(cur0(d, b));
              continue;
            }
            const goal = goalOf(d, b);
            expect(after, `${step}: ${d}/${b} got more than its goal ${goal}`).toBeLessThanOrEqual(
              Math.max(cur0(d, b), goal),
            );
            if (after < goal) {
              expect(
                obs.saturated(d, b, reserveAtVisit(d, b), now),
                `${step}: ${d}/${b} stopped at ${after} below its goal ${goal} with every limit open`,
              ).toBe(true);
            }
          }
        }
      };
      switch (op.k) {
        case 'enqueue': {
          const d = domainName(op.dom);
          const b = op.bind % nb;
          const ids = Float64Array.from({ length: op.n }, () => nextId++);
          core.enqueueBatch(d, L.bindingNames[b], ids);
          if (!obs.known.includes(d)) obs.known.push(d);
          obs.queued.set(`${d}/${b}`, obs.q(d, b) + op.n);
          break;
        }
        case 'maintain': {
          const r = core.maintain(now);
          expect(r.opened, `${step}: opened`).toBe(r.grants.length);
          obs.accept(r.grants, now, (g) => obs.q(g.domain, L.bindingNames.indexOf(g.binding)) > 0, step);
          checkPass(obs.known, (d, b) => {
            const p = L.pair(b, d);
            return naiveGoal(p.max, obs.q(d, b), p.aggressiveness);
          });
          break;
        }
        case 'maintainDomain': {
          const d = domainName(op.dom);
          if (!obs.known.includes(d)) {
            expect(() => core.maintainDomain(d, { goalsz: op.goalsz })).toThrow(
              expect.objectContaining({ code: 'ERR_UNKNOWN_DOMAIN' }),
            );
            break;
          }
          const r = core.maintainDomain(d, {
            goalsz: op.goalsz,
            ...(op.reserve === undefined ? {} : { reserve: op.reserve }),
          });
          obs.accept(r.grants, now, (g) => g.domain === d && obs.q(d, L.bindingNames.indexOf(g.binding)) > 0, step);
          checkPass([d], (dd, b) => {
            if (op.goalsz > 0) return cur0(dd, b) + op.goalsz;
            const p = L.pair(b, dd);
            return naiveGoal(p.max, obs.q(dd, b), p.aggressiveness);
          });
          break;
        }
        case 'open': {
          const d = domainName(op.dom);
          const b = op.bind % nb;
          if (!obs.known.includes(d)) break;
          const grants = core.openConnections(
            d,
            L.bindingNames[b],
            op.count,
            op.reserve === undefined ? {} : { reserve: op.reserve },
          );
          obs.accept(grants, now, (g) => g.domain === d && g.binding === L.bindingNames[b], step);
          expect(grants.length, `${step}: more than asked for`).toBeLessThanOrEqual(op.count);
          if (grants.length < op.count) {
            expect(
              obs.saturated(d, b, reserveAtVisit(d, b), now),
              `${step}: ${grants.length} of ${op.count} granted with every limit open`,
            ).toBe(true);
          }
          break;
        }
        case 'release': {
          for (let i = 0; i < op.n && obs.held.size > 0; i++) {
            const ids = [...obs.held.keys()];
            const id = ids[(op.pick + i) % ids.length];
            core.releaseConnection(id);
            obs.held.delete(id);
            obs.released++;
          }
          // A released id is not open any more: releasing it again is refused and changes nothing.
          const gone = [...obs.ever].find((id) => !obs.held.has(id));
          if (gone !== undefined) {
            expect(() => core.releaseConnection(gone)).toThrow(
              expect.objectContaining({ code: 'ERR_UNKNOWN_CONNECTION' }),
            );
          }
          break;
        }
        case 'advance':
          now += op.ms;
          break;
      }
      obs.checkLimits(core, now, step);
    });
  } finally {
    core.close();
  }
}

describe('connection limits, observed outside the core', () => {
  test(
    'no count passes its limit, throttles hold, and passes stop only at a limit',
    () => {
      fc.assert(
        fc.property(
          arbSetup({ expirations: false, maxDomains: 4 }),
          fc.array(arbOp, { minLength: 1, maxLength: 60, size: 'max' }),
          (setup, ops) => {
            runScenario(setup, ops);
          },
        ),
        { numRuns: NUM_RUNS, seed: process.env.LIMITS_SEED ? Number(process.env.LIMITS_SEED) : undefined },
      );
    },
    Math.max(120_000, NUM_RUNS * 100),
  );
});

describe('server reserve (docs/architecture.md §7, decision 4)', () => {
  // Busy domains fill server_max; a quiet domain (a pair with no connection, so the maintainer
  // passes reserve = 0) still gets a connection from the reserve, while busy pairs, which already
  // have connections (reserve = server_reserve), get none more.
  test('a quiet domain gets one connection from the reserve; busy pairs get none', () => {
    let now = T0;
    const core = new MailQueueCore({
      bindings: ['b0'],
      config: { global: { serverMaxOutboundConnections: 10, serverReserveOutboundConnections: 2 } },
      clock: () => now,
    });
    try {
      let id = 1;
      for (const d of ['busy1.example', 'busy2.example']) {
        core.enqueueBatch(
          d,
          undefined,
          Float64Array.from({ length: 200 }, () => id++),
        );
        // One connection each first, so that from now on both pairs have one open.
        expect(core.openConnections(d, 'b0', 1)).toHaveLength(1);
      }
      now += 1000;
      const fill = core.maintain();
      expect(fill.grants.every((g) => g.domain.startsWith('busy'))).toBe(true);
      expect(core.stats().connections).toBe(10); // exactly server_max: the reserve is untouched
      now += 1000;
      expect(core.maintain().opened).toBe(0); // full for busy pairs

      core.enqueue({ id: id++, domain: 'quiet1.example' });
      now += 1000;
      const r = core.maintain();
      expect(r.grants.map((g) => g.domain)).toEqual(['quiet1.example']);
      expect(core.domain('quiet1.example').connections()).toBe(1);
      expect(core.domain('busy1.example').connections() + core.domain('busy2.example').connections()).toBe(10);
      expect(core.stats().connections).toBe(11);

      // A second quiet domain takes the last reserve slot; a third finds the reserve used up.
      core.enqueue({ id: id++, domain: 'quiet2.example' });
      core.enqueue({ id: id++, domain: 'quiet3.example' });
      now += 1000;
      const r2 = core.maintain();
      expect(r2.grants).toHaveLength(1);
      expect(['quiet2.example', 'quiet3.example']).toContain(r2.grants[0].domain);
      expect(core.stats().connections).toBe(12); // server_max + server_reserve

      // Room in the reserve again (one busy connection closes): the busy pair still may not use it,
      // since it has connections open; the quiet domain that was left out gets it.
      const busyGrant = fill.grants[0];
      core.releaseConnection(busyGrant.connectionId);
      now += 1000;
      const r3 = core.maintain();
      const left = r2.grants[0].domain === 'quiet2.example' ? 'quiet3.example' : 'quiet2.example';
      expect(r3.grants.map((g) => g.domain)).toEqual([left]);
      expect(core.checkInvariants()).toBe(true);
    } finally {
      core.close();
    }
  });

  test('property: after busy pairs fill server_max, exactly min(quiet, reserve) quiet domains get one each', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }), // server max
        fc.integer({ min: 1, max: 4 }), // reserve
        fc.integer({ min: 1, max: 3 }), // busy domains
        fc.integer({ min: 1, max: 6 }), // quiet domains
        fc.integer({ min: 1, max: 3 }), // bindings
        (S, R, busy, quiet, nbind) => {
          fc.pre(busy * nbind <= S);
          let now = T0;
          const bindings = Array.from({ length: nbind }, (_, i) => `b${i}`);
          const core = new MailQueueCore({
            bindings,
            config: { global: { serverMaxOutboundConnections: S, serverReserveOutboundConnections: R } },
            clock: () => now,
          });
          try {
            let id = 1;
            for (let i = 0; i < busy; i++) {
              for (const b of bindings) {
                core.enqueueBatch(
                  `busy${i}.example`,
                  b,
                  Float64Array.from({ length: 300 }, () => id++),
                );
                expect(core.openConnections(`busy${i}.example`, b, 1)).toHaveLength(1);
              }
            }
            now += 1000;
            core.maintain();
            expect(core.stats().connections).toBe(S);
            for (let i = 0; i < quiet; i++)
              core.enqueue({ id: id++, domain: `quiet${i}.example`, binding: bindings[i % nbind] });
            now += 1000;
            const r = core.maintain();
            expect(r.grants.every((g) => g.domain.startsWith('quiet'))).toBe(true);
            expect(new Set(r.grants.map((g) => g.domain)).size).toBe(r.grants.length); // one each
            expect(r.grants).toHaveLength(Math.min(quiet, R));
            expect(core.stats().connections).toBe(S + Math.min(quiet, R));
            expect(core.checkInvariants()).toBe(true);
          } finally {
            core.close();
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
