// The crash tests of the stores (test/stores/): one store module compiled for a child process, the
// child run and SIGKILLed after some acknowledgements, and the checks of what the children put
// (test/fixtures/crash_bodies.mjs).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { StoredMessage } from '../../lib/store/message_store.js';
import { message } from '../fixtures/crash_bodies.mjs';

export const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Compiles lib/store/<file>.ts and what it imports into <outDir>/out with the package's settings;
 * returns the path of the compiled module.
 */
export function compileStore(outDir: string, file: string): string {
  const tsconfig = path.join(outDir, 'tsconfig.json');
  fs.writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: path.join(root, 'tsconfig.json'),
      compilerOptions: {
        rootDir: root,
        typeRoots: [path.join(root, 'node_modules', '@types')],
        outDir: path.join(outDir, 'out'),
        declaration: false,
        sourceMap: false,
      },
      files: [path.join(root, 'lib', 'store', `${file}.ts`)],
      include: [],
    }),
  );
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', tsconfig], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`tsc failed:\n${r.stdout}\n${r.stderr}`);
  fs.writeFileSync(path.join(outDir, 'out', 'package.json'), '{ "type": "module" }\n');
  const lib = path.join(outDir, 'out', 'lib', 'store', `${file}.js`);
  if (!fs.existsSync(lib)) throw new Error(`${lib} was not written`);
  return lib;
}

export interface Killed {
  /** The lines the child printed, in order (up to the kill). */
  lines: string[];
  signal: NodeJS.Signals | null;
  status: number | null;
  /** The child printed "done". */
  done: boolean;
  stderr: string;
}

/**
 * Runs `node fixture ...args` with SPOOL_LIB=lib and SIGKILLs it `delayMs` after it printed
 * "ready" and `afterAcks` lines starting with "ok ".
 */
export function runAndKill(
  fixture: string,
  lib: string,
  args: string[],
  afterAcks: number,
  delayMs: number,
): Promise<Killed> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, SPOOL_LIB: lib };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, [fixture, ...args], { cwd: root, env });
    const lines: string[] = [];
    let acks = 0;
    let ready = false;
    let done = false;
    let armed = false;
    let buf = '';
    let stderr = '';
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      buf += s;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'ready') ready = true;
        else if (line === 'done') done = true;
        else lines.push(line);
        if (line.startsWith('ok ')) acks++;
      }
      if (ready && acks >= afterAcks && !armed) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(guard);
      resolve({ lines, signal, status, done, stderr });
    });
  });
}

/** A seeded generator of integers below n (Park-Miller), for crash rounds that can be replayed. */
export function seeded(seed: number): (n: number) => number {
  let s = seed % 2147483647 || 1;
  return (n) => {
    s = (s * 48271) % 2147483647;
    return s % n;
  };
}

/** What crash_bodies.mjs's message() gives for an id (the children store it). */
export const crashMessage: (id: number) => StoredMessage = message;

/** Why a body written by crash_bodies.mjs's body() for `id` is wrong, or '' when it is intact. */
export function crashBodyProblem(id: number, body: Buffer): string {
  const end = body.indexOf('\r\n\r\n');
  if (end < 0) return 'no self-description line';
  const m = /^id=(\d+) size=(\d+) sha256=([0-9a-f]{64})$/.exec(body.toString('latin1', 0, end));
  if (m === null) return `bad self-description ${JSON.stringify(body.toString('latin1', 0, Math.min(end, 120)))}`;
  if (Number(m[1]) !== id) return `body of id ${m[1]}`;
  const payload = body.subarray(end + 4);
  if (payload.length !== Number(m[2])) return `payload of ${payload.length} bytes, expected ${m[2]}`;
  if (createHash('sha256').update(payload).digest('hex') !== m[3]) return 'payload hash mismatch';
  return '';
}
