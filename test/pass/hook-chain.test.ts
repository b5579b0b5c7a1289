// The __mail_queue_maintain hook chain (docs/architecture.md §6) and the neighbouring hooks, as an MTA
// sees them: order, closures, return values, failures, re-entrancy, what providers may do during
// a call, pre/post domain hooks, round-robin over bindings and the Momentum aliases.
import { afterEach, describe, expect, test } from 'vitest';

import {
  ActiveQueue,
  DomainRecord,
  HookError,
  MailQueueCore,
  momentumAliases,
  type CoreConfig,
  type Grant,
  type MailQueueMaintainArgs,
} from '../../lib/index.js';

const T0 = 1_700_000_000_000;

interface Rig {
  core: MailQueueCore;
  clock: { t: number };
  errors: HookError[];
}

const open: MailQueueCore[] = [];
afterEach(() => {
  for (const c of open.splice(0)) if (!c.closed) c.close();
});

function rig(options: { bindings?: string[]; config?: CoreConfig; errorListener?: boolean } = {}): Rig {
  const clock = { t: T0 };
  const core = new MailQueueCore({ bindings: options.bindings, config: options.config, clock: () => clock.t });
  open.push(core);
  const errors: HookError[] = [];
  if (options.errorListener !== false) core.on('error', (e) => errors.push(e as HookError)); // every error of these cores is a provider's
  return { core, clock, errors };
}

/** Queues n messages for (domain, binding) with ids from `first`. */
function fill(core: MailQueueCore, domain: string, binding: string | undefined, n: number, first: number): void {
  for (let i = 0; i < n; i++) core.enqueue({ id: first + i, domain, binding });
}

/** Arguments for a direct hook call on (domain, binding slot). */
function argsFor(
  core: MailQueueCore,
  domain: string,
  slot: number,
  now: number,
  goalsz = 0,
  reserve = 0,
): MailQueueMaintainArgs {
  return [core.domain(domain), slot, core.activeQueue(domain, slot), now, goalsz, reserve];
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('chain order and closures', () => {
  test('registerFirst/registerLast interleaved: firsts in reverse registration order, then lasts in order', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 10, 1);
    const seen: string[] = [];
    const p = (closure: string) => {
      seen.push(closure);
      return 0;
    };
    const hook = core.hooks.mailQueueMaintain;
    hook.registerLast(p, 'L1');
    hook.registerFirst(p, 'F1');
    hook.registerLast(p, 'L2');
    hook.registerFirst(p, 'F2');
    hook.registerLast(p, 'L3');
    hook.registerFirst(p, 'F3');
    expect(hook.size).toBe(6);
    core.maintain();
    expect(seen).toEqual(['F3', 'F2', 'F1', 'L1', 'L2', 'L3']);
    seen.length = 0;
    expect(hook.call(...argsFor(core, 'x.com', 0, T0))).toBeGreaterThanOrEqual(0);
    expect(seen).toEqual(['F3', 'F2', 'F1', 'L1', 'L2', 'L3']);
  });

  test('the closure given at registration comes back as the first argument (same object)', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 3, 1);
    const c1 = { name: 'one' };
    const c2 = { name: 'two' };
    const got: unknown[] = [];
    const hook = core.hooks.mailQueueMaintain;
    hook.registerLast((closure: unknown) => {
      got.push(closure);
      return 0;
    }, c1);
    hook.registerLast((closure: unknown) => {
      got.push(closure);
      return 0;
    }, c2);
    hook.registerLast((closure: unknown) => {
      got.push(closure);
      return 0;
    });
    core.maintain();
    expect(got).toHaveLength(3);
    expect(got[0]).toBe(c1);
    expect(got[1]).toBe(c2);
    expect(got[2]).toBeUndefined();
  });

  test('the same function registered twice with two closures is two providers', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 3, 1);
    const got: unknown[] = [];
    const fn = (closure: unknown) => {
      got.push(closure);
      return 0;
    };
    core.hooks.mailQueueMaintain.registerLast(fn, 'a');
    core.hooks.mailQueueMaintain.registerLast(fn, 'b');
    core.maintain();
    expect(got).toEqual(['a', 'b']);
  });
});

