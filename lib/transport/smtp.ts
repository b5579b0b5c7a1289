// The SMTP transport: opens sessions to a domain's MX hosts (or a static route) and sends one
// message at a time over them. The SMTP protocol itself (greeting, EHLO/HELO fallback, STARTTLS,
// PIPELINING, SIZE, 8BITMIME, SMTPUTF8, dot-stuffing) is nodemailer's SMTPConnection, the
// best-maintained SMTP client for Node; these files add what an MTA needs around it: MX order and
// fallback (mx_resolver.ts), per-binding source address and EHLO name, host-failure back-off,
// reply-to-outcome mapping, and sessions that survive a refused message (RSET) but not a broken
// connection.
//
// The files:
//   smtp.ts          SmtpTransport: open() (the plan of hosts to try, connect, session setup), close()
//   smtp_options.ts  the options, their defaults (timeouts among them) and their validation
//   smtp_errors.ts   SmtpOpenError, SmtpSendError
//   smtp_link.ts     the TCP connection under a session, and how it ends (a reset when given up on)
//   smtp_session.ts  SmtpSession: send(), close(), abort()
//   smtp_outcome.ts  message checks and the mapping of replies to outcomes
// Every name the transport exports is exported from this file.

import { setMaxListeners } from 'node:events';
import net from 'node:net';
import { Resolver } from 'node:dns/promises';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { checkBindingName, checkDomainName, checkObject, typeName } from '../validate.js';
import { MxLookupError, MxResolver, destinationKey, hostPort, normalizeHost, shuffled } from './mx_resolver.js';
import { SmtpOpenError, asSmtpError, codedError, type SmtpAttempt, type SmtpError } from './smtp_errors.js';
import { Link, connectTcp, ignore } from './smtp_link.js';
import {
  MAX_TIMER,
  parseOptions,
  type ResolvedBinding,
  type ResolvedRoute,
  resolveRoute,
  type RouteAnswer,
  type Settings,
  type SmtpTransportOptions,
} from './smtp_options.js';
import { SmtpSession } from './smtp_session.js';
import type { DeliveryTarget, Transport, TransportSession } from './transport.js';

