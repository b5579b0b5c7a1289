// One node with a cluster cap on a real redis-server, delivering to real SMTP receivers: while
// Redis is down (SIGKILL), the node reports an ERR_CLUSTER 'error' event, its metrics say
// mqc_cluster_redis_up 0, and once its leases are no longer certainly alive it opens no connection
// for the cluster-capped domain (the mail waits) while a domain with local caps only is still
// delivered; when Redis is back (empty, same port) it resumes on its own.
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { clusterState, MailQueueCore, MemoryStore, SmtpTransport } from '../../lib/index.js';
import { CoreLog, sleep, submitMany, waitFor } from '../support/harness.js';
import { connectRedis, RedisServer, redisAvailable } from '../support/redis_server.js';
import { startServer, type TestServer } from '../support/smtp_servers.js';

describe.runIf(redisAvailable())('a node whose Redis goes away', () => {
  let redisServer: RedisServer;
  let capped: TestServer;
  let local: TestServer;
  let redis: Redis;
  let core: MailQueueCore | undefined;
  beforeAll(async () => {
    redisServer = await RedisServer.start();
    capped = await startServer();
    local = await startServer();
    redis = await connectRedis(redisServer.port);
  });
  afterAll(async () => {
    await core?.stop();
    core?.close();
    redis.disconnect();
    await redisServer.kill();
    await capped.close();
    await local.close();
  });

  test('fails closed for cluster-capped pairs, keeps local caps, resumes when Redis returns', async () => {
    core = new MailQueueCore({
      config: {
        global: { idleTimeout: 0.1, delayedQueueScanInterval: 0.05, retryInterval: 0.2, maxRetryInterval: 0.2 },
        domains: { 'capped.test': { clusterMaxOutboundConnections: 2 } },
      },
      transport: new SmtpTransport({
        routes: {
          'capped.test': { host: '127.0.0.1', port: capped.port },
          'local.test': { host: '127.0.0.1', port: local.port },
        },
      }),
      store: new MemoryStore(),
      cluster: { redis, node: 'solo', leaseTtl: 1 },
    });
    const c = core;
    const log = new CoreLog(c);
    const registry = c.metrics();
    const gauge = async (name: string) => (await registry.getSingleMetric(name)?.get())?.values[0]?.value;
    c.start();
    await submitMany(c, [1, 2, 3, 4, 5], () => 'capped.test');
    await waitFor(() => log.isDone([1, 2, 3, 4, 5]), 'the first mail delivered', 20_000);
    expect(await gauge('mqc_cluster_redis_up')).toBe(1);
    expect(capped.peak()).toBeLessThanOrEqual(2);

    await redisServer.kill();
    await waitFor(() => clusterState(c)?.redisUp === false, 'the node to see Redis gone', 10_000);
    expect(log.errors.some((e) => (e as { code?: string }).code === 'ERR_CLUSTER')).toBe(true);
    expect(await gauge('mqc_cluster_redis_up')).toBe(0);
    // Past a lease's life nothing of the cluster cap is certainly held: no new connection opens.
    await waitFor(() => capped.open() === 0, 'the idle connections to close', 10_000);
    await sleep(1100);
    const connectionsBefore = capped.connections.length;
    await submitMany(c, [6, 7, 8], () => 'capped.test');
    await submitMany(c, [101, 102], () => 'local.test');
    await waitFor(() => log.isDone([101, 102]), 'the local-caps domain delivered while Redis is down', 20_000);
    await sleep(1000);
    expect(capped.connections.length).toBe(connectionsBefore);
    expect(log.isDone([6, 7, 8])).toBe(false);

    await redisServer.restart();
    await waitFor(() => log.isDone([6, 7, 8]), 'the capped mail delivered after Redis returned', 20_000);
    expect(clusterState(c)?.redisUp).toBe(true);
    expect(await gauge('mqc_cluster_redis_up')).toBe(1);
    expect(capped.peak()).toBeLessThanOrEqual(2);
    expect(log.violations).toEqual([]);
  }, 60_000);
});
