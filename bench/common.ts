// Shared helpers for the benchmark suites: arguments, environment, seeded data, timing, the result
// sink that defeats dead-code elimination, and the JSON hand-off to the orchestrator (bench/run.ts).
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { prng as rng } from '../examples/demo/protocol.js';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.dirname(BENCH_DIR);
/** Full runs write bench/results/<suite>.json; quick runs bench/results/quick/<suite>.json, so a
 *  quick check never overwrites the numbers of a full run. */
export const resultsDir = (quickRun: boolean): string =>
  path.join(BENCH_DIR, 'results', ...(quickRun ? ['quick'] : []));

// --- arguments ------------------------------------------------------------------------------------

/** `--name value` or `--name=value`; `--flag` alone reads as 'true'. */
export function arg(name: string, dflt?: string): string {
  const argv = process.argv;
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === `--${name}`) return i + 1 < argv.length && !argv[i + 1].startsWith('--') ? argv[i + 1] : 'true';
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  if (dflt === undefined) throw new Error(`missing --${name}`);
  return dflt;
}
export const numArg = (name: string, dflt: number): number => Number(arg(name, String(dflt)));
export const quick = (): boolean => arg('quick', 'false') === 'true';

// --- environment ----------------------------------------------------------------------------------

export interface EnvInfo {
  node: string;
  v8: string;
  platform: string;
  cpu: string;
  cores: number;
  memGiB: number;
  commit: string;
  dirty: boolean;
  addonBuilt: string | null;
  date: string;
}

export function envInfo(): EnvInfo {
  let commit = 'unknown';
  let dirty = false;
  try {
    commit = execSync('git rev-parse --short HEAD', { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
    dirty =
      execSync('git status --porcelain -- lib native', { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim() !== '';
  } catch {
    /* not a checkout */
  }
  const addon = path.join(ROOT, 'build', 'Release', 'mail_queue_core.node');
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    commit,
    dirty,
    addonBuilt: fs.existsSync(addon) ? fs.statSync(addon).mtime.toISOString() : null,
    date: new Date().toISOString(),
  };
}

// --- seeded data ----------------------------------------------------------------------------------

/** mulberry32 (the demo's prng; the same generator as in bench/native/bench_core.cpp). Returns [0, 1). */
export { rng };

/** The i-th message id: random-looking, unique for i < 2^32, below 2^53 (like an MTA's spool ids
 *  after hashing): 21 random high bits over a bijection of i in the low 32 bits. */
export function makeId(i: number, hi: number): number {
  return (hi & 0x1fffff) * 4294967296 + (Math.imul(i, 0x9e3779b1) >>> 0);
}

export function makeIds(n: number, seed: number, offset = 0): Float64Array {
  const r = rng(seed);
  const ids = new Float64Array(n);
  for (let i = 0; i < n; i++) ids[i] = makeId(i + offset, Math.floor(r() * 2097152));
  return ids;
}

export const BASE_TIME = Date.UTC(2026, 0, 1);
export const BACKOFF_MS = [60_000, 300_000, 900_000, 3_600_000];

/** Next-attempt times as in reference/perf-baseline.md: base + i/10 + backoff + jitter (whole ms). */
export function makeTimes(n: number, seed: number): Float64Array {
  const r = rng(seed);
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    t[i] = BASE_TIME + Math.floor(i / 10) + BACKOFF_MS[Math.floor(r() * 4)] + Math.floor(r() * 30_000);
  }
  return t;
}

export function makePriorities(n: number, seed: number, urgentShare = 0.5): Uint8Array {
  const r = rng(seed);
  const p = new Uint8Array(n);
  for (let i = 0; i < n; i++) p[i] = r() < urgentShare ? 1 : 0;
  return p;
}

// --- timing ---------------------------------------------------------------------------------------

export const nowNs = (): bigint => process.hrtime.bigint();
export const sinceMs = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Keeps results alive: every measured loop folds what it produced into this, and the value is
 *  written to the result JSON, so the JIT cannot drop the work. */
export const sink = { v: 0 };
export function keep(x: number): void {
  sink.v = (sink.v + x) % 1e15;
}

// --- hand-off -------------------------------------------------------------------------------------

/** A suite child prints exactly one line `RESULT <json>` on stdout; everything else is log. */
export function emit(result: unknown): void {
  process.stdout.write(`RESULT ${JSON.stringify({ ...(result as object), sink: sink.v })}\n`);
}

export function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}
