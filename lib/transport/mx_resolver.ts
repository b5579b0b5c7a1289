// MX lookup for the SMTP transport (RFC 5321 section 5.1, RFC 7505): which hosts receive a
// domain's mail, in which order, and which addresses they have. Answers are cached per resolver
// instance for a short TTL, because a busy MTA opens many connections to the same few domains
// and node:dns has no cache of its own; nothing here is module-level state.

import { isIP } from 'node:net';

import { MailQueueError } from '../errors.js';

/** The part of node:dns/promises (or a dns.promises.Resolver) that the transport uses. */
export interface DnsResolver {
  resolveMx(domain: string): Promise<Array<{ exchange: string; priority: number }>>;
  resolve4(hostname: string): Promise<string[]>;
  resolve6(hostname: string): Promise<string[]>;
}

/** A domain's receiving hosts, best preference first. */
export interface MxSet {
  readonly domain: string;
  /** Host names grouped by preference, lowest preference value first; order inside a group is DNS order. */
  readonly groups: readonly (readonly string[])[];
  /** True when the domain has no MX and its own A/AAAA records stand in (RFC 5321 section 5.1). */
  readonly implicit: boolean;
  /** Destination key: the sorted, distinct `host:port` list joined by ','. */
  readonly key: string;
}

export type MxErrorCode = 'ERR_SMTP_NULL_MX' | 'ERR_SMTP_NXDOMAIN' | 'ERR_SMTP_NO_ADDRESS' | 'ERR_SMTP_DNS';

/**
 * A failed MX lookup. `permanent` for a null MX, a domain that does not exist, or one with neither
 * MX nor address records: retrying cannot help, so the core bounces. Anything else (SERVFAIL,
 * timeout, refused) is `transient`.
 */
export class MxLookupError extends MailQueueError<MxErrorCode> {
  readonly permanent: boolean;
  readonly transient: boolean;
  constructor(
    code: MxErrorCode,
    readonly domain: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = 'MxLookupError';
    this.permanent = code !== 'ERR_SMTP_DNS';
    this.transient = !this.permanent;
  }
}

/** The addresses of one host, IPv4 first (see `orderAddresses`); `error` when none resolved. */
export interface HostAddresses {
  readonly addresses: readonly string[];
  readonly error?: { code: string; message: string };
}

interface CacheEntry<T> {
  expires: number;
  promise: Promise<T>;
  value?: T;
}

// c-ares reports NXDOMAIN as ENOTFOUND and an empty answer (the name exists) as ENODATA.
const NXDOMAIN = new Set(['ENOTFOUND', 'NXDOMAIN']);
const NODATA = new Set(['ENODATA']);
// Bounds each cache; an MTA's working set of domains is far smaller.
const MAX_CACHE_ENTRIES = 10_000;

