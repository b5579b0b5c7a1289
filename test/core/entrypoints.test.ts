// The addon's entry points match the NativeBinding interface that lib/native.ts declares, and the
// counters view (a Float64Array the native core keeps current) is laid out as core.counterIndex says.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, test } from 'vitest';

import { MailQueueCore } from '../../lib/index.js';
import { native } from '../../lib/native.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const nativeTs = fs.readFileSync(path.join(here, '..', '..', 'lib', 'native.ts'), 'utf8');

/** The method names declared in `export interface NativeBinding { ... }`, read from the source text. */
function declaredNames(src: string): string[] {
  const start = src.indexOf('export interface NativeBinding {');
  expect(start).toBeGreaterThanOrEqual(0);
  // The interface body ends at the first line that is exactly "}".
  const end = src.indexOf('\n}', start);
  expect(end).toBeGreaterThan(start);
  const body = src.slice(start + 'export interface NativeBinding {'.length, end);
  const names: string[] = [];
  for (const m of body.matchAll(/^\s{2}([A-Za-z_$][\w$]*)\s*\(/gm)) names.push(m[1]);
  return names;
}

// Written out as well, so that a method dropped from both the interface and the addon is caught.
const EXPECTED = [
  'createCore',
  'countersBuffer',
  'flightBuffer',
  'trackFlight',
  'destroyCore',
  'addThrottle',
  'addDomain',
  'forgetDomain',
  'drainIdle',
  'setSuspended',
  'setDomainLimits',
  'setServerLimits',
  'setThrottleRate',
  'leaseExcess',
  'enqueue',
  'enqueueBatch',
  'enqueueArrivals',
  'applyOutcomes',
  'cancel',
  'cancelBatch',
  'locate',
  'activeSize',
  'delayedSize',
  'peekActive',
  'peekDelayed',
  'removeActive',
  'take',
  'takeFor',
  'settle',
  'settleBatch',
  'defer',
  'deferBatch',
  'untake',
  'setAttempts',
  'setClusterHeld',
  'setClusterThrottles',
  'setThrottleAllowance',
  'dueDomains',
  'computeGoal',
  'openConnections',
  'defaultMaintain',
  'maintainDomain',
  'maintainSlice',
  'prepareVisit',
  'visitDefault',
  'nextSlice',
  'unvisitSlice',
  'setMessageThrottle',
  'messageNextAllowedAt',
  'migrateConnection',
  'nextDueAt',
  'flushDomain',
  'failDomain',
  'retryNow',
  'delayedByBinding',
  'reserveFor',
  'releaseConnection',
  'drainGrants',
  'connectionsByDomain',
  'ageShape',
  'drainExpired',
  'pending',
  'domainInfo',
  'groupDomainCounts',
  'groupCount',
  'checkInvariants',
  'bytesReserved',
  'goalCurve',
  'addHost',
  'setDomainHosts',
  'claimHost',
  'connectionHost',
  'hostCount',
  'counterNames',
  'noop',
  'setErrorClass',
];

describe('native entry points', () => {
  const declared = declaredNames(nativeTs);

  test('the interface text parses to the expected list of methods (no duplicates)', () => {
    expect(new Set(declared).size).toBe(declared.length);
    expect([...declared].sort()).toEqual([...EXPECTED].sort());
  });

  test.each(EXPECTED)('addon.%s exists and is a function', (name) => {
    const fn = (native as unknown as Record<string, unknown>)[name];
    expect(typeof fn).toBe('function');
  });

  test('the addon exports exactly the declared functions, and its limits, nothing unexpected', () => {
    const exported = Object.keys(native)
      .filter((k) => k !== 'limits')
      .sort();
    expect(exported).toEqual([...declared].sort());
    for (const k of exported) expect(typeof (native as unknown as Record<string, unknown>)[k]).toBe('function');
    // The one property that is not a function: the core's limits, declared as readonly data.
    expect(nativeTs).toMatch(/^ {2}readonly limits: \{$/m);
    expect(Object.keys(native.limits)).toEqual(['maxDomainHosts', 'flightSetBits', 'flightWays', 'flightStride']);
  });

  test('noop and goalCurve are callable module-level functions', () => {
    expect(native.noop()).toBeUndefined();
    expect(native.goalCurve(32, 10, 0.3)).toBe(3);
    expect(native.counterNames()).toEqual([
      'connections',
      'active',
      'delayed',
      'inFlight',
      'domains',
      'opened',
      'released',
      'expired',
      'activeRemoved',
      'highestId',
      'refused:pair',
      'refused:domain',
      'refused:group_domain',
      'refused:group',
      'refused:binding',
      'refused:server',
      'refused:throttle',
      'refused:suspended',
      'refused:host',
      'refused:cluster',
    ]);
  });
});

describe('counters view', () => {
  test('counterIndex names every fixed counter once and two slots per binding, all distinct and in range', () => {
    const core = new MailQueueCore({ bindings: ['a', 'b', 'c'], clock: () => 1000 });
    const idx = core.counterIndex;
    const fixed = native.counterNames();
    for (const n of fixed) expect(idx[n]).toBe(fixed.indexOf(n));
    for (const b of core.bindings) {
      expect(idx[`connections:${b}`]).toBeTypeOf('number');
      expect(idx[`active:${b}`]).toBeTypeOf('number');
    }
    const slots = Object.values(idx);
    expect(Object.keys(idx)).toHaveLength(fixed.length + 2 * 3);
    expect(new Set(slots).size).toBe(slots.length);
    expect(core.counters.length).toBe(slots.length);
    for (const s of slots) expect(s >= 0 && s < core.counters.length).toBe(true);
    expect(Object.isFrozen(idx)).toBe(true);
    core.close();
  });

  test('every counter read through counterIndex equals core.stats() and the live views', () => {
    let t = 1_000_000;
    const core = new MailQueueCore({
      bindings: ['a', 'b'],
      clock: () => t,
      config: { global: { maxOutboundConnections: 4, serverReserveOutboundConnections: 0 } },
    });
    const bounced: number[] = [];
    core.on('bounce', (b: { id: number }) => bounced.push(b.id));
    // Distinct values for every counter, so that two swapped slots cannot pass.
    // a: 9 active on x.com; b: 5 active on y.com; 3 delayed on x.com; 2 that expire.
    for (let i = 0; i < 9; i++) core.enqueue({ id: 100 + i, domain: 'x.com', binding: 'a' });
    for (let i = 0; i < 5; i++) core.enqueue({ id: 200 + i, domain: 'y.com', binding: 'b' });
    for (let i = 0; i < 3; i++) core.enqueue({ id: 300 + i, domain: 'x.com', binding: 'b', nextAttempt: t + 60_000 });
    core.enqueue({ id: 400, domain: 'z.com', binding: 'a', expiresAt: t + 10 });
    core.enqueue({ id: 401, domain: 'z.com', binding: 'a', expiresAt: t + 10 });
    t += 20;
    const r = core.maintain();
    expect(bounced.sort()).toEqual([400, 401]);
    // Take 2 from x.com/a into flight; open connections were granted by maintain.
    expect(core.take('x.com', 'a', 2)).toEqual([100, 101]);
    // Release one connection.
    expect(r.opened).toBeGreaterThan(1);
    core.releaseConnection(r.grants[0].connectionId);

    const s = core.stats();
    expect(s).toEqual({
      connections: r.opened - 1,
      active: 7 + 5,
      delayed: 3,
      inFlight: 2,
      domains: 3,
      opened: r.opened,
      released: 1,
      expired: 2,
      activeRemoved: 4, // 400 and 401 expired from the active queue, 100 and 101 taken
    });
    const c = core.counters;
    const i = core.counterIndex;
    for (const key of Object.keys(s) as (keyof typeof s)[]) expect(c[i[key]]).toBe(s[key]);
    for (const b of core.bindings) {
      const conns = core.domains().reduce((n, d) => n + core.domain(d).connections(b), 0);
      const active = core.domains().reduce((n, d) => n + core.domain(d).activeSize(b), 0);
      expect(c[i[`connections:${b}`]]).toBe(conns);
      expect(c[i[`active:${b}`]]).toBe(active);
    }
    expect(c[i['active:a']]).toBe(7);
    expect(c[i['active:b']]).toBe(5);
    expect(c[i['connections:a']] + c[i['connections:b']]).toBe(s.connections);
    expect(core.checkInvariants()).toBe(true);
    core.close();
  });

  test('the counters array is kept current without a call (same array object, new values)', () => {
    const t = 5000;
    const core = new MailQueueCore({ clock: () => t });
    const c = core.counters;
    const i = core.counterIndex;
    expect(c[i.active]).toBe(0);
    core.enqueue({ id: 1, domain: 'x.com' });
    expect(core.counters).toBe(c);
    expect(c[i.active]).toBe(1);
    expect(c[i.domains]).toBe(1);
    core.maintain();
    expect(c[i.connections]).toBe(1);
    expect(c[i.opened]).toBe(1);
    expect(c[i['connections:default']]).toBe(1);
    core.close();
  });
});
