// core.configure(config) on a core without delivery: the limits a domain is held to, seen through
// what openConnections() grants (the native ledger's own answer), before and after. A refused
// configuration changes nothing (stats, limits, suspensions); an accepted one re-resolves every
// existing domain; operator suspensions stay; a throttle keeps its history (docs/configuration.md,
// decision 45).
import { afterEach, describe, expect, test } from 'vitest';

import { type CoreConfig, MailQueueCore } from '../../lib/index.js';

const T0 = 1_000_000;
const cores: MailQueueCore[] = [];
afterEach(() => {
  for (const c of cores.splice(0)) c.close();
});

function make(config: CoreConfig, bindings: MailQueueCore['bindings'][number][] = ['b0', 'b1']) {
  const now = { t: T0 };
  const core = new MailQueueCore({ bindings, config, clock: () => now.t });
  cores.push(core);
  return { core, now };
}

/** How many connections (domain, binding) may open now: opened, then given back. */
function room(core: MailQueueCore, domain: string, binding: string, now?: number): number {
  const grants = core.openConnections(domain, binding, 1000, now === undefined ? {} : { now });
  for (const g of grants) core.releaseConnection(g.connectionId);
  return grants.length;
}

function refused(core: MailQueueCore, config: unknown): Error {
  try {
    core.configure(config as CoreConfig);
  } catch (err) {
    return err as Error;
  }
  throw new Error('configure() accepted a bad configuration');
}

describe('configure(): limits of existing domains resolve again', () => {
  test('pair, domain scope and binding caps, lowered and raised, for every existing domain', () => {
    const { core } = make({ global: { maxOutboundConnections: 6 } });
    core.enqueueBatch('a.test', 'b0', Float64Array.of(1, 2));
    core.enqueueBatch('b.test', 'b1', Float64Array.of(3));
    expect(room(core, 'a.test', 'b0')).toBe(6);
    expect(room(core, 'b.test', 'b1')).toBe(6);
    core.configure({
      global: { maxOutboundConnections: 4 },
      domains: { 'a.test': { maxOutboundConnections: 2 }, 'b.test': { scopeMaxOutboundConnections: 3 } },
      bindings: { b1: { domains: { 'b.test': { maxOutboundConnections: 1 } } } },
    });
    expect(room(core, 'a.test', 'b0')).toBe(2);
    expect(room(core, 'a.test', 'b1')).toBe(2);
    expect(room(core, 'b.test', 'b0')).toBe(3);
    expect(room(core, 'b.test', 'b1')).toBe(1);
    // A domain seen after configure() gets the new configuration too.
    core.enqueue({ id: 4, domain: 'c.test' });
    expect(room(core, 'c.test', 'b0')).toBe(4);
    core.configure({ bindings: { b0: { serverMaxOutboundConnections: 5 } } });
    expect(room(core, 'a.test', 'b0')).toBe(5); // the pair is back at the default 32, the binding caps it
    expect(room(core, 'a.test', 'b1')).toBe(32);
    expect(core.checkInvariants()).toBe(true);
  });

  test('a lowered cap leaves open connections open and grants nothing until the count is below it', () => {
    const { core } = make({ domains: { 'a.test': { maxOutboundConnections: 5 } } });
    core.enqueueBatch('a.test', 'b0', Float64Array.of(1, 2, 3));
    const open = core.openConnections('a.test', 'b0', 5);
    expect(open).toHaveLength(5);
    core.configure({ domains: { 'a.test': { maxOutboundConnections: 2 } } });
    expect(core.stats().connections).toBe(5); // nothing is closed from the core's side
    expect(core.domain('a.test').connections('b0')).toBe(5);
    expect(core.openConnections('a.test', 'b0', 1)).toHaveLength(0);
    expect(core.checkInvariants()).toBe(true);
    for (const g of open.slice(0, 4)) core.releaseConnection(g.connectionId);
    expect(core.openConnections('a.test', 'b0', 5)).toHaveLength(1); // back up to 2, no further
    expect(core.stats()).toMatchObject({ active: 3, connections: 2 }); // nothing queued moved
  });

  test('suspendDelivery from the configuration applies and lifts; operator suspensions stay', () => {
    const { core } = make({});
    core.enqueue({ id: 1, domain: 'a.test' });
    core.enqueue({ id: 2, domain: 'b.test' });
    core.configure({ domains: { 'a.test': { suspendDelivery: true } } });
    expect(core.domain('a.test').suspended('b0')).toBe(true);
    expect(room(core, 'a.test', 'b0')).toBe(0);
    core.suspend('b.test', 'b1');
    core.suspendBinding('b0');
    core.configure({});
    expect(core.domain('a.test').suspended('b1')).toBe(false); // the configuration's suspension lifted
    expect(core.domain('a.test').suspended('b0')).toBe(true); // suspendBinding('b0') stays
    expect(core.domain('b.test').suspended('b1')).toBe(true); // suspend('b.test', 'b1') stays
    expect(room(core, 'b.test', 'b1')).toBe(0);
    core.resume('b.test', 'b1');
    core.resumeBinding('b0');
    expect(room(core, 'b.test', 'b1')).toBe(32);
    expect(room(core, 'a.test', 'b0')).toBe(32);
  });

  test('messageExpiration: new messages take the new one, queued ones keep theirs', () => {
    const { core, now } = make({ global: { messageExpiration: 100 } });
    core.enqueue({ id: 1, domain: 'a.test' });
    core.configure({ domains: { 'a.test': { messageExpiration: 10 } } });
    now.t += 1;
    core.enqueue({ id: 2, domain: 'a.test' });
    expect(core.message(1)?.expiresAt).toBe(T0 + 100_000);
    expect(core.message(2)?.expiresAt).toBe(T0 + 1 + 10_000);
  });

  test('configure() from inside a maintenance hook is refused (ERR_REENTRANT), after close() ERR_CLOSED', () => {
    const { core } = make({});
    core.enqueue({ id: 1, domain: 'a.test' });
    let err: unknown;
    core.hooks.mailQueueMaintain.registerFirst(() => {
      try {
        core.configure({});
      } catch (e) {
        err = e;
      }
      return 0;
    });
    core.maintain();
    expect(err).toMatchObject({ code: 'ERR_REENTRANT' });
    core.close();
    expect(() => core.configure({})).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
  });
});

