#!/usr/bin/env node
// `npm run prebuilds` (and `npm pack`, through prepack): builds the Node-API addon for this platform
// with prebuildify into prebuilds/<platform>-<arch>/mail-queue-core.node, which the package ships,
// so that an install on a like machine needs no compiler (`npm install --ignore-scripts` works).
// Everything it prints goes to stderr: `npm pack --json` keeps stdout for its JSON.
//
// prebuildify builds in the package's own build/ folder and empties it; to leave a developer's
// build/Release alone, it runs on a copy of the sources in a temporary folder.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-prebuild-'));
try {
  for (const f of ['package.json', 'binding.gyp']) fs.copyFileSync(path.join(root, f), path.join(work, f));
  for (const d of ['native/core', 'native/addon'])
    fs.cpSync(path.join(root, d), path.join(work, d), { recursive: true });
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(work, 'node_modules'), 'dir');
  console.error(`prebuild: prebuildify --napi --strip in ${work}`);
  const bin = path.join(root, 'node_modules', 'prebuildify', 'bin.js');
  const r = spawnSync(process.execPath, [bin, '--napi', '--strip'], { cwd: work, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) {
    console.error(`prebuild: prebuildify failed (exit ${r.status}${r.signal ? `, ${r.signal}` : ''})`);
    process.exitCode = 1;
  } else {
    const out = path.join(root, 'prebuilds');
    fs.rmSync(out, { recursive: true, force: true });
    fs.cpSync(path.join(work, 'prebuilds'), out, { recursive: true });
    for (const f of fs.readdirSync(out, { recursive: true })) console.error(`prebuild: prebuilds/${f}`);
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
