// The Watchdog of the delivery hot path (lib/watchdog.ts): one timer re-armed per use. Fake timers:
// what is checked is which arm() a firing belongs to, not how long anything takes.
import { afterEach, beforeEach, expect, test, vi } from 'vitest';

import { Watchdog } from '../../lib/watchdog.js';

beforeEach(() => {
  // performance too: the watchdog's clock
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'Date', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

/** A watchdog of `ms` and how many times it fired. */
function counted(ms: number, keepAlive = false): { w: Watchdog; fired: () => number } {
  let n = 0;
  return { w: new Watchdog(ms, () => n++, keepAlive), fired: () => n };
}

/** Not fired `ms - 1` from now, fired (once more) at `ms`. */
function firesIn(ms: number, fired: () => number): void {
  const before = fired();
  vi.advanceTimersByTime(ms - 1);
  expect(fired()).toBe(before);
  vi.advanceTimersByTime(1);
  expect(fired()).toBe(before + 1);
}

test('fires once, ms after the latest arm(); re-arming moves the deadline; disarm() cancels it', () => {
  const { w, fired } = counted(100);
  w.arm();
  firesIn(100, fired);
  expect(w.armed).toBe(false);
  vi.advanceTimersByTime(1000);
  expect(fired()).toBe(1); // once per arm()

  w.arm();
  vi.advanceTimersByTime(60);
  w.arm(); // re-armed: the deadline is 100 from here
  firesIn(100, fired);

  w.arm();
  vi.advanceTimersByTime(50);
  w.disarm();
  vi.advanceTimersByTime(500);
  expect(fired()).toBe(2);

  // Armed again after a disarm (and after the timer ran out disarmed): a full period again.
  w.arm();
  firesIn(100, fired);
  w.dispose();
});

test('dispose() frees the timer: nothing fires; a later arm() starts afresh', () => {
  const { w, fired } = counted(10, true);
  w.arm();
  w.dispose();
  vi.advanceTimersByTime(100);
  expect(fired()).toBe(0);
  expect(vi.getTimerCount()).toBe(0);
  w.arm();
  firesIn(10, fired);
  w.dispose();
  expect(vi.getTimerCount()).toBe(0);
});

test('many arms make one timer; a deadline moved while it runs is still met', () => {
  const { w, fired } = counted(1000);
  for (let i = 0; i < 100; i++) {
    w.arm();
    vi.advanceTimersByTime(5);
    w.disarm();
  }
  expect(vi.getTimerCount()).toBe(1);
  w.arm(); // 500 after the first arm: the timer runs out at 1000, and again for what is left
  firesIn(1000, fired);
  // after a rerun with what was left, a full period again
  w.arm();
  firesIn(1000, fired);
  w.dispose();
});
