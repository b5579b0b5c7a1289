// The native default __mail_queue_maintain (docs/architecture.md §7), the limits and throttles it clips
// by, message timing, connection release, close(), and configuration refusal (§8).
import { afterEach, describe, expect, test } from 'vitest';

import {
  connectionGoal,
  MailQueueCore,
  type Bounce,
  type CoreConfig,
  type MailQueueCoreOptions,
} from '../../lib/index.js';

const T0 = 1_700_000_000_000;
const QS = [1, 10, 50, 100, 200, 400] as const;

const live: MailQueueCore[] = [];
afterEach(() => {
  for (const c of live.splice(0)) if (!c.closed) c.close();
});

function make(options: Omit<MailQueueCoreOptions, 'clock'> = {}) {
  const clock = { t: T0 };
  const core = new MailQueueCore({ ...options, clock: () => clock.t });
  live.push(core);
  const bounces: Bounce[] = [];
  core.on('bounce', (b: Bounce) => bounces.push(b));
  return { core, clock, bounces };
}

function fill(core: MailQueueCore, domain: string, binding: string | undefined, n: number, first: number): void {
  const ids = new Float64Array(n);
  for (let i = 0; i < n; i++) ids[i] = first + i;
  core.enqueueBatch(domain, binding, ids);
}

function openedFor(q: number, config?: CoreConfig): number {
  const { core } = make({ config });
  fill(core, 'example.com', undefined, q, 1);
  const r = core.maintain();
  expect(r.grants).toHaveLength(r.opened);
  expect(core.stats().connections).toBe(r.opened);
  expect(core.domain('example.com').connections(0)).toBe(r.opened);
  return r.opened;
}

describe('the goal table (M = 32, one binding, q queued)', () => {
  test('normal (the default): 1, 3, 12, 20, 28, 32', () => {
    expect(QS.map((q) => openedFor(q))).toEqual([1, 3, 12, 20, 28, 32]);
  });

  test('normal, set explicitly with maxOutboundConnections 32', () => {
    const config: CoreConfig = { global: { maxOutboundConnections: 32, connectionAllocationAggressiveness: 'normal' } };
    expect(QS.map((q) => openedFor(q, config))).toEqual([1, 3, 12, 20, 28, 32]);
  });

  test("connectionAllocationAggressiveness 'high': 1, 7, 23, 29, 32, 32", () => {
    const config: CoreConfig = { global: { maxOutboundConnections: 32, connectionAllocationAggressiveness: 'high' } };
    expect(QS.map((q) => openedFor(q, config))).toEqual([1, 7, 23, 29, 32, 32]);
  });

  test('a custom aggressiveness number: 0.5, 1 and 0.05', () => {
    const at = (a: number) => QS.map((q) => openedFor(q, { global: { connectionAllocationAggressiveness: a } }));
    expect(at(0.5)).toEqual([1, 5, 18, 26, 31, 32]);
    expect(at(1)).toEqual([1, 9, 26, 31, 32, 32]);
    expect(at(0.05)).toEqual([1, 1, 3, 5, 9, 15]);
  });

  test('aggressiveness resolves per scope: a domain set to high beside a normal global', () => {
    const { core } = make({ config: { domains: { 'fast.com': { connectionAllocationAggressiveness: 'high' } } } });
    fill(core, 'fast.com', undefined, 50, 1);
    fill(core, 'slow.com', undefined, 50, 1000);
    core.maintain();
    expect(core.domain('fast.com').connections()).toBe(23);
    expect(core.domain('slow.com').connections()).toBe(12);
  });

  test('a second pass tops up to the goal and no further', () => {
    const { core } = make();
    fill(core, 'example.com', undefined, 50, 1);
    expect(core.maintain().opened).toBe(12);
    expect(core.maintain().opened).toBe(0);
    fill(core, 'example.com', undefined, 50, 1000); // q = 100: goal 20
    expect(core.maintain().opened).toBe(8);
    expect(core.stats().connections).toBe(20);
  });

  test('the exported connectionGoal(M, q, a) gives the same table', () => {
    expect(QS.map((q) => connectionGoal(32, q, 0.3))).toEqual([1, 3, 12, 20, 28, 32]);
    expect(QS.map((q) => connectionGoal(32, q, 0.75))).toEqual([1, 7, 23, 29, 32, 32]);
    expect(QS.map((q) => connectionGoal(32, q, 0.5))).toEqual([1, 5, 18, 26, 31, 32]);
    expect(connectionGoal(32, 0, 0.3)).toBe(0);
    expect(connectionGoal(0, 100, 0.3)).toBe(0);
    expect(connectionGoal(1, 1_000_000, 1)).toBe(1);
    expect(connectionGoal(8, 100, 0.3)).toBe(8);
  });

  test('connectionGoal(M, q, a) follows min(M, max(1, ceil(M (1 - exp(-a q / M))))) over a grid', () => {
    for (const m of [1, 2, 5, 17, 32, 100, 1000]) {
      for (const q of [1, 2, 3, 7, 10, 33, 100, 1000, 100000]) {
        for (const a of [0.01, 0.3, 0.75, 1]) {
          const raw = m * (1 - Math.exp((-a * q) / m));
          const expected = Math.min(m, Math.max(1, Math.ceil(raw)));
          const got = connectionGoal(m, q, a);
          // Where raw is an integer up to rounding, either side is acceptable.
          if (Math.abs(raw - Math.round(raw)) < 1e-6) expect([expected, expected - 1]).toContain(got);
          else expect(got).toBe(expected);
        }
      }
    }
  });
});

