#!/usr/bin/env node
// Builds and runs the C++ unit tests of native/core (native/test, doctest) under AddressSanitizer
// and UndefinedBehaviorSanitizer, then exits with ctest's status.
//
//   node scripts/test-native.mjs          (npm run test:native)
//
// Needs cmake (with ctest): `apt-get install -y cmake`. doctest comes with the project (its single
// header is vendored in native/test/third_party/doctest); no system copy is used.
// The sanitizer and warning flags (-fsanitize=address,undefined -fno-sanitize-recover=all
// -fno-omit-frame-pointer -fno-exceptions -Wall -Wextra -Werror) are set by
// native/test/CMakeLists.txt when MQC_SANITIZE is ON, which this script passes.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sourceDir = join(root, 'native', 'test');
const buildDir = join(sourceDir, 'build');
const jobs = String(Math.max(1, availableParallelism()));
const installHint = 'run `apt-get install -y cmake`';

function toolWorks(cmd) {
  const r = spawnSync(cmd, ['--version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

const doctestHeader = join(sourceDir, 'third_party', 'doctest', 'doctest.h');
const missing = [];
if (!toolWorks('cmake')) missing.push('cmake');
if (!toolWorks('ctest')) missing.push('ctest (part of cmake)');
if (missing.length > 0) {
  console.error(`test-native: missing ${missing.join(', ')}.`);
  console.error(`test-native: to build the native C++ tests, ${installHint}`);
  process.exit(1);
}
if (!existsSync(doctestHeader)) {
  console.error(`test-native: ${doctestHeader} is missing; it is part of the checkout (git restore it).`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.error) {
    console.error(`test-native: could not run ${cmd}: ${r.error.message}`);
    return 1;
  }
  if (r.status === null) {
    console.error(`test-native: ${cmd} was killed by ${r.signal}`);
    return 1;
  }
  return r.status;
}

const configure = run('cmake', ['-S', sourceDir, '-B', buildDir, '-DCMAKE_BUILD_TYPE=Debug', '-DMQC_SANITIZE=ON']);
if (configure !== 0) {
  console.error(`test-native: cmake configure failed (exit ${configure}); if cmake is missing, ${installHint}`);
  process.exit(configure);
}

const build = run('cmake', ['--build', buildDir, '--parallel', jobs]);
if (build !== 0) {
  console.error(`test-native: build failed (exit ${build})`);
  process.exit(build);
}

// ctest prints its own closing line ("Total Test time (real) = ..." or, on failure, "Errors while
// running CTest"); nothing is printed after it.
const ctest = run('ctest', ['--output-on-failure', '--parallel', jobs], { cwd: buildDir });
process.exit(ctest);
