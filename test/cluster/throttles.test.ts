// The fleet-wide throttles (clusterOutboundThrottleConnections, clusterOutboundThrottleMessages;
// decision 51) on a real redis-server, counted at real SMTP receivers: several cores in this process
// (each its own Redis client, delivery, store and receiver) share one throttle of N per window.
// The fleet never opens (or starts) more than N in any window, across share changes (a node that
// gets mail later gets slots within a few seconds); a node that holds no slot opens nothing, and a
// closing node's slot passes on; with Redis stopped no new throttled connection opens, and they
// resume when it returns.
//
// Each receiver stamps what it sees with its own clock a little after the grant (the pass, the TCP
// connect, the accept), so the windows counted there are shortened by SLACK_MS (as in
// test/delivery/limits.test.ts): a fleet that lets more than N through a window still shows.
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';

import { clusterState, MailQueueCore, MemoryStore, SmtpTransport, type ScopeOptions } from '../../lib/index.js';
import { CoreLog, maxInWindow, sleep, submitMany, waitFor } from '../support/harness.js';
import { connectRedis, RedisServer, redisAvailable } from '../support/redis_server.js';
import { startServer, type TestServer } from '../support/smtp_servers.js';

const TTL = 2; // leaseTtl, seconds: a sync every 667 ms
const SLACK_MS = 300;

interface Node {
  core: MailQueueCore;
  log: CoreLog;
  redis: Redis;
  server: TestServer;
}

