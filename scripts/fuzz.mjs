#!/usr/bin/env node
// Builds the libFuzzer target of native/core (native/fuzz/core_fuzz.cpp) with clang under
// AddressSanitizer and UndefinedBehaviorSanitizer, then fuzzes it for a fixed time on a copy of the
// seed corpus (native/fuzz/corpus/) in a temporary folder.
//
//   node scripts/fuzz.mjs [--seconds N] [--ci]     (npm run fuzz, npm run fuzz:ci)
//
// --seconds N: how long to fuzz (default 300); --ci: 60 seconds. Ends with the line
// "fuzz: N executions, 0 crashes" and exit 0, or, when the fuzzer found a crash, prints the crash
// file's path, a hex dump of it and its decoded operations, and exits 1.
//
// Needs clang++ with the libFuzzer runtime; on Debian 12: apt-get install -y clang libclang-rt-14-dev
// The binary is built into native/test/build/fuzz/ (git-ignored), and rebuilt only when a source or
// the flags changed; crash inputs are kept in native/test/build/fuzz/artifacts/.
import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const coreDir = join(root, 'native', 'core');
const fuzzDir = join(root, 'native', 'fuzz');
const seedDir = join(fuzzDir, 'corpus');
const buildDir = join(root, 'native', 'test', 'build', 'fuzz');
const artifactDir = join(buildDir, 'artifacts');
const binary = join(buildDir, 'core_fuzz');
const stampFile = join(buildDir, 'core_fuzz.stamp');

const FLAGS = [
  '-std=c++17',
  '-O1',
  '-g',
  '-fsanitize=fuzzer,address,undefined',
  '-fno-sanitize-recover=all',
  '-fno-exceptions',
  '-fno-omit-frame-pointer',
  '-Wall',
  '-Wextra',
];

function usage(msg) {
  if (msg) console.error(`fuzz: ${msg}`);
  console.error('usage: node scripts/fuzz.mjs [--seconds N] [--ci]');
  process.exit(2);
}

let seconds = 300;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--ci') seconds = 60;
  else if (a === '--seconds' || a.startsWith('--seconds=')) {
    const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
    seconds = Number(v);
    if (!Number.isInteger(seconds) || seconds < 1) usage(`--seconds needs a whole number of seconds, got ${v}`);
  } else if (a === '--help' || a === '-h') usage();
  else usage(`unknown argument ${a}`);
}

