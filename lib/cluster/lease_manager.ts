// The Redis side of the fleet-wide caps (decision 48): the two Lua scripts of lease_scripts.ts,
// defined on the caller's ioredis client, and sent in one pipeline per batch (one round trip for
// every cap a node syncs). It keeps no state of its own but the owner name, the next lease number
// and how many commands it has sent.
import { randomBytes } from 'node:crypto';

import { LEASE_RELEASE, LEASE_SYNC } from './lease_scripts.js';

/** What a lease manager needs of an ioredis client (Redis or Cluster). */
export interface RedisLike {
  defineCommand(name: string, definition: { numberOfKeys: number; lua: string }): void;
  pipeline(): PipelineLike;
}

interface PipelineLike {
  exec(): Promise<[Error | null, unknown][] | null>;
}

type ScriptPipeline = PipelineLike & {
  mqcLeaseSync(...args: (string | number)[]): ScriptPipeline;
  mqcLeaseRelease(...args: (string | number)[]): ScriptPipeline;
};

/** One cap to sync: its key, cap, how many slots the owner wants, which leases it keeps or gives back. */
export interface LeaseSync {
  key: string;
  cap: number;
  target: number;
  renew: readonly string[];
  release: readonly string[];
  /** How long the leases live in Redis (default: the manager's ttlMs). */
  ttlMs?: number;
}

export interface LeaseReply {
  /** The leases the owner holds now (renewed and new). */
  held: string[];
  /** floor(cap / owners holding or wanting slots), at least 1. */
  share: number;
  /** Another owner wants slots and holds fewer than its share. */
  deficient: boolean;
  /** Redis started empty less than a lease's life ago: no new leases yet. */
  grace: boolean;
}

export class LeaseManager {
  /** This process's name in Redis: "<node>:<boot id>". */
  readonly owner: string;
  /** Commands sent to Redis (one per script call). */
  commands = 0;
  #seq = 0;
  readonly #redis: RedisLike;

  constructor(
    redis: RedisLike,
    node: string,
    readonly prefix: string,
    readonly ttlMs: number,
  ) {
    this.#redis = redis;
    this.owner = `${node}:${randomBytes(4).toString('hex')}`;
    redis.defineCommand('mqcLeaseSync', { numberOfKeys: 3, lua: LEASE_SYNC });
    redis.defineCommand('mqcLeaseRelease', { numberOfKeys: 2, lua: LEASE_RELEASE });
  }

  /** Syncs every cap of the batch in one pipeline; rejects when Redis fails any of them. */
  async sync(batch: readonly LeaseSync[]): Promise<LeaseReply[]> {
    if (batch.length === 0) return [];
    const p = this.#redis.pipeline() as ScriptPipeline;
    const boot = `${this.prefix}:boot`;
    for (const s of batch) {
      p.mqcLeaseSync(
        s.key,
        `${s.key}:want`,
        boot,
        this.owner,
        s.cap,
        s.ttlMs ?? this.ttlMs,
        s.target,
        this.#seq,
        s.release.length,
        ...s.release,
        ...s.renew,
      );
      // Lease numbers are this owner's: every call may use up to target of them.
      this.#seq += s.target;
    }
    this.commands += batch.length;
    const results = await p.exec();
    if (results === null) throw new Error('the Redis pipeline was discarded');
    return results.map(([err, value]) => {
      if (err) throw err;
      const row = value as (string | number)[];
      return {
        held: row.slice(4).map(String),
        share: Number(row[1]),
        deficient: Number(row[2]) === 1,
        grace: Number(row[3]) === 1,
      };
    });
  }

  /** Gives back leases (and the owner's wish for more) of the caps named, in one pipeline. */
  async release(batch: readonly { key: string; leases: readonly string[] }[]): Promise<void> {
    if (batch.length === 0) return;
    const p = this.#redis.pipeline() as ScriptPipeline;
    for (const r of batch) p.mqcLeaseRelease(r.key, `${r.key}:want`, this.owner, ...r.leases);
    this.commands += batch.length;
    const results = await p.exec();
    for (const [err] of results ?? []) if (err) throw err;
  }
}
