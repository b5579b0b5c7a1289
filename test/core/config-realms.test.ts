// Configuration made in another realm: Haraka runs its plugins in `vm` contexts, so the objects a
// plugin builds have that context's Object.prototype. They are plain objects all the same and must
// configure the core exactly as the same objects made here; what is not a plain object is refused
// with a message that says what it is.
import vm from 'node:vm';
import { expect, test } from 'vitest';

import { MailQueueCore } from '../../lib/index.js';

const CONFIG_SOURCE = `({
  global: { maxOutboundConnections: 3, messageExpiration: 120 },
  bindings: { b1: { serverMaxOutboundConnections: 7 } },
  domains: { 'slow.test': { maxOutboundConnections: 1 } },
})`;

test('a configuration built in a vm context configures the core as the same one built here', () => {
  const foreign = vm.runInNewContext(CONFIG_SOURCE) as object;
  // It is from another realm: its prototype is not ours.
  expect(Object.getPrototypeOf(foreign)).not.toBe(Object.prototype);
  const local = vm.runInThisContext(CONFIG_SOURCE) as object;
  expect(Object.getPrototypeOf(local)).toBe(Object.prototype);
  const views = [foreign, local].map((config) => {
    const core = new MailQueueCore({ bindings: ['b0', 'b1'], config: config as never, clock: () => 1000 });
    try {
      core.enqueueBatch('slow.test', 'b0', Float64Array.of(1, 2, 3, 4));
      core.enqueueBatch('fast.test', 'b1', Float64Array.of(5, 6, 7, 8, 9, 10, 11, 12, 13, 14));
      const pass = core.maintain(1000);
      return {
        opened: pass.opened,
        slow: core.domain('slow.test').connections(),
        fast: core.domain('fast.test').connections(),
        expiresAt: core.message(5)?.expiresAt,
      };
    } finally {
      core.close();
    }
  });
  expect(views[0]).toEqual(views[1]);
  // The limits took effect: one connection for slow.test, at most 3 for fast.test; expiry 120 s.
  expect(views[0].slow).toBe(1);
  expect(views[0].fast).toBeLessThanOrEqual(3);
  expect(views[0].expiresAt).toBe(1000 + 120_000);
});

test('a nested scope from a vm context and Object.create(null) are plain objects too', () => {
  const global = vm.runInNewContext('({ maxOutboundConnections: 2 })');
  const config = Object.create(null) as Record<string, unknown>;
  config.global = global;
  const core = new MailQueueCore({ config: config as never });
  core.close();
});

test('what is not a plain object is refused, and the message says what it is', () => {
  class Settings {
    global = { maxOutboundConnections: 2 };
  }
  const cases: [unknown, RegExp][] = [
    [new Settings(), /^config must be a plain object, got an instance of Settings$/],
    [new Map(), /^config must be a plain object, got a Map$/],
    [vm.runInNewContext('new Map()'), /^config must be a plain object, got a Map$/],
    [vm.runInNewContext('new (class Conf {})()'), /^config must be a plain object, got an instance of Conf$/],
    [[], /^config must be a plain object, got an array$/],
    ['x', /^config must be a plain object, got string$/],
    [{ global: new Date(0) }, /^config\.global must be a plain object, got a Date$/],
  ];
  for (const [config, message] of cases) {
    expect(() => new MailQueueCore({ config: config as never })).toThrow(TypeError);
    expect(() => new MailQueueCore({ config: config as never })).toThrow(message);
  }
});
