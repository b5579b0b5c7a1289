// Routing of the SMTP transport against real SMTP servers on loopback: exact routes, wildcards for
// subdomains, a default smart host ('*'), and a routing function (sync or async) asked before them,
// which may answer hosts, 'mx' or nothing. Which receiver a session reached is read at the
// receivers (their accepted connections). MX data, where a test needs it, comes from a resolver
// object passed in the options (the transport under test is real).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DnsResolver, type RouteAnswer, SmtpOpenError, SmtpTransport } from '../../lib/transport/smtp.js';
import { startServer, type TestServer } from '../support/smtp_servers.js';

const servers: Record<'exact' | 'wild' | 'deep' | 'fallback' | 'fn' | 'mx', TestServer> = {} as never;
const transports: SmtpTransport[] = [];

beforeAll(async () => {
  for (const name of ['exact', 'wild', 'deep', 'fallback', 'fn', 'mx'] as const)
    servers[name] = await startServer({ name });
});
afterAll(async () => {
  await Promise.all(transports.map((t) => t.close()));
  await Promise.all(Object.values(servers).map((s) => s.close()));
});

const route = (s: TestServer) => ({ host: '127.0.0.1', port: s.port });

function make(options: ConstructorParameters<typeof SmtpTransport>[0]): SmtpTransport {
  const t = new SmtpTransport(options);
  transports.push(t);
  return t;
}

/** Opens a session for the domain, closes it, and names the server whose connection count rose. */
async function reached(t: SmtpTransport, domain: string, binding = 'default'): Promise<string> {
  const before = Object.fromEntries(Object.entries(servers).map(([k, s]) => [k, s.connections.length]));
  const session = await t.open({ domain, binding, bindingSlot: 0 });
  await session.close();
  const rose = Object.entries(servers).filter(([k, s]) => s.connections.length > before[k]);
  expect(rose.length, `${domain}: one server reached`).toBe(1);
  return rose[0][0];
}

/** An MX zone where every domain's MX is the 'mx' server's address (127.0.0.1). */
function mxResolver(): DnsResolver & { lookups: string[] } {
  const lookups: string[] = [];
  return {
    lookups,
    resolveMx: (name: string) => {
      lookups.push(name);
      return Promise.resolve([{ exchange: `mx.${name}`, priority: 10 }]);
    },
    resolve4: () => Promise.resolve(['127.0.0.1']),
    resolve6: () => Promise.resolve([]),
  };
}

describe('static routes', () => {
  it('an exact key beats a wildcard, a longer wildcard a shorter one, and * is the default', async () => {
    const t = make({
      routes: {
        'a.example.com': route(servers.exact),
        '*.example.com': route(servers.wild),
        '*.deep.example.com': route(servers.deep),
        '*': route(servers.fallback),
      },
    });
    expect(await reached(t, 'a.example.com')).toBe('exact');
    expect(await reached(t, 'b.example.com')).toBe('wild');
    expect(await reached(t, 'x.y.example.com')).toBe('wild');
    expect(await reached(t, 'x.deep.example.com')).toBe('deep');
    // A wildcard names subdomains only: example.com itself goes to the default.
    expect(await reached(t, 'example.com')).toBe('fallback');
    expect(await reached(t, 'other.test')).toBe('fallback');
    expect(await reached(t, 'notexample.com')).toBe('fallback');
    // mxKey follows the same table.
    expect(t.mxKey('b.example.com')).toBe(`127.0.0.1:${servers.wild.port}`);
    expect(t.mxKey('other.test')).toBe(`127.0.0.1:${servers.fallback.port}`);
  });

  it('without *, a domain no key names goes to its MX', async () => {
    const resolver = mxResolver();
    const t = make({ routes: { '*.example.com': route(servers.wild) }, resolver, port: servers.mx.port });
    expect(await reached(t, 'b.example.com')).toBe('wild');
    expect(await reached(t, 'plain.test')).toBe('mx');
    expect(resolver.lookups).toEqual(['plain.test']);
  });

  it('refuses bad keys and duplicates, naming them', () => {
    expect(() => new SmtpTransport({ routes: { '*.': route(servers.wild) } })).toThrow(
      /^options\.routes\["\*\."\] \(wildcard domain\)/,
    );
    expect(
      () => new SmtpTransport({ routes: { '*.a.test': route(servers.wild), '*.A.test': route(servers.wild) } }),
    ).toThrow(/duplicates the route of \*\.a\.test/);
    expect(() => new SmtpTransport({ routes: { '*': [] } })).toThrow(
      /^options\.routes\["\*"\] must list at least one host/,
    );
    expect(() => new SmtpTransport({ route: 'x' as never })).toThrow(TypeError);
    expect(() => new SmtpTransport({ route: 'x' as never })).toThrow(/^options\.route must be a function, got string/);
  });
});

describe('a routing function', () => {
  it('is asked first with (domain, binding); undefined falls back to routes, "mx" to MX', async () => {
    const asked: string[] = [];
    const resolver = mxResolver();
    const t = make({
      routes: { '*': route(servers.fallback) },
      resolver,
      port: servers.mx.port,
      route: async (domain: string, binding: string): Promise<RouteAnswer> => {
        asked.push(`${domain}/${binding}`);
        await new Promise((r) => setTimeout(r, 1)); // as an MTA's own async MX hook
        if (domain.endsWith('.fn.test')) return [route(servers.fn)];
        if (domain === 'dns.test') return 'mx';
        return undefined;
      },
    });
    expect(await reached(t, 'a.fn.test', 'b1')).toBe('fn');
    expect(await reached(t, 'dns.test')).toBe('mx');
    expect(await reached(t, 'else.test')).toBe('fallback');
    expect(asked).toEqual(['a.fn.test/b1', 'dns.test/default', 'else.test/default']);
    expect(resolver.lookups).toEqual(['dns.test']);
    // mxKey: the function's last answer (its route's key, or the MX cache after 'mx').
    expect(t.mxKey('a.fn.test')).toBe(`127.0.0.1:${servers.fn.port}`);
    expect(t.mxKey('dns.test')).toBe(`mx.dns.test:${servers.mx.port}`);
    expect(t.mxKey('else.test')).toBe(`127.0.0.1:${servers.fallback.port}`);
  });

  it('a function that throws or answers nonsense fails the open as a transient ERR_SMTP_ROUTE', async () => {
    const before = Object.values(servers).reduce((n, s) => n + s.connections.length, 0);
    const answers: Record<string, () => RouteAnswer> = {
      'throws.test': () => {
        throw new Error('routing table unavailable');
      },
      'bad.test': () => ({ host: '127.0.0.1' }) as never,
      'empty.test': () => [],
      'word.test': () => 'dns' as never,
    };
    const t = make({ route: (domain) => answers[domain]() });
    for (const domain of Object.keys(answers)) {
      const err = await t.open({ domain, binding: 'default', bindingSlot: 0 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, domain).toBeInstanceOf(SmtpOpenError);
      expect((err as SmtpOpenError).code).toBe('ERR_SMTP_ROUTE');
      expect((err as SmtpOpenError).transient).toBe(true);
      expect((err as SmtpOpenError).message).toMatch(
        new RegExp(`^smtp open ${domain.replace('.', '\\.')}: routing failed: `),
      );
    }
    // No connection was made anywhere.
    expect(Object.values(servers).reduce((n, s) => n + s.connections.length, 0)).toBe(before);
  });
});
