// Options of the SMTP transport (smtp.ts): their types, the defaults (SMTP_DEFAULTS), and their
// validation and resolution into the settings the transport runs with (parseOptions).
//
// Timeouts (ms), all configurable under `timeouts`:
//   connect   30 000  TCP connect to one address
//   greeting  30 000  from connect to the 220 greeting
//   command   60 000  waiting for any one reply (EHLO, STARTTLS, MAIL, RCPT, DATA, the final dot,
//                     RSET); nodemailer's socket inactivity timer, so a peer that stops reading
//                     our DATA also trips it. The whole session setup after connect is capped at
//                     greeting + 3 * command (EHLO, STARTTLS and the TLS handshake, EHLO again).
//   message  240 000  one whole transaction (MAIL FROM to the reply to the final dot): a peer
//                     that trickles bytes never lets `command` fire. Below the core's default
//                     deliveryTimeout (300 s), so the transport's verdict comes first.
//   idle      60 000  an unused session is closed with QUIT after this long. The core closes
//                     sessions itself (Momentum idle_timeout, 5 s); this is the backstop, and it
//                     stays under the 5 minutes a server waits for a command (RFC 5321
//                     4.5.3.2.7), so we end the session before the server drops it.
//   quit       5 000  close(): waiting for the reply to QUIT and for the server to close the
//                     connection; past it the connection is reset (smtp_link.ts)
//   dns       10 000  one DNS query (MX, A or AAAA)
//
// Other defaults: port 25, MX answers cached 60 s (mxCacheTtl), a failed address is tried last
// for 120 s (hostFailureRetry, Momentum's host_failure_retry), opportunistic STARTTLS without
// certificate checks (tls.rejectUnauthorized false, tls.requireTLS false) as MTAs do: an
// unverified encrypted session still beats plaintext, and most MX certificates would not verify.

import net from 'node:net';
import { checkBindingName, checkDomainName, checkInt, checkKeys, checkObject, typeName } from '../validate.js';
import { destinationKey, type DnsResolver } from './mx_resolver.js';

export interface SmtpRoute {
  host: string;
  port: number;
}

export interface SmtpBinding {
  /** Source address of connections made for this binding (an address of this machine). */
  localAddress?: string;
  /** Name sent with EHLO/HELO for this binding; defaults to options.defaultEhloName. */
  ehloName?: string;
}

export interface SmtpTimeouts {
  connect?: number;
  greeting?: number;
  command?: number;
  message?: number;
  idle?: number;
  quit?: number;
  dns?: number;
}

export interface SmtpTlsOptions {
  /** Verify the server's certificate during STARTTLS. Default false (opportunistic TLS). */
  rejectUnauthorized?: boolean;
  /** Refuse to send over a session that did not upgrade with STARTTLS. Default false. */
  requireTLS?: boolean;
}

/** What a routing function answers for a (domain, binding): the hosts to try in order, 'mx' for
 *  an MX lookup, or undefined to fall back to `routes` (and then to MX). */
export type RouteAnswer = SmtpRoute | SmtpRoute[] | 'mx' | undefined;

export interface SmtpTransportOptions {
  /**
   * Static routes, overriding MX lookup: hosts are tried in the order given. A key is a domain
   * (`example.com`), a wildcard for its subdomains at any depth (`*.example.com`, which does not
   * match `example.com` itself), or `*`, the default smart host for every domain that no other key
   * names. An exact key wins over a wildcard, a longer wildcard over a shorter one, and `*` comes
   * last. Used for smart hosts, tests and the demo.
   */
  routes?: Record<string, SmtpRoute | SmtpRoute[]>;
  /**
   * A routing function, asked before `routes` at every open (it may be async, e.g. an MTA's own MX
   * hook): hosts to try, 'mx', or undefined for `routes` and then MX. A function that throws or
   * answers something else fails the open as a transient ERR_SMTP_ROUTE (the core retries).
   */
  route?: (domain: string, binding: string) => RouteAnswer | Promise<RouteAnswer>;
  /** Source address and EHLO name per binding. A binding not listed uses the defaults. */
  bindings?: Record<string, SmtpBinding>;
  /** EHLO name when the binding sets none; nodemailer's default is the machine's FQDN or [127.0.0.1]. */
  defaultEhloName?: string;
  /** SMTP port of MX hosts (default 25). Routes carry their own. */
  port?: number;
  timeouts?: SmtpTimeouts;
  tls?: SmtpTlsOptions;
  /** DNS, by dependency injection; default a node:dns/promises Resolver owned by the transport. */
  resolver?: DnsResolver;
  /** How long an MX answer is reused, in ms (default 60 000; 0: no caching). */
  mxCacheTtl?: number;
  /** How long an address that failed is tried after the others, in ms (default 120 000; 0: never). */
  hostFailureRetry?: number;
}

