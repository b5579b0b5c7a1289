// Feedback concurrency (lib/policies/feedback_concurrency.ts): the window arithmetic against the
// core's own passes (the grants a maintain() makes), then a real receiver with a hidden connection
// limit that answers 421 beyond it, where the policy must meet fewer refusals than a static cap.
import { describe, expect, test } from 'vitest';

import { feedbackConcurrency, MailQueueCore, MemoryStore, responseRules, SmtpTransport } from '../../lib/index.js';
import { submitMany, waitFor } from '../support/harness.js';
import { startServer } from '../support/smtp_servers.js';
import { tornDownAfterEach } from '../support/teardown.js';

const T0 = 1_700_000_000_000;
const { cores, servers } = tornDownAfterEach();

/** A core on a simulated clock with `n` messages queued for d.test, and no transport. */
function queued(n: number): { core: MailQueueCore; clock: { t: number } } {
  const clock = { t: T0 };
  const core = new MailQueueCore({
    bindings: ['a'],
    config: { global: { maxOutboundConnections: 20, connectionAllocationAggressiveness: 1 } },
    clock: () => clock.t,
  });
  cores.push(core);
  for (let i = 1; i <= n; i++) core.enqueue({ id: i, domain: 'd.test', binding: 'a' });
  return { core, clock };
}

/** Connections the next pass opens for d.test (they are released again at once). */
function opens(core: MailQueueCore): number {
  const r = core.maintain();
  for (const g of r.grants) core.releaseConnection(g.connectionId);
  return r.grants.length;
}

describe('the window', () => {
  test('starts at initial, moves by whole connections as feedback adds up, stays within 1..max', () => {
    const { core } = queued(500);
    expect(opens(core)).toBe(20); // the default goal, without the policy
    const p = feedbackConcurrency(core, {
      initial: 5,
      max: 9,
      failedCohortLimit: 2,
      positiveFeedback: (w) => 1 / w,
      negativeFeedback: (w) => 1 / w,
    });
    expect(opens(core)).toBe(5);
    const opened = () => core.emit('connectionOpened', { connectionId: 1, domain: 'd.test', binding: 'a' });
    // 1/window a connection: 4 at window 5 leave it 5, the fifth makes it 6; then 6 at 6 make it 7.
    for (let i = 0; i < 4; i++) opened();
    expect(p.window('d.test')).toBe(5);
    opened();
    expect(p.window('d.test')).toBe(6);
    for (let i = 0; i < 6; i++) opened();
    expect(p.window('d.test')).toBe(7);
    expect(opens(core)).toBe(7);
    for (let i = 0; i < 200; i++) opened();
    expect(p.window('d.test')).toBe(9); // max
    expect(opens(core)).toBe(9);
    // A 421 in a session is 1/9 of a connection at 9: the window moves once 9 have added up.
    const refused = () =>
      core.emit('deferred', { id: 2, domain: 'd.test', binding: 'a', nextAttempt: T0, code: 421, response: 'busy' });
    for (let i = 0; i < 8; i++) refused();
    expect(p.window('d.test')).toBe(9);
    refused();
    expect(p.window('d.test')).toBe(8);
    expect(opens(core)).toBe(8);
    // A 4xx to one message is not the receiver pushing back on the connection.
    for (let i = 0; i < 20; i++)
      core.emit('deferred', { id: 3, domain: 'd.test', binding: 'a', nextAttempt: T0, code: 452, response: 'full' });
    expect(p.window('d.test')).toBe(8);
    p.detach();
    expect(opens(core)).toBe(20);
  });

  test("by default (Postfix's feedback of 1) each connection opened adds one and each refused takes one", () => {
    const { core } = queued(500);
    const p = feedbackConcurrency(core);
    expect(p.window('d.test')).toBeUndefined();
    expect(opens(core)).toBe(5);
    for (let i = 0; i < 3; i++) core.emit('connectionOpened', { connectionId: i, domain: 'd.test', binding: 'a' });
    expect(p.window('d.test')).toBe(8);
    core.emit('connectionFailed', { connectionId: 9, domain: 'd.test', binding: 'a', reason: '421', permanent: false });
    expect(p.window('d.test')).toBe(7);
    // A domain that cannot receive mail at all bounces; that is not about concurrency.
    core.emit('connectionFailed', {
      connectionId: 9,
      domain: 'd.test',
      binding: 'a',
      reason: 'null MX',
      permanent: true,
    });
    expect(p.window('d.test')).toBe(7);
    expect(opens(core)).toBe(7);
    expect(p.windows()).toEqual([{ domain: 'd.test', binding: 'a', window: 7, failures: 1 }]);
  });

  test('a window of failures in a row makes the destination dead for deadBackoffMs, then one connection tries it', () => {
    const { core, clock } = queued(500);
    const p = feedbackConcurrency(core, { initial: 3, deadBackoffMs: 60_000 });
    const failed = () =>
      core.emit('connectionFailed', {
        connectionId: 1,
        domain: 'd.test',
        binding: 'a',
        reason: 'connect ECONNREFUSED',
        permanent: false,
      });
    failed(); // 3 -> 2
    failed(); // 2 failures in a row = a whole window (2): dead
    expect(p.windows()[0].deadUntil).toBe(T0 + 60_000);
    expect(opens(core)).toBe(0);
    clock.t += 59_999;
    expect(opens(core)).toBe(0);
    clock.t += 1;
    expect(opens(core)).toBe(1); // the trial connection
    expect(p.windows()[0].deadUntil).toBeUndefined();
    failed(); // the trial failed: dead again
    expect(opens(core)).toBe(0);
    clock.t += 60_000;
    expect(opens(core)).toBe(1);
    core.emit('connectionOpened', { connectionId: 7, domain: 'd.test', binding: 'a' });
    expect(p.window('d.test')).toBe(3); // alive: back to initial
    expect(opens(core)).toBe(3);
  });

  test('bad options are refused, naming the option', () => {
    const { core } = queued(1);
    expect(() => feedbackConcurrency(core, { initial: 0 })).toThrow(/options\.initial .*1 to 65535, got 0/);
    expect(() => feedbackConcurrency(core, { initial: 30, max: 20 })).toThrow(/options\.initial \(30\).*options\.max/);
    expect(() => feedbackConcurrency(core, { deadBackoffMs: -1 })).toThrow(RangeError);
    expect(() => feedbackConcurrency(core, { deadBackoffMs: '5' as never })).toThrow(TypeError);
    expect(() => feedbackConcurrency(core, { positiveFeedback: 1 as never })).toThrow(
      /options\.positiveFeedback must be a function/,
    );
    expect(() => feedbackConcurrency(core, { windowSize: 3 } as never)).toThrow(/unknown option "windowSize"/);
    expect(() => feedbackConcurrency(core, null as never)).toThrow(TypeError);
    expect(opens(core)).toBe(1); // nothing was attached
  });
});

