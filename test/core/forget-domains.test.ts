// Forgetting idle domains (forgetIdleDomainsAfter, forgetIdleDomains()): a domain with no message,
// no connection and no suspension is forgotten after its idle time, its slot reused by the next new
// domain; a DomainRecord (or ActiveQueue view) still held for it refuses with ERR_DOMAIN_FORGOTTEN
// instead of addressing the new domain; the name's next message makes it again with its
// configuration resolved again.
import { afterEach, expect, test } from 'vitest';

import { MailQueueCore, type MailQueueCoreOptions } from '../../lib/index.js';

const T0 = 1_700_000_000_000;
const live: MailQueueCore[] = [];
afterEach(() => {
  for (const c of live.splice(0)) if (!c.closed) c.close();
});

function make(options: MailQueueCoreOptions & { at?: { t: number } } = {}): { core: MailQueueCore; at: { t: number } } {
  const at = options.at ?? { t: T0 };
  const { at: _, ...rest } = options;
  const core = new MailQueueCore({ clock: () => at.t, ...rest });
  live.push(core);
  return { core, at };
}

/** Takes and settles everything of `domain` on its connections, then releases them. */
function deliverAll(core: MailQueueCore): void {
  const grants = core.maintain().grants;
  const out = new Float64Array(64);
  for (const g of grants) {
    for (let n = core.takeFor(g.connectionId, out); n > 0; n = core.takeFor(g.connectionId, out))
      core.settleMany(out.subarray(0, n));
    core.releaseConnection(g.connectionId);
  }
}

test('an idle domain is forgotten forgetIdleDomainsAfter after the first pass that found it idle, and can come back', () => {
  const { core, at } = make({ forgetIdleDomainsAfter: 60_000 });
  core.enqueue({ id: 1, domain: 'a.test' });
  core.enqueue({ id: 2, domain: 'b.test' });
  deliverAll(core);
  core.maintain(); // the pass that finds both idle
  expect(core.stats().domains).toBe(2);
  // b.test gets mail again 30 s later and keeps it: only a.test goes at 60 s.
  at.t = T0 + 30_000;
  core.enqueue({ id: 3, domain: 'b.test', nextAttempt: T0 + 3_600_000 });
  at.t = T0 + 59_999;
  core.maintain();
  expect(core.domains()).toEqual(['a.test', 'b.test']);
  at.t = T0 + 60_000;
  core.maintain();
  expect(core.domains()).toEqual(['b.test']);
  expect(core.hasDomain('a.test')).toBe(false);
  expect(core.stats().domains).toBe(1);
  expect(() => core.domain('a.test')).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_DOMAIN' }));
  expect(core.checkInvariants()).toBe(true);
  // The next message makes it again.
  core.enqueue({ id: 4, domain: 'a.test' });
  expect(core.domain('a.test').activeSize()).toBe(1);
  expect(core.stats().domains).toBe(2);
});

test('a held DomainRecord of a forgotten domain refuses, and never addresses the domain that reused its slot', () => {
  const { core } = make({ forgetIdleDomainsAfter: 0 });
  core.enqueue({ id: 1, domain: 'old.test' });
  const old = core.domain('old.test');
  const oldQueue = core.activeQueue('old.test', 0);
  core.cancel(1);
  expect(core.forgetIdleDomains()).toBe(1);
  expect(old.forgotten).toBe(true);
  // A new domain takes the slot, with mail.
  core.enqueue({ id: 2, domain: 'new.test' });
  core.enqueue({ id: 3, domain: 'new.test' });
  const fresh = core.domain('new.test');
  expect(fresh).not.toBe(old);
  expect(fresh.forgotten).toBe(false);
  const forgotten = expect.objectContaining({
    code: 'ERR_DOMAIN_FORGOTTEN',
    message: expect.stringMatching(/old\.test/),
  });
  expect(() => old.activeSize()).toThrow(forgotten);
  expect(() => old.delayedSize).toThrow(forgotten);
  expect(() => old.connections()).toThrow(forgotten);
  expect(() => old.toJSON()).toThrow(forgotten);
  expect(() => oldQueue.size).toThrow(forgotten);
  expect(() => oldQueue.peek()).toThrow(forgotten);
  expect(() => oldQueue.remove(2)).toThrow(forgotten);
  // Calls that take a DomainRecord refuse it too: nothing reaches new.test.
  expect(() => core.take(old, 0)).toThrow(forgotten);
  expect(() => core.enqueueBatch(old, undefined, Float64Array.of(9))).toThrow(forgotten);
  expect(() => core.enqueueMany([old], undefined, Float64Array.of(10))).toThrow(forgotten);
  expect(fresh.activeSize()).toBe(2);
  expect(core.message(9)).toBeUndefined();
  expect(core.message(10)).toBeUndefined();
  expect(core.checkInvariants()).toBe(true);
});

