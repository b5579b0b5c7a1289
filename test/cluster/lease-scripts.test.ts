// The Lua scripts of the fleet-wide caps (lib/cluster/lease_scripts.ts) through the lease manager,
// against a real redis-server (test/support/redis_server.ts): a cap is never passed, expired
// leases are pruned, renewed ones live on, released ones are free, an owner that wants slots and
// holds fewer than its share makes the others stop at theirs, and after Redis lost everything
// (FLUSHALL) nobody acquires until the holders have re-asserted their leases.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { LeaseManager, type LeaseReply } from '../../lib/cluster/lease_manager.js';
import { sleep } from '../support/harness.js';
import { RedisServer, redisAvailable } from '../support/redis_server.js';

const TTL = 400;

describe.runIf(redisAvailable())('lease scripts on a real redis-server', () => {
  let server: RedisServer;
  let redis: Redis;
  beforeAll(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.port, '127.0.0.1', { lazyConnect: false });
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.kill();
  });

  // A fresh prefix per test, its boot key set in the past (no grace), unless `grace` is asked.
  let n = 0;
  async function fleet(grace = false): Promise<{ prefix: string; key: string; node: (name: string) => LeaseManager }> {
    const prefix = `t${++n}`;
    if (!grace) await redis.set(`${prefix}:boot`, '0');
    return { prefix, key: `${prefix}:pair:b:example.com`, node: (name) => new LeaseManager(redis, name, prefix, TTL) };
  }
  const sync = async (
    m: LeaseManager,
    key: string,
    cap: number,
    target: number,
    renew: string[] = [],
    release: string[] = [],
  ) => (await m.sync([{ key, cap, target, renew, release }]))[0];
  const count = (key: string) => redis.zcard(key);

  test('a cap is never passed: a second owner gets only what is left', async () => {
    const { key, node } = await fleet();
    const a = node('a');
    const b = node('b');
    const ra = await sync(a, key, 3, 2);
    expect(ra.held).toHaveLength(2);
    expect(ra.held.every((m) => m.startsWith(`${a.owner}:`))).toBe(true);
    const rb = await sync(b, key, 3, 3);
    expect(rb.held).toHaveLength(1);
    expect(await count(key)).toBe(3);
    const rb2 = await sync(b, key, 3, 3, rb.held);
    expect(rb2.held).toEqual(rb.held);
    expect(await count(key)).toBe(3);
  });

  test('expired leases are pruned; renewed ones live on; released ones are free', async () => {
    const { key, node } = await fleet();
    const a = node('a');
    const b = node('b');
    const c = node('c');
    let ra = await sync(a, key, 3, 1);
    const rb = await sync(b, key, 3, 2);
    expect(rb.held).toHaveLength(2);
    // a renews across more than a lease's life; b does not.
    for (let i = 0; i < 4; i++) {
      await sleep(TTL / 3);
      ra = await sync(a, key, 3, 1, ra.held);
      expect(ra.held).toHaveLength(1);
    }
    const rc = await sync(c, key, 3, 3);
    expect(rc.held).toHaveLength(2); // b's two expired; a's one is still there
    expect(await count(key)).toBe(3);
    await a.release([{ key, leases: ra.held }]);
    const rc2 = await sync(c, key, 3, 3, rc.held);
    expect(rc2.held).toHaveLength(3);
  });

  test('a renewal that gives leases back frees them in the same call', async () => {
    const { key, node } = await fleet();
    const a = node('a');
    const ra = await sync(a, key, 2, 2);
    const ra2 = await sync(a, key, 2, 1, ra.held.slice(0, 1), ra.held.slice(1));
    expect(ra2.held).toEqual(ra.held.slice(0, 1));
    expect(await count(key)).toBe(1);
  });

  test('an owner below its share that wants slots makes the others stop at their share', async () => {
    const { key, node } = await fleet();
    const a = node('a');
    const b = node('b');
    const ra = await sync(a, key, 4, 4);
    expect(ra.held).toHaveLength(4);
    const rb = await sync(b, key, 4, 4);
    expect(rb.held).toHaveLength(0);
    const ra2 = await sync(a, key, 4, 4, ra.held);
    expect(ra2.deficient).toBe(true);
    expect(ra2.share).toBe(2);
    // a keeps two (its share) and gives two back; b takes them, no more.
    await sync(a, key, 4, 2, ra2.held.slice(0, 2), ra2.held.slice(2));
    const rb2 = await sync(b, key, 4, 4, rb.held);
    expect(rb2.held).toHaveLength(2);
    expect(await count(key)).toBe(4);
  });

  test('Redis emptied (FLUSHALL): no new leases for a lease life, while holders re-assert theirs', async () => {
    const { prefix, key, node } = await fleet();
    const a = node('a');
    const b = node('b');
    const ra = await sync(a, key, 3, 2);
    expect(ra.held).toHaveLength(2);
    await redis.flushall();
    const rb = await sync(b, key, 3, 3);
    expect(rb.grace).toBe(true);
    expect(rb.held).toHaveLength(0);
    const ra2 = await sync(a, key, 3, 2, ra.held);
    expect(ra2.held).toEqual(ra.held);
    expect(await redis.exists(`${prefix}:boot`)).toBe(1);
    let rb2: LeaseReply = rb;
    // Renewed by a, b waits out the grace and then gets only what a left.
    for (let i = 0; i < 4; i++) {
      await sleep(TTL / 3);
      await sync(a, key, 3, 2, ra.held);
      rb2 = await sync(b, key, 3, 3, rb2.held);
    }
    expect(rb2.grace).toBe(false);
    expect(rb2.held).toHaveLength(1);
    expect(await count(key)).toBe(3);
  });

  test('a fresh Redis grants nothing for a lease life', async () => {
    const { key, node } = await fleet(true);
    const a = node('a');
    const r = await sync(a, key, 3, 1);
    expect(r.grace).toBe(true);
    expect(r.held).toHaveLength(0);
    await sleep(TTL + 50);
    expect((await sync(a, key, 3, 1)).held).toHaveLength(1);
  });
});