/** Delivers 300 messages to a receiver that takes 7 connections and answers 421 to the rest;
 *  returns how many connections it refused, and the policy's window at the end. */
async function against7(withPolicy: boolean): Promise<{ refused: number; window?: number }> {
  const srv = await startServer({ behavior: { maxConnections: 7, dataDelayMs: 20 } });
  servers.push(srv);
  const core = new MailQueueCore({
    bindings: ['a'],
    config: {
      global: {
        maxOutboundConnections: 20,
        connectionAllocationAggressiveness: 1,
        retryInterval: 0.05,
        maxRetryInterval: 0.05,
        hostFailureRetry: 0.2,
        idleTimeout: 0.2,
        delayedQueueScanInterval: 0.05,
        maxRetries: 1000,
      },
    },
    transport: new SmtpTransport({ routes: { 'd.test': [{ host: srv.host, port: srv.port }] } }),
    store: new MemoryStore(),
  });
  cores.push(core);
  const policy = withPolicy ? feedbackConcurrency(core, { initial: 5, max: 20 }) : undefined;
  const ids = Array.from({ length: 300 }, (_, i) => i + 1);
  await submitMany(core, ids, () => 'd.test');
  core.start();
  await waitFor(() => ids.every((id) => srv.acceptedCount(id) >= 1), 'every message delivered', 60_000);
  await core.stop();
  expect(srv.duplicates()).toEqual([]);
  expect(srv.anomalies).toEqual([]);
  const refused = srv.connections.filter((c) => c.refused === 421).length;
  return { refused, window: policy?.window('d.test') };
}

test('against a receiver with a hidden limit of 7: fewer 421s than a static cap of 20, the window near 7', async () => {
  const fixed = await against7(false);
  const learnt = await against7(true);
  // The receiver enforces its own limit either way; what differs is how often we hit it.
  expect(fixed.refused).toBeGreaterThan(0);
  expect(learnt.refused).toBeLessThan(fixed.refused);
  // Learnt, not stuck at `initial` (5, where a receiver taking 7 never refuses): the window grew
  // to the receiver's limit and no further than one past it.
  expect(learnt.window).toBeGreaterThanOrEqual(6);
  expect(learnt.window).toBeLessThanOrEqual(8);
  console.log(`421s: static cap ${fixed.refused}, feedback ${learnt.refused} (window ${learnt.window?.toFixed(2)})`);
}, 120_000);

test('a forgotten domain takes what the policies learnt of it along (no growth with churning domains)', () => {
  const core = new MailQueueCore({ bindings: ['a'], forgetIdleDomainsAfter: 0 });
  cores.push(core);
  const fc = feedbackConcurrency(core);
  const rr = responseRules(core, [
    { name: 'busy', match: { code: 421 }, action: { kind: 'maxConnections', value: 1 }, durationMs: 60_000 },
  ]);
  core.enqueue({ id: 1, domain: 'gone.test' });
  core.emit('connectionOpened', { connectionId: 1, domain: 'gone.test', binding: 'a' });
  core.emit('deferred', { id: 1, domain: 'gone.test', binding: 'a', nextAttempt: 0, code: 421, response: 'busy' });
  expect(fc.windows().map((w) => w.domain)).toEqual(['gone.test']);
  expect(rr.active().map((a) => a.domain)).toEqual(['gone.test']);
  core.cancel(1);
  expect(core.forgetIdleDomains()).toBe(1);
  expect(fc.windows()).toEqual([]);
  expect(rr.active()).toEqual([]);
});
