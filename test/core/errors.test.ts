// The package's one error class: every coded error it throws or reports is a MailQueueError (the
// native core's included: lib/native.ts hands the class to the addon at load), with a code from
// ErrorCode; SpoolCorruptError, SmtpOpenError, SmtpSendError and HookError extend it. The codes
// the sources use and the ERROR_CODES list must agree: a scan of lib/ and native/ fails on an ERR_*
// code that is thrown but not listed, and on a listed one that nothing throws.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, expectTypeOf, test } from 'vitest';

import {
  ERROR_CODES,
  FileSpool,
  HookError,
  MailQueueCore,
  MailQueueError,
  MemoryStore,
  SmtpOpenError,
  SmtpSendError,
  SmtpTransport,
  SpoolCorruptError,
  type CodedError,
  type ErrorCode,
  type SmtpOpenErrorCode,
  type SmtpSendErrorCode,
} from '../../lib/index.js';
import { native } from '../../lib/native.js';
import type { DnsResolver } from '../../lib/transport/mx_resolver.js';
import { ADDON } from '../support/compiled_lib.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const T0 = 1_700_000_000_000;

/** The error `run` throws (or the promise it returns rejects with). */
async function caught(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

function expectCoded(err: unknown, code: ErrorCode, cls: abstract new (...a: never[]) => Error = MailQueueError): void {
  expect(err).toBeInstanceOf(Error);
  expect(err).toBeInstanceOf(MailQueueError);
  expect(err, `${(err as Error).name}: ${(err as Error).message}`).toBeInstanceOf(cls);
  expect((err as MailQueueError).code).toBe(code);
  expect(ERROR_CODES).toContain(code);
}

function queuedCore(): MailQueueCore {
  const core = new MailQueueCore({ bindings: ['a', 'b'], clock: () => T0 });
  core.enqueue({ id: 1, domain: 'x.com', binding: 'a' });
  core.enqueue({ id: 2, domain: 'x.com', binding: 'a' });
  return core;
}

const tempDirs: string[] = [];
afterAll(() => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

// The codes each call below produces: a code outside ErrorCode is a compile error here.
const EXERCISED = [
  'ERR_CLOSED',
  'ERR_REENTRANT',
  'ERR_CONFIG',
  'ERR_DUPLICATE_ID',
  'ERR_UNKNOWN_ID',
  'ERR_IN_FLIGHT',
  'ERR_NOT_IN_FLIGHT',
  'ERR_UNKNOWN_DOMAIN',
  'ERR_UNKNOWN_CONNECTION',
  'ERR_NO_VISIT',
  'ERR_HOOK_FAILED',
  'ERR_SPOOL_CORRUPT',
  'ERR_SMTP_NXDOMAIN',
  'ERR_SMTP_CONNECT',
  'ERR_DOMAIN_FORGOTTEN',
] as const satisfies readonly ErrorCode[];

describe('every coded error is a MailQueueError with its documented code', () => {
  test('the class: name, code, message, cause; codedError-shaped', () => {
    const cause = new Error('under');
    const e = new MailQueueError('ERR_CONFIG', 'config: bad', { cause });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('MailQueueError');
    expect(e.code).toBe('ERR_CONFIG');
    expect(e.message).toBe('config: bad');
    expect(e.cause).toBe(cause);
    expect(String(e)).toBe('MailQueueError: config: bad');
    const shaped: CodedError = e;
    expect(shaped.code).toBe('ERR_CONFIG');
  });

  test('the codes exercised below are the whole list but for the ones no test can reach cheaply', () => {
    // ERR_TOO_MANY needs 2^27 messages or 2^20 open cores; ERR_INTERNAL a status the addon does not
    // know; the other SMTP codes (and ERR_HOST_CAP) are tested in test/transport, ERR_CLUSTER in
    // test/cluster. ERR_DOMAIN_IN_USE and ERR_DOMAIN_HELD are the native core's names of
    // forgetDomain's refusals, which the addon returns as numbers.
    const unreached = ERROR_CODES.filter((c) => !(EXERCISED as readonly string[]).includes(c));
    expect(unreached.sort()).toEqual([
      'ERR_CLUSTER',
      'ERR_DOMAIN_HELD',
      'ERR_DOMAIN_IN_USE',
      'ERR_HOST_CAP',
      'ERR_INTERNAL',
      'ERR_SMTP_DNS',
      'ERR_SMTP_NO_ADDRESS',
      'ERR_SMTP_NULL_MX',
      'ERR_SMTP_ROUTE',
      'ERR_TOO_MANY',
    ]);
  });

  test('core closed: from the facade and from native code', async () => {
    const core = queuedCore();
    core.close();
    expectCoded(await caught(() => core.enqueue({ id: 3, domain: 'x.com' })), 'ERR_CLOSED');
    expectCoded(await caught(() => native.enqueue(123_456, 0, 0, 1, 0, T0, Infinity, T0)), 'ERR_CLOSED');
  });

  test('duplicate id: JS side (a new domain) and native side (a known one)', async () => {
    const core = queuedCore();
    try {
      const js = await caught(() => core.enqueue({ id: 1, domain: 'y.com' }));
      expectCoded(js, 'ERR_DUPLICATE_ID');
      expect((js as Error).message).toBe('message.id 1 is already queued');
      const nat = await caught(() => core.enqueue({ id: 1, domain: 'x.com' }));
      expectCoded(nat, 'ERR_DUPLICATE_ID');
      expect((nat as Error).message).toBe('id 1: duplicate id');
    } finally {
      core.close();
    }
  });

  test('unknown id, in flight, not in flight, unknown connection (native code)', async () => {
    const core = queuedCore();
    try {
      expect(core.take('x.com', 'a', 1)).toEqual([1]);
      expectCoded(await caught(() => core.settle(99)), 'ERR_UNKNOWN_ID');
      expectCoded(await caught(() => core.cancel(1)), 'ERR_IN_FLIGHT');
      expectCoded(await caught(() => core.settle(2)), 'ERR_NOT_IN_FLIGHT');
      expectCoded(await caught(() => core.takeFor(12_345, new Float64Array(1))), 'ERR_UNKNOWN_CONNECTION');
      expectCoded(await caught(() => core.releaseConnection(12_345)), 'ERR_UNKNOWN_CONNECTION');
    } finally {
      core.close();
    }
  });

  test('visitDefault before prepareVisit (the raw addon)', async () => {
    const h = native.createCore(
      Float64Array.of(1, 0, 10, 0),
      Int32Array.of(-1),
      Float64Array.of(Infinity),
      new Float64Array(0),
    );
    try {
      expectCoded(await caught(() => native.visitDefault(h, 0, 0)), 'ERR_NO_VISIT');
    } finally {
      native.destroyCore(h);
    }
  });

  test('unknown domain, configuration', async () => {
    const core = queuedCore();
    try {
      expectCoded(await caught(() => core.domain('never.com')), 'ERR_UNKNOWN_DOMAIN');
      // A record held after its domain was forgotten (no mail, no connection left).
      const dr = core.domain('x.com');
      core.cancelMany(Float64Array.from(core.activeQueue('x.com', 0).toArray()));
      for (const g of core.maintain().grants) core.releaseConnection(g.connectionId);
      core.forgetIdleDomains();
      expectCoded(await caught(() => dr.activeSize()), 'ERR_DOMAIN_FORGOTTEN');
    } finally {
      core.close();
    }
    expectCoded(await caught(() => new MailQueueCore({ bindings: ['a', 'a'] })), 'ERR_CONFIG');
    expectCoded(await caught(() => new MailQueueCore({ config: { bogus: {} } as never })), 'ERR_CONFIG');
  });

  test('re-entrant call from a provider; a failing provider reported as a HookError event', async () => {
    const core = queuedCore();
    try {
      const reported: unknown[] = [];
      core.on('error', (e) => reported.push(e));
      let inner: unknown;
      core.hooks.mailQueueMaintain.registerFirst(() => {
        try {
          core.maintain();
        } catch (e) {
          inner = e;
        }
        throw new Error('provider failed');
      });
      core.maintain();
      expectCoded(inner, 'ERR_REENTRANT');
      expect(reported.length).toBeGreaterThan(0);
      for (const e of reported) {
        expectCoded(e, 'ERR_HOOK_FAILED', HookError);
        expect((e as HookError).name).toBe('HookError');
        expect((e as HookError).hook).toBeTypeOf('string');
        expect(((e as HookError).cause as Error).message).toBe('provider failed');
      }
    } finally {
      core.close();
    }
  });

  test('stores: closed, duplicate and unknown ids, a corrupt spool file', async () => {
    const mem = new MemoryStore();
    const m = { id: 7, domain: 'x.com', envelope: { from: 'a@b.c', to: ['d@x.com'] } };
    await mem.put(m, Buffer.from('body'));
    expectCoded(await caught(() => mem.put(m, Buffer.from('body'))), 'ERR_DUPLICATE_ID');
    expectCoded(await caught(() => mem.body(8)), 'ERR_UNKNOWN_ID');
    await mem.close();
    expectCoded(await caught(() => mem.put({ ...m, id: 9 }, Buffer.from('body'))), 'ERR_CLOSED');

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-errors-'));
    tempDirs.push(dir);
    fs.mkdirSync(path.join(dir, '05'));
    fs.writeFileSync(path.join(dir, '05', '5.msg'), 'not a header\n\nbody');
    const spool = new FileSpool(dir);
    const corrupt = await caught(() => spool.get(5));
    expectCoded(corrupt, 'ERR_SPOOL_CORRUPT', SpoolCorruptError);
    expect((corrupt as SpoolCorruptError).name).toBe('SpoolCorruptError');
    expect((corrupt as SpoolCorruptError).file).toBe(path.join(dir, '05', '5.msg'));
    await spool.close();
    expectCoded(await caught(() => spool.put({ ...m, id: 6 }, Buffer.from('body'))), 'ERR_CLOSED');
  });

  test('SMTP: open() of a domain that does not exist, of one whose host refuses, after close()', async () => {
    const refusedPort = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as net.AddressInfo;
        s.close(() => resolve(port));
      });
    });
    const enotfound = (name: string) =>
      Promise.reject(Object.assign(new Error(`queryMx ENOTFOUND ${name}`), { code: 'ENOTFOUND' }));
    const resolver: DnsResolver = {
      resolveMx: (name) =>
        name === 'nx.example' ? enotfound(name) : Promise.resolve([{ exchange: 'mx.refused.example', priority: 10 }]),
      resolve4: (name) => (name === 'mx.refused.example' ? Promise.resolve(['127.0.0.1']) : enotfound(name)),
      resolve6: (name) => enotfound(name),
    };
    const t = new SmtpTransport({ resolver, port: refusedPort, timeouts: { connect: 2000 } });
    try {
      const nx = await caught(() => t.open({ domain: 'nx.example', binding: 'default', bindingSlot: 0 }));
      expectCoded(nx, 'ERR_SMTP_NXDOMAIN', SmtpOpenError);
      expect((nx as SmtpOpenError).name).toBe('SmtpOpenError');
      expect((nx as SmtpOpenError).permanent).toBe(true);
      const refused = await caught(() => t.open({ domain: 'refused.example', binding: 'default', bindingSlot: 0 }));
      expectCoded(refused, 'ERR_SMTP_CONNECT', SmtpOpenError);
      expect((refused as SmtpOpenError).transient).toBe(true);
      expect((refused as SmtpOpenError).attempts.map((a) => a.code)).toEqual(['ECONNREFUSED']);
    } finally {
      await t.close();
    }
    expectCoded(
      await caught(() => t.open({ domain: 'nx.example', binding: 'default', bindingSlot: 0 })),
      'ERR_CLOSED',
      SmtpOpenError,
    );
  });

  test("SmtpSendError is a MailQueueError whose code may also be nodemailer's", () => {
    const e = new SmtpSendError('ECONNECTION', 1, 'mx.example', 'smtp send #1: connection closed');
    expect(e).toBeInstanceOf(MailQueueError);
    expect(e.name).toBe('SmtpSendError');
    expect(e.code).toBe('ECONNECTION');
    expect(e.transient).toBe(true);
  });

  test('types: the codes of the class and its subclasses', () => {
    expectTypeOf<MailQueueError['code']>().toEqualTypeOf<ErrorCode>();
    expectTypeOf<HookError['code']>().toEqualTypeOf<'ERR_HOOK_FAILED'>();
    expectTypeOf<SpoolCorruptError['code']>().toEqualTypeOf<'ERR_SPOOL_CORRUPT'>();
    expectTypeOf<SmtpOpenError['code']>().toEqualTypeOf<SmtpOpenErrorCode>();
    expectTypeOf<SmtpOpenErrorCode>().toExtend<ErrorCode>();
    expectTypeOf<SmtpSendError['code']>().toEqualTypeOf<SmtpSendErrorCode>();
    expectTypeOf<(typeof ERROR_CODES)[number]>().toEqualTypeOf<ErrorCode>();
    expectTypeOf<MailQueueError>().toExtend<CodedError>();
  });
});

