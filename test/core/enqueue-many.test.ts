// enqueueMany(): many arrivals for any pairs in one native call. It must queue exactly what the same
// arrivals queue one enqueue() at a time, refuse a bad call whole (naming the caller's entry), and
// make no domain for a refused call.
import { expect, test } from 'vitest';

import { prng } from '../../examples/demo/protocol.js'; // the project's seeded PRNG: a failure repeats
import { MailQueueCore } from '../../lib/index.js';

const BINDINGS = ['b0', 'b1', 'b2'];
const newCore = (now = 5_000) =>
  new MailQueueCore({ bindings: BINDINGS, clock: () => now, config: { global: { messageExpiration: 3600 } } });

/** Everything a reader sees of the queues: per domain and binding the active ids in order, each
 *  message's state, and the counters. */
function snapshot(core: MailQueueCore, ids: number[]) {
  const queues: Record<string, number[]> = {};
  for (const d of core.domains())
    for (let b = 0; b < BINDINGS.length; b++)
      queues[`${d}/${b}`] = core.listQueue(d, { binding: BINDINGS[b] }).map((m) => m.id);
  const messages = ids.map((id) => core.message(id));
  return { queues, messages, stats: core.stats(), domains: core.domains() };
}

test('enqueueMany queues what one enqueue() a message queues, in the same order, for names and records', () => {
  const rnd = prng(20261207);
  for (let round = 0; round < 5; round++) {
    const one = newCore();
    const many = newCore();
    try {
      // Some domains exist first (named by record below); the rest are new names.
      for (const c of [one, many]) c.enqueueBatch('old0.test', 'b1', Float64Array.of(1, 2));
      const rec = many.domain('old0.test');
      const n = 1 + Math.floor(rnd() * 300);
      const ids = Float64Array.from({ length: n }, (_, i) => 100 + i * 7 + Math.floor(rnd() * 5));
      // A few ids out of order: the native path looks those up.
      if (n > 4) [ids[1], ids[3]] = [ids[3], ids[1]];
      const names = Array.from({ length: n }, () => (rnd() < 0.2 ? 'old0.test' : `d${Math.floor(rnd() * 12)}.test`));
      const bindings = Uint8Array.from({ length: n }, () => Math.floor(rnd() * BINDINGS.length));
      const prios = Uint8Array.from({ length: n }, () => (rnd() < 0.1 ? 1 : 0));
      for (let i = 0; i < n; i++)
        one.enqueue({ id: ids[i], domain: names[i], binding: BINDINGS[bindings[i]], priority: prios[i] });
      many.enqueueMany(
        names.map((d) => (d === 'old0.test' ? rec : d)),
        bindings,
        ids,
        prios,
      );
      const all = [1, 2, ...ids];
      expect(snapshot(many, all)).toEqual(snapshot(one, all));
      expect(many.checkInvariants()).toBe(true);
    } finally {
      one.close();
      many.close();
    }
  }
});

test('enqueueMany: bindings and priorities may be left out (slot 0, priority 0); an empty call does nothing', () => {
  const core = newCore();
  try {
    core.enqueueMany([], undefined, new Float64Array(0));
    expect(core.stats().active).toBe(0);
    expect(core.domains()).toEqual([]);
    core.enqueueMany(['a.test', 'b.test', 'a.test'], undefined, Float64Array.of(3, 1, 2));
    expect(core.listQueue('a.test', { binding: 'b0' }).map((m) => m.id)).toEqual([3, 2]);
    expect(core.message(1)).toMatchObject({ domain: 'b.test', binding: 'b0', priority: 0, state: 'active' });
    // Each expires after its pair's messageExpiration (3600 s from now).
    expect(core.message(2)?.expiresAt).toBe(5_000 + 3_600_000);
  } finally {
    core.close();
  }
});

test('enqueueMany refuses a call with a duplicate id whole, names ids[i], and makes no domain', () => {
  const core = newCore();
  try {
    core.enqueue({ id: 50, domain: 'x.test' });
    const before = snapshot(core, [50, 51, 52]);
    // 50 is queued already; 52 comes twice; each call names the first bad entry.
    for (const [ids, i] of [
      [Float64Array.of(51, 50), 1],
      [Float64Array.of(52, 51, 52), 2],
    ] as const) {
      expect(() => core.enqueueMany(['new.test', 'x.test', 'new.test'].slice(0, ids.length), undefined, ids)).toThrow(
        expect.objectContaining({
          code: 'ERR_DUPLICATE_ID',
          message: expect.stringMatching(new RegExp(`^ids\\[${i}\\]`)),
        }),
      );
      // The same with known domains only (the refusal comes from the native call).
      expect(() =>
        core.enqueueMany(ids.length === 2 ? ['x.test', 'x.test'] : ['x.test', 'x.test', 'x.test'], undefined, ids),
      ).toThrow(
        expect.objectContaining({
          code: 'ERR_DUPLICATE_ID',
          message: expect.stringMatching(new RegExp(`^ids\\[${i}\\]`)),
        }),
      );
    }
    expect(snapshot(core, [50, 51, 52])).toEqual(before);
    expect(core.hasDomain('new.test')).toBe(false);
    expect(core.checkInvariants()).toBe(true);
  } finally {
    core.close();
  }
});

