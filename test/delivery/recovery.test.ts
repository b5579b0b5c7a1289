// Crash recovery. A child process (test/fixtures/recovery-child.mjs) runs a started core with a
// FileSpool and submits messages to domains routed to an smtp-server in this process that delays
// its reply to DATA, so that several messages are always in flight; it is SIGKILLed mid-run. Then a
// new core with a new FileSpool on the same directory calls recover() and start(), and:
//
// - every message whose submit() had resolved ("ok <id>" printed) and that the server had not
//   accepted before the kill is delivered: none is lost;
// - a message is received twice only if it was in flight at the kill (the last transaction of a
//   connection still open then: the server may have sent its 250 that the child never processed,
//   the case docs/delivery.md documents); we count those and assert the bound;
// - the spool is empty at the end.
//
// The child runs the real public API: beforeAll compiles lib/ (test/fixtures/tsconfig.lib.json) into
// a temporary directory, as test/core/workers.test.ts does, and links the project's node_modules
// next to it so that the compiled SmtpTransport finds nodemailer.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { compileLib } from '../support/compiled_lib.js';

import { FileSpool, MailQueueCore, SmtpTransport } from '../../lib/index.js';
import { CoreLog, spoolFiles, waitFor } from '../support/harness.js';
import { startServer, type TestServer } from '../support/smtp_servers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..', '..');
const FIXTURE = path.join(root, 'test', 'fixtures', 'recovery-child.mjs');

let outDir = '';
let childEnv: NodeJS.ProcessEnv = {};
const tempDirs: string[] = [];

beforeAll(() => {
  ({ outDir, env: childEnv } = compileLib('recovery'));
}, 120_000);