describe('return values', () => {
  test('a non-zero return ends the chain, is returned by call(), and the default does not run', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 50, 1);
    const seen: string[] = [];
    const hook = core.hooks.mailQueueMaintain;
    hook.registerLast(() => {
      seen.push('a');
      return 0;
    });
    hook.registerLast(() => {
      seen.push('b');
      return 5;
    });
    hook.registerLast(() => {
      seen.push('c');
      return 0;
    });
    expect(hook.call(...argsFor(core, 'x.com', 0, T0))).toBe(5);
    expect(seen).toEqual(['a', 'b']);
    expect(core.stats().connections).toBe(0);
    expect(core.stats().opened).toBe(0);
    expect(core.domain('x.com').connections(0)).toBe(0);
    const r = core.maintain();
    expect(r).toEqual({ opened: 0, grants: [], visited: 1, remaining: 0 });
    expect(core.stats().connections).toBe(0);
  });

  test('-1 stops the default without opening connections', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 400, 1);
    let post = NaN;
    core.hooks.mailQueueMaintain.registerLast(() => -1);
    core.hooks.postMailQueueMaintainDomain.registerLast((_c, _dr, _now, rv: { value: number }) => {
      post = rv.value;
    });
    const r = core.maintain();
    expect(r.opened).toBe(0);
    expect(r.grants).toEqual([]);
    expect(core.stats().connections).toBe(0);
    expect(core.domain('x.com').connections()).toBe(0);
    expect(post).toBe(0); // -1 is not counted
    expect(core.hooks.mailQueueMaintain.call(...argsFor(core, 'x.com', 0, T0))).toBe(-1);
    expect(core.stats().opened).toBe(0);
  });

  test('the native default runs when every provider returns 0, and its result is returned', () => {
    const { core } = rig({ bindings: ['a', 'b'] });
    fill(core, 'x.com', 'b', 10, 1);
    const seen: string[] = [];
    core.hooks.mailQueueMaintain.registerLast(() => {
      seen.push('p1');
      return 0;
    });
    core.hooks.mailQueueMaintain.registerLast(() => {
      seen.push('p2');
      return undefined;
    }); // undefined counts as 0
    const r = core.maintain();
    expect(seen).toEqual(['p1', 'p2']);
    // q = 10, M = 32, normal: goal 3
    expect(r.opened).toBe(3);
    expect(r.grants.map((g) => [g.domain, g.binding])).toEqual([
      ['x.com', 'b'],
      ['x.com', 'b'],
      ['x.com', 'b'],
    ]);
    expect(core.stats().connections).toBe(3);
    expect(core.domain('x.com').connections('b')).toBe(3);
    expect(core.domain('x.com').connections('a')).toBe(0);
    // A direct call: goal 3 is met, the default opens nothing more and returns 0.
    expect(core.hooks.mailQueueMaintain.call(...argsFor(core, 'x.com', 1, T0, 0, 0))).toBe(0);
    expect(core.hooks.mailQueueMaintain.call(...argsFor(core, 'x.com', 1, T0, 2, 0))).toBe(2);
    expect(core.stats().connections).toBe(5);
  });

  test('with no provider the chain is the default', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 50, 1);
    expect(core.hooks.mailQueueMaintain.has()).toBe(false);
    expect(core.hooks.mailQueueMaintain.call(...argsFor(core, 'x.com', 0, T0))).toBe(12);
    expect(core.stats().connections).toBe(12);
  });
});

