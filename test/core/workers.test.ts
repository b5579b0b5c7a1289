// Threads, termination, collection and exit. Each scenario runs in a child `node` process
// (test/fixtures/workers-child.mjs) whose exit status and signal are asserted, so a native crash fails
// one test here instead of taking the vitest runner down.
//
// The children use the real public API: beforeAll compiles lib/ (test/fixtures/tsconfig.lib.json)
// into a temporary directory, not into dist/, so that this file neither depends on nor races with
// another build of dist/. MQC_LIB points the children at it, MAIL_QUEUE_CORE_BINDING at the addon.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { compileLib } from '../support/compiled_lib.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..', '..');
const FIXTURE = path.join(root, 'test', 'fixtures', 'workers-child.mjs');
const MB = 1024 * 1024;

let outDir = '';
let childEnv: NodeJS.ProcessEnv = {};

beforeAll(() => {
  ({ outDir, env: childEnv } = compileLib('workers'));
}, 120_000);

afterAll(() => {
  if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
});

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

// The RSS bounds of (3) and (3b) are about memory given back. Under AddressSanitizer
// (npm run test:asan preloads it, and the children inherit it) freed memory is not reused at once:
// it waits in ASan's quarantine, 256 MB by default, which alone can break the bounds. Measured on
// one run: (3b) grew 84 MB with the default quarantine (bound 80), 7 MB with a 32 MB one, 3 MB
// without ASan; (3) 58 MB, none (it fell) and 4 MB (bound 100). So these children get a 32 MB
// quarantine, and the bounds stay what they are, far below the 190-300 MB a leak would show.
// Without ASan in the process the variable is ignored. Appended, so it wins over an earlier
// quarantine_size_mb.
const RSS_ASAN_OPTIONS = 'quarantine_size_mb=32';

function rssChildEnv(): NodeJS.ProcessEnv {
  return { ...childEnv, ASAN_OPTIONS: [childEnv.ASAN_OPTIONS, RSS_ASAN_OPTIONS].filter(Boolean).join(':') };
}

function runChild(
  args: string[],
  options: { nodeFlags?: string[]; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeFlags ?? []), FIXTURE, ...args], {
      cwd: root,
      env: options.env ?? childEnv,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 90_000);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, timedOut });
    });
  });
}

/** Asserts a clean exit (status 0, no signal, nothing on stderr) and returns the RESULT payload. */
function cleanExit(r: Run): void {
  const detail = `status ${r.status} signal ${r.signal}${r.timedOut ? ' (timed out)' : ''}\nstdout:\n${r.stdout.slice(0, 4000)}\nstderr:\n${r.stderr.slice(0, 4000)}`;
  expect(r.timedOut, detail).toBe(false);
  expect(r.signal, detail).toBeNull();
  expect(r.status, detail).toBe(0);
  expect(r.stderr, detail).toBe('');
}

function resultOf<T>(r: Run): T {
  cleanExit(r);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('RESULT '));
  expect(lines, r.stdout).toHaveLength(1);
  return JSON.parse(lines[0].slice('RESULT '.length)) as T;
}

interface LoopResult {
  name: string;
  exitCode?: number;
  params: { rounds: number; domains: number; perRound: number };
  total: number;
  settled: number;
  deferred: number;
  grants: number;
  passes: number;
  stats: {
    connections: number;
    active: number;
    delayed: number;
    inFlight: number;
    domains: number;
    opened: number;
    released: number;
    expired: number;
    activeRemoved: number;
  };
  start: number;
  end: number;
  /** `${instanceof and constructor is that thread's MailQueueError} ${code}` of a native ERR_CLOSED */
  nativeError: string;
}