describe('goalsz', () => {
  test('goalsz > 0 means goalsz more connections than are open, whatever the queue', () => {
    const { core } = make();
    fill(core, 'example.com', undefined, 1, 1); // the curve would say 1
    expect(core.maintainDomain('example.com', { goalsz: 5 }).opened).toBe(5);
    expect(core.maintainDomain('example.com', { goalsz: 5 }).opened).toBe(5);
    expect(core.stats().connections).toBe(10);
  });

  test('goalsz is still clipped by the limits', () => {
    const { core } = make({ config: { global: { maxOutboundConnections: 8 } } });
    fill(core, 'example.com', undefined, 1, 1);
    expect(core.maintainDomain('example.com', { goalsz: 5 }).opened).toBe(5);
    expect(core.maintainDomain('example.com', { goalsz: 5 }).opened).toBe(3);
    expect(core.maintainDomain('example.com', { goalsz: 5 }).opened).toBe(0);
    expect(core.stats().connections).toBe(8);
  });

  test('goalsz 0 or below uses the curve', () => {
    const { core } = make();
    fill(core, 'example.com', undefined, 50, 1);
    expect(core.maintainDomain('example.com', { goalsz: -3 }).opened).toBe(12);
    expect(core.maintainDomain('example.com', { goalsz: 0 }).opened).toBe(0);
  });

  test('goalsz opens nothing for an empty or suspended pair', () => {
    const { core } = make({ bindings: ['a', 'b'] });
    fill(core, 'example.com', 'a', 3, 1);
    core.suspend('example.com', 'a');
    expect(core.maintainDomain('example.com', { goalsz: 5 }).opened).toBe(0); // b is empty, a suspended
  });
});

