// A receiver that stops reading (issue 12, point 1), counted where it matters: in the receiving
// kernel. A session the library gives up on (a transaction or command timeout, the delivery
// watchdog, a greeting or EHLO that never comes, a QUIT that gets no reply, stop()) must be reset
// (RST), not closed gracefully: a FIN queued behind megabytes of unsent body, or sent to a peer
// that never reads it, leaves the connection open at the receiver (ESTABLISHED or CLOSE_WAIT)
// after Node has reported the socket closed, the lease goes back, and the next connection opens
// while the old one still counts against the receiver's limit.
//
// Each case runs the real core (addon, SmtpTransport, MemoryStore) with maxOutboundConnections 2
// against one loopback smtp-server whose connections stall at one stage (Behavior.stall in
// test/support/smtp_servers.ts), and samples the receiver's kernel (KernelGauge: SYN_RECV,
// ESTABLISHED and CLOSE_WAIT sockets on the server's port). It asserts: the peak never exceeds 2
// (and reached 2 where two connections could open), and after core.stop() and transport.close()
// no connection is left at the receiver. Timeouts are short so each case takes a few seconds.
import { afterEach, describe, expect, test } from 'vitest';

import { MailQueueCore, MemoryStore, SmtpTransport, type CoreConfig } from '../../lib/index.js';
import type { SmtpTimeouts } from '../../lib/transport/smtp.js';
import { CoreLog, sleep, testBody, testMessage, waitFor } from '../support/harness.js';
import {
  KernelGauge,
  kernelViewAvailable,
  startServer,
  type StallStage,
  type TestServer,
} from '../support/smtp_servers.js';

const LIMIT = 2;
const MiB = 1024 * 1024;

