// Lifecycle edges of a started core, each once a bug: start() during a pending stop(), a pass that
// throws under the maintainer, a batch that must wake every idle connection, a retry that comes
// before the next scheduled pass, and recover() past an entry it cannot queue.
import { afterEach, expect, test } from 'vitest';

import { MailQueueCore, MemoryStore, SmtpTransport, type CoreConfig } from '../../lib/index.js';
import { sleep, testBody, testMessage, waitFor } from '../support/harness.js';
import { startServer, type TestServer } from '../support/smtp_servers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function rig(
  config: CoreConfig,
  behavior = {},
): Promise<{ core: MailQueueCore; srv: TestServer; store: MemoryStore; errors: unknown[] }> {
  const srv = await startServer({ behavior });
  cleanups.push(() => srv.close());
  const store = new MemoryStore();
  const core = new MailQueueCore({
    config,
    transport: new SmtpTransport({ routes: { 'x.test': { host: '127.0.0.1', port: srv.port } } }),
    store,
  });
  const errors: unknown[] = [];
  core.on('error', (e) => errors.push(e));
  cleanups.push(async () => {
    await core.stop();
    core.close();
  });
  return { core, srv, store, errors };
}

const quick = { idleTimeout: 5, delayedQueueScanInterval: 30, retryInterval: 0.2, maxRetryInterval: 0.2 };

test('start() while a stop() is pending leaves a working, stoppable core', async () => {
  const { core, srv } = await rig({ global: quick });
  core.start();
  await core.submit(testMessage(1, 'x.test'), testBody(1));
  await waitFor(() => srv.accepted.length === 1, 'the first delivery');
  const stopping = core.stop();
  core.start();
  await stopping;
  expect(core.started).toBe(true);
  await core.submit(testMessage(2, 'x.test'), testBody(2));
  await waitFor(() => srv.accepted.length === 2, 'a delivery after the restart');
  await core.stop();
  expect(core.started).toBe(false);
  expect(core.stats()).toMatchObject({ connections: 0, active: 0, inFlight: 0 });
});

test('a pass that throws under the maintainer is reported, and maintenance goes on', async () => {
  const srv = await startServer({});
  cleanups.push(() => srv.close());
  let broken = false;
  const core = new MailQueueCore({
    clock: () => (broken ? NaN : Date.now()),
    config: { global: { ...quick, delayedQueueScanInterval: 0.05 } },
    transport: new SmtpTransport({ routes: { 'x.test': { host: '127.0.0.1', port: srv.port } } }),
    store: new MemoryStore(),
  });
  const errors: unknown[] = [];
  core.on('error', (e) => errors.push(e));
  cleanups.push(async () => {
    await core.stop();
    core.close();
  });
  core.start();
  broken = true; // every pass now throws (the clock returns NaN)
  await waitFor(() => errors.length > 0, 'a reported pass failure', 5_000);
  expect(String((errors[0] as Error).message)).toMatch(/clock returned NaN/);
  broken = false;
  await core.submit(testMessage(1, 'x.test'), testBody(1));
  await waitFor(() => srv.accepted.length === 1, 'delivery after the clock recovered');
  expect(core.started).toBe(true);
});

test('a connectionGoal provider with an absurd goal is clipped, not thrown', async () => {
  const core = new MailQueueCore({ clock: () => 1000, config: { global: { maxOutboundConnections: 3 } } });
  cleanups.push(() => core.close());
  core.hooks.connectionGoal.registerLast((_c, _dr, _slot, _sl, goal) => {
    goal.value = 1e20;
  });
  for (let i = 1; i <= 50; i++) core.enqueue({ id: i, domain: 'x.test' });
  expect(core.maintain().opened).toBe(3);
});

test('a batch wakes as many idle connections as it brings messages', async () => {
  const { core, srv, store } = await rig({ global: { ...quick, maxOutboundConnections: 4 } }, { dataDelayMs: 40 });
  core.start();
  for (let i = 1; i <= 40; i++) await core.submit(testMessage(i, 'x.test'), testBody(i));
  await waitFor(() => srv.accepted.length === 40, 'the first 40');
  await waitFor(() => core.stats().connections === 4 && srv.open() === 4, 'four connections, idle');
  const before = srv.connections.length;
  // A second wave while all four sit idle, queued as one batch: it must wake all four, not one.
  const ids = Float64Array.from({ length: 40 }, (_, i) => 41 + i);
  for (const id of ids) await store.put(testMessage(id, 'x.test'), testBody(id));
  core.enqueueBatch('x.test', undefined, ids);
  await waitFor(() => srv.accepted.length === 80, 'the second wave');
  const busy = new Set(srv.txns.filter((t) => t.id > 40).map((t) => t.conn));
  expect(busy.size).toBeGreaterThan(1);
  expect(srv.connections.length - before).toBeLessThanOrEqual(4);
});

test('a retry due before the next scheduled pass is not held back to the scan interval', async () => {
  // One 451, then acceptance; the scan interval (30 s) would be far too late.
  const { core, srv } = await rig(
    { global: { ...quick, idleTimeout: 0.05 } },
    { data: (_id: number, attempt: number) => (attempt === 1 ? { code: 451 } : 'accept') },
  );
  core.start();
  const t0 = Date.now();
  await core.submit(testMessage(1, 'x.test'), testBody(1));
  await waitFor(() => srv.accepted.length === 1, 'the retried delivery', 10_000);
  expect(Date.now() - t0).toBeLessThan(10_000);
  await sleep(10);
});

test('recover() reports an entry it cannot queue and queues the rest', async () => {
  const store = new MemoryStore();
  await store.put(
    { id: 1, domain: 'x.test', binding: 'gone', envelope: { from: 'a@b.test', to: ['c@x.test'] } },
    testBody(1),
  );
  await store.put(testMessage(2, 'x.test'), testBody(2));
  await store.put(testMessage(3, 'x.test'), testBody(3));
  const core = new MailQueueCore({ store, clock: () => 1000 });
  cleanups.push(() => core.close());
  const errors: unknown[] = [];
  core.on('error', (e) => errors.push(e));
  expect(await core.recover()).toBe(2);
  expect(core.message(2)?.state).toBe('active');
  expect(core.message(3)?.state).toBe('active');
  expect(core.message(1)).toBeUndefined();
  expect(errors).toHaveLength(1);
  expect(String((errors[0] as Error).message)).toMatch(/message 1 was not queued/);
  expect(await store.get(1)).toBeDefined(); // left in the store for the operator
});
