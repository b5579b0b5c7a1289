// What a restart keeps of a message's retry schedule, and what cancel() does to the store.
//
// A receiver on loopback (smtp-server) refuses every recipient with 451, so each delivery attempt
// ends as a deferral. A core with a FileSpool delivers until the messages are deferred, stops and
// closes (a restart); a new core on the same spool directory calls recover(). Before the store kept
// the retry state, every recovered message was active at once with 0 attempts: a burst against the
// receiver that had just said "later", and maxRetries counted from the start again.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, test } from 'vitest';

import { FileSpool, MailQueueCore, MemoryStore, SmtpTransport, type MessageStore } from '../../lib/index.js';
import { CoreLog, sleep, submitMany, waitFor } from '../support/harness.js';
import { startServer } from '../support/smtp_servers.js';

const tempDirs: string[] = [];
afterAll(() => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});
function spoolDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-retry-state-'));
  tempDirs.push(d);
  return d;
}

const DOMAIN = 'later.test';
const IDS = [1, 2, 3, 4, 5];

async function listed(store: MessageStore): Promise<Map<number, { attempts?: number; nextAttempt?: number }>> {
  const out = new Map<number, { attempts?: number; nextAttempt?: number }>();
  for await (const m of store.list()) out.set(m.id, { attempts: m.attempts, nextAttempt: m.nextAttempt });
  return out;
}

describe('recover() keeps the retry schedule the store recorded', () => {
  for (const kind of ['FileSpool', 'MemoryStore'] as const) {
    test(`${kind}: a deferred message waits for its next attempt after a restart, and its attempts count on`, async () => {
      const server = await startServer({ behavior: { rcpt: () => ({ code: 451, message: '4.7.1 try again later' }) } });
      const dir = spoolDir();
      const memory = new MemoryStore();
      const openStore = (): MessageStore => (kind === 'FileSpool' ? new FileSpool(dir) : memory);
      const transport = () => new SmtpTransport({ routes: { [DOMAIN]: { host: '127.0.0.1', port: server.port } } });
      // A long retry interval: without a kept schedule, the restarted core would try again at once.
      const config = (maxRetries: number) => ({
        global: { maxOutboundConnections: 2, idleTimeout: 0.1, retryInterval: 600, maxRetryInterval: 600, maxRetries },
      });
      try {
        // Before the restart: one attempt each, all deferred by 600 s.
        const a = new MailQueueCore({ config: config(5), store: openStore(), transport: transport() });
        const logA = new CoreLog(a);
        await submitMany(a, IDS, () => DOMAIN);
        a.start();
        await waitFor(() => logA.deferred.length === IDS.length, 'every message deferred once', 20_000);
        await a.stop();
        a.close();
        expect(logA.errors).toEqual([]);
        const nextAttempt = new Map(logA.deferred.map((d) => [d.event.id, d.event.nextAttempt]));
        const attemptsBefore = server.txns.length;
        expect(attemptsBefore).toBe(IDS.length);

        // What the store holds: each message with its schedule.
        await sleep(200); // the state writes run in the background: let them land
        const store = openStore();
        const states = await listed(store);
        expect([...states.keys()].sort((x, y) => x - y)).toEqual(IDS);
        for (const id of IDS)
          expect(states.get(id), `message ${id}`).toEqual({ attempts: 1, nextAttempt: nextAttempt.get(id) });

        // After the restart: delayed, not active; one attempt made; no burst at the receiver.
        const b = new MailQueueCore({ config: config(1), store, transport: transport() });
        const logB = new CoreLog(b);
        try {
          expect(await b.recover()).toBe(IDS.length);
          for (const id of IDS) {
            expect(b.message(id), `message ${id}`).toMatchObject({
              state: 'delayed',
              attempts: 1,
              nextAttempt: nextAttempt.get(id),
            });
          }
          b.start();
          await sleep(500);
          expect(server.txns.length, 'the restarted core tried again before the recorded next attempt').toBe(
            attemptsBefore,
          );

          // The operator retries one now: its second attempt is refused again, and with maxRetries 1
          // the count carried over (2 > 1) makes it a bounce, not another deferral.
          expect(b.retry(IDS[0])).toBe(true);
          await waitFor(() => logB.bounced.length === 1, 'the retried message to bounce', 20_000);
          expect(logB.bounced[0].event).toMatchObject({ id: IDS[0], reason: 'retries-exhausted' });
          expect(logB.deferred).toEqual([]);
          expect(logB.errors).toEqual([]);
        } finally {
          await b.stop();
          b.close();
        }
      } finally {
        await server.close();
      }
    }, 60_000);
  }

  test('an operator retry is recorded too: after a restart the message is due now, not at its old time', async () => {
    const dir = spoolDir();
    const a = new MailQueueCore({ store: new FileSpool(dir), transport: new SmtpTransport() });
    const now = Date.now();
    await a.submit(
      { id: 9, domain: 'x.test', envelope: { from: 'a@s.test', to: ['r@x.test'] }, nextAttempt: now + 3_600_000 },
      Buffer.from('x\r\n'),
    );
    expect(a.message(9)).toMatchObject({ state: 'delayed' });
    expect(a.retry(9)).toBe(true);
    a.close();
    await sleep(200);
    const b = new MailQueueCore({ store: new FileSpool(dir), transport: new SmtpTransport() });
    try {
      expect(await b.recover()).toBe(1);
      expect(b.message(9)).toMatchObject({ state: 'active', attempts: 0 });
    } finally {
      b.close();
    }
  });

  test('a message submitted for later keeps its time across a restart', async () => {
    const dir = spoolDir();
    const later = Date.now() + 3_600_000;
    const a = new MailQueueCore({ store: new FileSpool(dir), transport: new SmtpTransport() });
    await a.submit(
      { id: 3, domain: 'x.test', envelope: { from: 'a@s.test', to: ['r@x.test'] }, nextAttempt: later },
      Buffer.from('x\r\n'),
    );
    a.close();
    const b = new MailQueueCore({ store: new FileSpool(dir), transport: new SmtpTransport() });
    try {
      expect(await b.recover()).toBe(1);
      expect(b.message(3)).toMatchObject({ state: 'delayed', nextAttempt: later, attempts: 0 });
    } finally {
      b.close();
    }
  });

  test('enqueue({ attempts }) is checked like every other field', () => {
    const c = new MailQueueCore();
    try {
      expect(() => c.enqueue({ id: 1, domain: 'a.test', attempts: -1 })).toThrow(RangeError);
      expect(() => c.enqueue({ id: 1, domain: 'a.test', attempts: 65536 })).toThrow(/message\.attempts/);
      expect(() => c.enqueue({ id: 1, domain: 'a.test', attempts: 1.5 })).toThrow(RangeError);
      expect(() => c.enqueue({ id: 1, domain: 'a.test', attempts: '2' as unknown as number })).toThrow(TypeError);
      expect(c.stats().active).toBe(0);
      c.enqueue({ id: 1, domain: 'a.test', attempts: 65535 });
      expect(c.message(1)?.attempts).toBe(65535);
    } finally {
      c.close();
    }
  });
});

