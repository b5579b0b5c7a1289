// The admin HTTP API over real HTTP on loopback: views, actions and the metrics, a bearer token,
// and hostile requests (no token, bad JSON, a huge body, unknown routes and keys), each answered
// with a 4xx and a JSON error and leaving the core as it was. One test drives a core that
// delivers to a real SMTP receiver: a suspend through the API stops new connections there, and a
// resume lets the mail through.
import { afterAll, expect, test } from 'vitest';

import { type AdminServer, MailQueueCore, MemoryStore, SmtpTransport, serveAdmin } from '../../lib/index.js';
import { startServer } from '../support/smtp_servers.js';

const closers: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c();
});

const T0 = 1_000_000;

async function setup(token?: string): Promise<{ core: MailQueueCore; admin: AdminServer; now: { t: number } }> {
  const now = { t: T0 };
  const core = new MailQueueCore({ bindings: ['b0', 'b1'], clock: () => now.t });
  closers.push(() => core.close());
  core.enqueueBatch('x.test', 'b0', Float64Array.of(1, 2, 3));
  core.enqueue({ id: 4, domain: 'x.test', binding: 'b1', nextAttempt: T0 + 60_000 });
  core.enqueue({ id: 5, domain: 'y.test', nextAttempt: T0 + 60_000 });
  const admin = await serveAdmin(core, token === undefined ? {} : { token });
  closers.push(() => admin.close());
  return { core, admin, now };
}

async function call(admin: AdminServer, path: string, init: RequestInit = {}, token?: string) {
  const headers = new Headers(init.headers);
  if (token !== undefined) headers.set('authorization', `Bearer ${token}`);
  const r = await fetch(`${admin.url}${path}`, { ...init, headers });
  const text = await r.text();
  const json = r.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : undefined;
  return { status: r.status, json, text };
}
const post = (body: unknown) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