describe('limits', () => {
  test('maxOutboundConnections 0 opens nothing', () => {
    const { core } = make({ config: { global: { maxOutboundConnections: 0 } } });
    fill(core, 'example.com', undefined, 400, 1);
    expect(core.maintain().opened).toBe(0);
    expect(core.maintainDomain('example.com', { goalsz: 5 }).opened).toBe(0);
    expect(core.stats().connections).toBe(0);
  });

  test('maxOutboundConnections 0 for one domain leaves the others alone', () => {
    const { core } = make({ config: { domains: { 'closed.com': { maxOutboundConnections: 0 } } } });
    fill(core, 'closed.com', undefined, 10, 1);
    fill(core, 'open.com', undefined, 10, 100);
    core.maintain();
    expect(core.domain('closed.com').connections()).toBe(0);
    expect(core.domain('open.com').connections()).toBe(3);
  });

  test('maxOutboundConnections resolves most specific first (binding::domain > binding > domain > global)', () => {
    const { core } = make({
      bindings: ['a', 'b', 'c'],
      config: {
        global: { maxOutboundConnections: 2 },
        domains: { 'x.com': { maxOutboundConnections: 3 } },
        bindings: {
          a: { maxOutboundConnections: 4, domains: { 'x.com': { maxOutboundConnections: 5 } } },
          b: { maxOutboundConnections: 6 },
        },
      },
    });
    for (const b of ['a', 'b', 'c']) {
      fill(core, 'x.com', b, 1000, b.charCodeAt(0) * 10000);
      fill(core, 'y.com', b, 1000, b.charCodeAt(0) * 10000 + 5000);
    }
    core.maintain();
    const x = core.domain('x.com');
    const y = core.domain('y.com');
    expect([x.connections('a'), x.connections('b'), x.connections('c')]).toEqual([5, 6, 3]);
    expect([y.connections('a'), y.connections('b'), y.connections('c')]).toEqual([4, 6, 2]);
  });

  test('the total stays within (serverMax + serverReserve) - reserve: explicit numbers', () => {
    const { core } = make({
      config: { global: { serverMaxOutboundConnections: 10, serverReserveOutboundConnections: 4 } },
    });
    fill(core, 'a.com', undefined, 400, 1);
    fill(core, 'b.com', undefined, 400, 1000);
    fill(core, 'c.com', undefined, 400, 2000);
    // reserve 4: total <= 10 + 4 - 4 = 10
    expect(core.maintainDomain('a.com', { reserve: 4 }).opened).toBe(10);
    // reserve 12: limit 2, already 10: nothing
    expect(core.maintainDomain('b.com', { reserve: 12 }).opened).toBe(0);
    // reserve 20 (more than the ceiling): nothing
    expect(core.maintainDomain('b.com', { reserve: 20 }).opened).toBe(0);
    // reserve 1: limit 13, but a call below the full reserve takes one connection from it at most
    expect(core.maintainDomain('b.com', { reserve: 1 }).opened).toBe(1);
    expect(core.maintainDomain('b.com', { reserve: 1 }).opened).toBe(1);
    expect(core.maintainDomain('b.com', { reserve: 1 }).opened).toBe(1);
    expect(core.maintainDomain('b.com', { reserve: 1 }).opened).toBe(0);
    // reserve 0: limit 14
    expect(core.maintainDomain('c.com', { reserve: 0 }).opened).toBe(1);
    expect(core.maintainDomain('c.com', { reserve: 0 }).opened).toBe(0);
    expect(core.stats().connections).toBe(14);
    expect(core.checkInvariants()).toBe(true);
  });

  test('the maintainer gives a quiet pair reserve 0, a busy one serverReserve', () => {
    const { core } = make({
      config: { global: { serverMaxOutboundConnections: 10, serverReserveOutboundConnections: 4 } },
    });
    fill(core, 'busy.com', undefined, 400, 1);
    expect(core.maintainDomain('busy.com', { reserve: 4 }).opened).toBe(10);
    fill(core, 'quiet.com', undefined, 400, 1000);
    // busy.com has connections: reserve 4, so it gets nothing more; quiet.com has none: reserve 0,
    // so it may take one connection from the reserve.
    const r = core.maintain();
    expect(r.opened).toBe(1);
    expect(r.grants.every((g) => g.domain === 'quiet.com')).toBe(true);
    expect(core.domain('busy.com').connections()).toBe(10);
    expect(core.domain('quiet.com').connections()).toBe(1);
    // Now quiet.com has a connection too: nothing more for anyone; the rest of the reserve is kept
    // for the next domain that has none.
    expect(core.maintain().opened).toBe(0);
    fill(core, 'other.com', undefined, 5, 5000);
    expect(core.maintain().grants.map((g) => g.domain)).toEqual(['other.com']);
    expect(core.stats().connections).toBe(12);
  });

  test('openConnections uses the same reserve rule and limits', () => {
    const { core } = make({
      config: { global: { serverMaxOutboundConnections: 5, serverReserveOutboundConnections: 2 } },
    });
    fill(core, 'a.com', undefined, 10, 1);
    expect(core.openConnections('a.com', 0, 100, { reserve: 2 })).toHaveLength(5);
    expect(core.openConnections('a.com', 0, 100)).toHaveLength(0); // has connections: reserve 2
    expect(core.openConnections('a.com', 0, 100, { reserve: 0 })).toHaveLength(1); // one from the reserve a call
    expect(core.openConnections('a.com', 0, 100, { reserve: 0 })).toHaveLength(1);
    expect(core.openConnections('a.com', 0, 100, { reserve: 0 })).toHaveLength(0);
    expect(core.stats().connections).toBe(7);
  });

  test('server max per binding and per group, and scope caps per domain and per group::domain', () => {
    const { core } = make({
      bindings: [{ name: 'a', group: 'g' }, { name: 'b', group: 'g' }, 'c', 'd'],
      config: {
        global: { serverReserveOutboundConnections: 0 },
        bindings: { c: { serverMaxOutboundConnections: 3 } },
        bindingGroups: {
          g: { serverMaxOutboundConnections: 50, domains: { 'x.com': { scopeMaxOutboundConnections: 4 } } },
        },
        domains: { 'y.com': { scopeMaxOutboundConnections: 5 } },
      },
    });
    for (const [i, b] of ['a', 'b', 'c', 'd'].entries()) {
      fill(core, 'x.com', b, 400, 10000 * i + 1);
      fill(core, 'y.com', b, 400, 10000 * i + 5001);
    }
    core.maintain();
    const x = core.domain('x.com');
    const y = core.domain('y.com');
    // x.com: group g (a + b) at most 4; c at most 3 across all domains; d up to 32.
    expect(x.connections('a') + x.connections('b')).toBe(4);
    expect(x.connections('d')).toBe(32);
    // y.com: at most 5 over all bindings.
    expect(y.connections()).toBe(5);
    expect(x.connections('c') + y.connections('c')).toBe(3);
    expect(core.checkInvariants()).toBe(true);
  });

  test('a group server max caps the group across domains', () => {
    const { core } = make({
      bindings: [
        { name: 'a', group: 'g' },
        { name: 'b', group: 'g' },
      ],
      config: {
        global: { serverReserveOutboundConnections: 0 },
        bindingGroups: { g: { serverMaxOutboundConnections: 7 } },
      },
    });
    fill(core, 'x.com', 'a', 400, 1);
    fill(core, 'y.com', 'b', 400, 1000);
    core.maintain();
    expect(core.stats().connections).toBe(7);
  });
});

