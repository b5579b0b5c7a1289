// options.logger against real receivers on loopback, with a real pino instance writing JSON lines
// to a stream the test reads: connection open and close and each outcome at debug (domain,
// binding, connection id, MX host), connect failures and store failures at error, nothing at debug
// made or written when the level is 'info', and a bad logger refused with a TypeError naming it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, test } from 'vitest';

import {
  FileSpool,
  type Logger,
  MailQueueCore,
  type MessageStore,
  MemoryStore,
  SmtpTransport,
} from '../../lib/index.js';
import { freePort, startServer } from '../support/smtp_servers.js';
import { testBody, testMessage, waitFor } from '../support/harness.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A pino logger at `level` whose lines (parsed) land in the returned array. */
function pinoLines(level: string): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

const config = {
  global: {
    retryInterval: 0.2,
    maxRetryInterval: 0.2,
    hostFailureRetry: 0.3,
    idleTimeout: 0.1,
    delayedQueueScanInterval: 0.05,
  },
};

function coreFor(port: number, logger: Logger, store: MessageStore = new MemoryStore()): MailQueueCore {
  const core = new MailQueueCore({
    config,
    transport: new SmtpTransport({
      routes: { 'x.test': { host: '127.0.0.1', port } },
      timeouts: { connect: 2000, greeting: 2000, command: 2000, message: 5000, quit: 500 },
      hostFailureRetry: 0,
    }),
    store,
    logger,
  });
  core.on('error', () => undefined);
  cleanups.push(async () => {
    await core.stop();
    core.close();
  });
  return core;
}