function errorCode(err: unknown): string {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : 'EDNS';
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Lower-cased, without the trailing root dot. */
export function normalizeHost(name: string): string {
  const lower = name.trim().toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** `host:port`, with IPv6 literals bracketed so the port stays unambiguous. */
export function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The destination key of a set of hosts on one port each: sorted, distinct, joined by ','. */
export function destinationKey(hosts: ReadonlyArray<{ host: string; port: number }>): string {
  return [...new Set(hosts.map((h) => hostPort(normalizeHost(h.host), h.port)))].sort().join(',');
}

/** Fisher-Yates on a copy: equal-preference MX hosts share the load (RFC 5321 section 5.1). */
export function shuffled<T>(list: readonly T[], random: () => number = Math.random): T[] {
  const out = list.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export class MxResolver {
  readonly #resolver: DnsResolver;
  readonly #ttl: number;
  readonly #port: number;
  readonly #timeout: number;
  readonly #now: () => number;
  readonly #mx = new Map<string, CacheEntry<MxSet>>();
  readonly #addresses = new Map<string, CacheEntry<HostAddresses>>();

  /**
   * @param ttl how long an answer (also a permanent failure) is reused, in ms; 0 turns caching off.
   *            Transient failures are never cached.
   * @param port the SMTP port of MX hosts, part of the destination key
   * @param timeout the longest one query may take, in ms: an injected resolver that never settles
   *                must not pin every open() of the domain (they share the in-flight query)
   */
  constructor(resolver: DnsResolver, ttl: number, port: number, timeout: number, now: () => number = Date.now) {
    this.#resolver = resolver;
    this.#ttl = ttl;
    this.#port = port;
    this.#timeout = timeout;
    this.#now = now;
  }

  /** The domain's MX set, from the cache when fresh. Rejects with an MxLookupError. */
  lookup(domain: string): Promise<MxSet> {
    return this.#cached(
      this.#mx,
      domain,
      () => this.#lookup(domain),
      (err) => err instanceof MxLookupError && err.permanent,
    );
  }

  /** The cached destination key of a domain, or undefined when unknown or stale. */
  cachedKey(domain: string): string | undefined {
    const entry = this.#mx.get(domain);
    if (!entry || entry.expires <= this.#now()) return undefined;
    return entry.value?.key;
  }

  /** A host's addresses (A and AAAA), from the cache when fresh. Never rejects. */
  addresses(host: string): Promise<HostAddresses> {
    if (isIP(host)) return Promise.resolve({ addresses: [host] });
    return this.#cached(
      this.#addresses,
      host,
      () => this.#resolveHost(host),
      () => false,
    );
  }

  clear(): void {
    this.#mx.clear();
    this.#addresses.clear();
  }

  // One lookup per name at a time: concurrent opens for a domain share the in-flight query.
  #cached<T>(
    map: Map<string, CacheEntry<T>>,
    name: string,
    run: () => Promise<T>,
    cacheFailure: (err: unknown) => boolean,
  ): Promise<T> {
    const now = this.#now();
    const hit = map.get(name);
    if (hit && hit.expires > now) return hit.promise;
    if (hit) map.delete(name);
    if (map.size >= MAX_CACHE_ENTRIES) this.#sweep(map, now);
    const entry: CacheEntry<T> = { expires: Infinity, promise: run() };
    map.set(name, entry);
    entry.promise.then(
      (value) => {
        entry.value = value;
        entry.expires = this.#now() + this.#ttl;
        if (this.#ttl === 0 && map.get(name) === entry) map.delete(name);
      },
      (err: unknown) => {
        if (map.get(name) !== entry) return;
        if (cacheFailure(err) && this.#ttl > 0) entry.expires = this.#now() + this.#ttl;
        else map.delete(name);
      },
    );
    return entry.promise;
  }

  #sweep<T>(map: Map<string, CacheEntry<T>>, now: number): void {
    for (const [k, e] of map) if (e.expires <= now) map.delete(k);
    // Still full of fresh answers: drop the oldest insertions rather than grow without bound.
    for (const k of map.keys()) {
      if (map.size < MAX_CACHE_ENTRIES) break;
      map.delete(k);
    }
  }

  #query<T>(run: () => Promise<T>, what: string, name: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = new Error(`${what}(${name}) took longer than ${this.#timeout} ms`) as Error & { code: string };
        err.code = 'ETIMEOUT';
        reject(err);
      }, this.#timeout);
      // A resolver that throws synchronously is a failed query like any other.
      Promise.resolve()
        .then(run)
        .then(resolve, reject)
        .finally(() => clearTimeout(timer));
    });
  }

  async #lookup(domain: string): Promise<MxSet> {
    let records: Array<{ exchange: string; priority: number }>;
    try {
      records = await this.#query(() => this.#resolver.resolveMx(domain), 'resolveMx', domain);
      if (!Array.isArray(records)) throw new TypeError('resolveMx did not return an array');
    } catch (err) {
      const code = errorCode(err);
      if (NXDOMAIN.has(code)) {
        throw new MxLookupError(
          'ERR_SMTP_NXDOMAIN',
          domain,
          `${domain}: the domain does not exist (MX lookup: ${code})`,
          { cause: err },
        );
      }
      if (!NODATA.has(code)) {
        throw new MxLookupError('ERR_SMTP_DNS', domain, `${domain}: MX lookup failed (${code}: ${errorText(err)})`, {
          cause: err,
        });
      }
      records = [];
    }

    const hosts: Array<{ name: string; preference: number }> = [];
    let nullMx = false;
    for (const r of records) {
      if (typeof r !== 'object' || r === null || typeof r.exchange !== 'string') continue;
      const name = normalizeHost(r.exchange);
      const preference = Number.isFinite(r.priority) ? r.priority : 65535;
      // RFC 7505: "." (which resolvers report as "" or ".") means "this domain accepts no mail".
      if (name === '' || name === '.') {
        nullMx = true;
        continue;
      }
      hosts.push({ name, preference });
    }
    // A null MX must stand alone (RFC 7505 section 3); next to real MX records it is a
    // misconfiguration, and the real records are the better guess at what the owner wants.
    if (nullMx && hosts.length === 0) {
      throw new MxLookupError('ERR_SMTP_NULL_MX', domain, `${domain}: the domain accepts no mail (null MX, RFC 7505)`);
    }

    if (hosts.length === 0) {
      // RFC 5321 section 5.1: no MX, so the domain itself is the host, at preference 0, provided
      // it has an address. Neither MX nor address is permanent; a failed query is not.
      const found = await this.#resolveHost(domain);
      if (found.addresses.length === 0) {
        const code = found.error?.code ?? 'ENODATA';
        if (NXDOMAIN.has(code) || NODATA.has(code)) {
          throw new MxLookupError('ERR_SMTP_NO_ADDRESS', domain, `${domain}: no MX and no A/AAAA record (${code})`);
        }
        throw new MxLookupError(
          'ERR_SMTP_DNS',
          domain,
          `${domain}: no MX, and the A/AAAA lookup failed (${code}: ${found.error?.message ?? ''})`,
        );
      }
      this.#addresses.set(domain, { expires: this.#now() + this.#ttl, promise: Promise.resolve(found) });
      return { domain, groups: [[domain]], implicit: true, key: destinationKey([{ host: domain, port: this.#port }]) };
    }

    hosts.sort((a, b) => a.preference - b.preference);
    const groups: string[][] = [];
    const seen = new Set<string>();
    let last = NaN;
    for (const h of hosts) {
      if (seen.has(h.name)) continue; // listed twice: its best preference counts
      seen.add(h.name);
      if (h.preference !== last) groups.push([]);
      last = h.preference;
      groups[groups.length - 1].push(h.name);
    }
    return {
      domain,
      groups,
      implicit: false,
      key: destinationKey(hosts.map((h) => ({ host: h.name, port: this.#port }))),
    };
  }

  async #resolveHost(host: string): Promise<HostAddresses> {
    const [v4, v6] = await Promise.allSettled([
      this.#query(() => this.#resolver.resolve4(host), 'resolve4', host),
      this.#query(() => this.#resolver.resolve6(host), 'resolve6', host),
    ]);
    const addresses: string[] = [];
    // IPv4 first: large receivers hold IPv6 senders to stricter rules (PTR, SPF/DKIM alignment),
    // so a dual-stack MX is more reliably reached over IPv4.
    for (const r of [v4, v6]) {
      if (r.status === 'fulfilled' && Array.isArray(r.value)) {
        for (const a of r.value) if (typeof a === 'string' && isIP(a) && !addresses.includes(a)) addresses.push(a);
      }
    }
    if (addresses.length > 0) return { addresses };
    // Report the more telling failure: a server error outranks "no such record".
    const errors = [v4, v6].filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
    const serious = errors.find((e) => !NXDOMAIN.has(errorCode(e)) && !NODATA.has(errorCode(e)));
    const chosen = serious ?? errors.find((e) => NXDOMAIN.has(errorCode(e))) ?? errors[0];
    return {
      addresses,
      error:
        chosen === undefined
          ? { code: 'ENODATA', message: `${host} has no A or AAAA record` }
          : { code: errorCode(chosen), message: errorText(chosen) },
    };
  }
}