describe('failing providers', () => {
  test('a throwing provider is reported as an error event (HookError) and skipped', () => {
    const { core, errors } = rig({ bindings: ['a', 'b'] });
    fill(core, 'x.com', 'b', 10, 1);
    const boom = new Error('boom');
    const seen: string[] = [];
    core.hooks.mailQueueMaintain.registerLast(() => {
      seen.push('thrower');
      throw boom;
    });
    core.hooks.mailQueueMaintain.registerLast(() => {
      seen.push('next');
      return 0;
    });
    const r = core.maintain();
    expect(seen).toEqual(['thrower', 'next']);
    expect(r.opened).toBe(3); // the default ran
    expect(errors).toHaveLength(1);
    const e = errors[0];
    expect(e).toBeInstanceOf(HookError);
    expect(e.code).toBe('ERR_HOOK_FAILED');
    expect(e.hook).toBe('mailQueueMaintain');
    expect(e.domain).toBe('x.com');
    expect(e.binding).toBe('b');
    expect(e.cause).toBe(boom);
    expect(e.message).toContain('boom');
  });

  test('a provider that throws a non-Error is reported too', () => {
    const { core, errors } = rig();
    fill(core, 'x.com', undefined, 1, 1);
    core.hooks.mailQueueMaintain.registerLast(() => {
      throw 'plain string';
    });
    expect(core.maintain().opened).toBe(1);
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toContain('plain string');
  });

  test('with no error listener a failure becomes a process warning and maintenance continues', async () => {
    const { core } = rig({ errorListener: false });
    fill(core, 'x.com', undefined, 10, 1);
    fill(core, 'y.com', undefined, 10, 100);
    const warnings: (Error & { code?: string })[] = [];
    const onWarning = (w: Error & { code?: string }) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      core.hooks.mailQueueMaintain.registerLast((_c, dr: DomainRecord) => {
        if (dr.name === 'x.com') throw new Error('x.com provider failed');
        return 0;
      });
      const r = core.maintain();
      // Both domains were maintained by the default (3 each).
      expect(r.opened).toBe(6);
      expect(core.domain('x.com').connections()).toBe(3);
      expect(core.domain('y.com').connections()).toBe(3);
      await tick();
      await tick();
      const ours = warnings.filter((w) => w.code === 'ERR_HOOK_FAILED');
      expect(ours).toHaveLength(1);
      expect(ours[0].message).toContain('x.com provider failed');
    } finally {
      process.off('warning', onWarning);
    }
  });

  test('a provider that returns a Promise is reported and skipped; its rejection is not unhandled', async () => {
    const { core, errors } = rig();
    fill(core, 'x.com', undefined, 10, 1);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const seen: string[] = [];
      core.hooks.mailQueueMaintain.registerLast(() => {
        seen.push('rejects');
        return Promise.reject(new Error('late'));
      });
      core.hooks.mailQueueMaintain.registerLast(async () => {
        seen.push('async');
        throw new Error('async late');
      });
      core.hooks.mailQueueMaintain.registerLast(() => {
        seen.push('resolves');
        return Promise.resolve(7);
      });
      core.hooks.mailQueueMaintain.registerLast(() => {
        seen.push('last');
        return 0;
      });
      const r = core.maintain();
      expect(seen).toEqual(['rejects', 'async', 'resolves', 'last']);
      expect(r.opened).toBe(3); // the resolved 7 was not taken as a result; the default ran
      expect(errors).toHaveLength(3);
      for (const e of errors) {
        expect(e.code).toBe('ERR_HOOK_FAILED');
        expect(e.message).toMatch(/Promise/);
        expect(e.domain).toBe('x.com');
      }
      for (let i = 0; i < 5; i++) await tick();
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test.each([
    ['a string', '3'],
    ['an object', { value: 3 }],
    ['a boolean', true],
    ['null', null],
    ['NaN', NaN],
    ['a bigint', 3n],
  ])('a provider returning %s is reported and skipped', (_label, value) => {
    const { core, errors } = rig();
    fill(core, 'x.com', undefined, 10, 1);
    let after = 0;
    core.hooks.mailQueueMaintain.registerLast(() => value);
    core.hooks.mailQueueMaintain.registerLast(() => {
      after++;
      return 0;
    });
    const r = core.maintain();
    expect(after).toBe(1);
    expect(r.opened).toBe(3);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(HookError);
    expect(errors[0].code).toBe('ERR_HOOK_FAILED');
    expect(errors[0].hook).toBe('mailQueueMaintain');
  });

  test('a throwing connectionGoal or pre/post provider is reported with its hook name', () => {
    const { core, errors } = rig();
    fill(core, 'x.com', undefined, 10, 1);
    core.hooks.connectionGoal.registerLast(() => {
      throw new Error('goal');
    });
    core.hooks.preMailQueueMaintainDomain.registerLast(() => {
      throw new Error('pre');
    });
    core.hooks.postMailQueueMaintainDomain.registerLast(() => {
      throw new Error('post');
    });
    expect(core.maintain().opened).toBe(3);
    expect(errors.map((e) => e.hook).sort()).toEqual([
      'connectionGoal',
      'postMailQueueMaintainDomain',
      'preMailQueueMaintainDomain',
    ]);
    for (const e of errors) expect(e.domain).toBe('x.com');
  });
});

describe('registration lifetime', () => {
  test('an unregister function removes exactly its provider; calling it twice is harmless', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 1, 1);
    const hook = core.hooks.mailQueueMaintain;
    const seen: string[] = [];
    const fn = (closure: string) => {
      seen.push(closure);
      return 0;
    };
    const u1 = hook.registerLast(fn, 'one');
    const u2 = hook.registerLast(fn, 'two');
    const u3 = hook.registerFirst(fn, 'three');
    expect(hook.has()).toBe(true);
    u2();
    hook.call(...argsFor(core, 'x.com', 0, T0));
    expect(seen).toEqual(['three', 'one']);
    u2();
    seen.length = 0;
    hook.call(...argsFor(core, 'x.com', 0, T0));
    expect(seen).toEqual(['three', 'one']);
    expect(hook.size).toBe(2);
    u3();
    u3();
    seen.length = 0;
    hook.call(...argsFor(core, 'x.com', 0, T0));
    expect(seen).toEqual(['one']);
    u1();
    expect(hook.has()).toBe(false);
    expect(hook.size).toBe(0);
    u1();
    expect(hook.size).toBe(0);
  });

  test('a provider unregistering itself does not make the next one skipped or repeated', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 1, 1);
    const hook = core.hooks.mailQueueMaintain;
    const seen: string[] = [];
    let unA = () => {};
    unA = hook.registerLast(() => {
      seen.push('A');
      unA();
      return 0;
    });
    hook.registerLast(() => {
      seen.push('B');
      return 0;
    });
    hook.registerLast(() => {
      seen.push('C');
      return 0;
    });
    hook.call(...argsFor(core, 'x.com', 0, T0));
    expect(seen).toEqual(['A', 'B', 'C']);
    seen.length = 0;
    hook.call(...argsFor(core, 'x.com', 0, T0));
    expect(seen).toEqual(['B', 'C']);
  });

  test('a provider unregistering an earlier one does not repeat or skip anyone', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 1, 1);
    const hook = core.hooks.mailQueueMaintain;
    const seen: string[] = [];
    const unA = hook.registerLast(() => {
      seen.push('A');
      return 0;
    });
    hook.registerLast(() => {
      seen.push('B');
      unA();
      return 0;
    });
    hook.registerLast(() => {
      seen.push('C');
      return 0;
    });
    hook.call(...argsFor(core, 'x.com', 0, T0));
    expect(seen).toEqual(['A', 'B', 'C']);
    seen.length = 0;
    hook.call(...argsFor(core, 'x.com', 0, T0));
    expect(seen).toEqual(['B', 'C']);
  });

  test('a call runs the list it started with: providers removed or added during it take effect on the next call', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 1, 1);
    const hook = core.hooks.mailQueueMaintain;
    const seen: string[] = [];
    let unC = () => {};
    let added = false;
    hook.registerLast(() => {
      seen.push('A');
      if (!added) {
        added = true;
        unC();
        hook.registerFirst(() => {
          seen.push('F');
          return 0;
        });
        hook.registerLast(() => {
          seen.push('L');
          return 0;
        });
      }
      return 0;
    });
    hook.registerLast(() => {
      seen.push('B');
      return 0;
    });
    unC = hook.registerLast(() => {
      seen.push('C');
      return 0;
    });
    core.maintain();
    // Every provider present when the call started runs exactly once; the new ones do not run yet.
    expect(seen).toEqual(['A', 'B', 'C']);
    seen.length = 0;
    core.maintain();
    expect(seen).toEqual(['F', 'A', 'B', 'L']);
  });
});

