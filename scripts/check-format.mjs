// `npm run lint`: Biome's linter and formatter check over the TypeScript and JavaScript, and
// clang-format's check over the C++ of native/ and bench/native (the vendored doctest header is left
// out). Exits non-zero when either finds something; `npm run format` rewrites both in place.
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
process.exit(ok ? 0 : 1);
