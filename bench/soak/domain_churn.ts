// `npm run soak:domains`: domains that come and go (issue 17, item 7). A million distinct destination
// domains over time, a few messages each, fed in waves through the core's own API (enqueueMany, a
// maintenance pass, takeFor / settleMany / releaseConnection for every grant) on a clock that the
// run moves on by one second a wave, so that a domain's idle time passes without waiting for it.
// Over SMTP the same million domains would take hours on this machine: the receivers are not what
// is measured, the core's books for a domain are (docs/soak.md, "Domain churn").
//
// Two runs, each in a child process of its own so that one's heap does not weigh on the other's
// RSS: forgetting on (forgetIdleDomainsAfter 5 s of the run's clock: a domain is forgotten five
// waves after its last message) and forgetting off (Infinity). Each samples, every few waves after
// a forced gc: RSS, the JS heap, the native core's bytesReserved and the domains it holds. The
// check: with forgetting on, RSS over the second half grows by less than --rss-slope-limit MB per
// million domains, and the domain count stays bounded; with it off, both grow.
//
//   npm run soak:domains                              # 1,000,000 domains, 3 messages each
//   npm run soak:domains -- --domains 200000          # a shorter run
//   npm run soak:domains -- --mode on                 # one run only, no comparison
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';

import { MailQueueCore } from '../../lib/index.js';

const T0 = 1_700_000_000_000;
const WAVE_MS = 1_000;
const FORGET_AFTER_MS = 5_000;

interface Sample {
  domainsSoFar: number;
  liveDomains: number;
  rssMB: number;
  heapUsedMB: number;
  nativeMB: number;
  slots: number;
}

interface RunResult {
  mode: 'on' | 'off';
  domains: number;
  wave: number;
  messagesPerDomain: number;
  messages: number;
  seconds: number;
  samples: Sample[];
  /** Least-squares slope of RSS (MB) over domains (millions), second half of the samples. */
  rssSlopeSecondHalf: number;
  rssFirstSecondHalfMB: number;
  rssLastMB: number;
  peakLiveDomains: number;
  nativeLastMB: number;
}

