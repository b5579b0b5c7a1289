// Outcomes per recipient (issue 15, gaps 4 and 5), against a real SMTP receiver on loopback that
// refuses some recipients at RCPT TO: 'perm…' with 550 5.1.1, 'temp…' with 451 4.7.1 while
// `refuseTemp` is set, every other one accepted. A message to accepted, 5xx and 4xx recipients is
// delivered to the accepted ones, bounces for the 5xx ones (one event with each recipient's code
// and diagnostic) and is retried to the 4xx ones alone, also after a restart (FileSpool, LogSpool:
// the narrowed list is in the store). The 'bounce' event carries the envelope and a body reader
// that works until its listeners have run, and buildDsn() makes an RFC 3464 report of it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, afterEach, describe, expect, test, vi } from 'vitest';

import {
  BOUNCE_LISTENER_TIMEOUT_MS,
  type Bounce,
  buildDsn,
  type DeferredEvent,
  type DeliveredEvent,
  FileSpool,
  LogSpool,
  MailQueueCore,
  MemoryStore,
  type MessageStore,
  SmtpTransport,
} from '../../lib/index.js';
import { parseDsn } from '../support/dsn_parts.js';
import { sleep, testBody, waitFor } from '../support/harness.js';
import { startServer, type TestServer } from '../support/smtp_servers.js';

const D = 'rcpt.test';
const FROM = 'id-1@sender.test';
const ALL = [`ok1@${D}`, `perm@${D}`, `temp@${D}`, `ok2@${D}`];

const tempDirs: string[] = [];
afterAll(() => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});
function spoolDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-rcpt-'));
  tempDirs.push(d);
  return d;
}

let refuseTemp = true;
let server: TestServer | undefined;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await server?.close();
  server = undefined;
  refuseTemp = true;
});

async function receiver(): Promise<TestServer> {
  server = await startServer({
    behavior: {
      rcpt: (_id, address) => {
        if (address.startsWith('perm')) return { code: 550, message: '5.1.1 no such user here' };
        if (address.startsWith('temp') && refuseTemp) return { code: 451, message: '4.7.1 greylisted, try later' };
        return 'accept';
      },
    },
  });
  return server;
}

/** A started core on `store`, delivering to the receiver, with its events recorded. */
function startCore(store: MessageStore, port: number, maxRetries: number | 'auto' = 'auto') {
  const core = new MailQueueCore({
    // A long retry interval: the retry comes only when the test asks for it (retry(id)).
    config: { global: { idleTimeout: 0.1, retryInterval: 600, maxRetryInterval: 600, maxRetries } },
    store,
    transport: new SmtpTransport({ routes: { [D]: { host: '127.0.0.1', port } } }),
  });
  const log = { delivered: [] as DeliveredEvent[], deferred: [] as DeferredEvent[], bounced: [] as Bounce[] };
  const errors: unknown[] = [];
  core.on('delivered', (e) => log.delivered.push(e));
  core.on('deferred', (e) => log.deferred.push(e));
  core.on('bounce', (e) => {
    log.bounced.push(e);
  });
  core.on('error', (e) => errors.push(e));
  cleanups.push(async () => {
    await core.stop();
    core.close();
  });
  return { core, log, errors };
}

/** The recipients the receiver took in each of its transactions for id 1, in order. */
function rcptsPerAttempt(s: TestServer): string[][] {
  return s.txns.filter((t) => t.id === 1).map((t) => [...t.rcpt]);
}

