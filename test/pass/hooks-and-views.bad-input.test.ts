// Bad input to the pass layer's objects: hook points (register, call, re-entrancy: call(),
// maintain() and close() from inside a provider; providers that fail are reported, not thrown),
// the DomainRecord and ActiveQueue views, defaultMailQueueMaintain (called with views),
// connectionGoal(), and the hooks and views of a closed core. Rows, fixture and checks: see
// test/support/bad_input.ts (MailQueueCore's own methods: test/core/core-api.bad-input.test.ts).
import { describe, expect } from 'vitest';

import { connectionGoal, MailQueueError } from '../../lib/index.js';
import { any, type Ctx, type Row, rowTests, T0, TWO53 } from '../support/bad_input.js';

/** A hook point whose call() takes anything, to pass it garbage. */
const loose = (hook: object) => hook as unknown as { call(...args: unknown[]): number };

const rows: Row[] = [
  // DomainRecord
  {
    api: 'DomainRecord',
    what: 'index reassigned',
    run: (c) => {
      (c.dr as unknown as { index: number }).index = 1;
    },
    throws: TypeError,
    message: /index/,
  },
  {
    api: 'DomainRecord',
    what: 'activeSize of an unknown binding',
    run: (c) => c.dr.activeSize('zz'),
    throws: RangeError,
    message: /^binding: unknown binding "zz"/,
  },
  {
    api: 'DomainRecord',
    what: 'connections of slot 99',
    run: (c) => c.dr.connections(99),
    throws: RangeError,
    message: /^binding: no binding slot 99/,
  },
  {
    api: 'DomainRecord',
    what: 'suspended(undefined)',
    run: (c) => c.dr.suspended(any(undefined)),
    throws: TypeError,
    message: /^binding must be a binding name or slot/,
  },

  // ActiveQueue (a view from core.activeQueue())
  {
    api: 'activeQueue.toArray',
    what: 'limit -1',
    run: (c) => c.qa.toArray(-1),
    throws: RangeError,
    message: /^limit must be an integer from 0/,
  },
  {
    api: 'activeQueue.toArray',
    what: 'limit 1e8',
    run: (c) => c.qa.toArray(1e8),
    throws: RangeError,
    message: /^limit must be an integer from 0 to 10000000/,
  },
  {
    api: 'activeQueue.toArray',
    what: 'limit a string',
    run: (c) => c.qa.toArray(any('10')),
    throws: TypeError,
    message: /^limit must be a number/,
  },
  {
    api: 'activeQueue.toArray',
    what: 'offset -1',
    run: (c) => c.qa.toArray(10, -1),
    throws: RangeError,
    message: /^offset must be an integer/,
  },
  {
    api: 'activeQueue.toArray',
    what: 'offset 2^53',
    run: (c) => c.qa.toArray(10, TWO53),
    throws: RangeError,
    message: /^offset must be an integer/,
  },
  {
    api: 'activeQueue.toArray',
    what: 'offset fractional',
    run: (c) => c.qa.toArray(10, 0.5),
    throws: RangeError,
    message: /^offset must be an integer/,
  },
  {
    api: 'activeQueue.remove',
    what: 'id NaN',
    run: (c) => c.qa.remove(NaN),
    throws: RangeError,
    message: /^id must be a safe integer/,
  },
  {
    api: 'activeQueue.remove',
    what: 'id a string',
    run: (c) => c.qa.remove(any('1')),
    throws: TypeError,
    message: /^id must be a number/,
  },
  {
    api: 'activeQueue.has',
    what: 'id -1',
    run: (c) => c.qa.has(-1),
    throws: RangeError,
    message: /^id must be a safe integer/,
  },
  {
    api: 'activeQueue.has',
    what: 'id 2^53',
    run: (c) => c.qa.has(TWO53),
    throws: RangeError,
    message: /^id must be a safe integer/,
  },

  // defaultMailQueueMaintain (the native default provider, called with views)
  {
    api: 'defaultMailQueueMaintain',
    what: 'dr a plain object',
    run: (c) => c.core.defaultMailQueueMaintain(any({ index: 0 }), 0, c.qa, T0, 0, 0),
    throws: TypeError,
    message: /^dr must be a DomainRecord of this core/,
  },
  {
    api: 'defaultMailQueueMaintain',
    what: 'dr of another core',
    run: (c) => c.core.defaultMailQueueMaintain(c.otherDr, 0, c.qa, T0, 0, 0),
    throws: TypeError,
    message: /^dr must be a DomainRecord of this core/,
  },
  {
    api: 'defaultMailQueueMaintain',
    what: 'bindingSlot 5',
    run: (c) => c.core.defaultMailQueueMaintain(c.dr, 5, c.qa, T0, 0, 0),
    throws: RangeError,
    message: /^bindingSlot must be an integer from 0 to 1/,
  },
  {
    api: 'defaultMailQueueMaintain',
    what: 'sl of another binding',
    run: (c) => c.core.defaultMailQueueMaintain(c.dr, 0, c.qb, T0, 0, 0),
    throws: TypeError,
    message: /^sl must be the ActiveQueue of \(dr, bindingSlot\)/,
  },
  {
    api: 'defaultMailQueueMaintain',
    what: 'sl of another core',
    run: (c) => c.core.defaultMailQueueMaintain(c.dr, 0, c.otherQ, T0, 0, 0),
    throws: TypeError,
    message: /^sl must be the ActiveQueue/,
  },
  {
    api: 'defaultMailQueueMaintain',
    what: 'now NaN',
    run: (c) => c.core.defaultMailQueueMaintain(c.dr, 0, c.qa, NaN, 0, 0),
    throws: RangeError,
    message: /^now must be finite/,
  },
  {
    api: 'defaultMailQueueMaintain',
    what: 'goalsz fractional',
    run: (c) => c.core.defaultMailQueueMaintain(c.dr, 0, c.qa, T0, 0.5, 0),
    throws: RangeError,
    message: /^goalsz must be an integer/,
  },
  {
    api: 'defaultMailQueueMaintain',
    what: 'reserve -1',
    run: (c) => c.core.defaultMailQueueMaintain(c.dr, 0, c.qa, T0, 0, -1),
    throws: RangeError,
    message: /^reserve must be an integer from 0/,
  },

  // hook points: registration, call(), re-entrancy (call, maintain, close from a provider), reported provider failures
  {
    api: 'hooks.mailQueueMaintain.registerFirst',
    what: 'fn a number',
    run: (c) => c.core.hooks.mailQueueMaintain.registerFirst(any(5)),
    throws: TypeError,
    message: /^fn must be a function, got number/,
  },
  {
    api: 'hooks.mailQueueMaintain.registerLast',
    what: 'fn a string',
    run: (c) => c.core.hooks.mailQueueMaintain.registerLast(any('provider')),
    throws: TypeError,
    message: /^fn must be a function, got string/,
  },
  {
    api: 'hooks.connectionGoal.registerFirst',
    what: 'fn null',
    run: (c) => c.core.hooks.connectionGoal.registerFirst(any(null)),
    throws: TypeError,
    message: /^fn must be a function, got null/,
  },
  {
    api: 'hooks.preMailQueueMaintainDomain.registerLast',
    what: 'fn an object',
    run: (c) =>
      c.core.hooks.preMailQueueMaintainDomain.registerLast(
        any({
          call() {
            return 0;
          },
        }),
      ),
    throws: TypeError,
    message: /^fn must be a function, got object/,
  },
  {
    api: 'hooks.postMailQueueMaintainDomain.registerFirst',
    what: 'fn undefined',
    run: (c) => c.core.hooks.postMailQueueMaintainDomain.registerFirst(any(undefined)),
    throws: TypeError,
    message: /^fn must be a function, got undefined/,
  },
  {
    api: 'hooks.mailQueueMaintain.call',
    what: 'no arguments',
    run: (c) => loose(c.core.hooks.mailQueueMaintain).call(),
    throws: TypeError,
    message: /^dr must be a DomainRecord/,
  },
  {
    api: 'hooks.mailQueueMaintain.call',
    what: 'now NaN',
    run: (c) => c.core.hooks.mailQueueMaintain.call(c.dr, 0, c.qa, NaN, 0, 0),
    throws: RangeError,
    message: /^now must be finite/,
  },
  {
    api: 'hooks.mailQueueMaintain.call',
    what: 'bindingSlot -1',
    run: (c) => c.core.hooks.mailQueueMaintain.call(c.dr, -1, c.qa, T0, 0, 0),
    throws: RangeError,
    message: /^bindingSlot must be an integer/,
  },
  {
    api: 'hooks.connectionGoal.call',
    what: 'garbage arguments',
    run: (c) => loose(c.core.hooks.connectionGoal).call({}, 'x', null, 5),
    throws: TypeError,
    message: /^dr must be a DomainRecord/,
  },
  {
    api: 'hooks.mailQueueMaintain.call',
    what: 'call() from inside a provider',
    run: (c) => {
      const hook = c.core.hooks.mailQueueMaintain;
      let inner: unknown = 'provider did not run';
      const off = hook.registerFirst(() => {
        try {
          hook.call(c.dr, 0, c.qa, T0, 0, 0);
          inner = 'no error';
        } catch (e) {
          inner = e;
        }
        return -1; // stop the chain without opening anything
      });
      try {
        expect(hook.call(c.dr, 0, c.qa, T0, 0, 0)).toBe(-1);
      } finally {
        off();
      }
      throw inner;
    },
    throws: MailQueueError,
    code: 'ERR_REENTRANT',
    message: /^mailQueueMaintain\.call\(\) was called from inside one of its own providers/,
  },
  {
    api: 'hooks.connectionGoal.call',
    what: 'call() from inside its own provider',
    run: (c) => {
      const hook = c.core.hooks.connectionGoal;
      let inner: unknown = 'provider did not run';
      const off = hook.registerLast((_cl, dr, slot, sl, goal) => {
        try {
          hook.call(dr, slot, sl, goal);
          inner = 'no error';
        } catch (e) {
          inner = e;
        }
      });
      try {
        hook.call(c.dr, 0, c.qa, { value: 1 });
      } finally {
        off();
      }
      throw inner;
    },
    throws: MailQueueError,
    code: 'ERR_REENTRANT',
    message: /^connectionGoal\.call\(\)/,
  },
  {
    api: 'maintain',
    what: 'maintain() from inside a provider',
    run: (c) => {
      let inner: unknown = 'provider did not run';
      const off = c.core.hooks.mailQueueMaintain.registerFirst(() => {
        try {
          c.core.maintain();
          inner = 'no error';
        } catch (e) {
          inner = e;
        }
        return -1;
      });
      try {
        expect(c.core.maintain().opened).toBe(0);
      } finally {
        off();
      }
      throw inner;
    },
    throws: MailQueueError,
    code: 'ERR_REENTRANT',
    message: /^maintain\(\) was called from inside a maintenance hook/,
  },
  {
    api: 'close',
    what: 'close() from inside a provider',
    run: (c) => {
      let inner: unknown = 'provider did not run';
      const off = c.core.hooks.mailQueueMaintain.registerFirst(() => {
        try {
          c.core.close();
          inner = 'no error';
        } catch (e) {
          inner = e;
        }
        return -1;
      });
      try {
        c.core.maintain();
      } finally {
        off();
      }
      expect(c.core.closed).toBe(false);
      throw inner;
    },
    throws: MailQueueError,
    code: 'ERR_REENTRANT',
    message: /^close\(\) was called (?:from inside a maintenance hook|during a maintenance pass)/,
  },
  {
    api: 'close',
    what: 'close() from inside a provider of a direct hooks.connectionGoal.call()',
    run: (c) => {
      let inner: unknown = 'provider did not run';
      const off = c.core.hooks.connectionGoal.registerFirst(() => {
        try {
          c.core.close();
          inner = 'no error';
        } catch (e) {
          inner = e;
        }
      });
      try {
        c.core.hooks.connectionGoal.call(c.dr, 0, c.qa, { value: 1 });
      } finally {
        off();
      }
      expect(c.core.closed).toBe(false);
      throw inner;
    },
    throws: MailQueueError,
    code: 'ERR_REENTRANT',
    message: /^close\(\) was called from inside a maintenance hook/,
  },
  {
    api: 'hooks.mailQueueMaintain',
    what: 'a provider that returns a Promise (reported, not thrown)',
    run: (c) => {
      const hook = c.core.hooks.mailQueueMaintain;
      const offs = [hook.registerLast(async () => 5), hook.registerLast(() => -1)];
      try {
        return hook.call(c.dr, 0, c.qa, T0, 0, 0);
      } finally {
        for (const off of offs) off();
      }
    },
    returns: -1,
    reported: /^mailQueueMaintain provider returned a Promise \(providers must be synchronous\) \(x\.com\/a\)/,
  },
  {
    api: 'hooks.mailQueueMaintain',
    what: 'a provider that throws (reported, not thrown)',
    run: (c) => {
      const hook = c.core.hooks.mailQueueMaintain;
      const offs = [
        hook.registerFirst(() => {
          throw new TypeError('boom');
        }),
        hook.registerLast(() => -1),
      ];
      try {
        return hook.call(c.dr, 1, c.qb, T0, 0, 0);
      } finally {
        for (const off of offs) off();
      }
    },
    returns: -1,
    reported: /^mailQueueMaintain provider threw \(x\.com\/b\): boom/,
  },
  {
    api: 'hooks.mailQueueMaintain',
    what: 'a provider that returns a string (reported, not thrown)',
    run: (c) => {
      const hook = c.core.hooks.mailQueueMaintain;
      const offs = [hook.registerFirst(() => 'lots'), hook.registerLast(() => -1)];
      try {
        return hook.call(c.dr, 0, c.qa, T0, 0, 0);
      } finally {
        for (const off of offs) off();
      }
    },
    returns: -1,
    reported: /^mailQueueMaintain provider returned string, not a number/,
  },
  {
    api: 'hooks.preMailQueueMaintainDomain',
    what: 'a provider that returns a Promise during maintain() (reported)',
    run: (c) => {
      const offs = [
        c.core.hooks.preMailQueueMaintainDomain.registerFirst(() => Promise.reject(new Error('late'))),
        c.core.hooks.mailQueueMaintain.registerLast(() => -1),
      ];
      try {
        return c.core.maintainDomain('x.com').opened;
      } finally {
        for (const off of offs) off();
      }
    },
    returns: 0,
    reported: /^preMailQueueMaintainDomain provider returned a Promise/,
  },

  // connectionGoal() (the goal curve, exported)
  {
    api: 'connectionGoal()',
    what: 'maxConnections a string',
    run: () => connectionGoal(any('32'), 1, 0.3),
    throws: TypeError,
    message: /^maxConnections must be a number/,
  },
  {
    api: 'connectionGoal()',
    what: 'maxConnections -1',
    run: () => connectionGoal(-1, 1, 0.3),
    throws: RangeError,
    message: /^maxConnections must be an integer/,
  },
  {
    api: 'connectionGoal()',
    what: 'maxConnections Infinity',
    run: () => connectionGoal(Infinity, 1, 0.3),
    throws: RangeError,
    message: /^maxConnections must be finite/,
  },
  {
    api: 'connectionGoal()',
    what: 'queued -1',
    run: () => connectionGoal(32, -1, 0.3),
    throws: RangeError,
    message: /^queued must be an integer/,
  },
  {
    api: 'connectionGoal()',
    what: 'queued 2^53',
    run: () => connectionGoal(32, TWO53, 0.3),
    throws: RangeError,
    message: /^queued must be an integer/,
  },
  {
    api: 'connectionGoal()',
    what: 'aggressiveness 0',
    run: () => connectionGoal(32, 1, 0),
    throws: RangeError,
    message: /^aggressiveness must be in \(0, 1\]/,
  },
  {
    api: 'connectionGoal()',
    what: 'aggressiveness NaN',
    run: () => connectionGoal(32, 1, NaN),
    throws: RangeError,
    message: /^aggressiveness must not be NaN/,
  },
  {
    api: 'connectionGoal()',
    what: 'aggressiveness 1.5',
    run: () => connectionGoal(32, 1, 1.5),
    throws: RangeError,
    message: /^aggressiveness must be in \(0, 1\]/,
  },

  // the hooks and views of a closed core (the core's own methods after close(): test/core/core-api.bad-input.test.ts)
  ...(
    [
      ['defaultMailQueueMaintain', (c: Ctx) => c.closed.defaultMailQueueMaintain(c.closedDr, 0, c.closedQ, T0, 0, 0)],
      ['hooks.mailQueueMaintain.registerFirst', (c: Ctx) => c.closed.hooks.mailQueueMaintain.registerFirst(() => 0)],
      ['hooks.connectionGoal.registerLast', (c: Ctx) => c.closed.hooks.connectionGoal.registerLast(() => undefined)],
      [
        'hooks.mailQueueMaintain.call',
        (c: Ctx) => c.closed.hooks.mailQueueMaintain.call(c.closedDr, 0, c.closedQ, T0, 0, 0),
      ],
      [
        'hooks.postMailQueueMaintainDomain.call',
        (c: Ctx) => c.closed.hooks.postMailQueueMaintainDomain.call(c.closedDr, T0, { value: 0 }),
      ],
      ['DomainRecord.activeSize', (c: Ctx) => c.closedDr.activeSize()],
      ['DomainRecord.delayedSize', (c: Ctx) => c.closedDr.delayedSize],
      ['DomainRecord.toJSON', (c: Ctx) => c.closedDr.toJSON()],
      ['ActiveQueue.size', (c: Ctx) => c.closedQ.size],
      ['ActiveQueue.peek', (c: Ctx) => c.closedQ.peek()],
      ['ActiveQueue.toArray', (c: Ctx) => c.closedQ.toArray()],
      ['ActiveQueue.remove', (c: Ctx) => c.closedQ.remove(1)],
      ['ActiveQueue.has', (c: Ctx) => c.closedQ.has(1)],
    ] as const
  ).map(
    ([api, run]): Row => ({
      api,
      what: 'after close()',
      run,
      throws: MailQueueError,
      code: 'ERR_CLOSED',
      message: /^the core is closed/,
    }),
  ),
];

describe('hook points, DomainRecord and ActiveQueue views, connectionGoal(): bad calls throw the documented error and change nothing', () => {
  rowTests(rows);
});
