// The destination side of the demo, run in a worker thread: one smtp-server per ServerSpec on
// 127.0.0.1 with an ephemeral port. Each server counts its own concurrent connections (onConnect
// to onClose) and their peak; the worker also counts them over all servers and per source
// address. Nothing here trusts the core: these counts are what the limits are checked against.
import { parentPort, workerData } from 'node:worker_threads';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import {
  idFromSender,
  prng,
  type AllStats,
  type FromWorker,
  type ServerSpec,
  type ServerStats,
  type ToWorker,
  type WorkerInit,
} from './protocol.js';

const init = workerData as WorkerInit;
const port = parentPort!;
const random = prng(init.seed ^ 0x5eed);

let globalOpen = 0;
let globalPeak = 0;
const openBySource = new Map<string, number>();
const peakBySource: Record<string, number> = {};
const acceptedIds: number[] = [];

interface Running {
  spec: ServerSpec;
  server: SMTPServer;
  stats: ServerStats;
  /** Sessions counted in `open` (from onConnect until onClose). */
  counted: Set<string>;
  /** Domains each session carried mail for. */
  domains: Map<string, Set<string>>;
}

function smtpError(code: number, text: string): Error {
  const e = new Error(text) as Error & { responseCode: number };
  e.responseCode = code;
  return e;
}

function start(spec: ServerSpec): Promise<{ running: Running; port: number }> {
  const stats: ServerStats = {
    name: spec.name,
    kind: spec.kind,
    connections: 0,
    open: 0,
    peak: 0,
    refused: 0,
    accepted: 0,
    deferred451: 0,
    rejected550: 0,
    multiDomainSessions: 0,
    sources: {},
    ehloMismatches: 0,
  };
  const counted = new Set<string>();
  const domains = new Map<string, Set<string>>();

  const server = new SMTPServer({
    name: `${spec.name}.mx.demo.test`,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 1000,

    onConnect(session: SMTPServerSession, cb: (err?: Error | null) => void) {
      // Counted before the verdict: a connection beyond the limit is still a connection the
      // client opened, and it shows in the peak.
      counted.add(session.id);
      stats.connections++;
      stats.open++;
      stats.peak = Math.max(stats.peak, stats.open);
      globalOpen++;
      globalPeak = Math.max(globalPeak, globalOpen);
      const src = session.remoteAddress;
      const n = (openBySource.get(src) ?? 0) + 1;
      openBySource.set(src, n);
      peakBySource[src] = Math.max(peakBySource[src] ?? 0, n);
      if (spec.refuseAbove !== undefined && stats.open > spec.refuseAbove) {
        stats.refused++;
        cb(smtpError(421, `${spec.name}: too many connections (more than ${spec.refuseAbove}), try again later`));
        return;
      }
      cb();
    },

    onClose(session: SMTPServerSession) {
      if (!counted.delete(session.id)) return;
      stats.open--;
      globalOpen--;
      const src = session.remoteAddress;
      openBySource.set(src, (openBySource.get(src) ?? 1) - 1);
      const d = domains.get(session.id);
      if (d && d.size > 1) stats.multiDomainSessions++;
      domains.delete(session.id);
    },

    onMailFrom(_address, session, cb) {
      const src = session.remoteAddress;
      stats.sources[src] = (stats.sources[src] ?? 0) + 1;
      const want = init.ehloBySource[src];
      if (want === undefined || session.hostNameAppearsAs !== want) stats.ehloMismatches++;
      cb();
    },

    onRcptTo(address, session, cb) {
      const [local, domain] = address.address.split('@');
      let set = domains.get(session.id);
      if (!set) domains.set(session.id, (set = new Set()));
      set.add(domain.toLowerCase());
      if (local === init.unknownUser) {
        stats.rejected550++;
        cb(smtpError(550, `5.1.1 <${address.address}>: no such user`));
        return;
      }
      cb();
    },

    onData(stream, session, cb) {
      stream.on('error', () => undefined);
      stream.resume();
      stream.on('end', () => {
        const finish = () => {
          if (spec.failRate !== undefined && random() < spec.failRate) {
            stats.deferred451++;
            cb(smtpError(451, '4.3.0 temporary failure, try again later'));
            return;
          }
          const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
          const id = idFromSender(from);
          acceptedIds.push(id ?? -1);
          stats.accepted++;
          cb(null, `2.0.0 queued as ${id}`);
        };
        if (spec.delayMs) {
          const [lo, hi] = spec.delayMs;
          setTimeout(finish, lo + Math.floor(random() * (hi - lo + 1)));
        } else {
          finish();
        }
      });
    },
  });
  server.on('error', (err) =>
    port.postMessage({ type: 'error', message: `${spec.name}: ${err.message}` } satisfies FromWorker),
  );
  return new Promise((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.server.off('error', reject);
      const p = (server.server.address() as { port: number }).port;
      resolve({ running: { spec, server, stats, counted, domains }, port: p });
    });
  });
}

const running: Running[] = [];

function snapshot(withIds: boolean): AllStats {
  return {
    servers: running.map((r) => ({ ...r.stats, sources: { ...r.stats.sources } })),
    globalPeak,
    globalOpen,
    peakBySource: { ...peakBySource },
    acceptedIds: withIds ? Float64Array.from(acceptedIds) : new Float64Array(0),
  };
}

async function main(): Promise<void> {
  const ports: Record<string, number> = {};
  for (const spec of init.servers) {
    const { running: r, port: p } = await start(spec);
    running.push(r);
    ports[spec.name] = p;
  }
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'stats') {
      port.postMessage({ type: 'stats', stats: snapshot(msg.withIds) } satisfies FromWorker);
    } else if (msg.type === 'close') {
      void Promise.all(running.map((r) => new Promise<void>((res) => r.server.close(() => res())))).then(() => {
        port.postMessage({ type: 'closed' } satisfies FromWorker);
        port.close();
      });
    }
  });
  port.postMessage({ type: 'ready', ports } satisfies FromWorker);
}

main().catch((err: unknown) => {
  port.postMessage({
    type: 'error',
    message: err instanceof Error ? (err.stack ?? err.message) : String(err),
  } satisfies FromWorker);
});