describe('re-entrancy', () => {
  function reentryRig() {
    const r = rig();
    fill(r.core, 'x.com', undefined, 10, 1);
    return r;
  }

  function codeOf(fn: () => unknown): string | undefined {
    try {
      fn();
    } catch (e) {
      return (e as { code?: string }).code;
    }
    return 'no error';
  }

  test('call() from inside a provider throws ERR_REENTRANT', () => {
    const { core, errors } = reentryRig();
    const codes: (string | undefined)[] = [];
    const hook = core.hooks.mailQueueMaintain;
    hook.registerLast((_c, ...args: MailQueueMaintainArgs) => {
      codes.push(codeOf(() => hook.call(...args)));
      return 0;
    });
    expect(core.maintain().opened).toBe(3);
    expect(hook.call(...argsFor(core, 'x.com', 0, T0, 1, 0))).toBe(1);
    expect(codes).toEqual(['ERR_REENTRANT', 'ERR_REENTRANT']);
    expect(errors).toEqual([]);
  });

  test('an uncaught ERR_REENTRANT from a provider is reported like any throw, and the pass goes on', () => {
    const { core, errors } = reentryRig();
    const hook = core.hooks.mailQueueMaintain;
    hook.registerLast((_c, ...args: MailQueueMaintainArgs) => hook.call(...args));
    expect(core.maintain().opened).toBe(3);
    expect(errors).toHaveLength(1);
    expect((errors[0].cause as { code?: string }).code).toBe('ERR_REENTRANT');
  });

  test('maintain() and maintainDomain() from inside a provider throw ERR_REENTRANT', () => {
    const { core } = reentryRig();
    const codes: (string | undefined)[] = [];
    core.hooks.mailQueueMaintain.registerLast(() => {
      codes.push(codeOf(() => core.maintain()));
      codes.push(codeOf(() => core.maintainDomain('x.com')));
      return -1;
    });
    core.maintain();
    expect(codes).toEqual(['ERR_REENTRANT', 'ERR_REENTRANT']);
    expect(core.stats().connections).toBe(0);
  });

  test('maintain() from inside a provider of a direct call() throws ERR_REENTRANT too', () => {
    const { core } = reentryRig();
    const codes: (string | undefined)[] = [];
    let depth = 0;
    core.hooks.mailQueueMaintain.registerLast(() => {
      depth++;
      if (depth === 1) codes.push(codeOf(() => core.maintain()));
      depth--;
      return -1;
    });
    core.hooks.mailQueueMaintain.call(...argsFor(core, 'x.com', 0, T0));
    expect(codes).toEqual(['ERR_REENTRANT']);
  });

  test('close() from inside a provider throws ERR_REENTRANT and the core stays usable', () => {
    const { core } = reentryRig();
    const codes: (string | undefined)[] = [];
    core.hooks.mailQueueMaintain.registerLast(() => {
      codes.push(codeOf(() => core.close()));
      return 0;
    });
    const r = core.maintain();
    expect(codes).toEqual(['ERR_REENTRANT']);
    expect(core.closed).toBe(false);
    expect(r.opened).toBe(3);
    expect(core.stats().connections).toBe(3);
    expect(core.checkInvariants()).toBe(true);
  });

  test('close() from inside a provider of a direct call() throws ERR_REENTRANT', () => {
    const { core } = reentryRig();
    const codes: (string | undefined)[] = [];
    core.hooks.mailQueueMaintain.registerLast(() => {
      codes.push(codeOf(() => core.close()));
      return 0;
    });
    const n = core.hooks.mailQueueMaintain.call(...argsFor(core, 'x.com', 0, T0));
    expect(codes).toEqual(['ERR_REENTRANT']);
    expect(core.closed).toBe(false);
    expect(n).toBe(3);
  });
});