// --- the toolchain -------------------------------------------------------------------------------
function clangVersion() {
  const r = spawnSync('clang++', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  const m = /clang version (\d+)\./.exec(r.stdout);
  return { text: r.stdout.split('\n')[0], major: m ? Number(m[1]) : 14 };
}

const clang = clangVersion();
const aptLine = (major) => `apt-get update && apt-get install -y clang libclang-rt-${major}-dev`;
if (!clang) {
  console.error('fuzz: clang++ was not found. The fuzzer needs clang with its libFuzzer runtime; on Debian 12:');
  console.error(`fuzz:   ${aptLine(14)}`);
  process.exit(1);
}

// --- the build -------------------------------------------------------------------------------------
const sources = [
  ...readdirSync(coreDir)
    .filter((f) => f.endsWith('.cpp'))
    .sort()
    .map((f) => join(coreDir, f)),
  join(fuzzDir, 'core_fuzz.cpp'),
];
const inputs = [
  ...sources,
  ...readdirSync(coreDir)
    .filter((f) => f.endsWith('.hpp'))
    .map((f) => join(coreDir, f)),
];
const stamp = JSON.stringify({ clang: clang.text, flags: FLAGS, sources: sources.map((s) => relative(root, s)) });

function upToDate() {
  if (!existsSync(binary) || !existsSync(stampFile)) return false;
  if (readFileSync(stampFile, 'utf8') !== stamp) return false;
  const built = statSync(binary).mtimeMs;
  return inputs.every((f) => statSync(f).mtimeMs <= built);
}

mkdirSync(buildDir, { recursive: true });
if (upToDate()) {
  console.log(`fuzz: ${relative(root, binary)} is up to date`);
} else {
  const args = [...FLAGS, `-I${coreDir}`, ...sources, '-o', binary];
  console.log(`fuzz: building with ${clang.text}`);
  console.log(`$ clang++ ${args.map((a) => relative(root, a) || a).join(' ')}`);
  const r = spawnSync('clang++', args, { encoding: 'utf8' });
  process.stdout.write(r.stdout ?? '');
  process.stderr.write(r.stderr ?? '');
  if (r.error || r.status !== 0) {
    rmSync(stampFile, { force: true });
    const out = `${r.stderr ?? ''}${r.stdout ?? ''}`;
    if (/clang_rt\.(fuzzer|asan|ubsan)|libclang_rt|-lFuzzer|fuzzer.*(not found|no such file)/i.test(out)) {
      console.error('fuzz: the libFuzzer / sanitizer runtime of clang is missing. Install it with:');
    } else {
      console.error('fuzz: the build failed. If the libFuzzer runtime is what is missing, install it with:');
    }
    console.error(`fuzz:   ${aptLine(clang.major)}`);
    process.exit(1);
  }
  writeFileSync(stampFile, stamp);
}

// --- the run ---------------------------------------------------------------------------------------
const work = mkdtempSync(join(tmpdir(), 'mqc-fuzz-'));
const corpus = join(work, 'corpus');
mkdirSync(corpus);
const seeds = existsSync(seedDir) ? readdirSync(seedDir) : [];
for (const f of seeds) cpSync(join(seedDir, f), join(corpus, f));
mkdirSync(artifactDir, { recursive: true });
const logPath = join(work, 'fuzz.log');
const log = createWriteStream(logPath);

const fuzzArgs = [
  corpus,
  '-max_len=4096',
  // Let inputs grow to long operation sequences sooner than libFuzzer's default (100) would: the
  // state worth reaching lies many operations deep, and in trials on deliberately broken cores this
  // found the faults sooner than either 100 or 0 (no growth control).
  '-len_control=10',
  `-max_total_time=${seconds}`,
  '-timeout=30',
  '-rss_limit_mb=4096',
  '-print_final_stats=1',
  `-artifact_prefix=${artifactDir}/`,
];
const env = {
  ...process.env,
  ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=1:abort_on_error=0',
  UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? 'print_stacktrace=1:halt_on_error=1',
};
delete env.MQC_FUZZ_TRACE;
console.log(`fuzz: ${seeds.length} seeds copied to ${corpus}; fuzzing for ${seconds} s`);
console.log(`$ ${relative(root, binary)} ${fuzzArgs.join(' ')}`);

const child = spawn(binary, fuzzArgs, { env, stdio: ['ignore', 'pipe', 'pipe'] });
let pending = '';
let crashed = false;
let inDictionary = false;
const lines = [];
function onData(chunk) {
  log.write(chunk);
  pending += chunk.toString('utf8');
  let nl;
  while ((nl = pending.indexOf('\n')) >= 0) {
    const line = pending.slice(0, nl);
    pending = pending.slice(nl + 1);
    lines.push(line);
    if (/ERROR:|deadly signal|runtime error|check failed/.test(line)) crashed = true;
    // The NEW/REDUCE lines (one per corpus change) and the closing recommended dictionary are left
    // to the log; pulses and the rest print.
    if (/^#+ Recommended dictionary/.test(line)) inDictionary = true;
    const quiet = inDictionary || /^#\d+\s+(NEW|REDUCE)\b/.test(line);
    if (/^#+ End of recommended dictionary/.test(line)) inDictionary = false;
    if (crashed || !quiet) console.log(line);
  }
}
child.stdout.on('data', onData);
child.stderr.on('data', onData);

const [code, signal] = await new Promise((res) => child.on('close', (c, s) => res([c, s])));
if (pending) onData('\n');
await new Promise((res) => log.end(res));

const text = lines.join('\n');
const statOf = (name) => {
  const m = new RegExp(`stat::${name}:\\s+(\\d+)`).exec(text);
  return m ? Number(m[1]) : null;
};
let executions = statOf('number_of_executed_units');
if (executions === null) {
  const done = /Done (\d+) runs/.exec(text);
  const hashes = [...text.matchAll(/^#(\d+)\s/gm)];
  executions = done ? Number(done[1]) : hashes.length ? Number(hashes[hashes.length - 1][1]) : 0;
}
const perSecond = statOf('average_exec_per_sec');
const corpusSize = readdirSync(corpus).length;
const artifacts = [...text.matchAll(/Test unit written to (\S+)/g)].map((m) => m[1]);

function hexDump(buf) {
  const out = [];
  for (let off = 0; off < buf.length; off += 16) {
    const row = buf.subarray(off, off + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const asc = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    out.push(`${off.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  |${asc}|`);
  }
  return out.join('\n');
}

if (code !== 0 || artifacts.length > 0) {
  console.log('');
  console.log(
    `fuzz: the fuzzer stopped with ${signal ? `signal ${signal}` : `exit code ${code}`}; full log: ${logPath}`,
  );
  for (const file of artifacts) {
    const abs = resolve(file);
    if (!existsSync(abs)) continue;
    const buf = readFileSync(abs);
    console.log(`fuzz: crash input: ${abs} (${buf.length} bytes)`);
    console.log(hexDump(buf));
    console.log('fuzz: decoded operations (MQC_FUZZ_TRACE=1 replay):');
    const r = spawnSync(binary, [abs], { env: { ...env, MQC_FUZZ_TRACE: '1' }, encoding: 'utf8', maxBuffer: 64 << 20 });
    const trace = `${r.stdout ?? ''}${r.stderr ?? ''}`
      .split('\n')
      .filter((l) => !/^(INFO:|Running:|.*Running 1 inputs)/.test(l));
    const shown = trace.length > 400 ? [`... (${trace.length - 400} earlier lines cut)`, ...trace.slice(-400)] : trace;
    console.log(shown.join('\n'));
    console.log(`fuzz: replay with: MQC_FUZZ_TRACE=1 ${relative(root, binary)} ${abs}`);
  }
  const where = artifacts.length ? `: ${artifacts.map((f) => resolve(f)).join(', ')}` : '';
  console.log(
    `fuzz: ${executions} executions, ${Math.max(1, artifacts.length)} crash${artifacts.length > 1 ? 'es' : ''}${where}`,
  );
  process.exit(1);
}

rmSync(work, { recursive: true, force: true });
console.log(
  `fuzz: corpus grew from ${seeds.length} to ${corpusSize} inputs; ${perSecond ?? '?'} executions per second`,
);
console.log(`fuzz: ${executions} executions, 0 crashes`);