describe('suspension', () => {
  test('suspendDelivery in a domain scope opens nothing there', () => {
    const { core } = make({ config: { domains: { 'held.com': { suspendDelivery: true } } } });
    fill(core, 'held.com', undefined, 10, 1);
    fill(core, 'free.com', undefined, 10, 100);
    core.maintain();
    expect(core.domain('held.com').connections()).toBe(0);
    expect(core.domain('held.com').suspended(0)).toBe(true);
    expect(core.domain('free.com').connections()).toBe(3);
    expect(core.stats().active).toBe(20); // mail stays queued
  });

  test('suspendDelivery globally, overridden by a more specific scope', () => {
    const { core } = make({
      bindings: ['a', 'b'],
      config: {
        global: { suspendDelivery: true },
        bindings: { b: { domains: { 'x.com': { suspendDelivery: false } } } },
      },
    });
    fill(core, 'x.com', 'a', 10, 1);
    fill(core, 'x.com', 'b', 10, 100);
    fill(core, 'y.com', 'b', 10, 200);
    core.maintain();
    expect(core.domain('x.com').connections('a')).toBe(0);
    expect(core.domain('x.com').connections('b')).toBe(3);
    expect(core.domain('y.com').connections()).toBe(0);
  });

  test('core.suspend / core.resume', () => {
    const { core } = make({ bindings: ['a', 'b'] });
    fill(core, 'x.com', 'a', 10, 1);
    fill(core, 'x.com', 'b', 10, 100);
    core.suspend('x.com');
    expect(core.maintain().opened).toBe(0);
    expect(core.maintainDomain('x.com', { goalsz: 3 }).opened).toBe(0);
    core.resume('x.com', 'b');
    const r = core.maintain();
    expect(r.opened).toBe(3);
    expect(r.grants.every((g) => g.binding === 'b')).toBe(true);
    core.resume('x.com');
    expect(core.maintain().opened).toBe(3);
    expect(core.domain('x.com').connections('a')).toBe(3);
  });

  test('suspend before a domain is seen applies when its first message arrives', () => {
    const { core } = make();
    core.suspend('later.com');
    fill(core, 'later.com', undefined, 10, 1);
    expect(core.maintain().opened).toBe(0);
    core.resume('later.com');
    expect(core.maintain().opened).toBe(3);
  });

  test('resume does not lift a suspension that the configuration sets', () => {
    const { core } = make({ config: { domains: { 'held.com': { suspendDelivery: true } } } });
    fill(core, 'held.com', undefined, 10, 1);
    core.suspend('held.com');
    core.resume('held.com');
    expect(core.maintain().opened).toBe(0);
  });
});