describe('what a provider may do during a call', () => {
  test('read dr and sl: live views of the pair being maintained', () => {
    const { core } = rig({ bindings: ['a', 'b'] });
    fill(core, 'x.com', 'b', 4, 10);
    core.enqueue({ id: 99, domain: 'x.com', binding: 'b', priority: 1 });
    core.enqueue({ id: 50, domain: 'x.com', binding: 'a', nextAttempt: T0 + 1000 });
    const seen: unknown[] = [];
    core.hooks.mailQueueMaintain.registerLast((_c, dr: DomainRecord, slot: number, sl: ActiveQueue) => {
      seen.push({
        name: dr.name,
        slot,
        binding: sl.binding,
        size: sl.size,
        head: sl.peek(),
        list: sl.toArray(),
        activeB: dr.activeSize('b'),
        activeAll: dr.activeSize(),
        delayed: dr.delayedSize,
        conns: dr.connections(slot),
        has10: sl.has(10),
        has50: sl.has(50),
        suspended: dr.suspended(slot),
      });
      return -1;
    });
    core.maintain();
    expect(seen).toEqual([
      {
        name: 'x.com',
        slot: 1,
        binding: 'b',
        size: 5,
        head: 99,
        list: [99, 10, 11, 12, 13],
        activeB: 5,
        activeAll: 5,
        delayed: 1,
        conns: 0,
        has10: true,
        has50: false,
        suspended: false,
      },
    ]);
  });

  test('remove messages with sl.remove: the default then sees the smaller queue', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 50, 1);
    const removed: boolean[] = [];
    core.hooks.mailQueueMaintain.registerLast((_c, _dr, _slot, sl: ActiveQueue) => {
      for (let id = 1; id <= 40; id++) removed.push(sl.remove(id));
      removed.push(sl.remove(12345));
      return 0;
    });
    const r = core.maintain();
    expect(removed.filter(Boolean)).toHaveLength(40);
    expect(removed[40]).toBe(false);
    // q = 10 after removal: goal 3 (q = 50 would have been 12)
    expect(r.opened).toBe(3);
    expect(core.stats().active).toBe(10);
    expect(core.message(1)).toBeUndefined();
    expect(core.message(41)?.state).toBe('active');
  });

  test('suspend the domain: the default then opens nothing; resume lets the next pass open', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 10, 1);
    let suspendNow = true;
    core.hooks.mailQueueMaintain.registerLast((_c, dr: DomainRecord, slot: number) => {
      if (suspendNow) core.suspend(dr.name);
      expect(dr.suspended(slot)).toBe(suspendNow);
      return 0;
    });
    expect(core.maintain().opened).toBe(0);
    expect(core.stats().connections).toBe(0);
    suspendNow = false;
    core.resume('x.com');
    expect(core.maintain().opened).toBe(3);
  });

  test("open connections with core.openConnections: the grants appear in maintain()'s result", () => {
    const { core } = rig({ bindings: ['a', 'b'] });
    fill(core, 'x.com', 'a', 100, 1);
    const events: Grant[] = [];
    core.on('connection', (g: Grant) => events.push(g));
    let mine: Grant[] = [];
    core.hooks.mailQueueMaintain.registerLast((_c, dr: DomainRecord, slot: number) => {
      mine = core.openConnections(dr.name, slot, 2);
      return mine.length;
    });
    const r = core.maintain();
    expect(mine).toHaveLength(2);
    expect(r.opened).toBe(2);
    expect(r.grants).toEqual(mine);
    expect(events).toEqual(mine);
    expect(new Set(mine.map((g) => g.connectionId)).size).toBe(2);
    for (const g of mine) expect(g).toMatchObject({ domain: 'x.com', binding: 'a' });
    expect(core.stats().connections).toBe(2);
    expect(core.domain('x.com').connections('a')).toBe(2);
    // The grants are real leases: releasing them gives the count back.
    for (const g of mine) core.releaseConnection(g.connectionId);
    expect(core.stats().connections).toBe(0);
  });

  test('openConnections inside a provider is clipped by the same limits as the default', () => {
    const { core } = rig({ config: { global: { maxOutboundConnections: 4 } } });
    fill(core, 'x.com', undefined, 100, 1);
    core.hooks.mailQueueMaintain.registerLast(
      (_c, dr: DomainRecord, slot: number) => core.openConnections(dr.name, slot, 10).length,
    );
    const r = core.maintain();
    expect(r.opened).toBe(4);
    expect(core.stats().connections).toBe(4);
  });

  test('grants opened by a provider and by the default in one pass are all in the result', () => {
    const { core } = rig({ bindings: ['a', 'b'] });
    fill(core, 'x.com', 'a', 10, 1);
    fill(core, 'x.com', 'b', 10, 100);
    core.hooks.mailQueueMaintain.registerLast((_c, dr: DomainRecord, slot: number) => {
      if (slot === 0) return core.openConnections(dr.name, slot, 1).length;
      return 0; // binding b: the default (3)
    });
    const r = core.maintain();
    expect(r.opened).toBe(4);
    expect(r.grants.filter((g) => g.binding === 'a')).toHaveLength(1);
    expect(r.grants.filter((g) => g.binding === 'b')).toHaveLength(3);
    expect(new Set(r.grants.map((g) => g.connectionId)).size).toBe(4);
  });
});