export type Timeouts = Required<SmtpTimeouts>;

export const SMTP_DEFAULTS = Object.freeze({
  port: 25,
  mxCacheTtl: 60_000,
  hostFailureRetry: 120_000,
  timeouts: Object.freeze({
    connect: 30_000,
    greeting: 30_000,
    command: 60_000,
    message: 240_000,
    idle: 60_000,
    quit: 5_000,
    dns: 10_000,
  }) as Readonly<Timeouts>,
  tls: Object.freeze({ rejectUnauthorized: false, requireTLS: false }),
});

// ---- option validation ----------------------------------------------------------------------

const OPTION_KEYS = new Set([
  'routes',
  'route',
  'bindings',
  'defaultEhloName',
  'port',
  'timeouts',
  'tls',
  'resolver',
  'mxCacheTtl',
  'hostFailureRetry',
]);
const BINDING_KEYS = new Set(['localAddress', 'ehloName']);
const ROUTE_KEYS = new Set(['host', 'port']);
const TLS_KEYS = new Set(['rejectUnauthorized', 'requireTLS']);
export const MAX_TIMER = 2 ** 31 - 1; // setTimeout's limit

function checkMs(v: unknown, name: string, min: number): number {
  return checkInt(v, name, min, MAX_TIMER);
}

function checkBoolean(v: unknown, name: string): boolean {
  if (typeof v !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${typeName(v)}`);
  return v;
}

/** A host name or an IP address (IPv6 with or without brackets), normalized. */
function checkHost(v: unknown, name: string): string {
  if (typeof v !== 'string') throw new TypeError(`${name} must be a string, got ${typeName(v)}`);
  const bare = v.startsWith('[') && v.endsWith(']') ? v.slice(1, -1) : v;
  if (net.isIP(bare)) return bare.toLowerCase();
  return checkDomainName(v, name);
}

function checkEhloName(v: unknown, name: string): string {
  const n = checkDomainName(v, name);
  // An address literal must hold an address (RFC 5321 4.1.3).
  if (n.startsWith('[') && !net.isIP(n.slice(1, -1).replace(/^ipv6:/, ''))) {
    throw new RangeError(`${name} is not an address literal: ${JSON.stringify(v)}`);
  }
  return n;
}

function checkRoute(v: unknown, name: string): SmtpRoute {
  const o = checkObject(v, name);
  checkKeys(o, ROUTE_KEYS, name, 'listed');
  return { host: checkHost(o.host, `${name}.host`), port: checkInt(o.port, `${name}.port`, 1, 65535) };
}

export interface ResolvedRoute {
  hosts: SmtpRoute[];
  key: string;
}

/** One route's hosts, checked, with its destination key. */
export function resolveRoute(value: unknown, name: string): ResolvedRoute {
  let hosts: SmtpRoute[];
  if (Array.isArray(value)) {
    if (value.length === 0) throw new RangeError(`${name} must list at least one host`);
    hosts = value.map((h, i) => checkRoute(h, `${name}[${i}]`));
  } else {
    hosts = [checkRoute(value, name)];
  }
  return { hosts, key: destinationKey(hosts) };
}

/** The static routes: exact domains, wildcards (longest suffix first) and the default. */
export class RouteTable {
  readonly exact = new Map<string, ResolvedRoute>();
  /** [".example.com", route], longest suffix first. */
  readonly wildcards: [string, ResolvedRoute][] = [];
  fallback: ResolvedRoute | undefined;

  /** The route of a normalised domain name, or undefined for MX. */
  lookup(domain: string): ResolvedRoute | undefined {
    const exact = this.exact.get(domain);
    if (exact !== undefined) return exact;
    for (const [suffix, route] of this.wildcards) if (domain.endsWith(suffix)) return route;
    return this.fallback;
  }
}

export interface ResolvedBinding {
  localAddress: string | undefined;
  ehloName: string | undefined;
}

export interface Settings {
  routes: RouteTable;
  route: ((domain: string, binding: string) => RouteAnswer | Promise<RouteAnswer>) | undefined;
  bindings: Map<string, ResolvedBinding>;
  defaultEhloName: string | undefined;
  port: number;
  timeouts: Timeouts;
  rejectUnauthorized: boolean;
  requireTLS: boolean;
  resolver: DnsResolver | undefined;
  mxCacheTtl: number;
  hostFailureRetry: number;
}

export function parseOptions(options: unknown): Settings {
  const o = checkObject(options, 'options');
  checkKeys(o, OPTION_KEYS, 'options', 'listed');

  const port = o.port === undefined ? SMTP_DEFAULTS.port : checkInt(o.port, 'options.port', 1, 65535);

  const routes = new RouteTable();
  if (o.routes !== undefined) {
    const r = checkObject(o.routes, 'options.routes');
    for (const [domainKey, value] of Object.entries(r)) {
      const name = `options.routes[${JSON.stringify(domainKey)}]`;
      const route = resolveRoute(value, name);
      if (domainKey === '*') {
        routes.fallback = route;
      } else if (domainKey.startsWith('*.')) {
        const suffix = `.${checkDomainName(domainKey.slice(2), `${name} (wildcard domain)`)}`;
        if (routes.wildcards.some(([s]) => s === suffix))
          throw new RangeError(`${name} duplicates the route of *${suffix}`);
        routes.wildcards.push([suffix, route]);
      } else {
        const domain = checkDomainName(domainKey, `${name} (domain)`);
        if (routes.exact.has(domain)) throw new RangeError(`${name} duplicates the route of ${domain}`);
        routes.exact.set(domain, route);
      }
    }
    routes.wildcards.sort((a, b) => b[0].length - a[0].length);
  }
  if (o.route !== undefined && typeof o.route !== 'function')
    throw new TypeError(`options.route must be a function, got ${typeName(o.route)}`);
  const route = o.route as Settings['route'];

  const defaultEhloName =
    o.defaultEhloName === undefined ? undefined : checkEhloName(o.defaultEhloName, 'options.defaultEhloName');

  const bindings = new Map<string, ResolvedBinding>();
  if (o.bindings !== undefined) {
    const b = checkObject(o.bindings, 'options.bindings');
    for (const [bindingKey, value] of Object.entries(b)) {
      const name = `options.bindings[${JSON.stringify(bindingKey)}]`;
      checkBindingName(bindingKey, `${name} (binding name)`);
      const v = checkObject(value, name);
      checkKeys(v, BINDING_KEYS, name, 'listed');
      let localAddress: string | undefined;
      if (v.localAddress !== undefined) {
        if (typeof v.localAddress !== 'string') {
          throw new TypeError(`${name}.localAddress must be a string, got ${typeName(v.localAddress)}`);
        }
        if (!net.isIP(v.localAddress)) {
          throw new RangeError(
            `${name}.localAddress must be an IPv4 or IPv6 address, got ${JSON.stringify(v.localAddress)}`,
          );
        }
        localAddress = v.localAddress;
      }
      const ehloName = v.ehloName === undefined ? defaultEhloName : checkEhloName(v.ehloName, `${name}.ehloName`);
      bindings.set(bindingKey, { localAddress, ehloName });
    }
  }

  const timeouts: Timeouts = { ...SMTP_DEFAULTS.timeouts };
  if (o.timeouts !== undefined) {
    const t = checkObject(o.timeouts, 'options.timeouts');
    checkKeys(t, new Set(Object.keys(SMTP_DEFAULTS.timeouts)), 'options.timeouts', 'listed');
    for (const k of Object.keys(SMTP_DEFAULTS.timeouts) as Array<keyof Timeouts>) {
      if (t[k] !== undefined) timeouts[k] = checkMs(t[k], `options.timeouts.${k}`, 1);
    }
  }

  let rejectUnauthorized: boolean = SMTP_DEFAULTS.tls.rejectUnauthorized;
  let requireTLS: boolean = SMTP_DEFAULTS.tls.requireTLS;
  if (o.tls !== undefined) {
    const t = checkObject(o.tls, 'options.tls');
    checkKeys(t, TLS_KEYS, 'options.tls', 'listed');
    if (t.rejectUnauthorized !== undefined)
      rejectUnauthorized = checkBoolean(t.rejectUnauthorized, 'options.tls.rejectUnauthorized');
    if (t.requireTLS !== undefined) requireTLS = checkBoolean(t.requireTLS, 'options.tls.requireTLS');
  }

  let resolver: DnsResolver | undefined;
  if (o.resolver !== undefined) {
    const r = checkObject(o.resolver, 'options.resolver');
    for (const fn of ['resolveMx', 'resolve4', 'resolve6'] as const) {
      if (typeof r[fn] !== 'function') {
        throw new TypeError(`options.resolver.${fn} must be a function, got ${typeName(r[fn])}`);
      }
    }
    resolver = r as unknown as DnsResolver;
  }

  const mxCacheTtl =
    o.mxCacheTtl === undefined ? SMTP_DEFAULTS.mxCacheTtl : checkMs(o.mxCacheTtl, 'options.mxCacheTtl', 0);
  const hostFailureRetry =
    o.hostFailureRetry === undefined
      ? SMTP_DEFAULTS.hostFailureRetry
      : checkMs(o.hostFailureRetry, 'options.hostFailureRetry', 0);

  return {
    routes,
    route,
    bindings,
    defaultEhloName,
    port,
    timeouts,
    rejectUnauthorized,
    requireTLS,
    resolver,
    mxCacheTtl,
    hostFailureRetry,
  };
}