afterAll(() => {
  if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

interface Killed {
  acked: Set<number>;
  inFlight: Set<number>;
  /** The message before the last on each open connection, when the server accepted it: a
   *  connection sends its next message as soon as the 250 comes and removes the last one from the
   *  store meanwhile (docs/delivery.md, the hot path), so that removal may not have ended. */
  removing: Set<number>;
  acceptedBefore: Map<number, number>;
  stderr: string;
}

/** Runs the child until `killWhen` holds, SIGKILLs it in the same tick as the snapshot, waits for it to die. */
async function runAndKill(
  server: TestServer,
  dir: string,
  count: number,
  killWhen: (acked: Set<number>, submittedAll: boolean) => boolean,
  onSubmittedAll: () => void = () => undefined,
): Promise<Killed> {
  const child = spawn(process.execPath, [FIXTURE, dir, String(server.port), String(count)], {
    cwd: root,
    env: childEnv,
  });
  const acked = new Set<number>();
  let submittedAll = false;
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    let nl: number;
    while ((nl = stdout.indexOf('\n')) >= 0) {
      const line = stdout.slice(0, nl);
      stdout = stdout.slice(nl + 1);
      if (line.startsWith('ok ')) acked.add(Number(line.slice(3)));
      if (line === 'submitted') {
        submittedAll = true;
        onSubmittedAll();
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  let kill: Killed | undefined;
  try {
    const inProgress = () =>
      server.connections.filter(
        (c) => c.closedAt === undefined && c.txns.at(-1)?.outcome === undefined && c.txns.length > 0,
      ).length;
    await waitFor(
      () => child.exitCode !== null || (killWhen(acked, submittedAll) && inProgress() > 0),
      'the moment to kill the child',
      30_000,
      () => ({ acked: acked.size, accepted: server.accepted.length, stderr }),
    );
    expect(child.exitCode, `the child died early: ${stderr}`).toBeNull();
    // The snapshot and the kill in one synchronous step: the server (this process) sees nothing
    // in between.
    const inFlight = new Set<number>();
    const removing = new Set<number>();
    for (const c of server.connections) {
      const last = c.txns.at(-1);
      if (c.closedAt === undefined && last) inFlight.add(last.id);
      const before = c.txns.at(-2);
      if (c.closedAt === undefined && before?.outcome === 'accepted') removing.add(before.id);
    }
    const acceptedBefore = new Map<number, number>();
    for (const id of server.accepted) acceptedBefore.set(id, (acceptedBefore.get(id) ?? 0) + 1);
    child.kill('SIGKILL');
    kill = { acked, inFlight, removing, acceptedBefore, stderr: '' };
  } finally {
    if (!kill) child.kill('SIGKILL');
    const { signal } = await exited;
    if (kill) expect(signal).toBe('SIGKILL');
  }
  kill.stderr = stderr;
  return kill;
}

const config = {
  global: {
    maxOutboundConnections: 3,
    connectionAllocationAggressiveness: 1 as const,
    idleTimeout: 0.1,
    delayedQueueScanInterval: 0.05,
    retryInterval: 0.1,
    maxRetryInterval: 0.1,
  },
};
const domains = ['d0.test', 'd1.test', 'd2.test'];

describe('SIGKILL mid-run, then recover() and start() on the same spool', () => {
  for (const when of ['while submitting', 'after every submit resolved'] as const) {
    test(`killed ${when}: nothing acknowledged is lost, duplicates only among the messages in flight, the spool ends empty`, async () => {
      const COUNT = 300;
      // 'after every submit resolved': very slow while the child submits (so that mail is left when
      // it has submitted everything, however slow its disk), faster afterwards.
      const server = await startServer({ behavior: { dataDelayMs: when === 'while submitting' ? 60 : 1000 } });
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-recovery-spool-'));
      tempDirs.push(dir);
      try {
        const k = await runAndKill(
          server,
          dir,
          COUNT,
          (acked, all) =>
            when === 'while submitting'
              ? acked.size >= 60 && !all && server.accepted.length >= 10
              : all && server.accepted.length >= 30 && server.accepted.length < COUNT - 60,
          () => {
            server.behavior = { dataDelayMs: 30 };
          },
        );
        expect(k.stderr).toBe('');
        await waitFor(() => server.open() === 0, "the dead child's connections to close", 10_000);

        // What the spool holds now: every acknowledged message the server had not accepted.
        const listed = new Set<number>();
        for await (const m of new FileSpool(dir).list()) listed.add(m.id);
        const owed = [...k.acked].filter((id) => !k.acceptedBefore.has(id));
        expect(owed.length, 'the kill left acknowledged mail undelivered').toBeGreaterThan(0);
        expect(k.inFlight.size, 'mail was in flight at the kill').toBeGreaterThan(0);
        for (const id of owed)
          expect(listed.has(id), `acknowledged message ${id} is missing from the spool`).toBe(true);
        // Delivered before the kill, neither in flight nor the last one delivered on an open
        // connection (whose removal may still have been under way): the child had removed it.
        for (const id of k.acceptedBefore.keys())
          if (!k.inFlight.has(id) && !k.removing.has(id))
            expect(listed.has(id), `delivered message ${id} still spooled`).toBe(false);
        for (const id of listed) expect(id >= 1 && id <= COUNT).toBe(true);

        // Recovery.
        server.behavior = {};
        const acceptedAtRecovery = server.accepted.length;
        const store = new FileSpool(dir);
        const core = new MailQueueCore({
          config,
          store,
          transport: new SmtpTransport({
            routes: Object.fromEntries(domains.map((d) => [d, { host: '127.0.0.1', port: server.port }])),
          }),
        });
        const log = new CoreLog(core);
        try {
          expect(await core.recover()).toBe(listed.size);
          expect(await core.recover()).toBe(0); // the core holds them all now
          core.start();
          await waitFor(
            () => log.isDone(listed),
            'every recovered message delivered',
            30_000,
            () => ({ done: log.final.size, of: listed.size, stats: core.stats() }),
          );
          await waitFor(() => core.stats().connections === 0, 'idle connections to close');
          expect(log.violations).toEqual([]);
          expect(log.errors).toEqual([]);
          expect(log.bounced.map((b) => b.event)).toEqual([]);
          expect(new Set(log.deliveredIds())).toEqual(listed);
          expect(log.delivered.length).toBe(listed.size);
        } finally {
          await core.stop();
          core.close();
        }
        // After recovery the server got exactly the recovered messages, once each.
        const afterRecovery = server.accepted.slice(acceptedAtRecovery);
        expect(afterRecovery.length).toBe(listed.size);
        expect(new Set(afterRecovery)).toEqual(listed);

        // None lost: every acknowledged message reached the server.
        for (const id of k.acked) expect(server.acceptedCount(id), `message ${id}`).toBeGreaterThanOrEqual(1);
        // Duplicates: only messages in flight at the kill, or delivered just before on a connection
        // still open, so at most two a connection.
        const dups = server.duplicates();
        for (const id of dups)
          expect(
            k.inFlight.has(id) || k.removing.has(id),
            `message ${id} received twice but not in flight at the kill`,
          ).toBe(true);
        expect(dups.length).toBeLessThanOrEqual(k.inFlight.size + k.removing.size);
        for (const id of dups) expect(server.acceptedCount(id)).toBe(2);
        expect(server.anomalies).toEqual([]);

        // The spool is empty.
        const left: number[] = [];
        for await (const m of store.list()) left.push(m.id);
        expect(left).toEqual([]);
        expect(spoolFiles(dir)).toEqual([]);
      } finally {
        await server.close();
      }
    }, 60_000);
  }
});

describe('what recover() keeps', () => {
  function spoolDir(): string {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-recovery-keep-'));
    tempDirs.push(d);
    return d;
  }
  const core = (dir: string) =>
    new MailQueueCore({
      config: { global: { messageExpiration: 100 } },
      transport: new SmtpTransport(),
      store: new FileSpool(dir),
    });

  test('an explicit expiresAt survives a restart; a message never attempted has 0 attempts', async () => {
    const dir = spoolDir();
    const a = core(dir);
    const expiresAt = Date.now() + 50_000;
    await a.submit(
      { id: 1, domain: 'a.test', envelope: { from: 'id-1@sender.test', to: ['r@a.test'] }, expiresAt },
      Buffer.from('X-Id: 1\r\n\r\nx\r\n'),
    );
    a.close(); // the process "dies": nothing else is done
    const b = core(dir);
    try {
      expect(await b.recover()).toBe(1);
      expect(b.message(1)).toMatchObject({ domain: 'a.test', state: 'active', attempts: 0, expiresAt });
    } finally {
      b.close();
    }
  });

  test('an implicit expiry (messageExpiration) survives a restart', async () => {
    const dir = spoolDir();
    const a = core(dir);
    await a.submit(
      { id: 1, domain: 'a.test', envelope: { from: 'id-1@sender.test', to: ['r@a.test'] } },
      Buffer.from('X-Id: 1\r\n\r\nx\r\n'),
    );
    const expiresAt = a.message(1)!.expiresAt;
    a.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const b = core(dir);
    try {
      expect(await b.recover()).toBe(1);
      expect(b.message(1)?.expiresAt).toBe(expiresAt);
    } finally {
      b.close();
    }
  });

  test('a message that expires before start() leaves the store, and is not bounced again by recover()', async () => {
    const dir = spoolDir();
    const c = core(dir);
    const bounces: unknown[] = [];
    c.on('bounce', (b) => bounces.push(b));
    try {
      await c.submit(
        {
          id: 5,
          domain: 'a.test',
          envelope: { from: 'id-5@sender.test', to: ['r@a.test'] },
          expiresAt: Date.now() - 1000,
        },
        Buffer.from('X-Id: 5\r\n\r\nx\r\n'),
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
      // The event carries the envelope read from the store, which forgets it afterwards.
      expect(bounces).toEqual([
        expect.objectContaining({ id: 5, reason: 'expired', envelope: { from: 'id-5@sender.test', to: ['r@a.test'] } }),
      ]);
      expect(spoolFiles(dir)).toEqual([]);
      expect(await c.recover()).toBe(0);
      expect(bounces).toHaveLength(1);
    } finally {
      c.close();
    }
  });
});
