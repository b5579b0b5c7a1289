// A fleet of three node processes (test/fixtures/cluster-node.mjs: each its own core, delivery and
// FileSpool, the real public API compiled from lib/) shares clusterMaxOutboundConnections: 4 for
// capped.test through one real redis-server, delivering to one real SMTP receiver that counts the
// connections it has open at once. Each node alone may open 4 (12 for the fleet). Across a kill -9
// of one node (restarted on its spool: its mail is delivered) and a Redis crash and restart (empty,
// same port), the receiver never has more than 4 open; while every node has mail the fleet keeps
// at least 3 of the 4 open on average; every message is received at least once.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { compileLib } from '../support/compiled_lib.js';
import { sleep, waitFor } from '../support/harness.js';
import { RedisServer, redisAvailable } from '../support/redis_server.js';
import { startServer, type TestServer } from '../support/smtp_servers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURE = path.join(here, '..', 'fixtures', 'cluster-node.mjs');
const CAP = 4;
const PER_NODE = 300;

interface Node {
  child: ChildProcess;
  lines: string[];
  queued: number;
  errors: number;
}

describe.runIf(redisAvailable())('a fleet of three nodes on one Redis', () => {
  let outDir = '';
  let env: NodeJS.ProcessEnv = {};
  let redis: RedisServer | undefined;
  let server: TestServer | undefined;
  const nodes: Node[] = [];
  const dirs: string[] = [];

  beforeAll(() => {
    ({ outDir, env } = compileLib('fleet'));
  }, 120_000);
  afterAll(async () => {
    for (const n of nodes) if (n.child.exitCode === null) n.child.kill('SIGKILL');
    await redis?.kill();
    await server?.close();
    for (const d of [...dirs, outDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  function run(i: number, first: number, count: number): Node {
    const child = spawn(
      process.execPath,
      [FIXTURE, dirs[i], String(server!.port), String(redis!.port), `node${i}`, String(first), String(count)],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const node: Node = { child, lines: [], queued: -1, errors: 0 };
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('queued ')) node.queued = Number(line.slice(7));
        else if (line === 'cluster-error') node.errors++;
        else node.lines.push(line);
        nl = buf.indexOf('\n');
      }
    });
    child.stderr!.on('data', (d: Buffer) => process.stderr.write(`[node${i}] ${d}`));
    return node;
  }

  async function killNode(n: Node): Promise<void> {
    const exited = new Promise((r) => n.child.once('exit', r));
    n.child.kill('SIGKILL');
    await exited;
  }

  test('the receiver never sees more than the cap, across kill -9 of a node and a Redis restart', async () => {
    redis = await RedisServer.start();
    server = await startServer({ behavior: { dataDelayMs: 40 } });
    for (let i = 0; i < 3; i++) dirs.push(fs.mkdtempSync(path.join(os.tmpdir(), `mqc-fleet-${i}-`)));
    for (let i = 0; i < 3; i++) nodes.push(run(i, 1 + i * 10_000, PER_NODE));
    const s = server;
    const received = () => new Set(s.accepted).size;
    const describeState = () => ({
      received: received(),
      open: s.open(),
      peak: s.peak(),
      queued: nodes.map((n) => n.queued),
    });

    // The fleet at work: sample the receiver's open connections while every node still has mail.
    await waitFor(
      () => nodes.every((n) => n.lines.includes('submitted')),
      'every node submitted',
      60_000,
      describeState,
    );
    await waitFor(() => s.open() > 0, 'a first connection', 20_000, describeState);
    let samples = 0;
    let openSum = 0;
    const perNode = () => [0, 1, 2].map((i) => s.accepted.filter((id) => Math.floor((id - 1) / 10_000) === i).length);
    const before = perNode();
    while (received() < 400 && nodes.every((n) => n.queued > 10)) {
      samples++;
      openSum += s.open();
      await sleep(5);
    }
    const during = perNode().map((v, i) => v - before[i]);
    console.info(
      `fleet: ${(openSum / samples).toFixed(2)} of ${CAP} open on average over ${samples} samples; per node ${during}`,
    );
    expect(samples, JSON.stringify(describeState())).toBeGreaterThan(50);
    // At least 75% of the cap used, and no node starved while the others delivered.
    expect(openSum / samples, JSON.stringify({ during, ...describeState() })).toBeGreaterThanOrEqual(CAP * 0.75);
    expect(Math.min(...during), JSON.stringify({ during })).toBeGreaterThan(0);

    // kill -9 of node 0: its leases expire, the others take the slots; restarted, it recovers its mail.
    await killNode(nodes[0]);
    const afterKill = received();
    await waitFor(() => received() >= afterKill + 100, 'the others deliver after the kill', 30_000, describeState);
    nodes[0] = run(0, 0, 0);
    await waitFor(() => nodes[0].lines.includes('ready'), 'node 0 restarted', 30_000, describeState);

    // Redis crashes and comes back empty on the same port after more than a lease's life.
    const atCrash = received();
    await redis.kill();
    await sleep(3500);
    await redis.restart();
    await waitFor(() => received() > atCrash + 50, 'delivery after Redis returned', 30_000, describeState);
    expect(
      nodes.slice(1).some((n) => n.errors > 0),
      'an ERR_CLUSTER error event while Redis was away',
    ).toBe(true);

    // Every message of the three nodes received at least once.
    const all: number[] = [];
    for (let i = 0; i < 3; i++) for (let k = 0; k < PER_NODE; k++) all.push(1 + i * 10_000 + k);
    const got = new Set(s.accepted);
    await waitFor(
      () => all.every((id) => got.has(id) || (s.accepted.includes(id) && got.add(id))),
      'every message received',
      90_000,
      () => ({
        missing: all.filter((id) => !new Set(s.accepted).has(id)).length,
        ...describeState(),
      }),
    );
    expect(s.anomalies).toEqual([]);
    expect(s.peak(), JSON.stringify(describeState())).toBeLessThanOrEqual(CAP);
  }, 240_000);
});
