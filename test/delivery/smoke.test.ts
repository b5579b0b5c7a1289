import { SMTPServer } from 'smtp-server';
import { afterAll, expect, test } from 'vitest';
import { MailQueueCore, MemoryStore, SmtpTransport } from '../../lib/index.js';

const servers: SMTPServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
});

function listen(
  onData: (id: string) => string | undefined,
): Promise<{ port: number; got: string[]; peak: () => number }> {
  const got: string[] = [];
  let open = 0;
  let peak = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onConnect(_s, cb) {
      open++;
      peak = Math.max(peak, open);
      cb();
    },
    onClose() {
      open--;
    },
    onData(stream, _session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        const m = /X-Id: (\d+)/.exec(text);
        const err = onData(m ? m[1] : '?');
        if (err) {
          const e = new Error(err) as Error & { responseCode: number };
          e.responseCode = Number(err.slice(0, 3));
          cb(e);
          return;
        }
        got.push(m ? m[1] : '?');
        cb();
      });
    },
  });
  servers.push(server);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const port = (server.server.address() as { port: number }).port;
      resolve({ port, got, peak: () => peak });
    }),
  );
}

test('messages submitted to a started core are delivered over SMTP within the limits', async () => {
  let n = 0;
  const srv = await listen(() => (n++ % 5 === 4 ? '451 try later' : undefined));
  const store = new MemoryStore();
  const core = new MailQueueCore({
    bindings: ['a'],
    config: {
      global: {
        maxOutboundConnections: 3,
        retryInterval: 0.05,
        maxRetryInterval: 0.1,
        idleTimeout: 0.05,
        delayedQueueScanInterval: 0.05,
      },
    },
    transport: new SmtpTransport({ routes: { 'x.test': [{ host: '127.0.0.1', port: srv.port }] } }),
    store,
  });
  core.start();
  const N = 60;
  for (let i = 1; i <= N; i++) {
    await core.submit(
      { id: i, domain: 'x.test', envelope: { from: 'a@b.test', to: ['c@x.test'] } },
      Buffer.from(`X-Id: ${i}\r\n\r\nhello\r\n`),
    );
  }
  const deadline = Date.now() + 20_000;
  while (srv.got.length < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await core.stop();
  expect(new Set(srv.got).size).toBe(N);
  expect(srv.got.length).toBe(N);
  expect(srv.peak()).toBeLessThanOrEqual(3);
  expect(core.stats()).toMatchObject({ active: 0, delayed: 0, inFlight: 0, connections: 0 });
  core.close();
});
