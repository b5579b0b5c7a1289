// The SMTP transport: opens sessions to a domain's MX hosts (or a static route) and sends one
// message at a time over them. The SMTP protocol itself (greeting, EHLO/HELO fallback, STARTTLS,
// PIPELINING, SIZE, 8BITMIME, SMTPUTF8, dot-stuffing) is nodemailer's SMTPConnection, the
// best-maintained SMTP client for Node; this file adds what an MTA needs around it: MX order and
// fallback (mx_resolver.ts), per-binding source address and EHLO name, host-failure back-off,
// reply-to-outcome mapping, and sessions that survive a refused message (RSET) but not a broken
// connection.
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
//                     connection; past it the connection is reset (below)
//   dns       10 000  one DNS query (MX, A or AAAA)
//
// Giving up on a connection. A healthy idle session ends with QUIT: the server replies and
// closes, then so do we. Every other end is a give-up (a command, greeting or transaction
// timeout, a broken or refused session, close() during a transaction, QUIT unanswered, abort(),
// the transport closed), and a give-up resets the connection (TCP RST) instead of closing it:
// a graceful close queues its FIN behind whatever is still unsent, against a peer that stopped
// reading that is megabytes of DATA that never leave, and Node then reports the socket closed
// while the kernel keeps the connection (and the receiver keeps counting it) for minutes; a FIN
// sent to a peer that reads nothing leaves the connection open at the receiver (CLOSE_WAIT) just
// the same. A reset drops the connection on both sides at once. close() and abort() resolve (and
// open() rejects) only once the socket has closed, so the core releases a connection's lease
// only when the receiver can no longer count the connection.
// Other defaults: port 25, MX answers cached 60 s (mxCacheTtl), a failed address is tried last
// for 120 s (hostFailureRetry, Momentum's host_failure_retry), opportunistic STARTTLS without
// certificate checks (tls.rejectUnauthorized false, tls.requireTLS false) as MTAs do: an
// unverified encrypted session still beats plaintext, and most MX certificates would not verify.

import { isAscii } from 'node:buffer';
import { setMaxListeners } from 'node:events';
import net from 'node:net';
import { Resolver } from 'node:dns/promises';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { checkBindingName, checkDomainName, checkId, checkInt, checkObject, typeName } from '../validate.js';
import {
  MxLookupError, MxResolver, destinationKey, hostPort, normalizeHost, shuffled,
  type DnsResolver, type MxErrorCode,
} from './mx_resolver.js';
import type { DeliveryTarget, Outcome, OutboundMessage, Transport, TransportSession } from './transport.js';

export type { DnsResolver } from './mx_resolver.js';

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

export interface SmtpTransportOptions {
  /**
   * Static routes by domain, overriding MX lookup: hosts are tried in the order given. Used for
   * smart hosts, tests and the demo.
   */
  routes?: Record<string, SmtpRoute | SmtpRoute[]>;
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

type Timeouts = Required<SmtpTimeouts>;

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

// ---- errors ---------------------------------------------------------------------------------

/** One connection attempt that open() made, or a host it could not resolve. */
export interface SmtpAttempt {
  /** MX or route host name (or IP). */
  host: string;
  /** The address connected to; the host itself for a route by name (the OS resolves it). */
  address: string;
  port: number;
  /** ECONNREFUSED, ETIMEDOUT, EPROTOCOL (bad greeting), ETLS, ENOTFOUND (host did not resolve), ... */
  code: string;
  /** The SMTP reply code when the server answered (a 421 greeting, say). */
  responseCode?: number;
  message: string;
}

export type SmtpOpenErrorCode = MxErrorCode | 'ERR_SMTP_CONNECT' | 'ERR_CLOSED';

/**
 * Why open() failed. `permanent: true` (null MX, NXDOMAIN, no MX and no address) means the
 * domain can never receive mail, and the core bounces; otherwise `transient: true` and the core
 * retries later. `attempts` lists every host and address tried, in order.
 */
export class SmtpOpenError extends Error {
  readonly permanent: boolean;
  readonly transient: boolean;
  /** Distinct `host:port` strings tried, in order. */
  readonly hosts: readonly string[];
  constructor(
    readonly code: SmtpOpenErrorCode,
    readonly domain: string,
    readonly binding: string,
    readonly attempts: readonly SmtpAttempt[],
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SmtpOpenError';
    this.permanent = code === 'ERR_SMTP_NULL_MX' || code === 'ERR_SMTP_NXDOMAIN' || code === 'ERR_SMTP_NO_ADDRESS';
    this.transient = !this.permanent;
    this.hosts = [...new Set(attempts.map((a) => hostPort(a.host, a.port)))];
  }
}

/**
 * Why send() rejected: the session broke during the message (connection dropped, a reply timed
 * out, a protocol error), or send() was misused (`ERR_CLOSED`: the session is not usable;
 * `ERR_REENTRANT`: another send() is in flight). `code` is nodemailer's for a broken session
 * (ECONNECTION, ETIMEDOUT, ESOCKET, EPROTOCOL, ETLS). Always transient.
 */
export class SmtpSendError extends Error {
  readonly transient = true as const;
  readonly permanent = false as const;
  constructor(
    readonly code: string,
    readonly messageId: number,
    readonly host: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SmtpSendError';
  }
}

type SmtpError = SMTPConnection.SMTPError & { timeoutType?: string };

function asSmtpError(err: unknown): SmtpError {
  if (err instanceof Error) return err as SmtpError;
  return new Error(String(err)) as SmtpError;
}

function codedError(code: string, message: string): SmtpError {
  const e = new Error(message) as SmtpError;
  e.code = code;
  return e;
}

// ---- option validation ----------------------------------------------------------------------

const OPTION_KEYS = new Set([
  'routes', 'bindings', 'defaultEhloName', 'port', 'timeouts', 'tls', 'resolver', 'mxCacheTtl', 'hostFailureRetry',
]);
const BINDING_KEYS = new Set(['localAddress', 'ehloName']);
const ROUTE_KEYS = new Set(['host', 'port']);
const TLS_KEYS = new Set(['rejectUnauthorized', 'requireTLS']);
const MAX_TIMER = 2 ** 31 - 1; // setTimeout's limit

function checkKeys(obj: Record<string, unknown>, allowed: Set<string>, name: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.has(k)) {
      throw new RangeError(`${name}.${k} is not a known option (known: ${[...allowed].join(', ')})`);
    }
  }
}

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
  checkKeys(o, ROUTE_KEYS, name);
  return { host: checkHost(o.host, `${name}.host`), port: checkInt(o.port, `${name}.port`, 1, 65535) };
}