export type { DnsResolver } from './mx_resolver.js';
export type {
  RouteAnswer,
  SmtpBinding,
  SmtpRoute,
  SmtpTimeouts,
  SmtpTlsOptions,
  SmtpTransportOptions,
} from './smtp_options.js';
export { SMTP_DEFAULTS } from './smtp_options.js';
export type { SmtpAttempt, SmtpOpenErrorCode, SmtpSendErrorCode } from './smtp_errors.js';
export { SmtpOpenError, SmtpSendError } from './smtp_errors.js';
export { SmtpSession } from './smtp_session.js';

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
  /** The routing function's last answer per domain (a route's key, or 'mx'), for mxKey(). */
  readonly #routeKeys = new Map<string, string>();
  readonly #sessions = new Set<SmtpSession>();
  /** Every connection from TCP connect until its socket has closed (sessions and handshakes). */
  readonly #links = new Set<Link>();
  // One signal shared by every open() in flight: each attempt adds (and later removes) a listener,
  // so the default cap of 10 would warn under ordinary concurrency.
  readonly #abort = (() => {
    const c = new AbortController();
    setMaxListeners(0, c.signal);
    return c;
  })();
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
    // As open() routes: the routing function's last answer for d, then the static routes, then MX.
    const fromFunction = this.#routeKeys.get(d);
    if (fromFunction !== undefined) return fromFunction === 'mx' ? this.#mx.cachedKey(d) : fromFunction;
    return this.#s.routes.lookup(d)?.key ?? this.#mx.cachedKey(d);
  }

  async open(target: DeliveryTarget): Promise<TransportSession> {
    checkObject(target, 'target');
    const domain = checkDomainName(target.domain, 'target.domain');
    const binding = checkBindingName(target.binding, 'target.binding');
    if (this.#closed)
      throw new SmtpOpenError('ERR_CLOSED', domain, binding, [], `smtp open ${domain}: the transport is closed`);
    const source = this.#s.bindings.get(binding) ?? { localAddress: undefined, ehloName: this.#s.defaultEhloName };

    checkHostGate(target);
    let plan: { key: string; hosts: string[]; candidates: Candidate[]; attempts: SmtpAttempt[] };
    try {
      plan = await this.#plan(domain, binding, source.localAddress, target.preferHost);
    } catch (err) {
      if (this.#closed) {
        throw new SmtpOpenError('ERR_CLOSED', domain, binding, [], `smtp open ${domain}: the transport was closed`, {
          cause: err,
        });
      }
      if (err instanceof MxLookupError) {
        throw new SmtpOpenError(err.code, domain, binding, [], `smtp open ${domain}: ${err.message}`, { cause: err });
      }
      throw err;
    }

    const attempts = plan.attempts;
    // The Host scope: the core learns the hosts (its charged host went first in the plan), and
    // each connect needs the core's claim on the host (a host at its cap is skipped).
    target.learnHosts?.(plan.hosts);
    const candidates = plan.candidates;
    let capped = 0;
    for (const c of candidates) {
      if (this.#closed) break;
      if (target.claimHost !== undefined && !target.claimHost(c.host)) {
        capped++;
        continue;
      }
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
        mxKey: plan.key,
        domain,
        binding,
        host: c.host,
        address: c.address,
        port: c.port,
        timeouts: this.#s.timeouts,
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
    if (capped > 0 && capped === candidates.length) {
      const why = `smtp open ${domain} (binding ${binding}): every host is at its connection cap`;
      throw new SmtpOpenError('ERR_HOST_CAP', domain, binding, attempts, why);
    }
    const tried = attempts
      .map(
        (a) =>
          `${a.address && a.address !== a.host ? `${a.host}[${a.address}]` : a.host}:${a.port} ${a.responseCode ?? a.code}`,
      )
      .join('; ');
    throw new SmtpOpenError(
      'ERR_SMTP_CONNECT',
      domain,
      binding,
      attempts,
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

  /** The route of a domain: the routing function's answer, else the static routes; undefined for
   *  MX. A function that throws or answers badly fails the open (ERR_SMTP_ROUTE, transient). */
  async #routeOf(domain: string, binding: string): Promise<ResolvedRoute | undefined> {
    const fn = this.#s.route;
    if (fn !== undefined) {
      let answer: RouteAnswer;
      try {
        answer = await fn(domain, binding);
        if (answer === 'mx') {
          this.#routeKeys.set(domain, 'mx');
          return undefined;
        }
        if (answer !== undefined) {
          const route = resolveRoute(answer, `options.route(${JSON.stringify(domain)}, ${JSON.stringify(binding)})`);
          this.#routeKeys.set(domain, route.key);
          return route;
        }
        this.#routeKeys.delete(domain);
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw new SmtpOpenError('ERR_SMTP_ROUTE', domain, binding, [], `smtp open ${domain}: routing failed: ${why}`, {
          cause: err,
        });
      }
    }
    return this.#s.routes.lookup(domain);
  }

  /** Hosts to try, in order, with their addresses; hosts that did not resolve go into `attempts`. */
  async #plan(
    domain: string,
    binding: string,
    localAddress: string | undefined,
    preferHost: string | undefined,
  ): Promise<{ key: string; hosts: string[]; candidates: Candidate[]; attempts: SmtpAttempt[] }> {
    const attempts: SmtpAttempt[] = [];
    let candidates: Candidate[] = [];
    let key: string;
    let hosts: string[];
    const route = await this.#routeOf(domain, binding);
    const literal = addressLiteral(domain);
    if (route) {
      key = route.key;
      candidates = route.hosts.map((h) => ({ host: h.host, address: h.host, port: h.port }));
      hosts = route.hosts.map((h) => h.host);
    } else if (literal) {
      // user@[192.0.2.1]: the address is the host, no DNS (RFC 5321 section 4.1.3).
      key = destinationKey([{ host: literal, port: this.#s.port }]);
      candidates = [{ host: literal, address: literal, port: this.#s.port }];
      hosts = [literal];
    } else {
      const set = await this.#mx.lookup(domain);
      key = set.key;
      hosts = set.groups.flat();
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
    // The host the core charged this connection to goes first, among the fresh and among the failed.
    const order = (list: Candidate[]) => (preferHost === undefined ? list : preferFirst(list, preferHost));
    return { key, hosts, candidates: order(fresh).concat(order(failed)), attempts };
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
  async #connect(
    c: Candidate,
    source: ResolvedBinding,
    ignoreTLS: boolean,
  ): Promise<{ conn: SMTPConnection; link: Link }> {
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
        const onEnd = () =>
          setImmediate(() => finish(codedError('ECONNECTION', 'connection closed during session setup')));
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

/** The Host scope's fields of a target, when present, are what transport.ts says they are. */
function checkHostGate(target: DeliveryTarget): void {
  if (target.preferHost !== undefined && typeof target.preferHost !== 'string')
    throw new TypeError(`target.preferHost must be a string, got ${typeName(target.preferHost)}`);
  for (const k of ['learnHosts', 'claimHost'] as const)
    if (target[k] !== undefined && typeof target[k] !== 'function')
      throw new TypeError(`target.${k} must be a function, got ${typeName(target[k])}`);
}

/** The candidates of one host first, the others after, each in their order. */
function preferFirst(candidates: Candidate[], host: string): Candidate[] {
  const name = normalizeHost(host);
  const first = candidates.filter((c) => normalizeHost(c.host) === name);
  return first.length === 0 ? candidates : first.concat(candidates.filter((c) => normalizeHost(c.host) !== name));
}

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
  const a: SmtpAttempt = {
    host: c.host,
    address: c.address,
    port: c.port,
    code: e.code ?? 'ERROR',
    message: e.message,
  };
  if (typeof e.responseCode === 'number') a.responseCode = e.responseCode;
  // nodemailer files ECONNREFUSED under ESOCKET; the system code says more.
  if (e.originalCode && (e.code === 'ESOCKET' || e.code === 'ECONNECTION')) a.code = e.originalCode;
  return a;
}
