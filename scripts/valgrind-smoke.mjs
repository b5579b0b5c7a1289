#!/usr/bin/env node
// `npm run test:valgrind`: a plain workload against the normal Release addon, run under valgrind
// memcheck. Needs `valgrind` (Debian: apt-get install -y valgrind) and build/Release (npm run
// build:native).
//
//   node scripts/valgrind-smoke.mjs                  the workload alone, no valgrind (a few seconds)
//   node scripts/valgrind-smoke.mjs --under-valgrind re-runs itself as `valgrind ... node <this>`
//        [--rounds N]                                 core lifetimes (default 12)
//
// The workload talks to the raw binding (the calls lib/core.ts makes, without the TypeScript
// layer): cores created and destroyed, domains and throttles added, enqueue and enqueueBatch,
// maintainSlice (whole passes), drainGrants, take, settle / settleBatch / defer / untake, cancel, expiry, release,
// invariants checked, destroyCore. No `process.exit()`: node tears down normally, so what is still
// allocated at exit is node's, not a shortcut of ours.
//
// Verdict (see docs/sanitizers.md): fail on any memcheck error (invalid read/write/free,
// uninitialised value, overlap, mismatched free) and on any "definitely lost" or "indirectly lost"
// block whose allocation stack passes through mail_queue_core.node. Definite leaks with no frame
// of ours are printed and counted as node's; "possibly lost" and "still reachable" blocks are
// node's (threads and isolate state alive at exit) and only summarised, except that any block of
// ours still allocated at exit (every core is destroyed by then) is printed as a note.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(self), '..');
const ADDON = path.join(root, 'build', 'Release', 'mail_queue_core.node');
const args = process.argv.slice(2);
const roundsAt = args.indexOf('--rounds');
const ROUNDS = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 12;
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) {
  console.error('valgrind-smoke: --rounds needs a positive integer');
  process.exit(2);
}

if (args.includes('--under-valgrind')) process.exit(underValgrind());
workload();

