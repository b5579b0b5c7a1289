// The package as a user installs it: the addon prebuilt for this platform (scripts/prebuild.mjs,
// what prepack runs), `npm pack`, then `npm install --ignore-scripts` of the tarball into an empty
// project, so no install script runs and nothing is compiled there. The installed package must
// load its prebuilt addon and work from an ES module and from CommonJS.
//
// It packs dist/ as it is (npm ci's prepare compiled it): running prepack's tsc here would rewrite
// dist/ under the tests that read it. Under `npm run test:asan` (MAIL_QUEUE_CORE_BINDING names the
// sanitizer build) it is skipped: it tests the package, which never ships that build.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, test } from 'vitest';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-packed-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function run(cmd: string, args: string[], cwd: string, timeout = 300_000) {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    timeout,
    env: { ...process.env, npm_config_loglevel: 'error' },
  });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test.skipIf(process.env.MAIL_QUEUE_CORE_BINDING)(
  'npm pack, then npm install --ignore-scripts: the prebuilt addon loads, from ESM and CommonJS',
  () => {
    run(process.execPath, [path.join(root, 'scripts', 'prebuild.mjs')], root);
    const packed = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], root)) as {
      filename: string;
      files: { path: string }[];
    }[];
    const files = packed[0].files.map((f) => f.path);
    expect(files).toContain(`prebuilds/${process.platform}-${process.arch}/mail-queue-core.node`);
    expect(files).toContain('dist/lib/index.js');
    expect(files.some((f) => f.startsWith('native/test/'))).toBe(false);
    const app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
    run(
      'npm',
      [
        'install',
        '--ignore-scripts',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        path.join(tmp, packed[0].filename),
      ],
      app,
    );
    const installed = path.join(app, 'node_modules', 'mail-queue-core');
    // Nothing was built there: the addon can only come from prebuilds/.
    expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);
    const esm = run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import { MailQueueCore } from 'mail-queue-core'; const c = new MailQueueCore({ clock: () => 1000 }); c.enqueue({ id: 7, domain: 'x.test' }); console.log(JSON.stringify(c.take('x.test', 0, 1))); c.close();",
      ],
      app,
    );
    expect(JSON.parse(esm.trim())).toEqual([7]);
    const cjs = run(
      process.execPath,
      [
        '-e',
        "const { MailQueueCore } = require('mail-queue-core'); const c = new MailQueueCore(); console.log(c.stats().active); c.close();",
      ],
      app,
    );
    expect(cjs.trim()).toBe('0');
  },
  600_000,
);