describe('connectionGoal hook', () => {
  test('providers see the default goal; the last writer wins', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 10, 1);
    const seenGoals: number[] = [];
    core.hooks.connectionGoal.registerLast((_c, _dr, _slot, _sl, goal: { value: number }) => {
      seenGoals.push(goal.value);
      goal.value = 9;
    });
    core.hooks.connectionGoal.registerLast((_c, _dr, _slot, _sl, goal: { value: number }) => {
      seenGoals.push(goal.value);
      goal.value = 5;
    });
    const r = core.maintain();
    expect(seenGoals).toEqual([3, 9]);
    expect(r.opened).toBe(5);
    expect(core.stats().connections).toBe(5);
  });

  test('registration order decides the last writer', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 10, 1);
    core.hooks.connectionGoal.registerLast((_c, _dr, _slot, _sl, goal: { value: number }) => {
      goal.value = 9;
    });
    core.hooks.connectionGoal.registerFirst((_c, _dr, _slot, _sl, goal: { value: number }) => {
      goal.value = 5;
    });
    expect(core.maintain().opened).toBe(9);
  });

  test('a goal above maxOutboundConnections opens no more than the limit', () => {
    const { core } = rig({ config: { global: { maxOutboundConnections: 6 } } });
    fill(core, 'x.com', undefined, 1, 1);
    core.hooks.connectionGoal.registerLast((_c, _dr, _slot, _sl, goal: { value: number }) => {
      goal.value = 100;
    });
    expect(core.maintain().opened).toBe(6);
    expect(core.maintain().opened).toBe(0);
    expect(core.stats().connections).toBe(6);
  });

  test('a goal passes through the server and scope clips too', () => {
    const { core } = rig({
      bindings: ['a', 'b'],
      config: {
        global: { serverMaxOutboundConnections: 7, serverReserveOutboundConnections: 0 },
        domains: { 'y.com': { scopeMaxOutboundConnections: 2 } },
      },
    });
    fill(core, 'y.com', 'a', 1, 1);
    fill(core, 'y.com', 'b', 1, 10);
    fill(core, 'x.com', 'a', 1, 100);
    core.hooks.connectionGoal.registerLast((_c, _dr, _slot, _sl, goal: { value: number }) => {
      goal.value = 30;
    });
    core.maintain();
    expect(core.domain('y.com').connections()).toBe(2);
    expect(core.stats().connections).toBe(7);
    expect(core.checkInvariants()).toBe(true);
  });

  test('a goal at or below the current count opens nothing', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 100, 1);
    core.hooks.connectionGoal.registerLast((_c, _dr, _slot, _sl, goal: { value: number }) => {
      goal.value = 0;
    });
    expect(core.maintain().opened).toBe(0);
  });
});

describe('pre/post domain hooks and the pass', () => {
  test('pre -> chain per binding with mail -> post, once per due domain; post sees the sum of positive results', () => {
    const { core } = rig({ bindings: ['x', 'y'] });
    fill(core, 'a.com', 'x', 10, 1);
    fill(core, 'a.com', 'y', 10, 100);
    fill(core, 'b.com', 'y', 50, 200);
    core.enqueue({ id: 900, domain: 'c.com', binding: 'x', nextAttempt: T0 + 60_000 }); // not due
    const log: string[] = [];
    const posts: Record<string, number> = {};
    core.hooks.preMailQueueMaintainDomain.registerLast((_c, dr: DomainRecord, now: number, rv: { value: number }) => {
      expect(now).toBe(T0);
      expect(rv.value).toBe(0);
      log.push(`pre ${dr.name}`);
    });
    core.hooks.mailQueueMaintain.registerLast((_c, dr: DomainRecord, slot: number) => {
      const b = core.bindings[slot];
      log.push(`chain ${dr.name} ${b}`);
      if (dr.name === 'a.com') return b === 'x' ? 2 : -1;
      return 0; // b.com/y: the default, 12 for q = 50
    });
    core.hooks.postMailQueueMaintainDomain.registerLast((_c, dr: DomainRecord, _now: number, rv: { value: number }) => {
      log.push(`post ${dr.name}`);
      posts[dr.name] = rv.value;
    });
    core.maintain();
    // Split the log into one block per domain.
    const blocks: string[][] = [];
    for (const line of log) {
      if (line.startsWith('pre ')) blocks.push([]);
      blocks[blocks.length - 1].push(line);
    }
    expect(blocks).toHaveLength(2);
    const byDomain = Object.fromEntries(blocks.map((bl) => [bl[0].slice(4), bl]));
    expect(Object.keys(byDomain).sort()).toEqual(['a.com', 'b.com']);
    const a = byDomain['a.com'];
    expect(a[0]).toBe('pre a.com');
    expect(a[a.length - 1]).toBe('post a.com');
    expect(a.slice(1, -1).sort()).toEqual(['chain a.com x', 'chain a.com y']);
    expect(byDomain['b.com']).toEqual(['pre b.com', 'chain b.com y', 'post b.com']);
    expect(posts).toEqual({ 'a.com': 2, 'b.com': 12 });
    expect(core.stats().connections).toBe(12);
  });

  test('pre/post run for maintainDomain as well, once', () => {
    const { core } = rig();
    fill(core, 'a.com', undefined, 10, 1);
    const log: string[] = [];
    core.hooks.preMailQueueMaintainDomain.registerLast(() => {
      log.push('pre');
    });
    core.hooks.postMailQueueMaintainDomain.registerLast((_c, _dr, _now, rv: { value: number }) => {
      log.push(`post ${rv.value}`);
    });
    const r = core.maintainDomain('a.com');
    expect(r.opened).toBe(3);
    expect(log).toEqual(['pre', 'post 3']);
  });

  test('a domain whose delayed mail becomes due is maintained in that pass', () => {
    const { core, clock } = rig();
    core.enqueue({ id: 1, domain: 'a.com', nextAttempt: T0 + 5000 });
    const pres: string[] = [];
    core.hooks.preMailQueueMaintainDomain.registerLast((_c, dr: DomainRecord) => {
      pres.push(dr.name);
    });
    expect(core.maintain().opened).toBe(0);
    expect(pres).toEqual([]);
    clock.t = T0 + 5000;
    expect(core.maintain().opened).toBe(1);
    expect(pres).toEqual(['a.com']);
  });
});

