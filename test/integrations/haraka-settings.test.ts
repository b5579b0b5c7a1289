// The Haraka plugin's reading of config/mail_queue_core.ini (integrations/haraka/settings.js): the
// sections as haraka-config parses them become the core's, the transport's and the store's
// options; durations are Haraka-style strings; every mistake is a TypeError or RangeError naming
// the file, the section and the key, so Haraka stops at start with the reason.
import { createRequire } from 'node:module';
import { describe, expect, test } from 'vitest';

type Ini = Record<string, Record<string, unknown>>;
const require = createRequire(import.meta.url);
const { readSettings, parseDuration, workerCount } = require('../../integrations/haraka/settings.js') as {
  readSettings: (ini: Ini) => {
    core: { bindings: string[]; config: Record<string, unknown>; deliveryTimeout?: number };
    transport: Record<string, unknown>;
    store: { kind: string; dir: string };
    submitTimeoutMs: number;
    stopTimeoutMs: number;
    dsn?: { reportingMta?: string };
  };
  parseDuration: (value: unknown, name: string) => number;
  workerCount: (nodes: unknown, cpus: number) => number;
};

describe('durations', () => {
  test.each([
    ['30s', 30],
    ['5m', 300],
    ['1h30m', 5400],
    ['250ms', 0.25],
    ['2d', 172800],
    ['1.5h', 5400],
    ['45', 45],
    [45, 45],
    [0, 0],
  ])('%s is %s s', (text, seconds) => {
    expect(parseDuration(text, 'x')).toBe(seconds);
  });

  test.each(['', '5 minutes', '-1s', '1y', 's', '10m5'])('"%s" is a RangeError naming the key', (text) => {
    expect(() => parseDuration(text, '[global] retryInterval')).toThrow(RangeError);
    expect(() => parseDuration(text, '[global] retryInterval')).toThrow(/\[global\] retryInterval must be a duration/);
  });

  test('a duration that is not a string or number is a TypeError, a negative number a RangeError', () => {
    expect(() => parseDuration(true, 'k')).toThrow(TypeError);
    expect(() => parseDuration(-3, 'k')).toThrow(RangeError);
  });
});

describe('readSettings', () => {
  test('a full file: core, transport and store options', () => {
    const s = readSettings({
      main: {
        spool: '/var/spool/x',
        store: 'file',
        binding: 'mta1',
        ehlo_name: 'mx.example.net',
        delivery_timeout: '2m',
      },
      routes: { 'example.com': '10.0.0.5:2525, [2001:db8::1]:25', '.example.org': 'relay.example.org' },
      timeouts: { connect: '10s', message: '4m' },
      global: {
        maxOutboundConnections: 4,
        retryInterval: '10m',
        suspendDelivery: 'false',
        outboundThrottleConnections: '10/60',
      },
      'domain Example.COM': { maxOutboundConnections: 2, idleTimeout: '500ms' },
    });
    expect(s.store).toEqual({ kind: 'file', dir: '/var/spool/x' });
    expect(s.core).toEqual({
      bindings: ['mta1'],
      deliveryTimeout: 120_000,
      config: {
        global: {
          maxOutboundConnections: 4,
          retryInterval: 600,
          suspendDelivery: false,
          outboundThrottleConnections: '10/60',
        },
        domains: { 'example.com': { maxOutboundConnections: 2, idleTimeout: 0.5 } },
      },
    });
    expect(s.transport).toEqual({
      defaultEhloName: 'mx.example.net',
      routes: {
        'example.com': [
          { host: '10.0.0.5', port: 2525 },
          { host: '2001:db8::1', port: 25 },
        ],
        '*.example.org': { host: 'relay.example.org', port: 25 },
      },
      timeouts: { connect: 10_000, message: 240_000 },
    });
    expect(s.submitTimeoutMs).toBe(25_000);
    expect(s.stopTimeoutMs).toBe(60_000);
  });

  test('the smart host is the route of every other domain', () => {
    const s = readSettings({ main: { spool: '/s', smart_host: 'relay.example.net:587' } });
    expect(s.transport.routes).toEqual({ '*': { host: 'relay.example.net', port: 587 } });
    expect(s.store.kind).toBe('log');
    expect(s.core.bindings).toEqual(['default']);
  });

  test('DSNs: on by default (the reporting MTA from Haraka unless named), off with dsn=false', () => {
    expect(readSettings({ main: { spool: '/s' } }).dsn).toEqual({ reportingMta: undefined });
    expect(readSettings({ main: { spool: '/s', reporting_mta: 'mta1.example.net' } }).dsn).toEqual({
      reportingMta: 'mta1.example.net',
    });
    for (const off of ['false', 'no', 'off', '0', false])
      expect(readSettings({ main: { spool: '/s', dsn: off } }).dsn).toBeUndefined();
    for (const on of ['true', 'yes', 'on', '1', true])
      expect(readSettings({ main: { spool: '/s', dsn: on } }).dsn).toBeDefined();
  });

  test.each([
    [{ main: { spool: '/s', dsn: 'maybe' } }, RangeError, /\[main\] dsn must be true or false, got "maybe"/],
    [{ main: { spool: '/s', reporting_mta: ' ' } }, TypeError, /\[main\] reporting_mta must be a non-empty string/],
    [{}, RangeError, /mail_queue_core\.ini \[main\] spool is required/],
    [{ main: { spool: 5 } }, TypeError, /\[main\] spool must be a non-empty string/],
    [{ main: { spool: '/s', store: 'lmdb' } }, RangeError, /\[main\] store must be "log" or "file", got "lmdb"/],
    [{ main: { spool: '/s', spoool: 1 } }, RangeError, /\[main\]: unknown key "spoool" \(known: spool, store/],
    [{ main: { spool: '/s', port: 70000 } }, RangeError, /\[main\] port must be an integer from 1 to 65535/],
    [{ main: { spool: '/s', stop_timeout: 'soon' } }, RangeError, /\[main\] stop_timeout must be a duration/],
    [
      { main: { spool: '/s' }, routes: { 'a.test': 'h:0' } },
      RangeError,
      /\[routes\] a\.test \(host 1\) must be host:port/,
    ],
    [{ main: { spool: '/s' }, routes: { 'a.test': ' , ' } }, RangeError, /\[routes\] a\.test must name at least one/],
    [{ main: { spool: '/s' }, timeouts: { conect: '1s' } }, RangeError, /\[timeouts\]: unknown key "conect"/],
    [{ main: { spool: '/s' }, timeouts: { connect: '0s' } }, RangeError, /\[timeouts\] connect must be at least 1 ms/],
    [{ main: { spool: '/s' }, global: { retryInterval: 'often' } }, RangeError, /\[global\] retryInterval must be/],
    [{ main: { spool: '/s' }, domains: {} }, RangeError, /unknown section \[domains\]/],
  ])('%j is refused', (ini, type, message) => {
    expect(() => readSettings(ini as Ini)).toThrow(type);
    expect(() => readSettings(ini as Ini)).toThrow(message);
  });

  test('something that is not parsed sections is a TypeError', () => {
    expect(() => readSettings(null as unknown as Ini)).toThrow(TypeError);
  });
});

test("workerCount follows smtp.ini nodes: 0 is one process, unset is Haraka's one worker, cpus the CPU count", () => {
  expect(workerCount(0, 8)).toBe(0);
  expect(workerCount(undefined, 8)).toBe(1);
  expect(workerCount(1, 8)).toBe(1);
  expect(workerCount(2, 8)).toBe(2);
  expect(workerCount('cpus', 8)).toBe(8);
});
