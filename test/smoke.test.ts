import { expect, test } from 'vitest';
import { MailQueueCore } from '../lib/index.js';

test('smoke', () => {
  let t = 1_000_000;
  const core = new MailQueueCore({ bindings: ['a', 'b'], clock: () => t });
  for (let i = 0; i < 100; i++) core.enqueue({ id: i, domain: 'example.com', binding: i % 2 ? 'a' : 'b' });
  const r = core.maintain();
  expect(r.opened).toBeGreaterThan(0);
  expect(core.stats().active).toBe(100);
  expect(core.checkInvariants()).toBe(true);
  core.close();
});