describe.runIf(redisAvailable())('fleet-wide throttles on one Redis', () => {
  let redisServer: RedisServer;
  const nodes: Node[] = [];

  beforeAll(async () => {
    redisServer = await RedisServer.start();
  });
  afterEach(async () => {
    for (const n of nodes.splice(0)) await shut(n);
  });
  afterAll(async () => {
    await redisServer.kill();
  });

  async function shut(n: Node): Promise<void> {
    if (!n.core.closed) {
      await n.core.stop();
      n.core.close();
    }
    n.redis.disconnect();
    await n.server.close();
  }

  async function node(name: string, domains: Record<string, ScopeOptions>): Promise<Node> {
    const server = await startServer({ name });
    const redis = await connectRedis(redisServer.port);
    const core = new MailQueueCore({
      config: {
        global: {
          maxOutboundConnections: 10,
          connectionAllocationAggressiveness: 1,
          idleTimeout: 0.1,
          delayedQueueScanInterval: 0.05,
          retryInterval: 0.2,
          maxRetryInterval: 0.2,
        },
        domains,
      },
      transport: new SmtpTransport({
        routes: Object.fromEntries(Object.keys(domains).map((d) => [d, { host: '127.0.0.1', port: server.port }])),
      }),
      store: new MemoryStore(),
      cluster: { redis, node: name, leaseTtl: TTL },
    });
    const n = { core, log: new CoreLog(core), redis, server };
    nodes.push(n);
    core.start();
    return n;
  }

  const ids = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
  const opens = (ns: Node[]) => ns.flatMap((n) => n.server.connections.map((c) => c.openedAt));
  const delivered = (ns: Node[]) => ns.reduce((k, n) => k + n.log.delivered.length, 0);
  const described = (times: number[]) => {
    const t = [...times].sort((a, b) => a - b);
    return JSON.stringify(t.map((x) => x - t[0]));
  };

  test('connections: never more than N in any window across the fleet, while a third node joins', async () => {
    const N = 4;
    const W = 1.5;
    const domains = {
      't.test': { clusterOutboundThrottleConnections: `${N}/${W}`, maxDeliveriesPerConnection: 1 },
    };
    const [a, b, c] = [await node('a', domains), await node('b', domains), await node('c', domains)];
    await submitMany(a.core, ids(1, 14), () => 't.test');
    await submitMany(b.core, ids(101, 14), () => 't.test');
    await waitFor(() => delivered([a, b]) >= 8, 'a and b to deliver some', 30_000);
    // c gets mail while a and b hold every slot and still have mail: they come down to their share.
    await submitMany(c.core, ids(201, 8), () => 't.test');
    await waitFor(() => c.log.delivered.length > 0, 'the node that joined to get a slot', 15_000);
    await waitFor(() => a.log.isDone(ids(1, 14)) && b.log.isDone(ids(101, 14)), 'a and b done', 40_000);
    await waitFor(() => c.log.isDone(ids(201, 8)), 'c done', 40_000);
    const all = opens([a, b, c]);
    expect(all.length).toBe(36); // a connection per message
    expect(maxInWindow(all, W * 1000 - SLACK_MS), `fleet opens ${described(all)}`).toBeLessThanOrEqual(N);
    for (const n of [a, b, c]) expect(n.log.violations).toEqual([]);
  }, 90_000);

  test('a node that holds no slot opens nothing; a closing node passes its slot on a window later', async () => {
    const W = 1;
    const domains = { 'one.test': { clusterOutboundThrottleConnections: `1/${W}`, maxDeliveriesPerConnection: 1 } };
    const [a, b] = [await node('a', domains), await node('b', domains)];
    await submitMany(a.core, ids(1, 40), () => 'one.test');
    await waitFor(() => a.log.delivered.length >= 2, 'a to deliver', 30_000);
    // One slot, two nodes with mail: the holder keeps it (the share is 1), b waits.
    await submitMany(b.core, ids(101, 3), () => 'one.test');
    await sleep(3000);
    expect(b.server.connections.length).toBe(0);
    expect(clusterState(b.core)?.leasesHeld).toBe(0);
    expect(a.log.delivered.length).toBeLessThan(40);
    const aOpens = opens([a]);
    await a.core.stop();
    a.core.close();
    await waitFor(() => b.log.isDone(ids(101, 3)), 'b to get the slot once a closed', 20_000);
    const all = [...aOpens, ...opens([b])];
    expect(maxInWindow(all, W * 1000 - SLACK_MS), `fleet opens ${described(all)}`).toBeLessThanOrEqual(1);
    expect(b.log.violations).toEqual([]);
  }, 60_000);

  test('messages: never more than N started in any window across the fleet', async () => {
    const N = 4;
    const W = 1.5;
    const domains = { 'm.test': { clusterOutboundThrottleMessages: `${N}/${W}`, maxOutboundConnections: 2 } };
    const [a, b] = [await node('a', domains), await node('b', domains)];
    await submitMany(a.core, ids(1, 12), () => 'm.test');
    await submitMany(b.core, ids(101, 12), () => 'm.test');
    await waitFor(() => a.log.isDone(ids(1, 12)) && b.log.isDone(ids(101, 12)), 'every message delivered', 60_000);
    const starts = [a, b].flatMap((n) => n.server.txns.map((t) => t.mailAt));
    expect(starts.length).toBe(24);
    expect(maxInWindow(starts, W * 1000 - SLACK_MS), `fleet starts ${described(starts)}`).toBeLessThanOrEqual(N);
    // Both nodes had slots at some time.
    expect(a.server.txns.length).toBeGreaterThan(0);
    expect(b.server.txns.length).toBeGreaterThan(0);
  }, 90_000);

  test('Redis stopped: no new throttled connection; local-only mail still goes; resumes when it returns', async () => {
    // Both domains reach the one receiver: an idle local.test connection would move to r.test
    // (siblings), which is no new connection and draws on no throttle; they do not migrate here.
    const apart = { migrateConnectionsBetweenSiblingDomains: false };
    const domains = {
      'r.test': { clusterOutboundThrottleConnections: '5/1', maxDeliveriesPerConnection: 1, ...apart },
      'local.test': { outboundThrottleConnections: '5/1', ...apart },
    };
    const a = await node('a', domains);
    await submitMany(a.core, ids(1, 3), () => 'r.test');
    await waitFor(() => a.log.isDone(ids(1, 3)), 'the first mail delivered', 20_000);

    await redisServer.kill();
    await waitFor(() => clusterState(a.core)?.redisUp === false, 'the node to see Redis gone', 10_000);
    // Past a lease's life nothing of the throttle is certainly held.
    await sleep(TTL * 1000);
    await submitMany(a.core, ids(11, 3), () => 'r.test');
    await submitMany(a.core, ids(21, 2), () => 'local.test');
    await waitFor(() => a.log.isDone(ids(21, 2)), 'the local-only mail delivered while Redis is down', 20_000);
    await sleep(1500);
    expect(a.server.txns.filter((t) => t.id >= 11 && t.id <= 13)).toEqual([]);
    expect(a.log.isDone(ids(11, 3))).toBe(false);

    await redisServer.restart();
    await waitFor(() => a.log.isDone(ids(11, 3)), 'the throttled mail delivered after Redis returned', 30_000);
    expect(clusterState(a.core)?.redisUp).toBe(true);
    expect(a.log.violations).toEqual([]);
  }, 60_000);
});