describe('connection-rate throttle', () => {
  test('"2/1" globally: 2 connections per 1000 ms of the clock', () => {
    const { core, clock } = make({ config: { global: { outboundThrottleConnections: '2/1' } } });
    fill(core, 'a.com', undefined, 400, 1);
    expect(core.maintain().opened).toBe(2);
    expect(core.maintain().opened).toBe(0);
    clock.t = T0 + 999;
    expect(core.maintain().opened).toBe(0);
    clock.t = T0 + 1000;
    expect(core.maintain().opened).toBe(2);
    clock.t = T0 + 1500;
    expect(core.maintain().opened).toBe(0);
    clock.t = T0 + 2000;
    expect(core.maintain().opened).toBe(2);
    expect(core.stats().connections).toBe(6);
  });

  test('a global throttle is one bucket across domains', () => {
    const { core, clock } = make({ config: { global: { outboundThrottleConnections: '2/1' } } });
    fill(core, 'a.com', undefined, 400, 1);
    fill(core, 'b.com', undefined, 400, 1000);
    fill(core, 'c.com', undefined, 400, 2000);
    expect(core.maintain().opened).toBe(2);
    clock.t = T0 + 1000;
    expect(core.maintain().opened).toBe(2);
    expect(core.stats().connections).toBe(4);
  });

  test('releasing connections does not give throttle tokens back', () => {
    const { core, clock } = make({ config: { global: { outboundThrottleConnections: '2/1' } } });
    fill(core, 'a.com', undefined, 400, 1);
    const r = core.maintain();
    for (const g of r.grants) core.releaseConnection(g.connectionId);
    expect(core.maintain().opened).toBe(0);
    clock.t = T0 + 1000;
    expect(core.maintain().opened).toBe(2);
  });

  test('a domain-scope throttle is per domain and shared across bindings', () => {
    const { core, clock } = make({
      bindings: ['x', 'y'],
      config: {
        domains: { 'a.com': { outboundThrottleConnections: '2/1' }, 'b.com': { outboundThrottleConnections: '2/1' } },
      },
    });
    for (const [i, b] of ['x', 'y'].entries()) {
      fill(core, 'a.com', b, 400, 10000 * i + 1);
      fill(core, 'b.com', b, 400, 10000 * i + 2001);
      fill(core, 'c.com', b, 50, 10000 * i + 4001);
    }
    core.maintain();
    expect(core.domain('a.com').connections()).toBe(2); // x and y share a.com's bucket
    expect(core.domain('b.com').connections()).toBe(2); // b.com has its own
    expect(core.domain('c.com').connections()).toBe(24); // unthrottled: 12 per binding
    clock.t = T0 + 1000;
    core.maintain();
    expect(core.domain('a.com').connections()).toBe(4);
    expect(core.domain('b.com').connections()).toBe(4);
  });

  test("a binding-scope throttle is shared across that binding's domains only", () => {
    const { core } = make({
      bindings: ['x', 'y'],
      config: { bindings: { x: { outboundThrottleConnections: '3/1' } } },
    });
    for (const [i, b] of ['x', 'y'].entries()) {
      fill(core, 'a.com', b, 10, 10000 * i + 1);
      fill(core, 'b.com', b, 10, 10000 * i + 2001);
    }
    core.maintain();
    const a = core.domain('a.com');
    const b = core.domain('b.com');
    expect(a.connections('x') + b.connections('x')).toBe(3);
    expect(a.connections('y') + b.connections('y')).toBe(6);
  });

  test('"N" and a bare number are per second; "N/secs" takes fractional seconds', () => {
    for (const [rate, perWindow, windowMs] of [
      ['3', 3, 1000],
      [4, 4, 1000],
      ['1/0.5', 1, 500],
      ['2/10', 2, 10000],
    ] as const) {
      const { core, clock } = make({ config: { global: { outboundThrottleConnections: rate } } });
      fill(core, 'a.com', undefined, 400, 1);
      expect(core.maintain().opened).toBe(perWindow);
      clock.t = T0 + windowMs - 1;
      expect(core.maintain().opened).toBe(0);
      clock.t = T0 + windowMs;
      expect(core.maintain().opened).toBe(perWindow);
    }
  });
});