describe('a message some recipients accept, some refuse 5xx and some 4xx', () => {
  test('the accepted are done, the 5xx bounce in one event, the 4xx are retried alone', async () => {
    const s = await receiver();
    const store = new MemoryStore();
    const { core, log, errors } = startCore(store, s.port);
    await core.submit({ id: 1, domain: D, envelope: { from: FROM, to: ALL } }, testBody(1));
    core.start();
    await waitFor(() => log.deferred.length === 1, 'the deferral of the 4xx recipient');

    expect(log.delivered).toEqual([expect.objectContaining({ id: 1, recipients: [`ok1@${D}`, `ok2@${D}`] })]);
    expect(log.bounced).toHaveLength(1);
    expect(log.bounced[0]).toMatchObject({
      id: 1,
      domain: D,
      reason: 'permanent',
      code: 550,
      envelope: { from: FROM, to: ALL },
      recipients: [
        { recipient: `perm@${D}`, code: 550, diagnostic: expect.stringMatching(/^550 5\.1\.1 no such user/) },
      ],
      response: `<perm@${D}> 550 5.1.1 no such user here`,
    });
    expect(log.deferred[0]).toMatchObject({ id: 1, code: 451, recipients: [`temp@${D}`] });
    expect(log.deferred[0].response).toMatch(/4\.7\.1 greylisted/);
    // The store holds the narrowed list before the message waits for its retry.
    expect((await store.get(1))?.envelope).toEqual({ from: FROM, to: [`temp@${D}`] });
    expect(core.message(1)).toMatchObject({ state: 'delayed', attempts: 1 });

    refuseTemp = false;
    expect(core.retry(1)).toBe(true);
    await waitFor(() => log.delivered.length === 2, 'the retry to the 4xx recipient');
    expect(log.delivered[1]).toMatchObject({ id: 1, recipients: [`temp@${D}`] });
    expect(rcptsPerAttempt(s)).toEqual([[`ok1@${D}`, `ok2@${D}`], [`temp@${D}`]]);
    expect(s.accepted).toEqual([1, 1]);
    expect(log.bounced).toHaveLength(1);
    expect(log.deferred).toHaveLength(1);
    expect(store.size).toBe(0);
    expect(core.message(1)).toBeUndefined();
    expect(errors).toEqual([]);
  }, 30_000);

  test('every recipient refused, some 5xx and some 4xx: the 5xx bounce, the 4xx are retried alone', async () => {
    const s = await receiver();
    const store = new MemoryStore();
    const { core, log, errors } = startCore(store, s.port);
    const to = [`perm@${D}`, `temp@${D}`, `perm2@${D}`];
    await core.submit({ id: 1, domain: D, envelope: { from: FROM, to } }, testBody(1));
    core.start();
    await waitFor(() => log.deferred.length === 1, 'the deferral of the 4xx recipient');
    expect(log.delivered).toEqual([]);
    expect(log.bounced).toHaveLength(1);
    expect(log.bounced[0].envelope).toEqual({ from: FROM, to });
    expect(log.bounced[0].recipients?.map((r) => [r.recipient, r.code])).toEqual([
      [`perm@${D}`, 550],
      [`perm2@${D}`, 550],
    ]);
    expect(log.deferred[0].recipients).toEqual([`temp@${D}`]);
    expect((await store.get(1))?.envelope.to).toEqual([`temp@${D}`]);
    expect(errors).toEqual([]);
  }, 30_000);
});

test('with no retry left, the 4xx recipients bounce with the 5xx ones, in one event; the accepted are done; the store forgets it', async () => {
  const s = await receiver();
  const store = new MemoryStore();
  const { core, log, errors } = startCore(store, s.port, 0);
  await core.submit({ id: 1, domain: D, envelope: { from: FROM, to: ALL } }, testBody(1));
  core.start();
  await waitFor(() => log.bounced.length === 1 && store.size === 0, 'the bounce and the removal');
  expect(log.delivered).toEqual([expect.objectContaining({ id: 1, recipients: [`ok1@${D}`, `ok2@${D}`] })]);
  expect(log.bounced[0]).toMatchObject({ reason: 'permanent', envelope: { from: FROM, to: ALL } });
  expect(log.bounced[0].recipients?.map((r) => [r.recipient, r.code])).toEqual([
    [`perm@${D}`, 550],
    [`temp@${D}`, 451],
  ]);
  expect(log.deferred).toEqual([]);
  expect(core.message(1)).toBeUndefined();
  expect(rcptsPerAttempt(s)).toEqual([[`ok1@${D}`, `ok2@${D}`]]);
  expect(errors).toEqual([]);
}, 30_000);