test('enqueueMany refuses bad arguments with a TypeError or RangeError naming them, and queues nothing', () => {
  const core = newCore();
  const other = newCore();
  try {
    core.enqueue({ id: 1, domain: 'x.test' });
    other.enqueue({ id: 1, domain: 'y.test' });
    const foreign = other.domain('y.test');
    const ids = Float64Array.of(10, 11);
    const cases: [() => void, ErrorConstructor, RegExp][] = [
      [() => core.enqueueMany('x.test' as never, undefined, ids), TypeError, /^domains must be an array/],
      [
        () => core.enqueueMany(['x.test'], undefined, ids),
        RangeError,
        /^domains must have as many entries as ids \(2\), got 1/,
      ],
      [
        () => core.enqueueMany(['x.test', 7 as never], undefined, ids),
        TypeError,
        /^domains\[1\] must be a string or a DomainRecord, got number/,
      ],
      [() => core.enqueueMany(['x.test', 'bad domain'], undefined, ids), RangeError, /^domains\[1\]/],
      [() => core.enqueueMany(['x.test', foreign], undefined, ids), Error, /domains\[1\]/],
      [() => core.enqueueMany(['x.test', 'x.test'], [0, 0] as never, ids), TypeError, /^bindings must be a Uint8Array/],
      [
        () => core.enqueueMany(['x.test', 'x.test'], Uint8Array.of(0), ids),
        RangeError,
        /^bindings must have as many entries as ids/,
      ],
      [
        () => core.enqueueMany(['x.test', 'x.test'], Uint8Array.of(0, 3), ids),
        RangeError,
        /^bindings\[1\]: no binding slot 3/,
      ],
      [
        () => core.enqueueMany(['x.test', 'x.test'], undefined, ids, Uint8Array.of(0, 2)),
        RangeError,
        /^priorities\[1\] must be 0 or 1/,
      ],
      [
        () => core.enqueueMany(['x.test', 'x.test'], undefined, ids, Uint8Array.of(0)),
        RangeError,
        /^priorities must have as many entries/,
      ],
      [
        () => core.enqueueMany(['x.test', 'x.test'], undefined, Float64Array.of(10, 1.5)),
        RangeError,
        /^ids\[1\] must be a safe integer/,
      ],
      [
        () => core.enqueueMany(['x.test', 'x.test'], undefined, Float64Array.of(-1, 3)),
        RangeError,
        /^ids\[0\] must be a safe integer/,
      ],
      [() => core.enqueueMany(['x.test'], undefined, [10] as never), TypeError, /^ids must be a Float64Array/],
    ];
    const before = snapshot(core, [1, 10, 11]);
    for (const [run, type, message] of cases) {
      expect(run).toThrow(type);
      expect(run).toThrow(message);
    }
    expect(snapshot(core, [1, 10, 11])).toEqual(before);
    core.close();
    expect(() => core.enqueueMany(['x.test'], undefined, Float64Array.of(9))).toThrow(
      expect.objectContaining({ code: 'ERR_CLOSED' }),
    );
  } finally {
    core.close();
    other.close();
  }
});

test('enqueueMany after staged single enqueues keeps arrival order, and later single enqueues stage again', () => {
  const core = newCore();
  try {
    core.enqueue({ id: 1, domain: 'x.test' }); // makes the domain (not staged)
    core.enqueue({ id: 2, domain: 'x.test' }); // staged
    core.enqueueMany(['x.test', 'x.test'], undefined, Float64Array.of(3, 4));
    core.enqueue({ id: 5, domain: 'x.test' });
    expect(core.listQueue('x.test').map((m) => m.id)).toEqual([1, 2, 3, 4, 5]);
    expect(core.counters[core.counterIndex.highestId]).toBe(5);
    expect(core.checkInvariants()).toBe(true);
  } finally {
    core.close();
  }
});

test('enqueueMany on a started core: every message reaches the receiver once', async () => {
  const { startServer } = await import('../support/smtp_servers.js');
  const { MemoryStore, SmtpTransport } = await import('../../lib/index.js');
  const srv = await startServer();
  const store = new MemoryStore();
  const core = new MailQueueCore({
    bindings: BINDINGS,
    config: { global: { maxOutboundConnections: 2, delayedQueueScanInterval: 3600, idleTimeout: 0.05 } },
    transport: new SmtpTransport({ routes: { '*': { host: '127.0.0.1', port: srv.port } } }),
    store,
  });
  try {
    core.start();
    const ids = Float64Array.from({ length: 30 }, (_, i) => i + 1);
    const domains = Array.from(ids, (id) => `d${id % 3}.test`);
    for (const id of ids)
      await store.put(
        { id, domain: domains[id - 1], envelope: { from: `id-${id}@src.test`, to: [`r@${domains[id - 1]}`] } },
        Buffer.from(`X-Id: ${id}\r\n\r\nhi\r\n`),
      );
    // Runs of one pair (ids 1-10 on b0 ... ) and alternating pairs.
    const bindings = Uint8Array.from(ids, (id) => (id <= 10 ? 0 : id % 2));
    core.enqueueMany(domains, bindings, ids);
    const end = Date.now() + 10_000;
    while (srv.accepted.length < 30 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    expect([...srv.accepted].sort((a, b) => a - b)).toEqual([...ids]);
    await core.stop();
  } finally {
    core.close();
    await srv.close();
  }
});