describe('delayed and expired messages', () => {
  test('a delayed message moves to active when due by the clock option', () => {
    const { core, clock } = make();
    core.enqueue({ id: 7, domain: 'a.com', nextAttempt: T0 + 5000 });
    expect(core.message(7)?.state).toBe('delayed');
    expect(core.stats()).toMatchObject({ active: 0, delayed: 1 });
    clock.t = T0 + 4999;
    expect(core.maintain().opened).toBe(0);
    expect(core.message(7)?.state).toBe('delayed');
    clock.t = T0 + 5000;
    expect(core.maintain().opened).toBe(1);
    expect(core.message(7)?.state).toBe('active');
    expect(core.stats()).toMatchObject({ active: 1, delayed: 0 });
    expect(core.activeQueue('a.com', 0).toArray()).toEqual([7]);
  });

  test('delayed messages are promoted in next-attempt order', () => {
    const { core, clock } = make();
    core.enqueue({ id: 3, domain: 'a.com', nextAttempt: T0 + 300 });
    core.enqueue({ id: 1, domain: 'a.com', nextAttempt: T0 + 100 });
    core.enqueue({ id: 2, domain: 'a.com', nextAttempt: T0 + 200 });
    core.enqueue({ id: 4, domain: 'a.com', nextAttempt: T0 + 400 });
    clock.t = T0 + 300;
    core.maintain();
    expect(core.activeQueue('a.com', 0).toArray()).toEqual([1, 2, 3]);
    expect(core.domain('a.com').delayedSize).toBe(1);
  });

  test('a delayed message past its expiry is bounced, not promoted', () => {
    const { core, clock, bounces } = make();
    core.enqueue({ id: 11, domain: 'a.com', nextAttempt: T0 + 50, expiresAt: T0 + 100 });
    core.enqueue({ id: 12, domain: 'a.com', nextAttempt: T0 + 50, expiresAt: T0 + 10_000 });
    clock.t = T0 + 200;
    const r = core.maintain();
    expect(bounces).toEqual([{ id: 11, domain: 'a.com', reason: 'expired' }]);
    expect(core.message(11)).toBeUndefined();
    expect(core.message(12)?.state).toBe('active');
    expect(r.opened).toBe(1);
    expect(core.stats().expired).toBe(1);
  });

  test('an active message past its expiry is bounced at the next pass', () => {
    const { core, clock, bounces } = make();
    core.enqueue({ id: 21, domain: 'a.com', expiresAt: T0 + 100 });
    core.enqueue({ id: 22, domain: 'a.com', expiresAt: Infinity });
    clock.t = T0 + 99;
    core.maintainDomain('a.com', { reserve: 0, goalsz: -1 });
    expect(bounces).toEqual([]);
    clock.t = T0 + 101;
    core.maintain();
    expect(bounces).toEqual([{ id: 21, domain: 'a.com', reason: 'expired' }]);
    expect(core.activeQueue('a.com', 0).toArray()).toEqual([22]);
    expect(core.stats()).toMatchObject({ active: 1, expired: 1 });
  });

  test('expiry is also applied when hook providers are registered (JS pass)', () => {
    const { core, clock, bounces } = make();
    core.hooks.mailQueueMaintain.registerLast(() => -1);
    core.enqueue({ id: 31, domain: 'a.com', expiresAt: T0 + 100 });
    core.enqueue({ id: 32, domain: 'a.com', nextAttempt: T0 + 10, expiresAt: T0 + 100 });
    clock.t = T0 + 500;
    core.maintain();
    expect(bounces.sort((x, y) => x.id - y.id)).toEqual([
      { id: 31, domain: 'a.com', reason: 'expired' },
      { id: 32, domain: 'a.com', reason: 'expired' },
    ]);
    expect(core.stats()).toMatchObject({ active: 0, delayed: 0, expired: 2 });
  });

  test('messageExpiration (seconds) sets the default expiry', () => {
    const { core, clock, bounces } = make({ config: { domains: { 'short.com': { messageExpiration: 60 } } } });
    core.enqueue({ id: 41, domain: 'short.com' });
    core.enqueue({ id: 42, domain: 'long.com' });
    expect(core.message(41)?.expiresAt).toBe(T0 + 60_000);
    expect(core.message(42)?.expiresAt).toBe(T0 + 86_400_000);
    clock.t = T0 + 60_001;
    core.maintain();
    expect(bounces).toEqual([{ id: 41, domain: 'short.com', reason: 'expired' }]);
  });
});

