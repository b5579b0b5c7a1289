// core.qshape(): the queue by domain and age bucket (Postfix's qshape), through the real addon, the
// admin HTTP API and the mqc command line. Ages come from each message's expiry less its pair's
// messageExpiration; the clock is the test's.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, expect, test } from 'vitest';

import { type Qshape, MailQueueCore, serveAdmin } from '../../lib/index.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(root, 'dist', 'lib', 'cli', 'mqc.js');
const MIN = 60_000;
const closers: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c();
});

/** A core whose clock the test moves; messages expire an hour after arrival, a.test's after two,
 *  c.test's after two days. */
function coreAt(t: { now: number }): MailQueueCore {
  const core = new MailQueueCore({
    bindings: ['b0', 'b1'],
    clock: () => t.now,
    config: {
      global: { messageExpiration: 3600 },
      domains: { 'a.test': { messageExpiration: 7200 }, 'c.test': { messageExpiration: 172800 } },
    },
  });
  closers.push(() => core.close());
  return core;
}

test('counts every message held by domain and age, busiest first, the rest summed; states all count', () => {
  const t = { now: 1_000_000_000 };
  const core = coreAt(t);
  let id = 1;
  // a.test: 3 arrivals now, 2 at -7 min, 1 at -100 min (as the clock moves forward).
  // b.test: 1 at -7 min on b1, delayed; c.test: 1 at -2000 min, 1 that never expires (its own
  // expiresAt); d.test: 1 arrival now, then taken into flight.
  const t0 = t.now;
  t.now = t0 - 2000 * MIN;
  core.enqueue({ id: id++, domain: 'c.test' });
  t.now = t0 - 100 * MIN;
  core.enqueue({ id: id++, domain: 'a.test' });
  t.now = t0 - 7 * MIN;
  core.enqueue({ id: id++, domain: 'a.test' });
  core.enqueue({ id: id++, domain: 'a.test', binding: 'b1' });
  core.enqueue({ id: id++, domain: 'b.test', binding: 'b1', nextAttempt: t0 + 30 * MIN });
  t.now = t0;
  for (let i = 0; i < 3; i++) core.enqueue({ id: id++, domain: 'a.test' });
  core.enqueue({ id: id++, domain: 'c.test', expiresAt: Number.POSITIVE_INFINITY });
  core.enqueue({ id: id++, domain: 'd.test' });
  expect(core.takeInto('d.test', 0, new Float64Array(4))).toBe(1);

  const q = core.qshape();
  expect(q.now).toBe(t0);
  expect(q.minutes).toEqual([5, 10, 20, 40, 80, 160, 320, 640, 1280]);
  //            <5 <10 <20 <40 <80 <160 <320 <640 <1280 1280+
  const a = [3, 2, 0, 0, 0, 1, 0, 0, 0, 0];
  const b = [0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
  const c = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const d = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  expect(q.domains).toEqual([
    { domain: 'a.test', total: 6, counts: a, unknownAge: 0 },
    { domain: 'c.test', total: 2, counts: c, unknownAge: 1 },
    { domain: 'b.test', total: 1, counts: b, unknownAge: 0 },
    { domain: 'd.test', total: 1, counts: d, unknownAge: 0 },
  ]);
  expect(q.total).toEqual({ total: 10, counts: a.map((x, k) => x + b[k] + c[k] + d[k]), unknownAge: 1 });
  expect(q.other).toEqual({ total: 0, counts: new Array(10).fill(0), unknownAge: 0, domains: 0 });
  expect(q.total.total).toBe(core.stats().active + core.stats().delayed + core.stats().inFlight);

  // top 2: b.test and d.test summed in other; buckets of our own.
  const q2 = core.qshape({ top: 2, minutes: [6, 60] });
  expect(q2.domains.map((r) => r.domain)).toEqual(['a.test', 'c.test']);
  expect(q2.domains[0].counts).toEqual([3, 2, 1]);
  expect(q2.other).toEqual({ total: 2, counts: [1, 1, 0], unknownAge: 0, domains: 2 });
  // A settled message leaves the shape; a domain with nothing left is not listed.
  core.settle(id - 1);
  expect(core.qshape().domains.map((r) => r.domain)).toEqual(['a.test', 'c.test', 'b.test']);
});

test('bad options are refused with the option named, and nothing changes', () => {
  const core = coreAt({ now: 5_000_000 });
  core.enqueue({ id: 1, domain: 'a.test' });
  const before = core.qshape();
  const bad: [unknown, RegExp, ErrorConstructor][] = [
    [{ top: -1 }, /^options\.top must be an integer from 0 to 100000, got -1$/, RangeError],
    [{ top: '3' }, /^options\.top must be a number, got string$/, TypeError],
    [{ minutes: [10, 5] }, /^options\.minutes must ascend: \[1\] = 5 is not above 10$/, RangeError],
    [{ minutes: [0] }, /^options\.minutes\[0\] must be above 0 and finite, got 0$/, RangeError],
    [{ minutes: [Number.NaN] }, /^options\.minutes\[0\] must be above 0 and finite, got NaN$/, RangeError],
    [{ minutes: ['5'] }, /^options\.minutes\[0\] must be a number, got string$/, TypeError],
    [{ minutes: 5 }, /^options\.minutes must be an array of numbers, got number$/, TypeError],
    [{ minutes: Array.from({ length: 65 }, (_, i) => i + 1) }, /at most 64 edges, got 65/, RangeError],
    [{ buckets: [5] }, /^options: unknown option "buckets"/, RangeError],
    [null, /^options must be/, TypeError],
  ];
  for (const [o, msg, kind] of bad) {
    let err: unknown;
    try {
      core.qshape(o as never);
    } catch (e) {
      err = e;
    }
    expect(err, JSON.stringify(o)).toBeInstanceOf(kind);
    expect((err as Error).message).toMatch(msg);
  }
  expect(core.qshape()).toEqual(before);
  // 64 edges is the most, and works.
  expect(core.qshape({ minutes: Array.from({ length: 64 }, (_, i) => i + 1) }).total.counts).toHaveLength(65);
});

test('over HTTP (GET /qshape) and from mqc qshape: the same shape, bad queries a 400', async () => {
  const t = { now: 2_000_000_000 };
  const core = coreAt(t);
  t.now -= 30 * MIN;
  core.enqueue({ id: 1, domain: 'x.test' });
  t.now += 30 * MIN;
  core.enqueue({ id: 2, domain: 'x.test' });
  core.enqueue({ id: 3, domain: 'y.test' });
  const admin = await serveAdmin(core);
  closers.push(() => admin.close());
  const get = async (q: string) => {
    const r = await fetch(`${admin.url}/qshape${q}`);
    return { status: r.status, body: (await r.json()) as Qshape & { error?: string } };
  };
  const all = await get('');
  expect(all.status).toBe(200);
  expect(all.body).toEqual(JSON.parse(JSON.stringify(core.qshape())));
  const some = await get('?top=1&minutes=10,60');
  expect(some.body.domains).toEqual([{ domain: 'x.test', total: 2, counts: [1, 1, 0], unknownAge: 0 }]);
  expect(some.body.other.domains).toBe(1);
  for (const q of ['?top=x', '?minutes=10,,20', '?minutes=20,10', '?top=-1'])
    expect((await get(q)).status, q).toBe(400);

  const text = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, '--url', admin.url, 'qshape', '--minutes', '10,60'], {});
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`mqc exited ${code}`))));
  });
  const lines = text.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^domain\s+T\s+10\s+60\s+60\+$/);
  expect(lines[2]).toMatch(/^TOTAL\s+3\s+2\s+1\s+0$/);
  expect(lines[3]).toMatch(/^x\.test\s+2\s+1\s+1\s+0$/);
  expect(lines[4]).toMatch(/^y\.test\s+1\s+1\s+0\s+0$/);
});
