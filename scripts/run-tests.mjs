// `npm test`: the type check, the lint and format check, the vitest suites against the real addon, and the C++ core tests
// under AddressSanitizer and UBSan. Ends with one plain line, `N passed, N failed`, which CI reads.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
let passed = 0;
let failed = 0;
const notes = [];

function run(title, cmd, args, options = {}) {
  console.log(`\n== ${title}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, {
    cwd: root,
    stdio: options.capture ? ['ignore', 'pipe', 'inherit'] : 'inherit',
    encoding: 'utf8',
  });
  if (options.capture) process.stdout.write(r.stdout ?? '');
  return r;
}

// 1. Types: the library, the tests and the benchmarks must all type-check.
const tsc = run('type check', 'npx', ['tsc', '-p', 'tsconfig.test.json']);
if (tsc.status === 0) passed += 1;
else {
  failed += 1;
  notes.push('type check failed');
}

// 1b. Style: Biome (lint and format) over the TypeScript and JavaScript, clang-format over the C++.
const fmt = run('lint and format check', 'node', ['scripts/check-format.mjs']);
if (fmt.status === 0) passed += 1;
else {
  failed += 1;
  notes.push('lint or format check failed (npm run format fixes the formatting)');
}

// 2. vitest, with a JSON report to count tests.
const report = path.join(root, '.vitest-results.json');
fs.rmSync(report, { force: true });
const vt = run('vitest', 'npx', [
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${report}`,
]);
if (fs.existsSync(report)) {
  const j = JSON.parse(fs.readFileSync(report, 'utf8'));
  passed += j.numPassedTests;
  failed += j.numFailedTests;
  if (j.numFailedTestSuites > 0 && j.numFailedTests === 0) {
    failed += j.numFailedTestSuites;
    notes.push('a vitest file failed to run');
  }
  if (j.numFailedTests > 0) notes.push(`${j.numFailedTests} vitest test(s) failed`);
} else {
  failed += 1;
  notes.push(`vitest produced no report (exit ${vt.status})`);
}
if (vt.status !== 0 && failed === 0) {
  failed += 1;
  notes.push(`vitest exited ${vt.status}`);
}

// 3. The C++ core under ASan + UBSan (CMake + ctest).
const nat = run('C++ core tests (ASan + UBSan)', 'node', ['scripts/test-native.mjs'], { capture: true });
const m = /(\d+)% tests passed, (\d+) tests failed out of (\d+)/.exec(nat.stdout ?? '');
if (m) {
  const total = Number(m[3]);
  const bad = Number(m[2]);
  passed += total - bad;
  failed += bad;
  if (bad > 0) notes.push(`${bad} C++ test(s) failed`);
} else {
  failed += 1;
  notes.push(`C++ tests did not run (exit ${nat.status})`);
}
if (nat.status !== 0 && !(m && Number(m[2]) > 0)) {
  failed += m ? 1 : 0;
}

console.log('');
for (const n of notes) console.log(`note: ${n}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
