// The two MessageStores: MemoryStore and FileSpool pass one contract suite (put/get/body/remove/list,
// duplicates, bad input, byte-exact bodies); then FileSpool alone: its files are where
// lib/store/file_spool.ts documents them and in its format, a new FileSpool on the same directory
// lists everything, damaged files are skipped and reported, leftover temporary files deleted,
// 200 concurrent puts work, and a writer SIGKILLed at a random point leaves only complete messages.
//
// The crash test's child (test/fixtures/spool-crash.mjs) runs the real FileSpool: beforeAll compiles
// lib/store/file_spool.ts and what it imports into a temporary directory (not dist/), as
// test/core/workers.test.ts does for the whole library.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';

import { afterEach, beforeAll, describe, expect, test, vi } from 'vitest';

import { FileSpool, SpoolCorruptError, shardOf } from '../../lib/store/file_spool.js';
import { LogSpool } from '../../lib/store/log_spool.js';
import { MemoryStore } from '../../lib/store/memory_store.js';
import type { MessageStore, StoredMessage } from '../../lib/store/message_store.js';
import { tempDirs } from '../support/temp_dirs.js';
import { compileStore, crashBodyProblem, crashMessage, root, runAndKill, seeded } from '../support/crash_child.js';

const MB = 1024 * 1024;

const tempDir = tempDirs('mqc-stores');

function msg(id: number, extra: Partial<StoredMessage> = {}): StoredMessage {
  return {
    id,
    domain: 'example.com',
    envelope: { from: `s${id}@origin.example`, to: [`r${id}@example.com`] },
    ...extra,
  };
}

async function collect(store: MessageStore): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  for await (const m of store.list()) out.push(m);
  return out;
}

async function listedIds(store: MessageStore): Promise<number[]> {
  return (await collect(store)).map((m) => m.id).sort((a, b) => a - b);
}

