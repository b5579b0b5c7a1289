// The cluster option and the cluster* configuration options: bad input is a TypeError or RangeError
// naming the key, a cluster cap or throttle without the cluster option, or at a scope that does not
// take it, is ERR_CONFIG naming the scope, and a cluster-capped or cluster-throttled pair opens
// nothing before this node holds a lease or slot (refused:cluster counts it). No Redis server is needed: the client never connects.
import { Redis } from 'ioredis';
import { afterAll, describe, expect, test } from 'vitest';

import { clusterState, MailQueueCore } from '../../lib/index.js';

const redis = new Redis({ lazyConnect: true, enableOfflineQueue: false });
afterAll(() => redis.disconnect());

/** make() throws an ERR_CONFIG whose message matches. */
function refused(make: () => unknown, message: RegExp): void {
  let err: unknown;
  try {
    make();
  } catch (e) {
    err = e;
  }
  expect(err).toMatchObject({ code: 'ERR_CONFIG' });
  expect((err as Error).message).toMatch(message);
}

describe('cluster options', () => {
  test.each([
    [{ node: 'a' }, TypeError, 'options.cluster.redis'],
    [{ redis: {}, node: 'a' }, TypeError, 'options.cluster.redis'],
    [{ redis, node: 7 }, TypeError, 'options.cluster.node'],
    [{ redis, node: 'a b' }, RangeError, 'options.cluster.node'],
    [{ redis, node: 'a', leaseTtl: '5' }, TypeError, 'options.cluster.leaseTtl'],
    [{ redis, node: 'a', leaseTtl: 0.5 }, RangeError, 'options.cluster.leaseTtl'],
    [{ redis, node: 'a', leaseTtl: Number.NaN }, RangeError, 'options.cluster.leaseTtl'],
    [{ redis, node: 'a', prefix: 'x:y' }, RangeError, 'options.cluster.prefix'],
    [{ redis, node: 'a', other: 1 }, Error, 'other'],
  ])('%o is refused', (cluster, type, names) => {
    expect(() => new MailQueueCore({ cluster: cluster as never })).toThrow(type);
    expect(() => new MailQueueCore({ cluster: cluster as never })).toThrow(names);
  });

  test('a cluster cap needs the cluster option; the caps are checked where Momentum allows them', () => {
    expect(
      () => new MailQueueCore({ config: { domains: { 'a.test': { clusterMaxOutboundConnections: 2 } } } }),
    ).toThrow(/config\.domains\.a\.test: a cluster cap needs the cluster option/);
    const cluster = { redis, node: 'a' };
    expect(() => new MailQueueCore({ cluster, config: { global: { clusterScopeMaxOutboundConnections: 2 } } })).toThrow(
      /clusterScopeMaxOutboundConnections is not valid in global scope/,
    );
    expect(
      () =>
        new MailQueueCore({ cluster, config: { domains: { 'a.test': { clusterServerMaxOutboundConnections: 2 } } } }),
    ).toThrow(/clusterServerMaxOutboundConnections is not valid in domain scope/);
    expect(() => new MailQueueCore({ cluster, config: { global: { clusterMaxOutboundConnections: -1 } } })).toThrow(
      RangeError,
    );
  });

  test('the fleet-wide throttles: at every scope the local ones take, refused elsewhere naming key and scope', () => {
    const cluster = { redis, node: 'a' };
    for (const key of ['clusterOutboundThrottleConnections', 'clusterOutboundThrottleMessages']) {
      const rate = { [key]: '10/60' };
      const core = new MailQueueCore({
        cluster,
        bindings: ['b1', { name: 'b2', group: 'g' }],
        config: {
          global: rate,
          domains: { 'a.test': rate },
          bindings: { b1: { ...rate, domains: { 'a.test': rate } } },
          bindingGroups: { g: { ...rate, domains: { 'a.test': rate } } },
        },
      });
      core.close();
      // Without the cluster option it would not apply: refused, naming the scope.
      refused(
        () => new MailQueueCore({ config: { bindings: { default: rate } } }),
        /^config\.bindings\.default: a cluster cap needs the cluster option/,
      );
      // The Host scope takes maxOutboundConnections only.
      refused(
        () => new MailQueueCore({ cluster, config: { hosts: { 'mx.a.test': rate } } }),
        new RegExp(`^config\\.hosts\\.mx\\.a\\.test: unknown option "${key}"`),
      );
      expect(() => new MailQueueCore({ cluster, config: { domains: { 'a.test': { [key]: '0/5' } } } })).toThrow(
        new RegExp(`config\\.domains\\.a\\.test\\.${key}: N must be from 1`),
      );
      expect(() => new MailQueueCore({ cluster, config: { global: { [key]: [] } } })).toThrow(TypeError);
    }
  });

  test('a pair under a fleet-wide throttle opens nothing before this node holds a slot', () => {
    const core = new MailQueueCore({
      clock: () => 1000,
      cluster: { redis, node: 'a' },
      config: { domains: { 'throttled.test': { clusterOutboundThrottleConnections: '5/10' } } },
    });
    core.enqueue({ id: 1, domain: 'throttled.test' });
    core.enqueue({ id: 2, domain: 'free.test' });
    expect(core.maintain(1000).opened).toBe(1);
    expect(core.domain('throttled.test').connections()).toBe(0);
    expect(core.counters[core.counterIndex['refused:cluster']]).toBeGreaterThan(0);
    core.close();
  });

  test('a cluster-capped pair opens nothing before this node holds a lease; others are not held back', () => {
    const core = new MailQueueCore({
      clock: () => 1000,
      cluster: { redis, node: 'a' },
      config: { domains: { 'capped.test': { clusterMaxOutboundConnections: 3 } } },
    });
    core.enqueue({ id: 1, domain: 'capped.test' });
    core.enqueue({ id: 2, domain: 'free.test' });
    const r = core.maintain(1000);
    expect(r.opened).toBe(1);
    expect(core.domain('capped.test').connections()).toBe(0);
    expect(core.counters[core.counterIndex['refused:cluster']]).toBeGreaterThan(0);
    expect(clusterState(core)).toMatchObject({ redisUp: true, leasesHeld: 0 });
    core.close();
  });
});
