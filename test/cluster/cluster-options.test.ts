// The cluster option and the cluster* configuration options: bad input is a TypeError or RangeError
// naming the key, a cluster cap without the cluster option and the fleet-wide throttles (not built
// yet) are ERR_CONFIG naming the scope, and a cluster-capped pair opens nothing before this node
// holds a lease (refused:cluster counts it). No Redis server is needed: the client never connects.
import { Redis } from 'ioredis';
import { afterAll, describe, expect, test } from 'vitest';

import { clusterState, MailQueueCore } from '../../lib/index.js';

const redis = new Redis({ lazyConnect: true, enableOfflineQueue: false });
afterAll(() => redis.disconnect());

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
    for (const key of ['clusterOutboundThrottleConnections', 'clusterOutboundThrottleMessages'])
      expect(() => new MailQueueCore({ cluster, config: { global: { [key]: '10/60' } } })).toThrow(
        new RegExp(`config\\.global\\.${key}: not supported yet`),
      );
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
