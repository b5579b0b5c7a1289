// What happens between two messages on a connection (docs/delivery.md, "Between two messages"):
// the next message is handed to the transport in the callback of the previous one's outcome (no
// event-loop turn, no timer), a store that reads from disk has the next message read while the
// current one is on the wire, and none of that loosens a limit or loses a message. Real SMTP
// servers on loopback count what arrives; the one hand-written transport below records when it is
// called, which is what the first test is about (the thing under test is the connection loop).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';

import {
  FileSpool,
  MailQueueCore,
  MemoryStore,
  SmtpTransport,
  type CoreConfig,
  type MessageStore,
  type OutboundMessage,
  type Outcome,
  type SendCallback,
  type Transport,
  type TransportSession,
} from '../../lib/index.js';
import { CoreLog, submitMany, testBody, testMessage, waitFor } from '../support/harness.js';
import { ConnectionWatch, startServer, type Behavior, type TestServer } from '../support/smtp_servers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

/** A FileSpool in a fresh directory; cacheBytes 0 by default, so that every load() reads the file. */
function tempSpool(cacheBytes = 0): FileSpool {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-hot-path-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return new FileSpool(dir, { onCorrupt: () => undefined, cacheBytes });
}

interface Rig {
  core: MailQueueCore;
  log: CoreLog;
  server: TestServer;
  watch: ConnectionWatch;
  store: MessageStore;
}

async function rig(store: MessageStore, config: CoreConfig, behavior: Behavior = {}): Promise<Rig> {
  const watch = new ConnectionWatch();
  const server = await startServer({ name: 's', watch, behavior });
  const transport = new SmtpTransport({
    routes: { 'h.test': { host: '127.0.0.1', port: server.port } },
    timeouts: { connect: 5000, greeting: 5000, command: 5000, message: 10_000, quit: 1000 },
  });
  const core = new MailQueueCore({ config, transport, store });
  const log = new CoreLog(core);
  cleanups.push(async () => {
    await core.stop();
    core.close();
    await transport.close();
    await server.close();
  });
  return { core, log, server, watch, store };
}

/** Every id delivered exactly once as the receiver counts it, the books closed, no lease left. */
async function deliveredOnce(r: Rig, all: number[]): Promise<void> {
  await waitFor(
    () => r.log.isDone(all),
    `${all.length} final outcomes`,
    30_000,
    () => ({ done: r.log.final.size, stats: r.core.stats() }),
  );
  expect(r.log.violations).toEqual([]);
  expect(r.log.errors).toEqual([]);
  expect(new Set(r.log.deliveredIds())).toEqual(new Set(all));
  expect(r.server.accepted.length).toBe(all.length);
  expect(new Set(r.server.accepted)).toEqual(new Set(all));
  await waitFor(() => r.core.stats().connections === 0 && r.watch.open() === 0, 'every connection closed');
  const s = r.core.stats();
  expect(s).toMatchObject({ connections: 0, active: 0, delayed: 0, inFlight: 0 });
  expect(s.released).toBe(s.opened);
  expect(r.core.checkInvariants()).toBe(true);
}