const { values: opts } = parseArgs({
  options: {
    domains: { type: 'string', default: '1000000' },
    wave: { type: 'string', default: '10000' },
    'messages-per-domain': { type: 'string', default: '3' },
    mode: { type: 'string', default: 'both' },
    'sample-every': { type: 'string', default: '5' },
    'rss-slope-limit': { type: 'string', default: '16' },
    json: { type: 'string', default: 'bench/soak/results/domain-churn-last-run.json' },
    child: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (opts.help) {
  console.log(
    'npm run soak:domains -- [--domains N] [--wave N] [--messages-per-domain N] [--mode both|on|off] ' +
      '[--sample-every WAVES] [--rss-slope-limit MB-per-million] [--json FILE]',
  );
  process.exit(0);
}

function int(name: string, v: string | undefined, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new RangeError(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

const DOMAINS = int('domains', opts.domains, 1000, 10_000_000);
const WAVE = int('wave', opts.wave, 100, 1_000_000);
const PER_DOMAIN = int('messages-per-domain', opts['messages-per-domain'], 1, 100);
const SAMPLE_EVERY = int('sample-every', opts['sample-every'], 1, 1000);
const SLOPE_LIMIT = Number(opts['rss-slope-limit']);

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** One run, in this process. */
function run(mode: 'on' | 'off'): RunResult {
  let now = T0;
  const core = new MailQueueCore({
    clock: () => now,
    forgetIdleDomainsAfter: mode === 'on' ? FORGET_AFTER_MS : Number.POSITIVE_INFINITY,
  });
  const samples: Sample[] = [];
  const out = new Float64Array(64);
  let id = 1;
  let made = 0;
  let wave = 0;
  const started = performance.now();
  const names: string[] = new Array(WAVE * PER_DOMAIN);
  const ids = new Float64Array(WAVE * PER_DOMAIN);
  while (made < DOMAINS) {
    const n = Math.min(WAVE, DOMAINS - made);
    // A wave of new domains: PER_DOMAIN messages each, arriving in one call.
    for (let i = 0; i < n; i++) {
      const name = `d${made + i}.churn.test`;
      for (let k = 0; k < PER_DOMAIN; k++) names[i * PER_DOMAIN + k] = name;
    }
    const m = n * PER_DOMAIN;
    for (let i = 0; i < m; i++) ids[i] = id++;
    core.enqueueMany(names.slice(0, m), undefined, ids.subarray(0, m));
    made += n;
    // A pass opens a connection per domain; each takes its domain's mail, settles it, goes.
    const { grants } = core.maintain();
    for (const g of grants) {
      for (let k = core.takeFor(g.connectionId, out); k > 0; k = core.takeFor(g.connectionId, out))
        core.settleMany(out.subarray(0, k));
      core.releaseConnection(g.connectionId);
    }
    const s = core.stats();
    if (s.active + s.delayed + s.inFlight !== 0) throw new Error(`wave ${wave}: mail left over: ${JSON.stringify(s)}`);
    now += WAVE_MS;
    wave++;
    if (wave % SAMPLE_EVERY === 0 || made === DOMAINS) {
      core.maintain(); // the sweep of this wave's time
      gc();
      const mem = process.memoryUsage();
      const sum = core.summary();
      samples.push({
        domainsSoFar: made,
        liveDomains: sum.domains,
        rssMB: mem.rss / 2 ** 20,
        heapUsedMB: mem.heapUsed / 2 ** 20,
        nativeMB: sum.bytesReserved / 2 ** 20,
        slots: core.connectionsByDomain().length,
      });
    }
  }
  const seconds = (performance.now() - started) / 1000;
  if (!core.checkInvariants()) throw new Error('checkInvariants failed');
  core.close();
  const half = samples.slice(Math.floor(samples.length / 2));
  const last = samples[samples.length - 1];
  return {
    mode,
    domains: DOMAINS,
    wave: WAVE,
    messagesPerDomain: PER_DOMAIN,
    messages: DOMAINS * PER_DOMAIN,
    seconds: Math.round(seconds * 10) / 10,
    samples: samples.map((x) => ({
      ...x,
      rssMB: Math.round(x.rssMB * 10) / 10,
      heapUsedMB: Math.round(x.heapUsedMB * 10) / 10,
      nativeMB: Math.round(x.nativeMB * 100) / 100,
    })),
    rssSlopeSecondHalf: Math.round(slope(half.map((x) => [x.domainsSoFar / 1e6, x.rssMB])) * 10) / 10,
    rssFirstSecondHalfMB: Math.round(half[0].rssMB * 10) / 10,
    rssLastMB: Math.round(last.rssMB * 10) / 10,
    peakLiveDomains: Math.max(...samples.map((x) => x.liveDomains)),
    nativeLastMB: Math.round(last.nativeMB * 100) / 100,
  };
}

function table(r: RunResult): void {
  console.log(
    `\nforgetting ${r.mode}: ${r.domains.toLocaleString('en')} domains, ${r.messages.toLocaleString('en')} messages, ${r.seconds} s`,
  );
  console.log('  domains so far   live domains   slots      RSS MB   heap MB   native MB');
  const step = Math.max(1, Math.floor(r.samples.length / 10));
  for (let i = 0; i < r.samples.length; i += step) {
    const s = r.samples[i];
    console.log(
      `  ${String(s.domainsSoFar).padStart(13)}   ${String(s.liveDomains).padStart(12)}   ${String(s.slots).padStart(7)}   ${s.rssMB.toFixed(1).padStart(8)}   ${s.heapUsedMB.toFixed(1).padStart(7)}   ${s.nativeMB.toFixed(2).padStart(9)}`,
    );
  }
  console.log(`  RSS slope over the second half: ${r.rssSlopeSecondHalf} MB per million domains`);
}

if (opts.child) {
  const r = run(opts.mode === 'off' ? 'off' : 'on');
  process.stdout.write(`${JSON.stringify(r)}\n`);
  process.exit(0);
}

const modes: Array<'on' | 'off'> = opts.mode === 'both' ? ['on', 'off'] : [opts.mode === 'off' ? 'off' : 'on'];
const results: RunResult[] = [];
for (const mode of modes) {
  console.log(`soak:domains: forgetting ${mode}, ${DOMAINS.toLocaleString('en')} domains in waves of ${WAVE} ...`);
  const child = spawnSync(
    process.execPath,
    [
      ...process.execArgv,
      process.argv[1],
      '--child',
      '--mode',
      mode,
      '--domains',
      String(DOMAINS),
      '--wave',
      String(WAVE),
      '--messages-per-domain',
      String(PER_DOMAIN),
      '--sample-every',
      String(SAMPLE_EVERY),
    ],
    { encoding: 'utf8', maxBuffer: 64 * 2 ** 20, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  if (child.status !== 0) {
    console.error(`soak:domains: the ${mode} run failed (exit ${child.status})`);
    process.exit(1);
  }
  const r = JSON.parse(child.stdout.trim().split('\n').pop() as string) as RunResult;
  results.push(r);
  table(r);
}

const checks: Array<{ check: string; pass: boolean; detail: string }> = [];
const on = results.find((r) => r.mode === 'on');
const off = results.find((r) => r.mode === 'off');
if (on) {
  checks.push({
    check: 'forgetting on: RSS flat in the second half',
    pass: on.rssSlopeSecondHalf < SLOPE_LIMIT,
    detail: `${on.rssSlopeSecondHalf} MB per million domains (limit ${SLOPE_LIMIT})`,
  });
  const bound = (Math.ceil(FORGET_AFTER_MS / WAVE_MS) + 2) * WAVE;
  checks.push({
    check: 'forgetting on: domains held stay bounded',
    pass: on.peakLiveDomains <= bound,
    detail: `peak ${on.peakLiveDomains} (at most ${bound}: the waves of the idle time, plus two)`,
  });
}
if (off) {
  checks.push({
    check: 'forgetting off: every domain stays',
    pass: off.samples[off.samples.length - 1].liveDomains === DOMAINS,
    detail: `${off.samples[off.samples.length - 1].liveDomains} held at the end`,
  });
}
if (on && off) {
  checks.push({
    check: 'forgetting off grows where on stays flat',
    pass: off.rssSlopeSecondHalf > on.rssSlopeSecondHalf,
    detail: `RSS slope ${off.rssSlopeSecondHalf} vs ${on.rssSlopeSecondHalf} MB per million; RSS at the end ${off.rssLastMB} vs ${on.rssLastMB} MB`,
  });
}
console.log('\nchecks');
for (const c of checks) console.log(`  ${c.pass ? 'PASS' : 'FAIL'}  ${c.check}: ${c.detail}`);
if (opts.json) {
  const doc = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    options: {
      domains: DOMAINS,
      wave: WAVE,
      messagesPerDomain: PER_DOMAIN,
      waveMs: WAVE_MS,
      forgetAfterMs: FORGET_AFTER_MS,
    },
    runs: results,
    checks,
  };
  fs.writeFileSync(opts.json, `${JSON.stringify(doc, null, 2)}\n`);
  console.log(`\nwritten to ${opts.json}`);
}
process.exit(checks.every((c) => c.pass) ? 0 : 1);
