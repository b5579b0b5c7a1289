// `mqc`, the compiled command line (dist/, which npm ci's prepare builds), as a child process
// against an admin API, as an operator would run it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(root, 'dist', 'lib', 'cli', 'mqc.js');

/** Throws unless the compiled program is there. */
export function checkCli(): void {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build:ts`);
}

/** Runs mqc with the API's address and token in its environment (async: the admin server
 *  answers in this same process). */
export function runMqc(
  url: string,
  token: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, MQC_ADMIN_URL: url, MQC_ADMIN_TOKEN: token },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
