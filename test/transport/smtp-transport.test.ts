// The SMTP transport against real SMTP servers on loopback: smtp-server for well-behaved peers,
// small scripted net servers for peers that misbehave (silent greeting, a drop mid-DATA, no reply
// to the final dot or to QUIT). DNS comes from a fake resolver object passed in the options
// (dependency injection of the MX data; the transport under test is real).

import net from 'node:net';
import { X509Certificate, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import {
  SMTP_DEFAULTS,
  SmtpOpenError,
  SmtpSendError,
  type SmtpSession,
  SmtpTransport,
  type DnsResolver,
  type SmtpTransportOptions,
} from '../../lib/transport/smtp.js';
import type { OutboundMessage } from '../../lib/transport/transport.js';

// ---- fixtures -------------------------------------------------------------------------------

interface Received {
  from: string | false;
  to: string[];
  body: Buffer;
  remoteAddress: string;
  ehlo: string;
  secure: boolean;
}

interface TestServer {
  host: string;
  port: number;
  received: Received[];
  connections: number;
  remoteAddresses: string[];
  close(): Promise<void>;
}

const closers: Array<() => Promise<void>> = [];
const transports: SmtpTransport[] = [];

function smtpError(code: number, text: string): Error {
  return Object.assign(new Error(text), { responseCode: code });
}

async function startSmtp(extra: Partial<SMTPServerOptions> = {}, host = '127.0.0.1', port = 0): Promise<TestServer> {
  const received: Received[] = [];
  const state = { connections: 0, remoteAddresses: [] as string[] };
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    closeTimeout: 200,

    onData(stream, session: SMTPServerSession, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const body = Buffer.concat(chunks);
        const failWith = /^X-Fail: (\d{3})/m.exec(body.toString('latin1'));
        if (failWith) {
          cb(smtpError(Number(failWith[1]), `test failure ${failWith[1]}`));
          return;
        }
        received.push({
          from: session.envelope.mailFrom === false ? false : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          body,
          remoteAddress: session.remoteAddress,
          ehlo: session.hostNameAppearsAs,
          secure: session.secure,
        });
        cb(null, 'queued as test');
      });
    },
    ...extra,
    onConnect(session, cb) {
      state.connections++;
      state.remoteAddresses.push(session.remoteAddress);
      if (extra.onConnect) extra.onConnect(session, cb);
      else cb();
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.server.address() as net.AddressInfo;
  const ts: TestServer = {
    host,
    port: addr.port,
    received,
    get connections() {
      return state.connections;
    },
    get remoteAddresses() {
      return state.remoteAddresses;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  closers.push(ts.close);
  return ts;
}

/** A scripted SMTP peer: `reply` gets each command line and answers (or not) on the socket. */
async function startRaw(
  onConnect: (socket: net.Socket) => void,
  reply?: (line: string, socket: net.Socket, state: { inData: boolean }) => void,
  host = '127.0.0.1',
): Promise<{ port: number; connections: number }> {
  const sockets = new Set<net.Socket>();
  const stats = { port: 0, connections: 0 };
  const server = net.createServer((socket) => {
    stats.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const state = { inData: false };
    let buffered = '';
    socket.on('data', (chunk) => {
      if (!reply) return;
      buffered += chunk.toString('latin1');
      let i: number;
      while ((i = buffered.indexOf('\r\n')) >= 0 && !socket.destroyed) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 2);
        reply(line, socket, state);
      }
    });
    onConnect(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  stats.port = (server.address() as net.AddressInfo).port;
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return stats;
}

/** A basic ESMTP dialogue for scripted peers; `onDataLine` decides what happens inside DATA. */
function script(onDataLine: (line: string, socket: net.Socket) => void, quit: 'reply' | 'ignore' = 'reply') {
  return (line: string, socket: net.Socket, state: { inData: boolean }) => {
    if (state.inData) {
      onDataLine(line, socket);
      if (line === '.') state.inData = false;
      return;
    }
    const verb = line.slice(0, 4).toUpperCase();
    if (verb === 'EHLO') socket.write('250-scripted\r\n250 8BITMIME\r\n');
    else if (verb === 'MAIL' || verb === 'RCPT' || verb === 'RSET') socket.write('250 OK\r\n');
    else if (verb === 'DATA') {
      state.inData = true;
      socket.write('354 go ahead\r\n');
    } else if (verb === 'QUIT') {
      if (quit === 'reply') socket.end('221 bye\r\n');
    } else socket.write('502 unknown\r\n');
  };
}

async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, host, () => resolve()));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function transport(options: SmtpTransportOptions): SmtpTransport {
  const t = new SmtpTransport(options);
  transports.push(t);
  return t;
}

let nextId = 1;
function message(
  to: string[],
  body: Buffer | string = 'Subject: hi\r\n\r\nhello\r\n',
  from = 'sender@origin.test',
): OutboundMessage {
  return {
    id: nextId++,
    domain: 'dest.test',
    envelope: { from, to },
    body: Buffer.isBuffer(body) ? body : Buffer.from(body),
  };
}

const target = (domain: string, binding = 'default') => ({ domain, binding, bindingSlot: 0 });

async function openError(p: Promise<unknown>): Promise<SmtpOpenError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SmtpOpenError);
  return err as SmtpOpenError;
}