describe.each([
  ['FileSpool', (dir: string): MessageStore => new FileSpool(dir)],
  ['LogSpool', (dir: string): MessageStore => new LogSpool(dir)],
])('%s: a restart after a partial outcome', (_name, open) => {
  test('recover() brings the message back with the 4xx recipient alone: the accepted are not sent again', async () => {
    const s = await receiver();
    const dir = spoolDir();
    const storeA = open(dir);
    const a = startCore(storeA, s.port);
    await a.core.submit({ id: 1, domain: D, envelope: { from: FROM, to: ALL } }, testBody(1));
    a.core.start();
    await waitFor(() => a.log.deferred.length === 1, 'the deferral of the 4xx recipient');
    await a.core.stop();
    a.core.close();
    await storeA.close?.();
    expect(a.errors).toEqual([]);

    const storeB = open(dir);
    const b = startCore(storeB, s.port);
    expect(await b.core.recover()).toBe(1);
    expect(b.core.message(1)).toMatchObject({ state: 'delayed', attempts: 1 });
    const stored = await storeB.get(1);
    expect(stored?.envelope).toEqual({ from: FROM, to: [`temp@${D}`] });
    expect(await storeB.body(1)).toEqual(testBody(1));
    refuseTemp = false;
    b.core.start();
    expect(b.core.retry(1)).toBe(true);
    await waitFor(() => b.log.delivered.length === 1, 'the retry after the restart');
    expect(b.log.delivered[0].recipients).toEqual([`temp@${D}`]);
    expect(rcptsPerAttempt(s)).toEqual([[`ok1@${D}`, `ok2@${D}`], [`temp@${D}`]]);
    expect(b.log.bounced).toEqual([]);
    await waitFor(() => b.core.stats().inFlight === 0, 'the removal');
    expect(await storeB.get(1)).toBeUndefined();
    await b.core.stop();
    await storeB.close?.();
    expect(b.errors).toEqual([]);
  }, 30_000);
});