describe('configure(): a bad configuration is refused whole and changes nothing', () => {
  const bad: Array<[string, unknown, RegExp, 'TypeError' | 'RangeError' | 'ERR_CONFIG']> = [
    [
      'a bad value after good ones',
      { domains: { 'a.test': { maxOutboundConnections: 1 } }, global: { maxOutboundConnections: -1 } },
      /config\.global\.maxOutboundConnections must be an integer/,
      'RangeError',
    ],
    [
      'an unknown option in binding::domain scope',
      { bindings: { b0: { domains: { 'a.test': { maxConnections: 1 } } } } },
      /config\.bindings\.b0\.domains\.a\.test: unknown option "maxConnections"/,
      'ERR_CONFIG',
    ],
    [
      'an option outside its scopes',
      { domains: { 'a.test': { serverMaxOutboundConnections: 1 } } },
      /config\.domains\.a\.test: serverMaxOutboundConnections is not valid in domain scope/,
      'ERR_CONFIG',
    ],
    [
      'a binding the core was not made with',
      { domains: { 'a.test': { maxOutboundConnections: 1 } }, bindings: { b9: { maxOutboundConnections: 1 } } },
      /config\.bindings: binding "b9" is not declared/,
      'ERR_CONFIG',
    ],
    [
      'a throttle that does not parse',
      { global: { outboundThrottleConnections: '1/x' } },
      /outboundThrottleConnections/,
      'RangeError',
    ],
    ['not an object', [], /config must be a plain object/, 'TypeError'],
    ['an unknown scope', { domain: {} }, /unknown scope "domain"/, 'ERR_CONFIG'],
  ];
  test.each(bad)('%s', (_what, config, message, kind) => {
    const { core } = make({
      domains: { 'a.test': { maxOutboundConnections: 3, outboundThrottleConnections: '2/60' } },
    });
    core.enqueueBatch('a.test', 'b0', Float64Array.of(1, 2));
    core.suspend('a.test', 'b1');
    const held = core.openConnections('a.test', 'b0', 1, { now: T0 });
    const before = core.stats();
    const err = refused(core, config);
    expect(err.message).toMatch(message);
    if (kind === 'ERR_CONFIG') expect(err).toMatchObject({ code: 'ERR_CONFIG' });
    else expect(err.constructor.name).toBe(kind);
    expect(core.stats()).toEqual(before);
    // The old limits hold: cap 3 (one open), the same throttle bucket (one of two used), b1 suspended.
    expect(room(core, 'a.test', 'b0', T0)).toBe(1);
    expect(core.domain('a.test').suspended('b1')).toBe(true);
    core.releaseConnection(held[0].connectionId);
    expect(room(core, 'a.test', 'b0', T0 + 61_000)).toBe(2);
    expect(core.checkInvariants()).toBe(true);
  });
});

