// Child processes (worker, crash and exit scenarios) run the real public API, compiled from lib/
// into a temporary folder, with the addon named by MAIL_QUEUE_CORE_BINDING.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ADDON = path.join(root, 'build', 'Release', 'mail_queue_core.node');

export interface CompiledLib {
  /** The folder to remove afterwards. */
  outDir: string;
  /** Environment for a child: MQC_LIB points at the compiled index.js. */
  env: NodeJS.ProcessEnv;
}

export function compileLib(tag: string): CompiledLib {
  if (!fs.existsSync(ADDON)) throw new Error(`${ADDON} is missing: npm run build:native`);
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), `mqc-${tag}-`));
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(
    process.execPath,
    [tsc, '-p', path.join(root, 'test', 'fixtures', 'tsconfig.lib.json'), '--outDir', outDir],
    {
      cwd: root,
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  if (r.status !== 0) throw new Error(`tsc failed:\n${r.stdout}\n${r.stderr}`);
  // lib/native.ts looks for the package root (a package.json) above itself.
  fs.writeFileSync(path.join(outDir, 'package.json'), '{ "type": "module" }\n');
  // The compiled library imports its dependencies (nodemailer) by name: let them resolve.
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(outDir, 'node_modules'), 'dir');
  if (!fs.existsSync(path.join(outDir, 'lib', 'index.js'))) throw new Error('the compiled library has no lib/index.js');
  // Children use the addon the parent was told to use (npm run test:asan points this at the ASan build).
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MQC_LIB: path.join(outDir, 'lib', 'index.js'),
    MAIL_QUEUE_CORE_BINDING: process.env.MAIL_QUEUE_CORE_BINDING ?? ADDON,
  };
  delete env.NODE_OPTIONS;
  return { outDir, env };
}