describe('between two messages', () => {
  test('the next message goes to the transport inside the previous outcome callback: no event-loop turn between them', async () => {
    // A transport that answers each message on a later turn (setImmediate) and records whether the
    // next sendCallback() came while its previous callback was still running.
    const calls: { id: number; insideCallback: boolean }[] = [];
    let inCallback = false;
    const transport: Transport = {
      async open(): Promise<TransportSession> {
        let busy = false;
        return {
          usable: true,
          send(): Promise<Outcome> {
            throw new Error('the core uses sendCallback() when a session has it');
          },
          sendCallback(m: OutboundMessage, done: SendCallback): void {
            expect(busy).toBe(false);
            busy = true;
            calls.push({ id: m.id, insideCallback: inCallback });
            setImmediate(() => {
              busy = false;
              inCallback = true;
              try {
                done(null, { kind: 'delivered', response: '250 ok' });
              } finally {
                inCallback = false;
              }
            });
          },
          async close() {},
        };
      },
    };
    const store = new MemoryStore();
    const core = new MailQueueCore({
      config: { global: { maxOutboundConnections: 1, idleTimeout: 0.2 } },
      transport,
      store,
    });
    const log = new CoreLog(core);
    cleanups.push(async () => {
      await core.stop();
      core.close();
    });
    const all = ids(1, 40);
    await submitMany(core, all, () => 'c.test');
    core.start();
    await waitFor(() => log.isDone(all), '40 deliveries');
    expect(log.deliveredIds().sort((a, b) => a - b)).toEqual(all);
    // One connection carried them in queue order; every message after the first was started from
    // within the outcome callback of the one before it (runs of 8 included: the next run is taken
    // there too).
    expect(calls.map((c) => c.id)).toEqual(all);
    expect(calls.slice(1).every((c) => c.insideCallback)).toBe(true);
    expect(store.size).toBe(0);
  });

  test('over SMTP, one connection: every message on the same session, each accepted once, the store emptied', async () => {
    const r = await rig(new MemoryStore(), { global: { maxOutboundConnections: 1, idleTimeout: 0.2 } });
    const all = ids(1, 60);
    await submitMany(r.core, all, () => 'h.test');
    r.core.start();
    await deliveredOnce(r, all);
    expect(r.server.connections.length).toBe(1);
    expect(r.server.accepted).toEqual(all);
    expect((r.store as MemoryStore).size).toBe(0);
  });

  test('without a listener for "delivered", deliveries are still counted (the event is just not made)', async () => {
    const r = await rig(new MemoryStore(), { global: { maxOutboundConnections: 2, idleTimeout: 0.2 } });
    r.core.removeAllListeners('delivered'); // CoreLog's
    const all = ids(1, 20);
    await submitMany(r.core, all, () => 'h.test');
    r.core.start();
    await waitFor(() => r.core.domainView('h.test').delivered === all.length, '20 deliveries counted');
    expect(r.core.summary()).toMatchObject({ delivered: 20, deferred: 0, bounced: 0 });
    expect(new Set(r.server.accepted)).toEqual(new Set(all));
  });

  test('a store without load() is read with get() and body()', async () => {
    const inner = new MemoryStore();
    const plain: MessageStore = {
      put: (m, b) => inner.put(m, b),
      get: (id) => inner.get(id),
      body: (id) => inner.body(id),
      remove: (id) => inner.remove(id),
      list: () => inner.list(),
    };
    const r = await rig(plain, { global: { maxOutboundConnections: 2, idleTimeout: 0.2 } });
    const all = ids(1, 30);
    await submitMany(r.core, all, () => 'h.test');
    r.core.start();
    await deliveredOnce(r, all);
    expect(inner.size).toBe(0);
  });
});