describe('configure(): throttles', () => {
  test('an unchanged throttle keeps its bucket and history; a changed rate keeps the history at the new rate', () => {
    const { core } = make({ domains: { 'a.test': { outboundThrottleConnections: '2/60' } } });
    core.enqueue({ id: 1, domain: 'a.test' });
    expect(room(core, 'a.test', 'b0', T0)).toBe(2);
    // Another option changes; the throttle does not: the two grants at T0 still count.
    core.configure({
      domains: { 'a.test': { outboundThrottleConnections: '2/60', maxOutboundConnections: 10 } },
    });
    expect(room(core, 'a.test', 'b1', T0 + 1000)).toBe(0);
    // The rate rises to 3/60: two of three used already.
    core.configure({ domains: { 'a.test': { outboundThrottleConnections: '3/60' } } });
    expect(room(core, 'a.test', 'b0', T0 + 2000)).toBe(1);
    // The window shortens to 3/1: every grant so far left it.
    core.configure({ domains: { 'a.test': { outboundThrottleConnections: '3/1' } } });
    expect(room(core, 'a.test', 'b0', T0 + 3000)).toBe(3);
    expect(room(core, 'a.test', 'b0', T0 + 3500)).toBe(0);
  });

  test('a throttle in a scope new to the configuration starts with no history', () => {
    const { core } = make({ domains: { 'a.test': { outboundThrottleConnections: '1/60' } } });
    core.enqueue({ id: 1, domain: 'a.test' });
    expect(room(core, 'a.test', 'b0', T0)).toBe(1);
    core.configure({ bindings: { b0: { domains: { 'a.test': { outboundThrottleConnections: '1/60' } } } } });
    expect(room(core, 'a.test', 'b0', T0 + 1)).toBe(1); // binding::domain scope: a new bucket
    expect(room(core, 'a.test', 'b1', T0 + 1)).toBe(32); // b1 has no throttle any more
  });

  test('a message throttle keeps its history across configure()', () => {
    const { core, now } = make({ domains: { 'a.test': { outboundThrottleMessages: '2/60' } } });
    core.enqueueBatch('a.test', 'b0', Float64Array.of(1, 2, 3, 4, 5));
    const [c] = core.openConnections('a.test', 'b0', 1);
    const out = new Float64Array(5);
    expect(core.takeFor(c.connectionId, out)).toBe(2);
    core.configure({ domains: { 'a.test': { outboundThrottleMessages: '2/60', maxOutboundConnections: 3 } } });
    now.t += 1000;
    expect(core.takeFor(c.connectionId, out)).toBe(0);
    core.configure({ domains: { 'a.test': { outboundThrottleMessages: '3/60' } } });
    expect(core.takeFor(c.connectionId, out)).toBe(1);
    core.configure({});
    expect(core.takeFor(c.connectionId, out)).toBe(2); // no message throttle any more
  });
});

test('configure() after a domain was forgotten: its slot is skipped, and it comes back with the new limits', () => {
  const core = new MailQueueCore({ bindings: ['b0'], forgetIdleDomainsAfter: 0 });
  try {
    core.enqueue({ id: 1, domain: 'gone.test' });
    for (let id = 2; id <= 40; id++) core.enqueue({ id, domain: 'kept.test' });
    core.cancel(1);
    expect(core.forgetIdleDomains()).toBe(1);
    core.configure({ global: { maxOutboundConnections: 3 } });
    expect(core.maintain().grants.length).toBe(3); // kept.test, at the new cap
    for (let id = 41; id <= 80; id++) core.enqueue({ id, domain: 'gone.test' });
    expect(core.maintain().grants.filter((g) => g.domain === 'gone.test').length).toBe(3);
    expect(core.checkInvariants()).toBe(true);
  } finally {
    core.close();
  }
});
