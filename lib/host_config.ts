// The Host scope of the configuration (decision 47): caps per MX host, counted by the host a
// session actually connects to, whichever domains are routed there. `config.hosts` holds a cap per
// host for every binding together (Momentum's Host scope); `config.bindings[b].hosts` a cap per
// (binding, host) (binding::host). Host names are lower-cased and checked like domain names, or
// are IP addresses (a route to an address). lib/config.ts calls this for both scopes.
import net from 'node:net';

import { normalizeHost } from './transport/mx_resolver.js';

/** What may be set for one host. */
export interface HostOptions {
  /** Connections to the host at once: across every binding in `hosts`, for one binding in a
   *  binding's `hosts`. 0 means none. */
  maxOutboundConnections?: number;
}

/** The checks of lib/config.ts that a host entry shares with the other scopes. */
export interface HostChecks {
  isPlainObject(value: unknown): value is Record<string, unknown>;
  /** What a value that is not a plain object is, for the error. */
  notPlain(value: unknown): string;
  /** A connection limit, or a TypeError / RangeError naming `where`. */
  limit(value: unknown, where: string): number;
  /** An ERR_CONFIG error at `where`. */
  error(where: string, message: string): Error;
}

const MAX_HOST_LENGTH = 253;

function plain(checks: HostChecks, v: unknown, where: string): Record<string, unknown> {
  if (!checks.isPlainObject(v)) throw new TypeError(`${where} must be a plain object, got ${checks.notPlain(v)}`);
  return v;
}

/** A host name (lower-cased, without a final dot) or an IP address; RangeError otherwise. */
export function checkHostName(v: string, where: string): string {
  if (v.length === 0 || v.length > MAX_HOST_LENGTH)
    throw new RangeError(`${where} must be 1 to ${MAX_HOST_LENGTH} characters, got ${v.length}`);
  const lower = v.toLowerCase();
  if (net.isIP(lower) !== 0) return lower;
  if (!/^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?$/.test(lower))
    throw new RangeError(`${where} is not a host name or IP address: ${JSON.stringify(v.slice(0, 80))}`);
  return normalizeHost(lower);
}

/** One `hosts` section: host name -> its cap (Infinity when the entry sets none). */
export function parseHosts(raw: unknown, where: string, checks: HostChecks): Map<string, number> {
  const out = new Map<string, number>();
  if (raw === undefined) return out;
  const section = plain(checks, raw, where);
  for (const key of Object.keys(section)) {
    const host = checkHostName(key, `${where} key`);
    if (out.has(host)) throw checks.error(where, `host ${host} is configured twice`);
    const at = `${where}.${host}`;
    const entry = plain(checks, section[key], at);
    let max = Infinity;
    for (const option of Object.keys(entry)) {
      if (option !== 'maxOutboundConnections') throw checks.error(at, `unknown option ${JSON.stringify(option)}`);
      if (entry[option] !== undefined) max = checks.limit(entry[option], `${at}.${option}`);
    }
    out.set(host, max);
  }
  return out;
}

/** The Host scope resolved: each host's cap and its caps per binding slot. */
export class HostCaps {
  /** Whether any host appears in the configuration: the ledger counts per host only then. */
  readonly active: boolean;

  constructor(
    private readonly global: Map<string, number>,
    private readonly perBinding: readonly Map<string, number>[],
  ) {
    this.active = global.size > 0 || perBinding.some((m) => m.size > 0);
  }

  /** Every host the configuration names, in either scope. */
  names(): string[] {
    return [...new Set([...this.global.keys(), ...this.perBinding.flatMap((m) => [...m.keys()])])];
  }

  /** The cap of a host across every binding (Infinity: none). */
  max(host: string): number {
    return this.global.get(host) ?? Infinity;
  }

  /** The cap of a host per binding slot (Infinity: none). */
  bindingMax(host: string): number[] {
    return this.perBinding.map((m) => m.get(host) ?? Infinity);
  }
}