test('views: summary, a domain, its queue with paging, and the metrics', async () => {
  const { core, admin } = await setup();
  expect(admin.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  const s = await call(admin, '/summary');
  expect(s.status).toBe(200);
  expect(s.json).toMatchObject({ active: 3, delayed: 2, inFlight: 0 });
  expect(s.json).toEqual(JSON.parse(JSON.stringify(core.summary())));
  const d = await call(admin, '/domains/x.test');
  expect(d.json).toEqual(JSON.parse(JSON.stringify(core.domainView('x.test'))));
  const q = await call(admin, '/domains/x.test/queue?binding=b0&limit=2&offset=1');
  expect(q.json.messages.map((m: { id: number }) => m.id)).toEqual([2, 3]);
  const delayed = await call(admin, '/domains/x.test/queue?queue=delayed');
  expect(delayed.json.messages.map((m: { id: number }) => m.id)).toEqual([4]);
  const m = await call(admin, '/metrics');
  expect(m.status).toBe(200);
  expect(m.text).toMatch(/^mqc_messages\{state="active"\} 3$/m);
  expect((await call(admin, '/domains/nope.test')).status).toBe(404);
});

test('actions: suspend (with a duration), resume, flush, fail, retry', async () => {
  const { core, admin } = await setup();
  const bounces: number[] = [];
  core.on('bounce', (e) => bounces.push(e.id));
  expect((await call(admin, '/suspend', post({ domain: 'x.test', binding: 'b0' }))).status).toBe(200);
  expect(core.domainView('x.test').bindings.b0.suspended).toBe(true);
  expect(core.maintain(T0).opened).toBe(0);
  expect((await call(admin, '/resume', post({ domain: 'x.test', binding: 'b0' }))).json).toEqual({
    resumed: { domain: 'x.test', binding: 'b0' },
  });
  expect(core.domainView('x.test').bindings.b0.suspended).toBe(false);
  // A suspension with a duration ends on its own.
  await call(admin, '/suspend', post({ domain: 'x.test', durationMs: 50 }));
  expect(core.domainView('x.test').bindings.b0.suspended).toBe(true);
  await new Promise((r) => setTimeout(r, 150));
  expect(core.domainView('x.test').bindings.b0.suspended).toBe(false);
  expect((await call(admin, '/retry', post({ id: 4 }))).json).toEqual({ retried: true });
  expect(core.message(4)?.state).toBe('active');
  expect((await call(admin, '/retry', post({ id: 4 }))).json).toEqual({ retried: false });
  expect((await call(admin, '/flush', post({ domain: 'y.test' }))).json).toEqual({ moved: 1 });
  expect((await call(admin, '/fail', post({ domain: 'y.test' }))).json).toEqual({ failed: 1 });
  expect(bounces).toEqual([5]);
});

test('hostile requests get a 4xx with a JSON error and change nothing', async () => {
  const token = 's3cret-token';
  const { core, admin } = await setup(token);
  const before = JSON.stringify([core.summary(), core.domainView('x.test'), core.domainView('y.test')]);
  const cases: [string, RequestInit, string | undefined, number][] = [
    ['/summary', {}, undefined, 401],
    ['/summary', {}, 'wrong-token!', 401],
    ['/suspend', post({ domain: 'x.test' }), undefined, 401],
    ['/suspend', post('{"domain": '), token, 400],
    ['/suspend', post('[1,2]'), token, 400],
    ['/suspend', post({ domain: 'x.test', evil: true }), token, 400],
    ['/suspend', post({ domain: 42 }), token, 400],
    ['/suspend', post({ domain: 'x.test', durationMs: -5 }), token, 400],
    ['/suspend', post({ domain: 'x.test', binding: 'nope' }), token, 400],
    ['/suspend', { method: 'GET' }, token, 405],
    ['/fail', post({ domain: 'x'.repeat(200_000) }), token, 413],
    ['/retry', post({ id: 'seven' }), token, 400],
    ['/flush', post({ domain: 'unknown.test' }), token, 404],
    ['/nowhere', {}, token, 404],
    ['/domains/x.test/queue?limit=0', {}, token, 400],
    ['/domains/x.test/queue?queue=sideways', {}, token, 400],
    ['/domains/x.test/queue?binding=nope', {}, token, 400],
    ['/domains/%E0%A4%A', {}, token, 400],
  ];
  for (const [path, init, auth, status] of cases) {
    const r = await call(admin, path, init, auth);
    expect(r.status, `${init.method ?? 'GET'} ${path}`).toBe(status);
    expect(typeof r.json?.error, `${path}: a JSON error`).toBe('string');
  }
  expect(JSON.stringify([core.summary(), core.domainView('x.test'), core.domainView('y.test')])).toBe(before);
  // The right token works.
  expect((await call(admin, '/summary', {}, token)).status).toBe(200);
});

test('a suspend through the API stops new connections at the receiver; a resume lets the mail through', async () => {
  const srv = await startServer();
  closers.push(() => srv.close());
  const core = new MailQueueCore({
    config: { global: { maxOutboundConnections: 2, idleTimeout: 0.05, delayedQueueScanInterval: 0.05 } },
    transport: new SmtpTransport({ routes: { '*': { host: '127.0.0.1', port: srv.port } } }),
    store: new MemoryStore(),
  });
  closers.push(() => core.close());
  const admin = await serveAdmin(core);
  closers.push(() => admin.close());
  expect((await call(admin, '/suspend', post({ domain: 'held.test' }))).status).toBe(200);
  core.start();
  for (let id = 1; id <= 10; id++) {
    await core.submit(
      { id, domain: 'held.test', envelope: { from: `id-${id}@src.test`, to: ['r@held.test'] } },
      Buffer.from(`X-Id: ${id}\r\n\r\nhi\r\n`),
    );
  }
  await new Promise((r) => setTimeout(r, 300));
  expect(srv.connections.length).toBe(0);
  expect(core.stats().active).toBe(10);
  expect((await call(admin, '/resume', post({ domain: 'held.test' }))).status).toBe(200);
  const end = Date.now() + 10_000;
  while (srv.accepted.length < 10 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  expect([...srv.accepted].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  expect(srv.peak()).toBeLessThanOrEqual(2);
  await core.stop();
});