describe("the 'bounce' event: envelope, recipients, a readable entry, a DSN", () => {
  test('async listeners read the body after a pause and build a DSN; the store forgets the message only after them; a listener that throws is an error event', async () => {
    const s = await receiver();
    const dir = spoolDir();
    const store = new FileSpool(dir, { cacheBytes: 0 });
    const { core, errors } = startCore(store, s.port);
    const dsns: Buffer[] = [];
    let storedDuringListener: boolean | undefined;
    core.on('bounce', async (e) => {
      await sleep(150); // an async listener: the entry must still be there
      storedDuringListener = (await store.get(e.id)) !== undefined;
      dsns.push((await buildDsn(e, { reportingMta: 'mta.sender.test', arrivalDate: Date.UTC(2026, 11, 7) })).message);
    });
    core.on('bounce', () => {
      throw new Error('a broken listener');
    });
    const to = [`perm@${D}`, `perm2@${D}`];
    await core.submit({ id: 1, domain: D, envelope: { from: FROM, to } }, testBody(1));
    core.start();
    await waitFor(() => dsns.length === 1, 'the DSN');
    expect(storedDuringListener).toBe(true);
    await waitFor(() => !fs.existsSync(store.pathOf(1)), 'the removal after the listeners');
    expect(errors).toEqual([expect.objectContaining({ message: 'a broken listener' })]);
    expect(core.message(1)).toBeUndefined();

    const { parsed: dsn, type, status: blocks, headers } = await parseDsn(dsns[0]);
    expect(type.value).toBe('multipart/report');
    expect(type.params['report-type']).toBe('delivery-status');
    expect(dsn.to).toMatchObject({ value: [{ address: FROM }] });
    expect(dsn.headers.get('auto-submitted')).toBe('auto-replied');
    expect(dsn.text).toContain(`<perm@${D}>: 550 5.1.1 no such user here`);
    expect(headers).toContain('Subject: message 1');
    expect(headers).not.toContain('The quick brown fox');
    // The per-message block, then one block per recipient (RFC 3464 §2.1).
    expect(blocks).toEqual([
      { 'Reporting-MTA': 'dns; mta.sender.test', 'Arrival-Date': 'Mon, 07 Dec 2026 00:00:00 GMT' },
      ...to.map((r) => ({
        'Final-Recipient': `rfc822; ${r}`,
        Action: 'failed',
        Status: '5.1.1',
        'Diagnostic-Code': 'smtp; 550 5.1.1 no such user here',
      })),
    ]);
    await core.stop();
    await store.close();
  }, 30_000);

  test('fail() of 300 messages: every bounce has its envelope, read from the store at most 64 at a time', async () => {
    class CountingStore extends MemoryStore {
      reading = 0;
      most = 0;
      override async get(id: number) {
        this.most = Math.max(this.most, ++this.reading);
        await sleep(2);
        try {
          return await super.get(id);
        } finally {
          this.reading--;
        }
      }
    }
    const store = new CountingStore();
    const core = new MailQueueCore({ store });
    cleanups.push(() => core.close());
    const bounces: Bounce[] = [];
    core.on('bounce', (e) => {
      bounces.push(e);
    });
    for (let id = 1; id <= 300; id++)
      await core.submit({ id, domain: D, envelope: { from: FROM, to: [`r${id}@${D}`] } }, testBody(id));
    expect(core.fail(D)).toBe(300);
    await waitFor(() => bounces.length === 300 && store.size === 0, 'the bounces and the removals');
    expect(store.most).toBe(64);
    for (const b of bounces) expect(b.envelope, `id ${b.id}`).toEqual({ from: FROM, to: [`r${b.id}@${D}`] });
  });

  test('a listener whose promise never settles holds the removal for BOUNCE_LISTENER_TIMEOUT_MS, then an error event', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    cleanups.push(() => {
      vi.useRealTimers();
    });
    const store = new MemoryStore();
    const core = new MailQueueCore({ store });
    cleanups.push(() => core.close());
    const errors: Error[] = [];
    core.on('error', (e) => errors.push(e));
    let called = 0;
    core.on('bounce', () => {
      called++;
      return new Promise<void>(() => {}); // never settles
    });
    await core.submit({ id: 3, domain: D, envelope: { from: FROM, to: ['a@x.test'] } }, testBody(3));
    expect(core.fail(D)).toBe(1);
    await vi.advanceTimersByTimeAsync(BOUNCE_LISTENER_TIMEOUT_MS - 1);
    expect(called).toBe(1);
    expect(store.size).toBe(1); // still readable: the listener has not finished
    await vi.advanceTimersByTimeAsync(1);
    expect(store.size).toBe(0);
    expect(errors.map((e) => e.message)).toEqual([
      `'bounce' listeners did not settle within ${BOUNCE_LISTENER_TIMEOUT_MS} ms; went on without them`,
    ]);
  });

  test('an expiry bounce carries the envelope read from the store, with every recipient', async () => {
    const store = new MemoryStore();
    const core = new MailQueueCore({ store });
    cleanups.push(() => core.close());
    const bounces: Bounce[] = [];
    core.on('bounce', (e) => {
      bounces.push(e);
    });
    await core.submit(
      { id: 7, domain: D, envelope: { from: FROM, to: ['a@x.test', 'b@x.test'] }, expiresAt: Date.now() - 1 },
      testBody(7),
    );
    await waitFor(() => bounces.length === 1 && store.size === 0, 'the bounce and the removal');
    expect(bounces[0]).toMatchObject({
      id: 7,
      reason: 'expired',
      envelope: { from: FROM, to: ['a@x.test', 'b@x.test'] },
      recipients: [
        { recipient: 'a@x.test', diagnostic: 'the message expired before it could be delivered' },
        { recipient: 'b@x.test', diagnostic: 'the message expired before it could be delivered' },
      ],
    });
    const { status: blocks } = await parseDsn(
      (await buildDsn(bounces[0], { reportingMta: 'm.test', headers: 'X: y\r\n' })).message,
    );
    expect(blocks.slice(1).map((b) => [b['Final-Recipient'], b.Status, b['Diagnostic-Code']])).toEqual([
      ['rfc822; a@x.test', '4.4.7', undefined],
      ['rfc822; b@x.test', '4.4.7', undefined],
    ]);
  });
});