interface ResolvedRoute {
  hosts: SmtpRoute[];
  key: string;
}

interface ResolvedBinding {
  localAddress: string | undefined;
  ehloName: string | undefined;
}

interface Settings {
  routes: Map<string, ResolvedRoute>;
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

function parseOptions(options: unknown): Settings {
  const o = checkObject(options, 'options');
  checkKeys(o, OPTION_KEYS, 'options');

  const port = o.port === undefined ? SMTP_DEFAULTS.port : checkInt(o.port, 'options.port', 1, 65535);

  const routes = new Map<string, ResolvedRoute>();
  if (o.routes !== undefined) {
    const r = checkObject(o.routes, 'options.routes');
    for (const [domainKey, value] of Object.entries(r)) {
      const name = `options.routes[${JSON.stringify(domainKey)}]`;
      const domain = checkDomainName(domainKey, `${name} (domain)`);
      let hosts: SmtpRoute[];
      if (Array.isArray(value)) {
        if (value.length === 0) throw new RangeError(`${name} must list at least one host`);
        hosts = value.map((h, i) => checkRoute(h, `${name}[${i}]`));
      } else {
        hosts = [checkRoute(value, name)];
      }
      if (routes.has(domain)) throw new RangeError(`${name} duplicates the route of ${domain}`);
      routes.set(domain, { hosts, key: destinationKey(hosts) });
    }
  }

  const defaultEhloName = o.defaultEhloName === undefined ? undefined : checkEhloName(o.defaultEhloName, 'options.defaultEhloName');

  const bindings = new Map<string, ResolvedBinding>();
  if (o.bindings !== undefined) {
    const b = checkObject(o.bindings, 'options.bindings');
    for (const [bindingKey, value] of Object.entries(b)) {
      const name = `options.bindings[${JSON.stringify(bindingKey)}]`;
      checkBindingName(bindingKey, `${name} (binding name)`);
      const v = checkObject(value, name);
      checkKeys(v, BINDING_KEYS, name);
      let localAddress: string | undefined;
      if (v.localAddress !== undefined) {
        if (typeof v.localAddress !== 'string') {
          throw new TypeError(`${name}.localAddress must be a string, got ${typeName(v.localAddress)}`);
        }
        if (!net.isIP(v.localAddress)) {
          throw new RangeError(`${name}.localAddress must be an IPv4 or IPv6 address, got ${JSON.stringify(v.localAddress)}`);
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
    checkKeys(t, new Set(Object.keys(SMTP_DEFAULTS.timeouts)), 'options.timeouts');
    for (const k of Object.keys(SMTP_DEFAULTS.timeouts) as Array<keyof Timeouts>) {
      if (t[k] !== undefined) timeouts[k] = checkMs(t[k], `options.timeouts.${k}`, 1);
    }
  }

  let rejectUnauthorized: boolean = SMTP_DEFAULTS.tls.rejectUnauthorized;
  let requireTLS: boolean = SMTP_DEFAULTS.tls.requireTLS;
  if (o.tls !== undefined) {
    const t = checkObject(o.tls, 'options.tls');
    checkKeys(t, TLS_KEYS, 'options.tls');
    if (t.rejectUnauthorized !== undefined) rejectUnauthorized = checkBoolean(t.rejectUnauthorized, 'options.tls.rejectUnauthorized');
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

  const mxCacheTtl = o.mxCacheTtl === undefined ? SMTP_DEFAULTS.mxCacheTtl : checkMs(o.mxCacheTtl, 'options.mxCacheTtl', 0);
  const hostFailureRetry = o.hostFailureRetry === undefined
    ? SMTP_DEFAULTS.hostFailureRetry
    : checkMs(o.hostFailureRetry, 'options.hostFailureRetry', 0);

  return {
    routes, bindings, defaultEhloName, port, timeouts, rejectUnauthorized, requireTLS, resolver, mxCacheTtl, hostFailureRetry,
  };
}

// ---- the transport --------------------------------------------------------------------------

interface Candidate {
  host: string;
  address: string;
  port: number;
}

const MAX_FAILED_HOSTS = 4096;

export class SmtpTransport implements Transport {
  readonly #s: Settings;
  readonly #mx: MxResolver;
  readonly #ownResolver: Resolver | undefined;
  /** `address:port` -> time until which it is tried after the others (host_failure_retry). */
  readonly #failedUntil = new Map<string, number>();
  readonly #sessions = new Set<SmtpSession>();
  /** Every connection from TCP connect until its socket has closed (sessions and handshakes). */
  readonly #links = new Set<Link>();
  // One signal shared by every open() in flight: each attempt adds (and later removes) a listener,
  // so the default cap of 10 would warn under ordinary concurrency.
  readonly #abort = (() => { const c = new AbortController(); setMaxListeners(0, c.signal); return c; })();
  #closed = false;

  constructor(options: SmtpTransportOptions = {}) {
    this.#s = parseOptions(options);
    let resolver = this.#s.resolver;
    if (!resolver) {
      this.#ownResolver = new Resolver();
      resolver = this.#ownResolver;
    }
    this.#mx = new MxResolver(resolver, this.#s.mxCacheTtl, this.#s.port, this.#s.timeouts.dns);
  }

  /** The destination key of a domain when known: always for a routed domain, else from the MX cache. */
  mxKey(domain: string): string | undefined {
    if (typeof domain !== 'string') throw new TypeError(`domain must be a string, got ${typeName(domain)}`);
    const d = normalizeHost(domain);
    const literal = addressLiteral(d);
    if (literal) return destinationKey([{ host: literal, port: this.#s.port }]);
    return this.#s.routes.get(d)?.key ?? this.#mx.cachedKey(d);
  }

  async open(target: DeliveryTarget): Promise<TransportSession> {
    checkObject(target, 'target');
    const domain = checkDomainName(target.domain, 'target.domain');
    const binding = checkBindingName(target.binding, 'target.binding');
    if (this.#closed) throw new SmtpOpenError('ERR_CLOSED', domain, binding, [], `smtp open ${domain}: the transport is closed`);
    const source = this.#s.bindings.get(binding) ?? { localAddress: undefined, ehloName: this.#s.defaultEhloName };

    let plan: { key: string; candidates: Candidate[]; attempts: SmtpAttempt[] };
    try {
      plan = await this.#plan(domain, source.localAddress);
    } catch (err) {
      if (this.#closed) {
        throw new SmtpOpenError('ERR_CLOSED', domain, binding, [], `smtp open ${domain}: the transport was closed`, { cause: err });
      }
      if (err instanceof MxLookupError) {
        throw new SmtpOpenError(err.code, domain, binding, [], `smtp open ${domain}: ${err.message}`, { cause: err });
      }
      throw err;
    }

    const attempts = plan.attempts;
    for (const c of plan.candidates) {
      if (this.#closed) break;
      let opened: { conn: SMTPConnection; link: Link } | undefined;
      try {
        opened = await this.#connect(c, source, false);
      } catch (err) {
        const e = asSmtpError(err);
        attempts.push(attemptOf(c, e));
        // Opportunistic TLS: a server that offers STARTTLS but cannot finish the handshake
        // would otherwise be unreachable; retry the same address in plaintext once.
        if (!this.#s.requireTLS && !this.#closed && isTlsFailure(e)) {
          try {
            opened = await this.#connect(c, source, true);
          } catch (err2) {
            attempts.push(attemptOf(c, asSmtpError(err2)));
          }
        }
      }
      if (!opened) {
        this.#markFailed(c);
        continue;
      }
      this.#failedUntil.delete(hostPort(c.address, c.port));
      const session = new SmtpSession(opened.conn, opened.link, {
        mxKey: plan.key, domain, binding, host: c.host, address: c.address, port: c.port, timeouts: this.#s.timeouts,
        onGone: (s) => this.#sessions.delete(s),
      });
      this.#sessions.add(session);
      if (this.#closed) {
        await session.close();
        break;
      }
      return session;
    }
    if (this.#closed) {
      throw new SmtpOpenError('ERR_CLOSED', domain, binding, attempts, `smtp open ${domain}: the transport was closed`);
    }
    const tried = attempts
      .map((a) => `${a.address && a.address !== a.host ? `${a.host}[${a.address}]` : a.host}:${a.port} ${a.responseCode ?? a.code}`)
      .join('; ');
    throw new SmtpOpenError(
      'ERR_SMTP_CONNECT', domain, binding, attempts,
      `smtp open ${domain} (binding ${binding}): no host accepted a session; tried ${tried}`,
    );
  }

  /** Closes every session still open (QUIT when idle, a reset when busy or unresponsive), stops
   *  open() attempts in flight (resetting their connections), drops the caches; resolves once every
   *  socket has closed. Never rejects. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    await Promise.all([...this.#sessions].map((s) => s.close()));
    await Promise.all([...this.#links].map((l) => l.abort()));
    this.#mx.clear();
    this.#failedUntil.clear();
    this.#ownResolver?.cancel();
  }

  /** Hosts to try, in order, with their addresses; hosts that did not resolve go into `attempts`. */
  async #plan(domain: string, localAddress: string | undefined): Promise<{ key: string; candidates: Candidate[]; attempts: SmtpAttempt[] }> {
    const attempts: SmtpAttempt[] = [];
    let candidates: Candidate[] = [];
    let key: string;
    const route = this.#s.routes.get(domain);
    const literal = addressLiteral(domain);
    if (route) {
      key = route.key;
      candidates = route.hosts.map((h) => ({ host: h.host, address: h.host, port: h.port }));
    } else if (literal) {
      // user@[192.0.2.1]: the address is the host, no DNS (RFC 5321 section 4.1.3).
      key = destinationKey([{ host: literal, port: this.#s.port }]);
      candidates = [{ host: literal, address: literal, port: this.#s.port }];
    } else {
      const set = await this.#mx.lookup(domain);
      key = set.key;
      const order = set.groups.flatMap((g) => shuffled(g));
      const resolved = await Promise.all(order.map((h) => this.#mx.addresses(h)));
      const family = localAddress === undefined ? 0 : net.isIP(localAddress);
      order.forEach((host, i) => {
        const { addresses, error } = resolved[i];
        // A socket bound to an address of one family cannot reach the other.
        const usable = family === 0 ? addresses : addresses.filter((a) => net.isIP(a) === family);
        if (usable.length === 0) {
          const code = error?.code ?? 'EAFNOSUPPORT';
          const message = error?.message ?? `${host} has no IPv${family} address for source ${localAddress}`;
          attempts.push({ host, address: '', port: this.#s.port, code, message });
          return;
        }
        for (const address of usable) candidates.push({ host, address, port: this.#s.port });
      });
    }
    // host_failure_retry: an address that failed recently goes after the others instead of
    // costing a connect timeout on every open. It is still tried last, so a domain whose every
    // host failed is not given up without an attempt.
    const now = Date.now();
    const fresh: Candidate[] = [];
    const failed: Candidate[] = [];
    const seen = new Set<string>();
    for (const c of candidates) {
      const k = hostPort(c.address, c.port);
      if (seen.has(k)) continue; // two MX names for one address: one attempt is enough
      seen.add(k);
      const until = this.#failedUntil.get(k);
      if (until !== undefined && until <= now) this.#failedUntil.delete(k);
      (until !== undefined && until > now ? failed : fresh).push(c);
    }
    return { key, candidates: fresh.concat(failed), attempts };
  }

  #markFailed(c: Candidate): void {
    if (this.#s.hostFailureRetry === 0) return;
    if (this.#failedUntil.size >= MAX_FAILED_HOSTS) {
      const now = Date.now();
      for (const [k, until] of this.#failedUntil) if (until <= now) this.#failedUntil.delete(k);
      if (this.#failedUntil.size >= MAX_FAILED_HOSTS) this.#failedUntil.clear();
    }
    this.#failedUntil.set(hostPort(c.address, c.port), Date.now() + this.#s.hostFailureRetry);
  }

  /** TCP connect, then hand the socket to nodemailer for the greeting, EHLO and STARTTLS. On
   *  failure the connection is reset, and the promise rejects once its socket has closed. */
  async #connect(c: Candidate, source: ResolvedBinding, ignoreTLS: boolean): Promise<{ conn: SMTPConnection; link: Link }> {
    const t = this.#s.timeouts;
    const signal = this.#abort.signal;
    // Our own connect, so that `connect` and `greeting` are separate budgets: nodemailer's
    // connectionTimeout would also cut the greeting short.
    const socket = await connectTcp(c.address, c.port, source.localAddress, t.connect, signal);
    const conn = new SMTPConnection({
      host: c.host, // SNI and nodemailer's logs; the socket is already connected
      port: c.port,
      connection: socket,
      name: source.ehloName,
      greetingTimeout: t.greeting,
      connectionTimeout: t.greeting + 3 * t.command,
      socketTimeout: t.command,
      // nodemailer destroys a socket that ended gracefully (after QUIT) when this runs out; our
      // own timer (timeouts.quit from QUIT) resets it first, see SmtpSession.#quit.
      socketCloseTimeout: Math.min(MAX_TIMER, 2 * t.quit + 1000),
      requireTLS: this.#s.requireTLS,
      opportunisticTLS: !this.#s.requireTLS,
      ignoreTLS: ignoreTLS && !this.#s.requireTLS,
      tls: { rejectUnauthorized: this.#s.rejectUnauthorized },
      logger: false,
    });
    // nodemailer emits 'error' for every failure; without a listener that would throw. The
    // session reads the outcome from callbacks and conn.destroyed instead.
    conn.on('error', ignore);
    const link = new Link(conn, socket, t.quit);
    this.#links.add(link);
    void link.gone.then(() => this.#links.delete(link));
    try {
      await new Promise<void>((resolve, reject) => {
        let done = false;
        const finish = (err?: Error) => {
          if (done) return;
          done = true;
          conn.off('error', finish);
          conn.off('end', onEnd);
          signal.removeEventListener('abort', onAbort);
          if (err) reject(err);
          else resolve();
        };
        // 'end' comes before the error callback on some paths; let the error win.
        const onEnd = () => setImmediate(() => finish(codedError('ECONNECTION', 'connection closed during session setup')));
        const onAbort = () => {
          conn.close(); // a reset (Link)
          finish(codedError('ERR_CLOSED', 'the transport was closed'));
        };
        conn.once('error', finish);
        conn.once('end', onEnd);
        signal.addEventListener('abort', onAbort, { once: true });
        conn.connect((err) => finish(err ?? undefined));
      });
    } catch (err) {
      // A failed handshake surfaces as a socket error (ESOCKET, the certificate problem in
      // originalCode); file it under ETLS so open() can retry in plaintext.
      const e = asSmtpError(err);
      if (conn.upgrading && e.code !== 'ETLS') {
        if (e.code && !e.originalCode) e.originalCode = e.code;
        e.code = 'ETLS';
      }
      // Given up on during setup (a greeting or EHLO that never came, a refusal, a failed TLS
      // handshake, the transport closed): reset, not a graceful close, which a peer that reads
      // nothing would never see. The lease is released when open() fails: the socket must be
      // really closed by then, or the receiver still counts it while the core grants the next
      // connection (the soak saw a source address one over its cap this way, after a greeting
      // that never came).
      await link.abort();
      throw e;
    }
    return { conn, link };
  }
}

function ignore(): void {}

/** The IP inside a domain literal such as [192.0.2.1] or [IPv6:2001:db8::1], else undefined. */
function addressLiteral(domain: string): string | undefined {
  if (!domain.startsWith('[') || !domain.endsWith(']')) return undefined;
  const inner = domain.slice(1, -1).replace(/^ipv6:/i, '');
  return net.isIP(inner) ? inner : undefined;
}

function isTlsFailure(e: SmtpError): boolean {
  return e.code === 'ETLS' || e.timeoutType === 'UPGRADE_TIMEOUT';
}

function attemptOf(c: Candidate, e: SmtpError): SmtpAttempt {
  const a: SmtpAttempt = { host: c.host, address: c.address, port: c.port, code: e.code ?? 'ERROR', message: e.message };
  if (typeof e.responseCode === 'number') a.responseCode = e.responseCode;
  // nodemailer files ECONNREFUSED under ESOCKET; the system code says more.
  if (e.originalCode && (e.code === 'ESOCKET' || e.code === 'ECONNECTION')) a.code = e.originalCode;
  return a;
}

function connectTcp(
  host: string, port: number, localAddress: string | undefined, timeout: number, signal: AbortSignal,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(codedError('ERR_CLOSED', 'the transport was closed'));
      return;
    }
    const socket = net.connect({ host, port, localAddress });
    // Kept for the socket's whole life: an error between our listeners and nodemailer's must
    // not be thrown as unhandled. nodemailer still sees every error through its own listener.
    socket.on('error', ignore);
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off('connect', onConnect);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (err: Error) => {
      cleanup();
      socket.destroy();
      // Settle once the socket is closed (destroy() closes it on a later tick), for the reason
      // in #connect: a connect that timed out may have been accepted by the server meanwhile.
      void socketClosed(socket, timeout).then(() => reject(err));
    };
    const onError = (err: Error) => fail(err);
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    const onAbort = () => fail(codedError('ERR_CLOSED', 'the transport was closed'));
    const timer = setTimeout(
      () => fail(codedError('ETIMEDOUT', `connect to ${hostPort(host, port)} timed out after ${timeout} ms`)),
      timeout,
    );
    socket.once('connect', onConnect);
    socket.on('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

// ---- the connection under a session ---------------------------------------------------------

type SocketInternals = net.Socket & { _writableState?: { finalCalled?: boolean } };

/** end() was called and its shutdown (our FIN) has not completed: libuv refuses to reset the
 *  socket then (and Node would lose the handle trying), so a reset has to wait for 'finish'. */
function shutdownPending(socket: net.Socket): boolean {
  return !socket.destroyed && (socket as SocketInternals)._writableState?.finalCalled === true && !socket.writableFinished;
}

/** Resolves true once `p` settles, false after ms. Never rejects. */
function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.then(() => true, () => true),
    new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The TCP connection under one SMTPConnection, and how it ends (see "Giving up on a connection"
 * at the top of this file). nodemailer's close() ends the socket gracefully and destroys it
 * after socketCloseTimeout; it runs on every failure nodemailer detects itself (a reply or
 * greeting timeout, a protocol error, a 421). So close() is replaced on this one instance: every
 * close, nodemailer's own or ours, resets the connection first, except the close nodemailer runs
 * on the server's reply to QUIT (after quitting()), which stays graceful.
 */
class Link {
  /** Resolves once the TCP socket has closed (its descriptor released). */
  readonly gone: Promise<void>;
  #quitting = false;
  #closed = false;
  #resetPending = false;
  #aborting: Promise<void> | undefined;

  constructor(readonly conn: SMTPConnection, readonly raw: net.Socket, private readonly graceMs: number) {
    this.gone = new Promise<void>((resolve) => {
      const done = () => {
        this.#closed = true;
        resolve();
      };
      if ((raw as net.Socket & { closed?: boolean }).closed === true) done();
      else raw.once('close', done);
    });
    const close = SMTPConnection.prototype.close;
    // nodemailer calls this.close() internally, and queues this.close as the action for the reply
    // to QUIT (called with that reply): an own property takes the place of the method for both.
    (conn as unknown as { close: (reply?: unknown) => void }).close = (reply?: unknown) => {
      const graceful = this.#quitting && typeof reply === 'string';
      if (!graceful) this.#resetRaw();
      // nodemailer's own teardown. After the reset it finds the raw socket destroyed and only
      // forgets it; a TLS socket over it is still open in JS: nodemailer detaches its listeners
      // from it (so its 'close' is not reported as a failure of its own) before it is destroyed.
      close.call(conn);
      if (!graceful) this.#destroyOuter();
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** QUIT is going out: the close after its reply may end the connection gracefully. */
  quitting(): void {
    this.#quitting = true;
  }

  /** Resets the connection now, and tears nodemailer down (a send in flight fails). */
  reset(): void {
    this.conn.close();
  }

  /** SO_LINGER 0 and close: the kernel discards what is unsent and sends RST, and the peer drops
   *  the connection. After STARTTLS the TLS socket runs on the same TCP handle: resetting the raw
   *  socket resets both. */
  #resetRaw(): void {
    const raw = this.raw;
    if (raw.destroyed) return;
    const outer = this.#outer();
    for (const s of outer ? [raw, outer] : [raw]) {
      if (!shutdownPending(s)) continue;
      // A FIN is being queued (a graceful end that just started, or the peer's FIN answered):
      // reset once that is done. If it never is (a FIN behind a full send buffer), abort() ends
      // the socket after its grace period.
      if (!this.#resetPending) {
        this.#resetPending = true;
        s.once('finish', () => {
          this.#resetPending = false;
          this.#resetRaw();
          this.#destroyOuter();
        });
      }
      return;
    }
    try {
      raw.resetAndDestroy();
    } catch {
      raw.destroy(); // not a TCP handle (never the case for connectTcp's sockets)
    }
  }

  #destroyOuter(): void {
    const outer = this.#outer();
    if (!outer || outer.destroyed || !this.raw.destroyed) return;
    outer.on('error', ignore);
    outer.destroy();
  }

  /** Gives up on the connection: reset(), resolved once the socket has closed. Idempotent; never
   *  rejects. */
  abort(): Promise<void> {
    this.#aborting ??= this.#abort();
    return this.#aborting;
  }

  async #abort(): Promise<void> {
    try {
      this.reset();
    } catch {
      // nodemailer's teardown threw: the reset itself comes first
    }
    if (await within(this.gone, this.graceMs)) return;
    // The reset is still waiting for a shutdown that does not complete: close the descriptor. (A
    // socket whose 'close' never comes at all is beyond repair: never wait for it for ever.)
    this.raw.destroy();
    this.#outer()?.destroy();
    await within(this.gone, this.graceMs);
  }

  /** The TLS socket nodemailer put over the raw one after STARTTLS, if any. */
  #outer(): net.Socket | undefined {
    const s = (this.conn as unknown as { _socket?: net.Socket | false })._socket;
    return s && s !== this.raw ? s : undefined;
  }
}

// ---- the session ----------------------------------------------------------------------------

interface SessionInit {
  mxKey: string;
  domain: string;
  binding: string;
  host: string;
  address: string;
  port: number;
  timeouts: Timeouts;
  onGone: (s: SmtpSession) => void;
}

type Transaction = { info: SMTPConnection.SentMessageInfo } | { err: SmtpError };

/**
 * One SMTP session. Outcome rules (the core treats a message as one unit, one outcome for all
 * its recipients):
 *
 * - The server accepted the message after the final dot: `delivered`, with its reply.
 * - Every recipient refused at RCPT: `transient` if any refusal was 4xx (that recipient may
 *   accept later), else `permanent`. MAIL FROM, DATA or final-dot refusals: 4xx `transient`,
 *   5xx `permanent`, except 503 (bad sequence of commands: our session's state, not the
 *   message, was refused), which is `transient` and retires the session.
 * - Some recipients accepted, some refused: `delivered`, with the refused recipients and their
 *   replies appended to `response`. Why: the message then goes to the accepted recipients
 *   (nodemailer goes on to DATA once at least one RCPT succeeded, and with PIPELINING DATA is
 *   already on the wire), so reporting `transient` would make the core resend it and duplicate it to every
 *   recipient that already has it; reporting `permanent` would bounce a delivered message. The
 *   refused recipients are not retried: that is the price of one outcome per message, and the
 *   response text is where they are recorded.
 *
 * After a refusal the session sends RSET and stays usable; if RSET fails it is retired. A
 * dropped connection, a reply timeout or a protocol error rejects send() and leaves the
 * session unusable, its connection reset (see "Giving up on a connection" at the top).
 */
export class SmtpSession implements TransportSession {
  readonly mxKey: string;
  readonly domain: string;
  readonly binding: string;
  /** The MX or route host this session is connected to. */
  readonly host: string;
  readonly address: string;
  readonly port: number;
  readonly #conn: SMTPConnection;
  readonly #link: Link;
  readonly #t: Timeouts;
  readonly #onGone: (s: SmtpSession) => void;
  #closed = false;
  #broken = false;
  #busy = false;
  #idleTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  constructor(conn: SMTPConnection, link: Link, init: SessionInit) {
    this.#conn = conn;
    this.#link = link;
    this.mxKey = init.mxKey;
    this.domain = init.domain;
    this.binding = init.binding;
    this.host = init.host;
    this.address = init.address;
    this.port = init.port;
    this.#t = init.timeouts;
    this.#onGone = init.onGone;
    // The peer may end an idle session (timeout, 421): the session is then simply gone. It leaves
    // the transport's books once its socket has closed, so that transport.close() waits for it.
    conn.once('end', () => this.#stopIdle());
    void link.gone.then(() => {
      this.#stopIdle();
      this.#onGone(this);
    });
    this.#startIdle();
  }

  get usable(): boolean {
    return !this.#closed && !this.#broken && !this.#conn.destroyed;
  }

  /** True when the session runs over TLS (STARTTLS succeeded). */
  get secure(): boolean {
    return this.#conn.secure;
  }

  async send(message: OutboundMessage): Promise<Outcome> {
    const msg = checkMessage(message);
    if (this.#busy) {
      throw new SmtpSendError('ERR_REENTRANT', msg.id, this.host, `smtp send #${msg.id}: another message is in flight on this session`);
    }
    if (!this.usable) {
      throw new SmtpSendError('ERR_CLOSED', msg.id, this.host, `smtp send #${msg.id}: the session to ${this.host} is not usable`);
    }
    const invalid = invalidEnvelope(msg.envelope);
    if (invalid) return { kind: 'permanent', response: invalid };

    this.#busy = true;
    this.#stopIdle();
    this.#setSocketTimeout(this.#t.command);
    try {
      const r = await this.#transact(msg);
      if ('info' in r) return deliveredOutcome(r.info);
      const outcome = replyOutcome(r.err);
      if (!outcome) {
        // Broken mid-transaction: give up on the connection (a reset, see Link).
        this.#broken = true;
        void this.abort();
        const e = r.err;
        throw new SmtpSendError(
          e.code ?? 'ECONNECTION', msg.id, this.host,
          `smtp send #${msg.id} to ${hostPort(this.host, this.port)}: ${e.message}`, { cause: e },
        );
      }
      if (r.err.responseCode === 503) this.#broken = true;
      else if (!this.#conn.destroyed && !(await this.#reset())) this.#broken = true;
      return outcome;
    } finally {
      this.#busy = false;
      if (this.usable) this.#startIdle();
      else if (!this.#conn.destroyed) void this.close();
    }
  }

  /**
   * Ends the session. Idle and healthy: QUIT, then the server closes the connection and we close
   * ours; if that has not happened within timeouts.quit (no reply, or no close after it), the
   * connection is reset. Busy (a transaction in flight, which then rejects), broken or already
   * closing: abort(). Resolves once the socket has closed. Never rejects.
   */
  close(): Promise<void> {
    this.#closing ??= this.#quit();
    return this.#closing;
  }

  /**
   * Gives up on the session: resets the connection (whatever is unsent is discarded, the server
   * drops the connection at once) and resolves once the socket has closed. A send() in flight
   * rejects. Idempotent, also during close(). Never rejects.
   */
  abort(): Promise<void> {
    this.#closed = true;
    this.#stopIdle();
    const aborting = this.#link.abort();
    this.#closing ??= aborting;
    return aborting;
  }

  async #quit(): Promise<void> {
    this.#closed = true;
    this.#stopIdle();
    const conn = this.#conn;
    const link = this.#link;
    if (this.#busy || conn.destroyed || link.closed) {
      // No QUIT in the middle of a transaction, nor on a connection nodemailer already gave up.
      await link.abort();
      return;
    }
    // nodemailer's socket timer fires if QUIT gets no reply in time: that close is a reset too.
    this.#setSocketTimeout(this.#t.quit);
    link.quitting();
    try {
      conn.quit();
    } catch {
      await link.abort();
      return;
    }
    // nodemailer ends the socket on the reply to QUIT; the socket closes when the server closes
    // its side. Past timeouts.quit from QUIT, reset: the core releases the lease when close()
    // resolves, and the next connection to the same server may be granted at once, so the
    // connection must be gone at the receiver by then (the soak test saw one over the limit).
    if (!(await within(link.gone, this.#t.quit))) await link.abort();
  }

  #transact(msg: OutboundMessage): Promise<Transaction> {
    const conn = this.#conn;
    return new Promise<Transaction>((resolve) => {
      let settled = false;
      const finish = (r: Transaction) => {
        if (settled) return;
        settled = true;
        clearTimeout(cap);
        conn.off('end', onEnd);
        resolve(r);
      };
      // nodemailer fails the send in flight when the connection breaks, but close() by us (or
      // an unexpected path) ends it silently: this makes sure send() settles anyway.
      const onEnd = () => setImmediate(() => finish({ err: codedError('ECONNECTION', 'the connection closed during the transaction') }));
      const cap = setTimeout(() => {
        const err = codedError('ETIMEDOUT', `the transaction took longer than ${this.#t.message} ms`);
        void this.abort(); // a reset: the peer may have stopped reading megabytes ago
        finish({ err });
      }, this.#t.message);
      conn.once('end', onEnd);
      const body = msg.body;
      conn.send(
        {
          from: msg.envelope.from,
          to: msg.envelope.to,
          size: body.length,
          use8BitMime: has8bit(body),
        },
        body,
        (err, info) => finish(err ? { err: asSmtpError(err) } : { info }),
      );
    });
  }

  #reset(): Promise<boolean> {
    const conn = this.#conn;
    return new Promise<boolean>((resolve) => {
      let done = false;
      const finish = (ok: boolean) => {
        if (done) return;
        done = true;
        conn.off('end', onEnd);
        resolve(ok);
      };
      const onEnd = () => finish(false);
      conn.once('end', onEnd);
      try {
        conn.reset((err) => finish(!err));
      } catch {
        finish(false);
      }
    });
  }

  #startIdle(): void {
    this.#stopIdle();
    // nodemailer's socket timer is the per-command timeout; while idle our own timer decides.
    this.#setSocketTimeout(0);
    this.#idleTimer = setTimeout(() => void this.close(), this.#t.idle);
    this.#idleTimer.unref();
  }

  #stopIdle(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  #setSocketTimeout(ms: number): void {
    const s = this.#conn._socket;
    if (s && !s.destroyed) s.setTimeout(ms);
  }
}

// ---- message checks and reply mapping -------------------------------------------------------

function checkMessage(m: unknown): OutboundMessage {
  const o = checkObject(m, 'message');
  const id = checkId(o.id, 'message.id');
  if (typeof o.domain !== 'string') throw new TypeError(`message.domain must be a string, got ${typeName(o.domain)}`);
  const env = checkObject(o.envelope, 'message.envelope');
  if (typeof env.from !== 'string') throw new TypeError(`message.envelope.from must be a string, got ${typeName(env.from)}`);
  if (!Array.isArray(env.to)) throw new TypeError(`message.envelope.to must be an array, got ${typeName(env.to)}`);
  env.to.forEach((r, i) => {
    if (typeof r !== 'string') throw new TypeError(`message.envelope.to[${i}] must be a string, got ${typeName(r)}`);
  });
  if (!(o.body instanceof Uint8Array)) throw new TypeError(`message.body must be a Buffer, got ${typeName(o.body)}`);
  const body = Buffer.isBuffer(o.body) ? o.body : Buffer.from(o.body.buffer, o.body.byteOffset, o.body.byteLength);
  return { id, domain: o.domain, envelope: { from: env.from, to: env.to as string[] }, body };
}

/** A reason the envelope can never be sent (so a permanent outcome), or undefined. */
function invalidEnvelope(env: { from: string; to: string[] }): string | undefined {
  // CR/LF would inject commands; angle brackets would break the path syntax.
  const bad = /[\r\n<>\0]/;
  if (bad.test(env.from)) return `invalid sender address ${JSON.stringify(env.from)}`;
  if (env.to.length === 0) return 'the message has no recipients';
  for (const r of env.to) {
    if (r.trim() === '' || bad.test(r)) return `invalid recipient address ${JSON.stringify(r)}`;
  }
  return undefined;
}

function has8bit(body: Buffer): boolean {
  return !isAscii(body); // native scan, not a JS loop over every byte of every message
}

function refusedList(errors: readonly SMTPConnection.SMTPError[]): string {
  return errors.map((e) => `<${e.recipient ?? '?'}> ${e.response ?? e.message}`).join('; ');
}

function deliveredOutcome(info: SMTPConnection.SentMessageInfo): Outcome {
  const rejected = info.rejectedErrors ?? [];
  if (info.rejected.length === 0) return { kind: 'delivered', response: info.response };
  const total = info.accepted.length + info.rejected.length;
  const list = rejected.length > 0 ? refusedList(rejected) : info.rejected.map((r) => `<${r}>`).join('; ');
  return {
    kind: 'delivered',
    response: `${info.response} (accepted for ${info.accepted.length} of ${total} recipients; refused: ${list})`,
  };
}

function kindOf(code: number): 'transient' | 'permanent' {
  return code >= 500 && code <= 599 && code !== 503 ? 'permanent' : 'transient';
}

/** The outcome of an error that carries the server's verdict on the message, or undefined when
 *  the session broke (no reply to judge by). */
function replyOutcome(err: SmtpError): Outcome | undefined {
  if (err.code !== 'EENVELOPE' && err.code !== 'EMESSAGE') return undefined;
  const rc = err.responseCode;
  if (typeof rc === 'number') {
    const refused = err.rejectedErrors ?? [];
    if (err.command === 'RCPT TO' && refused.length > 0) {
      // Every recipient refused. One 4xx among them makes the message worth retrying.
      const deferred = refused.find((e) => typeof e.responseCode === 'number' && kindOf(e.responseCode) === 'transient');
      const chosen = deferred ?? refused[0];
      const code = chosen.responseCode ?? rc;
      const response = refused.length === 1
        ? (chosen.response ?? err.response ?? err.message)
        : `all ${refused.length} recipients refused: ${refusedList(refused)}`;
      return { kind: deferred ? 'transient' : kindOf(code), code, response };
    }
    return { kind: kindOf(rc), code: rc, response: err.response ?? err.message };
  }
  // No reply, but nothing was sent either: nodemailer refused the message itself. The only
  // such case left after invalidEnvelope() is a message larger than the server's SIZE limit.
  if (err.code === 'EMESSAGE' || err.command === 'API') {
    return { kind: 'permanent', code: err.code === 'EMESSAGE' ? 552 : undefined, response: err.message };
  }
  return undefined;
}

/** Resolves once the socket has closed (its fd released, FIN or RST sent); destroys it after ms. */
function socketClosed(socket: net.Socket | undefined, ms: number): Promise<void> {
  if (!socket || (socket as net.Socket & { closed?: boolean }).closed === true) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve();
    }, ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