describe('the addon without the class (loaded raw, in a child process)', () => {
  test('a plain Error with a code until setErrorClass; then the class given; a constructor that throws wins', () => {
    const script = `
      const addon = require(${JSON.stringify(process.env.MAIL_QUEUE_CORE_BINDING ?? ADDON)});
      const out = [];
      const probe = () => {
        try { addon.enqueue(123456, 0, 0, 1, 0, 0, Infinity, 0); out.push('no error'); }
        catch (e) { out.push([e.constructor.name, e.code, e.message, Object.keys(e).join(',')].join('|')); }
      };
      probe();
      class Mine extends Error { constructor(code, message) { super(message); this.code = code; this.args = arguments.length; } }
      addon.setErrorClass(Mine);
      probe();
      try { addon.enqueue(123456, 0, 0, 1, 0, 0, Infinity, 0); } catch (e) { out.push(String(e instanceof Mine) + ' ' + e.args); }
      addon.setErrorClass(function Broken() { throw new SyntaxError('constructor failed'); });
      probe();
      try { addon.enqueue(123456, 0, 0, 1, 0, 0, Infinity, 0); } catch (e) { out.push(e.constructor.name + ': ' + e.message); }
      console.log(JSON.stringify(out));
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      'Error|ERR_CLOSED|the core is closed|code',
      'Mine|ERR_CLOSED|the core is closed|code,args',
      'true 2', // new Mine(code, message)
      'SyntaxError||constructor failed|',
      'SyntaxError: constructor failed',
    ]);
  });
});

// --- the code list against the sources ---------------------------------------------------------------

function filesUnder(dir: string, exts: readonly string[]): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(p, exts));
    else if (exts.some((e) => entry.name.endsWith(e))) out.push(p);
  }
  return out;
}

/** ERR_* string literals ('...', "...", `...`) in `text`. */
function codesIn(text: string): Set<string> {
  return new Set([...text.matchAll(/['"`](ERR_[A-Z0-9_]+)['"`]/g)].map((m) => m[1]));
}

describe('ERROR_CODES against the sources', () => {
  const read = (rel: string) => fs.readFileSync(path.join(root, rel), 'utf8');
  // lib/errors.ts without the ERROR_CODES list itself (so that a stale entry is seen as one).
  const errorsTs = read('lib/errors.ts');
  const listStart = errorsTs.indexOf('export const ERROR_CODES = [');
  const listEnd = errorsTs.indexOf('] as const;', listStart);
  const libFiles = filesUnder(path.join(root, 'lib'), ['.ts']).filter(
    (f) => !f.endsWith(path.join('lib', 'errors.ts')),
  );
  const nativeFiles = [
    ...filesUnder(path.join(root, 'native', 'addon'), ['.cc', '.hpp', '.cpp']),
    ...filesUnder(path.join(root, 'native', 'core'), ['.cc', '.hpp', '.cpp']),
  ];
  const statusCpp = read('native/core/status.cpp');
  const argsHpp = read('native/addon/args.hpp');

  // status.cpp names every core status (statusName); args.hpp's throwStatus throws some of them with
  // that name as the code and the others as a RangeError (whose code is never seen).
  const statusNames = new Map(
    [...statusCpp.matchAll(/case Status::(\w+):\s*return "(ERR_[A-Z0-9_]+)";/g)].map((m) => [m[1], m[2]]),
  );
  const throwStatus = argsHpp.slice(argsHpp.indexOf('inline void throwStatus('), argsHpp.indexOf('class Args'));
  const viaCode = new Set(
    [...throwStatus.matchAll(/case Status::(\w+):\s*return throwCode\(env, mqc::statusName\(st\)/g)].map((m) => m[1]),
  );
  const viaRange = new Set([...throwStatus.matchAll(/case Status::(\w+):\s*return throwRange\(/g)].map((m) => m[1]));
  // statusName's fallback for a value outside the enum: throwStatus throws ERR_INTERNAL there instead.
  const statusFallback = /\n {2}return "(ERR_[A-Z0-9_]+)";\n\}/.exec(statusCpp)?.[1];

  /** Codes that appear in the sources but are never an error's code, each with the reason. */
  const NOT_ERROR_CODES: Record<string, string> = {
    ERR_MAIL_QUEUE_CORE:
      'the code of the process warning outbox.reportError emits when no error listener is registered',
  };

  test('the scan finds what it should (guards the patterns themselves)', () => {
    expect(listStart).toBeGreaterThan(0);
    expect(listEnd).toBeGreaterThan(listStart);
    expect(libFiles.length).toBeGreaterThan(20);
    expect(nativeFiles.some((f) => f.endsWith('status.cpp'))).toBe(true);
    expect(statusNames.get('DuplicateId')).toBe('ERR_DUPLICATE_ID');
    expect(viaCode.has('DuplicateId')).toBe(true);
    expect(viaRange.has('BadArgument')).toBe(true);
    expect(statusFallback).toBeDefined();
    expect(throwStatus).toContain('throwCode(env, "ERR_INTERNAL", what + ": unexpected status")');
    // Every status but Ok is thrown one way or the other.
    for (const s of statusNames.keys()) expect(viaCode.has(s) || viaRange.has(s), `Status::${s}`).toBe(true);
  });

  test('every ERR_* code in lib/ and native/ is in ERROR_CODES, and every listed code is used', () => {
    const listed = new Set<string>(ERROR_CODES);
    expect(listed.size).toBe(ERROR_CODES.length);
    const notThrown = new Set([...viaRange].map((s) => statusNames.get(s)!).filter(Boolean));
    if (statusFallback) notThrown.add(statusFallback);

    const used = new Map<string, string[]>(); // code -> files
    const note = (code: string, file: string) => used.set(code, [...(used.get(code) ?? []), path.relative(root, file)]);
    for (const f of libFiles) for (const c of codesIn(fs.readFileSync(f, 'utf8'))) note(c, f);
    for (const c of codesIn(errorsTs.slice(0, listStart) + errorsTs.slice(listEnd))) note(c, 'lib/errors.ts');
    for (const f of nativeFiles) {
      if (f.endsWith('status.cpp')) continue; // its names count only as throwStatus throws them
      for (const c of codesIn(fs.readFileSync(f, 'utf8'))) note(c, f);
    }
    for (const s of viaCode) note(statusNames.get(s)!, 'native/core/status.cpp');

    const missing = [...used.keys()].filter((c) => !listed.has(c) && !(c in NOT_ERROR_CODES));
    expect(
      missing.map((c) => `${c} (${used.get(c)!.join(', ')})`),
      'thrown but not in ERROR_CODES',
    ).toEqual([]);
    const stale = ERROR_CODES.filter((c) => !used.has(c));
    expect(stale, 'in ERROR_CODES but thrown nowhere').toEqual([]);
    // A status thrown as a RangeError must not be listed as a code either (nothing throws it).
    for (const c of notThrown) if (!used.has(c)) expect(listed.has(c), c).toBe(false);
  });

  test('docs/api.md documents every code', () => {
    const api = read('docs/api.md');
    const section = api.slice(api.indexOf('## Errors'));
    for (const c of ERROR_CODES) expect(section, c).toContain(`\`${c}\``);
  });
});