describe('cancel() with a store removes the message there too', () => {
  const message = (id: number) => ({ id, domain: 'c.test', envelope: { from: 'a@s.test', to: ['r@c.test'] } });

  test('cancel and cancelMany: recover() does not bring the messages back', async () => {
    const dir = spoolDir();
    const a = new MailQueueCore({ store: new FileSpool(dir), transport: new SmtpTransport() });
    const errors: unknown[] = [];
    a.on('error', (e) => errors.push(e));
    for (const id of [1, 2, 3, 4, 5]) await a.submit(message(id), Buffer.from(`X-Id: ${id}\r\n\r\nx\r\n`));
    expect(a.cancel(1)).toBe(true);
    expect(a.cancel(99)).toBe(false);
    // 2 and 3 cancelled; 99 unknown and 3 repeated are skipped.
    expect(a.cancelMany(Float64Array.of(2, 99, 3, 3))).toBe(2);
    await waitFor(
      () => fs.readdirSync(dir, { recursive: true }).filter((n) => String(n).endsWith('.msg')).length === 2,
      'the cancelled files to go',
    );
    a.close();
    expect(errors).toEqual([]);
    const b = new MailQueueCore({ store: new FileSpool(dir), transport: new SmtpTransport() });
    try {
      expect(await b.recover()).toBe(2);
      expect([1, 2, 3, 4, 5].filter((id) => b.message(id) !== undefined)).toEqual([4, 5]);
    } finally {
      b.close();
    }
  });

  test('a message in flight is refused (ERR_IN_FLIGHT) and stays in the store; so does a refused batch', async () => {
    const dir = spoolDir();
    const store = new FileSpool(dir);
    const a = new MailQueueCore({ store, transport: new SmtpTransport() });
    try {
      await a.submit(message(7), Buffer.from('x\r\n'));
      await a.submit(message(8), Buffer.from('x\r\n'));
      expect(a.take('c.test', 0, 1)).toEqual([7]);
      expect(() => a.cancel(7)).toThrow(expect.objectContaining({ code: 'ERR_IN_FLIGHT' }));
      expect(() => a.cancelMany(Float64Array.of(8, 7))).toThrow(expect.objectContaining({ code: 'ERR_IN_FLIGHT' }));
      expect(a.message(8)?.state).toBe('active');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await store.get(7)).toBeDefined();
      expect(await store.get(8)).toBeDefined();
    } finally {
      a.close();
    }
  });
});
