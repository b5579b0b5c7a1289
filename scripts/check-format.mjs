// `npm run lint`: Biome's linter and formatter check over the TypeScript and JavaScript, and
// clang-format's check over the C++ of native/ and bench/native (the vendored doctest header is left
// out), and the size rule of lib/ (one concern per file: no TypeScript file there over 500 lines).
// Exits non-zero when any finds something; `npm run format` rewrites the formatting in place.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const write = process.argv.includes('--write');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);

function cppFiles() {
  const out = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name === 'third_party' || e.name === 'build' || e.name === 'corpus') continue;
        walk(rel);
      } else if (/\.(cc|cpp|hpp|h)$/.test(e.name)) {
        out.push(rel);
      }
    }
  };
  walk('native');
  walk(path.join('bench', 'native'));
  return out.sort();
}

let ok = true;
const biome = spawnSync(bin('biome'), [write ? 'check' : 'ci', ...(write ? ['--write'] : []), '.'], {
  cwd: root,
  stdio: 'inherit',
});
if (biome.status !== 0) ok = false;

const files = cppFiles();
const clang = spawnSync(
  bin('clang-format'),
  write ? ['-i', '--style=file', ...files] : ['--dry-run', '-Werror', '--style=file', ...files],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
if (clang.status !== 0) ok = false;
console.log(
  `format: ${files.length} C++ files ${write ? 'formatted' : clang.status === 0 ? 'clean' : 'need clang-format'}`,
);
// One concern per file: a file of lib/ over this many lines is split by what its parts hold.
const MAX_LIB_LINES = 500;
const long = [];
const walkLib = (dir) => {
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) walkLib(rel);
    else if (e.name.endsWith('.ts')) {
      const lines = fs.readFileSync(path.join(root, rel), 'utf8').split('\n').length - 1;
      if (lines > MAX_LIB_LINES) long.push(`${rel} (${lines} lines)`);
    }
  }
};
walkLib('lib');
if (long.length > 0) {
  ok = false;
  console.log(`size: over ${MAX_LIB_LINES} lines, split by concern: ${long.join(', ')}`);
}
process.exit(ok ? 0 : 1);