describe('releaseConnection', () => {
  test('gives the count back everywhere, and lets the next pass open again', () => {
    const { core } = make({ bindings: ['a', 'b'], config: { global: { maxOutboundConnections: 3 } } });
    fill(core, 'x.com', 'b', 100, 1);
    const r = core.maintain();
    expect(r.opened).toBe(3);
    expect(core.maintain().opened).toBe(0);
    core.releaseConnection(r.grants[1].connectionId);
    expect(core.stats()).toMatchObject({ connections: 2, opened: 3, released: 1 });
    expect(core.domain('x.com').connections('b')).toBe(2);
    expect(core.counters[core.counterIndex['connections:b']]).toBe(2);
    const again = core.maintain();
    expect(again.opened).toBe(1);
    expect(r.grants.map((g) => g.connectionId)).not.toContain(again.grants[0].connectionId);
    expect(core.checkInvariants()).toBe(true);
  });

  test('an unknown id, or one released already, throws ERR_UNKNOWN_CONNECTION', () => {
    const { core } = make();
    fill(core, 'x.com', undefined, 10, 1);
    const r = core.maintain();
    expect(() => core.releaseConnection(987654)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_CONNECTION' }));
    core.releaseConnection(r.grants[0].connectionId);
    expect(() => core.releaseConnection(r.grants[0].connectionId)).toThrow(
      expect.objectContaining({ code: 'ERR_UNKNOWN_CONNECTION' }),
    );
    expect(core.stats()).toMatchObject({ connections: 2, released: 1 });
  });

  test('a bad id is a RangeError/TypeError, not a release', () => {
    const { core } = make();
    expect(() => core.releaseConnection(0)).toThrow(RangeError);
    expect(() => core.releaseConnection(1.5)).toThrow(RangeError);
    expect(() => core.releaseConnection('1' as unknown as number)).toThrow(TypeError);
  });
});

describe('close()', () => {
  test('after close() every call throws ERR_CLOSED; close() twice is fine', () => {
    const { core } = make();
    fill(core, 'x.com', undefined, 10, 1);
    const r = core.maintain();
    const dr = core.domain('x.com');
    const sl = core.activeQueue('x.com', 0);
    core.close();
    expect(core.closed).toBe(true);
    expect(() => core.close()).not.toThrow();
    const closed = expect.objectContaining({ code: 'ERR_CLOSED' });
    const calls: [string, () => unknown][] = [
      ['enqueue', () => core.enqueue({ id: 999, domain: 'x.com' })],
      ['enqueueBatch', () => core.enqueueBatch('x.com', undefined, Float64Array.of(999))],
      ['maintain', () => core.maintain()],
      ['maintainDomain', () => core.maintainDomain('x.com')],
      ['openConnections', () => core.openConnections('x.com', 0, 1)],
      ['releaseConnection', () => core.releaseConnection(r.grants[0].connectionId)],
      ['stats', () => core.stats()],
      ['take', () => core.take('x.com', 0)],
      ['cancel', () => core.cancel(1)],
      ['message', () => core.message(1)],
      ['domain', () => core.domain('x.com')],
      ['domains', () => core.domains()],
      ['suspend', () => core.suspend('x.com')],
      ['resume', () => core.resume('x.com')],
      ['checkInvariants', () => core.checkInvariants()],
      ['registerLast', () => core.hooks.mailQueueMaintain.registerLast(() => 0)],
      ['call', () => core.hooks.mailQueueMaintain.call(dr, 0, sl, T0, 0, 0)],
      ['dr.connections', () => dr.connections()],
      ['sl.size', () => sl.size],
      ['sl.peek', () => sl.peek()],
    ];
    for (const [name, fn] of calls) {
      expect(fn, name).toThrow(closed);
    }
  });

  test('close() on a fresh core, then again', () => {
    const core = new MailQueueCore();
    core.close();
    core.close();
    expect(() => core.stats()).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
  });
});

describe('configuration refused at construction', () => {
  function refusal(options: MailQueueCoreOptions): Error {
    try {
      const core = new MailQueueCore(options);
      core.close();
    } catch (e) {
      return e as Error;
    }
    throw new Error(`accepted: ${JSON.stringify(options)}`);
  }

  test.each([
    ['global', { global: { maxOutboundConection: 3 } }, 'maxOutboundConection', 'config.global'],
    ['domain', { domains: { 'a.com': { bogus: 1 } } }, 'bogus', 'config.domains.a.com'],
    ['binding', { bindings: { default: { maxConnections: 1 } } }, 'maxConnections', 'config.bindings.default'],
    [
      'binding::domain',
      { bindings: { default: { domains: { 'a.com': { retry: 1 } } } } },
      'retry',
      'config.bindings.default.domains.a.com',
    ],
  ])('an unknown key in a %s scope', (_scope, config, key, where) => {
    const e = refusal({ config: config as CoreConfig });
    expect(e.message).toContain(key);
    expect(e.message).toContain(where);
  });

  test('an unknown top-level scope', () => {
    const e = refusal({ config: { domain: {} } as unknown as CoreConfig });
    expect(e.message).toContain('domain');
    expect(e.message).toContain('config');
  });

  test.each([
    [
      'serverReserveOutboundConnections',
      { domains: { 'a.com': { serverReserveOutboundConnections: 5 } } },
      'config.domains.a.com',
    ],
    [
      'serverReserveOutboundConnections',
      { bindings: { default: { serverReserveOutboundConnections: 5 } } },
      'config.bindings.default',
    ],
    [
      'serverMaxOutboundConnections',
      { domains: { 'a.com': { serverMaxOutboundConnections: 5 } } },
      'config.domains.a.com',
    ],
    ['scopeMaxOutboundConnections', { global: { scopeMaxOutboundConnections: 5 } }, 'config.global'],
    [
      'scopeMaxOutboundConnections',
      { bindings: { default: { scopeMaxOutboundConnections: 5 } } },
      'config.bindings.default',
    ],
  ])('%s in a wrong scope', (key, config, where) => {
    const e = refusal({ config: config as CoreConfig });
    expect(e.message).toContain(key);
    expect(e.message).toContain(where);
  });

  test.each([
    ['maxOutboundConnections', { global: { maxOutboundConnections: -1 } }, 'config.global'],
    ['serverMaxOutboundConnections', { global: { serverMaxOutboundConnections: -5 } }, 'config.global'],
    ['serverReserveOutboundConnections', { global: { serverReserveOutboundConnections: -1 } }, 'config.global'],
    ['maxOutboundConnections', { domains: { 'a.com': { maxOutboundConnections: -2 } } }, 'config.domains.a.com'],
    [
      'scopeMaxOutboundConnections',
      { domains: { 'a.com': { scopeMaxOutboundConnections: -1 } } },
      'config.domains.a.com',
    ],
    [
      'maxOutboundConnections',
      { bindings: { default: { domains: { 'a.com': { maxOutboundConnections: -1 } } } } },
      'config.bindings.default.domains.a.com',
    ],
  ])('a negative %s', (key, config, where) => {
    const e = refusal({ config: config as CoreConfig });
    expect(e.message).toContain(key);
    expect(e.message).toContain(where);
  });

  test.each(['2/', '/1', 'abc', '2/0', '-2/1', '2/1/1', '0/1', '0', '', '2 per 1', '1e3/1'] as const)(
    'a malformed rate %j',
    (rate) => {
      const e = refusal({ config: { domains: { 'a.com': { outboundThrottleConnections: rate } } } });
      expect(e.message).toContain('outboundThrottleConnections');
      expect(e.message).toContain('config.domains.a.com');
      const g = refusal({ config: { global: { outboundThrottleConnections: rate } } });
      expect(g.message).toContain('outboundThrottleConnections');
      expect(g.message).toContain('config.global');
    },
  );

  test.each([2.5, -1, 0, NaN])('a malformed numeric rate %s', (rate) => {
    const e = refusal({ config: { global: { outboundThrottleConnections: rate } } });
    expect(e.message).toContain('outboundThrottleConnections');
    expect(e.message).toContain('config.global');
  });

  test.each([0, 1.5, -0.3, 'medium'])('a bad aggressiveness %j', (a) => {
    const e = refusal({ config: { global: { connectionAllocationAggressiveness: a as number } } });
    expect(e.message).toContain('connectionAllocationAggressiveness');
    expect(e.message).toContain('config.global');
  });

  test('an undeclared binding in config', () => {
    const e = refusal({ bindings: ['a', 'b'], config: { bindings: { c: { maxOutboundConnections: 1 } } } });
    expect(e.message).toContain('"c"');
    expect(e.message).toContain('config.bindings');
  });

  test('an undeclared binding group in config', () => {
    const e = refusal({
      bindings: [{ name: 'a', group: 'g1' }],
      config: { bindingGroups: { g2: { maxOutboundConnections: 1 } } },
    });
    expect(e.message).toContain('"g2"');
    expect(e.message).toContain('config.bindingGroups');
  });

  test('well-formed configuration in every scope is accepted', () => {
    const core = new MailQueueCore({
      bindings: [{ name: 'a', group: 'g' }, 'b'],
      config: {
        global: {
          maxOutboundConnections: 10,
          serverMaxOutboundConnections: 100,
          serverReserveOutboundConnections: 5,
          outboundThrottleConnections: '10/2',
        },
        domains: { 'a.com': { scopeMaxOutboundConnections: 3, suspendDelivery: false, messageExpiration: 10 } },
        bindings: { a: { serverMaxOutboundConnections: 4, domains: { 'a.com': { maxOutboundConnections: 2 } } } },
        bindingGroups: {
          g: { connectionAllocationAggressiveness: 'high', domains: { 'a.com': { scopeMaxOutboundConnections: 2 } } },
        },
      },
    });
    core.close();
  });
});