describe('worker threads, termination, collection and exit (each in a child process)', () => {
  test('(1) the addon in two workers and the main thread at once: each core counts only its own work', async () => {
    const { threads } = resultOf<{ threads: LoopResult[] }>(await runChild(['concurrent']));
    expect(threads.map((t) => t.name).sort()).toEqual(['main', 'w1', 'w2']);
    for (const t of threads) {
      if (t.name !== 'main') expect(t.exitCode, t.name).toBe(0);
      const { rounds, domains, perRound } = t.params;
      const total = rounds * domains * perRound;
      expect(t.total, t.name).toBe(total);
      expect(t.settled, t.name).toBe(total);
      // ids 1..total in every thread: every 7th was deferred once, then delivered.
      expect(t.deferred, t.name).toBe(Math.floor(total / 7));
      expect(t.stats, t.name).toEqual({
        connections: 0,
        active: 0,
        delayed: 0,
        inFlight: 0,
        domains,
        opened: t.grants,
        released: t.grants,
        expired: 0,
        activeRemoved: total + t.deferred, // every message taken once, the deferred ones twice
      });
      expect(t.grants, t.name).toBeGreaterThanOrEqual(rounds * domains);
      expect(t.nativeError, t.name).toBe('true ERR_CLOSED');
    }
    // The three sizes differ, so a shared counter anywhere would show in one of the totals above.
    expect(new Set(threads.map((t) => t.total)).size).toBe(3);
    // They really ran at the same time: the three loops overlap.
    const latestStart = Math.max(...threads.map((t) => t.start));
    const earliestEnd = Math.min(...threads.map((t) => t.end));
    expect(latestStart).toBeLessThan(earliestEnd);
  });

  interface TerminateRun {
    kind: string;
    delay: number;
    code: number;
    exitCode: number;
    errors: string[];
  }

  const terminateKinds: Array<[string, string]> = [
    ['maintenance', 'a long maintenance pass over 10,000 domains that opens connections (JS grants)'],
    ['maintenance-native', 'a maintenance pass over 10,000 suspended domains (all native, no grants)'],
    ['provider', 'a JS __mail_queue_maintain provider that spins'],
    ['provider-native', 'a provider that spins calling into the addon (reads and refused calls)'],
    ['goal-provider', 'a connection_goal provider that spins'],
    ['throwing-natives', 'a loop of addon calls that throw (ERR_CLOSED, ERR_DUPLICATE_ID)'],
  ];

  test.each(terminateKinds)('(2) worker.terminate() during %s: no crash, exit 0', async (kind) => {
    const { runs } = resultOf<{ runs: TerminateRun[] }>(await runChild(['terminate', kind]));
    expect(runs).toHaveLength(3);
    expect(runs.map((r) => r.delay).sort((a, b) => a - b)).toEqual([0, 2, 10]);
    for (const r of runs) {
      expect(r.kind).toBe(kind);
      expect(r.errors, `${kind} +${r.delay}ms`).toEqual([]);
      // terminate() resolves with the exit code of a terminated worker: 1 (it did not end on its own).
      expect(r.code, `${kind} +${r.delay}ms`).toBe(1);
      expect(r.exitCode, `${kind} +${r.delay}ms`).toBe(1);
    }
  });

  test('(3) cores dropped without close() and collected: no crash, slots are reused, RSS stays bounded', async () => {
    // Each dropped core holds 20,000 messages (about 2 MB of native memory), some in flight, with
    // connections open; 150 of them would be about 300 MB if they were not freed.
    const total = 150;
    const r = resultOf<{ total: number; rss: number[]; finalSlot: number; maxSlot: number }>(
      await runChild(['gc', String(total)], { nodeFlags: ['--expose-gc'], env: rssChildEnv() }),
    );
    expect(r.total).toBe(total);
    expect(r.rss).toHaveLength(total / 10);
    // The registry slot of a fresh core stays small: the finalizer destroyed the dropped ones.
    expect(r.maxSlot).toBeLessThan(40);
    expect(r.finalSlot).toBeLessThan(20);
    const warm = r.rss[2];
    const last = r.rss[r.rss.length - 1];
    expect(last - warm, `RSS ${r.rss.map((x) => Math.round(x / MB)).join(' ')} MB`).toBeLessThan(100 * MB);
  });

  test('(3) negative control: the same loop with every core kept alive exceeds both bounds', async () => {
    const total = 150;
    const r = resultOf<{ kept: number; rss: number[]; finalSlot: number; maxSlot: number }>(
      await runChild(['gc', `${total},keep`], { nodeFlags: ['--expose-gc'], env: rssChildEnv() }),
    );
    expect(r.kept).toBe(total);
    expect(r.maxSlot).toBeGreaterThanOrEqual(total);
    expect(r.finalSlot).toBeGreaterThanOrEqual(total);
    expect(r.rss[r.rss.length - 1] - r.rss[2]).toBeGreaterThan(100 * MB);
  });

  test('(3b) workers that exit with cores they never closed: the environment teardown frees them', async () => {
    // 12 workers x 8 cores x ~2 MB: about 190 MB if the per-environment registry leaked its cores.
    const r = resultOf<{ workers: number; cores: number; rss: number[] }>(
      await runChild(['gc-workers', '12,8'], { nodeFlags: ['--expose-gc'], env: rssChildEnv() }),
    );
    expect(r.rss).toHaveLength(12);
    const warm = r.rss[1];
    const last = r.rss[r.rss.length - 1];
    expect(last - warm, `RSS ${r.rss.map((x) => Math.round(x / MB)).join(' ')} MB`).toBeLessThan(80 * MB);
  });

  test.each([
    ['explicit', 'process.exit(0) with two busy cores', /MARK cores=2/],
    ['natural', 'the event loop empties with two busy cores alive', /MARK natural/],
    ['exit-in-provider', 'process.exit(0) from inside a __mail_queue_maintain provider', /MARK in provider/],
    [
      'worker-busy',
      'process.exit(0) while a worker with a busy core is still looping',
      /MARK worker busy, main inFlight=50/,
    ],
    ['worker-idle', 'a worker with a busy core ends by itself, then the process does', /MARK worker exited 0/],
  ] as const)('(4) exit with connections open and messages in flight: %s (%s)', async (variant, _what, mark) => {
    const r = await runChild(['exit', variant]);
    cleanExit(r);
    expect(r.stdout).toMatch(mark);
  });

  test('(5) methods borrowed onto other objects throw TypeError, not a crash, and change nothing', async () => {
    const r = resultOf<{
      outcomes: Record<string, string>;
      unchanged: boolean;
      invariants: boolean;
      otherActive: number;
      otherHasX: boolean;
    }>(await runChild(['borrow']));
    const names = Object.keys(r.outcomes);
    expect(names).toContain('enqueue on {}');
    expect(names.length).toBeGreaterThanOrEqual(16);
    for (const [name, outcome] of Object.entries(r.outcomes)) expect(outcome, name).toMatch(/^TypeError: /);
    expect(r.unchanged).toBe(true);
    expect(r.invariants).toBe(true);
    // MailQueueCore.prototype.enqueue.call(otherCore, ...) is an ordinary call on that core.
    expect(r.otherActive).toBe(1);
    expect(r.otherHasX).toBe(true);
  });

  test('the harness sees a crash: a child that dies of SIGSEGV or exits non-zero fails cleanExit', async () => {
    const crash = spawnSync(process.execPath, ['-e', 'process.kill(process.pid, "SIGSEGV")'], { encoding: 'utf8' });
    expect(crash.signal).toBe('SIGSEGV');
    const asRun = (s: typeof crash): Run => ({
      status: s.status,
      signal: s.signal,
      stdout: s.stdout,
      stderr: s.stderr,
      timedOut: false,
    });
    expect(() => cleanExit(asRun(crash))).toThrow();
    const bad = spawnSync(process.execPath, ['-e', 'process.exit(3)'], { encoding: 'utf8' });
    expect(() => cleanExit(asRun(bad))).toThrow();
    const unknown = await runChild(['no-such-scenario']);
    expect(unknown.status).not.toBe(0);
    expect(() => cleanExit(unknown)).toThrow();
  });
});
