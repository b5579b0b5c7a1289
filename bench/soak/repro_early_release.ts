// Reproduction of what the soak's "server peaks within limits" check finds: the receiving server
// counts one connection more than the limit, for a few ms, while the core's own count never passes
// it.
//
//   node --import tsx bench/soak/repro_early_release.ts [--seconds S] [--lag MS]
//
// One domain, maxOutboundConnections 1, and a server (test/support's startServer, in a worker
// thread) that never answers the final dot. The server counts a connection open from its TCP accept
// to the first of 'end' (the client's FIN), 'error' or 'close'. Every attempt ends with the
// transport's command timeout (100 ms here): nodemailer's socket timer fires, it calls socket.end()
// and emits 'end' at once; the session is given up, the core releases the lease, and a
// maintenance pass that is due in the same timers phase grants the next connection, whose SYN goes
// out before the FIN of the one it replaces (libuv writes the shutdown later in that loop
// iteration). The server then accepts the new connection while it still counts the old one open.
// --lag MS adds MS of synchronous work to every loop iteration (as on a loaded MTA), so that more
// timers fall due together; the soak run sees the same thing without it, under its own load.
//
// --wait-close patches nodemailer in this process so that its 'end' event (on which
// SmtpSession.close() resolves, and so the lease is released) waits for the socket's 'close'
// (at most 1 s): the direction of a fix. With it the server's peak stays at 1.
//
// Exit code 1 when the server counted more than 1 connection at once (the finding reproduced).
import type net from 'node:net';
import { Worker } from 'node:worker_threads';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { MailQueueCore, MemoryStore, SmtpTransport } from '../../lib/index.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const SECONDS = arg('seconds', 10);
const LAG = arg('lag', 20);
const WAIT_CLOSE = process.argv.includes('--wait-close');
const N = 20;

if (WAIT_CLOSE) {
  type Conn = { close(): void; _destroy(): void; _socket?: net.Socket; _closing?: boolean };
  const proto = SMTPConnection.prototype as unknown as Conn;
  const close = proto.close;
  proto.close = function (this: Conn) {
    const socket = this._socket;
    if (socket && !socket.destroyed && !this._closing) {
      const destroy = this._destroy;
      this._destroy = () => {
        this._destroy = destroy;
        const done = () => destroy.call(this); // emits 'end' (once)
        socket.once('close', done);
        setTimeout(done, 1000).unref();
      };
    }
    close.call(this);
  };
}

const serverUrl = new URL('../../test/support/smtp_servers.ts', import.meta.url).href;
const worker = new Worker(
  `const { parentPort } = require('node:worker_threads');
   import('tsx/esm/api').then(async ({ register }) => {
     register();
     const { startServer } = await import(${JSON.stringify(serverUrl)});
     const s = await startServer({ name: 'mx', behavior: { data: () => 'hang' } });
     parentPort.on('message', () => parentPort.postMessage({
       peak: s.peak(), open: s.open(), connections: s.connections.length, accepted: s.accepted.length,
     }));
     parentPort.postMessage({ port: s.port });
   });`,
  { eval: true },
);
const ask = () =>
  new Promise<{ port?: number; peak?: number; open?: number; connections?: number; accepted?: number }>((r) =>
    worker.once('message', r),
  );
const { port } = await ask();

const core = new MailQueueCore({
  bindings: ['b'],
  config: {
    global: {
      maxOutboundConnections: 1,
      idleTimeout: 0.2,
      retryInterval: 0.05,
      maxRetryInterval: 0.05,
      delayedQueueScanInterval: 0.01,
      hostFailureRetry: 0,
      messageExpiration: 3600,
    },
  },
  transport: new SmtpTransport({
    routes: { 'example.test': { host: '127.0.0.1', port: port! } },
    timeouts: { connect: 1000, greeting: 1000, command: 100, message: 5000, quit: 200 },
  }),
  store: new MemoryStore(),
  deliveryTimeout: 10_000,
});
let corePeak = 0;
let grants = 0;
core.on('connection', () => {
  grants++;
  corePeak = Math.max(corePeak, core.stats().connections);
});
core.on('error', (e) => console.error('error event:', e));

let spinning = LAG > 0;
const spin = () => {
  const until = performance.now() + LAG;
  while (performance.now() < until);
  if (spinning) setImmediate(spin);
};
if (spinning) setImmediate(spin);

core.start();
for (let id = 1; id <= N; id++) {
  await core.submit(
    { id, domain: 'example.test', envelope: { from: `id-${id}@sender.test`, to: ['rcpt@example.test'] } },
    Buffer.from(`X-Id: ${id}\r\n\r\nhello\r\n`),
  );
}
await new Promise((r) => setTimeout(r, SECONDS * 1000));
spinning = false;
await core.stop();
const after = core.stats();
worker.postMessage('stats');
const s = await ask();
console.log(
  `${WAIT_CLOSE ? '(nodemailer patched: end after the socket closes) ' : ''}lag ${LAG} ms, ${SECONDS} s: ${grants} connections granted, each ended by the 100 ms command timeout; limit 1.\n` +
    `  the core's count at every grant peaked at ${corePeak}; after stop(): ${after.connections} connections, ` +
    `leases ${after.opened} opened / ${after.released} released\n` +
    `  the server accepted ${s.connections} connections and counted ${s.peak} open at once`,
);
core.close();
await worker.terminate();
process.exitCode = s.peak! > 1 ? 1 : 0;