describe('round-robin over bindings', () => {
  test('each pass visits every binding with mail once, from a rotating start (JS pass)', () => {
    const { core } = rig({ bindings: ['b0', 'b1', 'b2'] });
    for (let b = 0; b < 3; b++) fill(core, 'x.com', `b${b}`, 5, 100 * b + 1);
    let order: number[] = [];
    core.hooks.mailQueueMaintain.registerLast((_c, _dr, slot: number) => {
      order.push(slot);
      return -1;
    });
    const firsts: number[] = [];
    for (let pass = 0; pass < 6; pass++) {
      order = [];
      core.maintain();
      expect(order).toHaveLength(3);
      // Cyclic order from the start.
      expect(order).toEqual([0, 1, 2].map((j) => (order[0] + j) % 3));
      firsts.push(order[0]);
    }
    expect(new Set(firsts.slice(0, 3))).toEqual(new Set([0, 1, 2]));
    expect(new Set(firsts.slice(3, 6))).toEqual(new Set([0, 1, 2]));
  });

  test('a tight ceiling does not always favour binding 0 (native pass, no providers)', () => {
    const { core } = rig({
      bindings: ['b0', 'b1', 'b2'],
      config: { global: { serverMaxOutboundConnections: 1, serverReserveOutboundConnections: 0 } },
    });
    for (let b = 0; b < 3; b++) fill(core, 'x.com', `b${b}`, 5, 100 * b + 1);
    const winners: string[] = [];
    for (let pass = 0; pass < 3; pass++) {
      const r = core.maintain();
      expect(r.opened).toBe(1);
      winners.push(r.grants[0].binding);
      core.releaseConnection(r.grants[0].connectionId);
    }
    expect(winners.sort()).toEqual(['b0', 'b1', 'b2']);
  });

  test('a binding with an empty active queue is not visited', () => {
    const { core } = rig({ bindings: ['b0', 'b1', 'b2'] });
    fill(core, 'x.com', 'b1', 5, 1);
    const slots: number[] = [];
    core.hooks.mailQueueMaintain.registerLast((_c, _dr, slot: number) => {
      slots.push(slot);
      return -1;
    });
    core.maintain();
    core.maintain();
    core.maintain();
    expect(slots).toEqual([1, 1, 1]);
  });
});

describe('Momentum aliases', () => {
  test('has_ returns 1 or 0; register first/last put providers where the hook does', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 10, 1);
    const m = momentumAliases(core);
    expect(m.has_core___mail_queue_maintain_hook()).toBe(0);
    const seen: string[] = [];
    const fn = (closure: string) => {
      seen.push(closure);
      return 0;
    };
    const u1 = m.register_core___mail_queue_maintain_hook_last(fn, 'last');
    expect(m.has_core___mail_queue_maintain_hook()).toBe(1);
    expect(core.hooks.mailQueueMaintain.has()).toBe(true);
    const u2 = m.register_core___mail_queue_maintain_hook_first(fn, 'first');
    core.hooks.mailQueueMaintain.registerLast(fn, 'native-last');
    expect(core.hooks.mailQueueMaintain.size).toBe(3);
    const n = m.call_core___mail_queue_maintain_hook(...argsFor(core, 'x.com', 0, T0));
    expect(seen).toEqual(['first', 'last', 'native-last']);
    expect(n).toBe(3); // the default ran: q = 10
    u1();
    u2();
    expect(core.hooks.mailQueueMaintain.size).toBe(1);
    expect(m.has_core___mail_queue_maintain_hook()).toBe(1);
  });

  test('call_ returns the first non-zero result, as the hook does', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 10, 1);
    const m = momentumAliases(core);
    m.register_core___mail_queue_maintain_hook_last(() => -1);
    expect(m.call_core___mail_queue_maintain_hook(...argsFor(core, 'x.com', 0, T0))).toBe(-1);
    expect(core.stats().connections).toBe(0);
  });

  test('__mail_queue_maintain is the default: opens the goal, ignores the closure, and can be wrapped', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 50, 1);
    const m = momentumAliases(core);
    const calls: number[] = [];
    m.register_core___mail_queue_maintain_hook_first(
      (closure: { k: number }, ...args: MailQueueMaintainArgs) => {
        const n = m.__mail_queue_maintain('ignored', ...args);
        calls.push(closure.k, n);
        return n === 0 ? -1 : n; // never let the default run twice
      },
      { k: 7 },
    );
    const r = core.maintain();
    expect(calls).toEqual([7, 12]);
    expect(r.opened).toBe(12);
    expect(r.grants).toHaveLength(12);
    expect(core.stats().connections).toBe(12);
    // Directly, outside a pass: goal met, nothing more.
    expect(m.__mail_queue_maintain(undefined, ...argsFor(core, 'x.com', 0, T0))).toBe(0);
    expect(m.__mail_queue_maintain({}, ...argsFor(core, 'x.com', 0, T0, 2, 0))).toBe(2);
    expect(core.stats().connections).toBe(14);
  });

  test('aliases are bound to their core, not global', () => {
    const { core: c1 } = rig();
    const { core: c2 } = rig();
    const m1 = momentumAliases(c1);
    const m2 = momentumAliases(c2);
    m1.register_core___mail_queue_maintain_hook_last(() => 0);
    expect(m1.has_core___mail_queue_maintain_hook()).toBe(1);
    expect(m2.has_core___mail_queue_maintain_hook()).toBe(0);
    expect(c2.hooks.mailQueueMaintain.has()).toBe(false);
  });
});

