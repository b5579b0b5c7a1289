// POST /config over real HTTP on loopback, and `mqc configure <file.json>` as a child process: a
// configuration applied to a running core (core.configure()); bad JSON, an empty body, a bad key
// and a missing or wrong bearer token each answered with a 4xx and a JSON error, the core's limits
// and counts as they were. The limit is read back through what openConnections() grants.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';

import { type AdminServer, MailQueueCore, serveAdmin } from '../../lib/index.js';
import { checkCli, runMqc } from '../support/mqc_child.js';
import { tempDirs } from '../support/temp_dirs.js';

const TOKEN = 'config-test-token';
const dirs = tempDirs('mqc-config');
let core: MailQueueCore;
let admin: AdminServer;

beforeAll(async () => {
  core = new MailQueueCore({
    bindings: ['b0', 'b1'],
    config: { domains: { 'a.test': { maxOutboundConnections: 3 } } },
  });
  core.enqueueBatch('a.test', 'b0', Float64Array.of(1, 2, 3));
  admin = await serveAdmin(core, { token: TOKEN });
});
afterAll(async () => {
  await admin.close();
  core.close();
});

/** How many connections (a.test, b0) may open now: opened, then given back. */
function room(): number {
  const grants = core.openConnections('a.test', 'b0', 100);
  for (const g of grants) core.releaseConnection(g.connectionId);
  return grants.length;
}

async function postConfig(body: string, token: string | null = TOKEN) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const r = await fetch(`${admin.url}/config`, { method: 'POST', headers, body });
  return { status: r.status, json: (await r.json()) as { error?: string; code?: string; configured?: boolean } };
}

test('refusals: no token, a wrong token, bad JSON, an empty body, a bad key; nothing changes', async () => {
  const before = core.stats();
  const lower = JSON.stringify({ domains: { 'a.test': { maxOutboundConnections: 1 } } });
  expect((await postConfig(lower, null)).status).toBe(401);
  const wrong = await postConfig(lower, 'not-the-token');
  expect(wrong.status).toBe(401);
  expect(wrong.json.error).toMatch(/bearer token/);
  const badJson = await postConfig('{"domains": {"a.test": {"maxOutboundConnections": 1}');
  expect(badJson.status).toBe(400);
  expect(badJson.json.error).toMatch(/not valid JSON/);
  const empty = await postConfig('');
  expect(empty.status).toBe(400);
  expect(empty.json.error).toMatch(/must be the configuration/);
  const badValue = await postConfig(
    JSON.stringify({ domains: { 'a.test': { maxOutboundConnections: 1 } }, global: { maxOutboundConnections: -1 } }),
  );
  expect(badValue.status).toBe(400);
  expect(badValue.json.error).toMatch(/^config\.global\.maxOutboundConnections must be an integer/);
  const badKey = await postConfig(
    JSON.stringify({ bindings: { b1: { domains: { 'a.test': { maxConections: 1 } } } } }),
  );
  expect(badKey.status).toBe(400);
  expect(badKey.json).toMatchObject({ code: 'ERR_CONFIG' });
  expect(badKey.json.error).toMatch(/^config\.bindings\.b1\.domains\.a\.test: unknown option "maxConections"/);
  const notObject = await postConfig('[1, 2]');
  expect(notObject.status).toBe(400);
  expect(notObject.json.error).toMatch(/config must be a plain object/);
  const get = await fetch(`${admin.url}/config`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(get.status).toBe(405);
  expect(get.headers.get('allow')).toBe('POST');
  expect(core.stats()).toEqual(before);
  expect(room()).toBe(3);
});

test('a configuration through POST /config, then through `mqc configure <file>`', async () => {
  const ok = await postConfig(JSON.stringify({ domains: { 'a.test': { maxOutboundConnections: 1 } } }));
  expect(ok).toEqual({ status: 200, json: { configured: true } });
  expect(room()).toBe(1);

  checkCli();
  const dir = dirs('cli');
  const good = path.join(dir, 'good.json');
  fs.writeFileSync(good, JSON.stringify({ global: { maxOutboundConnections: 5 } }));
  const r = await mqc('configure', good);
  expect(r).toMatchObject({ code: 0, stderr: '' });
  expect(r.stdout).toMatch(/^configured from .*good\.json$/m);
  expect(room()).toBe(5); // the domain scope is gone: the global cap holds
  const bad = path.join(dir, 'bad.json');
  fs.writeFileSync(bad, JSON.stringify({ global: { maxOutboundConnections: 'many' } }));
  const refused = await mqc('configure', bad);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/400: config\.global\.maxOutboundConnections must be a number/);
  const broken = path.join(dir, 'broken.json');
  fs.writeFileSync(broken, '{ global: ');
  const unreadable = await mqc('configure', broken);
  expect(unreadable.code).toBe(1);
  expect(unreadable.stderr).toMatch(/cannot read .*broken\.json as JSON/);
  expect(room()).toBe(5);
});

function mqc(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runMqc(admin.url, TOKEN, args);
}
