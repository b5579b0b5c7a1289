// The Haraka plugin (integrations/haraka, published as haraka-plugin-mail-queue-core) in a real
// Haraka from npm (the root package's devDependency), on a loopback port, relaying to real
// smtp-server receivers on loopback (test/support/smtp_servers.ts), one per domain, each counting
// its own connections. Messages are sent by nodemailer; each carries its test id in the envelope
// sender (id-<n>@sender.test) and in an X-Id header, which the receivers check against each other.
//
// - a few hundred messages to three domains arrive exactly once each, and no receiver ever counts
//   more concurrent connections than its domain's maxOutboundConnections;
// - Haraka SIGKILLed while mail is in flight, restarted on the same spool: every message Haraka
//   accepted (250) is delivered; duplicates only for sessions the kill cut, at most one a
//   connection open at the kill;
// - SIGTERM waits for stop(): the messages in flight finish, nothing is cut, and a restart
//   delivers the rest with no duplicate;
// - SIGHUP makes deferred mail due at once (retryInterval is an hour here);
// - a recipient refused with 550 makes a DSN that reaches the sender's domain (a plain
//   smtp-server that keeps what it is sent), naming only that recipient;
// - smtp.ini nodes=2, and a mistake in mail_queue_core.ini, stop Haraka at start with the reason.
//
// The time limits leave room for `npm run test:asan`, where everything runs 3-5 times slower (the
// 300 messages took 37 s there, 7-9 s here).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { compileLib } from '../support/compiled_lib.js';
import { freePort, HarakaProcess, type HarakaConfig, writeHarakaDir } from '../support/haraka.js';
import { waitFor } from '../support/harness.js';
import { startServer, type TestServer } from '../support/smtp_servers.js';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

let libDir = '';
let env: NodeJS.ProcessEnv = {};
let outDir = '';
const cleanup: (() => unknown)[] = [];

beforeAll(() => {
  ({ outDir, env } = compileLib('haraka'));
  libDir = outDir;
  // The compiled library as the package the plugin requires by name.
  fs.writeFileSync(
    path.join(libDir, 'package.json'),
    '{ "name": "mail-queue-core", "type": "module", "main": "./lib/index.js" }\n',
  );
}, 120_000);

afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

afterAll(() => {
  if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
});

const LIMITS: Record<string, number> = { 'a.test': 1, 'b.test': 2, 'c.test': 3 };
const DOMAINS = Object.keys(LIMITS);

interface Setup {
  dir: string;
  port: number;
  servers: Map<string, TestServer>;
  config: HarakaConfig;
}

async function setup(
  global: Record<string, string | number>,
  behavior: Parameters<typeof startServer>[0] = {},
): Promise<Setup> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-haraka-'));
  cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const servers = new Map<string, TestServer>();
  for (const d of DOMAINS) {
    const s = await startServer({ name: d, ...behavior });
    servers.set(d, s);
    cleanup.push(() => s.close());
  }
  const port = await freePort();
  const config: HarakaConfig = {
    port,
    spool: path.join(dir, 'spool'),
    routes: Object.fromEntries(DOMAINS.map((d) => [d, servers.get(d)!.port])),
    global: {
      connectionAllocationAggressiveness: 1,
      idleTimeout: '200ms',
      delayedQueueScanInterval: '100ms',
      ...global,
    },
    domains: Object.fromEntries(DOMAINS.map((d) => [d, { maxOutboundConnections: LIMITS[d] }])),
  };
  writeHarakaDir(dir, libDir, config);
  return { dir, port, servers, config };
}

async function startHaraka(s: Setup): Promise<HarakaProcess> {
  const h = await HarakaProcess.start(s.dir, env);
  cleanup.push(() => h.kill());
  return h;
}

/** Sends messages 1..count round-robin over the domains through Haraka with `clients` pooled
 *  connections; resolves with the ids Haraka accepted (answered 250). */
async function send(port: number, ids: number[], clients = 6): Promise<Set<number>> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ignoreTLS: true,
    pool: true,
    maxConnections: clients,
    maxMessages: Number.POSITIVE_INFINITY,
  });
  const accepted = new Set<number>();
  try {
    await Promise.all(
      ids.map(async (id) => {
        const domain = DOMAINS[id % DOMAINS.length];
        await transport.sendMail({
          envelope: { from: `id-${id}@sender.test`, to: [`rcpt${id}@${domain}`] },
          raw: `X-Id: ${id}\r\nSubject: message ${id}\r\n\r\n.a line that starts with a dot\r\nbody of ${id}\r\n`,
        });
        accepted.add(id);
      }),
    );
  } finally {
    transport.close();
  }
  return accepted;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const acceptedTotal = (s: Setup) => [...s.servers.values()].reduce((n, srv) => n + srv.accepted.length, 0);
