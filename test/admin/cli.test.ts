// `mqc`, the command line, as a child process against a core's admin API on loopback: human tables,
// --json equal to the API's answer, actions that change the core, and exit status 1 for a refusal
// and 2 for an API that cannot be reached. It runs the compiled program (dist/, which npm ci's
// prepare builds), as an operator would.
import { afterAll, beforeAll, expect, test } from 'vitest';

import { type AdminServer, MailQueueCore, serveAdmin } from '../../lib/index.js';
import { checkCli, runMqc } from '../support/mqc_child.js';
import { freePort } from '../support/smtp_servers.js';

const TOKEN = 'cli-test-token';
let core: MailQueueCore;
let admin: AdminServer;

beforeAll(async () => {
  checkCli();
  core = new MailQueueCore({ bindings: ['b0', 'b1'], clock: () => 5_000_000 });
  core.enqueueBatch('x.test', 'b0', Float64Array.of(1, 2, 3));
  core.enqueue({ id: 9, domain: 'x.test', nextAttempt: 5_060_000 });
  admin = await serveAdmin(core, { token: TOKEN });
});
afterAll(async () => {
  await admin.close();
  core.close();
});

/** Runs mqc against this file's admin API. */
function mqc(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runMqc(admin.url, TOKEN, args);
}

test('summary and domain: human tables; --json equals the API', async () => {
  const s = await mqc('summary');
  expect(s.code).toBe(0);
  expect(s.stdout).toMatch(/^connections\s+active\s+delayed\s+inFlight/m);
  expect(s.stdout).toMatch(/^binding\s+connections\s+active\s+suspended/m);
  expect(s.stdout).toMatch(/^b0\s+0\s+3\s+false$/m);
  const j = await mqc('--json', 'summary');
  expect(JSON.parse(j.stdout)).toEqual(JSON.parse(JSON.stringify(core.summary())));
  const d = await mqc('domain', 'x.test');
  expect(d.stdout).toMatch(/^name\s+connections\s+delayed/m);
  expect(d.stdout).toMatch(/^x\.test\s+0\s+1\b/m);
});

test('queue with paging, and the delayed queue', async () => {
  const q = await mqc('--json', 'queue', 'x.test', '--binding', 'b0', '--limit', '2', '--offset', '1');
  expect(q.code).toBe(0);
  expect(JSON.parse(q.stdout).messages.map((m: { id: number }) => m.id)).toEqual([2, 3]);
  const human = await mqc('queue', 'x.test', '--delayed');
  expect(human.stdout).toMatch(/^id\s+domain\s+binding\s+state/m);
  expect(human.stdout).toMatch(/^\s*9\s+x\.test\s+b0\s+delayed/m);
});

test('actions change the core: suspend, resume, retry', async () => {
  expect((await mqc('suspend', 'x.test', '--binding', 'b1')).stdout.trim()).toBe('suspended x.test on b1');
  expect(core.domainView('x.test').bindings.b1.suspended).toBe(true);
  expect((await mqc('resume', 'x.test', '--binding', 'b1')).code).toBe(0);
  expect(core.domainView('x.test').bindings.b1.suspended).toBe(false);
  expect((await mqc('retry', '9')).stdout.trim()).toBe('9 is due now');
  expect(core.message(9)?.state).toBe('active');
  const m = await mqc('metrics');
  expect(m.stdout).toMatch(/^mqc_messages\{state="active"\} 4$/m);
});

test('refusals exit 1 with the API error; an unreachable API exits 2', async () => {
  const unknown = await mqc('domain', 'nope.test');
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toMatch(/^mqc: 404 ERR_UNKNOWN_DOMAIN: /);
  const badId = await mqc('retry', 'seven');
  expect(badId.code).toBe(1);
  expect(badId.stderr).toMatch(/^mqc: id must be a message id/);
  const noToken = await mqc('--token', 'wrong', 'summary');
  expect(noToken.code).toBe(1);
  expect(noToken.stderr).toMatch(/^mqc: 401: a valid bearer token is required/);
  const port = await freePort();
  const away = await mqc('--url', `http://127.0.0.1:${port}`, 'summary');
  expect(away.code).toBe(2);
  expect(away.stderr).toMatch(/^mqc: cannot reach the admin API at http:\/\/127\.0\.0\.1:\d+/);
  const usage = await mqc('queue', 'x.test', '--limit', 'many');
  expect(usage.code).not.toBe(0);
  expect(usage.stderr).toMatch(/--limit must be a whole number, got many/);
});
