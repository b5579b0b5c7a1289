// A fast SMTP sink for the delivery suite, run as its own child process (fork) so that its CPU is
// not counted in the measured process: raw sockets, EHLO with PIPELINING, 8BITMIME and SIZE, every
// command answered 250 (DATA 354, QUIT 221), every message accepted with 250 after its final dot.
// Replies to pipelined commands that arrive in one read go back in one write. It counts the
// messages it accepted (and their bytes); the parent asks with { op: 'count' } over IPC and gets
// { accepted, bytes, connections, cpuMs } (cpuMs: the sink's own CPU time so far). Started with the port to listen on (0: any), it sends
// { port } once listening.
//
// Postfix's smtp-sink would do the same; it is not part of a fresh Debian with Node alone, and
// smtp-server (parsing every command with its full state machine, a stream per message) costs the
// receiver several times this, which on a 2-core machine is CPU taken from the measured sender.
import net from 'node:net';

const TERMINATOR = Buffer.from('\r\n.\r\n');
const EHLO = 'sink.invalid\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 104857600\r\n250 SMTPUTF8\r\n';

let accepted = 0;
let bytes = 0;
let connections = 0;

function serve(socket: net.Socket): void {
  connections++;
  socket.setNoDelay(true);
  let inData = false;
  // Command mode: the partial line; data mode: the last 4 bytes seen (a terminator split over reads).
  let pending: Buffer = Buffer.alloc(0);
  let dataBytes = 0;
  socket.on('error', () => undefined);
  socket.write('220 sink.invalid ESMTP\r\n');
  socket.on('data', (chunk: Buffer) => {
    let out = '';
    let buf = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    let pos = 0;
    while (pos < buf.length) {
      if (inData) {
        // A message that is only its terminator starts with ".\r\n" right after the 354.
        const start = pos;
        let end: number;
        let next: number;
        if (
          dataBytes === 0 &&
          buf.length - pos >= 3 &&
          buf[pos] === 0x2e &&
          buf[pos + 1] === 0x0d &&
          buf[pos + 2] === 0x0a
        ) {
          end = pos;
          next = pos + 3;
        } else {
          end = buf.indexOf(TERMINATOR, pos);
          next = end + TERMINATOR.length;
        }
        if (end < 0) {
          // Keep the last 4 bytes: the terminator may straddle this read and the next.
          const keepFrom = Math.max(pos, buf.length - 4);
          dataBytes += keepFrom - start;
          pending = Buffer.from(buf.subarray(keepFrom));
          buf = pending;
          pos = buf.length;
          break;
        }
        dataBytes += end - start;
        pos = next;
        inData = false;
        accepted++;
        bytes += dataBytes;
        dataBytes = 0;
        out += '250 2.0.0 queued\r\n';
        continue;
      }
      const nl = buf.indexOf(0x0a, pos);
      if (nl < 0) break;
      const verb = buf.toString('latin1', pos, Math.min(pos + 4, nl)).toUpperCase();
      pos = nl + 1;
      if (verb === 'DATA') {
        inData = true;
        dataBytes = 0;
        out += '354 go ahead\r\n';
      } else if (verb === 'EHLO') out += `250-${EHLO}`;
      else if (verb === 'QUIT') {
        out += '221 bye\r\n';
        socket.end(out);
        return;
      } else out += '250 ok\r\n';
    }
    if (!inData || pos < buf.length) pending = pos < buf.length ? Buffer.from(buf.subarray(pos)) : Buffer.alloc(0);
    if (out) socket.write(out);
  });
}

const server = net.createServer(serve);
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const port = (server.address() as net.AddressInfo).port;
  process.send?.({ port });
});
process.on('message', (m: { op?: string }) => {
  if (m?.op === 'count') {
    const u = process.cpuUsage();
    process.send?.({ accepted, bytes, connections, cpuMs: (u.user + u.system) / 1000 });
  }
  if (m?.op === 'exit') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