describe('a FileSpool: the next message read while the current one is on the wire', () => {
  test('maxDeliveriesPerConnection is held at the receiver although the next run is taken early; every message once, the spool emptied', async () => {
    const spool = tempSpool();
    const r = await rig(spool, {
      global: { maxOutboundConnections: 2, maxDeliveriesPerConnection: 5, idleTimeout: 0.2 },
    });
    const all = ids(1, 53);
    await submitMany(r.core, all, () => 'h.test');
    r.core.start();
    await deliveredOnce(r, all);
    for (const c of r.server.connections) expect(c.txns.length).toBeLessThanOrEqual(5);
    expect(r.server.peak()).toBeLessThanOrEqual(2);
    expect(r.server.connections.length).toBeGreaterThanOrEqual(Math.ceil(all.length / 5));
    for await (const m of spool.list()) throw new Error(`message ${m.id} left in the spool`);
  });

  test('drops in the middle of DATA: messages read ahead go back to the queue, each message ends delivered once', async () => {
    const spool = tempSpool();
    const dropped = new Set<number>();
    const r = await rig(
      spool,
      {
        global: {
          maxOutboundConnections: 2,
          idleTimeout: 0.2,
          retryInterval: 0.05,
          maxRetryInterval: 0.05,
          delayedQueueScanInterval: 0.05,
        },
      },
      {
        // The first attempt of every 7th message: the server drops the connection mid-DATA.
        data: (id, attempt) => {
          if (id % 7 === 0 && attempt === 1) {
            dropped.add(id);
            return 'drop';
          }
          return 'accept';
        },
      },
    );
    const all = ids(1, 40);
    await submitMany(r.core, all, () => 'h.test');
    r.core.start();
    await deliveredOnce(r, all);
    expect([...dropped].sort((a, b) => a - b)).toEqual([7, 14, 21, 28, 35]);
    for (const id of dropped) expect(r.log.deferralsOf(id)).toHaveLength(1);
    // Nothing else was deferred: what the broken connections had reserved or read ahead went back.
    expect(r.log.deferred.map((d) => d.event.id).sort((a, b) => a - b)).toEqual([7, 14, 21, 28, 35]);
    for await (const m of spool.list()) throw new Error(`message ${m.id} left in the spool`);
  });

  test('a message whose file fails its check when read: a failure for that message alone (its session closed), the others delivered once', async () => {
    const spool = tempSpool();
    const r = await rig(spool, {
      global: { maxOutboundConnections: 1, idleTimeout: 0.2, maxRetries: 0, delayedQueueScanInterval: 0.05 },
    });
    const all = ids(1, 12);
    await submitMany(r.core, all, () => 'h.test');
    const file = spool.pathOf(5);
    const data = fs.readFileSync(file);
    data[data.length - 3] ^= 0xff; // the body no longer matches its CRC-32
    fs.writeFileSync(file, data);
    r.core.start();
    await waitFor(() => r.log.isDone(all), '12 final outcomes');
    expect(r.log.bouncesOf(5)).toEqual([expect.objectContaining({ id: 5, reason: 'retries-exhausted' })]);
    expect(r.log.bouncesOf(5)[0].response).toMatch(/delivery failed: .*crc32/);
    const rest = all.filter((id) => id !== 5);
    expect(new Set(r.log.deliveredIds())).toEqual(new Set(rest));
    expect(r.server.accepted.sort((a, b) => a - b)).toEqual(rest);
    expect(r.log.errors).toEqual([]);
    // The session that was to carry it was closed; a new connection carried the rest.
    expect(r.server.connections.length).toBe(2);
    await waitFor(() => r.core.stats().connections === 0 && r.watch.open() === 0, 'every connection closed');
    for await (const m of spool.list()) throw new Error(`message ${m.id} left in the spool`);
  });

  test('load() gives the envelope and the body as stored; unknown: undefined; a damaged body rejects', async () => {
    const spool = tempSpool();
    await spool.put(
      { id: 5, domain: 'h.test', envelope: { from: 'a@x.test', to: ['b@h.test'] } },
      Buffer.from('hi\r\n'),
    );
    await expect(spool.load(5)).resolves.toEqual({
      envelope: { from: 'a@x.test', to: ['b@h.test'] },
      body: Buffer.from('hi\r\n'),
    });
    await expect(spool.load(6)).resolves.toBeUndefined();
    const file = spool.pathOf(5);
    const data = fs.readFileSync(file);
    data[data.length - 2] ^= 0xff;
    fs.writeFileSync(file, data);
    await expect(spool.load(5)).rejects.toMatchObject({ code: 'ERR_SPOOL_CORRUPT' });
  });

  test('with its cache: load() answers at once from memory for messages this instance stored; remove() drops them', async () => {
    const spool = tempSpool(10_000);
    const stored = (i: number) => ({ envelope: testMessage(i, 'h.test').envelope, body: testBody(i, 2000) });
    for (let i = 1; i <= 6; i++) await spool.put(testMessage(i, 'h.test'), testBody(i, 2000));
    // 6 x ~2200 bytes do not fit in 10,000: the oldest went first.
    for (const i of [1, 2]) expect(spool.load(i)).toBeInstanceOf(Promise);
    for (const i of [3, 4, 5, 6]) {
      const m = spool.load(i);
      expect(m).not.toBeInstanceOf(Promise);
      expect(m).toEqual(stored(i));
    }
    // Read from the file, the same message.
    await expect(spool.load(1)).resolves.toEqual(stored(1));
    await spool.remove(4);
    await expect(spool.load(4)).resolves.toBeUndefined();
    // A message stored, then delivered through a started core from the cache: once, the spool emptied.
    const r = await rig(spool, { global: { maxOutboundConnections: 1, idleTimeout: 0.2 } });
    const all = ids(10, 5);
    await submitMany(r.core, all, () => 'h.test');
    for (const id of all) expect(spool.load(id)).not.toBeInstanceOf(Promise);
    await r.core.recover(); // the earlier puts (1, 2, 3, 5, 6) come in as well
    r.core.start();
    await deliveredOnce(r, [1, 2, 3, 5, 6, ...all]);
    for await (const m of spool.list()) throw new Error(`message ${m.id} left in the spool`);
  });
});