// ---------------------------------------------------------------------------------------------
// The workload.
// ---------------------------------------------------------------------------------------------
function workload() {
  if (!fs.existsSync(ADDON)) {
    console.error(`valgrind-smoke: ${ADDON} is missing: npm run build:native`);
    process.exit(1);
  }
  const a = createRequire(import.meta.url)(ADDON);
  const ops = {
    createCore: 0,
    addDomain: 0,
    addThrottle: 0,
    enqueue: 0,
    enqueueBatch: 0,
    maintainSlice: 0,
    drainGrants: 0,
    take: 0,
    takeFor: 0,
    settle: 0,
    settleBatch: 0,
    defer: 0,
    untake: 0,
    cancel: 0,
    drainExpired: 0,
    releaseConnection: 0,
    checkInvariants: 0,
    destroyCore: 0,
    countersBuffer: 0,
  };
  let settled = 0;
  const check = (h, where) => {
    ops.checkInvariants++;
    if (!a.checkInvariants(h)) throw new Error(`invariants broken ${where}`);
  };
  const grantBuf = new Float64Array(3 * 64);
  const slice = new Float64Array(2);
  const expBuf = new Float64Array(256);
  const expDom = new Float64Array(256);
  const takeBuf = new Float64Array(8);

  let nextId = 1;
  let seq = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const nb = 2 + (round % 2); // 2 or 3 bindings
    const h = a.createCore(
      Float64Array.of(nb, 0, 200, 10),
      new Int32Array(nb).fill(-1),
      new Float64Array(nb).fill(Infinity),
      new Float64Array(0),
    );
    ops.createCore++;
    const counters = new Float64Array(a.countersBuffer(h));
    ops.countersBuffer++;
    const throttle = a.addThrottle(h, 50, 1000);
    ops.addThrottle++;
    const domains = [];
    for (let i = 0; i < 6; i++) {
      const pairs = new Float64Array(4 * nb);
      for (let b = 0; b < nb; b++) {
        pairs[4 * b] = 4 + ((i + b) % 8); // maxConnections
        pairs[4 * b + 1] = i % 2 ? 0.75 : 0.3; // aggressiveness
        pairs[4 * b + 2] = i === 0 ? throttle : -1; // one domain throttled
        pairs[4 * b + 3] = 0; // not suspended
      }
      domains.push(a.addDomain(h, pairs, i === 1 ? 3 : Infinity, new Float64Array(0)));
      ops.addDomain++;
    }

    let now = 1_000_000 + round;
    // Messages: single enqueues (some delayed, some expiring soon, some urgent) and batches.
    const live = [];
    for (const d of domains) {
      for (let k = 0; k < 40; k++) {
        const id = nextId++;
        const b = k % nb;
        const delayed = k % 7 === 0;
        const expires = k % 11 === 0 ? now + 50 : Infinity;
        a.enqueue(h, d, b, id, k % 5 === 0 ? 1 : 0, delayed ? now + 200 : now, expires, now);
        ops.enqueue++;
        live.push(id);
      }
      const ids = Float64Array.from({ length: 32 }, () => nextId++);
      const prios = Uint8Array.from(ids, (_, j) => (j % 3 === 0 ? 1 : 0));
      a.enqueueBatch(h, d, round % nb, ids, round % 2 ? prios : null, now, now + 10_000, now);
      ops.enqueueBatch++;
    }
    // Cancel a few.
    for (let k = 0; k < live.length; k += 17) {
      a.cancel(h, live[k]);
      ops.cancel++;
    }
    check(h, `after enqueue (round ${round})`);

    // Passes: grants -> take -> settle / defer / untake -> release; the clock moves on.
    for (let pass = 0; pass < 12; pass++) {
      now += 40;
      a.maintainSlice(h, now, 4294967295, true, Infinity, slice);
      ops.maintainSlice++;
      for (;;) {
        const n = a.drainExpired(h, expBuf, expDom);
        ops.drainExpired++;
        if (n < expBuf.length) break;
      }
      const grants = [];
      for (;;) {
        const n = a.drainGrants(h, grantBuf);
        ops.drainGrants++;
        for (let i = 0; i < n; i++) grants.push([grantBuf[3 * i], grantBuf[3 * i + 1], grantBuf[3 * i + 2]]);
        if (n < grantBuf.length / 3) break;
      }
      const batch = [];
      for (const [conn, d, b] of grants) {
        // Every other connection takes by its own id (the delivery layer's way).
        const byId = conn % 2 === 0 && typeof a.takeFor === 'function';
        const n = byId ? a.takeFor(h, conn, now, takeBuf) : a.take(h, d, b, now, takeBuf);
        if (byId) ops.takeFor++;
        else ops.take++;
        for (let j = 0; j < n; j++) {
          const id = takeBuf[j];
          const r = seq++ % 10;
          if (r < 5) {
            a.settle(h, id);
            ops.settle++;
            settled++;
          } else if (r < 7 && typeof a.settleBatch === 'function') batch.push(id);
          else if (r < 9) {
            a.defer(h, id, now + 60, now);
            ops.defer++;
          } else {
            a.untake(h, id);
            ops.untake++;
          }
        }
        a.releaseConnection(h, conn);
        ops.releaseConnection++;
        if (byId) {
          // A released connection takes nothing: refused, and nothing is read or written.
          let refused = false;
          try {
            a.takeFor(h, conn, now, takeBuf);
          } catch (e) {
            refused = e.code === 'ERR_UNKNOWN_CONNECTION';
          }
          if (!refused) throw new Error(`takeFor of released connection ${conn} was not refused`);
          ops.takeFor++;
        }
      }
      if (batch.length > 0) {
        a.settleBatch(h, Float64Array.from(batch));
        ops.settleBatch++;
        settled += batch.length;
      }
      check(h, `after pass ${pass} (round ${round})`);
    }
    // Leave some in flight on every other core: destroyCore must free them too.
    if (round % 2 === 1) {
      a.maintainSlice(h, now + 1000, 4294967295, true, Infinity, slice);
      ops.maintainSlice++;
      const n = a.drainGrants(h, grantBuf);
      ops.drainGrants++;
      if (n > 0) {
        a.take(h, grantBuf[1], grantBuf[2], now + 1000, takeBuf);
        ops.take++;
      }
    }
    const last = Array.from(counters);
    if (!a.destroyCore(h)) throw new Error('destroyCore returned false');
    ops.destroyCore++;
    // The counters' memory outlives the core (the buffer holds a share): read after the destroy.
    if (counters.some((v, i) => v !== last[i])) throw new Error('counters changed after destroyCore');
  }
  const total = Object.values(ops).reduce((x, y) => x + y, 0);
  console.log(`valgrind-smoke: ${ROUNDS} cores, ${total} addon calls, ${settled} messages settled`);
  console.log(
    `  ${Object.entries(ops)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
}

// ---------------------------------------------------------------------------------------------
// The valgrind run and its verdict.
// ---------------------------------------------------------------------------------------------
function underValgrind() {
  const probe = spawnSync('valgrind', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    console.error('valgrind-smoke: valgrind is not installed (Debian: apt-get install -y valgrind)');
    console.log('0 passed, 1 failed');
    return 1;
  }
  if (!fs.existsSync(ADDON)) {
    console.error(`valgrind-smoke: ${ADDON} is missing: npm run build:native`);
    console.log('0 passed, 1 failed');
    return 1;
  }
  const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-valgrind-')), 'memcheck.log');
  const vg = [
    '--tool=memcheck',
    '--error-exitcode=1',
    '--leak-check=full',
    '--errors-for-leak-kinds=definite',
    '--show-leak-kinds=all',
    '--track-origins=yes',
    '--num-callers=40',
    `--log-file=${log}`,
  ];
  const cmd = [...vg, process.execPath, self, '--rounds', String(ROUNDS)];
  console.log(`${probe.stdout.trim()}: valgrind ${cmd.join(' ')}`);
  const t0 = Date.now();
  const r = spawnSync('valgrind', cmd, {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  process.stdout.write(r.stdout ?? '');
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';

  // Split the log into records: a record starts after a blank "==pid==" line or at a line that
  // opens an error or a leak record (valgrind does not always put a blank line before one).
  const errorHead =
    /^(Invalid (read|write|free)|Conditional jump|Use of uninitialised|Syscall param|Source and destination overlap|Mismatched free|Argument '.*' of function|Process terminating|Jump to the invalid address)/;
  const leakHead = /are (definitely|indirectly|possibly) lost in loss record|are still reachable in loss record/;
  const records = [];
  let cur = [];
  for (const line of text.split('\n')) {
    if (!/^==\d+==/.test(line)) continue;
    const body = line.replace(/^==\d+==\s?/, '');
    if (body.trim() === '' || errorHead.test(body) || leakHead.test(body) || /^Warning: /.test(body)) {
      if (cur.length) records.push(cur);
      cur = body.trim() === '' ? [] : [body];
    } else cur.push(body);
  }
  if (cur.length) records.push(cur);
  const ours = (rec) => rec.some((l) => l.includes('mail_queue_core.node'));
  const errors = records.filter((rec) => errorHead.test(rec[0]));
  const leakOf = (kind) => records.filter((rec) => new RegExp(`are ${kind} lost in loss record`).test(rec[0]));
  const definite = leakOf('definitely');
  const indirect = leakOf('indirectly');
  const possible = leakOf('possibly');
  const reachableOurs = records.filter((rec) => /are still reachable in loss record/.test(rec[0]) && ours(rec));
  const summary = (label) => (new RegExp(`${label}: (.*)`).exec(text) ?? [])[1] ?? '?';

  const failures = [];
  const show = (title, recs) => {
    if (recs.length === 0) return;
    console.log(`\n== ${title}`);
    for (const rec of recs) console.log(`${rec.join('\n')}\n`);
  };
  show('memcheck errors', errors);
  // Safety net: ERROR SUMMARY counts memcheck errors plus one per definite-leak record
  // (--errors-for-leak-kinds=definite); anything beyond the leak records is an access error, even
  // if the parsing above missed it.
  const summaryErrors = Number((/ERROR SUMMARY: (\d+) errors/.exec(text) ?? [])[1] ?? NaN);
  if (summaryErrors - definite.length > errors.length) {
    failures.push(
      `ERROR SUMMARY counts ${summaryErrors - definite.length} non-leak error(s), ${errors.length} shown above: read ${log}`,
    );
  }
  if (errors.length > 0)
    failures.push(
      `${errors.length} memcheck error(s) (${errors.filter(ours).length} with a frame in mail_queue_core.node)`,
    );
  const ourLeaks = [...definite, ...indirect].filter(ours);
  show('definite / indirect leaks from mail_queue_core.node', ourLeaks);
  if (ourLeaks.length > 0)
    failures.push(`${ourLeaks.length} definite/indirect leak record(s) allocated through mail_queue_core.node`);
  const nodeLeaks = [...definite, ...indirect].filter((rec) => !ours(rec));
  show('definite / indirect leaks with no frame of ours (node, V8, libc)', nodeLeaks);
  show('possibly lost through mail_queue_core.node', possible.filter(ours));
  if (r.status !== 0 && r.status !== 1) failures.push(`valgrind/node exited ${r.status ?? r.signal}`);
  if (!/ERROR SUMMARY:/.test(text)) failures.push('valgrind wrote no ERROR SUMMARY (did it run?)');
  const workloadLine = /valgrind-smoke: \d+ cores, .*/.exec(r.stdout ?? '');
  if (!workloadLine) failures.push('the workload did not finish (no summary line from it)');

  console.log(`\nvalgrind: ${secs} s, exit ${r.status ?? r.signal}, log ${log}`);
  console.log(`  ERROR SUMMARY: ${summary('ERROR SUMMARY')}`);
  console.log(`  definitely lost: ${summary('definitely lost')}`);
  console.log(`  indirectly lost: ${summary('indirectly lost')}`);
  console.log(
    `  possibly lost: ${summary('possibly lost')} (${possible.filter(ours).length} record(s) through mail_queue_core.node)`,
  );
  console.log(`  still reachable: ${summary('still reachable')}`);
  if (nodeLeaks.length > 0)
    console.log(
      `note: ${nodeLeaks.length} definite/indirect leak record(s) with no frame of ours (node's; shown above)`,
    );
  if (possible.filter(ours).length > 0)
    console.log(
      'note: "possibly lost" records through mail_queue_core.node (shown above): read them; they do not fail the run',
    );
  // Every core was destroyed and node tore the environment down: nothing of ours should be left.
  // Not a failure (a static cache would be legitimate), but worth reading.
  if (reachableOurs.length > 0) {
    show('still reachable at exit, allocated through mail_queue_core.node', reachableOurs);
    console.log(
      `note: ${reachableOurs.length} still-reachable record(s) allocated through mail_queue_core.node (shown above)`,
    );
  } else console.log('  still reachable at exit through mail_queue_core.node: none');
  for (const f of failures) console.log(`FAIL: ${f}`);
  console.log(`${failures.length === 0 ? 1 : 0} passed, ${failures.length === 0 ? 0 : 1} failed`);
  return failures.length === 0 ? 0 : 1;
}
