// CommonJS consumers: require() of the package by name (Node >= 20.19 loads the ES module through
// require(esm); package.json "engines" says so), and a CommonJS TypeScript file that tsc
// type-checks with module "nodenext" (decision 33).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

test('require("mail-queue-core") from a CommonJS file works, errors included', () => {
  const r = spawnSync(process.execPath, [path.join(root, 'test', 'fixtures', 'require-entry.cjs')], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(JSON.parse(r.stdout.trim())).toEqual({ active: 1, code: 'ERR_DUPLICATE_ID', codes: true });
});

test('a CommonJS TypeScript consumer type-checks against the package with module "nodenext"', () => {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(
    process.execPath,
    [tsc, '-p', path.join(root, 'test', 'fixtures', 'cjs-consumer', 'tsconfig.json')],
    {
      cwd: root,
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
}, 130_000);