describe('options.logger', () => {
  test('debug: connection open and close, each outcome, with domain, binding, connection id and MX host', async () => {
    const srv = await startServer({
      behavior: { data: (id, attempt) => (id === 2 && attempt === 1 ? { code: 451, message: '451 later' } : 'accept') },
    });
    cleanups.push(() => srv.close());
    const { logger, lines } = pinoLines('debug');
    const core = coreFor(srv.port, logger);
    let delivered = 0;
    core.on('delivered', () => delivered++);
    core.start();
    for (const id of [1, 2, 3]) await core.submit(testMessage(id, 'x.test'), testBody(id));
    await waitFor(() => delivered === 3, 'three deliveries');
    await core.stop();

    const open = lines.filter((l) => l.msg === 'connection open');
    expect(open.length).toBeGreaterThanOrEqual(1);
    for (const l of open) {
      expect(l).toMatchObject({ level: 20, domain: 'x.test', binding: 'default', host: '127.0.0.1' });
      expect(typeof l.connectionId).toBe('number');
    }
    const closed = lines.filter((l) => l.msg === 'connection closed');
    expect(closed.map((l) => l.connectionId).sort()).toEqual(open.map((l) => l.connectionId).sort());
    const outcomes = lines.filter((l) => l.outcome !== undefined);
    expect(outcomes.filter((l) => l.outcome === 'delivered').map((l) => l.id)).toEqual(
      expect.arrayContaining([1, 2, 3]),
    );
    const transient = outcomes.find((l) => l.outcome === 'transient');
    expect(transient).toMatchObject({ level: 20, id: 2, code: 451, domain: 'x.test', host: '127.0.0.1' });
    expect(lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
  });

  test('error: a connect failure and a store failure, each a line at error level', async () => {
    const port = await freePort(); // nothing listens: ECONNREFUSED
    const { logger, lines } = pinoLines('debug');
    const store = new MemoryStore();
    const core = coreFor(port, logger, store);
    core.start();
    await core.submit(testMessage(1, 'x.test'), testBody(1));
    await waitFor(() => lines.some((l) => l.msg?.toString().startsWith('connection failed')), 'the connect failure');
    const failed = lines.find((l) => String(l.msg).startsWith('connection failed'))!;
    expect(failed).toMatchObject({ level: 50, domain: 'x.test', binding: 'default' });
    expect(String(failed.msg)).toMatch(/ECONNREFUSED/);
    expect(failed.err).toBeDefined();

    // A store that fails a background call (the removal of a cancelled message): an 'error' event
    // and a line at error.
    const broken = new MemoryStore();
    broken.remove = () => Promise.reject(new Error('disk on fire'));
    const { logger: l2, lines: lines2 } = pinoLines('info');
    const core2 = new MailQueueCore({ store: broken, logger: l2 });
    const errors: Error[] = [];
    core2.on('error', (e) => errors.push(e));
    cleanups.push(() => core2.close());
    await core2.submit(testMessage(5, 'y.test'), testBody(5));
    core2.cancel(5);
    await waitFor(() => errors.length === 1, 'the error event');
    expect(lines2).toEqual([expect.objectContaining({ level: 50, msg: 'disk on fire' })]);
  });

  test('error: a message the store cannot load (a damaged file) is a line at error level, then deferred', async () => {
    const srv = await startServer();
    cleanups.push(() => srv.close());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-logger-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const spool = new FileSpool(dir, { cacheBytes: 0 }); // every load reads the file
    // Closed after the core stops and before its directory goes: a retry state still being written
    // into a shard directory would otherwise race the removal (ENOTEMPTY).
    cleanups.push(() => spool.close());
    const { logger, lines } = pinoLines('info');
    const core = coreFor(srv.port, logger, spool);
    const deferred: number[] = [];
    core.on('deferred', (e) => deferred.push(e.id));
    await core.submit(testMessage(9, 'x.test'), testBody(9));
    fs.appendFileSync(spool.pathOf(9), 'trailing bytes');
    core.start();
    await waitFor(() => deferred.length === 1, 'the deferral');
    const line = lines.find((l) => String(l.msg).startsWith('store load failed'));
    expect(line).toMatchObject({ level: 50, id: 9, domain: 'x.test', binding: 'default', host: '127.0.0.1' });
    expect(String(line!.msg)).toMatch(/bytes after the body/);
    expect(srv.accepted).toEqual([]);
  });

  test("at level 'info' nothing is logged per connection or message, and debug() is never called", async () => {
    const srv = await startServer();
    cleanups.push(() => srv.close());
    const { logger, lines } = pinoLines('info');
    let debugCalls = 0;
    let levelChecks = 0;
    // pino itself, with its debug() and isLevelEnabled() counted on the way through.
    const counted: Logger = {
      debug: (o, m) => {
        debugCalls++;
        logger.debug(o, m);
      },
      info: (o, m) => logger.info(o, m),
      warn: (o, m) => logger.warn(o, m),
      error: (o, m) => logger.error(o, m),
      isLevelEnabled: (level) => {
        levelChecks++;
        return logger.isLevelEnabled(level);
      },
    };
    const core = coreFor(srv.port, counted);
    let delivered = 0;
    core.on('delivered', () => delivered++);
    core.start();
    const N = 40;
    for (let id = 1; id <= N; id++) await core.submit(testMessage(id, 'x.test'), testBody(id));
    await waitFor(() => delivered === N, 'every delivery');
    await core.stop();
    expect(lines).toEqual([]);
    expect(debugCalls).toBe(0);
    // Asked once per connection (and per drain of expiries), not per message.
    expect(levelChecks).toBeGreaterThan(0);
    expect(levelChecks).toBeLessThan(N / 2);
  });

  test('a logger without the four methods is a TypeError naming options.logger', () => {
    expect(() => new MailQueueCore({ logger: 5 as never })).toThrow(
      /^options\.logger must be a pino-compatible logger/,
    );
    expect(() => new MailQueueCore({ logger: null as never })).toThrow(TypeError);
    const noError = { debug() {}, info() {}, warn() {} };
    expect(() => new MailQueueCore({ logger: noError as never })).toThrow(
      /^options\.logger\.error must be a function .*got undefined/,
    );
    expect(() => new MailQueueCore({ logger: { ...noError, error() {}, isLevelEnabled: 1 } as never })).toThrow(
      /options\.logger\.isLevelEnabled must be a function/,
    );
    const ok = new MailQueueCore({ logger: pinoLines('info').logger });
    ok.close();
  });
});