interface Rig {
  core: MailQueueCore;
  transport: SmtpTransport;
  log: CoreLog;
  srv: TestServer;
  gauge: KernelGauge;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function rig(options: {
  stall: StallStage;
  timeouts: SmtpTimeouts;
  deliveryTimeout?: number;
  config?: CoreConfig['global'];
}): Promise<Rig> {
  const srv = await startServer({ behavior: { stall: (stage) => stage === options.stall } });
  cleanups.push(() => srv.close());
  const gauge = new KernelGauge(srv);
  cleanups.push(() => gauge.stop());
  const transport = new SmtpTransport({
    routes: { 'x.test': { host: '127.0.0.1', port: srv.port } },
    timeouts: { connect: 2000, greeting: 2000, command: 2000, message: 4000, quit: 300, ...options.timeouts },
    hostFailureRetry: 0,
  });
  cleanups.push(() => transport.close());
  const core = new MailQueueCore({
    config: {
      global: {
        maxOutboundConnections: LIMIT,
        connectionAllocationAggressiveness: 1,
        idleTimeout: 0.1,
        delayedQueueScanInterval: 0.05,
        retryInterval: 0.05,
        maxRetryInterval: 0.05,
        hostFailureRetry: 0.05,
        ...options.config,
      },
    },
    transport,
    store: new MemoryStore(),
    deliveryTimeout: options.deliveryTimeout,
  });
  const log = new CoreLog(core);
  cleanups.push(async () => {
    await core.stop();
    core.close();
  });
  return { core, transport, log, srv, gauge };
}

async function submit(r: Rig, n: number, size: number): Promise<number[]> {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  for (const id of ids) await r.core.submit(testMessage(id, 'x.test'), testBody(id, size));
  return ids;
}

/** Stops the core and closes the transport; returns how many connections the receiver still
 *  holds (after giving its kernel a moment to process the last resets). */
async function stopAndCount(r: Rig): Promise<number> {
  await r.core.stop();
  await r.transport.close();
  const deadline = Date.now() + 1000;
  while (r.gauge.sample() > 0 && Date.now() < deadline) await sleep(20);
  return r.gauge.sample();
}

function describeRig(r: Rig): unknown {
  return {
    kernel: { open: r.gauge.open, peak: r.gauge.peak },
    stats: r.core.closed ? 'closed' : r.core.stats(),
    connections: r.srv.connections.length,
    stalled: r.srv.connections.filter((c) => c.stalled).length,
  };
}

function checkBooks(r: Rig): void {
  const s = r.core.stats();
  expect(s.connections).toBe(0);
  expect(s.released).toBe(s.opened);
  expect(r.core.checkInvariants()).toBe(true);
  expect(r.log.violations).toEqual([]);
  expect(r.log.errors).toEqual([]);
}

describe.skipIf(!kernelViewAvailable)('a receiver that stops reading, counted by its kernel', () => {
  test.each([
    // nodemailer's socket timer (command) fires first: the 10 MiB body is stuck in the buffers
    [
      'the transport gives up (command timeout)',
      { timeouts: { command: 700, message: 2000 }, deliveryTimeout: 30_000 },
    ],
    // the transport would wait far longer; the core's delivery watchdog gives up on the session
    ['the delivery watchdog gives up', { timeouts: { command: 60_000, message: 60_000 }, deliveryTimeout: 1000 }],
  ] as const)(
    'stalled after 354 with large bodies, %s: at most 2 connections, none left after stop()',
    async (_, o) => {
      // One message per connection, so that both connections are stuck in DATA at once.
      const r = await rig({
        stall: 'data',
        timeouts: o.timeouts,
        deliveryTimeout: o.deliveryTimeout,
        config: { maxDeliveriesPerConnection: 1 },
      });
      await submit(r, 6, 10 * MiB);
      r.core.start();
      // Several rounds of give-ups: each one lets a new connection open.
      await waitFor(
        () => r.srv.txns.filter((t) => t.outcome === 'stalled').length >= 8,
        '8 transactions stalled after 354',
        30_000,
        () => describeRig(r),
      );
      const left = await stopAndCount(r);
      expect(r.gauge.peak, JSON.stringify(describeRig(r))).toBeLessThanOrEqual(LIMIT);
      expect(r.gauge.peak).toBe(LIMIT);
      expect(left, JSON.stringify(describeRig(r))).toBe(0);
      checkBooks(r);
      // Nothing was delivered; every give-up deferred its message.
      expect(r.srv.accepted).toEqual([]);
      expect(r.log.deferred.length).toBeGreaterThanOrEqual(6);
    },
  );

  test.each([
    ['connect', 'never greets and reads nothing'],
    ['greeting', 'greets, then never reads EHLO'],
  ] as const)('stalled at %s (%s): at most 2 connections, none left after stop()', async (stage, _what) => {
    const r = await rig({ stall: stage, timeouts: { greeting: 500, command: 500 } });
    await submit(r, 4, 0);
    r.core.start();
    await waitFor(
      () => r.srv.connections.filter((c) => c.stalled === stage).length >= 7,
      `7 connections stalled at ${stage}`,
      30_000,
      () => describeRig(r),
    );
    const left = await stopAndCount(r);
    expect(r.gauge.peak, JSON.stringify(describeRig(r))).toBeLessThanOrEqual(LIMIT);
    expect(left, JSON.stringify(describeRig(r))).toBe(0);
    checkBooks(r);
    expect(r.srv.accepted).toEqual([]);
  });

  test('QUIT gets no reply (the receiver stops reading after accepting the message): reset after timeouts.quit, none left', async () => {
    const r = await rig({ stall: 'reply', timeouts: { quit: 300 }, config: { maxDeliveriesPerConnection: 1 } });
    const ids = await submit(r, 6, 0);
    r.core.start();
    await waitFor(
      () => r.log.isDone(ids),
      'every message delivered',
      30_000,
      () => describeRig(r),
    );
    // The last sessions are still waiting for their QUIT reply.
    const left = await stopAndCount(r);
    expect(r.gauge.peak, JSON.stringify(describeRig(r))).toBeLessThanOrEqual(LIMIT);
    expect(r.gauge.peak).toBe(LIMIT);
    expect(left, JSON.stringify(describeRig(r))).toBe(0);
    checkBooks(r);
    expect(r.log.deliveredIds().sort((a, b) => a - b)).toEqual(ids);
    expect(r.srv.accepted.sort((a, b) => a - b)).toEqual(ids);
    expect(r.srv.connections.filter((c) => c.stalled === 'reply').length).toBe(ids.length);
  });
});