// A minimal self-signed certificate (ECDSA P-256) built with node:crypto and a small DER writer.
function selfSignedCert(cn: string): { key: string; cert: string } {
  const der = (tag: number, ...parts: Buffer[]): Buffer => {
    const body = Buffer.concat(parts);
    let len: Buffer;
    if (body.length < 0x80) len = Buffer.from([body.length]);
    else {
      const hex = body.length.toString(16);
      const b = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
      len = Buffer.concat([Buffer.from([0x80 | b.length]), b]);
    }
    return Buffer.concat([Buffer.from([tag]), len, body]);
  };
  const seq = (...p: Buffer[]) => der(0x30, ...p);
  const oid = (s: string) => {
    const [a, b, ...rest] = s.split('.').map(Number);
    const out = [40 * a + b];
    for (const n of rest) {
      const bytes = [n & 0x7f];
      for (let v = n >>> 7; v; v >>>= 7) bytes.unshift((v & 0x7f) | 0x80);
      out.push(...bytes);
    }
    return der(0x06, Buffer.from(out));
  };
  const int = (n: Buffer) => der(0x02, n[0] & 0x80 ? Buffer.concat([Buffer.from([0]), n]) : n);
  const time = (d: Date) => der(0x17, Buffer.from(`${d.toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`));
  const name = seq(der(0x31, seq(oid('2.5.4.3'), der(0x0c, Buffer.from(cn)))));
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const alg = seq(oid('1.2.840.10045.4.3.2')); // ecdsa-with-SHA256
  const now = Date.now();
  const tbs = seq(
    der(0xa0, int(Buffer.from([2]))), // v3
    int(randomBytes(8)),
    alg,
    name,
    seq(time(new Date(now - 86_400_000)), time(new Date(now + 86_400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
  );
  const cert = seq(tbs, alg, der(0x03, Buffer.from([0]), sign('sha256', tbs, privateKey)));
  const pem = `-----BEGIN CERTIFICATE-----\n${cert
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END CERTIFICATE-----\n`;
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, cert: pem };
}

/** The fake DNS: a zone of MX and A records; a string value is an error code to fail with. */
type Zone = Record<
  string,
  { mx?: Array<{ exchange: string; priority: number }> | string; a?: string[] | string; aaaa?: string[] | string }
>;

function fakeResolver(zone: Zone): DnsResolver & { calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  const answer = <T>(kind: string, name: string, v: T[] | string | undefined): Promise<T[]> => {
    calls[`${kind} ${name}`] = (calls[`${kind} ${name}`] ?? 0) + 1;
    if (zone[name] === undefined)
      return Promise.reject(Object.assign(new Error(`queryX ENOTFOUND ${name}`), { code: 'ENOTFOUND' }));
    if (v === undefined) return Promise.reject(Object.assign(new Error(`queryX ENODATA ${name}`), { code: 'ENODATA' }));
    if (typeof v === 'string')
      return v === 'HANG'
        ? new Promise<T[]>(() => undefined)
        : Promise.reject(Object.assign(new Error(`${kind} ${v}`), { code: v }));
    return Promise.resolve(v);
  };
  return {
    calls,
    resolveMx: (name) => answer('MX', name, zone[name]?.mx),
    resolve4: (name) => answer('A', name, zone[name]?.a),
    resolve6: (name) => answer('AAAA', name, zone[name]?.aaaa),
  };
}

afterAll(async () => {
  await Promise.all(transports.map((t) => t.close()));
  await Promise.all(closers.map((c) => c()));
});

// ---- tests ----------------------------------------------------------------------------------

describe('delivery to a server that accepts', () => {
  let ok: TestServer;
  let t: SmtpTransport;
  beforeAll(async () => {
    ok = await startSmtp();
    t = transport({
      routes: { 'dest.test': { host: '127.0.0.1', port: ok.port } },
      defaultEhloName: 'mta.origin.test',
    });
  });

  it('delivers envelope and body byte-exact (CRLF lines, leading dots, 8-bit bytes)', async () => {
    const s = await t.open(target('dest.test'));
    expect(s.usable).toBe(true);
    const body = Buffer.concat([
      Buffer.from('From: a@origin.test\r\nTo: b@dest.test\r\nSubject: bytes\r\n\r\n'),
      Buffer.from('.leading dot\r\n..two dots\r\n.\r\nline after a lone dot\r\n'),
      Buffer.from('caf\u00e9 \u00fcml\u00e4ut\r\n', 'utf8'),
      Buffer.from(`${'x'.repeat(990)}\r\n`),
      Buffer.from([0x80, 0xfe, 0xff, 0x0d, 0x0a]),
    ]);
    const before = ok.received.length;
    const out = await s.send(message(['b@dest.test', 'c@dest.test'], body));
    expect(out.kind).toBe('delivered');
    expect(out.kind === 'delivered' && out.response).toMatch(/^250 .*queued as test/);
    const got = ok.received[before];
    expect(got.from).toBe('sender@origin.test');
    expect(got.to).toEqual(['b@dest.test', 'c@dest.test']);
    expect(got.body.equals(body)).toBe(true);
    expect(got.ehlo).toBe('mta.origin.test');
    expect(got.secure).toBe(false);
    await s.close();
    expect(s.usable).toBe(false);
  });

  it('sends several messages on one session, and the null sender as MAIL FROM:<>', async () => {
    const s = await t.open(target('dest.test'));
    const before = ok.received.length;
    for (let i = 0; i < 3; i++) expect((await s.send(message([`r${i}@dest.test`]))).kind).toBe('delivered');
    expect((await s.send(message(['bounce@dest.test'], 'Subject: dsn\r\n\r\nx\r\n', ''))).kind).toBe('delivered');
    expect(ok.received.slice(before).map((r) => r.to[0])).toEqual([
      'r0@dest.test',
      'r1@dest.test',
      'r2@dest.test',
      'bounce@dest.test',
    ]);
    expect(ok.received[before + 3].from).toBe('');
    expect(s.usable).toBe(true);
    await s.close();
  });

  it('reports the route key as mxKey, for the session and for the domain', async () => {
    const s = await t.open(target('DEST.test.'));
    expect(s.mxKey).toBe(`127.0.0.1:${ok.port}`);
    expect(t.mxKey('dest.test')).toBe(`127.0.0.1:${ok.port}`);
    expect(t.mxKey('unknown.test')).toBeUndefined();
    await s.close();
  });

  it('refuses a bad envelope as a permanent outcome without breaking the session', async () => {
    const s = await t.open(target('dest.test'));
    expect(await s.send(message([]))).toMatchObject({ kind: 'permanent', response: 'the message has no recipients' });
    expect(await s.send(message(['a@b>\r\nRSET']))).toMatchObject({ kind: 'permanent' });
    expect(s.usable).toBe(true);
    expect((await s.send(message(['fine@dest.test']))).kind).toBe('delivered');
    await s.close();
  });

  it('rejects a concurrent send (ERR_REENTRANT) and a send after close (ERR_CLOSED)', async () => {
    const s = await t.open(target('dest.test'));
    const first = s.send(message(['one@dest.test']));
    await expect(s.send(message(['two@dest.test']))).rejects.toMatchObject({ code: 'ERR_REENTRANT' });
    expect((await first).kind).toBe('delivered');
    await s.close();
    await expect(s.send(message(['three@dest.test']))).rejects.toBeInstanceOf(SmtpSendError);
    await expect(s.send(message(['three@dest.test']))).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await s.close(); // twice is fine
  });

  it('delivers to a domain literal (user@[127.0.0.1]) without DNS', async () => {
    const r = fakeResolver({});
    const lit = transport({ resolver: r, port: ok.port });
    const s = await lit.open(target('[127.0.0.1]'));
    expect(s.mxKey).toBe(`127.0.0.1:${ok.port}`);
    expect(lit.mxKey('[127.0.0.1]')).toBe(`127.0.0.1:${ok.port}`);
    expect((await s.send(message(['postmaster@[127.0.0.1]']))).kind).toBe('delivered');
    expect(r.calls).toEqual({});
    await s.close();
  });

  it('closes an idle session itself after timeouts.idle', async () => {
    const idle = transport({ routes: { 'dest.test': { host: '127.0.0.1', port: ok.port } }, timeouts: { idle: 150 } });
    const s = await idle.open(target('dest.test'));
    expect(s.usable).toBe(true);
    await new Promise((r) => setTimeout(r, 400));
    expect(s.usable).toBe(false);
    await s.close();
  });
});

describe('sendCallback(): the callback form of send() the core uses', () => {
  let ok: TestServer;
  beforeAll(async () => {
    ok = await startSmtp();
  });

  it('messages chained from the callbacks all arrive on one connection; the session then goes idle and closes after timeouts.idle', async () => {
    const t = transport({ routes: { 'dest.test': { host: '127.0.0.1', port: ok.port } }, timeouts: { idle: 150 } });
    const s = (await t.open(target('dest.test'))) as SmtpSession;
    const before = ok.received.length;
    const outcomes: string[] = [];
    let returned = true;
    await new Promise<void>((resolve, reject) => {
      const next = (): void => {
        if (outcomes.length === 20) {
          resolve();
          return;
        }
        returned = false;
        s.sendCallback(message([`r${outcomes.length}@dest.test`]), (err, outcome) => {
          // never called before sendCallback() has returned
          if (!returned) reject(new Error('done called synchronously'));
          if (err) {
            reject(err);
            return;
          }
          outcomes.push(outcome!.kind);
          next(); // the next message from within this callback, as the core does
        });
        returned = true;
      };
      next();
    });
    expect(outcomes).toEqual(Array(20).fill('delivered'));
    const got = ok.received.slice(before);
    expect(got.map((r) => r.to[0])).toEqual(Array.from({ length: 20 }, (_, i) => `r${i}@dest.test`));
    expect(s.usable).toBe(true);
    // Idle again after the last one: closed by the session's own idle timer.
    const deadline = Date.now() + 5000;
    while (s.usable && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(s.usable).toBe(false);
    await s.close();
  });

  it('a bad envelope (permanent) and a second message at once (ERR_REENTRANT) come through the callback, not synchronously; a bad argument throws', async () => {
    const t = transport({ routes: { 'dest.test': { host: '127.0.0.1', port: ok.port } } });
    const s = (await t.open(target('dest.test'))) as SmtpSession;
    const results: string[] = [];
    const first = new Promise<void>((resolve) =>
      s.sendCallback(message(['ok@dest.test']), (err, o) => {
        results.push(err ? `err ${(err as SmtpSendError).code}` : o!.kind);
        resolve();
      }),
    );
    const second = new Promise<void>((resolve) =>
      s.sendCallback(message(['again@dest.test']), (err) => {
        results.push(`second ${(err as SmtpSendError).code}`);
        resolve();
      }),
    );
    expect(results).toEqual([]);
    await Promise.all([first, second]);
    expect(results.sort()).toEqual(['delivered', 'second ERR_REENTRANT']);
    const bad = new Promise<string>((resolve) =>
      s.sendCallback(message(['x<y>@dest.test']), (err, o) => resolve(err ? 'err' : `${o!.kind} ${o!.response}`)),
    );
    expect(await bad).toMatch(/^permanent invalid recipient/);
    expect(() => s.sendCallback({ id: 'x' } as unknown as OutboundMessage, () => undefined)).toThrow(TypeError);
    expect(s.usable).toBe(true);
    await s.close();
  });
});

describe('bindings: EHLO name and source address', () => {
  let ok: TestServer;
  beforeAll(async () => {
    ok = await startSmtp();
  });

  it('sends the EHLO name of the binding, and the default for other bindings', async () => {
    const t = transport({
      routes: { 'dest.test': { host: '127.0.0.1', port: ok.port } },
      defaultEhloName: 'default.origin.test',
      bindings: { b1: { ehloName: 'mta1.origin.test' }, b2: { ehloName: 'mta2.origin.test' } },
    });
    for (const [binding, name] of [
      ['b1', 'mta1.origin.test'],
      ['b2', 'mta2.origin.test'],
      ['other', 'default.origin.test'],
    ]) {
      const s = await t.open(target('dest.test', binding));
      const before = ok.received.length;
      expect((await s.send(message(['x@dest.test']))).kind).toBe('delivered');
      expect(ok.received[before].ehlo).toBe(name);
      await s.close();
    }
  });

  it("connects from the binding's localAddress (127.0.0.2)", async () => {
    const t = transport({
      routes: { 'dest.test': { host: '127.0.0.1', port: ok.port } },
      bindings: { ip2: { localAddress: '127.0.0.2', ehloName: 'ip2.origin.test' } },
    });
    const s = await t.open(target('dest.test', 'ip2'));
    const before = ok.received.length;
    expect((await s.send(message(['x@dest.test']))).kind).toBe('delivered');
    expect(ok.received[before].remoteAddress).toBe('127.0.0.2');
    expect(ok.received[before].ehlo).toBe('ip2.origin.test');
    await s.close();
    const plain = await t.open(target('dest.test', 'default'));
    expect((await plain.send(message(['y@dest.test']))).kind).toBe('delivered');
    expect(ok.received[before + 1].remoteAddress).toBe('127.0.0.1');
    await plain.close();
  });
});

describe('session setup failures', () => {
  it('moves past a 421 greeting to the next route host, and fails when every host refuses', async () => {
    const busy = await startSmtp({ onConnect: (_s, cb) => cb(smtpError(421, 'too busy, try later')) });
    const ok = await startSmtp();
    const refused = await freePort();
    const t = transport({
      routes: {
        'dest.test': [
          { host: '127.0.0.1', port: busy.port },
          { host: '127.0.0.1', port: ok.port },
        ],
        'dead.test': [
          { host: '127.0.0.1', port: busy.port },
          { host: '127.0.0.1', port: refused },
        ],
      },
      hostFailureRetry: 0,
    });
    const s = await t.open(target('dest.test'));
    expect((s as SmtpSession).port).toBe(ok.port);
    expect(busy.connections).toBe(1);
    expect((await s.send(message(['x@dest.test']))).kind).toBe('delivered');
    await s.close();

    const err = await openError(t.open(target('dead.test')));
    expect(err).toMatchObject({ code: 'ERR_SMTP_CONNECT', transient: true, permanent: false, domain: 'dead.test' });
    expect(err.hosts).toEqual([`127.0.0.1:${busy.port}`, `127.0.0.1:${refused}`]);
    expect(err.attempts[0]).toMatchObject({ code: 'EPROTOCOL', responseCode: 421 });
    expect(err.attempts[1]).toMatchObject({ code: 'ECONNREFUSED' });
    expect(err.message).toContain('dead.test');
    expect(err.message).toContain(`127.0.0.1:${refused} ECONNREFUSED`);
  });

  it('tries an address that failed recently after the others (hostFailureRetry)', async () => {
    const busy = await startSmtp({ onConnect: (_s, cb) => cb(smtpError(421, 'busy')) });
    const ok = await startSmtp();
    const t = transport({
      routes: {
        'dest.test': [
          { host: '127.0.0.1', port: busy.port },
          { host: '127.0.0.1', port: ok.port },
        ],
      },
    });
    for (let i = 0; i < 3; i++) await (await t.open(target('dest.test'))).close();
    expect(busy.connections).toBe(1);
  });

  it('fails on a refused port with ECONNREFUSED', async () => {
    const port = await freePort();
    const t = transport({ routes: { 'dest.test': { host: '127.0.0.1', port } } });
    const err = await openError(t.open(target('dest.test')));
    expect(err).toMatchObject({ code: 'ERR_SMTP_CONNECT', transient: true });
    expect(err.attempts).toEqual([expect.objectContaining({ host: '127.0.0.1', port, code: 'ECONNREFUSED' })]);
  });

  it('gives up on a server that never greets after timeouts.greeting', async () => {
    const silent = await startRaw(() => undefined);
    const t = transport({
      routes: { 'dest.test': { host: '127.0.0.1', port: silent.port } },
      timeouts: { greeting: 200 },
    });
    const started = Date.now();
    const err = await openError(t.open(target('dest.test')));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(err).toMatchObject({ code: 'ERR_SMTP_CONNECT', transient: true });
    expect(err.attempts[0]).toMatchObject({ code: 'ETIMEDOUT' });
    expect(err.attempts[0].message).toMatch(/greeting/i);
  });

  it('close() stops an open() in flight', async () => {
    const silent = await startRaw(() => undefined);
    const t = new SmtpTransport({ routes: { 'dest.test': { host: '127.0.0.1', port: silent.port } } });
    const pending = openError(t.open(target('dest.test')));
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await t.close();
    expect(await pending).toMatchObject({ code: 'ERR_CLOSED', transient: true });
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('open() after close() rejects with ERR_CLOSED, and close() ends open sessions', async () => {
    const ok = await startSmtp();
    const t = new SmtpTransport({ routes: { 'dest.test': { host: '127.0.0.1', port: ok.port } } });
    const s = await t.open(target('dest.test'));
    await t.close();
    expect(s.usable).toBe(false);
    expect(await openError(t.open(target('dest.test')))).toMatchObject({ code: 'ERR_CLOSED', transient: true });
    await t.close();
  });
});

describe.each([{ pipelining: true }, { pipelining: false }])(
  'reply mapping (PIPELINING $pipelining)',
  ({ pipelining }) => {
    let srv: TestServer;
    let t: SmtpTransport;
    beforeAll(async () => {
      srv = await startSmtp({
        hidePIPELINING: !pipelining,
        onMailFrom(address, _session, cb) {
          if (address.address.startsWith('blocked')) cb(smtpError(553, '5.7.1 sender blocked'));
          else if (address.address.startsWith('slow')) cb(smtpError(451, '4.7.1 sender greylisted'));
          else cb();
        },
        onRcptTo(address, _session, cb) {
          if (address.address.startsWith('full')) cb(smtpError(452, '4.2.2 mailbox full'));
          else if (address.address.startsWith('nouser')) cb(smtpError(550, '5.1.1 no such user'));
          else cb();
        },
      });
      t = transport({ routes: { 'dest.test': { host: '127.0.0.1', port: srv.port } } });
    });

    it('maps RCPT 452 to transient and 550 to permanent, keeping the session usable (RSET)', async () => {
      const s = await t.open(target('dest.test'));
      expect(await s.send(message(['full@dest.test']))).toMatchObject({
        kind: 'transient',
        code: 452,
        response: expect.stringContaining('mailbox full'),
      });
      expect(s.usable).toBe(true);
      expect(await s.send(message(['nouser@dest.test']))).toMatchObject({
        kind: 'permanent',
        code: 550,
        response: expect.stringContaining('no such user'),
      });
      expect(s.usable).toBe(true);
      const before = srv.received.length;
      expect((await s.send(message(['fine@dest.test']))).kind).toBe('delivered');
      expect(srv.received[before].to).toEqual(['fine@dest.test']);
      await s.close();
    });

    it('all recipients refused: transient when any refusal is 4xx, permanent when all are 5xx', async () => {
      const s = await t.open(target('dest.test'));
      const mixed = await s.send(message(['nouser1@dest.test', 'full@dest.test', 'nouser2@dest.test']));
      expect(mixed).toMatchObject({ kind: 'transient', code: 452 });
      expect(mixed.kind !== 'delivered' && mixed.response).toMatch(
        /all 3 recipients refused: <nouser1@dest.test> 550.*<full@dest.test> 452/,
      );
      // Each recipient with its own verdict, so that the core bounces the 5xx ones alone.
      expect(mixed.refused?.map((r) => [r.recipient, r.kind, r.code])).toEqual([
        ['nouser1@dest.test', 'permanent', 550],
        ['full@dest.test', 'transient', 452],
        ['nouser2@dest.test', 'permanent', 550],
      ]);
      expect(await s.send(message(['nouser1@dest.test', 'nouser2@dest.test']))).toMatchObject({
        kind: 'permanent',
        code: 550,
      });
      expect(s.usable).toBe(true);
      await s.close();
    });

    it('partial acceptance: delivered to the accepted recipients, refused ones named in the response', async () => {
      const s = await t.open(target('dest.test'));
      const before = srv.received.length;
      const out = await s.send(message(['a@dest.test', 'nouser@dest.test', 'full@dest.test', 'b@dest.test']));
      expect(out.kind).toBe('delivered');
      expect(out.kind === 'delivered' && out.response).toMatch(
        /accepted for 2 of 4 recipients; refused: <nouser@dest.test> 550 .*; <full@dest.test> 452 /,
      );
      expect(srv.received.length).toBe(before + 1);
      expect(srv.received[before].to).toEqual(['a@dest.test', 'b@dest.test']);
      expect(out.refused).toEqual([
        {
          recipient: 'nouser@dest.test',
          kind: 'permanent',
          code: 550,
          response: expect.stringContaining('no such user'),
        },
        {
          recipient: 'full@dest.test',
          kind: 'transient',
          code: 452,
          response: expect.stringContaining('mailbox full'),
        },
      ]);
      await s.close();
    });

    it('maps MAIL FROM and end-of-DATA refusals by reply class', async () => {
      const s = await t.open(target('dest.test'));
      expect(await s.send(message(['x@dest.test'], 'Subject: a\r\n\r\nb\r\n', 'blocked@origin.test'))).toMatchObject({
        kind: 'permanent',
        code: 553,
      });
      expect(await s.send(message(['x@dest.test'], 'Subject: a\r\n\r\nb\r\n', 'slow@origin.test'))).toMatchObject({
        kind: 'transient',
        code: 451,
      });
      expect(await s.send(message(['x@dest.test'], 'X-Fail: 451\r\n\r\nb\r\n'))).toMatchObject({
        kind: 'transient',
        code: 451,
      });
      expect(await s.send(message(['x@dest.test'], 'X-Fail: 554\r\n\r\nb\r\n'))).toMatchObject({
        kind: 'permanent',
        code: 554,
      });
      expect(s.usable).toBe(true);
      expect((await s.send(message(['x@dest.test']))).kind).toBe('delivered');
      await s.close();
    });
  },
);

describe('broken sessions', () => {
  it('a connection dropped in the middle of DATA rejects send() and leaves the session unusable', async () => {
    const drop = await startRaw(
      (socket) => socket.write('220 drop ESMTP\r\n'),
      script((_line, socket) => socket.destroy()),
    );
    const t = transport({ routes: { 'dest.test': { host: '127.0.0.1', port: drop.port } } });
    const s = await t.open(target('dest.test'));
    const err = await s.send(message(['x@dest.test'], `Subject: big\r\n\r\n${'line\r\n'.repeat(2000)}`)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SmtpSendError);
    expect(err).toMatchObject({ code: 'ECONNECTION', transient: true });
    expect(s.usable).toBe(false);
    await s.close();
  });

  it('no reply to the final dot within timeouts.command rejects send() (ETIMEDOUT)', async () => {
    const stall = await startRaw(
      (socket) => socket.write('220 stall ESMTP\r\n'),
      script(() => undefined),
    );
    const t = transport({
      routes: { 'dest.test': { host: '127.0.0.1', port: stall.port } },
      timeouts: { command: 250 },
    });
    const s = await t.open(target('dest.test'));
    const started = Date.now();
    await expect(s.send(message(['x@dest.test']))).rejects.toMatchObject({ code: 'ETIMEDOUT', transient: true });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(s.usable).toBe(false);
    await s.close();
  });

  it('503 (bad sequence) is transient and retires the session', async () => {
    const confused = await startRaw(
      (socket) => socket.write('220 confused ESMTP\r\n'),
      (line, socket, state) => {
        if (line.startsWith('MAIL')) socket.write('503 5.5.1 bad sequence of commands\r\n');
        else script(() => undefined)(line, socket, state);
      },
    );
    const t = transport({ routes: { 'dest.test': { host: '127.0.0.1', port: confused.port } } });
    const s = await t.open(target('dest.test'));
    expect(await s.send(message(['x@dest.test']))).toMatchObject({ kind: 'transient', code: 503 });
    expect(s.usable).toBe(false);
    await s.close();
  });

  it('close() resolves when the peer never answers QUIT, and when it is already gone', async () => {
    const deaf = await startRaw(
      (socket) => socket.write('220 deaf ESMTP\r\n'),
      script(() => undefined, 'ignore'),
    );
    const t = transport({ routes: { 'dest.test': { host: '127.0.0.1', port: deaf.port } }, timeouts: { quit: 200 } });
    const s = await t.open(target('dest.test'));
    const started = Date.now();
    await s.close();
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(s.usable).toBe(false);

    const gone = await startRaw(
      (socket) => {
        socket.write('220 gone ESMTP\r\n');
      },
      (line, socket) => {
        if (line.startsWith('EHLO')) {
          socket.write('250 gone\r\n');
          setTimeout(() => socket.destroy(), 20);
        }
      },
    );
    const t2 = transport({ routes: { 'dest.test': { host: '127.0.0.1', port: gone.port } } });
    const s2 = await t2.open(target('dest.test'));
    await new Promise((r) => setTimeout(r, 100));
    expect(s2.usable).toBe(false);
    await s2.close();
  });
});

describe('STARTTLS', () => {
  let tlsServer: TestServer;
  let plain: TestServer;
  beforeAll(async () => {
    const { key, cert } = selfSignedCert('localhost');
    expect(new X509Certificate(cert).subject).toBe('CN=localhost');
    tlsServer = await startSmtp({ disabledCommands: ['AUTH'], key, cert });
    plain = await startSmtp();
  });

  it('upgrades when the server offers STARTTLS (self-signed certificate accepted by default)', async () => {
    const t = transport({ routes: { 'dest.test': { host: '127.0.0.1', port: tlsServer.port } } });
    const s = (await t.open(target('dest.test'))) as SmtpSession;
    expect(s.secure).toBe(true);
    const before = tlsServer.received.length;
    expect((await s.send(message(['x@dest.test']))).kind).toBe('delivered');
    expect(tlsServer.received[before].secure).toBe(true);
    await s.close();
  });

  it('falls back to plaintext when the handshake fails (certificate check on, TLS not required)', async () => {
    const t = transport({
      routes: { 'dest.test': { host: '127.0.0.1', port: tlsServer.port } },
      tls: { rejectUnauthorized: true },
    });
    const s = (await t.open(target('dest.test'))) as SmtpSession;
    expect(s.secure).toBe(false);
    const before = tlsServer.received.length;
    expect((await s.send(message(['x@dest.test']))).kind).toBe('delivered');
    expect(tlsServer.received[before].secure).toBe(false);
    await s.close();
  });

  it('requireTLS: fails on a bad certificate and on a server without STARTTLS', async () => {
    const strict = transport({
      routes: {
        'dest.test': { host: '127.0.0.1', port: tlsServer.port },
        'plain.test': { host: '127.0.0.1', port: plain.port },
      },
      tls: { rejectUnauthorized: true, requireTLS: true },
    });
    const e1 = await openError(strict.open(target('dest.test')));
    expect(e1.attempts).toHaveLength(1);
    expect(e1.attempts[0].code).toBe('ETLS');
    const e2 = await openError(strict.open(target('plain.test')));
    expect(e2.transient).toBe(true);
    const lax = transport({
      routes: { 'plain.test': { host: '127.0.0.1', port: plain.port } },
      tls: { requireTLS: true },
    });
    await openError(lax.open(target('plain.test')));
  });
});

describe('MX lookup (fake resolver)', () => {
  // Two servers on one port, on two loopback addresses, so that MX hosts differ by address only.
  let a: TestServer;
  let b: TestServer;
  let port: number;
  const deadAddress = '127.0.0.13';
  beforeAll(async () => {
    for (let tries = 0; ; tries++) {
      a = await startSmtp({}, '127.0.0.11');
      port = a.port;
      try {
        b = await startSmtp({}, '127.0.0.12', port);
        break;
      } catch (err) {
        if (tries >= 5) throw err; // the port is taken on 127.0.0.12: pick another pair
      }
    }
  });

  const zone = (): Zone => ({
    'pref.test': {
      mx: [
        { exchange: 'mx-b.mail.test', priority: 20 },
        { exchange: 'mx-a.mail.test', priority: 10 },
      ],
    },
    'sibling.test': {
      mx: [
        { exchange: 'MX-A.mail.test.', priority: 5 },
        { exchange: 'mx-b.mail.test', priority: 7 },
      ],
    },
    'down.test': {
      mx: [
        { exchange: 'mx-dead.mail.test', priority: 5 },
        { exchange: 'mx-ghost.mail.test', priority: 6 },
        { exchange: 'mx-b.mail.test', priority: 10 },
      ],
    },
    'equal.test': {
      mx: [
        { exchange: 'mx-a.mail.test', priority: 10 },
        { exchange: 'mx-b.mail.test', priority: 10 },
      ],
    },
    'implicit.test': { a: ['127.0.0.11'] },
    'nullmx.test': { mx: [{ exchange: '', priority: 0 }] },
    'nothing.test': {},
    'servfail.test': { mx: 'ESERVFAIL' },
    'hang.test': { mx: 'HANG' },
    'alldead.test': { mx: [{ exchange: 'mx-dead.mail.test', priority: 1 }] },
    'mx-a.mail.test': { a: ['127.0.0.11'] },
    'mx-b.mail.test': { a: ['127.0.0.12'] },
    'mx-dead.mail.test': { a: [deadAddress] },
  });

  it('the Host scope: learns the hosts, claims each before connecting, tries the charged host first', async () => {
    const t = transport({ resolver: fakeResolver(zone()), port });
    const learned: string[][] = [];
    const claims: string[] = [];
    const gate = (claim: (host: string) => boolean, preferHost?: string) => ({
      ...target('pref.test'),
      preferHost,
      learnHosts: (hosts: string[]) => learned.push(hosts),
      claimHost: (host: string) => {
        claims.push(host);
        return claim(host);
      },
    });
    // mx-a (the best MX) is at its cap: the session goes to mx-b, which it claimed first.
    const before = { a: a.connections, b: b.connections };
    const s1 = (await t.open(gate((h) => h !== 'mx-a.mail.test'))) as SmtpSession;
    expect(s1.host).toBe('mx-b.mail.test');
    expect(learned).toEqual([['mx-a.mail.test', 'mx-b.mail.test']]);
    expect(claims).toEqual(['mx-a.mail.test', 'mx-b.mail.test']);
    expect(a.connections).toBe(before.a);
    await s1.close();
    // The charged host goes first, ahead of a better preference.
    claims.length = 0;
    const s2 = (await t.open(gate(() => true, 'MX-B.mail.test'))) as SmtpSession;
    expect(s2.host).toBe('mx-b.mail.test');
    expect(claims).toEqual(['mx-b.mail.test']);
    await s2.close();
    // Every host at its cap: no connection, ERR_HOST_CAP (transient).
    const now = { a: a.connections, b: b.connections };
    const err = await openError(t.open(gate(() => false)));
    expect(err).toMatchObject({ code: 'ERR_HOST_CAP', transient: true, permanent: false, attempts: [] });
    expect(err.message).toMatch(/every host is at its connection cap/);
    expect({ a: a.connections, b: b.connections }).toEqual(now);
    // The fields are checked.
    await expect(t.open({ ...target('pref.test'), preferHost: 5 as unknown as string })).rejects.toThrow(
      /^target\.preferHost must be a string/,
    );
    await expect(t.open({ ...target('pref.test'), claimHost: 'x' as unknown as () => boolean })).rejects.toThrow(
      /^target\.claimHost must be a function/,
    );
  });

  it('uses the lowest preference first and caches the answer', async () => {
    const r = fakeResolver(zone());
    const t = transport({ resolver: r, port });
    expect(t.mxKey('pref.test')).toBeUndefined();
    const before = a.received.length;
    const s = (await t.open(target('pref.test'))) as SmtpSession;
    expect(s.host).toBe('mx-a.mail.test');
    expect(s.address).toBe('127.0.0.11');
    expect((await s.send(message(['x@pref.test']))).kind).toBe('delivered');
    expect(a.received.length).toBe(before + 1);
    await s.close();
    const key = `mx-a.mail.test:${port},mx-b.mail.test:${port}`;
    expect(s.mxKey).toBe(key);
    expect(t.mxKey('pref.test')).toBe(key);
    await (await t.open(target('pref.test'))).close();
    expect(r.calls['MX pref.test']).toBe(1);
  });

  it('gives domains with the same MX set the same key (siblings)', async () => {
    const t = transport({ resolver: fakeResolver(zone()), port });
    const s1 = await t.open(target('pref.test'));
    const s2 = await t.open(target('sibling.test'));
    expect(s1.mxKey).toBe(s2.mxKey);
    await Promise.all([s1.close(), s2.close()]);
  });

  it('falls through to the next MX when one refuses and one does not resolve', async () => {
    const t = transport({ resolver: fakeResolver(zone()), port });
    const s = (await t.open(target('down.test'))) as SmtpSession;
    expect(s.host).toBe('mx-b.mail.test');
    const before = b.received.length;
    expect((await s.send(message(['x@down.test']))).kind).toBe('delivered');
    expect(b.received.length).toBe(before + 1);
    await s.close();
  });

  it('spreads connections over MX hosts of equal preference', async () => {
    const t = transport({ resolver: fakeResolver(zone()), port });
    const hosts = new Set<string>();
    for (let i = 0; i < 24 && hosts.size < 2; i++) {
      const s = (await t.open(target('equal.test'))) as SmtpSession;
      hosts.add(s.host);
      await s.close();
    }
    expect([...hosts].sort()).toEqual(['mx-a.mail.test', 'mx-b.mail.test']);
  });

  it("falls back to the domain's own address when it has no MX (implicit MX)", async () => {
    const t = transport({ resolver: fakeResolver(zone()), port });
    const s = (await t.open(target('implicit.test'))) as SmtpSession;
    expect(s.host).toBe('implicit.test');
    expect(s.address).toBe('127.0.0.11');
    expect(s.mxKey).toBe(`implicit.test:${port}`);
    await s.close();
  });

  it('null MX, NXDOMAIN and "no MX, no address" are permanent', async () => {
    const t = transport({ resolver: fakeResolver(zone()), port });
    expect(await openError(t.open(target('nullmx.test')))).toMatchObject({
      code: 'ERR_SMTP_NULL_MX',
      permanent: true,
      transient: false,
      domain: 'nullmx.test',
    });
    expect(await openError(t.open(target('nosuch.test')))).toMatchObject({
      code: 'ERR_SMTP_NXDOMAIN',
      permanent: true,
    });
    expect(await openError(t.open(target('nothing.test')))).toMatchObject({
      code: 'ERR_SMTP_NO_ADDRESS',
      permanent: true,
    });
  });

  it('other DNS failures and timeouts are transient and not cached', async () => {
    const r = fakeResolver(zone());
    const t = transport({ resolver: r, port, timeouts: { dns: 100 } });
    expect(await openError(t.open(target('servfail.test')))).toMatchObject({
      code: 'ERR_SMTP_DNS',
      transient: true,
      permanent: false,
    });
    await openError(t.open(target('servfail.test')));
    expect(r.calls['MX servfail.test']).toBe(2);
    expect(await openError(t.open(target('hang.test')))).toMatchObject({ code: 'ERR_SMTP_DNS', transient: true });
  });

  it('fails transiently, naming the domain and hosts, when no MX host answers', async () => {
    const t = transport({ resolver: fakeResolver(zone()), port });
    const err = await openError(t.open(target('alldead.test')));
    expect(err).toMatchObject({ code: 'ERR_SMTP_CONNECT', transient: true, domain: 'alldead.test' });
    expect(err.hosts).toEqual([`mx-dead.mail.test:${port}`]);
    expect(err.message).toContain(`mx-dead.mail.test[${deadAddress}]:${port}`);
  });
});

describe('option validation', () => {
  const cases: Array<[string, unknown, ErrorConstructor, RegExp]> = [
    ['options', 42, TypeError, /^options must be an object/],
    ['unknown key', { timeout: 5 }, RangeError, /options\.timeout is not a known option/],
    ['port type', { port: '25' }, TypeError, /options\.port/],
    ['port range', { port: 70000 }, RangeError, /options\.port/],
    [
      'route domain',
      { routes: { 'bad domain': { host: 'h', port: 25 } } },
      RangeError,
      /options\.routes\["bad domain"\]/,
    ],
    ['route host', { routes: { 'd.test': { host: 5, port: 25 } } }, TypeError, /options\.routes\["d\.test"\]\.host/],
    [
      'route port',
      { routes: { 'd.test': [{ host: 'h.test', port: 0 }] } },
      RangeError,
      /options\.routes\["d\.test"\]\[0\]\.port/,
    ],
    [
      'empty route',
      { routes: { 'd.test': [] } },
      RangeError,
      /options\.routes\["d\.test"\] must list at least one host/,
    ],
    ['binding name', { bindings: { 'bad name!': {} } }, RangeError, /options\.bindings\["bad name!"\]/],
    [
      'localAddress',
      { bindings: { b: { localAddress: 'not-an-ip' } } },
      RangeError,
      /options\.bindings\["b"\]\.localAddress/,
    ],
    ['ehloName', { bindings: { b: { ehloName: 'spaces are bad' } } }, RangeError, /options\.bindings\["b"\]\.ehloName/],
    [
      'binding key',
      { bindings: { b: { source: '1.2.3.4' } } },
      RangeError,
      /options\.bindings\["b"\]\.source is not a known option/,
    ],
    ['defaultEhloName', { defaultEhloName: 7 }, TypeError, /options\.defaultEhloName/],
    ['timeout type', { timeouts: { connect: 'soon' } }, TypeError, /options\.timeouts\.connect/],
    ['timeout range', { timeouts: { greeting: 0 } }, RangeError, /options\.timeouts\.greeting/],
    ['timeout unknown', { timeouts: { read: 5 } }, RangeError, /options\.timeouts\.read is not a known option/],
    ['tls', { tls: { rejectUnauthorized: 'yes' } }, TypeError, /options\.tls\.rejectUnauthorized/],
    ['resolver', { resolver: { resolveMx: () => [] } }, TypeError, /options\.resolver\.resolve4/],
    ['mxCacheTtl', { mxCacheTtl: -1 }, RangeError, /options\.mxCacheTtl/],
    ['hostFailureRetry', { hostFailureRetry: 1.5 }, RangeError, /options\.hostFailureRetry/],
  ];
  it.each(cases)('%s', (_name, options, ctor, pattern) => {
    let err: unknown;
    try {
      new SmtpTransport(options as SmtpTransportOptions);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ctor);
    expect((err as Error).message).toMatch(pattern);
  });

  it('accepts an empty options object and documents its defaults', () => {
    expect(() => new SmtpTransport()).not.toThrow();
    expect(SMTP_DEFAULTS).toMatchObject({
      port: 25,
      mxCacheTtl: 60_000,
      hostFailureRetry: 120_000,
      timeouts: { connect: 30_000, greeting: 30_000, command: 60_000 },
      tls: { rejectUnauthorized: false, requireTLS: false },
    });
  });

  it('checks open() and send() arguments', async () => {
    const t = transport({ routes: { 'd.test': { host: '127.0.0.1', port: 1 } } });
    await expect(t.open({ domain: 'bad domain', binding: 'b', bindingSlot: 0 })).rejects.toThrow(/target\.domain/);
    await expect(t.open({ domain: 'd.test', binding: '', bindingSlot: 0 })).rejects.toThrow(/target\.binding/);
    expect(() => t.mxKey(5 as unknown as string)).toThrow(TypeError);
  });
});