test('mail, a connection or a suspension keeps a domain; the sweep forgets it once they are gone', () => {
  const { core, at } = make({ forgetIdleDomainsAfter: 1_000 });
  core.enqueue({ id: 1, domain: 'mail.test', nextAttempt: T0 + 100_000 });
  core.enqueue({ id: 2, domain: 'conn.test' });
  core.enqueue({ id: 3, domain: 'held.test' });
  const grants = core.maintain().grants;
  for (const x of grants) if (x.domain !== 'conn.test') core.releaseConnection(x.connectionId);
  const [g] = grants.filter((x) => x.domain === 'conn.test');
  const out = new Float64Array(4);
  expect(core.takeFor(g.connectionId, out)).toBe(1);
  core.settle(out[0]);
  core.suspend('held.test');
  core.cancel(3);
  at.t = T0 + 5_000;
  core.maintain(); // held.test noted idle
  expect(core.forgetIdleDomains()).toBe(0);
  at.t = T0 + 6_000;
  core.maintain(); // held.test: refused (suspended), asked again one idle period later
  expect(core.domains().sort()).toEqual(['conn.test', 'held.test', 'mail.test']);
  core.resume('held.test');
  core.releaseConnection(g.connectionId);
  at.t = T0 + 6_500;
  core.maintain(); // conn.test noted idle
  expect(core.domains().sort()).toEqual(['conn.test', 'held.test', 'mail.test']);
  at.t = T0 + 7_000;
  core.maintain();
  expect(core.domains().sort()).toEqual(['conn.test', 'mail.test']);
  at.t = T0 + 7_500;
  core.maintain();
  expect(core.domains()).toEqual(['mail.test']);
  expect(core.checkInvariants()).toBe(true);
});

test('forgetIdleDomainsAfter: Infinity never forgets; forgetIdleDomains() still does; bad values are refused', () => {
  const { core, at } = make({ forgetIdleDomainsAfter: Infinity });
  core.enqueue({ id: 1, domain: 'a.test' });
  core.cancel(1);
  at.t = T0 + 365 * 86_400_000;
  core.maintain();
  expect(core.domains()).toEqual(['a.test']);
  expect(core.forgetIdleDomains()).toBe(1);
  expect(core.domains()).toEqual([]);
  for (const bad of [-1, 1.5, Number.NaN, -Infinity]) {
    expect(() => new MailQueueCore({ forgetIdleDomainsAfter: bad })).toThrow(RangeError);
    expect(() => new MailQueueCore({ forgetIdleDomainsAfter: bad })).toThrow(/^options\.forgetIdleDomainsAfter/);
  }
  expect(() => new MailQueueCore({ forgetIdleDomainsAfter: '5' as never })).toThrow(TypeError);
});

test("a domain made again resolves its configuration again, and the forgotten domain's tallies stay in the totals", () => {
  const { core } = make({
    forgetIdleDomainsAfter: 0,
    config: { global: { maxOutboundConnections: 2 }, domains: { 'x.test': { maxOutboundConnections: 1 } } },
  });
  core.enqueue({ id: 1, domain: 'y.test' });
  expect(core.fail('y.test')).toBe(1); // a bounce in y.test's tally
  expect(core.summary().bounced).toBe(1);
  expect(core.forgetIdleDomains()).toBe(1);
  expect(core.summary().bounced).toBe(1); // kept in the totals after y.test is gone
  // x.test reuses y.test's slot: its own limit of 1 holds, not y.test's 2.
  for (let i = 10; i < 20; i++) core.enqueue({ id: i, domain: 'x.test' });
  expect(core.maintain().grants.length).toBe(1);
  expect(core.domain('x.test').connections()).toBe(1);
  // connectionsByDomain lines up with domains() once slots are free.
  core.enqueue({ id: 30, domain: 'z.test' });
  expect(core.domains()).toEqual(['x.test', 'z.test']);
  expect([...core.connectionsByDomain().subarray(0, 2)]).toEqual([1, 0]);
});