describe('provider arguments', () => {
  test('(closure, dr, bindingSlot, sl, now, goalsz, reserve): now is the pass clock, reserve 0 without a connection', () => {
    const { core, clock } = rig({ bindings: ['a', 'b'], config: { global: { serverReserveOutboundConnections: 7 } } });
    fill(core, 'x.com', 'a', 10, 1);
    fill(core, 'x.com', 'b', 10, 100);
    const closure = Symbol('closure');
    const calls: { args: unknown[] }[] = [];
    core.hooks.mailQueueMaintain.registerLast((...args: unknown[]) => {
      calls.push({ args });
      const slot = args[2] as number;
      // Only binding a gets connections (through the default).
      return slot === 0 ? 0 : -1;
    }, closure);
    clock.t = T0 + 123;
    core.maintain();
    expect(calls).toHaveLength(2);
    for (const { args } of calls) {
      expect(args).toHaveLength(7);
      const [c, dr, slot, sl, now, goalsz, reserve] = args as [
        symbol,
        DomainRecord,
        number,
        ActiveQueue,
        number,
        number,
        number,
      ];
      expect(c).toBe(closure);
      expect(dr).toBeInstanceOf(DomainRecord);
      expect(dr).toBe(core.domain('x.com'));
      expect(sl).toBeInstanceOf(ActiveQueue);
      expect(sl).toBe(core.activeQueue('x.com', slot));
      expect(sl.bindingSlot).toBe(slot);
      expect(now).toBe(T0 + 123);
      expect(goalsz).toBe(0);
      expect(reserve).toBe(0); // no pair had a connection yet
    }
    expect(core.domain('x.com').connections('a')).toBe(3);
    expect(core.domain('x.com').connections('b')).toBe(0);

    calls.length = 0;
    clock.t = T0 + 456;
    core.maintain();
    const bySlot = new Map(calls.map(({ args }) => [args[2] as number, args]));
    // args: [closure, dr, slot, sl, now, goalsz, reserve]
    expect(bySlot.get(0)![4]).toBe(T0 + 456);
    expect(bySlot.get(0)![5]).toBe(0); // goalsz
    expect(bySlot.get(0)![6]).toBe(7); // a has connections: serverReserve
    expect(bySlot.get(1)![4]).toBe(T0 + 456);
    expect(bySlot.get(1)![6]).toBe(0); // b has none: 0

    calls.length = 0;
    core.maintain(T0 + 999);
    expect(calls.map(({ args }) => args[4])).toEqual([T0 + 999, T0 + 999]);
  });

  test('maintainDomain passes its goalsz and reserve through to providers', () => {
    const { core } = rig();
    fill(core, 'x.com', undefined, 10, 1);
    const got: number[][] = [];
    core.hooks.mailQueueMaintain.registerLast((_c, _dr, _slot, _sl, now: number, goalsz: number, reserve: number) => {
      got.push([now, goalsz, reserve]);
      return 0;
    });
    const r = core.maintainDomain('x.com', { now: T0 + 5, goalsz: 4, reserve: 9 });
    expect(got).toEqual([[T0 + 5, 4, 9]]);
    expect(r.opened).toBe(4);
  });

  test('the clock is sampled once per pass', () => {
    let calls = 0;
    const core = new MailQueueCore({ bindings: ['a', 'b', 'c'], clock: () => T0 + 10 * calls++ });
    open.push(core);
    for (let b = 0; b < 3; b++) core.enqueue({ id: b, domain: `d${b}.com`, binding: ['a', 'b', 'c'][b] });
    const nows: number[] = [];
    core.hooks.mailQueueMaintain.registerLast((_c, _dr, _slot, _sl, now: number) => {
      nows.push(now);
      return -1;
    });
    const before = calls;
    core.maintain();
    expect(calls - before).toBe(1);
    expect(nows).toHaveLength(3);
    expect(new Set(nows).size).toBe(1);
  });
});
