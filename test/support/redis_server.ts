// A real redis-server for the cluster tests (test/cluster/): started on a free loopback port with
// no persistence (`--save '' --appendonly no`), stopped (SIGKILL, as a crash) and started again on
// the same port, empty. Nothing is assumed running. Without redis-server on PATH the tests skip
// with the reason printed, except under CI=true, where they fail (CI installs it: .ci/run).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import net from 'node:net';

import { Redis } from 'ioredis';

/** Whether redis-server is on PATH; the reason printed when it is not. */
export function redisAvailable(): boolean {
  const r = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  const ok = !r.error && r.status === 0;
  if (!ok) {
    const why = 'redis-server is not on PATH (apt-get install -y redis-server): the Redis tests';
    if (process.env.CI === 'true') throw new Error(`${why} cannot run, and under CI=true they must`);
    console.warn(`SKIPPED: ${why} are skipped`);
  }
  return ok;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export class RedisServer {
  #child: ChildProcess | undefined;
  private constructor(readonly port: number) {}

  static async start(port?: number): Promise<RedisServer> {
    const s = new RedisServer(port ?? (await freePort()));
    await s.restart();
    return s;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts redis-server (empty) on this port and waits until it answers PING. */
  async restart(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    this.#child = child;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (await ping(this.port)) return;
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`redis-server on port ${this.port} did not start (exit ${child.exitCode})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Kills redis-server with SIGKILL and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}

/** An ioredis client as a node would hold one: it fails fast while Redis is away (no offline queue)
 *  and reconnects every 100 ms; resolved once it is ready. */
export async function connectRedis(port: number): Promise<Redis> {
  const redis = new Redis(port, '127.0.0.1', {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => 100,
  });
  redis.on('error', () => undefined);
  await new Promise((r) => redis.once('ready', r));
  return redis;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    sock.setTimeout(500);
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) {
        sock.destroy();
        resolve(buf.startsWith('+PONG'));
      }
    });
    sock.on('error', () => resolve(false));
    sock.on('timeout', () => {
      sock.destroy();
      resolve(false);
    });
  });
}