const countOf = (s: Setup, id: number) => s.servers.get(DOMAINS[id % DOMAINS.length])!.acceptedCount(id);
const anomalies = (s: Setup) => [...s.servers.values()].flatMap((srv) => srv.anomalies);

describe('haraka-plugin-mail-queue-core in a real Haraka', () => {
  test('300 messages to three domains: each delivered exactly once, no receiver above its limit', async () => {
    const s = await setup({ retryInterval: '1s' });
    const h = await startHaraka(s);
    const ids = range(1, 300);
    const accepted = await send(s.port, ids);
    expect(accepted.size).toBe(300);
    await waitFor(
      () => acceptedTotal(s) >= 300,
      'every message at its receiver',
      60_000,
      () => acceptedTotal(s),
    );
    await new Promise((r) => setTimeout(r, 300)); // a late duplicate would show here
    for (const id of ids) expect(countOf(s, id), `message ${id}`).toBe(1);
    expect(anomalies(s)).toEqual([]);
    for (const d of DOMAINS) {
      const srv = s.servers.get(d)!;
      expect(srv.peak(), `peak connections at ${d}`).toBeLessThanOrEqual(LIMITS[d]);
      expect(srv.peak(), `${d} was used`).toBeGreaterThanOrEqual(1);
    }
    expect(h.log).toMatch(/queued as \d+ \(a\.test\)/);
  }, 120_000);

  test('SIGKILL while mail is in flight, then a restart on the same spool: every accepted message is delivered', async () => {
    const s = await setup({ retryInterval: '500ms', maxRetryInterval: '500ms' }, { behavior: { dataDelayMs: 150 } });
    const first = await startHaraka(s);
    const ids = range(1, 150);
    expect((await send(s.port, ids)).size).toBe(150);
    await waitFor(() => acceptedTotal(s) >= 20 && inFlight(s).size > 0, 'deliveries under way', 30_000);
    // The snapshot and the kill in one synchronous step: the receivers (this process) see nothing in between.
    const cut = inFlight(s, true);
    const openAtKill = [...s.servers.values()].reduce((n, srv) => n + srv.open(), 0);
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    expect(acceptedTotal(s), 'mail was still pending at the kill').toBeLessThan(150);

    for (const srv of s.servers.values()) srv.behavior = {};
    const second = await startHaraka(s);
    expect(second.log).toMatch(/ready: [1-9]\d* message\(s\) recovered/);
    await waitFor(
      () => ids.every((id) => countOf(s, id) >= 1),
      'every accepted message delivered',
      60_000,
      () => ids.filter((id) => countOf(s, id) === 0),
    );
    await new Promise((r) => setTimeout(r, 300));
    const duplicates = ids.filter((id) => countOf(s, id) > 1);
    expect(duplicates.length).toBeLessThanOrEqual(openAtKill);
    for (const id of duplicates) {
      expect(cut.has(id), `duplicate ${id} was in a session the kill cut`).toBe(true);
      expect(countOf(s, id)).toBe(2);
    }
    // At most one a connection: a session the kill cut repeats its one unrecorded transaction.
    expect(new Set(duplicates.map((id) => cut.get(id))).size).toBe(duplicates.length);
    expect(anomalies(s)).toEqual([]);
    for (const d of DOMAINS) expect(s.servers.get(d)!.peak()).toBeLessThanOrEqual(LIMITS[d]);
  }, 120_000);

  test.each(['SIGTERM', 'SIGINT'] as const)(
    '%s waits for stop(): the messages in flight finish, none is cut, a restart delivers the rest once',
    async (signal) => {
      const s = await setup({ retryInterval: '500ms' }, { behavior: { dataDelayMs: 300 } });
      const first = await startHaraka(s);
      const ids = range(1, 60);
      expect((await send(s.port, ids)).size).toBe(60);
      await waitFor(() => acceptedTotal(s) >= 6 && inFlight(s).size > 0, 'deliveries under way', 30_000);
      first.child.kill(signal);
      const exit = await first.exited;
      expect(exit).toEqual({ code: 0, signal: null });
      // Every transaction a receiver saw ended with its 250: stop() let each finish.
      const txns = [...s.servers.values()].flatMap((srv) => srv.txns);
      expect(txns.filter((t) => t.outcome !== 'accepted').map((t) => [t.id, t.outcome])).toEqual([]);
      expect(first.log).toMatch(
        /stopping mail-queue-core, waiting for the messages in flight[\s\S]*mail-queue-core stopped/,
      );
      expect(first.log).not.toMatch(/Failed to shutdown naturally/);
      const before = acceptedTotal(s);
      expect(before, 'mail was still queued at the stop').toBeLessThan(60);

      for (const srv of s.servers.values()) srv.behavior = {};
      await startHaraka(s);
      await waitFor(() => acceptedTotal(s) >= 60, 'the rest delivered after the restart', 60_000);
      await new Promise((r) => setTimeout(r, 300));
      for (const id of ids) expect(countOf(s, id), `message ${id}`).toBe(1);
    },
    120_000,
  );

  test('SIGHUP makes deferred mail due at once', async () => {
    const { s, h, ids } = await deferredOnce(12, 0);
    await new Promise((r) => setTimeout(r, 500));
    expect(acceptedTotal(s)).toBe(0);
    h.child.kill('SIGHUP');
    await waitFor(() => acceptedTotal(s) >= 12, 'the deferred mail delivered after SIGHUP', 10_000);
    expect(h.log).toMatch(/SIGHUP: 12 deferred message\(s\) due now/);
    for (const id of ids) expect(countOf(s, id)).toBe(1);
  }, 120_000);

  test.each(['SIGINT', 'SIGTERM'] as const)(
    "nodes=1 (Haraka's default: one worker): the worker runs the core, the master's SIGHUP reaches it, %s to the master stops it",
    async (signal) => {
      const { s, h, ids } = await deferredOnce(9, 1);
      h.child.kill('SIGHUP'); // to the master, which passes a flush request to its worker
      await waitFor(() => acceptedTotal(s) >= 9, 'the deferred mail delivered after SIGHUP', 10_000);
      expect(h.log).toMatch(/flush request: 9 deferred message\(s\) due now/);
      for (const id of ids) expect(countOf(s, id)).toBe(1);
      h.child.kill(signal);
      expect(await h.exited).toEqual({ code: 0, signal: null });
      expect(h.log).toMatch(/stop request: stopping mail-queue-core[\s\S]*mail-queue-core stopped/);
      expect(h.log).not.toMatch(/Failed to shutdown naturally/);
    },
    120_000,
  );

  test('a recipient refused with 550: the sender gets a DSN (RFC 3464) through the same core; the others are delivered once', async () => {
    const s = await setup(
      {},
      {
        behavior: {
          rcpt: (_id, address) =>
            address.startsWith('nobody@') ? { code: 550, message: '5.1.1 no such user here' } : 'accept',
        },
      },
    );
    // The sender's domain: a receiver that keeps what it is sent, null reverse path included.
    const dsns: { from: string; to: string[]; raw: string }[] = [];
    const collector = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      onData(stream, session, cb) {
        let raw = '';
        stream.setEncoding('utf8');
        stream.on('data', (c: string) => {
          raw += c;
        });
        stream.on('end', () => {
          const from = session.envelope.mailFrom;
          dsns.push({ from: from ? from.address : '', to: session.envelope.rcptTo.map((r) => r.address), raw });
          cb();
        });
      },
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', () => r()));
    cleanup.push(() => new Promise<void>((r) => collector.close(() => r())));
    const port = (collector.server.address() as AddressInfo).port;
    writeHarakaDir(s.dir, libDir, { ...s.config, routes: { ...s.config.routes, 'sender.test': port } });
    await startHaraka(s);
    const client = nodemailer.createTransport({ host: '127.0.0.1', port: s.port, secure: false, ignoreTLS: true });
    await client.sendMail({
      envelope: { from: 'id-3@sender.test', to: ['rcpt3@a.test', 'nobody@a.test'] },
      raw: 'X-Id: 3\r\nSubject: message 3\r\n\r\nbody of 3\r\n',
    });
    client.close();
    await waitFor(() => dsns.length >= 1, 'the DSN at the sender', 60_000);
    await waitFor(() => countOf(s, 3) === 1, 'the accepted recipient', 10_000);
    const dsn = dsns[0];
    expect(dsn.from).toBe('');
    expect(dsn.to).toEqual(['id-3@sender.test']);
    expect(dsn.raw).toMatch(/^Content-Type: multipart\/report;[\s\S]*report-type="?delivery-status/im);
    expect(dsn.raw).toMatch(/^Final-Recipient: rfc822; ?nobody@a\.test/im);
    expect(dsn.raw).toMatch(/^Action: failed/m);
    expect(dsn.raw).toMatch(/^Status: 5\.1\.1/m);
    expect(dsn.raw).toMatch(/^Diagnostic-Code: smtp; ?550/m);
    expect(dsn.raw).not.toMatch(/^Final-Recipient: rfc822; ?rcpt3@a\.test/im);
    expect(dsn.raw).toMatch(/^X-Id: 3/m); // the original headers
    await new Promise((r) => setTimeout(r, 500));
    expect(dsns).toHaveLength(1);
    expect(countOf(s, 3)).toBe(1);
    expect(anomalies(s)).toEqual([]);
  }, 120_000);

  test("a spool that cannot be opened: relayed mail gets a 4xx (450, Haraka's DENYSOFT) with the reason", async () => {
    const s = await setup({});
    const notADir = path.join(s.dir, 'spool-is-a-file');
    fs.writeFileSync(notADir, 'not a directory\n');
    writeHarakaDir(s.dir, libDir, { ...s.config, spool: notADir });
    const h = new HarakaProcess(s.dir, env);
    cleanup.push(() => h.kill());
    await h.waitForLog(/recovery failed/, 30_000);
    const refused = await send(s.port, [1]).catch((err: { responseCode?: number; response?: string }) => err);
    expect(refused).toMatchObject({ responseCode: 450 });
    expect((refused as { response: string }).response).toMatch(/Not queued, try again later \(.+\)/);
  }, 30_000);

  test('a mistake in mail_queue_core.ini stops Haraka at start, naming the key', async () => {
    const s = await setup({});
    const ini = path.join(s.dir, 'config', 'mail_queue_core.ini');
    fs.writeFileSync(ini, fs.readFileSync(ini, 'utf8').replace('stop_timeout=30s', 'stop_timeout=soon'));
    const h = new HarakaProcess(s.dir, env);
    cleanup.push(() => h.kill());
    const exit = await Promise.race([h.exited, new Promise((r) => setTimeout(r, 20_000, 'running'))]);
    expect(exit, h.log).toEqual({ code: 1, signal: null });
    expect(h.log).toMatch(/RangeError: mail_queue_core\.ini \[main\] stop_timeout must be a duration .*got "soon"/);
  }, 30_000);

  test('smtp.ini nodes=2 stops Haraka at start and says why', async () => {
    const s = await setup({});
    writeHarakaDir(s.dir, libDir, { ...s.config, nodes: 2 });
    const h = new HarakaProcess(s.dir, env);
    cleanup.push(() => h.kill());
    const exit = await Promise.race([h.exited, new Promise((r) => setTimeout(r, 20_000, 'running'))]);
    expect(exit, h.log).toEqual({ code: 1, signal: null });
    expect(h.log).toMatch(/refuses smtp\.ini nodes=2: .*multiplied by 2.* not shared across processes/);
    expect(h.log).not.toMatch(/mail-queue-core ready/);
  }, 30_000);
});

/** Haraka (smtp.ini `nodes`) relaying `count` messages to receivers that answer 451 to every first
 *  attempt, with an hour's retryInterval; resolves once every message was deferred once. */
async function deferredOnce(count: number, nodes: number): Promise<{ s: Setup; h: HarakaProcess; ids: number[] }> {
  const s = await setup(
    { retryInterval: '1h', maxRetryInterval: '1h' },
    { behavior: { data: (_id, attempt) => (attempt === 1 ? { code: 451, message: 'try later' } : 'accept') } },
  );
  writeHarakaDir(s.dir, libDir, { ...s.config, nodes });
  const h = await startHaraka(s);
  const ids = range(1, count);
  expect((await send(s.port, ids)).size).toBe(count);
  const deferred = () => h.log.match(/deferred \d+ to [abc]\.test/g)?.length ?? 0;
  await waitFor(
    () => deferred() >= count,
    'every message deferred once',
    20_000,
    () => deferred(),
  );
  return { s, h, ids };
}

/** The ids of the last transaction of every connection still open at a receiver: with `all`, those
 *  too whose 250 was sent (the sender may not have read it: the kill can make them duplicates),
 *  and the transaction before the last when its 250 went out within RECENT_REPLY_MS (the sender
 *  starts the next transaction while the removal of the one just accepted is still being written:
 *  a kill in that moment repeats it), else only those still waiting for their reply. */
function inFlight(s: Setup, all = false): Map<number, string> {
  const ids = new Map<number, string>(); // id -> the connection (server, seq) it was cut in
  const now = Date.now();
  for (const srv of s.servers.values()) {
    for (const c of srv.connections) {
      const conn = `${c.server}#${c.seq}`;
      const last = c.txns.at(-1);
      if (c.closedAt === undefined && last && (all || last.outcome === undefined)) ids.set(last.id, conn);
      const before = c.txns.at(-2);
      if (
        all &&
        c.closedAt === undefined &&
        before?.repliedAt !== undefined &&
        now - before.repliedAt <= RECENT_REPLY_MS
      )
        ids.set(before.id, conn);
    }
  }
  return ids;
}
/** How long after its 250 a transaction still counts as cut by a kill (one store write, with room). */
const RECENT_REPLY_MS = 50;