/** Every file under dir, relative, sorted. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out.sort();
}

const tmpFiles = (dir: string): string[] => filesUnder(dir).filter((f) => f.endsWith('.tmp'));

// --- the contract -------------------------------------------------------------------------------

interface Subject {
  name: string;
  make(): MessageStore;
}

const subjects: Subject[] = [
  { name: 'MemoryStore', make: () => new MemoryStore() },
  {
    name: 'FileSpool',
    make: () =>
      new FileSpool(path.join(tempDir('contract'), 'spool'), {
        onCorrupt: (_f, e) => {
          throw e;
        },
      }),
  },
  {
    name: 'LogSpool',
    make: () =>
      new LogSpool(path.join(tempDir('contract'), 'log'), {
        onCorrupt: (_f, e) => {
          throw e;
        },
      }),
  },
];

type Row = [
  label: string,
  message: unknown,
  body: unknown,
  error: typeof TypeError | typeof RangeError,
  pattern: RegExp,
];
const B = Buffer.from('x');
const env = { from: 'a@b.example', to: ['c@d.example'] };
const BAD_PUTS: Row[] = [
  ['message null', null, B, TypeError, /^message must be an object, got null/],
  ['message an array', [], B, TypeError, /^message must be an object, got an array/],
  ['message a string', 'm', B, TypeError, /^message must be an object, got string/],
  ['unknown key', { id: 1, domain: 'd', envelope: env, attempt: 1 }, B, RangeError, /^message: unknown key "attempt"/],
  ['id missing', { domain: 'd', envelope: env }, B, TypeError, /^message\.id must be a number, got undefined/],
  ['id a string', { id: '1', domain: 'd', envelope: env }, B, TypeError, /^message\.id must be a number, got string/],
  [
    'id negative',
    { id: -1, domain: 'd', envelope: env },
    B,
    RangeError,
    /^message\.id must be a safe integer from 0 to 2\^53-1, got -1/,
  ],
  ['id fractional', { id: 1.5, domain: 'd', envelope: env }, B, RangeError, /^message\.id must be a safe integer/],
  ['id NaN', { id: NaN, domain: 'd', envelope: env }, B, RangeError, /^message\.id must be a safe integer/],
  ['id 2^53', { id: 2 ** 53, domain: 'd', envelope: env }, B, RangeError, /^message\.id must be a safe integer/],
  ['domain missing', { id: 1, envelope: env }, B, TypeError, /^message\.domain must be a string, got undefined/],
  [
    'domain a number',
    { id: 1, domain: 7, envelope: env },
    B,
    TypeError,
    /^message\.domain must be a string, got number/,
  ],
  ['domain empty', { id: 1, domain: '', envelope: env }, B, RangeError, /^message\.domain must not be empty/],
  ['envelope missing', { id: 1, domain: 'd' }, B, TypeError, /^message\.envelope must be an object, got undefined/],
  [
    'envelope null',
    { id: 1, domain: 'd', envelope: null },
    B,
    TypeError,
    /^message\.envelope must be an object, got null/,
  ],
  [
    'envelope unknown key',
    { id: 1, domain: 'd', envelope: { ...env, size: 1 } },
    B,
    RangeError,
    /^message\.envelope: unknown key "size"/,
  ],
  [
    'from missing',
    { id: 1, domain: 'd', envelope: { to: ['x'] } },
    B,
    TypeError,
    /^message\.envelope\.from must be a string, got undefined/,
  ],
  [
    'from a number',
    { id: 1, domain: 'd', envelope: { from: 5, to: ['x'] } },
    B,
    TypeError,
    /^message\.envelope\.from must be a string, got number/,
  ],
  [
    'to missing',
    { id: 1, domain: 'd', envelope: { from: '' } },
    B,
    TypeError,
    /^message\.envelope\.to must be an array, got undefined/,
  ],
  [
    'to a string',
    { id: 1, domain: 'd', envelope: { from: '', to: 'x@y' } },
    B,
    TypeError,
    /^message\.envelope\.to must be an array, got string/,
  ],
  [
    'to empty',
    { id: 1, domain: 'd', envelope: { from: '', to: [] } },
    B,
    RangeError,
    /^message\.envelope\.to must not be empty/,
  ],
  [
    'to holds a number',
    { id: 1, domain: 'd', envelope: { from: '', to: ['x@y', 7] } },
    B,
    TypeError,
    /^message\.envelope\.to\[1\] must be a string, got number/,
  ],
  [
    'binding a number',
    { id: 1, domain: 'd', envelope: env, binding: 3 },
    B,
    TypeError,
    /^message\.binding must be a string, got number/,
  ],
  [
    'binding malformed',
    { id: 1, domain: 'd', envelope: env, binding: 'no spaces' },
    B,
    RangeError,
    /^message\.binding must be 1 to 64/,
  ],
  [
    'priority 2',
    { id: 1, domain: 'd', envelope: env, priority: 2 },
    B,
    RangeError,
    /^message\.priority must be an integer from 0 to 1, got 2/,
  ],
  [
    'priority a string',
    { id: 1, domain: 'd', envelope: env, priority: '1' },
    B,
    TypeError,
    /^message\.priority must be a number/,
  ],
  [
    'expiresAt NaN',
    { id: 1, domain: 'd', envelope: env, expiresAt: NaN },
    B,
    RangeError,
    /^message\.expiresAt must be a time or Infinity/,
  ],
  [
    'expiresAt a string',
    { id: 1, domain: 'd', envelope: env, expiresAt: '1' },
    B,
    TypeError,
    /^message\.expiresAt must be a number/,
  ],
  [
    'body missing',
    { id: 1, domain: 'd', envelope: env },
    undefined,
    TypeError,
    /^body must be a Buffer, got undefined/,
  ],
  ['body a string', { id: 1, domain: 'd', envelope: env }, 'text', TypeError, /^body must be a Buffer, got string/],
  [
    'body a Uint8Array',
    { id: 1, domain: 'd', envelope: env },
    new Uint8Array(3),
    TypeError,
    /^body must be a Buffer, got object/,
  ],
];

type IdRow = [label: string, id: unknown, error: typeof TypeError | typeof RangeError, pattern: RegExp];
const BAD_IDS: IdRow[] = [
  ['a string', '1', TypeError, /^id must be a number, got string/],
  ['undefined', undefined, TypeError, /^id must be a number, got undefined/],
  ['negative', -1, RangeError, /^id must be a safe integer/],
  ['fractional', 0.5, RangeError, /^id must be a safe integer/],
  ['2^53', 2 ** 53, RangeError, /^id must be a safe integer/],
];

describe.each(subjects)('$name: the MessageStore contract', ({ name, make }) => {
  // removeNow() is optional: FileSpool unlinks through the thread pool and has none.
  const removesNow = name !== 'FileSpool';
  let store: MessageStore;
  afterEach(async () => {
    await store?.close?.();
  });

  test('put, get, body, remove, list', async () => {
    store = make();
    expect(await collect(store)).toEqual([]);
    expect(await store.get(1)).toBeUndefined();
    await store.put(msg(1), Buffer.from('one'));
    await store.put(msg(2, { binding: 'b-1', priority: 1, expiresAt: 1_700_000_000_000 }), Buffer.from('two'));
    await store.put(
      msg(3, { expiresAt: Infinity, envelope: { from: '', to: ['a@x.example', 'b@x.example'] } }),
      Buffer.from('three'),
    );
    expect(await store.get(1)).toEqual(msg(1));
    expect(await store.get(2)).toEqual(msg(2, { binding: 'b-1', priority: 1, expiresAt: 1_700_000_000_000 }));
    expect(await store.get(3)).toEqual(
      msg(3, { expiresAt: Infinity, envelope: { from: '', to: ['a@x.example', 'b@x.example'] } }),
    );
    expect((await store.body(2)).toString()).toBe('two');
    expect(await listedIds(store)).toEqual([1, 2, 3]);
    expect((await collect(store)).find((m) => m.id === 3)).toEqual(await store.get(3));

    await store.remove(2);
    expect(await store.get(2)).toBeUndefined();
    await expect(store.body(2)).rejects.toMatchObject({
      code: 'ERR_UNKNOWN_ID',
      message: expect.stringMatching(/^id 2 /),
    });
    expect(await listedIds(store)).toEqual([1, 3]);
    await store.remove(2); // again: unknown ids are fine
    await store.remove(999);
    expect(await listedIds(store)).toEqual([1, 3]);
  });

  test('ids 0 and 2^53-1', async () => {
    store = make();
    await store.put(msg(0), Buffer.from('zero'));
    await store.put(msg(Number.MAX_SAFE_INTEGER), Buffer.from('max'));
    expect((await store.body(0)).toString()).toBe('zero');
    expect((await store.body(Number.MAX_SAFE_INTEGER)).toString()).toBe('max');
    expect(await listedIds(store)).toEqual([0, Number.MAX_SAFE_INTEGER]);
  });

  test('bodies come back byte for byte', async () => {
    store = make();
    const bodies: Buffer[] = [
      Buffer.alloc(0),
      Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256)), // every byte value, NUL included
      Buffer.from('\n\nstarts with an empty line\r\n\r\nand has more\n\n'),
      Buffer.from('\r\n\r\n'),
      Buffer.from('{"v":1,"size":0}\n\n'), // looks like a header
      Buffer.from('Subject: caf\u00e9 \u2603\r\n\r\nbody\r\n.\r\n', 'utf8'),
      randomBytes(MB),
    ];
    await Promise.all(bodies.map((b, i) => store.put(msg(100 + i), b)));
    for (let i = 0; i < bodies.length; i++) {
      const got = await store.body(100 + i);
      expect(got.length, `body ${i}`).toBe(bodies[i].length);
      expect(got.equals(bodies[i]), `body ${i}`).toBe(true);
    }
  });

  test("what was stored does not change with the caller's objects", async () => {
    store = make();
    const m = msg(5);
    const b = Buffer.from('original');
    await store.put(m, b);
    m.domain = 'changed.example';
    m.envelope.to.push('extra@x');
    b.fill(0x21);
    const got = await store.get(5);
    expect(got).toEqual(msg(5));
    got!.envelope.to.length = 0;
    (await store.body(5)).fill(0x22);
    expect(await store.get(5)).toEqual(msg(5));
    expect((await store.body(5)).toString()).toBe('original');
  });

  test('a duplicate id is refused, the stored message kept', async () => {
    store = make();
    await store.put(msg(7), Buffer.from('first'));
    await expect(store.put(msg(7, { domain: 'other.example' }), Buffer.from('second'))).rejects.toMatchObject({
      code: 'ERR_DUPLICATE_ID',
      message: expect.stringMatching(/^message\.id 7 is already stored/),
    });
    expect(await store.get(7)).toEqual(msg(7));
    expect((await store.body(7)).toString()).toBe('first');
    // After remove(), the id is free again.
    await store.remove(7);
    await store.put(msg(7), Buffer.from('third'));
    expect((await store.body(7)).toString()).toBe('third');
  });

  test('two concurrent puts of one id: one wins, the other is refused', async () => {
    store = make();
    const r = await Promise.allSettled([store.put(msg(8), Buffer.from('a')), store.put(msg(8), Buffer.from('b'))]);
    expect(r.map((x) => x.status).sort()).toEqual(['fulfilled', 'rejected']);
    const rejected = r.find((x) => x.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason).toMatchObject({ code: 'ERR_DUPLICATE_ID' });
    const winner = r[0].status === 'fulfilled' ? 'a' : 'b';
    expect((await store.body(8)).toString()).toBe(winner);
    expect(await listedIds(store)).toEqual([8]);
  });

  test.each(BAD_PUTS)('put refuses %s', async (_label, message, body, error, pattern) => {
    store = make();
    const p = store.put(message as StoredMessage, body as Buffer);
    await expect(p).rejects.toThrow(pattern);
    await expect(p).rejects.toBeInstanceOf(error);
    expect(await collect(store)).toEqual([]);
    expect(await store.get(1)).toBeUndefined();
  });

  test.each(BAD_IDS)('get, body and remove refuse an id that is %s', async (_label, id, error, pattern) => {
    store = make();
    const ops: ((id: number) => Promise<unknown>)[] = [
      (i) => store.get(i),
      (i) => store.body(i),
      (i) => store.remove(i),
    ];
    for (const op of ops) {
      const p = op(id as number);
      await expect(p).rejects.toThrow(pattern);
      await expect(p).rejects.toBeInstanceOf(error);
    }
  });

  test.runIf(removesNow)(
    'removeNow(): the message is gone when it returns undefined, else when its promise resolves',
    async () => {
      store = make();
      for (let id = 1; id <= 3; id++) await store.put(msg(id), Buffer.from(`m${id}`));
      expect(typeof store.removeNow).toBe('function');
      const done = store.removeNow!(2);
      if (done !== undefined) await done;
      expect(await store.get(2)).toBeUndefined();
      expect(await listedIds(store)).toEqual([1, 3]);
      const again = store.removeNow!(2); // unknown now: not an error
      if (again !== undefined) await again;
      expect(store.removeNow!(999)).toBeUndefined();
      for (const [, id, error, pattern] of BAD_IDS) {
        expect(() => store.removeNow!(id as number)).toThrow(pattern);
        expect(() => store.removeNow!(id as number)).toThrow(error);
      }
    },
  );

  test.runIf(removesNow)('removeNow() of a store whose remove() was replaced calls that remove()', async () => {
    store = make();
    await store.put(msg(1), Buffer.from('kept'));
    const removed: number[] = [];
    store.remove = async (id) => {
      removed.push(id);
    };
    await store.removeNow!(1);
    expect(removed).toEqual([1]);
    expect(await listedIds(store)).toEqual([1]);
  });

  test('after close(), put is refused and reads still work', async () => {
    store = make();
    await store.put(msg(1), Buffer.from('kept'));
    await store.close?.();
    await expect(store.put(msg(2), Buffer.from('late'))).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    expect((await store.body(1)).toString()).toBe('kept');
    expect(await listedIds(store)).toEqual([1]);
  });
});

// --- FileSpool ----------------------------------------------------------------------------------

describe('FileSpool', () => {
  test('constructor arguments', () => {
    expect(() => new FileSpool(5 as unknown as string)).toThrow(TypeError);
    expect(() => new FileSpool(5 as unknown as string)).toThrow(/^dir must be a string, got number/);
    expect(() => new FileSpool('')).toThrow(RangeError);
    expect(() => new FileSpool('')).toThrow(/^dir must not be empty/);
    expect(() => new FileSpool('x', null as unknown as undefined)).toThrow(/^options must be an object, got null/);
    expect(() => new FileSpool('x', { onCorrupt: 'warn' as unknown as () => void })).toThrow(TypeError);
    expect(() => new FileSpool('x', { onCorrupt: 'warn' as unknown as () => void })).toThrow(
      /^options\.onCorrupt must be a function/,
    );
    expect(() => new FileSpool('x', { cacheBytes: -1 })).toThrow(/^options\.cacheBytes must be an integer from 0/);
    expect(() => new FileSpool('x', { cacheBytes: 1.5 })).toThrow(RangeError);
    expect(() => new FileSpool('x', { fileMode: 0o1000 })).toThrow(RangeError);
    expect(() => new FileSpool('x', { fileMode: 0o1000 })).toThrow(
      /^options\.fileMode must be an integer from 0 to 511/,
    );
    expect(() => new FileSpool('x', { onCorupt: () => {} } as never)).toThrow(/^options: unknown key "onCorupt"/);
  });

  test('files are <dir>/<id % 256 in hex>/<id>.msg: a JSON header line, an empty line, the body', async () => {
    const dir = path.join(tempDir('layout'), 'spool', 'nested');
    const spool = new FileSpool(dir);
    expect(fs.existsSync(dir)).toBe(false); // created on the first put
    const cases: [number, string][] = [
      [0, '00'],
      [255, 'ff'],
      [256, '00'],
      [4661, '35'],
      [Number.MAX_SAFE_INTEGER, 'ff'],
    ];
    const bodies = new Map<number, Buffer>();
    for (const [id] of cases) {
      bodies.set(id, Buffer.concat([Buffer.from(`body of ${id}\n\n`), randomBytes(100)]));
      await spool.put(msg(id, { priority: 1, expiresAt: id === 0 ? Infinity : 1_800_000_000_000 }), bodies.get(id)!);
    }
    expect(filesUnder(dir)).toEqual(cases.map(([id, shard]) => path.join(shard, `${id}.msg`)).sort());
    for (const [id, shard] of cases) {
      expect(shardOf(id)).toBe(shard);
      const file = path.join(dir, shard, `${id}.msg`);
      expect(spool.pathOf(id)).toBe(file);
      if (process.platform !== 'win32') expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      const data = fs.readFileSync(file);
      const nl = data.indexOf(0x0a);
      const header = JSON.parse(data.toString('utf8', 0, nl));
      const body = bodies.get(id)!;
      expect(header).toEqual({
        v: 1,
        size: body.length,
        crc32: crc32(body),
        message: { ...msg(id, { priority: 1 }), expiresAt: id === 0 ? 'Infinity' : 1_800_000_000_000 },
      });
      expect(data[nl + 1]).toBe(0x0a);
      expect(data.subarray(nl + 2).equals(body)).toBe(true);
    }
  });

  test('a new FileSpool on the same directory lists everything; duplicates are refused across instances', async () => {
    const dir = tempDir('reopen');
    const a = new FileSpool(dir);
    const bodies = new Map<number, Buffer>();
    for (let id = 0; id < 300; id += 7) bodies.set(id, randomBytes(id * 13));
    await Promise.all([...bodies].map(([id, b]) => a.put(msg(id, { expiresAt: id % 2 ? Infinity : id }), b)));
    await a.close();

    const reports: string[] = [];
    const b = new FileSpool(dir, { onCorrupt: (f) => reports.push(f) });
    const listed = await collect(b);
    expect(listed.map((m) => m.id).sort((x, y) => x - y)).toEqual([...bodies.keys()]);
    for (const m of listed) {
      expect(m).toEqual(msg(m.id, { expiresAt: m.id % 2 ? Infinity : m.id }));
      expect((await b.body(m.id)).equals(bodies.get(m.id)!)).toBe(true);
    }
    expect(reports).toEqual([]);
    await expect(b.put(msg(7), Buffer.from('again'))).rejects.toMatchObject({ code: 'ERR_DUPLICATE_ID' });
    expect((await b.body(7)).equals(bodies.get(7)!)).toBe(true);
  });

  test('list() of a directory that does not exist is empty and creates nothing', async () => {
    const dir = path.join(tempDir('absent'), 'none');
    expect(await collect(new FileSpool(dir))).toEqual([]);
    expect(fs.existsSync(dir)).toBe(false);
  });

  test('damaged files are skipped and reported, left in place; leftover temporary files are deleted', async () => {
    const dir = tempDir('corrupt');
    const spool = new FileSpool(dir);
    for (let id = 1; id <= 5; id++) await spool.put(msg(id), Buffer.from(`body ${id}\n\nwith an empty line`));
    const file = (id: number): string => path.join(dir, shardOf(id), `${id}.msg`);
    // 1: truncated by 10 bytes.
    fs.truncateSync(file(1), fs.statSync(file(1)).size - 10);
    // 2: garbage.
    fs.writeFileSync(file(2), Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 11) % 256)));
    // 3: one body byte flipped (the header is fine: list() lists it, body() refuses it).
    const d3 = fs.readFileSync(file(3));
    d3[d3.length - 1] ^= 0xff;
    fs.writeFileSync(file(3), d3);
    // 4 and 5 intact. 12: empty. 13: header cut in the middle. 7: in shard 00, not 07.
    fs.mkdirSync(path.join(dir, '0c'));
    fs.writeFileSync(file(12), '');
    fs.mkdirSync(path.join(dir, '0d'));
    fs.writeFileSync(file(13), '{"v":1,"size":3,"crc');
    fs.mkdirSync(path.join(dir, '00'));
    fs.writeFileSync(path.join(dir, '00', '7.msg'), fs.readFileSync(file(4)));
    // 14: a valid header of another id; 15: bytes after the body.
    fs.mkdirSync(path.join(dir, '0e'));
    fs.copyFileSync(file(4), file(14));
    fs.mkdirSync(path.join(dir, '0f'));
    fs.writeFileSync(
      file(15),
      Buffer.concat(
        [fs.readFileSync(file(5)).toString().replace('"id":5', '"id":15'), 'xx'].map((s) => Buffer.from(s)),
      ),
    );
    // Leftovers of interrupted puts, and a file that is none of ours.
    fs.mkdirSync(path.join(dir, '09'));
    fs.writeFileSync(path.join(dir, '09', '.9.msg.0a1b2c3d4e5f.tmp'), 'half a mess');
    fs.writeFileSync(path.join(dir, shardOf(4), '.4.msg.abcdef.tmp'), '');
    fs.writeFileSync(path.join(dir, '01', 'README'), 'not a message');

    const reports: [string, Error][] = [];
    const reopened = new FileSpool(dir, { onCorrupt: (f, e) => reports.push([f, e]) });
    expect(await listedIds(reopened)).toEqual([3, 4, 5]);
    const byFile = new Map(reports.map(([f, e]) => [f, e]));
    expect([...byFile.keys()].sort()).toEqual(
      [file(1), file(2), path.join(dir, '00', '7.msg'), file(12), file(13), file(14), file(15)].sort(),
    );
    for (const [, e] of reports) expect(e).toBeInstanceOf(SpoolCorruptError);
    expect(byFile.get(file(1))!.message).toMatch(/truncated: \d+ bytes, the header announces \d+/);
    expect(byFile.get(file(2))!.message).toMatch(/truncated: no end of header line|header is not JSON/);
    expect(byFile.get(path.join(dir, '00', '7.msg'))!.message).toMatch(/in shard 00, expected 07/);
    expect(byFile.get(file(12))!.message).toMatch(/truncated: no end of header line in 0 bytes/);
    expect(byFile.get(file(13))!.message).toMatch(/truncated: no end of header line/);
    expect(byFile.get(file(14))!.message).toMatch(/header\.message\.id 4 does not match the file name/);
    expect(byFile.get(file(15))!.message).toMatch(/2 bytes after the body/);

    // Temporary files gone; damaged files and the stranger kept.
    expect(tmpFiles(dir)).toEqual([]);
    for (const f of [file(1), file(2), file(12), path.join(dir, '01', 'README')]) expect(fs.existsSync(f)).toBe(true);

    // get() and body() refuse damaged files rather than return garbage.
    await expect(reopened.get(1)).rejects.toBeInstanceOf(SpoolCorruptError);
    await expect(reopened.body(2)).rejects.toBeInstanceOf(SpoolCorruptError);
    await expect(reopened.body(3)).rejects.toThrow(/body does not match its crc32/);
    expect((await reopened.body(4)).toString()).toBe('body 4\n\nwith an empty line');
  });

  test('the default onCorrupt is console.warn', async () => {
    const dir = tempDir('warn');
    fs.mkdirSync(path.join(dir, '01'));
    fs.writeFileSync(path.join(dir, '01', '1.msg'), 'garbage\n\n');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      expect(await collect(new FileSpool(dir))).toEqual([]);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0][0])).toMatch(/FileSpool: skipping .*1\.msg: .*header is not JSON/);
    } finally {
      warn.mockRestore();
    }
  });

  test('200 concurrent puts', async () => {
    const dir = tempDir('concurrent');
    const spool = new FileSpool(dir);
    const bodies = Array.from({ length: 200 }, (_, i) => randomBytes(i * 101));
    await Promise.all(bodies.map((b, i) => spool.put(msg(1000 + i), b)));
    expect(await listedIds(spool)).toEqual(bodies.map((_, i) => 1000 + i));
    expect(filesUnder(dir).length).toBe(200);
    expect(tmpFiles(dir)).toEqual([]);
    const got = await Promise.all(bodies.map((_, i) => spool.body(1000 + i)));
    got.forEach((b, i) => {
      expect(b.equals(bodies[i]), `body ${1000 + i}`).toBe(true);
    });
  });

  test('remove() during the put of its id waits for the put, then removes', async () => {
    const spool = new FileSpool(tempDir('remove-race'));
    const put = spool.put(msg(42), Buffer.from('x'));
    await Promise.all([put, spool.remove(42)]);
    expect(await spool.get(42)).toBeUndefined();
    expect(await listedIds(spool)).toEqual([]);
  });

  test('list() keeps the temporary file of a put in progress', async () => {
    const dir = tempDir('list-during-put');
    const spool = new FileSpool(dir);
    const big = randomBytes(8 * MB);
    const puts = Array.from({ length: 8 }, (_, i) => spool.put(msg(i), big));
    // Lists (and cleans) while the puts write; none of them may lose its temporary file.
    const seen = new Set<number>();
    for (let round = 0; round < 5; round++) for (const id of await listedIds(spool)) seen.add(id);
    await Promise.all(puts);
    expect(await listedIds(spool)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (let i = 0; i < 8; i++) expect((await spool.body(i)).equals(big)).toBe(true);
  });
});

// --- crash --------------------------------------------------------------------------------------

describe('FileSpool: a writer SIGKILLed at a random point', () => {
  const FIXTURE = path.join(root, 'test', 'fixtures', 'spool-crash.mjs');
  let spoolLib = '';

  beforeAll(() => {
    spoolLib = compileStore(tempDir('build'), 'file_spool');
  }, 120_000);

  test('a new FileSpool lists only complete messages, every acknowledged one among them', async () => {
    const seed = Date.now();
    const rand = seeded(seed);
    const dir = tempDir('crash');
    const COUNT = 300;
    const attempted = new Set<number>();
    const mustHave = new Set<number>();
    const notes: string[] = [];
    for (let round = 0; round < 5; round++) {
      const first = round * COUNT;
      for (let id = first; id < first + COUNT; id++) attempted.add(id);
      const afterAcks = rand(80);
      const delay = rand(25);
      const k = await runAndKill(FIXTURE, spoolLib, [dir, String(first), String(COUNT), '16'], afterAcks, delay);
      const acked = k.lines.filter((l) => l.startsWith('ok ')).map((l) => Number(l.slice(3)));
      const ctx = `seed ${seed}, round ${round}, kill after ${afterAcks} acks + ${delay} ms; child: status ${k.status} signal ${k.signal} stderr ${k.stderr.slice(0, 2000)}`;
      expect(k.stderr, ctx).toBe('');
      expect(k.signal === 'SIGKILL' || (k.status === 0 && k.done), ctx).toBe(true);
      for (const id of acked) mustHave.add(id);

      const leftover = tmpFiles(dir).length;
      const reports: string[] = [];
      const spool = new FileSpool(dir, { onCorrupt: (f, e) => reports.push(`${f}: ${e.message}`) });
      const listed = await collect(spool);
      expect(reports, ctx).toEqual([]);
      const ids = new Set(listed.map((m) => m.id));
      expect(ids.size, ctx).toBe(listed.length);
      for (const id of mustHave) expect(ids.has(id), `acknowledged id ${id} is missing; ${ctx}`).toBe(true);
      for (const m of listed) {
        expect(attempted.has(m.id), ctx).toBe(true);
        expect(m, ctx).toEqual(crashMessage(m.id));
        expect(crashBodyProblem(m.id, await spool.body(m.id)), `id ${m.id}; ${ctx}`).toBe('');
      }
      expect(tmpFiles(dir), ctx).toEqual([]);
      notes.push(
        `round ${round}: ${k.signal ?? `exit ${k.status}`}, ${acked.length} acked, ${listed.length} listed in total, ${leftover} temp files removed`,
      );
    }
    console.info(`crash test (seed ${seed}):\n  ${notes.join('\n  ')}`);
  }, 120_000);
});
