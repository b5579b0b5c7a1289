// The `cluster` constructor option (decision 48): the ioredis client a fleet shares, this node's
// name, and how long a lease lives; and what the configuration caps fleet-wide.
import type { ResolvedConfig, Scope } from '../config.js';
import { codedError } from '../errors.js';
import { checkKeys, checkObject, typeName } from '../validate.js';
import type { RedisLike } from './lease_manager.js';

export interface ClusterOptions {
  /** An ioredis client (Redis or Cluster) the core uses for its leases; the caller owns it. */
  redis: RedisLike;
  /** This node's name, unique in the fleet: letters, digits, '.', '_' and '-' (1 to 64). */
  node: string;
  /** How long a lease lives without renewal, seconds (default 10, 1 to 300). A node killed
   *  without warning frees its slots within this; the leases are renewed every third of it. */
  leaseTtl?: number;
  /** Prefix of the Redis keys (default 'mqc'); fleets sharing one Redis use different ones. */
  prefix?: string;
}

export interface ClusterSettings {
  redis: RedisLike;
  node: string;
  ttlMs: number;
  prefix: string;
}

const KEYS = new Set(['redis', 'node', 'leaseTtl', 'prefix']);
const NAME = /^[A-Za-z0-9._-]{1,64}$/;

export function checkClusterOptions(raw: unknown): ClusterSettings {
  const o = checkObject(raw, 'options.cluster') as Record<string, unknown>;
  checkKeys(o, KEYS, 'options.cluster', 'option');
  const redis = o.redis as Partial<RedisLike> | undefined;
  if (typeof redis?.defineCommand !== 'function' || typeof redis.pipeline !== 'function')
    throw new TypeError(`options.cluster.redis must be an ioredis client, got ${typeName(o.redis)}`);
  if (typeof o.node !== 'string') throw new TypeError(`options.cluster.node must be a string, got ${typeName(o.node)}`);
  if (!NAME.test(o.node))
    throw new RangeError(`options.cluster.node must be 1 to 64 of [A-Za-z0-9._-], got ${JSON.stringify(o.node)}`);
  const prefix = o.prefix ?? 'mqc';
  if (typeof prefix !== 'string')
    throw new TypeError(`options.cluster.prefix must be a string, got ${typeName(prefix)}`);
  if (!NAME.test(prefix))
    throw new RangeError(`options.cluster.prefix must be 1 to 64 of [A-Za-z0-9._-], got ${JSON.stringify(prefix)}`);
  const ttl = o.leaseTtl ?? 10;
  if (typeof ttl !== 'number')
    throw new TypeError(`options.cluster.leaseTtl must be a number of seconds, got ${typeName(ttl)}`);
  if (!(ttl >= 1 && ttl <= 300))
    throw new RangeError(`options.cluster.leaseTtl must be from 1 to 300 seconds, got ${ttl}`);
  return { redis: redis as RedisLike, node: o.node, ttlMs: Math.round(ttl * 1000), prefix };
}

/** The cluster caps the configuration sets: per domain (Infinity: none) and server-wide. */
export function clusterScopeMax(cfg: ResolvedConfig, domain: string): number {
  return (cfg.domains.get(domain)?.values.clusterScopeMaxOutboundConnections as number | undefined) ?? Infinity;
}

export function clusterServerMax(cfg: ResolvedConfig): number {
  return (cfg.global.values.clusterServerMaxOutboundConnections as number | undefined) ?? Infinity;
}

/** Every scope of a configuration (global, domains, bindings and groups with their domains). */
export function scopesOf(cfg: ResolvedConfig): Scope[] {
  const scopes = [cfg.global, ...cfg.domains.values()];
  for (const n of [...cfg.bindings, ...cfg.groups]) scopes.push(n.scope, ...n.domains.values());
  return scopes;
}

/** A configuration that sets a cluster cap or throttle needs the cluster option (else it would be
 *  ignored). */
export function checkClusterCapped(cfg: ResolvedConfig, cluster: ClusterSettings | undefined): void {
  if (cluster !== undefined) return;
  const s = scopesOf(cfg).find((x) => Object.keys(x.values).some((k) => k.startsWith('cluster')));
  if (s !== undefined)
    throw codedError(
      'ERR_CONFIG',
      `${s.where}: a cluster cap needs the cluster option (a Redis client and a node name)`,
    );
}
